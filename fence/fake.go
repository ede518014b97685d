package fence

import (
	"context"
	"fmt"
	"log/slog"
	"sort"
	"sync"
)

// FakeDevice is an in-memory fence device for unit tests of logic that
// drives fence agents. It is never the proof that an agent works: that is
// the integration suite against real BMCs and libvirtd.
type FakeDevice struct {
	mu sync.Mutex
	// Plugs holds each target's power state ("" for a single-target device).
	Plugs map[string]State
	// Lag is how many Status calls a power change takes to show.
	Lag int
	// Stuck makes the device accept power requests and never act on them.
	Stuck map[bool]bool
	// StatusErr and SetErr, when set, are returned by Status and SetPower.
	StatusErr, SetErr error
	// Calls records every request, e.g. "status", "off", "on", "list".
	Calls []string

	pending map[string]pendingChange
	closed  bool
}

type pendingChange struct {
	to    State
	after int
}

var (
	_ Device = (*FakeDevice)(nil)
	_ Lister = (*FakeDevice)(nil)
	_ Cycler = (*FakeDevice)(nil)
)

// NewFakeDevice returns a device with the given targets, all on.
func NewFakeDevice(plugs ...string) *FakeDevice {
	d := &FakeDevice{Plugs: map[string]State{}, pending: map[string]pendingChange{}, Stuck: map[bool]bool{}}
	if len(plugs) == 0 {
		plugs = []string{""}
	}
	for _, p := range plugs {
		d.Plugs[p] = On
	}
	return d
}

func (d *FakeDevice) record(call string) {
	d.Calls = append(d.Calls, call)
}

// Status reports plug's state, applying a pending change once Lag polls passed.
func (d *FakeDevice) Status(_ context.Context, plug string) (State, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.record("status")
	if d.StatusErr != nil {
		return Unknown, d.StatusErr
	}
	st, ok := d.Plugs[plug]
	if !ok {
		return Unknown, fmt.Errorf("%w: %s", ErrNoPlug, plug)
	}
	if pc, ok := d.pending[plug]; ok {
		if pc.after <= 0 {
			d.Plugs[plug] = pc.to
			delete(d.pending, plug)
			return pc.to, nil
		}
		pc.after--
		d.pending[plug] = pc
	}
	return st, nil
}

// SetPower queues the change, to show after Lag status calls.
func (d *FakeDevice) SetPower(_ context.Context, plug string, on bool) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.record(map[bool]string{true: "on", false: "off"}[on])
	if d.SetErr != nil {
		return d.SetErr
	}
	if _, ok := d.Plugs[plug]; !ok {
		return fmt.Errorf("%w: %s", ErrNoPlug, plug)
	}
	if d.Stuck[on] {
		return nil
	}
	to := Off
	if on {
		to = On
	}
	d.pending[plug] = pendingChange{to: to, after: d.Lag}
	return nil
}

// Cycle turns plug off and on at once.
func (d *FakeDevice) Cycle(_ context.Context, plug string) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.record("cycle")
	if d.SetErr != nil {
		return d.SetErr
	}
	d.Plugs[plug] = On
	return nil
}

// List returns every target, sorted by name.
func (d *FakeDevice) List(context.Context) ([]Outlet, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.record("list")
	if d.StatusErr != nil {
		return nil, d.StatusErr
	}
	var out []Outlet
	for p, st := range d.Plugs {
		out = append(out, Outlet{ID: p, Alias: "alias-" + p, State: st})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}

// Close marks the session closed.
func (d *FakeDevice) Close() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.closed = true
	return nil
}

// Closed tells whether the runtime closed the session.
func (d *FakeDevice) Closed() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.closed
}

// FakeParams are the options of FakeAgent.
type FakeParams struct {
	Plug  string `fence:"plug" old:"port" short:"n" metavar:"id" required:"true" help:"Target to fence"`
	Count int    `fence:"count" metavar:"n" default:"1" help:"A number, for tests of integer options"`
	Mode  string `fence:"mode" default:"onoff" choices:"onoff,cycle" help:"Method, for tests of select options"`
	Credentials
	Common
}

// UseCycle selects a one-step power cycle for reboot.
func (p *FakeParams) UseCycle() bool { return p.Mode == "cycle" }

// FakeAgent returns an agent named fence_fake whose Connect hands out dev
// (or fails with connectErr), and records the options it was given.
func FakeAgent(dev *FakeDevice, connectErr error, got *FakeParams) *Agent {
	return &Agent{
		Name:      "fence_fake",
		ShortDesc: "Fence agent for tests",
		LongDesc:  "An in-memory fence device.",
		VendorURL: "https://example.invalid",
		NewParams: func() Params { return &FakeParams{} },
		Connect: func(_ context.Context, p Params, _ *slog.Logger) (Device, error) {
			if got != nil {
				*got = *p.(*FakeParams)
			}
			if connectErr != nil {
				return nil, connectErr
			}
			return dev, nil
		},
	}
}
