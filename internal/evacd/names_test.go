package evacd

import (
	"context"
	"encoding/json"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/computeha/computeha/crm"
	"github.com/computeha/computeha/internal/evacstate"
	"github.com/computeha/computeha/internal/health"
	"github.com/computeha/computeha/internal/history"
	"github.com/computeha/computeha/internal/openstack"
	"github.com/computeha/computeha/internal/reserve"
)

// In these tests Pacemaker names the computes cmp1-cmp4 and Nova cmp1.example.com-
// cmp4.example.com (nova_host_domain: example.com): the fake Nova knows only the long names,
// the fake cluster only the short ones, so a call with the wrong name finds nothing.

const testDomain = "example.com"

func fqdn(node string) string { return node + "." + testDomain }

// evacuateTargets lists the target of every Evacuate call, sorted ("" when the scheduler chose).
func (w *world) evacuateTargets() []string {
	var out []string
	for _, c := range w.nova.Calls() {
		if f := strings.Fields(c); len(f) >= 1 && f[0] == "Evacuate" {
			target := ""
			if len(f) >= 3 {
				target = f[2]
			}
			out = append(out, target)
		}
	}
	sort.Strings(out)
	return out
}

// roomy gives a Nova host 16 times the room of the others, so that the plan prefers it.
func (w *world) roomy(host string) {
	w.nova.SetResources(host, map[string]openstack.Resource{
		"VCPU":      {Total: 256, AllocationRatio: 1},
		"MEMORY_MB": {Total: 262144, AllocationRatio: 1},
		"DISK_GB":   {Total: 5000, AllocationRatio: 1},
	})
}

// start runs the daemon until the returned stop is first called.
func (w *world) start(t *testing.T, limit time.Duration) (stop func()) {
	t.Helper()
	w.daemon = New(Options{
		Config: w.cfg, Cluster: w.cluster, Nova: w.nova, History: w.store, Owner: "ctl1",
		Poll: 10 * time.Millisecond, Reconcile: 20 * time.Millisecond,
	})
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	done := make(chan error, 1)
	go func() { done <- w.daemon.Run(ctx, nil) }()
	var once sync.Once
	return func() { once.Do(func() { cancel(); <-done }) }
}

// waitFor polls cond every 10 ms until it holds or limit passes, and tells which.
func waitFor(limit time.Duration, cond func() bool) bool {
	for deadline := time.Now().Add(limit); !cond(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			return false
		}
	}
	return true
}

func TestAFencedShortNamedNodesVMsAreEvacuatedFromItsNovaHostInsideItsSegment(t *testing.T) {
	bubble(t, func(t *testing.T) {
		w := newWorldIn(t, testDomain, "auto", "")
		// A Nova host outside the segment, empty and enabled: the scheduler's favourite, never ours.
		w.nova.AddCompute("cmp9."+testDomain, "nova")
		w.roomy("cmp9." + testDomain)
		w.boot(fqdn("cmp1"), 4, true)
		w.boot(fqdn("cmp1"), 1, false)
		now := time.Now().UTC()
		w.nova.KillCompute(fqdn("cmp1"))
		mark(w.cluster, "cmp1", now)
		w.cluster.Fenced("cmp1", now.Add(time.Second))

		ctx := context.Background()
		recovered := func() bool {
			incs, err := w.store.Incidents(ctx, history.Filter{Host: "cmp1"})
			return err == nil && len(incs) == 1 && incs[0].Outcome == history.OutcomeRecovered
		}
		// The daemon closes the incident after it marks the node done: it runs until both.
		w.run(t, 10*time.Second, func() bool { return phase(w.cluster, "cmp1") == evacstate.Done && recovered() })
		if p := phase(w.cluster, "cmp1"); p != evacstate.Done {
			t.Fatalf("node cmp1 is %q, want done (health %+v, Nova calls %v)", p, w.daemon.Health(), w.nova.Calls())
		}
		segment := []string{fqdn("cmp2"), fqdn("cmp3"), fqdn("cmp4")}
		for id, s := range w.servers {
			got := w.hostOf(t, id)
			if strings.HasSuffix(s.Name, "hatrue") {
				if !slices.Contains(segment, got.Host) || got.Status != "ACTIVE" {
					t.Errorf("HA VM %s is %s on %s, want ACTIVE on another Nova host of the segment", s.Name, got.Status, got.Host)
				}
			} else if got.Host != fqdn("cmp1") {
				t.Errorf("non-HA VM %s moved to %s", s.Name, got.Host)
			}
		}
		for _, target := range w.evacuateTargets() {
			if !slices.Contains(segment, target) {
				t.Errorf("an evacuation named target %q, want a Nova host of the segment", target)
			}
		}
		if svc, _ := w.nova.FindComputeService(context.Background(), fqdn("cmp1")); !svc.ForcedDown || svc.Enabled() {
			t.Errorf("cmp1.example.com's service is not forced down and disabled: %+v", svc)
		}

		// The history names the Pacemaker node, as an operator finds it in crm_mon.
		if !recovered() {
			incs, err := w.store.Incidents(ctx, history.Filter{})
			t.Errorf("no recovered incident of node cmp1: %+v (%v)", incs, err)
		}
		moves, err := w.store.Moves(ctx, history.Filter{Host: "cmp1"})
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, m := range moves {
			got = append(got, m.From+" "+string(m.Result))
			if m.Result == history.MoveSucceeded && !slices.Contains([]string{"cmp2", "cmp3", "cmp4"}, m.To) {
				t.Errorf("move of %s recorded to %q, want the target's node name", m.VMName, m.To)
			}
		}
		sort.Strings(got)
		want := []string{"cmp1 skipped", "cmp1 succeeded", "cmp1 succeeded", "cmp1 succeeded", "cmp1 succeeded"}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("moves from node cmp1 in the history (-want +got):\n%s", diff)
		}
		failures, err := w.store.Query(ctx, history.Filter{Host: "cmp1", Kind: history.KindFailure})
		if err != nil || len(failures) == 0 {
			t.Fatalf("no failure event of node cmp1: %v", err)
		}
		var details map[string]string
		if err := json.Unmarshal(failures[0].Details, &details); err != nil || details["nova_host"] != fqdn("cmp1") {
			t.Errorf("the failure event's details %s do not name the Nova host cmp1.example.com (%v)", failures[0].Details, err)
		}
	})
}

