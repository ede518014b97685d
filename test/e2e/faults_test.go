//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/computeha/computeha/internal/openstack"
)

// checkTimeline fails t for every violation, and when not every HA VM came
// back within the limit.
func checkTimeline(t *testing.T, tl *Timeline, what string) {
	t.Helper()
	t.Log(tl.Summary())
	for _, v := range tl.Violations {
		t.Error(v)
	}
	if tl.AllActive == 0 {
		t.Fatalf("not every HA VM of %s was ACTIVE elsewhere in time", what)
	}
}

// fresh deletes every server, so that a scenario moves only its own VMs.
func fresh(ctx context.Context, t *testing.T, env *Env) {
	t.Helper()
	if err := env.Admin.DeleteAll(ctx); err != nil {
		t.Fatal(err)
	}
}

// novaAPIHungDuringRecovery: nova-api stops answering for 20 s right after
// the first evacuation starts; the daemon waits the outage out and the
// recovery completes, each HA VM evacuated once.
func novaAPIHungDuringRecovery(ctx context.Context, t *testing.T, env *Env) {
	fresh(ctx, t, env)
	const host, outage = "cmp3", 20 * time.Second
	vms, err := env.Boot(ctx, host, 5, 1)
	if err != nil {
		t.Fatal(err)
	}
	var (
		wg          sync.WaitGroup
		markAtThaw  string
		thawed      time.Time
		freezeError error
	)
	env.OnEvacStart = func() {
		fr, err := env.FreezeNovaDaemon("nova-api")
		if err != nil {
			freezeError = err
			return
		}
		t.Logf("froze nova-api (%d processes) for %s", fr.Count(), outage)
		wg.Go(func() {
			time.Sleep(outage)
			if st, err := env.Mark(ctx, host); err == nil {
				markAtThaw = string(st.Phase)
			}
			if err := fr.Thaw(); err != nil {
				t.Errorf("thawing nova-api: %v", err)
			}
			thawed = time.Now()
			t.Logf("thawed nova-api; %s's evacuation was %q", host, markAtThaw)
		})
	}
	defer func() { env.OnEvacStart = nil }()
	tl, err := env.PowerLoss(ctx, host, vms, 5*time.Minute, testLog{t})
	wg.Wait()
	if err != nil {
		t.Fatal(err)
	}
	if freezeError != nil {
		t.Fatalf("freezing nova-api: %v", freezeError)
	}
	checkTimeline(t, tl, host)
	if markAtThaw != "running" {
		t.Errorf("when nova-api came back the evacuation of %s was %q, want running: the outage did not fall inside the recovery", host, markAtThaw)
	}
	t.Logf("all HA VMs ACTIVE %s after nova-api came back", tl.Fault.Add(tl.AllActive).Sub(thawed).Round(10*time.Millisecond))
	if _, err := env.PowerOn(ctx, host, 4*time.Minute, testLog{t}); err != nil {
		t.Error(err)
	}
}

// powerOnMidEvacuation: the failed host is powered on as soon as its first
// VM is being rebuilt elsewhere. It rejoins Pacemaker, but Nova must not
// have it up, unforced or enabled again until the evacuation is done, and
// no VM ends on it.
func powerOnMidEvacuation(ctx context.Context, t *testing.T, env *Env) {
	fresh(ctx, t, env)
	const host = "cmp1"
	vms, err := env.Boot(ctx, host, 6, 1)
	if err != nil {
		t.Fatal(err)
	}
	var (
		wg        sync.WaitGroup
		poweredOn time.Time
		mu        sync.Mutex
		early     []string
		watched   int
	)
	wctx, stop := context.WithCancel(ctx)
	defer stop()
	env.OnEvacStart = func() {
		wg.Go(func() {
			if _, err := env.Lab.Power(ctx, host, "on"); err != nil {
				t.Errorf("powering %s on: %v", host, err)
				return
			}
			poweredOn = time.Now()
			t.Logf("powered %s on mid-evacuation", host)
			// Until the host is back: Nova's view first, then the mark, so
			// that a service let back is always seen with the mark of that
			// moment or a later one.
			for wctx.Err() == nil {
				let := env.letBack(wctx, host)
				st, err := env.Mark(wctx, host)
				if err == nil && let != "" && st.Blocking() {
					mu.Lock()
					early = append(early, fmt.Sprintf("%s while the evacuation is %s", let, st.Phase))
					mu.Unlock()
				}
				if err == nil && let != "" && !st.Blocking() {
					return
				}
				watched++
				time.Sleep(250 * time.Millisecond)
			}
		})
	}
	defer func() { env.OnEvacStart = nil }()
	tl, err := env.PowerLoss(ctx, host, vms, 5*time.Minute, testLog{t})
	if err != nil {
		t.Fatal(err)
	}
	checkTimeline(t, tl, host)
	if poweredOn.IsZero() {
		wg.Wait()
		t.Fatal("the host was never powered on")
	}
	if _, err := env.WaitBack(ctx, host, poweredOn, 4*time.Minute, testLog{t}); err != nil {
		t.Error(err)
	}
	stop()
	wg.Wait()
	t.Logf("watched %s's state in Nova and Pacemaker %d times after power-on", host, watched)
	for _, e := range early {
		t.Errorf("%s was let back too early: %s", host, e)
	}
	for _, v := range vms {
		s, err := env.Nova.Server(ctx, v.ID)
		switch {
		case err != nil:
			t.Error(err)
		case v.HA && s.Host == host:
			t.Errorf("HA VM %s is on %s again after it came back", v.Name, host)
		}
	}
}

