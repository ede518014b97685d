package recovery

import (
	"testing"

	"github.com/computeha/computeha/internal/config"
	"github.com/computeha/computeha/internal/openstack"
)

func TestAWithheldReservedHostIsNoTargetOfTheHeadroom(t *testing.T) {
	seg := config.Segment{Hosts: []string{"c1", "c2", "r1", "r2"}, ReservedHosts: []string{"r1", "r2"}}
	hv := func(name, status, reason string) openstack.Hypervisor {
		return openstack.Hypervisor{ServiceHost: name, State: "up", Status: status, DisabledReason: reason}
	}
	got := map[string]bool{}
	for _, c := range SegmentCapacity(seg, []openstack.Hypervisor{
		hv("c1", "enabled", ""), hv("c2", "disabled", "maintenance"),
		hv("r1", "disabled", "reserved for failover"), hv("r2", "disabled", "PSU replacement"),
	}) {
		got[c.Name] = c.Target
	}
	want := map[string]bool{"c1": true, "c2": false, "r1": true, "r2": false}
	for h, w := range want {
		if got[h] != w {
			t.Errorf("%s a target: %v, want %v", h, got[h], w)
		}
	}
}
