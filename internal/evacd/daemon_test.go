package evacd

import (
	"context"
	"errors"
	"fmt"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/computeha/computeha/crm"
	"github.com/computeha/computeha/internal/config"
	"github.com/computeha/computeha/internal/evacstate"
	"github.com/computeha/computeha/internal/history"
	"github.com/computeha/computeha/internal/metrics"
	"github.com/computeha/computeha/internal/openstack"
	"github.com/computeha/computeha/internal/reserve"
)

// mark has fence_nova mark node for evacuation at at.
func mark(c *crm.Fake, node string, at time.Time) {
	_ = evacstate.Marks{Attrs: c}.Set(context.Background(), node, evacstate.State{Phase: evacstate.Pending, By: "fence_nova", Since: at})
}

// phase is node's evacuation phase.
func phase(c *crm.Fake, node string) evacstate.Phase {
	st, _ := evacstate.Marks{Attrs: c}.Get(context.Background(), node)
	return st.Phase
}

const testConfig = `
cloud: test
segments:
  seg-a:
    hosts: [cmp1, cmp2, cmp3, cmp4]
    recovery_method: %s
    reserved_hosts: [%s]
policy:
  default: off
  flavor_key: evacuable
evacuation:
  concurrency: 4
  retries: 2
  retry_backoff: {initial: 10ms, max: 20ms}
  confirm_timeout: 5s
guard:
  max_hosts: 3
  window: 10m
  max_segment_fraction: 0.6
`

type world struct {
	cluster *crm.Fake
	nova    *openstack.Fake
	store   *history.Store
	metrics *metrics.Metrics
	cfg     *config.Config
	daemon  *Daemon
	servers map[string]openstack.Server
}

func newWorld(t *testing.T, method, reserved string) *world {
	t.Helper()
	return newWorldIn(t, "", method, reserved)
}

// newWorldIn is newWorld for Pacemaker nodes cmp1-cmp4 whose Nova hosts are named
// cmpN.domain (cmpN without a domain), as the segment and reserved (a node name) are.
func newWorldIn(t *testing.T, domain, method, reserved string) *world {
	t.Helper()
	nodes := []string{"cmp1", "cmp2", "cmp3", "cmp4"}
	yaml := fmt.Sprintf(testConfig, method, reserved)
	if domain != "" {
		for _, n := range nodes {
			yaml = strings.ReplaceAll(yaml, n, n+"."+domain)
		}
		yaml = "nova_host_domain: " + domain + "\n" + yaml
	}
	cfg, err := config.Parse([]byte(yaml))
	if err != nil {
		t.Fatal(err)
	}
	w := &world{cluster: crm.NewFake(nil, nodes...), nova: openstack.NewFake(nil), cfg: cfg, servers: map[string]openstack.Server{}}
	for _, n := range nodes {
		h := cfg.NovaHost(n)
		w.nova.AddCompute(h, "nova")
		w.nova.SetResources(h, map[string]openstack.Resource{
			"VCPU":      {Total: 16, AllocationRatio: 1},
			"MEMORY_MB": {Total: 32768, AllocationRatio: 1},
			"DISK_GB":   {Total: 500, AllocationRatio: 1},
		})
	}
	if reserved != "" {
		s, _ := w.nova.FindComputeService(context.Background(), cfg.NovaHost(reserved))
		_, _ = w.nova.DisableService(context.Background(), s.ID, "reserved for failover")
	}
	w.metrics = metrics.New()
	w.store, err = history.Open(context.Background(), "sqlite", filepath.Join(t.TempDir(), "history.db"), history.WithObserver(w.metrics))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.store.Close() })
	return w
}

// boot adds n servers on host, HA through the flavor when ha is set.
func (w *world) boot(host string, n int, ha bool) {
	for i := range n {
		specs := map[string]string{}
		if ha {
			specs["evacuable"] = "true"
		}
		s := w.nova.AddServer(openstack.Server{
			Name: fmt.Sprintf("%s-vm%d-ha%v", host, i, ha), Host: host, ProjectID: "p1",
			Flavor: openstack.Flavor{VCPUs: 1, RAMMB: 512, DiskGB: 1, ExtraSpecs: specs},
		})
		w.servers[s.ID] = s
	}
}

// disable disables host's compute service in Nova, as an operator would.
func (w *world) disable(t *testing.T, host string) {
	t.Helper()
	s, _ := w.nova.FindComputeService(context.Background(), host)
	if _, err := w.nova.DisableService(context.Background(), s.ID, "maintenance"); err != nil {
		t.Fatal(err)
	}
}