func TestANodeBeingRecoveredIsNeverATargetUnderItsNovaName(t *testing.T) {
	bubble(t, func(t *testing.T) {
		w := newWorldIn(t, testDomain, "auto", "")
		// cmp2 has by far the most room: only knowing that it is failing keeps VMs off it.
		w.roomy(fqdn("cmp2"))
		w.boot(fqdn("cmp1"), 4, true)
		now := time.Now().UTC()
		// cmp2 is marked, its fencing not yet confirmed: its job waits, and Nova still shows its
		// service up and enabled, as it does until fence_nova forces it down.
		mark(w.cluster, "cmp2", now)
		stop := w.start(t, 15*time.Second)
		defer stop()
		if !waitFor(5*time.Second, func() bool { _, ok := w.daemon.Health().Jobs["cmp2"]; return ok }) {
			t.Fatalf("no job for node cmp2: %+v", w.daemon.Health())
		}
		w.nova.KillCompute(fqdn("cmp1"))
		mark(w.cluster, "cmp1", now)
		w.cluster.Fenced("cmp1", now)
		if !waitFor(10*time.Second, func() bool { return phase(w.cluster, "cmp1") == evacstate.Done }) {
			t.Fatalf("node cmp1 is %q, want done (health %+v)", phase(w.cluster, "cmp1"), w.daemon.Health())
		}
		stop()
		for _, target := range w.evacuateTargets() {
			if target == fqdn("cmp2") || target == "cmp2" {
				t.Errorf("an evacuation targeted the failing node cmp2 (%s)", target)
			}
		}
		for id := range w.servers {
			if got := w.hostOf(t, id).Host; !slices.Contains([]string{fqdn("cmp3"), fqdn("cmp4")}, got) {
				t.Errorf("VM %s is on %s, want cmp3 or cmp4.example.com", id, got)
			}
		}
		if p := phase(w.cluster, "cmp2"); p != evacstate.Pending {
			t.Errorf("node cmp2 is %q, want still pending", p)
		}
	})
}

