package plan

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/computeha/computeha/internal/config"
)

// host is an enabled, up, ordinary host with the given free capacity.
func host(name string, vcpus, ramMB, diskGB int64) Host {
	return Host{Name: name, Enabled: true, Up: true, FreeVCPUs: vcpus, FreeRAMMB: ramMB, FreeDiskGB: diskGB}
}

// reserve is a reserved host: up, and disabled in Nova as reserved hosts are kept.
func reserve(name string, vcpus, ramMB, diskGB int64) Host {
	h := host(name, vcpus, ramMB, diskGB)
	h.Enabled, h.Reserved = false, true
	return h
}

func inMaintenance(h Host) Host {
	h.Maintenance = true
	return h
}

func withheld(h Host) Host {
	h.Withheld = true
	return h
}

func vm(id string, vcpus, ramMB, diskGB int64, prio int) VM {
	return VM{ID: id, Name: "name-" + id, VCPUs: vcpus, RAMMB: ramMB, DiskGB: diskGB, Priority: prio}
}

func vms(n int, vcpus, ramMB, diskGB int64) []VM {
	out := make([]VM, n)
	for i := range out {
		out[i] = vm(fmt.Sprintf("vm%d", i+1), vcpus, ramMB, diskGB, 0)
	}
	return out
}

// summary is the part of a plan the table compares; Details are checked separately.
type summary struct {
	Moves    []string // "vm→target (reason)"
	Reserved []string
	Unplaced []string
	Excluded []Excluded
	Fits     bool
}

func summarize(p *Plan) summary {
	s := summary{Reserved: p.ReservedHostsUsed, Excluded: p.Excluded, Fits: p.Preflight.Fits}
	for _, m := range p.Moves {
		s.Moves = append(s.Moves, fmt.Sprintf("%s→%s (%s)", m.VM.ID, m.Target, m.Reason))
	}
	for _, u := range p.Unplaced {
		s.Unplaced = append(s.Unplaced, fmt.Sprintf("%s (%s)", u.VM.ID, u.Reason))
	}
	return s
}

