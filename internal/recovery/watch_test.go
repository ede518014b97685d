package recovery

import (
	"context"
	"errors"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/computeha/computeha/internal/clock"
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
			w := newServerWatch(0, clock.Real{}, func(_ context.Context, host string) ([]openstack.Server, error) {
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
	bubble(t, func(t *testing.T) {
		var listings atomic.Int32
		release := make(chan struct{})
		w := newServerWatch(0, clock.Real{}, func(ctx context.Context, host string) ([]openstack.Server, error) {
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
		synctest.Wait()
		close(release)
		wg.Wait()
		if n := listings.Load(); n != 1 {
			t.Errorf("50 waiters made %d listings, want 1", n)
		}
	})
}

func TestAServerListedUnderTwoHostsIsLeftToItsOwnRead(t *testing.T) {
	w := newServerWatch(0, clock.Real{}, func(_ context.Context, host string) ([]openstack.Server, error) {
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
	w := newServerWatch(0, clock.Real{}, func(_ context.Context, host string) ([]openstack.Server, error) {
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

func TestRoundsBeginAtMostOncePerInterval(t *testing.T) {
	bubble(t, func(t *testing.T) {
		var listings atomic.Int32
		const interval = 20 * time.Millisecond
		w := newServerWatch(interval, clock.Real{}, func(context.Context, string) ([]openstack.Server, error) {
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
	})
}

func TestALongRoundIsFollowedByAPauseAsLong(t *testing.T) {
	bubble(t, func(t *testing.T) {
		const took = 30 * time.Millisecond
		w := newServerWatch(0, clock.Real{}, func(context.Context, string) ([]openstack.Server, error) {
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
	})
}
