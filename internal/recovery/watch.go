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
// listings of the servers on the hosts involved, and of the migrations of the
// source host. A round lists each host once, whatever the number of VMs
// waiting on it; a VM a round does not show (it went to a host not listed) is
// read on its own. Evacuations are followed by their migration records alone:
// one light request a round for all of them, where listing servers would cost
// the control plane a view of each.
type serverWatch struct {
	list func(ctx context.Context, host string) ([]openstack.Server, error)
	// migs lists the migrations of the source host; asked for only once a move
	// needs them (wantMigrations).
	migs     func(ctx context.Context) ([]openstack.Migration, error)
	wantMigs bool
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
	// migrations of the source host by server, newest first (nil when no move needs them).
	migrations map[string][]openstack.Migration
	err        error
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

// wantMigrations makes rounds list the source host's migrations from the next one on.
func (w *serverWatch) wantMigrations() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.wantMigs = w.migs != nil
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
			hosts, migs := slices.Clone(w.hosts), w.wantMigs
			w.mu.Unlock()
			r.servers, r.migrations, r.err = w.fetch(ctx, hosts, migs)
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
func (w *serverWatch) fetch(ctx context.Context, hosts []string, migs bool) (map[string]openstack.Server, map[string][]openstack.Migration, error) {
	var (
		wg      sync.WaitGroup
		sem     = make(chan struct{}, listParallel)
		lists   = make([][]openstack.Server, len(hosts))
		errs    = make([]error, len(hosts)+1)
		migList []openstack.Migration
	)
	if migs {
		wg.Go(func() { migList, errs[len(hosts)] = w.migs(ctx) })
	}
	for i, h := range hosts {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			lists[i], errs[i] = w.list(ctx, h)
		})
	}
	wg.Wait()
	var byServer map[string][]openstack.Migration
	if migs {
		if err := errs[len(hosts)]; err != nil {
			return nil, nil, err
		}
		byServer = map[string][]openstack.Migration{}
		for _, m := range migList {
			byServer[m.ServerID] = append(byServer[m.ServerID], m)
		}
	}
	out := map[string]openstack.Server{}
	twice := map[string]bool{}
	for i, l := range lists {
		if errs[i] != nil {
			return nil, nil, errs[i]
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
	return out, byServer, nil
}