// fail takes host down in Nova and has fence_nova mark it and Pacemaker fence it, now.
func (w *world) fail(host string) {
	now := time.Now().UTC()
	w.nova.KillCompute(host)
	mark(w.cluster, host, now)
	w.cluster.Fenced(host, now)
}

// run runs the daemon until stop returns true or the limit passes.
func (w *world) run(t *testing.T, limit time.Duration, stop func() bool) {
	t.Helper()
	w.runWith(t, w.nova, limit, stop)
}

// runWith is run with the daemon talking to nova, a wrapper of the world's fake Nova.
func (w *world) runWith(t *testing.T, nova openstack.Client, limit time.Duration, stop func() bool) {
	t.Helper()
	w.daemon = New(Options{
		Config: w.cfg, Cluster: w.cluster, Nova: nova, History: w.store, Metrics: w.metrics, Owner: "ctl1",
		Poll: 10 * time.Millisecond, Reconcile: 20 * time.Millisecond, ReserveEvery: 50 * time.Millisecond,
	})
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- w.daemon.Run(ctx, nil) }()
	for ctx.Err() == nil && !stop() {
		time.Sleep(10 * time.Millisecond)
	}
	if !stop() {
		t.Logf("daemon after %s: %+v", limit, w.daemon.Health())
	}
	cancel()
	<-done
}

func (w *world) hostOf(t *testing.T, id string) openstack.Server {
	t.Helper()
	s, err := w.nova.Server(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// evacuations counts the Evacuate calls per server.
func (w *world) evacuations() map[string]int {
	out := map[string]int{}
	for _, c := range w.nova.Calls() {
		if f := strings.Fields(c); len(f) >= 2 && f[0] == "Evacuate" {
			out[f[1]]++
		}
	}
	return out
}

// evacuated counts the evacuations Nova carried out per server (its migration records): a
// request it refused, as it does while it still sees the source up, is none.
func (w *world) evacuated(t *testing.T) map[string]int {
	t.Helper()
	migs, err := w.nova.Migrations(context.Background(), openstack.MigrationFilter{Type: "evacuation"})
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]int{}
	for _, m := range migs {
		out[m.ServerID]++
	}
	return out
}

func (w *world) events(t *testing.T, kind history.Kind) []history.Event {
	t.Helper()
	evs, err := w.store.Query(context.Background(), history.Filter{Kind: kind})
	if err != nil {
		t.Fatal(err)
	}
	return evs
}

func TestAFencedHostsHAVMsAreRecoveredInsideTheSegmentOnce(t *testing.T) {
	bubble(t, func(t *testing.T) {
		w := newWorld(t, "auto", "")
		w.boot("cmp1", 6, true)
		w.boot("cmp1", 2, false)
		w.boot("cmp2", 1, true)
		now := time.Now().UTC()
		w.nova.KillCompute("cmp1")
		mark(w.cluster, "cmp1", now)
		w.cluster.Fenced("cmp1", now.Add(time.Second))

		w.run(t, 10*time.Second, func() bool { return phase(w.cluster, "cmp1") == evacstate.Done })
		if p := phase(w.cluster, "cmp1"); p != evacstate.Done {
			t.Fatalf("cmp1 is %q, want done (health %+v)", p, w.daemon.Health())
		}
		counts := w.evacuated(t)
		for id, s := range w.servers {
			got := w.hostOf(t, id)
			ha := strings.HasSuffix(s.Name, "hatrue")
			switch {
			case s.Host != "cmp1":
				if counts[id] != 0 || got.Host != s.Host {
					t.Errorf("%s on %s was touched", s.Name, s.Host)
				}
			case ha:
				if got.Host == "cmp1" || got.Status != "ACTIVE" || counts[id] != 1 {
					t.Errorf("%s: on %s, %s, evacuated %d times; want ACTIVE elsewhere, once", s.Name, got.Host, got.Status, counts[id])
				}
			default:
				if got.Host != "cmp1" || counts[id] != 0 {
					t.Errorf("non-HA %s was moved to %s", s.Name, got.Host)
				}
			}
		}
		svc, _ := w.nova.FindComputeService(context.Background(), "cmp1")
		if !svc.ForcedDown || svc.Enabled() {
			t.Errorf("cmp1's service: %+v", svc)
		}
		// The job marks the host done, then closes the incident: give it the moment between.
		var (
			incs []history.IncidentInfo
			err  error
		)
		for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
			incs, err = w.store.Incidents(context.Background(), history.Filter{Host: "cmp1"})
			if err != nil || (len(incs) == 1 && !incs[0].Closed.IsZero()) || time.Now().After(deadline) {
				break
			}
		}
		if err != nil || len(incs) != 1 || incs[0].Outcome != history.OutcomeRecovered {
			t.Errorf("incidents: %+v (%v)", incs, err)
		}
		moves, _ := w.store.Moves(context.Background(), history.Filter{Host: "cmp1"})
		var ok, skipped int
		for _, m := range moves {
			switch m.Result {
			case history.MoveSucceeded:
				ok++
			case history.MoveSkipped:
				skipped++
			}
		}
		if ok != 6 || skipped != 2 {
			t.Errorf("history moves: %d succeeded, %d skipped; want 6 and 2", ok, skipped)
		}
		// The metrics say what the history says, and no recovery is left in flight.
		scrape := w.scrape(t)
		for _, want := range []string{
			`computeha_vm_recoveries_total{method="evacuate",result="succeeded"} 6`,
			`computeha_vm_recovery_duration_seconds_count{method="evacuate"} 6`,
			`computeha_history_events_total{kind="decision",reason="fencing-confirmed"} 1`,
		} {
			if !strings.Contains(scrape, want) {
				t.Errorf("the metrics lack %s:\n%s", want, grepLines(scrape, "computeha_"))
			}
		}
		if strings.Contains(scrape, "computeha_recovery_phase{") {
			t.Errorf("a recovery phase is left after the recovery:\n%s", grepLines(scrape, "computeha_recovery_phase"))
		}
	})
}

