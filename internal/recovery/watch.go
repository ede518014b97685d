package recovery

import (
	"context"
	"slices"
	"sync"
	"time"

	"github.com/computeha/computeha/internal/clock"
	"github.com/computeha/computeha/internal/openstack"
)

// listParallel bounds the concurrent listings of one round: a control plane with few API
// workers keeps some for the moves themselves.
const listParallel = 2

// serverWatch serves the confirmation loops of one recovery from shared
// listings of the servers on the hosts involved. A round lists each host
// once, whatever the number of VMs waiting on it; a VM a round does not
// show (it went to a host not listed) is read on its own.
type serverWatch struct {
	list func(ctx context.Context, host string) ([]openstack.Server, error)
	// Rounds begin at most once per interval: VMs whose evacuations are
	// accepted one after the other then share rounds, instead of each
	// starting its own. A round that took long (many VMs, a loaded API)
	// is followed by a pause as long: the watch never takes more than
	// about half of the API's time.
	interval time.Duration
	clock    clock.Clock

	mu       sync.Mutex
	last     time.Time     // when the latest round began
	lastEnd  time.Time     // and ended
	lastDur  time.Duration // its listings' duration
	hosts    []string
	started  uint64 // rounds begun
	cur      *serverRound
	inflight *serverRound
}

// serverRound is one round of listings.
type serverRound struct {
	seq     uint64
	done    chan struct{}
	servers map[string]openstack.Server
	err     error
}

func newServerWatch(interval time.Duration, c clock.Clock, list func(ctx context.Context, host string) ([]openstack.Server, error)) *serverWatch {
	return &serverWatch{list: list, interval: interval, clock: c}
}

// include adds hosts to those listed from the next round on.
func (w *serverWatch) include(hosts ...string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, h := range hosts {
		if h != "" && !slices.Contains(w.hosts, h) {
			w.hosts = append(w.hosts, h)
		}
	}
}

// begun is the number of rounds begun so far: a caller that needs a view
// taken after some event (its evacuation accepted) passes it to after.
func (w *serverWatch) begun() uint64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.started
}

// after returns a round begun after the first n rounds: the latest one if
// it is, the one in flight if it is, or a new one. Callers waiting together
// share one round.
func (w *serverWatch) after(ctx context.Context, n uint64) (*serverRound, error) {
	for {
		w.mu.Lock()
		if w.cur != nil && w.cur.seq > n {
			r := w.cur
			w.mu.Unlock()
			return r, nil
		}
		if r := w.inflight; r != nil {
			w.mu.Unlock()
			select {
			case <-r.done:
			case <-ctx.Done():
				return nil, ctx.Err()
			}
			if r.seq > n {
				if r.err != nil {
					return nil, r.err
				}
				return r, nil
			}
			continue
		}
		w.started++
		r := &serverRound{seq: w.started, done: make(chan struct{})}
		w.inflight = r
		now := w.clock.Now()
		wait := max(w.interval-now.Sub(w.last), w.lastDur-now.Sub(w.lastEnd))
		w.mu.Unlock()

		// Callers arriving meanwhile join this round: its number is
		// taken, and it lists only after the wait.
		if wait > 0 {
			r.err = w.clock.Sleep(ctx, wait)
		}
		if r.err == nil {
			w.mu.Lock()
			w.last = w.clock.Now()
			hosts := slices.Clone(w.hosts)
			w.mu.Unlock()
			r.servers, r.err = w.fetch(ctx, hosts)
			w.mu.Lock()
			w.lastEnd = w.clock.Now()
			w.lastDur = w.lastEnd.Sub(w.last)
			w.mu.Unlock()
		}
		w.mu.Lock()
		w.inflight = nil
		if r.err == nil {
			w.cur = r
		}
		w.mu.Unlock()
		close(r.done)
		if r.err != nil {
			return nil, r.err
		}
		return r, nil
	}
}

// fetch lists the hosts, a few at a time. A server listed under two hosts
// moved between the listings: it is left out, so its caller reads it on
// its own rather than trust either.
func (w *serverWatch) fetch(ctx context.Context, hosts []string) (map[string]openstack.Server, error) {
	var (
		wg    sync.WaitGroup
		sem   = make(chan struct{}, listParallel)
		lists = make([][]openstack.Server, len(hosts))
		errs  = make([]error, len(hosts))
	)
	for i, h := range hosts {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			lists[i], errs[i] = w.list(ctx, h)
		})
	}
	wg.Wait()
	out := map[string]openstack.Server{}
	twice := map[string]bool{}
	for i, l := range lists {
		if errs[i] != nil {
			return nil, errs[i]
		}
		for _, s := range l {
			if _, dup := out[s.ID]; dup {
				twice[s.ID] = true
			}
			out[s.ID] = s
		}
	}
	for id := range twice {
		delete(out, id)
	}
	return out, nil
}