func TestMake(t *testing.T) {
	tests := []struct {
		name   string
		method config.RecoveryMethod
		hosts  []Host
		vms    []VM
		want   summary
	}{
		{
			"auto alternates between equal hosts instead of piling onto one",
			config.RecoveryAuto,
			[]Host{host("c1", 16, 32768, 500), host("c2", 16, 32768, 500), host("c3", 16, 32768, 500)},
			vms(4, 2, 4096, 20),
			summary{
				Moves:    []string{"vm1→c2 (most-free-capacity)", "vm2→c3 (most-free-capacity)", "vm3→c2 (most-free-capacity)", "vm4→c3 (most-free-capacity)"},
				Excluded: []Excluded{{"c1", ReasonFailedHost}},
				Fits:     true,
			},
		},
		{
			// The lab's fake hypervisors: a host a few vCPUs and MB roomier than the other
			// must not take all but one of a burst (it would set the finish time alone).
			"auto splits a burst evenly between hosts a few MB apart",
			config.RecoveryAuto,
			[]Host{host("c1", 0, 0, 0), host("c2", 16000, 1199232, 600000), host("c3", 15998, 1198208, 599998)},
			vms(6, 1, 512, 1),
			summary{
				Moves: []string{
					"vm1→c2 (most-free-capacity)", "vm2→c3 (most-free-capacity)", "vm3→c2 (most-free-capacity)",
					"vm4→c3 (most-free-capacity)", "vm5→c2 (most-free-capacity)", "vm6→c3 (most-free-capacity)",
				},
				Excluded: []Excluded{{"c1", ReasonFailedHost}},
				Fits:     true,
			},
		},
		{
			// c2 can take nine of these VMs, c3 three: six go to c2, two to c3.
			"auto spreads a burst in proportion to the room each host has left",
			config.RecoveryAuto,
			[]Host{host("c1", 0, 0, 0), host("c2", 16, 36864, 0), host("c3", 16, 12288, 0)},
			vms(8, 1, 4096, 0),
			summary{
				Moves: []string{
					"vm1→c2 (most-free-capacity)", "vm2→c2 (most-free-capacity)", "vm3→c2 (most-free-capacity)",
					"vm4→c3 (most-free-capacity)", "vm5→c2 (most-free-capacity)", "vm6→c2 (most-free-capacity)",
					"vm7→c3 (most-free-capacity)", "vm8→c2 (most-free-capacity)",
				},
				Excluded: []Excluded{{"c1", ReasonFailedHost}},
				Fits:     true,
			},
		},
		{
			// Volume-backed VMs need no local disk: c3 having none does not bound it.
			"auto splits volume-backed VMs evenly whatever the hosts' local disk",
			config.RecoveryAuto,
			[]Host{host("c1", 0, 0, 0), host("c2", 16, 32768, 500), host("c3", 16, 32768, 0)},
			vms(4, 1, 2048, 0),
			summary{
				Moves: []string{
					"vm1→c2 (most-free-capacity)", "vm2→c3 (most-free-capacity)", "vm3→c2 (most-free-capacity)", "vm4→c3 (most-free-capacity)",
				},
				Excluded: []Excluded{{"c1", ReasonFailedHost}},
				Fits:     true,
			},
		},
		{
			// c2 can take 16 of these VMs (its RAM bounds it), c3 8 (its vCPUs do): 4 and 2.
			"auto spreads in proportion to how many VMs each host can take, whichever resource bounds it",
			config.RecoveryAuto,
			[]Host{host("c1", 0, 0, 0), host("c2", 32, 32768, 0), host("c3", 8, 65536, 0)},
			vms(6, 1, 2048, 0),
			summary{
				Moves: []string{
					"vm1→c2 (most-free-capacity)", "vm2→c2 (most-free-capacity)", "vm3→c3 (most-free-capacity)",
					"vm4→c2 (most-free-capacity)", "vm5→c2 (most-free-capacity)", "vm6→c3 (most-free-capacity)",
				},
				Excluded: []Excluded{{"c1", ReasonFailedHost}},
				Fits:     true,
			},
		},
		{
			"auto fills the roomier host until both have as much left, then spreads",
			config.RecoveryAuto,
			[]Host{host("c1", 0, 0, 0), host("c2", 16, 65536, 0), host("c3", 16, 16384, 0)},
			vms(5, 2, 8192, 0),
			summary{
				Moves: []string{
					"vm1→c2 (most-free-capacity)", "vm2→c2 (most-free-capacity)", "vm3→c2 (most-free-capacity)",
					"vm4→c2 (most-free-capacity)", "vm5→c3 (most-free-capacity)",
				},
				Excluded: []Excluded{{"c1", ReasonFailedHost}},
				Fits:     true,
			},
		},
		{
			"VMs go by priority, then largest first, then input order",
			config.RecoveryAuto,
			[]Host{host("c1", 0, 0, 0), host("c2", 64, 262144, 1000)},
			[]VM{vm("low", 1, 512, 1, 0), vm("small-hi", 1, 512, 1, 10), vm("big-hi", 8, 16384, 40, 10), vm("mid", 2, 2048, 10, 5), vm("low2", 1, 512, 1, 0)},
			summary{
				Moves: []string{
					"big-hi→c2 (most-free-capacity)", "small-hi→c2 (most-free-capacity)", "mid→c2 (most-free-capacity)",
					"low→c2 (most-free-capacity)", "low2→c2 (most-free-capacity)",
				},
				Excluded: []Excluded{{"c1", ReasonFailedHost}},
				Fits:     true,
			},
		},
		{
			"disabled, down and forced-down hosts are excluded with their reason",
			config.RecoveryAuto,
			[]Host{
				host("c1", 0, 0, 0),
				{Name: "c2", Enabled: false, Up: true, FreeVCPUs: 99, FreeRAMMB: 99999, FreeDiskGB: 999},
				{Name: "c3", Enabled: true, Up: false, FreeVCPUs: 99, FreeRAMMB: 99999, FreeDiskGB: 999},
				{Name: "c4", Enabled: true, Up: true, ForcedDown: true, FreeVCPUs: 99, FreeRAMMB: 99999, FreeDiskGB: 999},
				host("c5", 4, 8192, 100),
			},
			vms(1, 1, 1024, 10),
			summary{
				Moves:    []string{"vm1→c5 (most-free-capacity)"},
				Excluded: []Excluded{{"c1", ReasonFailedHost}, {"c2", ReasonDisabled}, {"c3", ReasonDown}, {"c4", ReasonForcedDown}},
				Fits:     true,
			},
		},
		{
			"auto never uses reserved hosts, and names the VMs that do not fit",
			config.RecoveryAuto,
			[]Host{host("c1", 0, 0, 0), host("c2", 4, 8192, 100), reserve("r1", 64, 262144, 1000)},
			[]VM{vm("a", 2, 4096, 10, 0), vm("b", 2, 4096, 10, 0), vm("c", 2, 4096, 10, 0), vm("huge", 32, 131072, 10, 0)},
			summary{
				Moves:    []string{"a→c2 (most-free-capacity)", "b→c2 (most-free-capacity)"},
				Unplaced: []string{"huge (no-room)", "c (no-room)"},
				Excluded: []Excluded{{"c1", ReasonFailedHost}, {"r1", ReasonNotUsedByMethod}},
			},
		},
		{
			"reserved_host fills the first reserved host before taking the next into use",
			config.RecoveryReservedHost,
			[]Host{host("c1", 0, 0, 0), host("c2", 64, 262144, 1000), reserve("r1", 4, 8192, 100), reserve("r2", 4, 8192, 100), reserve("r3", 4, 8192, 100)},
			vms(3, 2, 4096, 10),
			summary{
				Moves:    []string{"vm1→r1 (reserved-host)", "vm2→r1 (reserved-host)", "vm3→r2 (reserved-host)"},
				Reserved: []string{"r1", "r2"},
				Excluded: []Excluded{{"c1", ReasonFailedHost}, {"c2", ReasonNotUsedByMethod}},
				Fits:     true,
			},
		},
		{
			"reserved_host puts a small VM back on an already used reserved host with room",
			config.RecoveryReservedHost,
			[]Host{host("c1", 0, 0, 0), reserve("r1", 4, 8192, 100), reserve("r2", 8, 16384, 100)},
			[]VM{vm("big", 4, 8192, 10, 2), vm("mid", 6, 8192, 10, 1), vm("tiny", 1, 1024, 1, 0)},
			summary{
				Moves:    []string{"big→r1 (reserved-host)", "mid→r2 (reserved-host)", "tiny→r2 (reserved-host)"},
				Reserved: []string{"r1", "r2"},
				Excluded: []Excluded{{"c1", ReasonFailedHost}},
				Fits:     true,
			},
		},
		{
			"a reserved host that is down is not taken into use",
			config.RecoveryReservedHost,
			[]Host{host("c1", 0, 0, 0), {Name: "r1", Reserved: true, FreeVCPUs: 64, FreeRAMMB: 262144, FreeDiskGB: 1000}, reserve("r2", 8, 16384, 100)},
			vms(1, 2, 4096, 10),
			summary{
				Moves:    []string{"vm1→r2 (reserved-host)"},
				Reserved: []string{"r2"},
				Excluded: []Excluded{{"c1", ReasonFailedHost}, {"r1", ReasonDown}},
				Fits:     true,
			},
		},
		{
			"a reserved host an operator disabled for another reason is never taken into use, even with the most room",
			config.RecoveryReservedHost,
			[]Host{host("c1", 0, 0, 0), withheld(reserve("r1", 64, 262144, 1000)), reserve("r2", 8, 16384, 100)},
			vms(1, 2, 4096, 10),
			summary{
				Moves:    []string{"vm1→r2 (reserved-host)"},
				Reserved: []string{"r2"},
				Excluded: []Excluded{{"c1", ReasonFailedHost}, {"r1", ReasonWithheld}},
				Fits:     true,
			},
		},
		{
			"a host in maintenance is never a target, even enabled and with the most room",
			config.RecoveryAuto,
			[]Host{host("c1", 0, 0, 0), inMaintenance(host("c2", 64, 262144, 1000)), host("c3", 8, 16384, 100)},
			vms(1, 2, 4096, 10),
			summary{
				Moves:    []string{"vm1→c3 (most-free-capacity)"},
				Excluded: []Excluded{{"c1", ReasonFailedHost}, {"c2", ReasonMaintenance}},
				Fits:     true,
			},
		},
		{
			"rh_priority with its only reserved host withheld falls back to the ordinary hosts",
			config.RecoveryRHPriority,
			[]Host{host("c1", 0, 0, 0), host("c2", 8, 16384, 100), withheld(reserve("r1", 64, 262144, 1000))},
			vms(1, 2, 4096, 10),
			summary{
				Moves:    []string{"vm1→c2 (fallback-to-auto)"},
				Excluded: []Excluded{{"c1", ReasonFailedHost}, {"r1", ReasonWithheld}},
				Fits:     true,
			},
		},
		{
			"auto_priority spreads over ordinary hosts (disk counts too) and sends the rest to a reserved host",
			config.RecoveryAutoPriority,
			[]Host{host("c1", 0, 0, 0), host("c2", 4, 8192, 100), host("c3", 2, 4096, 100), reserve("r1", 16, 32768, 500)},
			vms(4, 2, 4096, 10),
			summary{
				Moves:    []string{"vm1→c2 (most-free-capacity)", "vm2→c3 (most-free-capacity)", "vm3→c2 (most-free-capacity)", "vm4→r1 (fallback-to-reserved-host)"},
				Reserved: []string{"r1"},
				Excluded: []Excluded{{"c1", ReasonFailedHost}},
				Fits:     true,
			},
		},
		{
			"rh_priority uses reserved hosts first and spreads the rest over ordinary hosts",
			config.RecoveryRHPriority,
			[]Host{host("c1", 0, 0, 0), host("c2", 16, 32768, 100), host("c3", 16, 32768, 100), reserve("r1", 4, 8192, 100)},
			vms(4, 2, 4096, 10),
			summary{
				Moves:    []string{"vm1→r1 (reserved-host)", "vm2→r1 (reserved-host)", "vm3→c2 (fallback-to-auto)", "vm4→c3 (fallback-to-auto)"},
				Reserved: []string{"r1"},
				Excluded: []Excluded{{"c1", ReasonFailedHost}},
				Fits:     true,
			},
		},
		{
			"a reserved host taken into use earlier (no longer reserved) is an ordinary host",
			config.RecoveryAuto,
			[]Host{host("c1", 0, 0, 0), host("r1", 8, 16384, 100)},
			vms(1, 2, 4096, 10),
			summary{
				Moves:    []string{"vm1→r1 (most-free-capacity)"},
				Excluded: []Excluded{{"c1", ReasonFailedHost}},
				Fits:     true,
			},
		},
		{
			"VMs that need nothing (sizes 0) fit even on full hosts",
			config.RecoveryAuto,
			[]Host{host("c1", 0, 0, 0), host("c2", 0, 0, 0)},
			vms(2, 0, 0, 0),
			summary{
				Moves:    []string{"vm1→c2 (most-free-capacity)", "vm2→c2 (most-free-capacity)"},
				Excluded: []Excluded{{"c1", ReasonFailedHost}},
				Fits:     true,
			},
		},
		{
			"no VMs gives an empty plan that fits",
			config.RecoveryRHPriority,
			[]Host{host("c1", 0, 0, 0), reserve("r1", 1, 1, 1)},
			nil,
			summary{Excluded: []Excluded{{"c1", ReasonFailedHost}}, Fits: true},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := Make(Input{FailedHost: "c1", Segment: Segment{Name: "seg", RecoveryMethod: tt.method, Hosts: tt.hosts}, VMs: tt.vms})
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, summarize(p)); diff != "" {
				t.Errorf("plan (-want +got):\n%s", diff)
			}
		})
	}
}