// scrape is what GET /metrics answers now.
func (w *world) scrape(t *testing.T) string {
	t.Helper()
	rec := httptest.NewRecorder()
	w.metrics.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	if rec.Code != 200 {
		t.Fatalf("GET /metrics: %d %s", rec.Code, rec.Body)
	}
	return rec.Body.String()
}

func grepLines(s, prefix string) string {
	var out []string
	for l := range strings.Lines(s) {
		if strings.HasPrefix(l, prefix) {
			out = append(out, strings.TrimSpace(l))
		}
	}
	return strings.Join(out, "\n")
}

func TestNothingMovesWithoutAConfirmedFencing(t *testing.T) {
	for _, tt := range []struct {
		name  string
		setup func(w *world, now time.Time)
	}{
		{"no fencing at all", func(*world, time.Time) {}},
		{"only a fencing from before the mark", func(w *world, now time.Time) { w.cluster.Fenced("cmp1", now.Add(-time.Hour)) }},
		{"a fencing that failed", func(w *world, now time.Time) {
			w.cluster.AddFencing(crm.FenceEvent{Action: "reboot", Target: "cmp1", Status: "failed", Completed: now})
		}},
		{"a confirmed fencing but no quorum", func(w *world, now time.Time) { w.cluster.Fenced("cmp1", now); w.cluster.SetQuorate(false) }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			bubble(t, func(t *testing.T) {
				w := newWorld(t, "auto", "")
				w.boot("cmp1", 3, true)
				now := time.Now().UTC()
				w.nova.KillCompute("cmp1")
				mark(w.cluster, "cmp1", now)
				tt.setup(w, now)
				waiting := false
				w.run(t, 500*time.Millisecond, func() bool {
					waiting = waiting || strings.Contains(w.scrape(t), `computeha_recovery_phase{host="cmp1",phase="fencing"} 1`)
					return false
				})
				if n := len(w.evacuations()); n != 0 {
					t.Errorf("%d servers evacuated", n)
				}
				if !waiting {
					t.Errorf("the metrics never showed cmp1 waiting for its fencing")
				}
				if p := phase(w.cluster, "cmp1"); p != evacstate.Pending {
					t.Errorf("cmp1 is %q, want still pending", p)
				}
				found := false
				for _, e := range w.events(t, history.KindDecision) {
					found = found || e.Reason.Code == "fencing-unconfirmed"
				}
				if !found {
					t.Errorf("the history does not say why nothing moved")
				}
			})
		})
	}
}

