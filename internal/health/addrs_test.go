package health

import (
	"net/netip"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/computeha/computeha/internal/config"
)

func joinConfig() *config.Health {
	h := config.DefaultHealth()
	h.Networks = []config.Network{
		{Name: "mgmt", Management: true, Subnet: "192.168.1.0/24"},
		{Name: "storage", Subnet: "192.168.2.0/24"},
		{Name: "tenant"},
	}
	h.Hosts = map[string]map[string]string{"ctl1": {"mgmt": "192.168.1.11", "storage": "192.168.2.11", "tenant": "192.168.3.11"}}
	h.Gossip = config.Gossip{KeyFile: "/k", Seeds: []string{"ctl1"}}
	return &h
}

func TestLocalAddresses(t *testing.T) {
	a := netip.MustParseAddr
	machine := []netip.Addr{a("127.0.0.1"), a("192.168.2.103"), a("192.168.1.103"), a("192.168.1.200"), a("192.168.3.103")}
	tests := []struct {
		name    string
		mod     func(*config.Health)
		node    string
		want    map[string]netip.Addr
		wantErr string
	}{
		{
			"a listed host is where the configuration says", nil, "ctl1",
			map[string]netip.Addr{"mgmt": a("192.168.1.11"), "storage": a("192.168.2.11"), "tenant": a("192.168.3.11")},
			"",
		},
		{
			"a host that joins is at its first address in each subnet, on no network without one", nil, "cmp3",
			map[string]netip.Addr{"mgmt": a("192.168.1.103"), "storage": a("192.168.2.103")},
			"",
		},
		{
			"without the gossip a host must be listed", func(h *config.Health) { h.Gossip = config.Gossip{} }, "cmp3",
			nil, "cmp3 is not listed in health.hosts, and without gossip",
		},
		{
			"without a management subnet a host must be listed", func(h *config.Health) { h.Networks[0].Subnet = "" }, "cmp3",
			nil, "the management network mgmt has no subnet",
		},
		{
			"a host with no address in the management subnet cannot take part", func(h *config.Health) { h.Networks[0].Subnet = "10.0.0.0/8" }, "cmp3",
			nil, "lies in the management network's subnet 10.0.0.0/8",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := joinConfig()
			if tt.mod != nil {
				tt.mod(cfg)
			}
			got, err := LocalAddresses(cfg, tt.node, func() ([]netip.Addr, error) { return machine, nil })
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("LocalAddresses = %v, %v; want %v", got, err, tt.want)
			}
		})
	}
}

func TestHostAddress(t *testing.T) {
	cfg := joinConfig()
	rec := &Record{Host: "cmp3", Addresses: map[string]string{"mgmt": "192.168.1.103", "storage": "10.0.0.3", "tenant": "192.168.3.103"}}
	tests := []struct {
		host, network string
		rec           *Record
		want          string
	}{
		{"ctl1", "mgmt", nil, "192.168.1.11"}, // listed: the configuration
		{"ctl1", "mgmt", &Record{Host: "ctl1", Addresses: map[string]string{"mgmt": "192.168.1.99"}}, "192.168.1.11"},
		{"cmp3", "mgmt", rec, "192.168.1.103"},                                // joined: its record
		{"cmp3", "storage", rec, ""},                                          // out of the subnet
		{"cmp3", "tenant", rec, ""},                                           // a network without a subnet
		{"cmp3", "mgmt", nil, ""},                                             // no record read
		{"cmp3", "mgmt", &Record{Host: "cmp4", Addresses: rec.Addresses}, ""}, // another host's
	}
	for _, tt := range tests {
		got, ok := HostAddress(cfg, tt.host, tt.network, tt.rec)
		if (tt.want == "") == ok || ok && got.String() != tt.want {
			t.Errorf("HostAddress(%s, %s) = %s, %v; want %q", tt.host, tt.network, got, ok, tt.want)
		}
	}
}

func TestARecordAnnouncesValidAddresses(t *testing.T) {
	r := Record{
		Host: "cmp3", Seq: 1, Time: time.Date(2026, 12, 6, 10, 0, 0, 0, time.UTC), Service: ServiceOK,
		Addresses: map[string]string{"mgmt": "192.168.1.103"},
	}
	b, err := MarshalRecord(r)
	if err != nil {
		t.Fatal(err)
	}
	got, err := ParseRecord(b)
	if err != nil || !reflect.DeepEqual(got, r) {
		t.Fatalf("round trip: %+v, %v", got, err)
	}
	for _, bad := range []string{`{"mgmt":"cmp3.example"}`, `{"":"192.168.1.103"}`} {
		data := strings.Replace(string(b), `{"mgmt":"192.168.1.103"}`, bad, 1)
		if _, err := ParseRecord([]byte(data)); err == nil {
			t.Errorf("addresses %s parsed", bad)
		}
	}
}

func TestTheHostsAreThoseListedAndThoseThatJoined(t *testing.T) {
	cfg := joinConfig()
	obs := Observations{
		Records:    map[string]Record{"cmp3": {}},
		RecordErrs: map[string]error{"cmp4": nil},
		Reach:      map[string]map[string]map[string]Signal{"cmp5": {"mgmt": {"cmp6": OK, "ctl1": OK}}},
	}
	if got, want := obs.Hosts(cfg), []string{"cmp3", "cmp4", "cmp5", "cmp6", "ctl1"}; !reflect.DeepEqual(got, want) {
		t.Errorf("Hosts = %v, want %v", got, want)
	}
}