func TestMakeExplainsEveryChoice(t *testing.T) {
	p, err := Make(Input{
		FailedHost: "c1",
		Segment: Segment{Name: "rack-a", RecoveryMethod: config.RecoveryAutoPriority, Hosts: []Host{
			host("c1", 0, 0, 0), host("c2", 4, 8192, 100), {Name: "c3", Up: true, FreeVCPUs: 64}, reserve("r1", 8, 8192, 100),
		}},
		VMs: []VM{vm("a", 4, 8192, 10, 1), vm("b", 4, 8192, 10, 0), vm("too-big", 16, 65536, 10, 0)},
	})
	if err != nil {
		t.Fatal(err)
	}
	want := &Plan{
		Moves: []Move{
			{VM: vm("a", 4, 8192, 10, 1), Target: "c2", Reason: ReasonMostFree, Detail: "c2 had 4 vCPU, 8192 MB RAM, 100 GB disk free"},
			{VM: vm("b", 4, 8192, 10, 0), Target: "r1", Reason: ReasonFallbackReserved, Detail: "reserved host r1 had 8 vCPU, 8192 MB RAM, 100 GB disk free; taken into use"},
		},
		ReservedHostsUsed: []string{"r1"},
		Unplaced: []Unplaced{{
			VM: vm("too-big", 16, 65536, 10, 0), Reason: ReasonNoRoom,
			Detail: "needs 16 vCPU, 65536 MB RAM, 10 GB disk; the largest free amounts on eligible hosts are 8 vCPU, 8192 MB RAM, 100 GB disk",
		}},
		Excluded: []Excluded{{"c1", ReasonFailedHost}, {"c3", ReasonDisabled}},
		Preflight: Preflight{Warnings: []string{
			"segment rack-a cannot take 1 of the 3 VMs of c1 (recovery method auto_priority): too-big",
			"host c3 is not a target: disabled",
		}},
	}
	if diff := cmp.Diff(want, p); diff != "" {
		t.Errorf("plan (-want +got):\n%s", diff)
	}
}