func TestAResumedRecoveryNeverEvacuatesTwice(t *testing.T) {
	bubble(t, func(t *testing.T) {
		w := newWorld(t, "auto", "")
		w.boot("cmp1", 4, true)
		now := time.Now().UTC()
		w.nova.KillCompute("cmp1")
		svc, _ := w.nova.FindComputeService(context.Background(), "cmp1")
		_, _ = w.nova.ForceDown(context.Background(), svc.ID)
		// A previous daemon evacuated two of the four, then died.
		var first []string
		for id := range w.servers {
			if len(first) < 2 {
				if err := w.nova.Evacuate(context.Background(), id, "cmp2"); err != nil {
					t.Fatal(err)
				}
				first = append(first, id)
			}
		}
		before := w.evacuations()
		_ = w.cluster.SetAttribute(context.Background(), "cmp1", evacstate.Attribute,
			evacstate.State{Phase: evacstate.Running, Owner: "ctl2", Since: now}.String(), crm.Permanent)

		w.run(t, 10*time.Second, func() bool { return phase(w.cluster, "cmp1") == evacstate.Done })
		after := w.evacuations()
		for id := range w.servers {
			if after[id] != 1 {
				t.Errorf("server %s evacuated %d times in all (before the restart: %d)", id, after[id], before[id])
			}
			if w.hostOf(t, id).Host == "cmp1" {
				t.Errorf("server %s still on cmp1", id)
			}
		}
	})
}

func TestANovaOutageDelaysTheRecoveryWithoutFailingIt(t *testing.T) {
	bubble(t, func(t *testing.T) {
		w := newWorld(t, "auto", "")
		w.boot("cmp1", 3, true)
		now := time.Now().UTC()
		w.nova.KillCompute("cmp1")
		mark(w.cluster, "cmp1", now)
		w.cluster.Fenced("cmp1", now)
		outage := fmt.Errorf("%w: 503 from nova-api", openstack.ErrUnavailable)
		for range 3 {
			w.nova.FailNext("ServersOnHost", outage)
			w.nova.FailNext("Evacuate", outage)
		}
		w.run(t, 20*time.Second, func() bool { return phase(w.cluster, "cmp1") == evacstate.Done })
		if p := phase(w.cluster, "cmp1"); p != evacstate.Done {
			t.Fatalf("cmp1 is %q after the outage, want done", p)
		}
		for id := range w.servers {
			if w.hostOf(t, id).Host == "cmp1" {
				t.Errorf("server %s still on cmp1", id)
			}
		}
	})
}

func TestTheGuardPausesAMassFailureUntilReleased(t *testing.T) {
	bubble(t, func(t *testing.T) {
		w := newWorld(t, "auto", "")
		now := time.Now().UTC()
		for _, h := range []string{"cmp1", "cmp2", "cmp3"} {
			w.boot(h, 1, true)
			w.nova.KillCompute(h)
			mark(w.cluster, h, now)
			w.cluster.Fenced(h, now)
		}
		// Three of four hosts (0.75 > 0.6) failing together is held back.
		w.run(t, 700*time.Millisecond, func() bool { return false })
		if n := len(w.evacuations()); n != 0 {
			t.Errorf("%d servers evacuated despite the guard", n)
		}
		paused := 0
		for _, e := range w.events(t, history.KindGuard) {
			if strings.Contains(e.Summary, "paused") {
				paused++
			}
		}
		if paused == 0 {
			t.Errorf("no guard event in the history")
		}
		if len(w.events(t, history.KindAlert)) == 0 {
			t.Errorf("no alert in the history")
		}
		for _, h := range []string{"cmp1", "cmp2", "cmp3"} {
			_ = w.cluster.SetAttribute(context.Background(), h, ReleaseAttribute, time.Now().UTC().Format(time.RFC3339), crm.Permanent)
		}
		w.run(t, 10*time.Second, func() bool {
			return phase(w.cluster, "cmp1") == evacstate.Done && phase(w.cluster, "cmp2") == evacstate.Done && phase(w.cluster, "cmp3") == evacstate.Done
		})
		for id := range w.servers {
			if got := w.hostOf(t, id); got.Host != "cmp4" {
				t.Errorf("after release, %s is on %s, want cmp4 (the only host left)", id, got.Host)
			}
		}
	})
}