func TestReservedHostsAreTakenAndRecordedOnTheirNodes(t *testing.T) {
	t.Run("a reserved Nova host taken into use is recorded on its node", func(t *testing.T) {
		bubble(t, func(t *testing.T) {
			w := newWorldIn(t, testDomain, "reserved_host", "cmp4")
			w.boot(fqdn("cmp1"), 2, true)
			now := time.Now().UTC()
			w.nova.KillCompute(fqdn("cmp1"))
			mark(w.cluster, "cmp1", now)
			w.cluster.Fenced("cmp1", now)
			w.run(t, 10*time.Second, func() bool { return phase(w.cluster, "cmp1") == evacstate.Done })
			for id := range w.servers {
				if got := w.hostOf(t, id).Host; got != fqdn("cmp4") {
					t.Errorf("VM %s on %s, want the reserved host cmp4.example.com", id, got)
				}
			}
			if svc, _ := w.nova.FindComputeService(context.Background(), fqdn("cmp4")); !svc.Enabled() {
				t.Errorf("the reserved host was not enabled: %+v", svc)
			}
			if v, _ := w.cluster.Attribute(context.Background(), "cmp4", reserve.UsedAttribute, crm.Permanent); v == "" {
				t.Errorf("the reserved host's use is not recorded on node cmp4")
			}
		})
	})
	t.Run("a reserved host its node records as taken counts as an ordinary host", func(t *testing.T) {
		bubble(t, func(t *testing.T) {
			w := newWorldIn(t, testDomain, "auto", "cmp4")
			// The used reserved host has the most room: auto uses it only if it knows it is used.
			w.roomy(fqdn("cmp4"))
			_ = w.cluster.SetAttribute(context.Background(), "cmp4", reserve.UsedAttribute, time.Now().UTC().Format(time.RFC3339), crm.Permanent)
			svc, _ := w.nova.FindComputeService(context.Background(), fqdn("cmp4"))
			_, _ = w.nova.EnableService(context.Background(), svc.ID)
			w.boot(fqdn("cmp1"), 2, true)
			now := time.Now().UTC()
			w.nova.KillCompute(fqdn("cmp1"))
			// As fence_nova does before it marks the node: Nova sees the source down.
			src, _ := w.nova.FindComputeService(context.Background(), fqdn("cmp1"))
			_, _ = w.nova.ForceDown(context.Background(), src.ID)
			mark(w.cluster, "cmp1", now)
			w.cluster.Fenced("cmp1", now)
			w.run(t, 10*time.Second, func() bool { return phase(w.cluster, "cmp1") == evacstate.Done })
			if diff := cmp.Diff([]string{fqdn("cmp4"), fqdn("cmp4")}, w.evacuateTargets()); diff != "" {
				t.Errorf("evacuation targets (-want +got):\n%s", diff)
			}
		})
	})
}

func TestTheGuardNamesAndReleasesThePacemakerNode(t *testing.T) {
	bubble(t, func(t *testing.T) {
		w := newWorldIn(t, testDomain, "auto", "")
		now := time.Now().UTC()
		for _, n := range []string{"cmp1", "cmp2", "cmp3"} {
			w.boot(fqdn(n), 1, true)
			w.nova.KillCompute(fqdn(n))
			mark(w.cluster, n, now)
			w.cluster.Fenced(n, now)
		}
		w.run(t, 700*time.Millisecond, func() bool { return false })
		var alerts []string
		for _, e := range w.events(t, history.KindAlert) {
			if strings.HasPrefix(e.Summary, "operator action needed") {
				alerts = append(alerts, e.Host+": "+e.Summary)
			}
		}
		sort.Strings(alerts)
		want := []string{
			"cmp1: operator action needed: computeha guard release cmp1",
			"cmp2: operator action needed: computeha guard release cmp2",
			"cmp3: operator action needed: computeha guard release cmp3",
		}
		if diff := cmp.Diff(want, alerts); diff != "" {
			t.Errorf("the guard's alerts (-want +got):\n%s", diff)
		}
		for _, n := range []string{"cmp1", "cmp2", "cmp3"} {
			_ = w.cluster.SetAttribute(context.Background(), n, ReleaseAttribute, time.Now().UTC().Format(time.RFC3339), crm.Permanent)
		}
		w.run(t, 10*time.Second, func() bool {
			return phase(w.cluster, "cmp1") == evacstate.Done && phase(w.cluster, "cmp2") == evacstate.Done && phase(w.cluster, "cmp3") == evacstate.Done
		})
		for id := range w.servers {
			if got := w.hostOf(t, id).Host; got != fqdn("cmp4") {
				t.Errorf("after the release, %s is on %s, want cmp4.example.com", id, got)
			}
		}
	})
}

