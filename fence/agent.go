package fence

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
)

// State is the power state of a fence target.
type State int

// Power states.
const (
	Unknown State = iota
	On
	Off
)

func (s State) String() string {
	switch s {
	case On:
		return "ON"
	case Off:
		return "OFF"
	}
	return "UNKNOWN"
}

// Device is a connected fence device. plug names the target on devices
// that control several ("" on single-target devices such as a BMC).
type Device interface {
	// Status reports the current power state of plug.
	Status(ctx context.Context, plug string) (State, error)
	// SetPower asks the device to power plug on or off. It returns once the
	// device accepted the request; the runtime confirms the result with
	// Status, within power_timeout.
	SetPower(ctx context.Context, plug string, on bool) error
	// Close ends the session with the device.
	Close() error
}

// Outlet is one target a device can fence.
type Outlet struct {
	ID    string
	Alias string
	State State
}

// Lister is a Device that can enumerate its targets (list, list-status).
type Lister interface {
	List(ctx context.Context) ([]Outlet, error)
}

// Cycler is a Device with a one-step power cycle (method=cycle).
type Cycler interface {
	Cycle(ctx context.Context, plug string) error
}

// Validator is a parameter struct that checks itself beyond types and
// required options (validate-all and every action run it).
type Validator interface {
	Validate() error
}

// Agent is one fence agent: its identity, its parameters and how to reach
// its device.
type Agent struct {
	Name      string
	ShortDesc string
	LongDesc  string
	VendorURL string
	// Fabric agents cut a host off from resources instead of powering it:
	// they have no reboot (a reboot request acts as off), and their "on" is
	// automatic (unfencing).
	Fabric bool
	// NewParams returns a pointer to a fresh parameter struct embedding
	// Common (and Credentials for agents that log in).
	NewParams func() Params
	// Defaults replace the defaults of common parameters for this agent, by
	// name: the common ones suit a BMC answering on the local network, not
	// every device (an API under load answers slower). Each name must be a
	// parameter of the agent.
	Defaults map[string]string
	// Connect opens a session with the device described by p, bounded by
	// ctx (login_timeout). Errors are reported as a failure to log in.
	Connect func(ctx context.Context, p Params, log *slog.Logger) (Device, error)
}

func (a *Agent) spec() Spec {
	spec := SpecOf(a.NewParams())
	for name, def := range a.Defaults {
		i := slices.IndexFunc(spec, func(p Param) bool { return p.Name == name })
		if i < 0 {
			panic(fmt.Sprintf("fence: %s sets a default for %q, which it has no parameter of", a.Name, name))
		}
		spec[i].Default = def
	}
	return spec
}

// HasPlugs tells whether the agent fences several targets named by plug.
func (a *Agent) HasPlugs() bool { return a.spec().Has("plug") }

func (a *Agent) defaultAction() string {
	if a.Fabric {
		return "off"
	}
	return "reboot"
}

// actions lists the actions the agent implements, in metadata order.
func (a *Agent) actions() []string {
	acts := []string{"on", "off"}
	if !a.Fabric {
		acts = append(acts, "reboot")
	}
	acts = append(acts, "status")
	if a.HasPlugs() {
		acts = append(acts, "list", "list-status")
	}
	return append(acts, "monitor", "metadata", "manpage", "validate-all")
}

// Errors the runtime reports with the fence-agents wording.
var (
	// ErrLogin: the device could not be reached or refused the login.
	ErrLogin = errors.New("Unable to connect/login to fencing device")
	// ErrTimedOutOff: the device never reported the target off.
	ErrTimedOutOff = errors.New("Failed: Timed out waiting to power OFF")
	// ErrTimedOutOn: the device never reported the target on.
	ErrTimedOutOn = errors.New("Failed: Timed out waiting to power ON")
	// ErrStatus: the device did not tell the target's power state.
	ErrStatus = errors.New("Failed: Unable to obtain correct plug status or plug is not available")
	// ErrNoPlug: the device has no target of that name.
	ErrNoPlug = errors.New("Failed: no such plug on this device")
)