func TestAReservedHostIsTakenIntoUseAndRecorded(t *testing.T) {
	bubble(t, func(t *testing.T) {
		w := newWorld(t, "reserved_host", "cmp4")
		w.boot("cmp1", 2, true)
		now := time.Now().UTC()
		w.nova.KillCompute("cmp1")
		mark(w.cluster, "cmp1", now)
		w.cluster.Fenced("cmp1", now)
		w.run(t, 10*time.Second, func() bool { return phase(w.cluster, "cmp1") == evacstate.Done })
		for id := range w.servers {
			if got := w.hostOf(t, id); got.Host != "cmp4" {
				t.Errorf("%s on %s, want the reserved host cmp4", id, got.Host)
			}
		}
		svc, _ := w.nova.FindComputeService(context.Background(), "cmp4")
		if !svc.Enabled() {
			t.Errorf("the reserved host was not enabled")
		}
		if v, _ := w.cluster.Attribute(context.Background(), "cmp4", reserve.UsedAttribute, crm.Permanent); v == "" {
			t.Errorf("the reserved host's use is not recorded")
		}
	})
}

func TestAnEmptiedReservedHostGoesBackToThePoolWhereTheSegmentSaysAuto(t *testing.T) {
	bubble(t, func(t *testing.T) {
		w := newWorld(t, "reserved_host", "cmp4")
		seg := w.cfg.Segments["seg-a"]
		seg.ReservedReturn = config.ReservedReturnAuto
		w.cfg.Segments["seg-a"] = seg
		w.boot("cmp1", 1, true)
		now := time.Now().UTC()
		w.nova.KillCompute("cmp1")
		mark(w.cluster, "cmp1", now)
		w.cluster.Fenced("cmp1", now)
		used := func() bool {
			v, _ := w.cluster.Attribute(context.Background(), "cmp4", reserve.UsedAttribute, crm.Permanent)
			return v != ""
		}
		recorded := func() bool {
			for _, e := range w.events(t, history.KindDecision) {
				if e.Host == "cmp4" && e.Reason.Code == "reserved-returned" {
					return true
				}
			}
			return false
		}
		var deleted bool
		w.run(t, 10*time.Second, func() bool {
			if !deleted && phase(w.cluster, "cmp1") == evacstate.Done {
				// Taken into use and holding the VM: it stays in use while it does.
				time.Sleep(200 * time.Millisecond)
				if !used() {
					t.Fatal("cmp4 returned while it holds a VM")
				}
				for id := range w.servers {
					_ = w.nova.DeleteServer(context.Background(), id)
				}
				deleted = true
			}
			return deleted && !used() && recorded()
		})
		if !deleted || used() {
			t.Fatalf("cmp4 not returned to the pool (recovery %q, VM deleted %v)", phase(w.cluster, "cmp1"), deleted)
		}
		svc, _ := w.nova.FindComputeService(context.Background(), "cmp4")
		if svc.Enabled() || !strings.HasPrefix(svc.DisabledReason, evacstate.ReserveReasonPrefix) {
			t.Errorf("returned cmp4: %+v, want disabled as held in reserve", svc)
		}
		if !recorded() {
			t.Error("the return is not in the history")
		}
	})
}

func TestAReservedHostEnabledOrDisabledForAnotherReasonIsAlertedOnce(t *testing.T) {
	bubble(t, func(t *testing.T) {
		w := newWorld(t, "reserved_host", "cmp4")
		svc, _ := w.nova.FindComputeService(context.Background(), "cmp4")
		if _, err := w.nova.EnableService(context.Background(), svc.ID); err != nil {
			t.Fatal(err)
		}
		alerts := func(code string) int {
			n := 0
			for _, e := range w.events(t, history.KindAlert) {
				if e.Host == "cmp4" && string(e.Reason.Code) == code {
					n++
				}
			}
			return n
		}
		w.run(t, time.Second, func() bool { return false })
		if n := alerts("reserved-exposed"); n != 1 {
			t.Errorf("%d exposed alerts over a second of 50 ms looks, want 1", n)
		}
		if _, err := w.nova.DisableService(context.Background(), svc.ID, "PSU replacement"); err != nil {
			t.Fatal(err)
		}
		w.run(t, time.Second, func() bool { return alerts("reserved-withheld") > 0 })
		if n := alerts("reserved-withheld"); n != 1 {
			t.Errorf("%d withheld alerts, want 1", n)
		}
	})
}

