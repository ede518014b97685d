package evacd

import (
	"context"
	"testing"
	"time"

	"github.com/computeha/computeha/internal/evacstate"
	"github.com/computeha/computeha/internal/history"
	"github.com/computeha/computeha/internal/recovery"
)

// cmp1's VMs are sent to cmp2, dead but still seen up; cmp2 then fails, and they are recovered
// on cmp3. When cmp2 comes back, its nova-compute runs the evacuations left in its queue, and
// Nova leaves the VMs in vm_state error though they run on cmp3: the daemon, watching since
// the recovery, resets them to active and records why.
func TestVMsNovaSetErrorForAnEvacuationLeftInAQueueAreResetOnceTheHostIsBack(t *testing.T) {
	bubble(t, func(t *testing.T) {
		ctx := context.Background()
		w := newWorld(t, "auto", "")
		w.boot("cmp1", 2, true)
		for _, h := range []string{"cmp3", "cmp4"} {
			s, _ := w.nova.FindComputeService(ctx, h)
			_, _ = w.nova.DisableService(ctx, s.ID, "operator: busy")
		}
		w.nova.KillCompute("cmp2") // dead, still seen up
		events, stop := w.runWithEvents()
		defer stop()
		// cmp1 fails; while its VMs are sent to cmp2, cmp2 fails too (fenced meanwhile, so
		// its wait ends at once) and an operator lets cmp3 take VMs.
		go func() {
			time.Sleep(2 * time.Second)
			s, _ := w.nova.FindComputeService(ctx, "cmp3")
			_, _ = w.nova.EnableService(ctx, s.ID)
			w.fenceAndWait(events, "cmp2")
		}()
		w.fenceAndWait(events, "cmp1")
		for range 300 {
			if phase(w.cluster, "cmp1") == evacstate.Done {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		if p := phase(w.cluster, "cmp1"); p != evacstate.Done {
			t.Fatalf("cmp1 is %q, want done", p)
		}
		// cmp2 back: its nova-compute starts and runs its queue. No join is reported (a remote
		// node just fenced may read online for a moment, and its return then adds nothing).
		time.Sleep(10 * time.Second)
		w.nova.RestartCompute("cmp2")
		for id := range w.servers {
			if s := w.hostOf(t, id); s.VMState != "error" {
				t.Fatalf("%s is %s (%s) once cmp2 ran its queue, want vm_state error (as Nova leaves it)", id, s.Status, s.VMState)
			}
		}
		time.Sleep(2 * recovery.LeftoverPoll)
		for id := range w.servers {
			if s := w.hostOf(t, id); s.Status != "ACTIVE" || s.Host != "cmp3" || s.TaskState != "" {
				t.Errorf("%s is %s on %s (task %q), want ACTIVE on cmp3", id, s.Status, s.Host, s.TaskState)
			}
		}
		evs, err := w.store.Query(ctx, history.Filter{Host: "cmp2", Kind: history.KindDecision})
		if err != nil {
			t.Fatal(err)
		}
		reset := 0
		for _, e := range evs {
			if e.Reason.Code == recovery.ReasonLeftoverRebuild {
				reset++
			}
		}
		if reset != len(w.servers) {
			t.Errorf("%d leftover-rebuild decisions about cmp2, want %d", reset, len(w.servers))
		}
	})
}
