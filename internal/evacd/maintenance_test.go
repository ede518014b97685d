package evacd

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/computeha/computeha/crm"
	"github.com/computeha/computeha/internal/evacstate"
	"github.com/computeha/computeha/internal/history"
	"github.com/computeha/computeha/internal/maintenance"
)

func (w *world) enterMaintenance(t *testing.T, host string, win maintenance.Window) {
	t.Helper()
	h := maintenance.Hosts{Cluster: w.cluster, Nova: w.nova, NovaHost: w.cfg.NovaHost}
	if _, err := h.Enter(context.Background(), host, win); err != nil {
		t.Fatal(err)
	}
}

func TestAHostFencedWhileInMaintenanceRecoversNothingAndSaysSo(t *testing.T) {
	bubble(t, func(t *testing.T) {
		w := newWorld(t, "auto", "")
		w.boot("cmp3", 2, true)
		w.enterMaintenance(t, "cmp3", maintenance.Window{Since: time.Now().UTC(), By: "alice", Reason: "firmware"})
		w.fail("cmp3")
		w.run(t, 10*time.Second, func() bool { return phase(w.cluster, "cmp3") == evacstate.Done })
		if p := phase(w.cluster, "cmp3"); p != evacstate.Done {
			t.Fatalf("cmp3 is %q, want done (nothing to recover, it may come back)", p)
		}
		if n := w.count("Evacuate"); n != 0 {
			t.Errorf("%d evacuations of a host in maintenance", n)
		}
		var said bool
		for _, e := range w.events(t, history.KindMaintenance) {
			said = said || e.Host == "cmp3" && strings.Contains(e.Summary, "fenced while in maintenance: nothing recovered") && strings.Contains(e.Reason.Text, "firmware")
		}
		if !said {
			t.Errorf("the history does not say why nothing was recovered: %+v", w.events(t, history.KindMaintenance))
		}
	})
}

func TestAHostInMaintenanceIsNoTargetOfAnotherRecovery(t *testing.T) {
	bubble(t, func(t *testing.T) {
		w := newWorld(t, "auto", "")
		w.boot("cmp1", 6, true)
		w.enterMaintenance(t, "cmp2", maintenance.Window{Since: time.Now().UTC()})
		// Re-enabled in Nova behind maintenance's back: still no target.
		svc, _ := w.nova.FindComputeService(context.Background(), "cmp2")
		_, _ = w.nova.EnableService(context.Background(), svc.ID)
		w.fail("cmp1")
		w.run(t, 10*time.Second, func() bool { return phase(w.cluster, "cmp1") == evacstate.Done })
		for id := range w.servers {
			if got := w.hostOf(t, id).Host; got == "cmp2" || got == "cmp1" {
				t.Errorf("%s on %s", id, got)
			}
		}
	})
}

func TestTheDaemonEndsAnExpiredMaintenance(t *testing.T) {
	bubble(t, func(t *testing.T) {
		w := newWorld(t, "auto", "")
		now := time.Now().UTC()
		w.enterMaintenance(t, "cmp2", maintenance.Window{Since: now, Until: now.Add(2 * time.Second), Reason: "quick"})
		in := func() bool {
			v, _ := w.cluster.Attribute(context.Background(), "cmp2", maintenance.Attribute, crm.Permanent)
			return v != ""
		}
		w.run(t, time.Second, func() bool { return false })
		if !in() {
			t.Fatal("ended before its until")
		}
		w.run(t, 5*time.Second, func() bool { return !in() })
		if in() {
			t.Fatal("not ended after its until")
		}
		if svc, _ := w.nova.FindComputeService(context.Background(), "cmp2"); !svc.Enabled() {
			t.Errorf("cmp2 not enabled again: %+v", svc)
		}
		var recorded bool
		for _, e := range w.events(t, history.KindMaintenance) {
			recorded = recorded || e.Host == "cmp2" && e.Reason.Code == "maintenance-ended"
		}
		if !recorded {
			t.Error("the end is not in the history")
		}
	})
}
