//go:build e2e

package e2e

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

type testLog struct{ t *testing.T }

func (w testLog) Write(p []byte) (int, error) {
	w.t.Log(string(p))
	return len(p), nil
}

// up brings the environment up for one test, with a 40-minute context, and takes it down
// when the test ends.
func up(t *testing.T) (context.Context, *Env) {
	t.Helper()
	return upWithin(t, 40*time.Minute)
}

// upWithin is up with a context of limit.
func upWithin(t *testing.T, limit time.Duration) (context.Context, *Env) {
	t.Helper()
	return upWith(t, limit, Options{})
}

// upWith is upWithin with the options o (its Dir, Bin and Log are set here).
func upWith(t *testing.T, limit time.Duration, o Options) (context.Context, *Env) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Fatal("the end-to-end suite needs root")
	}
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	t.Cleanup(cancel)
	bin, err := filepath.Abs(filepath.Join("..", "..", "bin"))
	if err != nil {
		t.Fatal(err)
	}
	if b := os.Getenv("LAB_BIN"); b != "" {
		bin = b
	}
	o.Dir, o.Bin, o.Log = filepath.Join(t.TempDir(), "e2e"), bin, testLog{t}
	env, err := Up(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { env.Down(context.Background()) })
	// Runs before Down (cleanups run last first), while the nodes' logs are still there.
	t.Cleanup(func() {
		if !t.Failed() {
			return
		}
		env.Diagnose(testLog{t})
		if dir, err := env.KeepLogs(keptLogsDir(t)); err != nil {
			t.Logf("keeping the logs: %v", err)
		} else {
			t.Logf("logs kept in %s", dir)
		}
	})
	env.auditSecrets(t)
	return ctx, env
}

// keptLogsDir is where a failed test's logs go: E2E_KEEP_DIR, or a directory under /tmp named
// after the test and the time.
func keptLogsDir(t *testing.T) string {
	base := os.Getenv("E2E_KEEP_DIR")
	if base == "" {
		base = "/tmp/computeha-e2e-failed"
	}
	return filepath.Join(base, strings.ReplaceAll(t.Name(), "/", "_")+"-"+time.Now().Format("20060102-150405"))
}

