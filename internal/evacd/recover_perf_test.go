package evacd

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/computeha/computeha/crm"
	"github.com/computeha/computeha/internal/clock"
	"github.com/computeha/computeha/internal/evacstate"
	"github.com/computeha/computeha/internal/openstack"
)

func TestServerWatchRounds(t *testing.T) {
	type step struct {
		after   uint64
		wantSeq uint64
	}
	tests := []struct {
		name  string
		steps []step
		want  int // listings of each host
	}{
		{
			name:  "the first caller starts a round",
			steps: []step{{after: 0, wantSeq: 1}},
			want:  1,
		},
		{
			name:  "a caller content with any round after the first gets the latest without a listing",
			steps: []step{{after: 0, wantSeq: 1}, {after: 0, wantSeq: 1}},
			want:  1,
		},
		{
			name:  "a caller that saw the latest round gets a new one",
			steps: []step{{after: 0, wantSeq: 1}, {after: 1, wantSeq: 2}, {after: 2, wantSeq: 3}},
			want:  3,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var calls sync.Map
			w := newServerWatch(0, time.Now, clock.Sleep, func(_ context.Context, host string) ([]openstack.Server, error) {
				n, _ := calls.LoadOrStore(host, new(atomic.Int32))
				n.(*atomic.Int32).Add(1)
				return []openstack.Server{{ID: "vm-" + host, Host: host}}, nil
			})
			w.include("cmp1", "cmp2")
			for _, s := range tt.steps {
				r, err := w.after(context.Background(), s.after)
				if err != nil {
					t.Fatal(err)
				}
				if r.seq != s.wantSeq {
					t.Errorf("after(%d) gave round %d, want %d", s.after, r.seq, s.wantSeq)
				}
				if diff := cmp.Diff([]string{"vm-cmp1", "vm-cmp2"}, slices.Sorted(mapKeys(r.servers))); diff != "" {
					t.Errorf("servers (-want +got):\n%s", diff)
				}
			}
			for _, h := range []string{"cmp1", "cmp2"} {
				n, _ := calls.Load(h)
				if got := int(n.(*atomic.Int32).Load()); got != tt.want {
					t.Errorf("%s listed %d times, want %d", h, got, tt.want)
				}
			}
		})
	}
}

func mapKeys(m map[string]openstack.Server) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

func TestConcurrentWaitersShareOneListingPerHost(t *testing.T) {
	var listings atomic.Int32
	release := make(chan struct{})
	w := newServerWatch(0, time.Now, clock.Sleep, func(ctx context.Context, host string) ([]openstack.Server, error) {
		listings.Add(1)
		<-release
		return nil, nil
	})
	w.include("cmp1")
	var wg sync.WaitGroup
	for range 50 {
		wg.Go(func() {
			if _, err := w.after(context.Background(), 0); err != nil {
				t.Error(err)
			}
		})
	}
	// Let every waiter arrive while the first round is in flight.
	time.Sleep(50 * time.Millisecond)
	close(release)
	wg.Wait()
	if n := listings.Load(); n != 1 {
		t.Errorf("50 waiters made %d listings, want 1", n)
	}
}

func TestAServerListedUnderTwoHostsIsLeftToItsOwnRead(t *testing.T) {
	w := newServerWatch(0, time.Now, clock.Sleep, func(_ context.Context, host string) ([]openstack.Server, error) {
		out := []openstack.Server{{ID: "moving", Host: host}}
		if host == "cmp1" {
			out = append(out, openstack.Server{ID: "staying", Host: host})
		}
		return out, nil
	})
	w.include("cmp1", "cmp2")
	r, err := w.after(context.Background(), 0)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"staying"}, slices.Sorted(mapKeys(r.servers))); diff != "" {
		t.Errorf("servers (-want +got):\n%s", diff)
	}
}

