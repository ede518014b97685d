package ipmi

import (
	"strings"
	"testing"

	"github.com/computeha/computeha/fence"
)

func TestValidate(t *testing.T) {
	valid := func() *Params {
		return &Params{IP: "192.0.2.1", IPPort: 623, Lanplus: true, Cipher: "3", Privlvl: "administrator", Method: "onoff"}
	}
	tests := []struct {
		name    string
		edit    func(p *Params)
		wantErr string
	}{
		{"a complete lanplus configuration is valid", func(*Params) {}, ""},
		{"an empty cipher means negotiate", func(p *Params) { p.Cipher = "" }, ""},
		{"cipher 17 is a valid suite", func(p *Params) { p.Cipher = "17" }, ""},
		{"a port of zero is refused", func(p *Params) { p.IPPort = 0 }, "not a UDP port"},
		{"a port above 65535 is refused", func(p *Params) { p.IPPort = 65536 }, "not a UDP port"},
		{"a cipher that is not a number is refused", func(p *Params) { p.Cipher = "aes" }, "not an IPMI cipher suite id"},
		{"a cipher above 19 is refused", func(p *Params) { p.Cipher = "20" }, "not an IPMI cipher suite id"},
		{"a Kg key is refused as unsupported", func(p *Params) { p.Kg = "00112233" }, "hexadecimal_kg is not supported"},
		{"a user name longer than IPMI allows is refused", func(p *Params) { p.Username = strings.Repeat("u", 17) }, "16 characters"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := valid()
			tt.edit(p)
			err := p.Validate()
			if tt.wantErr == "" && err != nil {
				t.Errorf("unexpected error %v", err)
			}
			if tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
				t.Errorf("error %v, want one containing %q", err, tt.wantErr)
			}
		})
	}
}

func TestKgIsSecretAndMetadataMatchesFenceIpmilanNames(t *testing.T) {
	spec := fence.SpecOf(&Params{})
	for _, name := range []string{
		"ip", "ipaddr", "ipport", "lanplus", "cipher", "privlvl", "hexadecimal_kg",
		"method", "username", "login", "password", "passwd", "password_script", "passwd_script", "power_timeout", "delay",
	} {
		if !spec.Has(name) {
			t.Errorf("fence_ipmi lacks fence_ipmilan's option %s", name)
		}
	}
	for _, p := range spec {
		if (p.Name == "hexadecimal_kg" || p.Name == "password") && !p.Secret {
			t.Errorf("%s must be marked secret", p.Name)
		}
	}
}
