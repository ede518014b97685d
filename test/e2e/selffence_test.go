//go:build e2e

package e2e

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/computeha/computeha/crm"
)

// bmcUnreachablePowerLoss: a power loss that takes the BMC with it. The power fence cannot
// answer, so the first level fails; the second (gate, fence_gossip, fence_nova) proves the
// host silent for longer than it could live with its watchdog, and it is evacuated.
func bmcUnreachablePowerLoss(ctx context.Context, t *testing.T, env *Env, vms map[string][]VM) {
	env.quiet(ctx, t)
	h := "cmp2"
	logs, err := env.MarkFencerLogs(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer env.bmcBack(ctx, t, h)
	tl, err := env.Recovery(ctx, []string{h}, env.on(ctx, t, vms, h), 4*time.Minute, testLog{t}, func(say func(string, ...any)) error {
		if _, err := env.Lab.Power(ctx, h, "off"); err != nil {
			return err
		}
		if _, err := env.Lab.BMC(ctx, h, "down"); err != nil {
			return err
		}
		say("%s powered off, its BMC gone with it", h)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Log(tl.Summary())
	for _, v := range tl.Violations {
		t.Error(v)
	}
	env.fencingOver(ctx, t, h, 8*time.Second, 2*time.Minute)
	env.ranThroughSecondLevel(t, logs, h)
	if tl.Fenced > 0 {
		t.Logf("%s fenced through the second level %s after the power loss", h, tl.Fenced.Round(time.Millisecond))
	}
}

// isolatedFromEverything: a host cut from every network, its storage (which goes over the
// storage network) included, whose BMC does not answer. Alone for self_fence_after, it stops
// feeding its watchdog, which powers it off; the second level then proves it silent, and its
// VMs are evacuated only after it was off.
func isolatedFromEverything(ctx context.Context, t *testing.T, env *Env, vms map[string][]VM) {
	env.quiet(ctx, t)
	h := "cmp3"
	defer env.bmcBack(ctx, t, h)
	nets := []string{"mgmt", "storage", "tenant"}
	env.watchdogFenced(ctx, t, vms, h, "by its watchdog", func(say func(string, ...any)) error {
		if _, err := env.Lab.BMC(ctx, h, "down"); err != nil {
			return err
		}
		for _, n := range nets {
			if err := env.Lab.Cut(ctx, h, n); err != nil {
				return err
			}
		}
		say("%s cut from every network, its BMC unreachable; still running", h)
		return nil
	}, func(alone time.Duration) {
		// Alone from its last contact: self_fence_after, then the countdown. The last answer
		// and the last heartbeat came up to an interval (500 ms) before the cut.
		if earliest := SelfFenceAfter + WatchdogTimeout - time.Second; alone < earliest {
			t.Errorf("powered off %s after the cut, sooner than self_fence_after + the countdown allow (%s)", alone, earliest)
		}
	})
	for _, n := range nets {
		if err := env.Lab.Heal(ctx, h, n); err != nil {
			t.Error(err)
		}
	}
}

// storageLostBMCUnreachable: a host that lost only its storage network, whose BMC does not
// answer. It reads no pill (its storage is gone) and is not silent (the observers reach it on
// mgmt and tenant), so only the fence query by gossip can fence it: it stops feeding its
// watchdog, acknowledges, and its watchdog powers it off; fence_gossip calls it off once the
// countdown and the margin have run since the acknowledgement, and it is evacuated.
func storageLostBMCUnreachable(ctx context.Context, t *testing.T, env *Env, vms map[string][]VM) {
	env.quiet(ctx, t)
	h := env.withHA(ctx, t, vms, "cmp3", "cmp1", "cmp2")
	defer env.bmcBack(ctx, t, h)
	env.watchdogFenced(ctx, t, vms, h, "by its watchdog, on the fence query", func(say func(string, ...any)) error {
		if _, err := env.Lab.BMC(ctx, h, "down"); err != nil {
			return err
		}
		if err := env.Lab.Cut(ctx, h, "storage"); err != nil {
			return err
		}
		say("%s's storage network cut, its BMC unreachable; still running, reachable on mgmt and tenant", h)
		return nil
	}, nil)
	if err := env.Lab.Heal(ctx, h, "storage"); err != nil {
		t.Error(err)
	}
}

// watchdogFenced runs fault on h, which has its BMC unreachable, and checks that h was powered
// off once (how: by what), by its watchdog, before the first evacuation of its VMs, and that
// the second level fenced it. check, if given, is told how long after the fault it was off.
func (e *Env) watchdogFenced(ctx context.Context, t *testing.T, vms map[string][]VM, h, how string, fault func(say func(string, ...any)) error, check func(off time.Duration)) {
	t.Helper()
	logs, err := e.MarkFencerLogs(ctx)
	if err != nil {
		t.Fatal(err)
	}
	tl, err := e.Recovery(ctx, []string{h}, e.on(ctx, t, vms, h), 4*time.Minute, testLog{t}, fault)
	if err != nil {
		t.Fatal(err)
	}
	t.Log(tl.Summary())
	for _, v := range tl.Violations {
		t.Error(v)
	}
	offs := e.powerOffsSince(t, h, tl.Fault)
	switch {
	case len(offs) != 1:
		t.Errorf("%s was powered off %d times since the fault, want once (%s)", h, len(offs), how)
	case tl.FirstEvac.IsZero():
		t.Errorf("no evacuation from %s", h)
	case !offs[0].Before(tl.FirstEvac):
		t.Errorf("the first evacuation from %s (%s) came before its watchdog powered it off (%s): two copies could run",
			h, tl.FirstEvac.Format(time.RFC3339Nano), offs[0].Format(time.RFC3339Nano))
	default:
		off := offs[0].Sub(tl.Fault)
		t.Logf("%s's watchdog powered it off %s after the fault, %s before the first evacuation", h,
			off.Round(time.Millisecond), tl.FirstEvac.Sub(offs[0]).Round(time.Millisecond))
		if check != nil {
			check(off)
		}
	}
	e.fencingOver(ctx, t, h, 8*time.Second, 2*time.Minute)
	e.ranThroughSecondLevel(t, logs, h)
}

// withHA is the first of hosts that runs an HA VM of the scenarios now: the scenarios before
// moved them around.
func (e *Env) withHA(ctx context.Context, t *testing.T, vms map[string][]VM, hosts ...string) string {
	t.Helper()
	where := map[string]bool{}
	for _, list := range vms {
		for _, v := range list {
			if !v.HA {
				continue
			}
			s, err := e.Nova.Server(ctx, v.ID)
			if err != nil {
				t.Fatalf("%s: %v", v.Name, err)
			}
			where[s.Host] = true
		}
	}
	for _, h := range hosts {
		if where[h] {
			return h
		}
	}
	t.Fatalf("no HA VM of the scenarios runs on any of %v", hosts)
	return ""
}

// ranThroughSecondLevel checks that fence_gossip fenced host: the power fence was tried
// and failed, then the self-fencing device succeeded.
func (e *Env) ranThroughSecondLevel(t *testing.T, logs FencerLogMark, host string) {
	t.Helper()
	power, err := e.DeviceRuns(logs, host, "fence-"+host)
	if err != nil {
		t.Error(err)
		return
	}
	self, err := e.DeviceRuns(logs, host, "fence-gossip")
	if err != nil {
		t.Error(err)
		return
	}
	t.Logf("the power device's runs:\n%s\nfence-gossip's runs:\n%s", strings.Join(power, "\n"), strings.Join(self, "\n"))
	if len(power) == 0 || slices.ContainsFunc(power, func(l string) bool { return strings.Contains(l, "returned 0") }) {
		t.Errorf("the power device of %s did not only fail (its BMC does not answer)", host)
	}
	if !slices.ContainsFunc(self, func(l string) bool { return strings.Contains(l, "returned 0") }) {
		t.Errorf("fence-gossip never fenced %s", host)
	}
}

// powerOffsSince are the times the host's BMC powered it off since t.
func (e *Env) powerOffsSince(t *testing.T, host string, since time.Time) []time.Time {
	t.Helper()
	evs, err := e.Lab.BMCEventLog(host)
	if err != nil {
		t.Error(err)
		return nil
	}
	var offs []time.Time
	for _, ev := range evs {
		if ev.What == "off" && !ev.At.Before(since) {
			offs = append(offs, ev.At)
		}
	}
	return offs
}

// noPowerChange checks that nothing powered host off since the fault: neither a fencing nor
// its own watchdog.
func (e *Env) noPowerChange(t *testing.T, host string, fault time.Time) {
	t.Helper()
	if offs := e.powerOffsSince(t, host, fault); len(offs) > 0 {
		t.Errorf("%s was powered off at %s: its watchdog fired, or it was fenced", host, offs[0].Format(time.RFC3339Nano))
	}
}

// bmcBack makes host's BMC answer again and powers the host on, back in service.
func (e *Env) bmcBack(ctx context.Context, t *testing.T, host string) {
	t.Helper()
	if st, err := e.Lab.BMC(ctx, host, "status"); err == nil && st == "down" {
		if _, err := e.Lab.BMC(ctx, host, "up"); err != nil {
			t.Error(err)
			return
		}
	}
	// The power device's start and monitors failed while its BMC did not answer: an operator
	// clears them once it answers again, or Pacemaker keeps the device stopped there.
	if err := e.pcs(ctx, "resource", "cleanup", "fence-"+host); err != nil {
		t.Error(err)
	}
	if p, err := e.Lab.Power(ctx, host, "status"); err == nil && p == "off" {
		if _, err := e.PowerOn(ctx, host, 4*time.Minute, testLog{t}); err != nil {
			t.Error(err)
		}
	}
}

// hostcheckKilled: hostcheck killed on a host with HA VMs. The watchdog keeps counting down
// (5 s), and Pacemaker's monitor of the clone (every 2 s) starts hostcheck again within it:
// the host keeps running, nothing is fenced and nothing moves.
func hostcheckKilled(ctx context.Context, t *testing.T, env *Env, vms []VM) {
	env.quiet(ctx, t)
	h := "cmp1"
	fault := time.Now()
	if err := env.Lab.Kill(ctx, h, "computeha"); err != nil {
		t.Fatal(err)
	}
	// Pacemaker sees the monitor fail, and starts it again.
	deadline := time.Now().Add(WatchdogTimeout)
	for {
		st, err := env.CRM.Status(ctx)
		if err == nil && slices.ContainsFunc(st.Failures, func(f crm.Failure) bool {
			return f.Node == h && strings.HasPrefix(f.Resource, "hostcheck")
		}) {
			t.Logf("Pacemaker saw hostcheck gone on %s %s after the kill", h, time.Since(fault).Round(time.Millisecond))
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("Pacemaker did not see hostcheck gone on %s within the watchdog's countdown (%v)", h, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
	if err := env.WaitHostcheckMetric(ctx, h, `computeha_hostcheck_healthy{part="watchdog"} 1`, 15*time.Second); err != nil {
		t.Error(err)
	}
	t.Logf("hostcheck runs again on %s and feeds its watchdog, %s after the kill", h, time.Since(fault).Round(time.Millisecond))
	// Well past the countdown.
	time.Sleep(time.Until(fault.Add(3 * WatchdogTimeout)))
	env.noPowerChange(t, h, fault)
	env.noFencing(ctx, t, h, fault)
	env.stayed(ctx, t, vms)
	if err := env.pcs(ctx, "resource", "cleanup", "hostcheck"); err != nil {
		t.Error(err)
	}
}
