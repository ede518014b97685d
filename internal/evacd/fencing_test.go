package evacd

import (
	"context"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/computeha/computeha/crm"
	"github.com/computeha/computeha/internal/evacstate"
	"github.com/computeha/computeha/internal/openstack"
	"github.com/computeha/computeha/internal/recovery"
)

// staleHistory is a cluster whose stonith_admin-style history shows only
// an older fencing of each node, as stonith_admin --history does without
// --verbose, while crm_mon's status carries the full history.
type staleHistory struct {
	*crm.Fake
	old time.Time
}

func (c staleHistory) FencingHistory(_ context.Context, node string) ([]crm.FenceEvent, error) {
	return []crm.FenceEvent{{Action: "reboot", Target: node, Status: "success", Delegate: "ctl1", Completed: c.old}}, nil
}

func TestAHostFencedASecondTimeIsRecoveredWhenOnlyCrmMonShowsTheNewFencing(t *testing.T) {
	bubble(t, func(t *testing.T) {
		w := newWorld(t, "auto", "")
		w.boot("cmp1", 2, true)
		now := time.Now().UTC()
		w.nova.KillCompute("cmp1")
		mark(w.cluster, "cmp1", now)
		w.cluster.Fenced("cmp1", now)
		cl := staleHistory{Fake: w.cluster, old: now.Add(-time.Hour)}
		w.daemon = New(Options{
			Config: w.cfg, Cluster: cl, Nova: w.nova, History: w.store, Owner: "ctl1",
			Poll: 10 * time.Millisecond, Reconcile: 20 * time.Millisecond,
		})
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		done := make(chan error, 1)
		go func() { done <- w.daemon.Run(ctx, nil) }()
		for ctx.Err() == nil && phase(w.cluster, "cmp1") != evacstate.Done {
			time.Sleep(10 * time.Millisecond)
		}
		cancel()
		<-done
		if p := phase(w.cluster, "cmp1"); p != evacstate.Done {
			t.Fatalf("cmp1 is %q, want done", p)
		}
	})
}

// noHostOnce sends the first evacuation to a disabled host, where Nova's
// scheduler finds no valid host and puts the server in ERROR.
type noHostOnce struct {
	*openstack.Fake
	disabled string
	sent     atomic.Bool
}

func (n *noHostOnce) Evacuate(ctx context.Context, id, target string) error {
	if n.sent.CompareAndSwap(false, true) {
		target = n.disabled
	}
	return n.Fake.Evacuate(ctx, id, target)
}

func TestAnEvacuationNovaFailsIsRetriedAtOnceNotAtTheConfirmationTimeout(t *testing.T) {
	bubble(t, func(t *testing.T) {
		w := newWorld(t, "auto", "")
		w.boot("cmp1", 1, true)
		w.disable(t, "cmp4")
		w.fail("cmp1")
		nova := &noHostOnce{Fake: w.nova, disabled: "cmp4"}
		w.daemon = New(Options{
			Config: w.cfg, Cluster: w.cluster, Nova: nova, History: w.store, Owner: "ctl1",
			Poll: 10 * time.Millisecond, Reconcile: 20 * time.Millisecond,
		})
		// Well under the configuration's 5 s confirmation timeout.
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		done := make(chan error, 1)
		go func() { done <- w.daemon.Run(ctx, nil) }()
		for ctx.Err() == nil && phase(w.cluster, "cmp1") != evacstate.Done {
			time.Sleep(10 * time.Millisecond)
		}
		cancel()
		<-done
		if p := phase(w.cluster, "cmp1"); p != evacstate.Done {
			t.Fatalf("cmp1 is %q 3 s after its fencing, want done: the failed evacuation waited for the confirmation timeout", p)
		}
		for id := range w.servers {
			s := w.hostOf(t, id)
			if s.Host == "cmp1" || s.Host == "cmp4" || s.Status != "ACTIVE" {
				t.Errorf("server is %s on %s, want ACTIVE on cmp2 or cmp3", s.Status, s.Host)
			}
			if n := w.evacuations()[id]; n != 2 {
				t.Errorf("%d evacuation requests, want 2 (the failed one and its retry)", n)
			}
		}
	})
}