func TestAVMThatCannotBeRecoveredMarksTheHostFailed(t *testing.T) {
	bubble(t, func(t *testing.T) {
		w := newWorld(t, "auto", "")
		w.boot("cmp1", 1, true)
		now := time.Now().UTC()
		w.nova.KillCompute("cmp1")
		mark(w.cluster, "cmp1", now)
		w.cluster.Fenced("cmp1", now)
		for range 5 {
			w.nova.FailNext("Evacuate", errors.New("400 bad request: instance locked"))
		}
		w.run(t, 10*time.Second, func() bool { return phase(w.cluster, "cmp1") == evacstate.Failed })
		if p := phase(w.cluster, "cmp1"); p != evacstate.Failed {
			t.Fatalf("cmp1 is %q, want failed", p)
		}
		v, _ := w.cluster.Attribute(context.Background(), "cmp1", evacstate.Attribute, crm.Permanent)
		if st, _ := evacstate.Parse(v); !strings.Contains(st.Reason, "1 VMs not recovered") || !st.Blocking() {
			t.Errorf("failed state %+v should say why and keep the host out", st)
		}
		// The job is over; the metrics say failed for as long as the mark does.
		failed := `computeha_recovery_phase{host="cmp1",phase="failed"} 1`
		if scrape := w.scrape(t); !strings.Contains(scrape, failed) {
			t.Errorf("the metrics lack %s:\n%s", failed, grepLines(scrape, "computeha_recovery"))
		}
		if err := w.cluster.SetAttribute(context.Background(), "cmp1", evacstate.Attribute, "", crm.Permanent); err != nil {
			t.Fatal(err)
		}
		w.run(t, time.Second, func() bool { return !strings.Contains(w.scrape(t), failed) })
		if scrape := w.scrape(t); strings.Contains(scrape, "computeha_recovery_phase{") {
			t.Errorf("the mark is cleared, the metrics still say:\n%s", grepLines(scrape, "computeha_recovery"))
		}
	})
}

func TestAnOperatorRetriesOneFailedRecoveryToSuccessAndClearsAnother(t *testing.T) {
	bubble(t, func(t *testing.T) {
		w := newWorld(t, "auto", "")
		w.boot("cmp1", 1, true)
		w.boot("cmp2", 1, true)
		now := time.Now().UTC()
		for _, h := range []string{"cmp1", "cmp2"} {
			w.nova.KillCompute(h)
			mark(w.cluster, h, now)
			w.cluster.Fenced(h, now)
		}
		for range 100 {
			w.nova.FailNext("Evacuate", errors.New("400 bad request: instance locked"))
		}
		op := evacstate.Operator{Cluster: w.cluster, Now: time.Now, FenceTimeout: time.Second}
		var acted, fenced bool
		var retried time.Time
		var evacuationsAtRetry int
		cleared := func() bool {
			for _, e := range w.events(t, history.KindDecision) {
				if e.Host == "cmp2" && e.Reason.Code == "recovery-cleared" {
					return true
				}
			}
			return false
		}
		w.run(t, 20*time.Second, func() bool {
			// The operator acts seconds after the failure (a mark's time has whole seconds).
			if !acted && phase(w.cluster, "cmp1") == evacstate.Failed && phase(w.cluster, "cmp2") == evacstate.Failed && time.Since(now) > 2*time.Second {
				w.nova.ClearFailures("Evacuate")
				if _, err := op.Retry(context.Background(), "cmp1"); err != nil {
					t.Fatal(err)
				}
				if _, err := op.Clear(context.Background(), "cmp2"); err != nil {
					t.Fatal(err)
				}
				acted, retried, evacuationsAtRetry = true, time.Now(), w.count("Evacuate")
			}
			// The fencing the retry asked for lands in the history 5 s later: the fencing of
			// the first failure, seconds before the retry, does not confirm it.
			if acted && !fenced && time.Since(retried) > 5*time.Second {
				if n := w.count("Evacuate"); n != evacuationsAtRetry {
					t.Errorf("%d evacuations asked after the retry, before its fencing", n-evacuationsAtRetry)
				}
				w.cluster.Fenced("cmp1", time.Now().UTC())
				fenced = true
			}
			return fenced && phase(w.cluster, "cmp1") == evacstate.Done && cleared()
		})
		if !acted {
			t.Fatalf("the recoveries did not both fail: cmp1 %q, cmp2 %q", phase(w.cluster, "cmp1"), phase(w.cluster, "cmp2"))
		}
		if p := phase(w.cluster, "cmp1"); p != evacstate.Done {
			t.Errorf("retried cmp1 is %q, want done", p)
		}
		if ev := w.evacuated(t); len(ev) != 1 {
			t.Errorf("evacuations carried out %v, want cmp1's VM's only", ev)
		}
		if p := phase(w.cluster, "cmp2"); p != evacstate.None {
			t.Errorf("cleared cmp2 is %q", p)
		}
		var recorded bool
		for _, e := range w.events(t, history.KindDecision) {
			recorded = recorded || (e.Host == "cmp1" && e.Reason.Code == "recovery-retry")
		}
		if !recorded || !cleared() {
			t.Errorf("the history lacks the retry (%v) or the clearing (%v)", recorded, cleared())
		}
		if scrape := w.scrape(t); strings.Contains(scrape, `phase="failed"`) {
			t.Errorf("no recovery has failed any more, the metrics say:\n%s", grepLines(scrape, "computeha_recovery"))
		}
	})
}

