package evacd

import (
	"context"
	"testing"
	"time"

	"github.com/computeha/computeha/internal/history"
	"github.com/computeha/computeha/internal/plan"
)

// quorumEvents are the history's guard events about this partition's quorum, by reason code.
func quorumEvents(t *testing.T, w *world) []history.ReasonCode {
	t.Helper()
	var out []history.ReasonCode
	for _, e := range w.events(t, history.KindGuard) {
		if e.Host == "" && (e.Reason.Code == history.ReasonCode(plan.ReasonNoQuorum) || e.Reason.Code == ReasonQuorumRegained) {
			out = append(out, e.Reason.Code)
		}
	}
	return out
}

func TestAPartitionWithoutQuorumIsSaidOnceAndSoIsItsReturn(t *testing.T) {
	bubble(t, func(t *testing.T) {
		w := newWorld(t, "auto", "")
		step := 0
		w.run(t, 2*time.Second, func() bool {
			switch step {
			case 0: // quorate at start: nothing said
				time.Sleep(100 * time.Millisecond)
				w.cluster.SetQuorate(false)
			case 1, 2: // lost, and seen for several reconciliations
				time.Sleep(100 * time.Millisecond)
			case 3:
				w.cluster.SetQuorate(true)
				time.Sleep(100 * time.Millisecond)
			default:
				return true
			}
			step++
			return false
		})
		got := quorumEvents(t, w)
		want := []history.ReasonCode{history.ReasonCode(plan.ReasonNoQuorum), ReasonQuorumRegained}
		if len(got) != len(want) || got[0] != want[0] || got[1] != want[1] {
			t.Errorf("quorum events %v, want %v", got, want)
		}
	})
}

func TestADaemonStoppedForLackOfQuorumSaysSo(t *testing.T) {
	bubble(t, func(t *testing.T) {
		w := newWorld(t, "auto", "")
		// Reconciled at start only: what the daemon says comes from its last look as it stops,
		// as when Pacemaker stops it in a partition that just lost quorum.
		d := New(Options{Config: w.cfg, Cluster: w.cluster, Nova: w.nova, History: w.store, Metrics: w.metrics, Owner: "ctl3", Reconcile: time.Hour})
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- d.Run(ctx, nil) }()
		time.Sleep(time.Second)
		if got := quorumEvents(t, w); len(got) != 0 {
			t.Fatalf("quorum events %v while quorate, want none", got)
		}
		w.cluster.SetQuorate(false)
		cancel()
		<-done
		evs := w.events(t, history.KindGuard)
		if got := quorumEvents(t, w); len(got) != 1 || got[0] != history.ReasonCode(plan.ReasonNoQuorum) {
			t.Fatalf("quorum events %v, want the loss said once", got)
		}
		for _, e := range evs {
			if e.Reason.Code == history.ReasonCode(plan.ReasonNoQuorum) && e.Summary != "this partition (daemon on ctl3) has no quorum: nothing is fenced or recovered from here until it has" {
				t.Errorf("summary %q", e.Summary)
			}
		}
	})
}

func TestADaemonStartedWithoutQuorumSaysSo(t *testing.T) {
	bubble(t, func(t *testing.T) {
		w := newWorld(t, "auto", "")
		w.boot("cmp1", 2, true)
		w.cluster.SetQuorate(false)
		w.fail("cmp1")
		w.run(t, time.Second, func() bool { return false })
		if got := quorumEvents(t, w); len(got) != 1 || got[0] != history.ReasonCode(plan.ReasonNoQuorum) {
			t.Errorf("quorum events %v, want the loss said once", got)
		}
		if n := len(w.evacuations()); n != 0 {
			t.Errorf("%d servers evacuated without quorum", n)
		}
	})
}
