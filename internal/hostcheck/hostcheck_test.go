package hostcheck

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/computeha/computeha/internal/healthsock"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/computeha/computeha/internal/config"
	"github.com/computeha/computeha/internal/health"
)

// clock is a fake time source the test moves by hand.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func newClock() *clock { return &clock{now: time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// testHealth is a health section with this host (cmp1) and two peers on two networks.
func testHealth(dir string) config.Health {
	h := config.DefaultHealth()
	h.SharedDir = dir
	h.RestartCommand = "restart-the-service"
	h.Networks = []config.Network{{Name: "mgmt", Management: true}, {Name: "storage"}}
	h.Hosts = map[string]map[string]string{
		"cmp1":  {"mgmt": "10.0.0.1", "storage": "10.1.0.1"},
		"cmp2":  {"mgmt": "10.0.0.2", "storage": "10.1.0.2"},
		"ctrl1": {"mgmt": "10.0.0.10"},
	}
	return h
}

// rig is a checker of cmp1 with every edge faked.
type rig struct {
	c        *checker
	clock    *clock
	store    *FakeStore
	pub      *FakePublisher
	svc      *FakeService
	probers  map[string]*FakeProber
	restarts []time.Time
	mu       sync.Mutex
}

// newRig returns the rig; with, if given, changes its options before the checker is made.
func newRig(t *testing.T, h config.Health, store Store, with ...func(*Options)) *rig {
	t.Helper()
	r := &rig{clock: newClock(), pub: &FakePublisher{}, svc: &FakeService{}, probers: map[string]*FakeProber{}}
	r.svc.Set(true)
	if fs, ok := store.(*FakeStore); ok {
		r.store = fs
	}
	for _, n := range h.Networks {
		r.probers[n.Name] = NewFakeProber()
	}
	o := Options{
		Health: h, Node: "cmp1", Service: r.svc, Publisher: r.pub, Store: store, Now: r.clock.Now,
		NewProber: func(network string, _ netip.Addr) (Prober, error) { return r.probers[network], nil },
		Restart: func(_ context.Context, command string) error {
			r.mu.Lock()
			defer r.mu.Unlock()
			r.restarts = append(r.restarts, r.clock.Now())
			return nil
		},
		Log: slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
	for _, f := range with {
		f(&o)
	}
	c, err := newChecker(o)
	if err != nil {
		t.Fatal(err)
	}
	r.c = c
	return r
}

// beat runs one heartbeat step and waits for its write and restart to finish.
func (r *rig) beat() {
	r.c.heartbeatStep(context.Background())
	r.c.writer.wait()
	r.c.restartWG.Wait()
}

func readRecord(t *testing.T, path string) health.Record {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	rec, err := health.ParseRecord(b)
	if err != nil {
		t.Fatal(err)
	}
	return rec
}

func TestTheHeartbeatSequenceOnlyMovesForwards(t *testing.T) {
	cases := []struct {
		name string
		// before is what the shared directory holds when hostcheck starts.
		before string
		// check tells whether the first seq is right, given the previous one (0: none).
		first func(t *testing.T, seq uint64, start time.Time)
	}{
		{
			name:   "a restart continues from the record already on the storage",
			before: `{"host":"cmp1","seq":41,"time":"2026-03-04T05:00:00Z","service":"ok"}` + "\n",
			first: func(t *testing.T, seq uint64, _ time.Time) {
				if seq != 42 {
					t.Errorf("first seq = %d, want 42", seq)
				}
			},
		},
		{
			name:   "without a readable record the sequence starts from the time in milliseconds",
			before: "torn{",
			first: func(t *testing.T, seq uint64, start time.Time) {
				if want := uint64(start.UnixMilli()) + 1; seq != want {
					t.Errorf("first seq = %d, want %d", seq, want)
				}
			},
		},
		{
			name: "the first start ever starts from the time in milliseconds",
			first: func(t *testing.T, seq uint64, start time.Time) {
				if want := uint64(start.UnixMilli()) + 1; seq != want {
					t.Errorf("first seq = %d, want %d", seq, want)
				}
			},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, health.RecordFile("cmp1"))
			if tc.before != "" {
				if err := os.WriteFile(path, []byte(tc.before), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			r := newRig(t, testHealth(dir), DirStore{})
			start := r.clock.Now()
			var seqs []uint64
			for range 5 {
				r.beat()
				rec := readRecord(t, path)
				if !rec.Time.Equal(r.clock.Now()) || rec.Host != "cmp1" || rec.Service != health.ServiceOK {
					t.Errorf("record = %+v, want host cmp1, service ok, time %s", rec, r.clock.Now())
				}
				seqs = append(seqs, rec.Seq)
				r.clock.Advance(time.Second)
			}
			tc.first(t, seqs[0], start)
			for i := 1; i < len(seqs); i++ {
				if seqs[i] != seqs[i-1]+1 {
					t.Errorf("seqs %v do not go up by one", seqs)
					break
				}
			}
			// A second process on the same storage goes on from where the first stopped.
			again := newRig(t, testHealth(dir), DirStore{})
			again.beat()
			if got := readRecord(t, path).Seq; got != seqs[len(seqs)-1]+1 {
				t.Errorf("after a restart seq = %d, want %d", got, seqs[len(seqs)-1]+1)
			}
			// Nothing but the record is left in the directory.
			entries, _ := os.ReadDir(dir)
			if len(entries) != 1 {
				t.Errorf("the shared directory holds %d files, want only the record", len(entries))
			}
			if st := again.c.writer.status(again.clock.Now()); !st.OK {
				t.Errorf("writer status = %+v, want OK", st)
			}
		})
	}
}

func TestAHungWriteIsReportedAndNeverBlocksTheLoop(t *testing.T) {
	store := NewFakeStore()
	h := testHealth("/shared")
	r := newRig(t, h, store)
	r.beat()
	if got := r.c.Health(); !got.Writer.OK {
		t.Fatalf("after one good write: %+v", got)
	}

	release := store.Block()
	defer release()
	done := make(chan struct{})
	go func() {
		// Every beat must return although the storage hangs.
		for range 6 {
			r.clock.Advance(time.Second)
			r.c.heartbeatStep(context.Background())
		}
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("the heartbeat loop blocked on a hung write")
	}
	// The second write hangs; give its goroutine time to start, and any wrongly started
	// third one time to show up.
	time.Sleep(50 * time.Millisecond)
	if n := store.Writes(); n != 2 {
		t.Errorf("%d writes started, want 2: none behind the hung one", n)
	}
	got := r.c.Health()
	if got.OK || got.Writer.OK {
		t.Fatalf("health with a write hung for 6s (stale after 4s) is OK: %+v", got)
	}
	if want := "a heartbeat write to /shared/cmp1.heartbeat has hung for 5s; nothing written for 6s"; got.Writer.Reason != want {
		t.Errorf("reason = %q, want %q", got.Writer.Reason, want)
	}
	if !got.Probes.OK && !strings.Contains(got.Probes.Reason, "no probe round") {
		t.Errorf("probe reason %q", got.Probes.Reason)
	}

	// Within StaleAfter a hung write is not yet a failure.
	r2 := newRig(t, h, NewFakeStore())
	r2.beat()
	rel2 := r2.store.Block()
	defer rel2()
	r2.clock.Advance(3 * time.Second)
	r2.c.heartbeatStep(context.Background())
	if got := r2.c.Health(); !got.Writer.OK {
		t.Errorf("a write hung for less than stale_after already fails: %+v", got.Writer)
	}

	// When the storage comes back, the next beat writes again and the writer is healthy.
	release()
	r.c.writer.wait()
	r.clock.Advance(time.Second)
	r.beat()
	if got := r.c.Health(); !got.Writer.OK {
		t.Errorf("after the storage came back: %+v", got.Writer)
	}
}

func TestFailedWritesAreReportedOnceStale(t *testing.T) {
	store := NewFakeStore()
	r := newRig(t, testHealth("/shared"), store)
	r.beat()
	store.Fail(errors.New("read-only file system"))
	var oks []bool
	for range 6 {
		r.clock.Advance(time.Second)
		r.beat()
		oks = append(oks, r.c.Health().Writer.OK)
	}
	if diff := cmp.Diff([]bool{true, true, true, true, false, false}, oks); diff != "" {
		t.Errorf("writer OK second by second (-want +got):\n%s", diff)
	}
	if want := "heartbeat writes have failed for 5s (last written 6s ago): writing the heartbeat /shared/cmp1.heartbeat: read-only file system"; r.c.Health().Writer.Reason != want {
		t.Errorf("reason = %q, want %q", r.c.Health().Writer.Reason, want)
	}
}

func TestTheWriterIsNotHealthyBeforeItsFirstWrite(t *testing.T) {
	store := NewFakeStore()
	store.Fail(errors.New("permission denied"))
	r := newRig(t, testHealth("/shared"), store)
	r.beat()
	got := r.c.Health().Writer
	if got.OK || !strings.Contains(got.Reason, "permission denied") {
		t.Errorf("writer after a failed first write = %+v", got)
	}
}

func addr(s string) netip.Addr { return netip.MustParseAddr(s) }

func TestAPeerIsLostAfterProbeFailuresInARowAndOKAtTheFirstAnswer(t *testing.T) {
	h := testHealth("/shared")
	h.ProbeFailures = 3
	r := newRig(t, h, NewFakeStore())
	mgmt := r.probers["mgmt"]
	mgmt.Set(addr("10.0.0.10"), true)
	steps := []struct {
		cmp2Answers bool
		want        string // the cmp2 state after the round
	}{
		{false, "unknown"}, // never seen: one failure is not enough to say lost
		{true, "ok"},
		{false, "ok"},
		{false, "ok"},
		{false, "lost"},
		{false, "lost"},
		{true, "ok"},
		{false, "ok"},
	}
	var got, want []string
	for _, s := range steps {
		mgmt.Set(addr("10.0.0.2"), s.cmp2Answers)
		r.c.probeStep(context.Background())
		r.clock.Advance(time.Second)
		r.c.mu.Lock()
		got = append(got, r.c.nets[0].peers[0].state.String())
		r.c.mu.Unlock()
		want = append(want, s.want)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("cmp2 on mgmt round by round (-want +got):\n%s", diff)
	}
}

func TestReachabilityIsPublishedOnlyWhenItChanges(t *testing.T) {
	h := testHealth("/shared")
	h.ProbeFailures = 2
	r := newRig(t, h, NewFakeStore())
	mgmt, storage := r.probers["mgmt"], r.probers["storage"]
	pub := func(net, v string) Publication {
		return Publication{Node: "cmp1", Name: health.ReachAttribute(net), Value: v}
	}
	steps := []struct {
		name    string
		setup   func()
		publish []Publication
	}{
		{
			name: "the first round publishes every network",
			setup: func() {
				mgmt.Set(addr("10.0.0.2"), true)
				mgmt.Set(addr("10.0.0.10"), true)
				storage.Set(addr("10.1.0.2"), true)
			},
			publish: []Publication{pub("mgmt", "cmp2=ok ctrl1=ok"), pub("storage", "cmp2=ok")},
		},
		{name: "nothing changed: nothing is published", setup: func() {}},
		{name: "one failure of ctrl1 does not change the view", setup: func() { mgmt.Set(addr("10.0.0.10"), false) }},
		{
			// With its last answer, of the second round (a second after the clock's start).
			name: "the second failure makes ctrl1 lost", setup: func() {},
			publish: []Publication{pub("mgmt", fmt.Sprintf("cmp2=ok ctrl1=lost@%d", newClock().Now().Add(time.Second).UnixMilli()))},
		},
		{name: "still lost: nothing is published", setup: func() {}},
		{
			name:  "a failed publication is retried at the next round",
			setup: func() { mgmt.Set(addr("10.0.0.10"), true); r.pub.SetErr(errors.New("attrd_updater: not connected")) },
		},
		{name: "the retry succeeds", setup: func() { r.pub.SetErr(nil) }, publish: []Publication{pub("mgmt", "cmp2=ok ctrl1=ok")}},
		{name: "and is not repeated", setup: func() {}},
	}
	for _, s := range steps {
		s.setup()
		r.c.probeStep(context.Background())
		r.clock.Advance(time.Second)
		if diff := cmp.Diff(s.publish, r.pub.Take()); diff != "" {
			t.Errorf("%s (-want +got):\n%s", s.name, diff)
		}
	}
}

func TestAnUnchangedViewIsPublishedAgainEveryRepublishPeriod(t *testing.T) {
	r := newRig(t, testHealth("/shared"), NewFakeStore())
	r.probers["mgmt"].Set(addr("10.0.0.2"), true)
	r.probers["mgmt"].Set(addr("10.0.0.10"), true)
	r.probers["storage"].Set(addr("10.1.0.2"), true)
	r.c.probeStep(context.Background())
	if got := len(r.pub.Take()); got != 2 {
		t.Fatalf("first round: %d publications, want 2", got)
	}
	for elapsed := time.Second; elapsed < republishEvery; elapsed += time.Second {
		r.clock.Advance(time.Second)
		r.c.probeStep(context.Background())
		if got := r.pub.Take(); len(got) != 0 {
			t.Fatalf("%s after the first round, an unchanged view was published: %v", elapsed, got)
		}
	}
	r.clock.Advance(time.Second)
	r.c.probeStep(context.Background())
	want := []Publication{
		{Node: "cmp1", Name: health.ReachAttribute("mgmt"), Value: "cmp2=ok ctrl1=ok"},
		{Node: "cmp1", Name: health.ReachAttribute("storage"), Value: "cmp2=ok"},
	}
	if diff := cmp.Diff(want, r.pub.Take()); diff != "" {
		t.Errorf("after %s (-want +got):\n%s", republishEvery, diff)
	}
}

func TestPublishingThatKeepsFailingMakesTheProbeLoopUnhealthy(t *testing.T) {
	r := newRig(t, testHealth("/shared"), NewFakeStore())
	r.beat()
	r.pub.SetErr(errors.New("attrd_updater: not connected"))
	var oks []bool
	for range 6 {
		r.c.probeStep(context.Background())
		oks = append(oks, r.c.Health().Probes.OK)
		r.clock.Advance(time.Second)
	}
	if diff := cmp.Diff([]bool{true, true, true, true, true, false}, oks); diff != "" {
		t.Errorf("probe loop OK round by round (-want +got):\n%s", diff)
	}
	if got, want := r.c.Health().Probes.Reason, "publishing reachability has failed for 6s: attrd_updater: not connected"; got != want {
		t.Errorf("reason = %q, want %q", got, want)
	}
}

func TestANetworkThatCannotBeProbedMakesTheProbeLoopUnhealthy(t *testing.T) {
	h := testHealth("/shared")
	r := newRig(t, h, NewFakeStore())
	r.c.o.NewProber = func(network string, local netip.Addr) (Prober, error) {
		if network == "storage" {
			return nil, errors.New("opening an ICMP socket on " + local.String() + ": bind: cannot assign requested address")
		}
		return r.probers[network], nil
	}
	r.beat()
	r.c.probeStep(context.Background())
	got := r.c.Health()
	want := "cannot probe network storage: opening an ICMP socket on 10.1.0.1: bind: cannot assign requested address"
	if got.OK || got.Probes.Reason != want {
		t.Errorf("health = %+v, want probes failing with %q", got, want)
	}
	if got.Reason != want {
		t.Errorf("overall reason %q, want %q", got.Reason, want)
	}
}

func TestTheOwnViewOfEachNetworkGoesIntoTheRecord(t *testing.T) {
	h := testHealth("/shared")
	h.ProbeFailures = 1
	r := newRig(t, h, NewFakeStore())
	r.probers["mgmt"].Set(addr("10.0.0.10"), true)
	r.c.probeStep(context.Background())
	r.beat()
	b, err := r.store.ReadFile("/shared/cmp1.heartbeat")
	if err != nil {
		t.Fatal(err)
	}
	rec, err := health.ParseRecord(b)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(map[string]string{"mgmt": "ok", "storage": "lost"}, rec.Networks); diff != "" {
		t.Errorf("record networks (-want +got):\n%s", diff)
	}
}

func TestTheServiceIsRestartedWithBackoffWhileItIsDown(t *testing.T) {
	r := newRig(t, testHealth("/shared"), NewFakeStore())
	start := r.clock.Now()
	r.svc.Set(false)
	for range 40 {
		r.beat()
		r.clock.Advance(time.Second)
	}
	var got []time.Duration
	for _, at := range r.restarts {
		got = append(got, at.Sub(start))
	}
	// 2s doubling, capped at 30s.
	want := []time.Duration{0, 2 * time.Second, 6 * time.Second, 14 * time.Second, 30 * time.Second}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("restarts after the service went down (-want +got):\n%s", diff)
	}
	b, _ := r.store.ReadFile("/shared/cmp1.heartbeat")
	rec, err := health.ParseRecord(b)
	if err != nil {
		t.Fatal(err)
	}
	if rec.Service != health.ServiceDown || !rec.ServiceDownSince.Equal(start) {
		t.Errorf("record service = %s since %s, want down since %s", rec.Service, rec.ServiceDownSince, start)
	}

	// Once it runs again the record says so and the backoff starts over.
	r.svc.Set(true)
	r.beat()
	b, _ = r.store.ReadFile("/shared/cmp1.heartbeat")
	if rec, _ := health.ParseRecord(b); rec.Service != health.ServiceOK || !rec.ServiceDownSince.IsZero() {
		t.Errorf("record after recovery = %+v", rec)
	}
	r.restarts = nil
	r.clock.Advance(time.Second)
	again := r.clock.Now()
	r.svc.Set(false)
	for range 4 {
		r.beat()
		r.clock.Advance(time.Second)
	}
	if diff := cmp.Diff([]time.Time{again, again.Add(2 * time.Second)}, r.restarts); diff != "" {
		t.Errorf("restarts after the second outage (-want +got):\n%s", diff)
	}
}

