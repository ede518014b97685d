package libvirt

import (
	"strings"
	"testing"

	golibvirt "github.com/digitalocean/go-libvirt"

	"github.com/computeha/computeha/fence"
)

func TestValidate(t *testing.T) {
	tests := []struct {
		uri     string
		wantErr string
	}{
		{"qemu:///system", ""},
		{"qemu+tcp://192.0.2.1/system", ""},
		{"test+unix:///default?socket=/run/x/libvirt-sock", ""},
		{"qemu+ssh://root@host/system?keyfile=/etc/computeha/id", ""},
		{"no-scheme", "not a libvirt connection URI"},
		{"::", "not a libvirt connection URI"},
		{"qemu+ssh://root:hunter2@host/system", "must not carry a password"},
	}
	for _, tt := range tests {
		err := (&Params{URI: tt.uri, Plug: "vm"}).Validate()
		if tt.wantErr == "" && err != nil {
			t.Errorf("%q: unexpected error %v", tt.uri, err)
		}
		if tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
			t.Errorf("%q: error %v, want %q", tt.uri, err, tt.wantErr)
		}
		if err != nil && strings.Contains(err.Error(), "hunter2") {
			t.Errorf("the error repeats the password: %v", err)
		}
	}
}

func TestUUIDRoundTrip(t *testing.T) {
	const s = "4dea22b3-1d52-d8f3-2516-782e98ab3fa0"
	u, ok := parseUUID(s)
	if !ok || formatUUID(u) != s {
		t.Errorf("parse/format %q gave %q (%v)", s, formatUUID(u), ok)
	}
	for _, bad := range []string{"vm1", "4dea22b31d52d8f32516782e98ab3fa0", "4dea22b3-1d52-d8f3-2516-782e98ab3fzz"} {
		if _, ok := parseUUID(bad); ok {
			t.Errorf("%q parsed as a UUID", bad)
		}
	}
}

func TestDomainStatesMapToPowerStates(t *testing.T) {
	want := map[golibvirt.DomainState]fence.State{
		golibvirt.DomainNostate:     fence.Unknown,
		golibvirt.DomainRunning:     fence.On,
		golibvirt.DomainBlocked:     fence.On,
		golibvirt.DomainPaused:      fence.On,
		golibvirt.DomainShutdown:    fence.On,
		golibvirt.DomainShutoff:     fence.Off,
		golibvirt.DomainCrashed:     fence.Off,
		golibvirt.DomainPmsuspended: fence.On,
	}
	for s, w := range want {
		if got := stateOf(s); got != w {
			t.Errorf("state %d: %s, want %s", s, got, w)
		}
	}
}
