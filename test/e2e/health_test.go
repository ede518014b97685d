//go:build e2e

package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/computeha/computeha/crm"
	"github.com/computeha/computeha/internal/alert"
	"github.com/computeha/computeha/internal/evacstate"
	"github.com/computeha/computeha/internal/openstack"
	"github.com/computeha/computeha/internal/status"
)

// TestHealth runs the health scenarios (healthScenarios) on an environment of their own, so
// that what TestPowerLoss left behind cannot decide them.
func TestHealth(t *testing.T) {
	ctx, env := up(t)
	healthScenarios(ctx, t, env)
}

// healthScenarios tells a dead host from an isolated one on real parts: the lab's per-network
// cuts, its shared storage over the storage network, power and kill, with computeha's
// hostcheck on every node, fence_hostcheck first in every compute's fencing level, and real
// Nova. Each scenario checks the state computeha decided, what it did, and that no VM ran on
// two hosts.
func healthScenarios(ctx context.Context, t *testing.T, env *Env) {
	start := time.Now()
	// The daemon delivers its alerts to a real Alertmanager and to a command.
	am, err := env.NewAlertmanager()
	if err != nil {
		t.Fatal(err)
	}
	if err := am.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(am.Stop)
	if env.alerts, err = env.alertsSection(); err != nil {
		t.Fatal(err)
	}
	if err := env.EnableHealth(ctx); err != nil {
		t.Fatal(err)
	}
	t.Logf("health checks on, every host judged running, after %s", time.Since(start).Round(time.Millisecond))
	// JoinedHosts are in no list: the observer learned them from the gossip on every network
	// and probes them at the addresses the gossip gave.
	for _, h := range JoinedHosts {
		for _, n := range []string{"mgmt", "storage", "tenant"} {
			want := `computeha_hostcheck_peer_reachable{network="` + n + `",peer="` + h + `"} 1`
			if err := env.WaitHostcheckMetric(ctx, "ctl2", want, 30*time.Second); err != nil {
				t.Fatal(err)
			}
		}
	}

	// Two HA VMs and one other on each compute.
	vms := map[string][]VM{}
	for _, h := range env.Computes() {
		v, err := env.Boot(ctx, h, 2, 1)
		if err != nil {
			t.Fatal(err)
		}
		vms[h] = v
	}

	env.scenario(ctx, t, "a host that lost only its management network is disabled, never fenced, and let back when healed", func(t *testing.T) {
		h := "cmp1"
		fault := time.Now()
		if err := env.Lab.Cut(ctx, h, "mgmt"); err != nil {
			t.Fatal(err)
		}
		d := env.waitDecision(ctx, t, h, "management-lost", fault, 30*time.Second)
		t.Logf("%s judged management-lost %s after the cut: %s", h, d.At.Sub(fault).Round(time.Millisecond), d.ReasonText)
		if a, err := am.WaitActive(ctx, "ComputehaHostIsolated", h, 30*time.Second); err != nil {
			t.Error(err)
		} else if a.Labels["state"] != "management-lost" || a.Labels["severity"] != "critical" || a.Labels["cluster"] != "lab" {
			t.Errorf("the Alertmanager's alert about %s has labels %v", h, a.Labels)
		} else {
			t.Logf("the Alertmanager holds %s{host=%s,state=%s} %s after the cut: %s", a.Labels["alertname"], h, a.Labels["state"],
				time.Since(fault).Round(time.Millisecond), a.Annotations["summary"])
		}
		// An observer's hostcheck, which probes every host, tells the same in its metrics: h
		// lost on mgmt, not on tenant. (A compute probes only the observers: the gossip tells
		// it of the other computes' deaths, not of their answers.)
		for _, want := range []string{
			`computeha_hostcheck_peer_reachable{network="mgmt",peer="` + h + `"} 0`,
			`computeha_hostcheck_peer_reachable{network="tenant",peer="` + h + `"} 1`,
		} {
			if err := env.WaitHostcheckMetric(ctx, "ctl2", want, 15*time.Second); err != nil {
				t.Error(err)
			}
		}
		// Its gossip membership on mgmt has confirmed h's failure; the one on tenant has not.
		for _, want := range []string{
			`computeha_hostcheck_gossip_members{network="mgmt",state="dead"} 1`,
			`computeha_hostcheck_gossip_members{network="tenant",state="dead"} 0`,
		} {
			if err := env.WaitHostcheckMetric(ctx, "ctl2", want, 30*time.Second); err != nil {
				t.Error(err)
			}
		}
		env.waitDisabled(ctx, t, h, evacstate.HealthReasonPrefix, 60*time.Second)
		// Pacemaker keeps trying to fence the host it lost; the gate keeps refusing.
		time.Sleep(20 * time.Second)
		env.noFencing(ctx, t, h, fault)
		env.stayed(ctx, t, vms[h])
		if err := env.Lab.Heal(ctx, h, "mgmt"); err != nil {
			t.Fatal(err)
		}
		healed := time.Now()
		env.waitBackInCluster(ctx, t, h, 2*time.Minute)
		env.waitEnabled(ctx, t, h, 90*time.Second)
		t.Logf("%s back in the cluster and enabled in Nova %s after the heal", h, time.Since(healed).Round(time.Millisecond))
		env.noFencing(ctx, t, h, fault)
		// Its storage heartbeat went on: it never fenced itself through its watchdog either.
		env.noPowerChange(t, h, fault)
		env.stayed(ctx, t, vms[h])
		if err := env.WaitJudged(ctx, env.Computes(), "running", time.Minute); err != nil {
			t.Fatal(err)
		}
		if err := env.WaitHostcheckMetric(ctx, "ctl2", `computeha_hostcheck_peer_reachable{network="mgmt",peer="`+h+`"} 1`, 15*time.Second); err != nil {
			t.Error(err)
		}
		// h joined the mgmt gossip again through its seeds.
		if err := env.WaitHostcheckMetric(ctx, "ctl2", `computeha_hostcheck_gossip_members{network="mgmt",state="dead"} 0`, 30*time.Second); err != nil {
			t.Error(err)
		}
		// Firing alerts are sent with an end four minutes ahead: gone sooner, the
		// Alertmanager was told of the resolution.
		if err := am.WaitResolved(ctx, "ComputehaHostIsolated", h, 30*time.Second); err != nil {
			t.Error(err)
		}
		for _, status := range []string{alert.Firing, alert.Resolved} {
			if _, err := env.WaitCommandAlert("ComputehaHostIsolated", h, status, fault, 10*time.Second); err != nil {
				t.Error(err)
			}
		}
	})

	env.scenario(ctx, t, "a host whose pacemaker-remoted was killed gets it restarted and nothing moves", func(t *testing.T) {
		env.quiet(ctx, t)
		h := "cmp1"
		fault := time.Now()
		if err := env.Lab.Kill(ctx, h, "pacemaker-remoted"); err != nil {
			t.Fatal(err)
		}
		env.waitBackInCluster(ctx, t, h, 2*time.Minute)
		t.Logf("%s's pacemaker-remoted restarted and the host back in the cluster %s after the kill", h, time.Since(fault).Round(time.Millisecond))
		env.noFencing(ctx, t, h, fault)
		env.stayed(ctx, t, vms[h])
		if err := env.WaitJudged(ctx, env.Computes(), "running", time.Minute); err != nil {
			t.Fatal(err)
		}
		env.waitEnabled(ctx, t, h, time.Minute)
	})

	env.scenario(ctx, t, "hostcheck killed on a host with HA VMs is started again within its watchdog's countdown, and the host runs on", func(t *testing.T) {
		hostcheckKilled(ctx, t, env, vms["cmp1"])
	})

	env.scenario(ctx, t, "shared storage down for everyone makes nobody dead", func(t *testing.T) {
		env.quiet(ctx, t)
		fault := time.Now()
		if err := env.Lab.StorageDown(ctx); err != nil {
			t.Fatal(err)
		}
		for end := time.Now().Add(20 * time.Second); time.Now().Before(end); time.Sleep(time.Second) {
			js, err := env.Judge(ctx)
			if err != nil {
				t.Fatal(err)
			}
			for _, h := range env.Computes() {
				if js[h].State != "running" {
					t.Errorf("%s judged %s while only the shared storage is down: %s", h, js[h].State, js[h].Reason)
				}
			}
		}
		if err := env.Lab.StorageUp(ctx); err != nil {
			t.Fatal(err)
		}
		for _, h := range env.Computes() {
			env.noFencing(ctx, t, h, fault)
			// Every host still reaches its observers: none may fence itself for its storage.
			env.noPowerChange(t, h, fault)
			env.stayed(ctx, t, vms[h])
		}
		if err := env.WaitJudged(ctx, env.Computes(), "running", time.Minute); err != nil {
			t.Fatal(err)
		}
	})

	env.scenario(ctx, t, "a host that lost its tenant network has its HA VMs live-migrated and is disabled", func(t *testing.T) {
		env.quiet(ctx, t)
		h := "cmp2"
		fault := time.Now()
		if err := env.Lab.Cut(ctx, h, "tenant"); err != nil {
			t.Fatal(err)
		}
		d := env.waitDecision(ctx, t, h, "degraded", fault, 30*time.Second)
		t.Logf("%s judged degraded %s after the cut: %s", h, d.At.Sub(fault).Round(time.Millisecond), d.ReasonText)
		for _, v := range vms[h] {
			if !v.HA {
				continue
			}
			s := env.waitServer(ctx, t, v, func(s openstack.Server) bool { return s.Host != h && s.Status == "ACTIVE" }, 3*time.Minute)
			t.Logf("%s live-migrated to %s %s after the cut", v.Name, s.Host, time.Since(fault).Round(time.Millisecond))
		}
		env.waitDisabled(ctx, t, h, evacstate.HealthReasonPrefix, time.Minute)
		env.noFencing(ctx, t, h, fault)
		for _, v := range vms[h] {
			s, err := env.Nova.Server(ctx, v.ID)
			if err != nil {
				t.Fatal(err)
			}
			if !v.HA && s.Host != h {
				t.Errorf("non-HA VM %s moved to %s", v.Name, s.Host)
			}
			if v.HA {
				env.onlyLiveMigratedOnce(ctx, t, v, h)
			}
		}
		if err := env.Lab.Heal(ctx, h, "tenant"); err != nil {
			t.Fatal(err)
		}
		// The migrate response leaves the host disabled for an operator to look at.
		env.enable(ctx, t, h)
	})

	env.scenario(ctx, t, "a host that lost its storage network is fenced and evacuated", func(t *testing.T) {
		env.quiet(ctx, t)
		h := "cmp3"
		logs, err := env.MarkFencerLogs(ctx)
		if err != nil {
			t.Fatal(err)
		}
		tl, err := env.Recovery(ctx, []string{h}, env.on(ctx, t, vms, h), 4*time.Minute, testLog{t}, func(say func(string, ...any)) error {
			if err := env.Lab.Cut(ctx, h, "storage"); err != nil {
				return err
			}
			say("%s's storage network cut", h)
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		t.Log(tl.Summary())
		for _, v := range tl.Violations {
			t.Error(v)
		}
		if _, err := env.waitDecisionErr(ctx, h, "degraded", tl.Fault, time.Second); err != nil {
			t.Error(err)
		}
		if err := env.Lab.Heal(ctx, h, "storage"); err != nil {
			t.Fatal(err)
		}
		// Pacemaker still held the host's connection: the daemon failed it, and Pacemaker
		// fenced the host itself, once. Asked of the fencer instead, the fencing ended before
		// the power-off dropped the connection, and Pacemaker fenced the host again for the
		// monitors that then failed: the power device ran three times. (A reboot through a
		// level is its devices' off, then on for those that do not stay off: the power device
		// has pcmk_reboot_action=off, and fence_nova's on is the automatic unfencing.)
		env.fencingOver(ctx, t, h, 8*time.Second, 2*time.Minute)
		if runs, err := env.DeviceRuns(logs, h, "fence-"+h); err != nil {
			t.Error(err)
		} else if len(runs) != 1 {
			t.Errorf("the power device of %s ran %d times, want once:\n%s", h, len(runs), strings.Join(runs, "\n"))
		}
		poweredOn := time.Now()
		if _, err := env.PowerOn(ctx, h, 4*time.Minute, testLog{t}); err != nil {
			t.Error(err)
		}
		// Back with its storage healed, the host is judged on what is seen since its return,
		// not on the views of its fencing: never degraded again, never fenced again.
		env.noFencing(ctx, t, h, poweredOn)
		env.notJudgedSince(ctx, t, h, poweredOn, "degraded: fence", "degraded: migrate", "degraded: disable")
		// One episode, one alert: degraded, dead once fenced, running once back, without the
		// steps of its boot (service-unreachable, degraded on the views of its fencing) between.
		env.settledOnce(ctx, t, h, tl.Fault, []string{"degraded", "dead", "running"}, "ComputehaHostDead")
	})

	env.scenario(ctx, t, "a powered-off host is judged dead, fenced through the gate and evacuated", func(t *testing.T) {
		env.quiet(ctx, t)
		h := "cmp1"
		// A real Prometheus scrapes the daemon and every hostcheck through it.
		prom, err := env.StartPrometheus(ctx, filepath.Join("..", ".."), true)
		if err != nil {
			t.Fatal(err)
		}
		defer prom.Stop()
		const deadDecisions = `sum(computeha_history_events_total{kind="decision",reason="all-signals-lost"})`
		before, err := prom.Query(ctx, deadDecisions)
		if err != nil {
			t.Fatal(err)
		}
		// The Alertmanager is down through the power loss: the recovery does not wait for it,
		// and the alert reaches it once it is back.
		am.Stop()
		tl, err := env.PowerLoss(ctx, h, env.on(ctx, t, vms, h), 4*time.Minute, testLog{t})
		if err != nil {
			t.Fatal(err)
		}
		t.Log(tl.Summary())
		for _, v := range tl.Violations {
			t.Error(v)
		}
		prometheusSawTheHostDie(ctx, t, env, prom, h, tl.Fault, deadDecisions, before)
		prom.Stop()
		if _, err := env.waitDecisionErr(ctx, h, "dead", tl.Fault, time.Second); err != nil {
			t.Error(err)
		}
		if _, err := env.WaitCommandAlert("ComputehaHostDead", h, alert.Firing, tl.Fault, 10*time.Second); err != nil {
			t.Error(err)
		}
		back := time.Now()
		if err := am.Start(ctx); err != nil {
			t.Fatal(err)
		}
		// The daemon tries again at most a minute apart.
		if _, err := am.WaitActive(ctx, "ComputehaHostDead", h, 90*time.Second); err != nil {
			t.Error(err)
		} else {
			t.Logf("the Alertmanager, down through the recovery, holds ComputehaHostDead{host=%s} %s after it was started again",
				h, time.Since(back).Round(time.Millisecond))
		}
		if _, err := env.PowerOn(ctx, h, 4*time.Minute, testLog{t}); err != nil {
			t.Error(err)
		}
		if err := am.WaitResolved(ctx, "ComputehaHostDead", h, time.Minute); err != nil {
			t.Error(err)
		}
		if _, err := env.WaitCommandAlert("ComputehaHostDead", h, alert.Resolved, tl.Fault, 10*time.Second); err != nil {
			t.Error(err)
		}
	})

	env.scenario(ctx, t, "a host powered off with its BMC is fenced through the second level (its proven silence) and evacuated", func(t *testing.T) {
		bmcUnreachablePowerLoss(ctx, t, env, vms)
	})

	env.scenario(ctx, t, "a host cut from every network and its storage, its BMC unreachable, powers itself off through its watchdog before anything is evacuated", func(t *testing.T) {
		isolatedFromEverything(ctx, t, env, vms)
	})

	env.scenario(ctx, t, "a host that lost its storage network, its BMC unreachable, obeys the fence query by gossip, powers itself off and is evacuated", func(t *testing.T) {
		storageLostBMCUnreachable(ctx, t, env, vms)
	})

	env.scenario(ctx, t, "a failed recovery is listed, retried to success once the cause is gone; another is cleared and its host let back", func(t *testing.T) {
		failedRecoveryRetriedAndCleared(ctx, t, env)
	})
	env.scenario(ctx, t, "admission control: VMs booted past n+1 make the segment short in status and the daemon's headroom; deleted, it meets its policy again", func(t *testing.T) {
		admissionControl(ctx, t, env)
	})
	env.scenario(ctx, t, "maintenance: drained and disabled; a power loss in it recovers nothing; exit and the expiry enable the host again", func(t *testing.T) {
		maintenanceOfAHost(ctx, t, env)
	})
	// The bounded soak of every run, on this test's lab and VMs, after the scenarios above:
	// rounds start within its first minute and most take about a minute (a slow one up to
	// 10), so it ends within about 3 (`make soak` is the long one). SOAK_SEED replays its
	// faults.
	env.scenario(ctx, t, "a bounded soak: random faults, and after every round the invariants hold", func(t *testing.T) {
		seed, err := soakSeed()
		if err != nil {
			t.Fatal(err)
		}
		var all []VM
		for _, h := range env.Computes() {
			all = append(all, vms[h]...)
		}
		env.soak(ctx, t, all, 100, time.Minute, seed, fmt.Sprintf("SOAK_SEED=%d make e2e-health (after the same scenarios)", seed))
	})
}

// maintenanceOfAHost: `maintenance enter --drain` moves the host's HA VMs away and disables it;
// exit enables it. In maintenance again with HA VMs on it, its power loss suspends the health
// responses, the fencing Pacemaker does anyway recovers nothing (recorded), and the host comes
// back still disabled until exit. A window with --until is ended by the daemon.
func maintenanceOfAHost(ctx context.Context, t *testing.T, env *Env) {
	env.quiet(ctx, t)
	h := "cmp3"
	cfg := []string{"--config", env.EvacdConfig()}
	run := func(args ...string) string {
		t.Helper()
		out, errOut, code, err := env.Computeha(ctx, append(append([]string{"maintenance"}, args[:1]...), append(cfg, args[1:]...)...)...)
		if err != nil || code != 0 {
			t.Fatalf("computeha maintenance %v: exit %d, %v: %s%s", args, code, err, out, errOut)
		}
		t.Logf("computeha maintenance %s:\n%s", strings.Join(args, " "), strings.TrimSpace(out))
		return out
	}
	ha, err := env.Boot(ctx, h, 2, 0)
	if err != nil {
		t.Fatal(err)
	}
	run("enter", "--reason", "e2e drain", "--drain", h)
	for _, v := range ha {
		env.waitServer(ctx, t, v, func(s openstack.Server) bool { return s.Status == "ACTIVE" && s.Host != h && s.Host != "" }, time.Minute)
	}
	env.waitDisabled(ctx, t, h, evacstate.MaintenanceReasonPrefix, 10*time.Second)
	run("exit", h)
	env.waitEnabled(ctx, t, h, 10*time.Second)

	// In maintenance with HA VMs on it, it loses power.
	ha, err = env.Boot(ctx, h, 2, 0)
	if err != nil {
		t.Fatal(err)
	}
	run("enter", "--reason", "e2e power work", h)
	fault := time.Now()
	if _, err := env.Lab.Power(ctx, h, "off"); err != nil {
		t.Fatal(err)
	}
	if _, err := env.WaitPhase(ctx, h, evacstate.Done, fault, 3*time.Minute); err != nil {
		t.Fatal(err)
	}
	time.Sleep(5 * time.Second)
	for _, v := range ha {
		if s, err := env.Nova.Server(ctx, v.ID); err != nil || s.Host != h {
			t.Errorf("%s moved to %q (%v) while %s is in maintenance", v.Name, s.Host, err, h)
		}
	}
	for kind, code := range map[string]string{"maintenance": "maintenance", "decision": ""} {
		evs, err := env.History(ctx, h, kind)
		if err != nil {
			t.Fatal(err)
		}
		switch kind {
		case "maintenance":
			if !slices.ContainsFunc(evs, func(e HistoryEvent) bool {
				return e.ReasonCode == code && strings.Contains(e.Summary, "nothing recovered")
			}) {
				t.Errorf("the history does not say %s's fencing recovered nothing: %+v", h, evs)
			}
			if !slices.ContainsFunc(evs, func(e HistoryEvent) bool { return e.ReasonCode == "health-suspended" }) {
				t.Errorf("the history does not say %s's health responses are suspended", h)
			}
		case "decision":
			for _, e := range evs {
				if at, err := time.Parse(time.RFC3339Nano, e.Time); err == nil && at.After(fault) && strings.HasPrefix(e.Summary, h+" is dead") {
					t.Errorf("judged while in maintenance: %s", e.Summary)
				}
			}
		}
	}
	if _, err := env.Lab.Power(ctx, h, "on"); err != nil {
		t.Fatal(err)
	}
	env.waitBackInCluster(ctx, t, h, 3*time.Minute)
	time.Sleep(10 * time.Second)
	if svc, err := env.Nova.FindComputeService(ctx, h); err != nil || svc.Enabled() {
		t.Errorf("%s back from its power loss in maintenance is enabled: %+v (%v)", h, svc, err)
	}
	// Back and still in maintenance, it is no target of another host's recovery: the planner
	// says so, and the recovery puts nothing there.
	other := "cmp2"
	vms, err := env.Boot(ctx, other, 2, 0)
	if err != nil {
		t.Fatal(err)
	}
	if sims, err := env.Simulate(ctx, other); err != nil || len(sims) != 1 ||
		!slices.ContainsFunc(sims[0].Excluded, func(x struct{ Host, Reason string }) bool { return x.Host == h && x.Reason == "in-maintenance" }) {
		t.Errorf("computeha simulate %s while %s is in maintenance: %+v (%v), want %s excluded as in-maintenance", other, h, sims, err, h)
	}
	fault = time.Now()
	if _, err := env.Lab.Power(ctx, other, "off"); err != nil {
		t.Fatal(err)
	}
	if _, err := env.WaitPhase(ctx, other, evacstate.Done, fault, 3*time.Minute); err != nil {
		t.Fatal(err)
	}
	for _, v := range vms {
		env.waitServer(ctx, t, v, func(s openstack.Server) bool { return s.Status == "ACTIVE" && s.Host != other && s.Host != "" }, time.Minute)
		if s, err := env.Nova.Server(ctx, v.ID); err != nil || s.Host == h {
			t.Errorf("%s recovered onto %s, in maintenance (%v)", v.Name, h, err)
		}
	}
	if _, err := env.PowerOn(ctx, other, 4*time.Minute, testLog{t}); err != nil {
		t.Fatal(err)
	}
	run("exit", h)
	if _, err := env.WaitBack(ctx, h, time.Now(), 3*time.Minute, testLog{t}); err != nil {
		t.Error(err)
	}

	// A window that ends by itself.
	run("enter", "--until", "20s", "--reason", "e2e expiry", h)
	deadline := time.Now().Add(90 * time.Second)
	for {
		out, _, _, err := env.Computeha(ctx, append([]string{"maintenance", "list", "--json"}, cfg...)...)
		if err == nil && !strings.Contains(out, `"host":"`+h+`"`) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s's maintenance not ended by the daemon 90 s after its 20 s: %s", h, out)
		}
		time.Sleep(2 * time.Second)
	}
	env.waitEnabled(ctx, t, h, 30*time.Second)
}

// Decided is a health decision the daemon recorded.
type Decided struct {
	At         time.Time
	Summary    string
	ReasonText string
}

// waitDecisionErr waits until the daemon's history holds a decision that host is state,
// recorded after since.
func (e *Env) waitDecisionErr(ctx context.Context, host, state string, since time.Time, limit time.Duration) (Decided, error) {
	deadline := time.Now().Add(limit)
	want := host + " is " + state + ":"
	for {
		evs, err := e.History(ctx, host, "decision")
		if err != nil {
			return Decided{}, err
		}
		for _, ev := range evs {
			at, err := time.Parse(time.RFC3339Nano, ev.Time)
			if err != nil || at.Before(since.Add(-time.Second)) {
				continue
			}
			if strings.HasPrefix(ev.Summary, want) {
				return Decided{At: at, Summary: ev.Summary, ReasonText: ev.ReasonText}, nil
			}
		}
		if time.Now().After(deadline) {
			var got []string
			for _, ev := range evs {
				got = append(got, ev.Time+" "+ev.Summary)
			}
			return Decided{}, fmt.Errorf("no decision %q about %s in the history since %s; decisions: %s",
				state, host, since.Format(time.RFC3339), strings.Join(got, "; "))
		}
		time.Sleep(500 * time.Millisecond)
	}
}

func (e *Env) waitDecision(ctx context.Context, t *testing.T, host, state string, since time.Time, limit time.Duration) Decided {
	t.Helper()
	d, err := e.waitDecisionErr(ctx, host, state, since, limit)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// notJudgedSince fails t if the daemon's history holds a decision about host that begins with
// one of verdicts ("degraded: fence": state and response), recorded after since.
func (e *Env) notJudgedSince(ctx context.Context, t *testing.T, host string, since time.Time, verdicts ...string) {
	t.Helper()
	evs, err := e.History(ctx, host, "decision")
	if err != nil {
		t.Error(err)
		return
	}
	var seen []string
	defer func() {
		t.Logf("decisions about %s since %s: %s", host, since.Format("15:04:05.000"), strings.Join(seen, "; "))
	}()
	for _, ev := range evs {
		at, err := time.Parse(time.RFC3339Nano, ev.Time)
		if err != nil || at.Before(since) {
			continue
		}
		seen = append(seen, fmt.Sprintf("+%s %s", at.Sub(since).Round(time.Millisecond), ev.Summary))
		for _, v := range verdicts {
			if strings.HasPrefix(ev.Summary, host+" is "+v) {
				t.Errorf("%s judged %s %s after it was powered on: %s (%s)", host, v, at.Sub(since).Round(time.Millisecond), ev.Summary, ev.ReasonText)
			}
		}
	}
}

// settledOnce waits for host to be judged running again and fails t unless the states decided
// about it since fault, repeats aside, are exactly states, and the alert command was given
// exactly the alerts named (firing, in that order) about it since then.
func (e *Env) settledOnce(ctx context.Context, t *testing.T, host string, fault time.Time, states []string, alerts ...string) {
	t.Helper()
	if _, err := e.waitDecisionErr(ctx, host, "running", fault, time.Minute); err != nil {
		t.Error(err)
		return
	}
	evs, err := e.History(ctx, host, "decision")
	if err != nil {
		t.Error(err)
		return
	}
	var got, seen []string
	for _, ev := range evs {
		at, err := time.Parse(time.RFC3339Nano, ev.Time)
		if err != nil || at.Before(fault) || !strings.HasPrefix(ev.Summary, host+" is ") {
			continue
		}
		seen = append(seen, fmt.Sprintf("+%s %s", at.Sub(fault).Round(time.Millisecond), ev.Summary))
		state, _, _ := strings.Cut(strings.TrimPrefix(ev.Summary, host+" is "), ":")
		if len(got) == 0 || got[len(got)-1] != state {
			got = append(got, state)
		}
	}
	if !slices.Equal(got, states) {
		t.Errorf("%s was judged %s after the fault, want %s:\n%s", host, strings.Join(got, ", "), strings.Join(states, ", "), strings.Join(seen, "\n"))
	} else {
		t.Logf("%s was judged %s after the fault: %s", host, strings.Join(got, ", "), strings.Join(seen, "; "))
	}
	as, err := e.CommandAlerts()
	if err != nil {
		t.Error(err)
		return
	}
	// An alert still firing is sent again (same start) until it resolves: counted once.
	var fired []string
	sent := map[string]bool{}
	for _, a := range as {
		key := a.Name() + "@" + a.StartsAt.String()
		if a.Labels["host"] == host && a.Status == alert.Firing && !a.StartsAt.Before(fault.Add(-time.Second)) && !sent[key] {
			sent[key] = true
			fired = append(fired, a.Name())
		}
	}
	if !slices.Equal(fired, alerts) {
		t.Errorf("the alert command was given %v firing about %s after the fault, want %v", fired, host, alerts)
	}
}

// deviceRan tells a fencing a device carried out from a manual confirmation
// (stonith_admin --confirm, which the daemon runs once an isolated host is back), which has no
// delegate.
func deviceRan(f crm.FenceEvent) bool {
	return f.Delegate != "" && !f.Manual()
}

// noFencing fails t if Pacemaker's history shows a successful fencing of host since fault.
func (e *Env) noFencing(ctx context.Context, t *testing.T, host string, fault time.Time) {
	t.Helper()
	hist, err := e.CRM.FencingHistory(ctx, host)
	if err != nil {
		t.Errorf("fencing history of %s: %v", host, err)
		return
	}
	for _, f := range hist {
		if f.Succeeded() && f.Completed.After(fault) && deviceRan(f) {
			t.Errorf("%s was fenced at %s (%s by %s)", host, f.Completed, f.Action, f.Delegate)
		}
	}
}

// on returns the VMs of vms that Nova has on host now, each with host as where it
// was: a fault on host must recover the HA VMs an earlier scenario moved there too.
func (e *Env) on(ctx context.Context, t *testing.T, vms map[string][]VM, host string) []VM {
	t.Helper()
	var here []VM
	for _, h := range slices.Sorted(maps.Keys(vms)) {
		for _, v := range vms[h] {
			s, err := e.Nova.Server(ctx, v.ID)
			if err != nil {
				t.Fatalf("%s: %v", v.Name, err)
			}
			if s.Host == host {
				v.Host = host
				here = append(here, v)
			}
		}
	}
	if len(here) == 0 {
		t.Fatalf("no VM of the scenarios is on %s", host)
	}
	return here
}

// fencingOver waits until host has been neither unclean nor the target of a pending fencing
// for quiet on end.
func (e *Env) fencingOver(ctx context.Context, t *testing.T, host string, quiet, limit time.Duration) {
	t.Helper()
	start := time.Now()
	calm := time.Now()
	for time.Since(calm) < quiet {
		if time.Since(start) > limit {
			t.Fatalf("fencing of %s still pending or scheduled after %s", host, limit)
		}
		busy := ""
		st, err := e.CRM.Status(ctx)
		if err != nil {
			busy = err.Error()
		} else if n, _ := st.Node(host); n.Unclean {
			busy = "unclean"
		}
		if busy == "" {
			fs, err := e.Fencings(ctx, host)
			if err != nil {
				busy = err.Error()
			}
			for _, f := range fs {
				if f.Status == "pending" {
					busy = "fencing pending"
				}
			}
		}
		if busy != "" {
			calm = time.Now()
		}
		time.Sleep(500 * time.Millisecond)
	}
	t.Logf("no fencing of %s pending or scheduled after %s", host, time.Since(start).Round(time.Millisecond))
}

// stayed fails t unless every VM of vms is still ACTIVE where it was booted, with no
// migration of any kind recorded for it.
func (e *Env) stayed(ctx context.Context, t *testing.T, vms []VM) {
	t.Helper()
	for _, v := range vms {
		s, err := e.Nova.Server(ctx, v.ID)
		if err != nil {
			t.Errorf("%s: %v", v.Name, err)
			continue
		}
		if s.Host != v.Host || s.Status != "ACTIVE" {
			t.Errorf("%s is %s on %s, want ACTIVE on %s where it was", v.Name, s.Status, s.Host, v.Host)
		}
		migs, err := e.Nova.Migrations(ctx, openstack.MigrationFilter{ServerID: v.ID})
		if err != nil {
			t.Errorf("migrations of %s: %v", v.Name, err)
			continue
		}
		if len(migs) > 0 {
			t.Errorf("%s has %d migrations (first: %s from %s), want none", v.Name, len(migs), migs[0].Type, migs[0].SourceCompute)
		}
	}
}

// onlyLiveMigratedOnce fails t unless v's only migration is one completed live migration from
// host: it ran on one host at a time.
func (e *Env) onlyLiveMigratedOnce(ctx context.Context, t *testing.T, v VM, host string) {
	t.Helper()
	var (
		migs []openstack.Migration
		err  error
	)
	// Nova shows the server on its new host before it marks the migration completed: a
	// single live migration still finishing is waited for (a second one never is).
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(500 * time.Millisecond) {
		migs, err = e.Nova.Migrations(ctx, openstack.MigrationFilter{ServerID: v.ID})
		if err != nil {
			t.Errorf("migrations of %s: %v", v.Name, err)
			return
		}
		finishing := len(migs) == 1 && migs[0].Type == "live-migration" && migs[0].SourceCompute == host &&
			!slices.Contains([]string{"completed", "error", "failed", "cancelled"}, migs[0].Status)
		if !finishing || time.Now().After(deadline) {
			break
		}
	}
	if len(migs) != 1 || migs[0].Type != "live-migration" || migs[0].SourceCompute != host || migs[0].Status != "completed" {
		var got []string
		for _, m := range migs {
			got = append(got, fmt.Sprintf("%s %s→%s %s", m.Type, m.SourceCompute, m.DestCompute, m.Status))
		}
		t.Errorf("%s: migrations %v, want one completed live-migration from %s", v.Name, got, host)
	}
}

// waitServer waits until v satisfies ok.
func (e *Env) waitServer(ctx context.Context, t *testing.T, v VM, ok func(openstack.Server) bool, limit time.Duration) openstack.Server {
	t.Helper()
	deadline := time.Now().Add(limit)
	for {
		s, err := e.Nova.Server(ctx, v.ID)
		if err == nil && ok(s) {
			return s
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: still %s on %s after %s (%v)", v.Name, s.Status, s.Host, limit, err)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// waitDisabled waits until host's nova-compute is disabled with a reason starting with prefix.
func (e *Env) waitDisabled(ctx context.Context, t *testing.T, host, prefix string, limit time.Duration) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for {
		svc, err := e.Nova.FindComputeService(ctx, host)
		if err == nil && !svc.Enabled() && strings.HasPrefix(svc.DisabledReason, prefix) {
			t.Logf("%s disabled in Nova: %q", host, svc.DisabledReason)
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s not disabled with a %q reason within %s: %+v (%v)", host, prefix, limit, svc, err)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// waitEnabled waits until host's nova-compute is enabled.
func (e *Env) waitEnabled(ctx context.Context, t *testing.T, host string, limit time.Duration) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for {
		svc, err := e.Nova.FindComputeService(ctx, host)
		if err == nil && svc.Enabled() {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s not enabled in Nova within %s: %+v (%v)", host, limit, svc, err)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// enable enables host's nova-compute, as an operator does after looking at it.
func (e *Env) enable(ctx context.Context, t *testing.T, host string) {
	t.Helper()
	svc, err := e.Nova.FindComputeService(ctx, host)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.Nova.EnableService(ctx, svc.ID); err != nil {
		t.Fatal(err)
	}
}

// waitBackInCluster waits until Pacemaker has host online again.
func (e *Env) waitBackInCluster(ctx context.Context, t *testing.T, host string, limit time.Duration) {
	t.Helper()
	if err := e.waitMember(ctx, host, limit); err != nil {
		t.Fatal(err)
	}
}

// quiet waits until Pacemaker has nothing left to do and the environment is settled (every
// host judged running, when the health checks are on), so that a scenario starts from a
// cluster at rest, not in the middle of the recovery from the one before (a remote node that
// reconnected has its resources probed again, and an operation lost with a connection holds a
// transition until its timeout).
func (e *Env) quiet(ctx context.Context, t *testing.T) {
	t.Helper()
	start := time.Now()
	// A scenario that failed may have left a host off: its failure is said already, and this
	// one starts from every host on, as it expects.
	for _, h := range e.Computes() {
		if p, err := e.Lab.Power(ctx, h, "status"); err == nil && p == "off" {
			t.Logf("%s was left powered off (an earlier scenario failed?): powering it on", h)
			if _, err := e.Lab.Power(ctx, h, "on"); err != nil {
				t.Fatal(err)
			}
		}
	}
	if out, _, code, err := e.Lab.Exec(ctx, e.observer, "crm_resource", "--wait", "--timeout=180s"); err != nil || code != 0 {
		t.Fatalf("the cluster did not settle within 3 minutes: exit %d, %v: %s", code, err, out)
	}
	if err := e.settle(ctx); err != nil {
		t.Fatal(err)
	}
	// Once every compute is back: a connection that failed while its compute was off
	// would fail again.
	if err := e.clearConnectionFailures(ctx, t); err != nil {
		t.Fatal(err)
	}
	if e.health != "" {
		if err := e.WaitJudged(ctx, e.Computes(), "running", time.Minute); err != nil {
			t.Fatal(err)
		}
	}
	if took := time.Since(start); took > time.Second {
		t.Logf("the cluster came to rest in %s", took.Round(time.Millisecond))
	}
}

// prometheusSawTheHostDie checks what a real Prometheus scraped from the daemon and every
// hostcheck while host was off: every hostcheck that sees it reports it lost on every network,
// the hostchecks' heartbeats stay fresh, and the daemon's count of dead decisions grew by what
// the history recorded since fault.
func prometheusSawTheHostDie(ctx context.Context, t *testing.T, env *Env, p *Prometheus, host string, fault time.Time, deadDecisions string, before float64) {
	t.Helper()
	events, err := env.History(ctx, host, "decision")
	if err != nil {
		t.Fatal(err)
	}
	recorded := 0
	for _, ev := range events {
		if at, err := time.Parse(time.RFC3339Nano, ev.Time); err == nil && !at.Before(fault) && ev.ReasonCode == "all-signals-lost" {
			recorded++
		}
	}
	if recorded == 0 {
		t.Errorf("the history has no dead decision about %s since the fault", host)
	}
	checks := map[string]float64{
		`count(computeha_hostcheck_peer_reachable{peer="` + host + `"}) > bool 0`: 1,
		`max(computeha_hostcheck_peer_reachable{peer="` + host + `"})`:            0,
		`max(computeha_hostcheck_heartbeat_age_seconds) < bool 10`:                1,
		`count(computeha_hostcheck_heartbeat_age_seconds) >= bool 5`:              1,
		deadDecisions + ` - ` + strconv.FormatFloat(before, 'f', -1, 64):          float64(recorded),
	}
	for q, want := range checks {
		var got float64
		deadline := time.Now().Add(20 * time.Second)
		for {
			got, err = p.Query(ctx, q)
			if err == nil && got == want || time.Now().After(deadline) {
				break
			}
			time.Sleep(time.Second)
		}
		if err != nil || got != want {
			t.Errorf("Prometheus: %s = %v (error %v), want %v", q, got, err, want)
		}
	}
}

// failedRecoveryRetriedAndCleared: a recovery that cannot succeed (an operator disabled every
// other host, so Nova finds no room) ends failed and is listed so; once the others are enabled
// again, `computeha recovery retry` fences the host again and the daemon recovers it. A second
// failure of the host is cleared with `computeha recovery clear`: nothing moves, and the host,
// powered on, is let back with the VM left on it.
func failedRecoveryRetriedAndCleared(ctx context.Context, t *testing.T, env *Env) {
	env.quiet(ctx, t)
	h := "cmp2"
	var others []string
	for _, o := range env.Computes() {
		if o != h {
			others = append(others, o)
		}
	}
	noRoom := func() {
		for _, o := range others {
			svc, err := env.Nova.FindComputeService(ctx, o)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := env.Nova.DisableService(ctx, svc.ID, "operator: no room for the e2e"); err != nil {
				t.Fatal(err)
			}
		}
	}
	room := func() {
		for _, o := range others {
			env.enable(ctx, t, o)
		}
	}
	defer func() {
		if t.Failed() {
			room()
		}
	}()
	ha, err := env.Boot(ctx, h, 2, 0)
	if err != nil {
		t.Fatal(err)
	}

	noRoom()
	fault := time.Now()
	if _, err := env.Lab.Power(ctx, h, "off"); err != nil {
		t.Fatal(err)
	}
	st, err := env.WaitPhase(ctx, h, evacstate.Failed, fault, 4*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%s's recovery failed %s after the power-off: %s", h, time.Since(fault).Round(time.Millisecond), st.Reason)
	list, err := env.Recoveries(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if i := slices.IndexFunc(list, func(r RecoveryEntry) bool { return r.Host == h }); i < 0 || list[i].Phase != "failed" || list[i].Reason != st.Reason {
		t.Errorf("computeha recovery list: %+v, want %s failed (%s)", list, h, st.Reason)
	}
	// computeha status tells the same, with the rest of the picture.
	if out, errOut, code, err := env.Computeha(ctx, "status", "--json", "--config", env.EvacdConfig()); err != nil || code != 0 {
		t.Errorf("computeha status: exit %d, %v: %s%s", code, err, out, errOut)
	} else {
		var r status.Report
		if err := json.Unmarshal([]byte(out), &r); err != nil {
			t.Fatalf("computeha status --json: %v: %s", err, out)
		}
		var hostLine *status.Host
		for _, seg := range r.Segments {
			for i := range seg.Hosts {
				if seg.Hosts[i].Node == h {
					hostLine = &seg.Hosts[i]
				}
			}
		}
		if !r.Quorate || len(r.Daemon.Nodes) != 1 || hostLine == nil || hostLine.Pacemaker != "offline" || hostLine.Recovery != "failed" ||
			!strings.Contains(r.Summary(), "recovery of "+h+" failed") {
			t.Errorf("computeha status: %+v (%s), want quorate, the daemon on one controller, %s offline with its recovery failed", r, r.Summary(), h)
		}
	}
	// Refused, nothing changed: a host not under recovery, an unknown one.
	for _, args := range [][]string{{"recovery", "retry", others[0]}, {"recovery", "clear", "cmp99"}, {"recovery", "retry"}} {
		if out, errOut, code, err := env.Computeha(ctx, args...); err != nil || code == 0 || errOut == "" || out != "" {
			t.Errorf("computeha %v: exit %d, stdout %q, stderr %q, %v: want a refusal", args, code, out, errOut, err)
		}
	}
	if now, err := env.Mark(ctx, h); err != nil || now != st {
		t.Errorf("%s's state changed under refused commands: %+v (%v)", h, now, err)
	}

	room()
	retried := time.Now()
	out, errOut, code, err := env.Computeha(ctx, "recovery", "retry", h)
	if err != nil || code != 0 {
		t.Fatalf("computeha recovery retry %s: exit %d, %v: %s%s", h, code, err, out, errOut)
	}
	t.Logf("computeha recovery retry %s: %s", h, strings.TrimSpace(out))
	if _, err := env.WaitPhase(ctx, h, evacstate.Done, retried, 3*time.Minute); err != nil {
		t.Fatal(err)
	}
	t.Logf("%s recovered %s after the retry", h, time.Since(retried).Round(time.Millisecond))
	for _, v := range ha {
		env.waitServer(ctx, t, v, func(s openstack.Server) bool { return s.Status == "ACTIVE" && s.Host != h && s.Host != "" }, time.Minute)
	}
	env.nothingBeforeFencing(ctx, t, h, retried)
	decisions, err := env.History(ctx, h, "decision")
	if err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(decisions, func(e HistoryEvent) bool { return e.ReasonCode == "recovery-retry" }) {
		t.Errorf("no retry decision about %s in the history", h)
	}
	if _, err := env.PowerOn(ctx, h, 4*time.Minute, testLog{t}); err != nil {
		t.Fatal(err)
	}

	// Again, and this time the operator gives up.
	left, err := env.Boot(ctx, h, 1, 0)
	if err != nil {
		t.Fatal(err)
	}
	noRoom()
	fault = time.Now()
	if _, err := env.Lab.Power(ctx, h, "off"); err != nil {
		t.Fatal(err)
	}
	if _, err := env.WaitPhase(ctx, h, evacstate.Failed, fault, 4*time.Minute); err != nil {
		t.Fatal(err)
	}
	out, errOut, code, err = env.Computeha(ctx, "recovery", "clear", h)
	if err != nil || code != 0 {
		t.Fatalf("computeha recovery clear %s: exit %d, %v: %s%s", h, code, err, out, errOut)
	}
	t.Logf("computeha recovery clear %s: %s", h, strings.TrimSpace(out))
	if st, err := env.Mark(ctx, h); err != nil || st.Phase != evacstate.None {
		t.Errorf("%s is %+v after the clear (%v)", h, st, err)
	}
	room()
	if _, err := env.PowerOn(ctx, h, 4*time.Minute, testLog{t}); err != nil {
		t.Fatal(err)
	}
	if s, err := env.Nova.Server(ctx, left[0].ID); err != nil || s.Host != h {
		t.Errorf("%s, left to the operator, is on %q (%v), want still on %s", left[0].Name, s.Host, err, h)
	}
	decisions, err = env.History(ctx, h, "decision")
	if err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(decisions, func(e HistoryEvent) bool { return e.ReasonCode == "recovery-cleared" }) {
		t.Errorf("no clearing of %s's recovery in the history", h)
	}
}

// admissionControl boots, on every compute, a VM of a flavor sized so that together they take
// more than the segment's n+1 headroom (the disk Placement counts; the fake driver allocates
// nothing): computeha status says the segment no longer meets its policy, and the daemon's
// headroom gauge, which its ComputehaSegmentNoHeadroom alert reads, goes below zero. Deleted,
// both come back.
func admissionControl(ctx context.Context, t *testing.T, env *Env) {
	env.quiet(ctx, t)
	headroom := func() (int64, string) {
		t.Helper()
		out, errOut, code, err := env.Computeha(ctx, "status", "--json", "--config", env.EvacdConfig())
		if err != nil || code != 0 {
			t.Fatalf("computeha status: exit %d, %v: %s%s", code, err, out, errOut)
		}
		var r status.Report
		if err := json.Unmarshal([]byte(out), &r); err != nil {
			t.Fatalf("computeha status --json: %v", err)
		}
		for _, s := range r.Segments {
			if s.Name == "lab" {
				if s.Admission != "n+1" {
					t.Errorf("segment lab's admission policy %q, want the default n+1", s.Admission)
				}
				return s.Headroom.DiskGB, r.Summary()
			}
		}
		t.Fatalf("no segment lab in computeha status: %s", out)
		return 0, ""
	}
	before, _ := headroom()
	if before < 0 {
		t.Fatalf("segment lab is short before the scenario: %d GB of disk headroom", before)
	}
	hosts := env.Computes()
	size := before/int64(len(hosts)) + 1
	const flavor = "90"
	if err := env.Admin.EnsureFlavor(ctx, flavor, "e2e.admission", 1, 64, int(size)); err != nil {
		t.Fatal(err)
	}
	var ids []string
	defer func() {
		for _, id := range ids {
			if err := env.Admin.Delete(ctx, id); err != nil {
				t.Errorf("deleting %s: %v", id, err)
			}
		}
	}()
	for _, h := range hosts {
		id, err := env.Admin.Boot(ctx, h+"-big", h, flavor)
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
		if got, err := env.Admin.Wait(ctx, id); err != nil || got != h {
			t.Fatalf("%s-big: on %q, %v", h, got, err)
		}
	}
	after, summary := headroom()
	t.Logf("disk headroom %d GB before, %d GB with a %d GB VM on each of %d hosts: %s", before, after, size, len(hosts), summary)
	if after >= 0 || !strings.Contains(summary, "segment lab no longer meets its admission policy n+1") {
		t.Errorf("computeha status: headroom %d GB, %q; want below zero, said", after, summary)
	}
	const gauge = `computeha_segment_headroom_disk_bytes{segment="lab"}`
	if err := env.WaitDaemonMetric(ctx, gauge, func(v float64) bool { return v < 0 }, 2*time.Minute); err != nil {
		t.Error(err)
	}
	for _, id := range ids {
		if err := env.Admin.Delete(ctx, id); err != nil {
			t.Fatal(err)
		}
	}
	ids = nil
	if err := env.WaitDaemonMetric(ctx, gauge, func(v float64) bool { return v >= 0 }, 2*time.Minute); err != nil {
		t.Error(err)
	}
	if h, summary := headroom(); h < 0 {
		t.Errorf("computeha status once the VMs are deleted: headroom %d GB, %q", h, summary)
	}
}
