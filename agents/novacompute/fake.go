package novacompute

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"
)

// FakeNova is an in-memory Nova for tests.
type FakeNova struct {
	mu       sync.Mutex
	services map[string]*Service // by host
	// Err, when set, is returned by every call (an unreachable API).
	Err error
	// RefuseUnforce, when set, is returned by Unforce (Nova refusing it
	// while evacuations are unconfirmed).
	RefuseUnforce error
	// BeforeRead, when set, runs before every read with the lock held, to
	// script changes over time (a heartbeat arriving, ...).
	BeforeRead func(f *FakeNova)
	// Beating, when set, makes every service not forced down report (a
	// heartbeat) before each read, as a running nova-compute does.
	Beating bool
	calls   []string
	// clock moves updated_at forward one second per change.
	clock time.Time
}

var _ Nova = (*FakeNova)(nil)

// NewFakeNova returns a fake Nova with the given services.
func NewFakeNova(svcs ...Service) *FakeNova {
	f := &FakeNova{services: map[string]*Service{}, clock: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	for _, s := range svcs {
		f.services[s.Host] = &s
	}
	return f
}

// Set changes (or adds) the service of s.Host.
func (f *FakeNova) Set(s Service) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.services[s.Host] = &s
}

// SetLocked is Set for BeforeRead, which runs with the lock held.
func (f *FakeNova) SetLocked(s Service) { f.services[s.Host] = &s }

// BeatLocked is a heartbeat of host's nova-compute, for BeforeRead: like
// Nova, it moves updated_at forward, and the service is up unless forced
// down.
func (f *FakeNova) BeatLocked(host string) {
	s, ok := f.services[host]
	if !ok {
		return
	}
	f.touch(s)
	if !s.ForcedDown {
		s.State = "up"
	}
}

// touch moves s's updated_at forward, as every change of a service row
// does in Nova.
func (f *FakeNova) touch(s *Service) {
	f.clock = f.clock.Add(time.Second)
	s.UpdatedAt = f.clock
}

// Get returns the service of host as the fake holds it.
func (f *FakeNova) Get(host string) (Service, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	s, ok := f.services[host]
	if !ok {
		return Service{}, false
	}
	return *s, true
}

// Calls lists the calls made, as "Service host", "Unforce id", ...
func (f *FakeNova) Calls() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.calls)
}

func (f *FakeNova) call(format string, a ...any) error {
	f.calls = append(f.calls, fmt.Sprintf(format, a...))
	return f.Err
}

// Service implements Nova.
func (f *FakeNova) Service(ctx context.Context, host string) (Service, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.call("Service %s", host); err != nil {
		return Service{}, err
	}
	if err := ctx.Err(); err != nil {
		return Service{}, err
	}
	if f.Beating {
		f.BeatLocked(host)
	}
	if f.BeforeRead != nil {
		f.BeforeRead(f)
	}
	s, ok := f.services[host]
	if !ok {
		return Service{}, ErrNoService
	}
	return *s, nil
}

// ComputeServices implements Nova.
func (f *FakeNova) ComputeServices(ctx context.Context) ([]Service, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.call("ComputeServices"); err != nil {
		return nil, err
	}
	if f.BeforeRead != nil {
		f.BeforeRead(f)
	}
	var out []Service
	for _, s := range f.services {
		out = append(out, *s)
	}
	slices.SortFunc(out, func(a, b Service) int {
		if a.Host < b.Host {
			return -1
		}
		return 1
	})
	return out, ctx.Err()
}

func (f *FakeNova) byID(id string) (*Service, error) {
	for _, s := range f.services {
		if s.ID == id {
			return s, nil
		}
	}
	return nil, fmt.Errorf("no service %s", id)
}

// Unforce implements Nova. A service no longer forced down is reported up
// at once, as Nova does while the heartbeats of the process before are
// recent.
func (f *FakeNova) Unforce(_ context.Context, id string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.call("Unforce %s", id); err != nil {
		return err
	}
	if f.RefuseUnforce != nil {
		return f.RefuseUnforce
	}
	s, err := f.byID(id)
	if err != nil {
		return err
	}
	s.ForcedDown = false
	s.State = "up"
	f.touch(s)
	return nil
}

// Enable implements Nova.
func (f *FakeNova) Enable(_ context.Context, id string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.call("Enable %s", id); err != nil {
		return err
	}
	s, err := f.byID(id)
	if err != nil {
		return err
	}
	s.Status, s.DisabledReason = "enabled", ""
	f.touch(s)
	return nil
}

// FakeEvacuation is an in-memory EvacuationState for tests.
type FakeEvacuation struct {
	mu sync.Mutex
	// pending holds the description of each host's pending evacuations.
	pending map[string]string
	// Err, when set, is returned by Pending.
	Err error
	// Reads counts the calls to Pending; ClearAfter, when above 0, clears
	// every pending evacuation at that read.
	Reads, ClearAfter int
}

var _ EvacuationState = (*FakeEvacuation)(nil)

// NewFakeEvacuation returns a fake with nothing pending.
func NewFakeEvacuation() *FakeEvacuation { return &FakeEvacuation{pending: map[string]string{}} }

// SetPending marks host as having pending evacuations (desc "" clears).
func (f *FakeEvacuation) SetPending(host, desc string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if desc == "" {
		delete(f.pending, host)
		return
	}
	f.pending[host] = desc
}

// Pending implements EvacuationState.
func (f *FakeEvacuation) Pending(ctx context.Context, host string) (bool, string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.Reads++
	if f.ClearAfter > 0 && f.Reads >= f.ClearAfter {
		clear(f.pending)
	}
	if f.Err != nil {
		return false, "", f.Err
	}
	desc, ok := f.pending[host]
	return ok, desc, ctx.Err()
}