func TestADaemonStoppedMidRecoveryLeavesTheHostForTheNextOne(t *testing.T) {
	bubble(t, func(t *testing.T) {
		w := newWorld(t, "auto", "")
		w.boot("cmp1", 2, true)
		now := time.Now().UTC()
		w.nova.KillCompute("cmp1")
		mark(w.cluster, "cmp1", now)
		w.cluster.Fenced("cmp1", now)
		outage := fmt.Errorf("%w: 503", openstack.ErrUnavailable)
		for range 1000 {
			w.nova.FailNext("Aggregates", outage)
		}
		w.run(t, 300*time.Millisecond, func() bool { return false })
		if p := phase(w.cluster, "cmp1"); p != evacstate.Pending && p != evacstate.Running {
			t.Errorf("after a stop during a Nova outage cmp1 is %q, want still pending or running", p)
		}
	})
}

func TestAnERRORVMIsResetThenEvacuatedWhenConfiguredSo(t *testing.T) {
	bubble(t, func(t *testing.T) {
		w := newWorld(t, "auto", "")
		w.cfg.Evacuation.ErrorVMs = config.ErrorVMsResetState
		w.boot("cmp1", 1, true)
		var id string
		for sid := range w.servers {
			id = sid
		}
		if err := w.nova.ResetState(context.Background(), id, "error"); err != nil {
			t.Fatal(err)
		}
		now := time.Now().UTC()
		w.nova.KillCompute("cmp1")
		mark(w.cluster, "cmp1", now)
		w.cluster.Fenced("cmp1", now)
		w.run(t, 10*time.Second, func() bool { return phase(w.cluster, "cmp1") == evacstate.Done })
		if got := w.hostOf(t, id); got.Host == "cmp1" || got.Status != "ACTIVE" {
			t.Errorf("the ERROR VM is %s on %s, want ACTIVE elsewhere", got.Status, got.Host)
		}
		reset := false
		for _, c := range w.nova.Calls() {
			reset = reset || strings.HasPrefix(c, "ResetState "+id+" active")
		}
		if !reset {
			t.Errorf("the VM was not reset to active before its evacuation: %v", w.nova.Calls())
		}
	})
}

// bubble runs f in a synctest bubble: its clock moves only when every goroutine of the test
// waits, so the daemon's polls, retries and timeouts cost no time on the machine's clock.
func bubble(t *testing.T, f func(t *testing.T)) {
	t.Helper()
	synctest.Test(t, f)
}

// count is how many calls of method the fake Nova saw.
func (w *world) count(method string) int {
	n := 0
	for _, c := range w.nova.Calls() {
		if f := strings.Fields(c); len(f) > 0 && f[0] == method {
			n++
		}
	}
	return n
}

func TestTheHistoryIsPrunedOfWhatEndedBeforeTheRetentionNeverOfAnOpenIncident(t *testing.T) {
	bubble(t, func(t *testing.T) {
		w := newWorld(t, "auto", "")
		w.cfg.History.Retention = 30 * 24 * time.Hour
		ctx := context.Background()
		incident := func(host string, closeIt bool) {
			in, err := w.store.OpenIncident(ctx, host, history.Event{Summary: host + " lost"})
			if err != nil {
				t.Fatal(err)
			}
			if closeIt {
				if err := in.Close(ctx, history.OutcomeRecovered, "", history.Reason{}); err != nil {
					t.Fatal(err)
				}
			}
		}
		hosts := func() []string {
			ins, err := w.store.Incidents(ctx, history.Filter{})
			if err != nil {
				t.Fatal(err)
			}
			var out []string
			for _, in := range ins {
				out = append(out, in.Host)
			}
			return out
		}
		// Forty days ago (the bubble's clock is the store's): one incident closed, one left open.
		incident("cmp1", true)
		incident("cmp2", false)
		time.Sleep(40 * 24 * time.Hour)
		incident("cmp3", true) // closed now

		w.run(t, history.PruneDelay-time.Minute, func() bool { return false })
		if got := hosts(); len(got) != 3 {
			t.Errorf("pruned before history.PruneDelay: %v left", got)
		}
		w.run(t, history.PruneDelay+time.Minute, func() bool { return false })
		if got := hosts(); !slices.Equal(got, []string{"cmp2", "cmp3"}) {
			t.Errorf("after a pruning: %v left; want the open old incident and the recent one", got)
		}
		if evs := w.events(t, history.KindFailure); len(evs) != 3 || evs[0].Host != "cmp2" {
			t.Errorf("events left: %+v; want cmp2's opening, cmp3's opening and close", evs)
		}
	})
}

