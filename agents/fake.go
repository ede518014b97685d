package agents

import (
	"context"
	"sync"
	"time"
)

// FakeClock is a Clock for tests: Sleep returns at once after moving the
// time on by d, so waits and timeouts run instantly and deterministically.
type FakeClock struct {
	mu  sync.Mutex
	now time.Time
	// Slept records every Sleep, in order.
	Slept []time.Duration
}

var _ Clock = (*FakeClock)(nil)

// NewFakeClock starts a fake clock at a fixed instant.
func NewFakeClock() *FakeClock {
	return &FakeClock{now: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
}

// Now returns the fake time.
func (c *FakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Advance moves the fake time on.
func (c *FakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// Sleep moves the fake time on by d unless ctx has ended.
func (c *FakeClock) Sleep(ctx context.Context, d time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	c.Slept = append(c.Slept, d)
	return nil
}