func TestMakeWithNoEligibleHostSaysSo(t *testing.T) {
	p, err := Make(Input{
		FailedHost: "c1",
		Segment:    Segment{Name: "s", RecoveryMethod: config.RecoveryReservedHost, Hosts: []Host{host("c1", 0, 0, 0), host("c2", 8, 8192, 10)}},
		VMs:        vms(1, 1, 1, 1),
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []Unplaced{{VM: vms(1, 1, 1, 1)[0], Reason: ReasonNoRoom, Detail: "needs 1 vCPU, 1 MB RAM, 1 GB disk; no host of the segment is eligible under reserved_host"}}
	if diff := cmp.Diff(want, p.Unplaced); diff != "" {
		t.Errorf("unplaced (-want +got):\n%s", diff)
	}
}

func TestMakeDoesNotChangeItsInput(t *testing.T) {
	in := Input{
		FailedHost: "c1",
		Segment:    Segment{Name: "s", RecoveryMethod: config.RecoveryAuto, Hosts: []Host{host("c1", 0, 0, 0), host("c2", 8, 8192, 10)}},
		VMs:        []VM{vm("a", 1, 1, 1, 0), vm("b", 1, 1, 1, 9)},
	}
	before := fmt.Sprintf("%+v", in)
	if _, err := Make(in); err != nil {
		t.Fatal(err)
	}
	if after := fmt.Sprintf("%+v", in); after != before {
		t.Errorf("input changed:\nbefore %s\nafter  %s", before, after)
	}
}

func TestMakeRejectsInconsistentInput(t *testing.T) {
	ok := func() Input {
		return Input{
			FailedHost: "c1",
			Segment:    Segment{Name: "s", RecoveryMethod: config.RecoveryAuto, Hosts: []Host{host("c1", 0, 0, 0), host("c2", 8, 8192, 10)}},
			VMs:        vms(2, 1, 1, 1),
		}
	}
	tests := []struct {
		name   string
		change func(*Input)
		want   string
	}{
		{"an unknown recovery method", func(in *Input) { in.Segment.RecoveryMethod = "fast" }, `segment s: unknown recovery method "fast"`},
		{"a failed host outside the segment", func(in *Input) { in.FailedHost = "x9" }, "failed host x9 is not in segment s"},
		{"no failed host", func(in *Input) { in.FailedHost = "" }, "no failed host"},
		{"a host listed twice", func(in *Input) { in.Segment.Hosts = append(in.Segment.Hosts, host("c2", 1, 1, 1)) }, "host c2 is listed twice"},
		{"a VM listed twice", func(in *Input) { in.VMs[1].ID = "vm1" }, "VM vm1 is listed twice"},
		{"a VM without ID", func(in *Input) { in.VMs[0].ID = "" }, "a VM has no ID"},
		{"a negative size", func(in *Input) { in.VMs[0].RAMMB = -1 }, "VM vm1 has a negative size"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := ok()
			tt.change(&in)
			_, err := Make(in)
			if !errors.Is(err, ErrInput) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %v, want ErrInput mentioning %q", err, tt.want)
			}
		})
	}
}

