package clock

import (
	"context"
	"runtime"
	"sync"
	"time"
)

// Fake is a virtual clock for tests. In manual mode ([NewFake]) its time moves only with
// [Fake.Advance] and [Fake.Set], and a Sleep returns once the time has reached its end. In
// auto mode ([NewAutoFake]) a Sleep moves the time to its own end (never backwards) and
// returns at once, after letting other goroutines run: the clock then reads as if every
// sleep had been waited out, and a loop of timeouts runs at the speed of the code.
type Fake struct {
	mu      sync.Mutex
	now     time.Time
	auto    bool
	sleeps  int // Sleep calls so far
	slept   time.Duration
	waiters []*waiter
	changed chan struct{} // closed and replaced whenever waiters change
}

type waiter struct {
	until time.Time
	done  chan struct{}
}

var _ Clock = (*Fake)(nil)

// Epoch is where fake clocks start unless told otherwise: a fixed time, so that tests print
// the same times in every run.
var Epoch = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

// NewFake returns a manual fake clock at start (Epoch when zero).
func NewFake(start time.Time) *Fake {
	if start.IsZero() {
		start = Epoch
	}
	return &Fake{now: start, changed: make(chan struct{})}
}

// NewAutoFake returns an auto-advancing fake clock at start (Epoch when zero).
func NewAutoFake(start time.Time) *Fake {
	f := NewFake(start)
	f.auto = true
	return f
}

// Now is the virtual time.
func (f *Fake) Now() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.now
}

// Sleep waits until the virtual time has moved d past now (see [Fake]).
func (f *Fake) Sleep(ctx context.Context, d time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	f.mu.Lock()
	f.sleeps++
	if d > 0 {
		f.slept += d
	}
	if d <= 0 {
		f.mu.Unlock()
		return nil
	}
	until := f.now.Add(d)
	if f.auto {
		f.mu.Unlock()
		// Others may act first, as they would during a real sleep.
		runtime.Gosched()
		f.mu.Lock()
		if f.now.Before(until) {
			f.now = until
		}
		f.wakeLocked()
		f.mu.Unlock()
		return ctx.Err()
	}
	w := &waiter{until: until, done: make(chan struct{})}
	f.waiters = append(f.waiters, w)
	f.notifyLocked()
	f.mu.Unlock()
	select {
	case <-w.done:
		return nil
	case <-ctx.Done():
		f.mu.Lock()
		for i, x := range f.waiters {
			if x == w {
				f.waiters = append(f.waiters[:i], f.waiters[i+1:]...)
				break
			}
		}
		f.notifyLocked()
		f.mu.Unlock()
		return ctx.Err()
	}
}

// Advance moves the time forward by d and wakes the sleeps that have ended.
func (f *Fake) Advance(d time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.now = f.now.Add(d)
	f.wakeLocked()
}

// Set moves the time to t (never backwards) and wakes the sleeps that have ended.
func (f *Fake) Set(t time.Time) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if t.After(f.now) {
		f.now = t
	}
	f.wakeLocked()
}

// Sleeps is how many times Sleep was called, and the sum of the durations asked.
func (f *Fake) Sleeps() (int, time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.sleeps, f.slept
}

// Waiting is how many Sleeps are blocked (manual mode).
func (f *Fake) Waiting() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.waiters)
}

// WaitForSleepers blocks until at least n Sleeps are blocked (manual mode) or ctx ends, so
// that a test advances the time only once the code under test waits on it.
func (f *Fake) WaitForSleepers(ctx context.Context, n int) error {
	for {
		f.mu.Lock()
		if len(f.waiters) >= n {
			f.mu.Unlock()
			return nil
		}
		ch := f.changed
		f.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// AdvanceToNext moves the time to the end of the earliest blocked Sleep, if any, and wakes
// it; it reports whether one was waiting.
func (f *Fake) AdvanceToNext() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.waiters) == 0 {
		return false
	}
	next := f.waiters[0].until
	for _, w := range f.waiters[1:] {
		if w.until.Before(next) {
			next = w.until
		}
	}
	if next.After(f.now) {
		f.now = next
	}
	f.wakeLocked()
	return true
}

func (f *Fake) wakeLocked() {
	kept := f.waiters[:0]
	for _, w := range f.waiters {
		if !w.until.After(f.now) {
			close(w.done)
			continue
		}
		kept = append(kept, w)
	}
	if len(kept) != len(f.waiters) {
		f.waiters = kept
		f.notifyLocked()
	}
}

func (f *Fake) notifyLocked() {
	close(f.changed)
	f.changed = make(chan struct{})
}