func TestAFailedListingFailsItsRoundAndTheNextRoundTriesAgain(t *testing.T) {
	var fail atomic.Bool
	fail.Store(true)
	w := newServerWatch(0, time.Now, clock.Sleep, func(_ context.Context, host string) ([]openstack.Server, error) {
		if fail.Load() {
			return nil, errors.New("400 bad request")
		}
		return []openstack.Server{{ID: "a", Host: host}}, nil
	})
	w.include("cmp1")
	if _, err := w.after(context.Background(), 0); err == nil {
		t.Fatal("a failed listing gave a round")
	}
	fail.Store(false)
	r, err := w.after(context.Background(), 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := r.servers["a"]; !ok || r.seq != 2 {
		t.Errorf("round %d has %v, want round 2 with server a", r.seq, r.servers)
	}
}

func TestARecoveryConfirmsItsVMsFromListingsNotOneReadPerVM(t *testing.T) {
	w := newWorld(t, "auto", "")
	w.boot("cmp1", 20, true)
	now := time.Now().UTC()
	w.nova.KillCompute("cmp1")
	w.cluster.mark("cmp1", now)
	w.cluster.fenced("cmp1", now)
	w.run(t, 20*time.Second, func() bool { return w.cluster.phase("cmp1") == evacstate.Done })
	if p := w.cluster.phase("cmp1"); p != evacstate.Done {
		t.Fatalf("cmp1 is %q, want done", p)
	}
	shows, lists := 0, 0
	for _, c := range w.nova.Calls() {
		switch strings.Fields(c)[0] {
		case "Server":
			shows++
		case "ServersOnHost":
			lists++
		}
	}
	if shows != 0 {
		t.Errorf("%d reads of single servers to confirm 20 evacuations inside the listed hosts, want 0", shows)
	}
	t.Logf("%d listings of a host", lists)
	for id, n := range w.evacuations() {
		if n != 1 {
			t.Errorf("server %s evacuated %d times", id, n)
		}
	}
}

func TestRoundsBeginAtMostOncePerInterval(t *testing.T) {
	var listings atomic.Int32
	const interval = 20 * time.Millisecond
	w := newServerWatch(interval, time.Now, clock.Sleep, func(context.Context, string) ([]openstack.Server, error) {
		listings.Add(1)
		return nil, nil
	})
	w.include("cmp1")
	start := time.Now()
	var wg sync.WaitGroup
	for range 100 {
		wg.Go(func() {
			// Each caller always wants a round begun after its latest.
			var seen uint64
			for time.Since(start) < 200*time.Millisecond {
				r, err := w.after(context.Background(), max(seen, w.begun()))
				if err != nil {
					t.Error(err)
					return
				}
				seen = r.seq
			}
		})
	}
	wg.Wait()
	limit := int32(time.Since(start)/interval) + 2
	if n := listings.Load(); n > limit {
		t.Errorf("%d rounds in %s, want at most %d (one per %s)", n, time.Since(start).Round(time.Millisecond), limit, interval)
	}
}

// staleHistory is a cluster whose stonith_admin-style history shows only
// an older fencing of each node, as stonith_admin --history does without
// --verbose, while crm_mon's status carries the full history.
type staleHistory struct {
	*fakeCluster
	old time.Time
}

func (c staleHistory) Status(ctx context.Context) (*crm.Status, error) {
	st, err := c.fakeCluster.Status(ctx)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	st.Fencing = append(st.Fencing, c.fencing...)
	return st, nil
}

func (c staleHistory) FencingHistory(_ context.Context, node string) ([]crm.FenceEvent, error) {
	return []crm.FenceEvent{{Action: "reboot", Target: node, Status: "success", Delegate: "ctl1", Completed: c.old}}, nil
}

func TestAHostFencedASecondTimeIsRecoveredWhenOnlyCrmMonShowsTheNewFencing(t *testing.T) {
	w := newWorld(t, "auto", "")
	w.boot("cmp1", 2, true)
	now := time.Now().UTC()
	w.nova.KillCompute("cmp1")
	w.cluster.mark("cmp1", now)
	w.cluster.fenced("cmp1", now)
	cl := staleHistory{fakeCluster: w.cluster, old: now.Add(-time.Hour)}
	w.daemon = New(Options{
		Config: w.cfg, Cluster: cl, Nova: w.nova, History: w.store, Owner: "ctl1",
		Poll: 10 * time.Millisecond, Reconcile: 20 * time.Millisecond,
	})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- w.daemon.Run(ctx, nil) }()
	for ctx.Err() == nil && w.cluster.phase("cmp1") != evacstate.Done {
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	<-done
	if p := w.cluster.phase("cmp1"); p != evacstate.Done {
		t.Fatalf("cmp1 is %q, want done", p)
	}
}

func TestALongRoundIsFollowedByAPauseAsLong(t *testing.T) {
	const took = 30 * time.Millisecond
	w := newServerWatch(0, time.Now, clock.Sleep, func(context.Context, string) ([]openstack.Server, error) {
		time.Sleep(took)
		return nil, nil
	})
	w.include("cmp1")
	start := time.Now()
	var seen uint64
	for range 5 {
		r, err := w.after(context.Background(), seen)
		if err != nil {
			t.Fatal(err)
		}
		seen = r.seq
	}
	// Five listings and four pauses between them.
	if el := time.Since(start); el < 9*took {
		t.Errorf("5 rounds of %s took %s, want at least %s: the listings must not run back to back", took, el, 9*took)
	}
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
	for ctx.Err() == nil && w.cluster.phase("cmp1") != evacstate.Done {
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	<-done
	if p := w.cluster.phase("cmp1"); p != evacstate.Done {
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
}
