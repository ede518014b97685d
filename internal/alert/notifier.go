package alert

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/computeha/computeha/internal/clock"
)

// Receiver delivers alerts somewhere.
type Receiver interface {
	// Kind is "alertmanager", "webhook" or "command": the metrics' label.
	Kind() string
	// Name says which one, for logs: its URL or program, never a secret.
	Name() string
	// Send delivers alerts (a firing one has a zero EndsAt). On an error nothing of the
	// batch is taken as delivered: it is sent again later, whole.
	Send(ctx context.Context, alerts []Alert) error
	// Check tells whether the receiver can be reached now, without delivering anything.
	Check(ctx context.Context) error
}

// A receiver with a TakesAll method that returns true is sent every firing alert with each
// change, and again each resend period (an Alertmanager resolves what it is not told again).

// MaxQueue bounds each receiver's undelivered changes. Alerts are one per rule and host, so a
// receiver down for days stays far below it; past it the oldest change is dropped, and said.
const MaxQueue = 10000

// Options configure a Notifier.
type Options struct {
	Rules []Rule // default Rules
	// Labels are added to every alert.
	Labels map[string]string
	// State reads the daemon's state at each evaluation.
	State func() Snapshot
	// Interval is how often the rules are evaluated; default 1s.
	Interval time.Duration
	// Resend is how often every firing alert is sent to a receiver that takes them all
	// (the Alertmanager); default 1m.
	Resend time.Duration
	// Receivers get every change.
	Receivers []Receiver
	// Delivered, when set, is told the outcome of every delivery attempt (metrics).
	Delivered func(kind string, err error)
	Log       *slog.Logger
	Clock     clock.Clock
}

// Notifier evaluates the rules and hands the changes to the receivers.
type Notifier struct {
	o       Options
	clock   clock.Clock
	book    *Book
	workers []*worker
}