// TestAutoSpreadsEvenlyAtScale checks the point of choosing targets ourselves: 100 equal VMs
// over 4 equal hosts land 25 on each.
func TestAutoSpreadsEvenlyAtScale(t *testing.T) {
	hosts := []Host{host("c0", 0, 0, 0)}
	for i := 1; i <= 4; i++ {
		hosts = append(hosts, host(fmt.Sprintf("c%d", i), 128, 524288, 4000))
	}
	p, err := Make(Input{FailedHost: "c0", Segment: Segment{Name: "s", RecoveryMethod: config.RecoveryAuto, Hosts: hosts}, VMs: vms(100, 1, 2048, 20)})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]int{}
	for _, m := range p.Moves {
		got[m.Target]++
	}
	if diff := cmp.Diff(map[string]int{"c1": 25, "c2": 25, "c3": 25, "c4": 25}, got); diff != "" {
		t.Errorf("VMs per host (-want +got):\n%s", diff)
	}
}

// BenchmarkMake plans 1000 VMs of mixed sizes and priorities over a 50-host segment.
func BenchmarkMake(b *testing.B) {
	for _, method := range []config.RecoveryMethod{config.RecoveryAuto, config.RecoveryRHPriority} {
		b.Run(string(method), func(b *testing.B) {
			hosts := make([]Host, 50)
			for i := range hosts {
				hosts[i] = host(fmt.Sprintf("compute-%02d", i), 96+int64(i%4)*16, 393216+int64(i%5)*65536, 2000)
			}
			hosts[0] = host("compute-00", 0, 0, 0)
			for i := 45; i < 50; i++ {
				hosts[i].Reserved, hosts[i].Enabled = true, false
			}
			in := Input{FailedHost: "compute-00", Segment: Segment{Name: "s", RecoveryMethod: method, Hosts: hosts}}
			sizes := [][3]int64{{1, 1024, 10}, {2, 4096, 20}, {4, 8192, 40}, {8, 16384, 80}}
			for i := range 1000 {
				s := sizes[i%len(sizes)]
				in.VMs = append(in.VMs, vm(fmt.Sprintf("vm-%04d", i), s[0], s[1], s[2], i%3))
			}
			b.ReportAllocs()
			for b.Loop() {
				p, err := Make(in)
				if err != nil || len(p.Moves) != 1000 {
					b.Fatalf("plan: %v, %d moves", err, len(p.Moves))
				}
			}
		})
	}
}
