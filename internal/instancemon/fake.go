package instancemon

import (
	"context"
	"errors"
	"sync"
)

// FakeHypervisor is a Dialer's hypervisor for tests: domains with states, and connections
// the test can feed events into, break or hang.
type FakeHypervisor struct {
	mu      sync.Mutex
	domains map[string]DomainState
	conns   []*FakeConn
	// Down makes every dial fail while true.
	down bool
	// Dials counts the connections made.
	Dials int
}

// SetDomain sets (adds) a domain's state.
func (h *FakeHypervisor) SetDomain(d DomainState) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.domains == nil {
		h.domains = map[string]DomainState{}
	}
	h.domains[d.UUID] = d
}

// SetDown makes the hypervisor refuse connections (down) or take them again.
func (h *FakeHypervisor) SetDown(down bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.down = down
}

// Dial is the hypervisor's Dialer.
func (h *FakeHypervisor) Dial(context.Context) (Conn, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.down {
		return nil, errors.New("connection refused")
	}
	h.Dials++
	c := &FakeConn{h: h, events: make(chan Raw, 64), closed: make(chan struct{})}
	h.conns = append(h.conns, c)
	return c, nil
}

// Conn is the latest connection (nil before the first).
func (h *FakeHypervisor) Conn() *FakeConn {
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.conns) == 0 {
		return nil
	}
	return h.conns[len(h.conns)-1]
}

// FakeConn is one connection of a FakeHypervisor.
type FakeConn struct {
	h      *FakeHypervisor
	events chan Raw
	closed chan struct{}
	mu     sync.Mutex
	broken bool
	hung   bool
	once   sync.Once
}

var _ Conn = (*FakeConn)(nil)

// Send delivers an event on this connection.
func (c *FakeConn) Send(r Raw) { c.events <- r }

// Break ends the connection as a libvirtd that died does: the event stream closes.
func (c *FakeConn) Break() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.broken {
		c.broken = true
		close(c.events)
	}
}

// Hang makes the connection stop answering (pings never return) while the stream stays
// open, as a libvirtd stopped with SIGSTOP does.
func (c *FakeConn) Hang() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.hung = true
}

// Closed is closed once the monitor closed the connection.
func (c *FakeConn) Closed() <-chan struct{} { return c.closed }

func (c *FakeConn) Events() <-chan Raw { return c.events }

func (c *FakeConn) Domains(context.Context) ([]DomainState, error) {
	c.h.mu.Lock()
	defer c.h.mu.Unlock()
	out := make([]DomainState, 0, len(c.h.domains))
	for _, d := range c.h.domains {
		out = append(out, d)
	}
	return out, nil
}

func (c *FakeConn) Ping(ctx context.Context) error {
	c.mu.Lock()
	hung, broken := c.hung, c.broken
	c.mu.Unlock()
	if broken {
		return errors.New("connection closed")
	}
	if hung {
		<-ctx.Done()
		return ctx.Err()
	}
	return nil
}

func (c *FakeConn) Close() error {
	c.once.Do(func() { close(c.closed) })
	return nil
}

// FakeReporter records the reports it receives; Fail makes the next calls fail.
type FakeReporter struct {
	mu      sync.Mutex
	got     []Event
	fail    int
	reject  bool
	blocked chan struct{}
}

// Fail makes the next n reports fail with a transient error.
func (r *FakeReporter) Fail(n int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.fail = n
}

// Reject makes every report be refused for good.
func (r *FakeReporter) Reject() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.reject = true
}

// Block makes reports wait until the returned function is called (a receiver that hangs).
func (r *FakeReporter) Block() (release func()) {
	r.mu.Lock()
	defer r.mu.Unlock()
	ch := make(chan struct{})
	r.blocked = ch
	return func() { close(ch) }
}

func (r *FakeReporter) Report(ctx context.Context, e Event) error {
	r.mu.Lock()
	blocked := r.blocked
	r.mu.Unlock()
	if blocked != nil {
		select {
		case <-blocked:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.reject {
		return ErrRejected
	}
	if r.fail > 0 {
		r.fail--
		return errors.New("connection refused")
	}
	r.got = append(r.got, e)
	return nil
}

// Got is every report received, in order.
func (r *FakeReporter) Got() []Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Event(nil), r.got...)
}
