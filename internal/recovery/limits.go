package recovery

import (
	"context"
	"sync"
)

// Limits bounds the moves in flight to each target host, as Nova's own per-compute limit on
// builds (max_concurrent_builds) does, and adapts the bound to how the host copes: each move
// that succeeds there raises it by one, up to twice the start; each that fails halves it, down
// to one. A host that fails moves is not buried under more of them, and one that takes them
// well is given more. Moves whose target Nova's scheduler picks share one bound of their own.
// Limits is shared by every recovery of a daemon, since two failed hosts may send VMs to the
// same target. Safe for concurrent use.
type Limits struct {
	start int

	mu    sync.Mutex
	hosts map[string]*hostLimit
}

type hostLimit struct {
	limit, inUse int
	wake         chan struct{} // closed and replaced when a slot frees
}

// NewLimits returns bounds starting at start moves per host (at least 1).
func NewLimits(start int) *Limits {
	return &Limits{start: max(1, start), hosts: map[string]*hostLimit{}}
}

func (l *Limits) host(name string) *hostLimit {
	h := l.hosts[name]
	if h == nil {
		h = &hostLimit{limit: l.start, wake: make(chan struct{})}
		l.hosts[name] = h
	}
	return h
}

// Acquire waits for a slot on host, or until ctx ends. release gives the slot back and tells
// whether the move succeeded there.
func (l *Limits) Acquire(ctx context.Context, host string) (release func(ok bool), err error) {
	for {
		l.mu.Lock()
		h := l.host(host)
		if h.inUse < h.limit {
			h.inUse++
			l.mu.Unlock()
			var once sync.Once
			return func(ok bool) { once.Do(func() { l.release(h, ok) }) }, nil
		}
		wake := h.wake
		l.mu.Unlock()
		select {
		case <-wake:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

func (l *Limits) release(h *hostLimit, ok bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	h.inUse--
	if ok {
		h.limit = min(h.limit+1, 2*l.start)
	} else {
		h.limit = max(1, h.limit/2)
	}
	close(h.wake)
	h.wake = make(chan struct{})
}

// Limit is host's bound now.
func (l *Limits) Limit(host string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.host(host).limit
}
