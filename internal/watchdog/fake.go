package watchdog

import (
	"sync"
	"time"
)

// Fake is a Device for tests: it counts down on the clock it is given and tells whether the
// host would have been reset.
type Fake struct {
	mu       sync.Mutex
	now      func() time.Time
	timeout  time.Duration
	fed      time.Time
	feeds    int
	disarmed bool
	released bool
	// FeedErr, when set, fails every Feed.
	FeedErr error
}

var _ Device = (*Fake)(nil)

// NewFake returns an armed Fake fed at now().
func NewFake(timeout time.Duration, now func() time.Time) *Fake {
	return &Fake{now: now, timeout: timeout, fed: now()}
}

func (f *Fake) Feed() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.FeedErr != nil {
		return f.FeedErr
	}
	if !f.expired() {
		f.fed = f.now()
	}
	f.feeds++
	return nil
}

func (f *Fake) Timeout() time.Duration { return f.timeout }

func (f *Fake) Disarm() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.disarmed = true
	return nil
}

func (f *Fake) Release() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.released = true
	return nil
}

// Expired tells whether the countdown ran out: the host would have been reset.
func (f *Fake) Expired() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.expired()
}

func (f *Fake) expired() bool { return !f.disarmed && !f.now().Before(f.fed.Add(f.timeout)) }

// State reports the feeds so far, whether the device was disarmed, and whether it fired.
func (f *Fake) State() (feeds int, disarmed, fired bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.feeds, f.disarmed, f.expired()
}

// LastFeed is when the countdown last restarted.
func (f *Fake) LastFeed() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.fed
}