func TestTheHealthLoopActsOnTheNovaHostOfTheNodeItJudges(t *testing.T) {
	t.Run("an isolated node's Nova host is disabled, then enabled again once it runs", func(t *testing.T) {
		bubble(t, func(t *testing.T) {
			hw := healthWorldOf(newWorldIn(t, testDomain, "auto", ""))
			hw.steps(3)
			hw.judge.setFn("cmp1", isolated)
			hw.cluster.SetNode("cmp1", func(n *crm.Node) { n.Online, n.Unclean = false, true })
			hw.steps(5)
			if svc := hw.service(t, fqdn("cmp1")); svc.Enabled() || svc.DisabledReason != "computeha: health: isolated" {
				t.Errorf("cmp1.example.com's service after the isolation: %+v", svc)
			}
			hw.judge.setFn("cmp1", func() (health.Evidence, health.Decision) { return back(health.OK, health.OK) })
			hw.steps(5)
			hw.cluster.SetNode("cmp1", func(n *crm.Node) { n.Online, n.Unclean = true, false })
			hw.judge.setFn("cmp1", running)
			hw.steps(5)
			if svc := hw.service(t, fqdn("cmp1")); !svc.Enabled() {
				t.Errorf("cmp1.example.com's service once cmp1 runs again: %+v", svc)
			}
			want := []string{"DisableService " + hw.service(t, fqdn("cmp1")).ID, "EnableService " + hw.service(t, fqdn("cmp1")).ID}
			if diff := cmp.Diff(want, firstFields(hw.novaCalls("DisableService", "EnableService"), 2)); diff != "" {
				t.Errorf("Nova calls (-want +got):\n%s", diff)
			}
			want = []string{
				"cmp1 is running: none [healthy]", "cmp1 is isolated: disable [isolated]", "disabled cmp1 in Nova [health-disabled]",
				"cmp1 is service-unreachable: restart [service-unreachable]", "cmp1 is running: none [healthy]",
				"enabled cmp1 again in Nova: it is running [health-enabled]",
			}
			if diff := cmp.Diff(want, hw.hostEvents(t, "cmp1", history.KindDecision)); diff != "" {
				t.Errorf("node cmp1's decisions (-want +got):\n%s", diff)
			}
		})
	})
	t.Run("a node that lost its tenant network has its Nova host's HA VMs live-migrated inside the segment, then disabled", func(t *testing.T) {
		bubble(t, func(t *testing.T) {
			hw := healthWorldOf(newWorldIn(t, testDomain, "auto", ""))
			hw.nova.AddCompute("cmp9."+testDomain, "nova") // outside the segment
			hw.roomy("cmp9." + testDomain)
			hw.boot(fqdn("cmp2"), 3, true)
			hw.boot(fqdn("cmp2"), 1, false)
			hw.steps(3)
			hw.judge.setFn("cmp2", tenantLost)
			hw.steps(6)
			segment := []string{fqdn("cmp1"), fqdn("cmp3"), fqdn("cmp4")}
			for id, s := range hw.servers {
				got := hw.hostOf(t, id)
				ha := strings.HasSuffix(s.Name, "hatrue")
				switch {
				case ha && (!slices.Contains(segment, got.Host) || got.Status != "ACTIVE"):
					t.Errorf("HA VM %s is %s on %s, want ACTIVE on another Nova host of the segment", s.Name, got.Status, got.Host)
				case !ha && got.Host != fqdn("cmp2"):
					t.Errorf("non-HA VM %s moved to %s", s.Name, got.Host)
				}
			}
			for _, c := range hw.novaCalls("LiveMigrate") {
				if f := strings.Fields(c); len(f) < 3 || !slices.Contains(segment, f[2]) {
					t.Errorf("live migration %q does not name a Nova host of the segment", c)
				}
			}
			if svc := hw.service(t, fqdn("cmp2")); svc.Enabled() || svc.DisabledReason != "computeha: health: tenant network lost" {
				t.Errorf("cmp2.example.com's service after the migration: %+v", svc)
			}
			moves, err := hw.store.Moves(context.Background(), history.Filter{Host: "cmp2"})
			if err != nil {
				t.Fatal(err)
			}
			moved := 0
			for _, m := range moves {
				if m.Result == history.MoveSkipped {
					continue // a VM without HA, left on record
				}
				moved++
				if m.From != "cmp2" || m.Result != history.MoveSucceeded || !slices.Contains([]string{"cmp1", "cmp3", "cmp4"}, m.To) {
					t.Errorf("move %+v: want from node cmp2 to another node of the segment, succeeded", m)
				}
			}
			if moved != 3 {
				t.Errorf("%d moves of node cmp2 in the history, want 3", moved)
			}
			hw.noEvacuation(t)
		})
	})
}

// firstFields keeps the first n fields of each call.
func firstFields(calls []string, n int) []string {
	var out []string
	for _, c := range calls {
		f := strings.Fields(c)
		out = append(out, strings.Join(f[:min(n, len(f))], " "))
	}
	return out
}
