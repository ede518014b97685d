// Package clock is the time a component reads and waits on, injected so that logic that
// waits (retries, timeouts, polls) is tested without waiting on the wall clock.
//
// [Real] is the machine's clock. Tests run the code under test in a testing/synctest bubble,
// where this same clock is the bubble's: it moves only when every goroutine of the test
// waits, so a loop of minutes of timeouts runs in microseconds and its outcome does not
// depend on the machine's load.
package clock

import (
	"context"
	"time"
)

// Clock tells the time and waits.
type Clock interface {
	// Now is the current time.
	Now() time.Time
	// Sleep waits d, or until ctx ends; it returns ctx.Err() then, nil otherwise. A d of
	// zero or less returns at once (with ctx.Err() if ctx has ended).
	Sleep(ctx context.Context, d time.Duration) error
}

// Real is the machine's clock.
type Real struct{}

var _ Clock = Real{}

// Now is time.Now.
func (Real) Now() time.Time { return time.Now() }

// Sleep waits on a timer.
func (Real) Sleep(ctx context.Context, d time.Duration) error { return Sleep(ctx, d) }

// Sleep waits d on the machine's clock, or until ctx ends.
func Sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Or returns c, or the real clock when c is nil.
func Or(c Clock) Clock {
	if c == nil {
		return Real{}
	}
	return c
}
