package recovery

import (
	"context"
	"sync"
	"time"
)

// Reads made ahead of a recovery: a host Pacemaker lost is fenced seconds later (minutes when
// a device fails and Pacemaker retries), and the recovery that may follow finds what it needs
// read already. They only read: nothing is acted on before the recovery runs. They are read
// again every AheadRefresh while the host stays lost, so that the recovery never finds them too
// old, whatever its fencing took.
const (
	// AheadRefresh is how often reads made ahead are made again.
	AheadRefresh = 15 * time.Second
	// AheadFor bounds how long a lost host's reads are kept fresh: one not fenced by then has
	// a recovery that reads for itself, if any.
	AheadFor = 10 * time.Minute
)

// ahead is the reads made ahead of a recovery of one source.
type ahead struct {
	cancel context.CancelFunc // ends the refreshes

	mu     sync.Mutex
	latest *Reads        // the newest complete reads
	flight chan struct{} // closed when the reads under way end; nil when none are
}

// ReadAhead begins, in the background, the reads of a recovery of source, and makes them again
// every AheadRefresh (from the start of the last) until [Engine.TakeAhead] or
// [Engine.ForgetAhead] for source's node, AheadFor passes or ctx ends, or a read fails for good
// (a host in no segment: a controller, say). Reads under way for source already are left alone.
func (e *Engine) ReadAhead(ctx context.Context, source Host) {
	e.aheadMu.Lock()
	defer e.aheadMu.Unlock()
	if e.ahead[source.Node] != nil {
		return
	}
	// AheadFor bounds the reads too: a read waits out a Nova outage for as long as its context.
	ctx, cancel := context.WithTimeout(ctx, AheadFor)
	// Under way from now on: a recovery that takes them at once waits for them.
	a := &ahead{cancel: cancel, flight: make(chan struct{})}
	e.ahead[source.Node] = a
	go func() {
		defer cancel()
		for {
			a.mu.Lock()
			done := a.flight
			a.mu.Unlock()
			began := e.clock.Now()
			r, err := e.Read(ctx, source)
			a.mu.Lock()
			if err == nil {
				a.latest = r
			}
			a.flight = nil
			a.mu.Unlock()
			close(done)
			// The next reads begin AheadRefresh after these began, not after they ended: a
			// slow read does not leave the newest reads older than the refresh and the read.
			if err != nil || e.clock.Sleep(ctx, AheadRefresh-e.clock.Now().Sub(began)) != nil {
				e.dropAhead(source.Node, a)
				return
			}
			a.mu.Lock()
			a.flight = make(chan struct{})
			a.mu.Unlock()
		}
	}()
}

// TakeAhead hands the reads made ahead for source to its recovery and ends their refreshes:
// the newest complete ones if no older than maxAge, else those under way once done (nil if
// they fail or ctx ends first), else nil.
func (e *Engine) TakeAhead(ctx context.Context, source Host, maxAge time.Duration) *Reads {
	e.aheadMu.Lock()
	a := e.ahead[source.Node]
	delete(e.ahead, source.Node)
	e.aheadMu.Unlock()
	if a == nil {
		return nil
	}
	defer a.cancel()
	a.mu.Lock()
	latest, flight := a.latest, a.flight
	a.mu.Unlock()
	if latest != nil && e.clock.Now().Sub(latest.At) <= maxAge {
		return latest
	}
	if flight == nil {
		return nil
	}
	select {
	case <-flight:
	case <-ctx.Done():
		return nil
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.latest != nil && e.clock.Now().Sub(a.latest.At) <= maxAge {
		return a.latest
	}
	return nil
}

// ForgetAhead drops the reads made ahead for node: it joined again, and what it runs may change.
func (e *Engine) ForgetAhead(node string) {
	e.aheadMu.Lock()
	a := e.ahead[node]
	delete(e.ahead, node)
	e.aheadMu.Unlock()
	if a != nil {
		a.cancel()
	}
}

// dropAhead forgets a, if it is still node's.
func (e *Engine) dropAhead(node string, a *ahead) {
	e.aheadMu.Lock()
	defer e.aheadMu.Unlock()
	if e.ahead[node] == a {
		delete(e.ahead, node)
	}
}
