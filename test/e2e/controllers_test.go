//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/computeha/computeha/crm"
	"github.com/computeha/computeha/internal/plan"
	"github.com/computeha/computeha/test/lab"
)

// controllers are the lab's controllers, by name.
func (e *Env) controllers(ctx context.Context) ([]string, error) {
	nodes, err := e.Lab.Nodes(ctx)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, n := range nodes {
		if n.Kind == lab.Controller {
			out = append(out, n.Name)
		}
	}
	return out, nil
}

// observeFromOther makes a controller other than failing the observer.
func (e *Env) observeFromOther(ctx context.Context, failing string) error {
	ctls, err := e.controllers(ctx)
	if err != nil {
		return err
	}
	i := slices.IndexFunc(ctls, func(c string) bool { return c != failing })
	if i < 0 {
		return fmt.Errorf("no controller but %s", failing)
	}
	return e.ObserveFrom(ctx, ctls[i])
}

// waitMember waits (limit at most) until the observer shows node online and clean.
func (e *Env) waitMember(ctx context.Context, node string, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	var last string
	for {
		st, err := e.CRM.Status(ctx)
		if err == nil {
			i := slices.IndexFunc(st.Nodes, func(n crm.Node) bool { return n.Name == node })
			if i >= 0 && st.Nodes[i].Online && !st.Nodes[i].Unclean {
				return nil
			}
			if i >= 0 {
				last = fmt.Sprintf("online=%v unclean=%v", st.Nodes[i].Online, st.Nodes[i].Unclean)
			}
		} else {
			last = err.Error()
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not back in the cluster within %s: %s", node, limit, last)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// observeBack makes ctl1 the observer again once it is a member (limit at most); until then
// the survivor stays the observer.
func (e *Env) observeBack(ctx context.Context, limit time.Duration) error {
	if e.Observer() == "ctl1" {
		return nil
	}
	if err := e.waitMember(ctx, "ctl1", limit); err != nil {
		return fmt.Errorf("observing from %s still: %w", e.Observer(), err)
	}
	return e.ObserveFrom(ctx, "ctl1")
}

// observeFromAnother makes a controller other than failing the observer for the rest of the
// scenario, and ctl1 again when it ends (ctl1 is back by then, or the scenario failed).
func (e *Env) observeFromAnother(ctx context.Context, t *testing.T, failing string) {
	t.Helper()
	if err := e.observeFromOther(ctx, failing); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := e.observeBack(ctx, 3*time.Minute); err != nil {
			t.Error(err)
		}
	})
}

// moveDaemon has Pacemaker move the evacuator to node (within a minute), then drops the
// constraint the move needs: its stickiness keeps it there.
func (e *Env) moveDaemon(ctx context.Context, t *testing.T, node string) {
	t.Helper()
	if at, _, err := e.EvacuatorPID(ctx); err == nil && at == node {
		return
	}
	run := func(args ...string) {
		out, errOut, code, err := e.Lab.Exec(ctx, e.Observer(), args...)
		if err != nil || code != 0 {
			t.Fatalf("%s: exit %d, %v: %s%s", strings.Join(args, " "), code, err, out, errOut)
		}
	}
	// --force bans it from where it runs too: its stickiness would otherwise keep it there.
	run("crm_resource", "--move", "--force", "--resource", "evacuator", "--node", node)
	cleared := false
	clearMove := func() {
		if !cleared {
			cleared = true
			run("crm_resource", "--clear", "--resource", "evacuator")
		}
	}
	t.Cleanup(clearMove)
	deadline := time.Now().Add(time.Minute)
	for {
		if at, _, err := e.EvacuatorPID(ctx); err == nil && at == node {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the evacuator did not move to %s within a minute", node)
		}
		time.Sleep(500 * time.Millisecond)
	}
	// Its stickiness keeps it there; the constraints would call it back once node returns.
	clearMove()
	t.Logf("the evacuation daemon runs on %s", node)
}

// clearConnectionFailures has Pacemaker forget the failed starts of the computes'
// connections. While a compute is off, Pacemaker tries its connection on each controller in
// turn and records a failure on each; until they expire (the connection's reconnect_interval)
// it cannot move there, so losing the controller it runs on fences the compute as well. A
// scenario starts from a cluster where every connection can move.
func (e *Env) clearConnectionFailures(ctx context.Context, t *testing.T) error {
	t.Helper()
	st, err := e.CRM.Status(ctx)
	if err != nil {
		return err
	}
	cleared := map[string]bool{}
	for _, f := range st.Failures {
		// A compute's connection is named as the compute.
		if !slices.Contains(e.Computes(), f.Resource) || cleared[f.Resource] {
			continue
		}
		cleared[f.Resource] = true
		if out, errOut, code, err := e.Lab.Exec(ctx, e.observer, "crm_resource", "--cleanup", "--resource", f.Resource); err != nil || code != 0 {
			return fmt.Errorf("crm_resource --cleanup --resource %s: exit %d, %v: %s%s", f.Resource, code, err, out, errOut)
		}
		t.Logf("cleared the failed %s of %s's connection on %s (and any other)", f.Task, f.Resource, f.Node)
	}
	if len(cleared) == 0 {
		return nil
	}
	if out, _, code, err := e.Lab.Exec(ctx, e.observer, "crm_resource", "--wait", "--timeout=60s"); err != nil || code != 0 {
		return fmt.Errorf("the cluster did not settle within a minute of the cleanup: exit %d, %v: %s", code, err, out)
	}
	if st, err = e.CRM.Status(ctx); err != nil {
		return err
	}
	for _, f := range st.Failures {
		if slices.Contains(e.Computes(), f.Resource) {
			return fmt.Errorf("%s's connection failed again after the cleanup: %s on %s (%s %s)", f.Resource, f.Task, f.Node, f.Status, f.ExitReason)
		}
	}
	return nil
}

// fenceReasons are the schedulers' reasons for fencing node since t0, from the controllers'
// logs (" will be fenced: REASON"), to say why a fencing nobody expected happened.
func (e *Env) fenceReasons(ctx context.Context, node string, t0 time.Time) []string {
	ctls, err := e.controllers(ctx)
	if err != nil {
		return []string{err.Error()}
	}
	seen := map[string]bool{}
	var out []string
	for _, c := range ctls {
		b, err := os.ReadFile(e.fencerLog(c))
		if err != nil {
			out = append(out, err.Error())
			continue
		}
		for line := range strings.Lines(string(b)) {
			_, reason, ok := strings.Cut(line, " node "+node+" will be fenced: ")
			// "Dec 05 09:27:06.667 ctl1 ...": local time, without the year.
			if !ok || len(line) < 15 {
				continue
			}
			at, err := time.ParseInLocation("Jan 02 15:04:05", line[:15], time.Local)
			if err != nil {
				continue
			}
			if at = at.AddDate(t0.Year(), 0, 0); at.Before(t0.Truncate(time.Second)) {
				continue
			}
			reason = strings.TrimSpace(reason)
			if !seen[reason] {
				seen[reason] = true
				out = append(out, fmt.Sprintf("%s (%s's scheduler, %s)", reason, c, line[:15]))
			}
		}
	}
	if len(out) == 0 {
		return []string{"none logged"}
	}
	return out
}

// othersNotFenced fails t for each compute but failed fenced since t0.
func (e *Env) othersNotFenced(ctx context.Context, t *testing.T, failed string, t0 time.Time) {
	t.Helper()
	for _, h := range e.Computes() {
		if h == failed {
			continue
		}
		if f, err := e.fencedSince(ctx, h, t0); err != nil {
			t.Error(err)
		} else if !f.IsZero() {
			t.Errorf("%s was fenced at %s, though only %s and a controller failed; the schedulers' reasons: %s",
				h, f, failed, strings.Join(e.fenceReasons(ctx, h, t0), "; "))
		}
	}
}

// dcPoweredOffMidEvacuation: the controller that is the DC and runs the evacuation daemon loses
// power while a compute's VMs are being rebuilt. The two controllers left keep quorum, fence it
// through its BMC, start the daemon on one of them, and that daemon resumes the recovery from
// its mark: every HA VM ACTIVE elsewhere, each rebuilt once, nothing before the compute's
// fencing, no other compute fenced. The controller comes back on its own (its fencing is a
// reboot).
func dcPoweredOffMidEvacuation(ctx context.Context, t *testing.T, env *Env) {
	fresh(ctx, t, env)
	env.quiet(ctx, t)
	dc, err := dcOf(ctx, env)
	if err != nil {
		t.Fatal(err)
	}
	env.observeFromAnother(ctx, t, dc)
	env.moveDaemon(ctx, t, dc)
	const h = "cmp2"
	vms, err := env.Boot(ctx, h, 6, 0)
	if err != nil {
		t.Fatal(err)
	}
	var off time.Time
	env.OnEvacStart = func() {
		off = time.Now()
		if _, err := env.Lab.Power(ctx, dc, "off"); err != nil {
			t.Errorf("powering %s off: %v", dc, err)
			return
		}
		t.Logf("powered off %s, the DC, where the evacuation daemon runs, mid-evacuation", dc)
	}
	defer func() { env.OnEvacStart = nil }()
	powerLossAndBack(ctx, t, env, h, vms)
	if off.IsZero() {
		t.Fatalf("the evacuation was never seen rebuilding a VM: %s was not powered off", dc)
	}
	if f, err := env.fencedSince(ctx, dc, off); err != nil {
		t.Error(err)
	} else if f.IsZero() {
		t.Errorf("%s, powered off, was not fenced by the controllers left", dc)
	} else {
		t.Logf("%s fenced %s after its power-off", dc, f.Sub(off).Round(time.Millisecond))
	}
	if node, _, err := env.EvacuatorPID(ctx); err != nil {
		t.Error(err)
	} else if node == dc {
		t.Errorf("the evacuation daemon runs on %s, which was off", dc)
	}
	evs, err := env.History(ctx, h, "decision")
	if err != nil {
		t.Fatal(err)
	}
	// "resume" from the running mark; "fencing-confirmed" if the power went before the mark
	// was written (the recovery then starts again, and Nova's records keep it from moving a VM
	// twice).
	resumed := slices.ContainsFunc(evs, func(ev HistoryEvent) bool {
		at, err := time.Parse(time.RFC3339Nano, ev.Time)
		return err == nil && !at.Before(off) && ev.Actor != dc && (ev.ReasonCode == "resume" || ev.ReasonCode == "fencing-confirmed")
	})
	if !resumed {
		t.Errorf("no daemon on another controller recorded taking over the recovery of %s", h)
	}
	env.othersNotFenced(ctx, t, h, off)
	env.waitBackInCluster(ctx, t, dc, 3*time.Minute)
}

// partitionDuringComputeFailure: a compute loses power while the controller running the
// evacuation daemon is cut from the two others (2|1). Only the quorate side acts: it fences
// the lone controller and the compute, starts the daemon, and recovers the compute's HA VMs
// once each; the lone controller's daemon recovers nothing and records why (its partition has
// no quorum). The lone controller's fencing is delayed 10 s (pcmk_delay_base, as operators set
// against fencing races) so that its side lives long enough to be seen doing nothing.
func partitionDuringComputeFailure(ctx context.Context, t *testing.T, env *Env) {
	fresh(ctx, t, env)
	env.quiet(ctx, t)
	lone, _, err := env.EvacuatorPID(ctx)
	if err != nil {
		t.Fatal(err)
	}
	env.observeFromAnother(ctx, t, lone)
	device := "fence-" + lone
	if err := env.pcs(ctx, "stonith", "update", device, "pcmk_delay_base=10s"); err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := env.pcs(ctx, "stonith", "update", device, "pcmk_delay_base="); err != nil {
			t.Errorf("removing the fencing delay of %s: %v", lone, err)
		}
	}()
	const h = "cmp3"
	vms, err := env.Boot(ctx, h, 4, 1)
	if err != nil {
		t.Fatal(err)
	}
	tl, err := env.Recovery(ctx, []string{h}, vms, 5*time.Minute, testLog{t}, func(say func(string, ...any)) error {
		if err := env.Lab.Cut(ctx, lone, "mgmt"); err != nil {
			return err
		}
		// Power changes leave a cut as it is (its fencing reboots it into the same cut).
		t.Cleanup(func() {
			if err := env.Lab.Heal(ctx, lone, "mgmt"); err != nil {
				t.Errorf("healing %s's mgmt link: %v", lone, err)
			}
		})
		if _, err := env.Lab.Power(ctx, h, "off"); err != nil {
			return err
		}
		say("%s (running the daemon) cut from the other controllers, and %s powered off", lone, h)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	checkTimeline(t, tl, h)
	if f, err := env.fencedSince(ctx, lone, tl.Fault); err != nil {
		t.Error(err)
	} else if f.IsZero() {
		t.Errorf("%s, alone in its partition, was not fenced by the quorate side", lone)
	}
	if node, _, err := env.EvacuatorPID(ctx); err != nil {
		t.Error(err)
	} else if node == lone {
		t.Errorf("the evacuation daemon runs on %s, which was alone", lone)
	}
	// What the lone side's daemon recorded from the cut on: why it did nothing, and nothing
	// that acts.
	evs, err := env.History(ctx, "", "")
	if err != nil {
		t.Fatal(err)
	}
	said := false
	for _, ev := range evs {
		at, err := time.Parse(time.RFC3339Nano, ev.Time)
		if err != nil || at.Before(tl.Fault) || ev.Actor != lone {
			continue
		}
		switch {
		case ev.Kind == "guard" && ev.ReasonCode == string(plan.ReasonNoQuorum):
			said = true
			t.Logf("%s's daemon: %s", lone, ev.Summary)
		case ev.Kind == "guard":
			// Held back by a guard: not acting, whatever the guard.
		case ev.Kind == "failure" && ev.ReasonCode == "node-lost":
			// What Pacemaker reported on its side of the cut.
		default:
			t.Errorf("%s's daemon, without quorum, recorded %s %q (%s)", lone, ev.Kind, ev.Summary, ev.ReasonCode)
		}
	}
	if !said {
		t.Errorf("%s's daemon did not record that its partition had no quorum", lone)
	}
	env.othersNotFenced(ctx, t, h, tl.Fault)
	// The partition ends: the controller, rebooted by its fencing, joins once its link is back.
	if err := env.Lab.Heal(ctx, lone, "mgmt"); err != nil {
		t.Error(err)
	}
	env.waitBackInCluster(ctx, t, lone, 3*time.Minute)
	if _, err := env.PowerOn(ctx, h, 4*time.Minute, testLog{t}); err != nil {
		t.Error(err)
	}
}