// TestPowerLoss is computeha's main job on real parts: a compute host with
// 10 HA VMs and 2 others loses power; Pacemaker fences it through its BMC
// and fence_nova; the evacuation daemon rebuilds exactly the HA VMs, once
// each, on the other hosts of the segment, never before the fencing was
// confirmed; the host is powered on again and is let back into Nova.
func TestPowerLoss(t *testing.T) {
	ctx, env := up(t)

	vms, err := env.Boot(ctx, "cmp1", 10, 2)
	if err != nil {
		t.Fatal(err)
	}
	prom, err := env.StartPrometheus(ctx, filepath.Join("..", ".."), false)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(prom.Stop)
	before := prom.baseline(ctx, t)
	// What the failure will do, asked before it happens.
	sims, simErr := env.Simulate(ctx, "cmp1")
	lost := time.Now()
	powerLossAndBack(ctx, t, env, "cmp1", vms)
	t.Run("computeha simulate, asked before the failure, named where each VM went", func(t *testing.T) {
		simulationCameTrue(ctx, t, env, sims, simErr, vms)
	})
	t.Run("computeha report gives each recovered VM the downtime its history says, and the totals add up", func(t *testing.T) {
		reportMatchesHistory(ctx, t, env, "cmp1", lost)
	})
	t.Run("a real Prometheus scraping the daemon counted the recovered VMs and the fencing the history has", func(t *testing.T) {
		prometheusMatchesHistory(ctx, t, env, prom, before, "cmp1", lost)
	})
	// Scraping every second costs the loaded machine: not kept for the scenarios after.
	prom.Stop()

	env.scenario(ctx, t, "the daemon killed mid-evacuation is restarted and finishes without evacuating twice", func(t *testing.T) {
		vms, err := env.Boot(ctx, "cmp2", 6, 0)
		if err != nil {
			t.Fatal(err)
		}
		env.OnEvacStart = func() {
			node, pid, err := env.EvacuatorPID(ctx)
			if err != nil {
				t.Errorf("finding the daemon: %v", err)
				return
			}
			if _, _, code, err := env.Lab.Exec(ctx, node, "kill", "-9", pid); err != nil || code != 0 {
				t.Errorf("killing the daemon on %s: exit %d, %v", node, code, err)
			}
			t.Logf("killed the evacuation daemon (pid %s on %s) mid-evacuation", pid, node)
		}
		defer func() { env.OnEvacStart = nil }()
		powerLossAndBack(ctx, t, env, "cmp2", vms)
	})

	env.scenario(ctx, t, "nova-api hung for 20 s mid-evacuation delays the recovery, which then completes", func(t *testing.T) {
		novaAPIHungDuringRecovery(ctx, t, env)
	})
	env.scenario(ctx, t, "a host powered on mid-evacuation is let back into Nova only once its evacuation is done", func(t *testing.T) {
		powerOnMidEvacuation(ctx, t, env)
	})
	env.scenario(ctx, t, "two hosts losing power together are both recovered onto the host left", func(t *testing.T) {
		twoHostsTogether(ctx, t, env)
	})
	env.scenario(ctx, t, "a VM sent to a host that dies before rebuilding it is rebuilt elsewhere at once, and nothing is built when that host comes back", func(t *testing.T) {
		targetDiesBeforeRebuilding(ctx, t, env)
	})
	env.scenario(ctx, t, "a failure beyond the mass-failure guard waits for an operator's release, then recovers", func(t *testing.T) {
		guardPausesMassFailure(ctx, t, env)
	})

	env.scenario(ctx, t, "a failed host's VMs are each recovered by their class, and never against their server group", func(t *testing.T) {
		classesAndGroups(ctx, t, env)
	})
	env.scenario(ctx, t, "restart tiers: a lower priority waits for the higher one to run, or for the tier timeout", func(t *testing.T) {
		restartTiers(ctx, t, env)
	})
	env.scenario(ctx, t, "a segment defined by an aggregate recovers onto its reserved hosts (reserved_host; the used one returned to the pool and taken again; rh_priority)", func(t *testing.T) {
		reservedHostsOfAnAggregateSegment(ctx, t, env)
	})

	env.scenario(ctx, t, "the DC, running the daemon, powered off mid-evacuation: the daemon resumes on another controller, nothing evacuated twice, nothing lost", func(t *testing.T) {
		dcPoweredOffMidEvacuation(ctx, t, env)
	})
	env.scenario(ctx, t, "a 2|1 controller partition during a compute failure: only the quorate side acts; the lone controller's daemon does nothing and says why", func(t *testing.T) {
		partitionDuringComputeFailure(ctx, t, env)
	})

	// Last: it leaves cmp3 off, with a fencing device that cannot work.
	env.scenario(ctx, t, "a host whose fencing fails is never evacuated", func(t *testing.T) {
		vms, err := env.Boot(ctx, "cmp3", 3, 0)
		if err != nil {
			t.Fatal(err)
		}
		if err := env.pcs(ctx, "stonith", "update", "fence-cmp3", "password_script=echo wrong-password"); err != nil {
			t.Fatal(err)
		}
		off := time.Now()
		if _, err := env.Lab.Power(ctx, "cmp3", "off"); err != nil {
			t.Fatal(err)
		}
		time.Sleep(60 * time.Second)
		for _, v := range vms {
			s, err := env.Nova.Server(ctx, v.ID)
			if err != nil || s.Host != "cmp3" {
				t.Errorf("%s moved to %q while cmp3's fencing fails (%v)", v.Name, s.Host, err)
			}
		}
		if hist, err := env.Fencings(ctx, "cmp3"); err == nil {
			for _, f := range hist {
				// Fencings of earlier scenarios are in the history too.
				if f.Succeeded() && !f.Completed.Before(off.Add(-time.Second)) {
					t.Errorf("fencing of cmp3 succeeded with a wrong password: %+v", f)
				}
			}
		}
	})
}

// powerLossAndBack powers host off, checks that every HA VM of vms is
// recovered as it must be, then powers host on and checks it is let back.
func powerLossAndBack(ctx context.Context, t *testing.T, env *Env, host string, vms []VM) {
	t.Helper()
	tl, err := env.PowerLoss(ctx, host, vms, 5*time.Minute, testLog{t})
	if err != nil {
		t.Fatal(err)
	}
	t.Log(tl.Summary())
	for _, v := range tl.Violations {
		t.Error(v)
	}
	if tl.AllActive == 0 {
		t.Fatalf("not every HA VM of %s was ACTIVE elsewhere within 5 minutes", host)
	}
	if _, err := env.PowerOn(ctx, host, 4*time.Minute, testLog{t}); err != nil {
		t.Error(err)
	}
}

// simulationCameTrue checks each VM ended where the simulation said: an HA VM on its target,
// by its method; any other left where it was.
func simulationCameTrue(ctx context.Context, t *testing.T, env *Env, sims []Simulated, simErr error, vms []VM) {
	if simErr != nil {
		t.Fatal(simErr)
	}
	if len(sims) != 1 || sims[0].Guard != "proceed" || len(sims[0].VMs) != len(vms) {
		t.Fatalf("simulation %+v, want one host whose %d VMs proceed", sims, len(vms))
	}
	for _, v := range sims[0].VMs {
		s, err := env.Nova.Server(ctx, v.ID)
		if err != nil {
			t.Errorf("%s: %v", v.Name, err)
			continue
		}
		want := v.Target
		if v.Outcome == "left" {
			want = "cmp1"
		}
		if v.Outcome != "left" && (v.Method != "evacuate" || v.Outcome != "move") {
			t.Errorf("%s: simulated %s by %s", v.Name, v.Outcome, v.Method)
		}
		if s.Host != want {
			t.Errorf("%s is on %s, the simulation said %s (%s)", v.Name, s.Host, want, v.Outcome)
		}
	}
	t.Logf("the simulation named the host of each of the %d VMs", len(sims[0].VMs))
}