func TestAFailedHostGoingOfflineIsNotTakenForACleared(t *testing.T) {
	bubble(t, func(t *testing.T) {
		w := newWorld(t, "auto", "")
		w.boot("cmp1", 1, true)
		w.fail("cmp1")
		for range 100 {
			w.nova.FailNext("Evacuate", errors.New("400 bad request: instance locked"))
		}
		d := New(Options{
			Config: w.cfg, Cluster: w.cluster, Nova: w.nova, History: w.store, Metrics: w.metrics, Owner: "ctl1",
			Poll: 10 * time.Millisecond, Reconcile: 20 * time.Millisecond,
		})
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		events := make(chan crm.Event)
		done := make(chan error, 1)
		go func() { done <- d.Run(ctx, events) }()
		for ctx.Err() == nil && phase(w.cluster, "cmp1") != evacstate.Failed {
			time.Sleep(10 * time.Millisecond)
		}
		failed, _ := w.cluster.Attribute(context.Background(), "cmp1", evacstate.Attribute, crm.Permanent)
		// Pacemaker loses and finds the powered-off host's connection again and again: crm_mon
		// shows its attributes, then none, and the watcher says the attribute changed.
		for i := range 20 {
			v := ""
			if i%2 == 1 {
				v = failed
			}
			events <- crm.Event{Kind: crm.AttributeChanged, Node: "cmp1", Name: evacstate.Attribute, Value: v, Time: time.Now()}
			time.Sleep(50 * time.Millisecond)
		}
		cancel()
		<-done
		for _, e := range w.events(t, history.KindDecision) {
			if e.Reason.Code == "recovery-cleared" {
				t.Errorf("recorded while nobody cleared anything: %s", e.Summary)
			}
		}
		if p := phase(w.cluster, "cmp1"); p != evacstate.Failed {
			t.Errorf("cmp1 is %q", p)
		}
	})
}

// A daemon stopped between marking a host's recovery done and closing its incident leaves the
// incident open; the daemon that takes over closes it, and leaves alone an incident opened
// after the mark (a later failure of the host, still being handled).
func TestAnIncidentLeftOpenByADaemonStoppedAfterItsDoneMarkIsClosedOnTakingOver(t *testing.T) {
	bubble(t, func(t *testing.T) {
		w := newWorld(t, "auto", "")
		ctx := context.Background()
		orphan, err := w.store.OpenIncident(ctx, "cmp1", history.Event{Summary: "cmp1 marked for evacuation"})
		if err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Minute)
		if err := (evacstate.Marks{Attrs: w.cluster}).Set(ctx, "cmp1", evacstate.State{Phase: evacstate.Done, Since: time.Now().UTC()}); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Minute)
		later, err := w.store.OpenIncident(ctx, "cmp1", history.Event{Summary: "cmp1's VM failed"})
		if err != nil {
			t.Fatal(err)
		}
		w.run(t, time.Second, func() bool { return false })
		incs, err := w.store.Incidents(ctx, history.Filter{Host: "cmp1"})
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]history.Outcome{}
		for _, in := range incs {
			got[in.ID] = in.Outcome
		}
		if got[orphan.ID] != history.OutcomeRecovered || got[later.ID] != "" || len(got) != 2 {
			t.Errorf("incidents after the daemon ran: %v; want %s recovered and %s still open", got, orphan.ID, later.ID)
		}
		evs, err := w.store.Query(ctx, history.Filter{Incident: orphan.ID})
		if err != nil {
			t.Fatal(err)
		}
		if last := evs[len(evs)-1]; !strings.Contains(last.Summary, "had ended") {
			t.Errorf("the closing event says %q", last.Summary)
		}
	})
}