// letBack says how Nova or Pacemaker let host back into service, or "".
func (e *Env) letBack(ctx context.Context, host string) string {
	var why []string
	if s, err := e.Nova.FindComputeService(ctx, host); err == nil {
		if s.Enabled() {
			why = append(why, "its service is enabled in Nova")
		}
		if !s.ForcedDown {
			why = append(why, "its service is no longer forced down")
		}
		if s.Up() {
			why = append(why, "Nova has it up")
		}
	}
	// The process itself, through the pid file the nova-compute agent
	// keeps (pid and start time) in the host's private /run: crm_mon may
	// still show the clone started there from before the power loss.
	const running = `for f in /run/resource-agents/*nova-compute*.pid; do
	[ -r "$f" ] || continue
	read -r pid start < "$f" || continue
	[ "$(cut -d' ' -f22 /proc/$pid/stat 2>/dev/null)" = "$start" ] && echo running
done; true`
	if out, _, code, err := e.Lab.Exec(ctx, host, "sh", "-c", running); err == nil && code == 0 && strings.Contains(out, "running") {
		why = append(why, "nova-compute runs there")
	}
	return strings.Join(why, ", ")
}

// twoHostsTogether: two of the three computes lose power at once; every HA
// VM of both is recovered onto the one left.
func twoHostsTogether(ctx context.Context, t *testing.T, env *Env) {
	fresh(ctx, t, env)
	hosts := []string{"cmp2", "cmp3"}
	var vms []VM
	for i, h := range hosts {
		v, err := env.Boot(ctx, h, 3, 1-i)
		vms = append(vms, v...)
		if err != nil {
			t.Fatal(err)
		}
	}
	tl, err := env.PowerLossHosts(ctx, hosts, vms, 5*time.Minute, testLog{t})
	if err != nil {
		t.Fatal(err)
	}
	checkTimeline(t, tl, strings.Join(hosts, " and "))
	for name, where := range tl.Where {
		if where != "cmp1" {
			t.Errorf("%s recovered on %s, want cmp1 (the only host left)", name, where)
		}
	}
	var wg sync.WaitGroup
	for _, h := range hosts {
		wg.Go(func() {
			if _, err := env.PowerOn(ctx, h, 4*time.Minute, testLog{t}); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
}

// targetDiesBeforeRebuilding: cmp3's HA VMs are sent to cmp2, the only host enabled, whose
// nova-compute hangs (the rebuilds wait in its queue; Nova still sees it up), and then cmp2
// loses power. Once cmp2 is being recovered, cmp3's VMs are asked again on cmp1 (enabled
// again by then), well before the confirmation timeout; when cmp2 comes back and its new
// nova-compute reads the rebuilds left in its queue, nothing is built there: each VM is
// rebuilt once, on cmp1.
func targetDiesBeforeRebuilding(ctx context.Context, t *testing.T, env *Env) {
	fresh(ctx, t, env)
	vms, err := env.Boot(ctx, "cmp3", 3, 0)
	if err != nil {
		t.Fatal(err)
	}
	cmp1, err := env.Nova.FindComputeService(ctx, "cmp1")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := env.Nova.DisableService(ctx, cmp1.ID, "operator: e2e, cmp2 the only target"); err != nil {
		t.Fatal(err)
	}
	enabled := false
	defer func() {
		if !enabled {
			env.enable(ctx, t, "cmp1")
		}
	}()
	// nova-compute hangs (SIGSTOP): its process stays, it reads nothing from its queue.
	if out, _, code, err := env.Lab.Exec(ctx, "cmp2", "sh", "-c", "kill -STOP $(cut -d' ' -f1 /run/resource-agents/computeha-nova-compute-*.pid)"); err != nil || code != 0 {
		t.Fatalf("hanging cmp2's nova-compute: exit %d, %v: %s", code, err, out)
	}
	fault := time.Now()
	if _, err := env.Lab.Power(ctx, "cmp3", "off"); err != nil {
		t.Fatal(err)
	}
	// Every VM's evacuation accepted for cmp2, never begun there.
	deadline := time.Now().Add(2 * time.Minute)
	for {
		stuck := 0
		for _, v := range vms {
			s, err := env.Nova.Server(ctx, v.ID)
			if err == nil && s.Host == "cmp3" && s.TaskState == "rebuilding" {
				stuck++
			}
		}
		if stuck == len(vms) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d VMs of cmp3 rebuilding toward cmp2 %s after the power-off", stuck, len(vms), time.Since(fault).Round(time.Second))
		}
		time.Sleep(500 * time.Millisecond)
	}
	t.Logf("cmp3's VMs sent to cmp2, whose nova-compute hangs, %s after cmp3's power-off", time.Since(fault).Round(time.Millisecond))
	lost := time.Now()
	if _, err := env.Lab.Power(ctx, "cmp2", "off"); err != nil {
		t.Fatal(err)
	}
	env.enable(ctx, t, "cmp1")
	enabled = true
	for _, v := range vms {
		env.waitServer(ctx, t, v, func(s openstack.Server) bool { return s.Status == "ACTIVE" && s.Host == "cmp1" && s.TaskState == "" }, 2*time.Minute)
	}
	t.Logf("every VM of cmp3 ACTIVE on cmp1 %s after cmp2's power-off (the confirmation timeout is 3m)", time.Since(lost).Round(time.Millisecond))
	decisions, err := env.History(ctx, "cmp3", "decision")
	if err != nil {
		t.Fatal(err)
	}
	asked := 0
	for _, e := range decisions {
		if at, err := time.Parse(time.RFC3339Nano, e.Time); err == nil && !at.Before(fault) && e.ReasonCode == "target-failed" {
			asked++
		}
	}
	if asked != len(vms) {
		t.Errorf("%d target-failed decisions about cmp3, want one per VM (%d)", asked, len(vms))
	}
	var wg sync.WaitGroup
	for _, h := range []string{"cmp2", "cmp3"} {
		wg.Go(func() {
			if _, err := env.PowerOn(ctx, h, 4*time.Minute, testLog{t}); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	// cmp2's nova-compute, started again, reads the rebuilds left in its queue: each must end
	// without building the VM there, or leaving it anything but ACTIVE on cmp1.
	deadline = time.Now().Add(time.Minute)
	for _, v := range vms {
		for {
			migs, err := env.Nova.Migrations(ctx, openstack.MigrationFilter{ServerID: v.ID, Type: "evacuation"})
			pending := err != nil
			for _, m := range migs {
				if m.DestCompute == "cmp2" && !slices.Contains([]string{"done", "completed", "failed", "error", "cancelled"}, m.Status) {
					pending = true
				}
			}
			if !pending || time.Now().After(deadline) {
				break
			}
			time.Sleep(time.Second)
		}
		// Nova's rebuild there finds the VM no longer rebuilding and builds nothing: the VM
		// stays on cmp1, rebuilt once.
		s, err := env.Nova.Server(ctx, v.ID)
		if err != nil || s.Host != "cmp1" {
			t.Errorf("%s once cmp2 is back: on %q (%v), want cmp1", v.Name, s.Host, err)
		}
		if n, err := env.rebuilds(ctx, v.ID, fault); err != nil || n != 1 {
			t.Errorf("%s rebuilt %d times once cmp2 is back (%v), want once", v.Name, n, err)
		}
	}
	// On the way, Nova leaves the VM in vm_state error with the task "rebuilding" (status
	// REBUILD, for good): the daemon's leftover watch resets it to active and records it.
	// The VM must stay ACTIVE for 10 s: the error may come a moment after the migration's end.
	deadline = time.Now().Add(2 * time.Minute)
	for _, v := range vms {
		broken := false
		var okSince time.Time
		for {
			s, err := env.Nova.Server(ctx, v.ID)
			switch {
			case err == nil && s.Status == "ACTIVE" && s.TaskState == "":
				if okSince.IsZero() {
					okSince = time.Now()
				}
			case err == nil:
				okSince = time.Time{}
				broken = true
			}
			if !okSince.IsZero() && time.Since(okSince) >= 10*time.Second {
				t.Logf("%s ACTIVE on %s once cmp2 is back (left by Nova in error on the way: %v)", v.Name, s.Host, broken)
				break
			}
			if time.Now().After(deadline) {
				t.Errorf("%s once cmp2 is back: %s, vm_state %s, task %q (%v), want ACTIVE with no task", v.Name, s.Status, s.VMState, s.TaskState, err)
				break
			}
			time.Sleep(time.Second)
		}
		repaired := false
		if evs, err := env.History(ctx, "cmp2", "decision"); err != nil {
			t.Error(err)
		} else {
			for _, e := range evs {
				if e.ReasonCode == "leftover-rebuild" && strings.Contains(e.Summary, v.ID) {
					repaired = true
					t.Logf("history: %s", e.Summary)
				}
			}
		}
		if broken && !repaired {
			t.Errorf("%s was left in error by cmp2's queue and is ACTIVE again, but the history has no leftover-rebuild record of it", v.Name)
		}
	}
}

// guardPausesMassFailure: with a guard that one failed host already
// exceeds, the fenced host is not evacuated; the pause and an alert are in
// the history; `computeha guard release` lets the recovery complete.
func guardPausesMassFailure(ctx context.Context, t *testing.T, env *Env) {
	fresh(ctx, t, env)
	const host = "cmp2"
	// One host of three is a third of the segment: more than 0.3.
	if err := env.SetGuard(ctx, Guard{MaxHosts: 3, Window: "10m", MaxSegmentFraction: 0.3}); err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := env.SetGuard(context.Background(), DefaultGuard); err != nil {
			t.Errorf("restoring the guard: %v", err)
		}
	}()
	vms, err := env.Boot(ctx, host, 4, 0)
	if err != nil {
		t.Fatal(err)
	}
	tl, err := env.Recovery(ctx, []string{host}, vms, 5*time.Minute, testLog{t}, func(say func(string, ...any)) error {
		if _, err := env.Lab.Power(ctx, host, "off"); err != nil {
			return err
		}
		say("%s powered off through its BMC", host)
		var paused []HistoryEvent
		deadline := time.Now().Add(90 * time.Second)
		for time.Now().Before(deadline) && len(paused) == 0 {
			time.Sleep(time.Second)
			evs, err := env.History(ctx, host, "guard")
			if err != nil {
				return err
			}
			for _, e := range evs {
				if strings.Contains(e.Summary, "paused") {
					paused = append(paused, e)
				}
			}
		}
		if len(paused) == 0 {
			return fmt.Errorf("no guard pause of %s in the history within 90 s", host)
		}
		say("paused by the guard: %s (%s)", paused[0].ReasonText, paused[0].ReasonCode)
		// Held, not merely slow: nothing moves while it stays paused.
		time.Sleep(10 * time.Second)
		migs, err := env.evacuationsFrom(ctx, host, vms)
		if err != nil {
			return err
		}
		if migs > 0 {
			t.Errorf("%d evacuations from %s while the guard holds it", migs, host)
		}
		if st, err := env.Mark(ctx, host); err != nil || st.Phase != "pending" {
			t.Errorf("%s's evacuation is %q while paused (%v), want pending", host, st.Phase, err)
		}
		alerts, err := env.History(ctx, host, "alert")
		if err != nil {
			return err
		}
		if !slices.ContainsFunc(alerts, func(e HistoryEvent) bool { return strings.Contains(e.Summary, "computeha guard release "+host) }) {
			t.Errorf("no alert asking for `computeha guard release %s` in the history: %+v", host, alerts)
		}
		if err := env.ReleaseGuard(ctx, host); err != nil {
			return err
		}
		say("computeha guard release %s", host)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	checkTimeline(t, tl, host)
	if evs, err := env.History(ctx, host, "guard"); err != nil || !slices.ContainsFunc(evs, func(e HistoryEvent) bool { return e.ReasonCode == "released" }) {
		t.Errorf("no release of %s in the history (%v): %+v", host, err, evs)
	}
	if _, err := env.PowerOn(ctx, host, 4*time.Minute, testLog{t}); err != nil {
		t.Error(err)
	}
}

// evacuationsFrom counts Nova's evacuations of vms from host.
func (e *Env) evacuationsFrom(ctx context.Context, host string, vms []VM) (int, error) {
	migs, err := e.Nova.Migrations(ctx, openstack.MigrationFilter{Host: host, Type: "evacuation"})
	if err != nil {
		return 0, err
	}
	n := 0
	for _, m := range migs {
		if m.SourceCompute == host && slices.ContainsFunc(vms, func(v VM) bool { return v.ID == m.ServerID }) {
			n++
		}
	}
	return n, nil
}
