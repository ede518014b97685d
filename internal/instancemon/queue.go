package instancemon

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/computeha/computeha/internal/clock"
)

// Reporter delivers one failure to the evacuation daemon. An error wrapping ErrRejected
// means the daemon refused the report for good (a bad request): it is not sent again. Any
// other error is taken for transient (the daemon moving between controllers, a network
// blip) and the report is retried.
type Reporter interface {
	Report(ctx context.Context, e Event) error
}

// ErrRejected marks a report the receiver refused for good.
var ErrRejected = errors.New("report rejected")

// Queue holds the failures not delivered yet, one per guest, and delivers them with
// retries. Put never blocks and never fails: it is called from the loop that reads libvirt's
// events, which must keep up whatever the receiver does.
type Queue struct {
	Reporter Reporter
	Clock    clock.Clock
	Log      *slog.Logger
	// Backoff is the first wait after a failed delivery, doubled up to MaxBackoff.
	Backoff, MaxBackoff time.Duration
	// MaxAge: a failure not delivered within it is dropped, logged: a VM that failed an hour
	// ago and was never reported is no longer news the daemon could act on safely.
	MaxAge time.Duration
	// Senders is how many deliveries run at once (20 guests failing together are reported
	// together, not one after another).
	Senders int

	mu      sync.Mutex
	pending map[string]*Event // by server: the latest failure of each guest not yet sent
	order   []string          // servers in the order their failures came
	wake    chan struct{}
	inFly   map[string]bool
	// Sent counts deliveries, Dropped failures given up (for tests and metrics).
	sent, dropped int
}

func (q *Queue) init() {
	if q.pending == nil {
		q.pending = map[string]*Event{}
		q.inFly = map[string]bool{}
		q.wake = make(chan struct{}, 1)
	}
}

// Put queues e. A guest that already has a failure waiting keeps one report: the latest
// failure, its Count the sum.
func (q *Queue) Put(e Event) {
	q.mu.Lock()
	q.init()
	if e.Count < 1 {
		e.Count = 1
	}
	if old, ok := q.pending[e.Server]; ok {
		e.Count += old.Count
		*old = e
	} else {
		ev := e
		q.pending[e.Server] = &ev
		q.order = append(q.order, e.Server)
	}
	q.mu.Unlock()
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

// Len is the number of guests with a failure not delivered yet.
func (q *Queue) Len() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.pending)
}

// Counts are the deliveries made and the failures given up so far.
func (q *Queue) Counts() (sent, dropped int) {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.sent, q.dropped
}

// take is the oldest failure of a guest whose delivery is not running, if any.
func (q *Queue) take() (Event, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	for i, s := range q.order {
		if q.inFly[s] {
			continue
		}
		e := *q.pending[s]
		delete(q.pending, s)
		q.order = append(q.order[:i:i], q.order[i+1:]...)
		q.inFly[s] = true
		return e, true
	}
	return Event{}, false
}

func (q *Queue) done(server string, sent, dropped bool) {
	q.mu.Lock()
	delete(q.inFly, server)
	if sent {
		q.sent++
	}
	if dropped {
		q.dropped++
	}
	more := len(q.pending) > 0
	q.mu.Unlock()
	if more {
		select {
		case q.wake <- struct{}{}:
		default:
		}
	}
}

// Run delivers queued failures until ctx ends.
func (q *Queue) Run(ctx context.Context) error {
	q.mu.Lock()
	q.init()
	q.mu.Unlock()
	clk := clock.Or(q.Clock)
	log := q.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	n := max(q.Senders, 1)
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			for {
				e, ok := q.take()
				if !ok {
					select {
					case <-ctx.Done():
						return
					case <-q.wake:
						continue
					}
				}
				sent, dropped := q.deliver(ctx, clk, log, e)
				q.done(e.Server, sent, dropped)
				if ctx.Err() != nil {
					return
				}
			}
		})
	}
	wg.Wait()
	return nil
}

// deliver sends e until it is accepted, rejected, too old, or replaced by a newer failure
// of the same guest (which is then sent instead, carrying e's count).
func (q *Queue) deliver(ctx context.Context, clk clock.Clock, log *slog.Logger, e Event) (sent, dropped bool) {
	wait := q.Backoff
	if wait <= 0 {
		wait = time.Second
	}
	maxWait := max(q.MaxBackoff, wait)
	for attempt := 1; ; attempt++ {
		err := q.Reporter.Report(ctx, e)
		if err == nil {
			log.Info("failure reported", "server", e.Server, "domain", e.Domain, "event", string(e.Kind),
				"reason", e.Reason, "action", e.Action, "source", string(e.Source), "count", e.Count, "attempts", attempt)
			return true, false
		}
		if errors.Is(err, ErrRejected) {
			log.Error("failure report refused: dropped", "server", e.Server, "event", string(e.Kind), "error", err)
			return false, true
		}
		if ctx.Err() != nil {
			return false, false
		}
		if q.MaxAge > 0 && clk.Now().Sub(e.Time) > q.MaxAge {
			log.Error("failure not delivered in time: dropped", "server", e.Server, "event", string(e.Kind),
				"age", clk.Now().Sub(e.Time).Round(time.Second).String(), "error", err)
			return false, true
		}
		log.Warn("reporting a failure failed: retrying", "server", e.Server, "event", string(e.Kind),
			"attempt", attempt, "retry_in", wait.String(), "error", err)
		if clk.Sleep(ctx, wait) != nil {
			return false, false
		}
		wait = min(2*wait, maxWait)
		// A newer failure of this guest came meanwhile: it is the one to send.
		q.mu.Lock()
		if newer, ok := q.pending[e.Server]; ok {
			newer.Count += e.Count
			q.mu.Unlock()
			return false, false
		}
		q.mu.Unlock()
	}
}