func TestAServiceCheckThatFailsNeverTriggersARestart(t *testing.T) {
	r := newRig(t, testHealth("/shared"), NewFakeStore())
	r.c.o.Service = brokenService{}
	for range 5 {
		r.beat()
		r.clock.Advance(time.Second)
	}
	if len(r.restarts) != 0 {
		t.Errorf("restarted %d times on an unknown service state", len(r.restarts))
	}
	if got := r.c.Health().Service; got != health.ServiceOK {
		t.Errorf("service = %s, want the last known state (ok)", got)
	}
}

type brokenService struct{}

func (brokenService) Running() (bool, string, error) { return false, "", errors.New("no /proc") }

func TestTheConfigurationMustListThisHost(t *testing.T) {
	h := testHealth("/shared")
	cases := []struct {
		name string
		h    config.Health
		node string
		want string
	}{
		{"a listed host may run hostcheck", h, "cmp1", ""},
		{"an unlisted host is refused, naming the listed ones", h, "cmp9", `host "cmp9" is not listed in health.hosts (listed: cmp1, cmp2, ctrl1), and without gossip (health.gossip.key_file) only the hosts listed in health.hosts take part`},
		{"a configuration without networks has no health section", config.DefaultHealth(), "cmp1", "the configuration has no health section (health.networks is empty)"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := ""
			if err := CheckConfig(&tc.h, tc.node); err != nil {
				got = err.Error()
			}
			if got != tc.want {
				t.Errorf("CheckConfig = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestTheHealthSocketAnswersWithTheCurrentHealth(t *testing.T) {
	dir, err := os.MkdirTemp("", "hc")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	sock := filepath.Join(dir, "h.sock")
	ln, err := healthsock.Listen(sock)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	want := Health{OK: false, Reason: "why", Node: "cmp1", Writer: Part{Reason: "why"}, Probes: Part{OK: true}, Seq: 7, Service: "ok"}
	go func() { _ = healthsock.Serve(ctx, ln, func() Health { return want }) }()
	actx, acancel := context.WithTimeout(ctx, 5*time.Second)
	defer acancel()
	got, err := AskHealth(actx, sock)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("health over the socket (-want +got):\n%s", diff)
	}
}

func TestTheMetricsAreWhatTheProcessSees(t *testing.T) {
	h := testHealth(t.TempDir())
	h.ProbeFailures = 1
	r := newRig(t, h, NewFakeStore())
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(newCollector(r.c))

	// Before anything ran: no heartbeat age, no peer known, the loops not yet healthy.
	want := `
# HELP computeha_hostcheck_healthy 1 when the part of this process works (writer: the heartbeat; probes: the reachability loop; watchdog, when one is configured: armed and fed), 0 when not.
# TYPE computeha_hostcheck_healthy gauge
computeha_hostcheck_healthy{part="probes"} 0
computeha_hostcheck_healthy{part="writer"} 0
`
	if err := testutil.CollectAndCompare(reg, strings.NewReader(want), "computeha_hostcheck_healthy", "computeha_hostcheck_peer_reachable", "computeha_hostcheck_heartbeat_age_seconds"); err != nil {
		t.Errorf("before the first round: %v", err)
	}

	r.probers["mgmt"].Set(addr("10.0.0.2"), true)
	r.probers["storage"].Set(addr("10.1.0.2"), false)
	r.beat()
	r.c.probeStep(context.Background())
	r.clock.Advance(1500 * time.Millisecond)
	want = `
# HELP computeha_hostcheck_heartbeat_age_seconds Time since this host's heartbeat was last written to the shared storage; absent before the first write.
# TYPE computeha_hostcheck_heartbeat_age_seconds gauge
computeha_hostcheck_heartbeat_age_seconds 1.5
# HELP computeha_hostcheck_healthy 1 when the part of this process works (writer: the heartbeat; probes: the reachability loop; watchdog, when one is configured: armed and fed), 0 when not.
# TYPE computeha_hostcheck_healthy gauge
computeha_hostcheck_healthy{part="probes"} 1
computeha_hostcheck_healthy{part="writer"} 1
# HELP computeha_hostcheck_peer_reachable 1 when this host reaches the peer on the network, 0 when it is lost (after probe_failures failed probes, or once the gossip confirmed its death); absent until it is known, and for a peer this host does not probe that the gossip holds alive.
# TYPE computeha_hostcheck_peer_reachable gauge
computeha_hostcheck_peer_reachable{network="mgmt",peer="cmp2"} 1
computeha_hostcheck_peer_reachable{network="mgmt",peer="ctrl1"} 0
computeha_hostcheck_peer_reachable{network="storage",peer="cmp2"} 0
# HELP computeha_hostcheck_service_up 1 when the cluster service (pacemaker-remoted, corosync) runs on this host, 0 when it is down.
# TYPE computeha_hostcheck_service_up gauge
computeha_hostcheck_service_up 1
`
	if err := testutil.CollectAndCompare(reg, strings.NewReader(want), "computeha_hostcheck_healthy", "computeha_hostcheck_service_up", "computeha_hostcheck_peer_reachable", "computeha_hostcheck_heartbeat_age_seconds"); err != nil {
		t.Errorf("after a round: %v", err)
	}
	if n := testutil.CollectAndCount(reg, "computeha_hostcheck_heartbeat_write_duration_seconds", "computeha_hostcheck_service_restarts_total"); n != 2 {
		t.Errorf("write duration and restarts: %d series, want 2", n)
	}
}