// NewNotifier returns a notifier; Run starts it.
func NewNotifier(o Options) *Notifier {
	if o.Rules == nil {
		o.Rules = Rules
	}
	if o.Interval <= 0 {
		o.Interval = time.Second
	}
	if o.Resend <= 0 {
		o.Resend = time.Minute
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	o.Log = o.Log.With("component", "alerts")
	n := &Notifier{o: o, clock: clock.Or(o.Clock), book: NewBook(o.Rules)}
	for _, r := range o.Receivers {
		t, ok := r.(interface{ TakesAll() bool })
		all := ok && t.TakesAll()
		n.workers = append(n.workers, &worker{
			r: r, all: all, resend: o.Resend, kick: make(chan struct{}, 1),
			log: o.Log.With("receiver", r.Kind(), "to", r.Name()), clock: n.clock, delivered: o.Delivered,
		})
	}
	return n
}

// Check tries every receiver once and returns, for each that cannot be reached, why.
func (n *Notifier) Check(ctx context.Context) map[Receiver]error {
	out := map[Receiver]error{}
	for _, r := range n.o.Receivers {
		if err := r.Check(ctx); err != nil {
			out[r] = err
		}
	}
	return out
}

// Run evaluates the rules every interval and delivers until ctx ends.
func (n *Notifier) Run(ctx context.Context) {
	var wg sync.WaitGroup
	defer wg.Wait()
	for _, w := range n.workers {
		wg.Go(func() { w.run(ctx) })
	}
	for {
		n.evaluate()
		if err := n.clock.Sleep(ctx, n.o.Interval); err != nil {
			return
		}
	}
}

// evaluate reads the state once, updates what fires and hands the changes to the receivers.
func (n *Notifier) evaluate() []Alert {
	changes := n.book.Update(n.clock.Now(), Evaluate(n.o.Rules, n.o.State(), n.o.Labels))
	if len(changes) == 0 {
		return nil
	}
	for _, a := range changes {
		n.o.Log.Info("alert "+a.Status(), "alert", a.Name(), "host", a.Labels[LabelHost], "segment", a.Labels[LabelSegment],
			"summary", a.Annotations["summary"])
	}
	firing := n.book.Firing()
	for _, w := range n.workers {
		w.push(changes, firing)
	}
	return changes
}

// worker delivers to one receiver, at its own pace.
type worker struct {
	r         Receiver
	all       bool // sends every firing alert each time, and again each resend
	resend    time.Duration
	log       *slog.Logger
	clock     clock.Clock
	delivered func(kind string, err error)
	kick      chan struct{}

	mu      sync.Mutex
	queue   []Alert // undelivered changes, oldest first, the latest of each episode
	firing  []Alert
	dropped int
}

func (w *worker) push(changes, firing []Alert) {
	w.mu.Lock()
	for _, c := range changes {
		replaced := false
		for i, q := range w.queue {
			if q.episode() == c.episode() {
				w.queue[i], replaced = c, true
				break
			}
		}
		if !replaced {
			w.queue = append(w.queue, c)
		}
	}
	if over := len(w.queue) - MaxQueue; over > 0 {
		w.queue = w.queue[over:]
		w.dropped += over
	}
	w.firing = firing
	w.mu.Unlock()
	select {
	case w.kick <- struct{}{}:
	default:
	}
}

// batch returns what to send now: the queued changes, and for a receiver of them all every
// firing alert (when there are changes or resend is due).
func (w *worker) batch(resendDue bool) []Alert {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.dropped > 0 {
		w.log.Error("alert changes dropped: the receiver has been down too long", "dropped", w.dropped)
		w.dropped = 0
	}
	if !w.all {
		return append([]Alert(nil), w.queue...)
	}
	if len(w.queue) == 0 && !resendDue {
		return nil
	}
	out := append([]Alert(nil), w.firing...)
	now := make(map[string]bool, len(w.firing))
	for _, f := range w.firing {
		now[f.Key()] = true
	}
	for _, q := range w.queue {
		// An earlier episode of an alert firing again is not sent: with the same labels, the
		// Alertmanager would take its end for the new episode's.
		if q.Status() == Resolved && !now[q.Key()] {
			out = append(out, q)
		}
	}
	return out
}

// done removes from the queue what was delivered (a change that moved on since stays), and
// for a receiver of them all the end of an earlier episode whose alert was sent firing again.
func (w *worker) done(sent []Alert) {
	w.mu.Lock()
	defer w.mu.Unlock()
	sentAs := make(map[string]string, len(sent))
	refiring := map[string]bool{}
	for _, a := range sent {
		sentAs[a.episode()] = a.Status()
		if a.Status() == Firing {
			refiring[a.Key()] = true
		}
	}
	kept := w.queue[:0]
	for _, q := range w.queue {
		if sentAs[q.episode()] == q.Status() || w.all && q.Status() == Resolved && refiring[q.Key()] {
			continue
		}
		kept = append(kept, q)
	}
	w.queue = kept
}

const (
	retryFirst = time.Second
	retryMax   = time.Minute
)

func (w *worker) run(ctx context.Context) {
	backoff := time.Duration(0)
	failures := 0
	lastResend := w.clock.Now()
	for {
		resendDue := w.all && w.clock.Now().Sub(lastResend) >= w.resend
		b := w.batch(resendDue)
		if len(b) == 0 {
			if resendDue {
				lastResend = w.clock.Now() // nothing fires: nothing to send again
			}
			wait := time.Duration(-1)
			if w.all {
				wait = w.resend - w.clock.Now().Sub(lastResend)
			}
			if !w.wait(ctx, wait) {
				return
			}
			continue
		}
		err := w.r.Send(ctx, b)
		if w.delivered != nil {
			w.delivered(w.r.Kind(), err)
		}
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			failures++
			backoff = min(max(backoff*2, retryFirst), retryMax)
			if failures == 1 || failures%10 == 0 {
				w.log.Warn("alert delivery failed; trying again", "error", err, "attempt", failures, "retry_in", backoff, "alerts", len(b))
			}
			if w.clock.Sleep(ctx, backoff) != nil {
				return
			}
			continue
		}
		if failures > 0 {
			w.log.Info("alerts delivered again", "after_attempts", failures+1, "alerts", len(b))
		}
		failures, backoff = 0, 0
		lastResend = w.clock.Now()
		w.done(b)
	}
}

// wait waits for a kick, d (never when negative) or ctx's end; false when ctx ended.
func (w *worker) wait(ctx context.Context, d time.Duration) bool {
	var timer <-chan time.Time
	if d >= 0 {
		t := time.NewTimer(d)
		defer t.Stop()
		timer = t.C
	}
	select {
	case <-w.kick:
	case <-timer:
	case <-ctx.Done():
		return false
	}
	return true
}