func TestReadsBegunWhenPacemakerLostTheHostServeItsRecovery(t *testing.T) {
	bubble(t, func(t *testing.T) {
		w := newWorld(t, "auto", "")
		w.boot("cmp1", 3, true)
		w.daemon = New(Options{
			Config: w.cfg, Cluster: w.cluster, Nova: w.nova, History: w.store, Owner: "ctl1",
			Poll: 10 * time.Millisecond, Reconcile: time.Hour,
		})
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		events := make(chan crm.Event, 4)
		done := make(chan error, 1)
		go func() { done <- w.daemon.Run(ctx, events) }()
		synctest.Wait()
		before := w.count("ServersOnHost")
		// Pacemaker loses the host; seconds later its fencing completes and fence_nova's mark
		// is found.
		events <- crm.Event{Kind: crm.NodeLost, Node: "cmp1", Time: time.Now()}
		synctest.Wait()
		if got := w.count("ServersOnHost"); got != before+1 {
			t.Fatalf("%d listings of the host's servers after it was lost, want the reads begun", got-before)
		}
		time.Sleep(5 * time.Second)
		w.nova.KillCompute("cmp1")
		now := time.Now().UTC()
		mark(w.cluster, "cmp1", now)
		w.cluster.Fenced("cmp1", now)
		events <- crm.Event{Kind: crm.NodeFenced, Node: "cmp1", OK: true, Time: now}
		for range 100 {
			if phase(w.cluster, "cmp1") == evacstate.Done {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		cancel()
		<-done
		if p := phase(w.cluster, "cmp1"); p != evacstate.Done {
			t.Fatalf("cmp1 is %q, want done", p)
		}
		if got := w.count("ServersOnHost"); got != before+1 {
			t.Errorf("%d listings of the host's servers in all, want the one begun when the host was lost", got-before)
		}
	})
}

// A fencing Pacemaker retries for close to a minute (a device timing out under load): the reads
// begun when the host was lost are made again while it stays lost, so the recovery that
// follows its fencing sends its first request with no read of its own.
func TestReadsMadeAheadAreKeptFreshWhileTheFencingIsRetried(t *testing.T) {
	bubble(t, func(t *testing.T) {
		w := newWorld(t, "auto", "")
		w.boot("cmp1", 3, true)
		events, stop := w.runWithEvents()
		defer stop()
		before := w.count("ServersOnHost")
		events <- crm.Event{Kind: crm.NodeLost, Node: "cmp1", Time: time.Now()}
		synctest.Wait()
		time.Sleep(50 * time.Second) // over recovery.DefaultMaxAge
		w.nova.KillCompute("cmp1")
		if n := w.count("ServersOnHost") - before; n != 4 {
			t.Errorf("%d listings of cmp1's servers in the 50 s it was lost, want 4 (one every %s)", n, recovery.AheadRefresh)
		}
		fenced := len(w.nova.Calls())
		w.fenceAndWait(events, "cmp1")
		stop()
		if p := phase(w.cluster, "cmp1"); p != evacstate.Done {
			t.Fatalf("cmp1 is %q, want done", p)
		}
		after := w.nova.Calls()[fenced:]
		first := slices.IndexFunc(after, func(c string) bool { return strings.HasPrefix(c, "Evacuate ") })
		if first < 0 {
			t.Fatalf("no evacuation after the fencing: %v", after)
		}
		for _, c := range after[:first] {
			if strings.HasPrefix(c, "ServersOnHost ") || strings.HasPrefix(c, "Migrations") {
				t.Errorf("the recovery read %q before its first request: the reads made ahead were not fresh", c)
			}
		}
	})
}

// A host lost, back, and lost again within seconds: the reads begun at the first loss
// miss the VM booted on it while it was back, so the recovery reads again.
func TestReadsBegunBeforeTheHostCameBackAreNotUsed(t *testing.T) {
	bubble(t, func(t *testing.T) {
		w := newWorld(t, "auto", "")
		w.boot("cmp1", 1, true)
		events, stop := w.runWithEvents()
		defer stop()
		events <- crm.Event{Kind: crm.NodeLost, Node: "cmp1", Time: time.Now()}
		synctest.Wait()
		time.Sleep(3 * time.Second)
		events <- crm.Event{Kind: crm.NodeJoined, Node: "cmp1", Time: time.Now()}
		synctest.Wait()
		w.boot("cmp1", 1, true) // booted while the host is back
		time.Sleep(3 * time.Second)
		events <- crm.Event{Kind: crm.NodeLost, Node: "cmp1", Time: time.Now()}
		synctest.Wait()
		w.fenceAndWait(events, "cmp1")
		stop()
		if p := phase(w.cluster, "cmp1"); p != evacstate.Done {
			t.Fatalf("cmp1 is %q, want done", p)
		}
		for id := range w.servers {
			if s := w.hostOf(t, id); s.Host == "cmp1" {
				t.Errorf("server %s left on cmp1 (%s): the recovery used reads from before the host came back", id, s.Status)
			}
		}
	})
}

// A recovered host stays no target until it joins again: a VM sent to it just before it
// failed is asked again elsewhere even once its own recovery is over.
func TestARecoveredHostIsNoTargetUntilItJoins(t *testing.T) {
	bubble(t, func(t *testing.T) {
		w := newWorld(t, "auto", "")
		w.boot("cmp1", 1, true)
		events, stop := w.runWithEvents()
		defer stop()
		w.fenceAndWait(events, "cmp1")
		time.Sleep(time.Second)
		if !w.daemon.failingNovaHosts()["cmp1"] {
			t.Errorf("cmp1, recovered and not back, is a target again")
		}
		events <- crm.Event{Kind: crm.NodeJoined, Node: "cmp1", Time: time.Now()}
		synctest.Wait()
		if w.daemon.failingNovaHosts()["cmp1"] {
			t.Errorf("cmp1 joined again and is still no target")
		}
	})
}

func TestTheDaemonRereadsWhatEveryRecoveryNeedsFromItsStartOn(t *testing.T) {
	bubble(t, func(t *testing.T) {
		w := newWorld(t, "auto", "")
		w.daemon = New(Options{
			Config: w.cfg, Cluster: w.cluster, Nova: w.nova, History: w.store, Owner: "ctl1",
			Poll: 10 * time.Millisecond, Reconcile: time.Hour,
		})
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- w.daemon.Run(ctx, nil) }()
		synctest.Wait()
		reads := func() []int { return []int{w.count("Hypervisors"), w.count("Aggregates"), w.count("ServerGroups")} }
		if diff := cmp.Diff([]int{1, 1, 1}, reads()); diff != "" {
			t.Errorf("reads at the daemon's start (hypervisors, aggregates, groups; -want +got):\n%s", diff)
		}
		time.Sleep(25 * time.Second) // evacuation.refresh is 10s by default
		synctest.Wait()
		if diff := cmp.Diff([]int{3, 3, 3}, reads()); diff != "" {
			t.Errorf("reads 25s after the start (-want +got):\n%s", diff)
		}
		cancel()
		<-done
	})
}

// runWithEvents runs the daemon on cluster events a test sends (no reconciliation); stop ends
// it and waits, once.
func (w *world) runWithEvents() (chan<- crm.Event, func()) {
	w.daemon = New(Options{
		Config: w.cfg, Cluster: w.cluster, Nova: w.nova, History: w.store, Owner: "ctl1",
		Poll: 10 * time.Millisecond, Reconcile: time.Hour,
	})
	ctx, cancel := context.WithCancel(context.Background())
	events := make(chan crm.Event, 8)
	done := make(chan error, 1)
	go func() { done <- w.daemon.Run(ctx, events) }()
	synctest.Wait()
	var once sync.Once
	return events, func() { once.Do(func() { cancel(); <-done }) }
}

// fenceAndWait has node fenced as Pacemaker and fence_nova do (nova-compute dead, the host
// forced down in Nova, marked, fenced, the event sent), and waits up to 10 s for its recovery
// to be done.
func (w *world) fenceAndWait(events chan<- crm.Event, node string) {
	w.nova.KillCompute(node)
	s, _ := w.nova.FindComputeService(context.Background(), node)
	_, _ = w.nova.ForceDown(context.Background(), s.ID)
	now := time.Now().UTC()
	mark(w.cluster, node, now)
	w.cluster.Fenced(node, now)
	events <- crm.Event{Kind: crm.NodeFenced, Node: node, OK: true, Time: now}
	for range 100 {
		if phase(w.cluster, node) == evacstate.Done {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
}
