package plan

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/computeha/computeha/internal/config"
)

func member(id, group string) VM {
	v := vm(id, 1, 512, 1, 0)
	v.Group = group
	return v
}

func TestServerGroups(t *testing.T) {
	seg := func(hosts ...Host) Segment {
		return Segment{Name: "s", RecoveryMethod: config.RecoveryAuto, Hosts: append([]Host{host("failed", 0, 0, 0)}, hosts...)}
	}
	tests := []struct {
		name     string
		segment  Segment
		vms      []VM
		groups   map[string]Group
		want     summary
		degraded []string
	}{
		{
			"an anti-affinity member never goes where another member runs, even to the roomiest host",
			seg(host("h1", 64, 65536, 500), host("h2", 8, 8192, 100)),
			[]VM{member("a", "g")},
			map[string]Group{"g": {Policy: AntiAffinity, Members: map[string]int{"h1": 1}}},
			summary{Moves: []string{"a→h2 (most-free-capacity)"}, Excluded: []Excluded{{"failed", ReasonFailedHost}}, Fits: true},
			nil,
		},
		{
			"two anti-affinity members of the failed host go to two different hosts",
			seg(host("h1", 64, 65536, 500), host("h2", 8, 8192, 100)),
			[]VM{member("a", "g"), member("b", "g")},
			map[string]Group{"g": {Policy: AntiAffinity}},
			summary{Moves: []string{"a→h1 (most-free-capacity)", "b→h2 (most-free-capacity)"}, Excluded: []Excluded{{"failed", ReasonFailedHost}}, Fits: true},
			nil,
		},
		{
			"max_server_per_host lets two members share a host",
			seg(host("h1", 64, 65536, 500), host("h2", 8, 8192, 100)),
			[]VM{member("a", "g"), member("b", "g")},
			map[string]Group{"g": {Policy: AntiAffinity, MaxPerHost: 2}},
			summary{Moves: []string{"a→h1 (most-free-capacity)", "b→h1 (most-free-capacity)"}, Excluded: []Excluded{{"failed", ReasonFailedHost}}, Fits: true},
			nil,
		},
		{
			"a hard anti-affinity the segment cannot satisfy is reported, not broken",
			seg(host("h1", 64, 65536, 500), host("h2", 8, 8192, 100)),
			[]VM{member("a", "g")},
			map[string]Group{"g": {Policy: AntiAffinity, Members: map[string]int{"h1": 1, "h2": 1}}},
			summary{Unplaced: []string{"a (anti-affinity-unsatisfiable)"}, Excluded: []Excluded{{"failed", ReasonFailedHost}}},
			nil,
		},
		{
			"an affinity member goes where the others run, not to the roomiest host",
			seg(host("h1", 64, 65536, 500), host("h2", 8, 8192, 100)),
			[]VM{member("a", "g")},
			map[string]Group{"g": {Policy: Affinity, Members: map[string]int{"h2": 2}}},
			summary{Moves: []string{"a→h2 (most-free-capacity)"}, Excluded: []Excluded{{"failed", ReasonFailedHost}}, Fits: true},
			nil,
		},
		{
			"affinity members that all failed stay together",
			seg(host("h1", 64, 65536, 500), host("h2", 60, 65000, 500)),
			[]VM{member("a", "g"), member("b", "g"), member("c", "g")},
			map[string]Group{"g": {Policy: Affinity}},
			summary{Moves: []string{"a→h1 (most-free-capacity)", "b→h1 (most-free-capacity)", "c→h1 (most-free-capacity)"}, Excluded: []Excluded{{"failed", ReasonFailedHost}}, Fits: true},
			nil,
		},
		{
			"an affinity whose host has no room is reported, not broken",
			seg(host("h1", 64, 65536, 500), host("h2", 0, 0, 0)),
			[]VM{member("a", "g")},
			map[string]Group{"g": {Policy: Affinity, Members: map[string]int{"h2": 1}}},
			summary{Unplaced: []string{"a (affinity-unsatisfiable)"}, Excluded: []Excluded{{"failed", ReasonFailedHost}}},
			nil,
		},
		{
			"no room at all is no room, whatever the group",
			seg(host("h1", 0, 0, 0)),
			[]VM{member("a", "g")},
			map[string]Group{"g": {Policy: AntiAffinity}},
			summary{Unplaced: []string{"a (no-room)"}, Excluded: []Excluded{{"failed", ReasonFailedHost}}},
			nil,
		},
		{
			"soft anti-affinity spreads members over the hosts left",
			seg(host("h1", 64, 65536, 500), host("h2", 8, 8192, 100)),
			[]VM{member("a", "g"), member("b", "g")},
			map[string]Group{"g": {Policy: SoftAntiAffinity}},
			summary{Moves: []string{"a→h1 (most-free-capacity)", "b→h2 (most-free-capacity)"}, Excluded: []Excluded{{"failed", ReasonFailedHost}}, Fits: true},
			[]string{"", ""},
		},
		{
			"soft anti-affinity degrades, recorded, when one host is left",
			seg(host("h1", 64, 65536, 500)),
			[]VM{member("a", "g"), member("b", "g")},
			map[string]Group{"g": {Policy: SoftAntiAffinity}},
			summary{Moves: []string{"a→h1 (most-free-capacity)", "b→h1 (most-free-capacity)"}, Excluded: []Excluded{{"failed", ReasonFailedHost}}, Fits: true},
			[]string{"", "soft-anti-affinity of server group g: h1 already runs 1 of its members, and no other host has room"},
		},
		{
			"a reserved host taken into use follows anti-affinity too",
			Segment{Name: "s", RecoveryMethod: config.RecoveryReservedHost, Hosts: []Host{host("failed", 0, 0, 0), reserve("r1", 64, 65536, 500), reserve("r2", 64, 65536, 500)}},
			[]VM{member("a", "g"), member("b", "g")},
			map[string]Group{"g": {Policy: AntiAffinity}},
			summary{Moves: []string{"a→r1 (reserved-host)", "b→r2 (reserved-host)"}, Reserved: []string{"r1", "r2"}, Excluded: []Excluded{{"failed", ReasonFailedHost}}, Fits: true},
			nil,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := Make(Input{FailedHost: "failed", Segment: tt.segment, VMs: tt.vms, Groups: tt.groups})
			if err != nil {
				t.Fatal(err)
			}
			got := summarize(p)
			got.Fits = p.Preflight.Fits
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("plan (-want +got):\n%s", diff)
			}
			if tt.degraded != nil {
				var deg []string
				for _, m := range p.Moves {
					deg = append(deg, m.Degraded)
				}
				if diff := cmp.Diff(tt.degraded, deg); diff != "" {
					t.Errorf("degraded (-want +got):\n%s", diff)
				}
			}
			for _, u := range p.Unplaced {
				if u.Reason != ReasonNoRoom && !strings.Contains(u.Detail, "server group g") {
					t.Errorf("unplaced %s: detail %q does not name the group", u.VM.ID, u.Detail)
				}
			}
		})
	}
}

func TestAGroupThePlanIsNotGivenIsAnInputError(t *testing.T) {
	_, err := Make(Input{
		FailedHost: "f", Segment: Segment{Name: "s", RecoveryMethod: config.RecoveryAuto, Hosts: []Host{host("f", 1, 1, 1)}},
		VMs: []VM{member("a", "missing")}, Groups: map[string]Group{"g": {Policy: "strict"}},
	})
	if err == nil || !strings.Contains(err.Error(), "server group missing is not among the groups") || !strings.Contains(err.Error(), `unknown policy "strict"`) {
		t.Errorf("err = %v", err)
	}
}
