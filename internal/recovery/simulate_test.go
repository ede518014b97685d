package recovery

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/computeha/computeha/crm"
	"github.com/computeha/computeha/internal/reserve"
)

func TestASimulationPredictsTheRecoveryAndChangesNothing(t *testing.T) {
	bubble(t, func(t *testing.T) {
		w := newWorld(t, "rh_priority", "cmp4")
		w.roomy("cmp4", 2) // room for two of the four: the rest go by auto
		vms := w.boot("cmp1", ha(4)...)
		w.boot("cmp1", vm{name: "plain", image: "img"})
		src := NewNames(w.cfg, nil).ByNode("cmp1")
		before := len(w.nova.Calls())
		sims, err := w.eng.Simulate(context.Background(), []Host{src})
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range w.nova.Calls()[before:] {
			if m := strings.Fields(c)[0]; !slices.Contains([]string{"FindComputeService", "ServersOnHost", "Migrations", "ServerGroups", "Hypervisors", "Aggregates"}, m) {
				t.Errorf("the simulation asked Nova for %s", c)
			}
		}
		if v, _ := w.cluster.Attribute(context.Background(), "cmp4", reserve.UsedAttribute, crm.Permanent); v != "" {
			t.Error("the simulation took the reserved host into use")
		}
		if len(w.rec.Events()) > 0 {
			t.Errorf("the simulation recorded %v", w.rec.Events())
		}
		sim := sims[0]
		if sim.Segment != "seg-a" || sim.Method != "rh_priority" || !cmp.Equal(sim.ReservedHostsUsed, []string{"cmp4"}) {
			t.Errorf("simulation %+v", sim)
		}
		predicted := map[string]string{}
		for _, v := range sim.VMs {
			switch v.Name {
			case "plain":
				if v.Outcome != "left" || v.Why.Code != CodeNoHA {
					t.Errorf("plain: %+v", v)
				}
			default:
				if v.Outcome != "move" || v.Method != Evacuate || v.Target == "" {
					t.Errorf("%s: %+v", v.Name, v)
				}
				predicted[v.ID] = v.Target
			}
		}
		// Then the real failure: the same targets.
		w.fenceCmp1()
		rep := w.run("cmp1", HostFenced)
		for _, s := range vms {
			if got := w.server(s.ID).Host; got != predicted[s.ID] {
				t.Errorf("%s went to %s, the simulation said %s", s.Name, got, predicted[s.ID])
			}
		}
		if n := rep.Count(Recovered); n != 4 {
			t.Errorf("%d recovered", n)
		}
	})
}

func TestSimulatingTwoHostsTakesEachForDownInTheOthersPlan(t *testing.T) {
	bubble(t, func(t *testing.T) {
		w := newWorld(t, "auto", "")
		w.boot("cmp1", ha(3)...)
		w.boot("cmp2", ha(3)...)
		names := NewNames(w.cfg, nil)
		sims, err := w.eng.Simulate(context.Background(), []Host{names.ByNode("cmp1"), names.ByNode("cmp2")})
		if err != nil {
			t.Fatal(err)
		}
		for _, sim := range sims {
			for _, v := range sim.VMs {
				if v.Target == "cmp1" || v.Target == "cmp2" {
					t.Errorf("%s of %s planned onto %s, which fails too", v.Name, sim.Source.Node, v.Target)
				}
			}
		}
	})
}
