package evacd

import (
	"context"
	"errors"
	"slices"
	"sync"
	"time"

	"github.com/computeha/computeha/internal/config"
	"github.com/computeha/computeha/internal/openstack"
)

// What a recovery reads before it plans, and how it watches its VMs come
// up, shaped for a control plane that is itself the bottleneck: reads are
// made while the fencing is still being confirmed, and the VMs' states come
// from one listing per host per round rather than one request per VM.

// prefetchMaxAge bounds how old the reads made before the fencing was
// confirmed may be and still be used: past it (a long fencing or a guard
// pause), the recovery reads again.
const prefetchMaxAge = 30 * time.Second

// listParallel bounds the concurrent listings of one round: a control
// plane with few API workers keeps some for the evacuations themselves.
const listParallel = 2

// reads is what a recovery reads before it plans.
type reads struct {
	at      time.Time
	svc     openstack.Service
	servers []openstack.Server
	migs    []openstack.Migration
	hvs     []openstack.Hypervisor
	used    map[string]bool // reserved hosts already taken into use (Nova host names)
	nodes   []string        // the cluster's node names
}

// read makes the reads together: they cost the slowest of them, not their
// sum, on a loaded control plane. None needs the segment, so that a
// prefetch resolves it alongside. Nova is asked about j.host, the node's
// Nova host name.
func (j *job) read(ctx context.Context) (reads, error) {
	nova := j.d.o.Nova
	r := reads{at: j.d.o.Now()}
	var (
		wg   sync.WaitGroup
		errs [4]error
	)
	wg.Go(func() {
		errs[0] = j.d.retryNova(ctx, "find service", func(ctx context.Context) (err error) {
			r.svc, err = nova.FindComputeService(ctx, j.host)
			return err
		})
	})
	wg.Go(func() {
		errs[1] = j.d.retryNova(ctx, "list servers", func(ctx context.Context) (err error) {
			r.servers, err = nova.ServersOnHost(ctx, j.host)
			return err
		})
	})
	wg.Go(func() {
		errs[2] = j.d.retryNova(ctx, "list migrations", func(ctx context.Context) (err error) {
			r.migs, err = nova.Migrations(ctx, openstack.MigrationFilter{Host: j.host, Type: "evacuation"})
			return err
		})
	})
	wg.Go(func() {
		errs[3] = j.d.retryNova(ctx, "hypervisors", func(ctx context.Context) (err error) {
			r.hvs, err = nova.Hypervisors(ctx)
			return err
		})
	})
	wg.Go(func() { r.used, r.nodes = j.clusterNodes(ctx) })
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return reads{}, err
		}
	}
	return r, nil
}

// prefetch is the reads of a recovery made while its fencing is being
// confirmed. They only read: nothing is acted on before the confirmation.
// The host is marked by fence_nova after its power fencing and after Nova
// forced its service down, so what runs on it no longer changes.
type prefetch struct {
	done    chan struct{}
	segName string
	seg     config.Segment
	aggs    []openstack.Aggregate
	r       reads
	err     error
}

func (j *job) prefetch(ctx context.Context) *prefetch {
	p := &prefetch{done: make(chan struct{})}
	go func() {
		defer close(p.done)
		var (
			wg           sync.WaitGroup
			segErr, rErr error
		)
		wg.Go(func() { p.segName, p.seg, p.aggs, segErr = j.d.segmentOf(ctx, j.host) })
		wg.Go(func() { p.r, rErr = j.read(ctx) })
		wg.Wait()
		p.err = errors.Join(segErr, rErr)
	}()
	return p
}

// wait returns the prefetch once done, or nil if it failed or ctx ended.
func (p *prefetch) wait(ctx context.Context) *prefetch {
	if p == nil {
		return nil
	}
	select {
	case <-p.done:
	case <-ctx.Done():
		return nil
	}
	if p.err != nil {
		return nil
	}
	return p
}

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
	now      func() time.Time
	sleep    func(ctx context.Context, d time.Duration) error

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

func newServerWatch(interval time.Duration, now func() time.Time, sleep func(context.Context, time.Duration) error,
	list func(ctx context.Context, host string) ([]openstack.Server, error),
) *serverWatch {
	return &serverWatch{list: list, interval: interval, now: now, sleep: sleep}
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
		now := w.now()
		wait := max(w.interval-now.Sub(w.last), w.lastDur-now.Sub(w.lastEnd))
		w.mu.Unlock()

		// Callers arriving meanwhile join this round: its number is
		// taken, and it lists only after the wait.
		if wait > 0 {
			r.err = w.sleep(ctx, wait)
		}
		if r.err == nil {
			w.mu.Lock()
			w.last = w.now()
			hosts := slices.Clone(w.hosts)
			w.mu.Unlock()
			r.servers, r.err = w.fetch(ctx, hosts)
			w.mu.Lock()
			w.lastEnd = w.now()
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
