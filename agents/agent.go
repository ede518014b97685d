package agents

import (
	"context"
	"fmt"
	"log/slog"
	"time"
)

// Agent is one OCF resource agent.
type Agent struct {
	// Name is the agent's file name under resource.d/computeha/.
	Name string
	// Version is the agent's own version, printed in the meta-data. It is
	// not the build version: the meta-data is checked in and must not
	// change with every commit.
	Version   string
	ShortDesc string
	LongDesc  string
	// NewParams returns a pointer to a fresh tagged parameter struct.
	NewParams func() any
	// Timeouts are the default timeouts (and monitor interval) the
	// meta-data advertises, by action. They also bound an action run by
	// hand, without OCF_RESKEY_CRM_meta_timeout.
	Timeouts map[string]ActionDefaults
	// Binaries lists the programs the resource needs, given its decoded
	// parameters: names looked up in PATH, or absolute paths. Nil means
	// none.
	Binaries func(params any) []string
	// Open makes the resource of one invocation from the decoded
	// parameters (req.Params). Checks that need nothing but the values
	// belong here, returning Configured errors.
	Open func(req *Request) (Resource, error)
	// Sample is a zero value of the resource type Open returns. Only its
	// method set is used: it tells the meta-data which optional actions
	// (promote, notify, reload, migrate) the agent has.
	Sample Resource
}

func (a *Agent) sample() Resource { return a.Sample }

// ActionDefaults are an action's advertised defaults.
type ActionDefaults struct {
	Timeout  time.Duration
	Interval time.Duration // monitor only
}

// Resource is what an agent manages, opened for one invocation.
type Resource interface {
	// Start makes the resource run. Starting a running resource succeeds.
	Start(ctx context.Context) error
	// Stop makes it stop. Stopping a stopped resource succeeds.
	Stop(ctx context.Context) error
	// Monitor reports its state: nil when it runs and is healthy,
	// NotRunning when it is cleanly stopped (req.Probe() tells a probe
	// apart), Degraded when it runs but cannot be checked fully, and a
	// failure otherwise.
	Monitor(ctx context.Context) error
}

// Validator is a Resource with checks that need the node: files that must
// be here, names that must resolve. validate-all and start run it; its
// errors should be Args (not valid on this node) or Configured.
type Validator interface {
	Validate(ctx context.Context) error
}

// Optional actions. A Resource without them answers OCF_ERR_UNIMPLEMENTED.
type (
	Promoter interface {
		Promote(ctx context.Context) error
		Demote(ctx context.Context) error
	}
	Notifier interface {
		Notify(ctx context.Context) error
	}
	Reloader interface {
		// Reload applies changed parameters (reload and reload-agent).
		Reload(ctx context.Context) error
	}
	Migrator interface {
		MigrateTo(ctx context.Context) error
		MigrateFrom(ctx context.Context) error
	}
)

// Clock is the time source of an invocation; tests inject a fake one.
type Clock interface {
	Now() time.Time
	// Sleep waits for d, or until ctx ends (returning its error).
	Sleep(ctx context.Context, d time.Duration) error
}

type realClock struct{}

func (realClock) Now() time.Time { return time.Now() }

func (realClock) Sleep(ctx context.Context, d time.Duration) error {
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

// Request is one invocation: the action and everything Pacemaker passed.
type Request struct {
	Action string
	// Params points to the decoded parameter struct (Agent.NewParams).
	Params any
	// Meta holds the OCF_RESKEY_CRM_meta_* values, by name without the
	// prefix (interval, timeout, on_node, clone_max, ...).
	Meta map[string]string
	// Interval and Timeout are the operation's, from the meta attributes
	// (milliseconds); Timeout falls back to the action's default.
	Interval, Timeout time.Duration
	// Instance is OCF_RESOURCE_INSTANCE (the resource id), Type is
	// OCF_RESOURCE_TYPE, Root is OCF_ROOT.
	Instance, Type, Root string
	// CheckLevel is OCF_CHECK_LEVEL (0, 10 or 20).
	CheckLevel int
	// StateDir is HA_RSCTMP, where agents keep state between invocations;
	// it is emptied when the node boots.
	StateDir string
	Log      *slog.Logger
	Clock    Clock
	// Environ is the agent's environment, for programs it starts.
	Environ []string
	// LookPath finds a program as the binaries check does (and so sees
	// programs as missing when ocf-tester asks it to).
	LookPath func(string) (string, error)

	deadline time.Time
}

// Probe tells whether this is a probe: a monitor with interval 0, which
// Pacemaker runs to learn the state of a resource on a node. Pacemaker 2.1
// passes no OCF_RESKEY_CRM_meta_interval at all for a probe (only recurring
// operations carry one), so an absent interval is 0, as resource-agents'
// ocf_is_probe takes it.
func (r *Request) Probe() bool {
	return r.Action == "monitor" && r.Interval == 0
}

// Deadline is when the action must have finished: the operation timeout
// less a margin to report the outcome before Pacemaker kills the agent.
func (r *Request) Deadline() time.Time { return r.deadline }

// Remaining is the time left until the deadline (never negative).
func (r *Request) Remaining() time.Duration {
	return max(0, r.deadline.Sub(r.Clock.Now()))
}

// CallContext bounds one call (to an API, a program) by limit and by the
// time left, whichever is shorter.
func (r *Request) CallContext(ctx context.Context, limit time.Duration) (context.Context, context.CancelFunc) {
	d := r.Remaining()
	if limit > 0 && limit < d {
		d = limit
	}
	return context.WithTimeout(ctx, d)
}

// Poll calls check every interval until it reports done, returns an error,
// or the deadline passes. It returns nil once done; check's error as is;
// and at the deadline a Generic error "timed out after ... waiting for
// what" with the last progress note check gave.
func (r *Request) Poll(ctx context.Context, interval time.Duration, what string, check func(ctx context.Context) (done bool, note string, err error)) error {
	start := r.Clock.Now()
	last := ""
	for {
		done, note, err := check(ctx)
		if err != nil || done {
			return err
		}
		if note != "" && note != last {
			r.Log.Info("waiting for "+what, "state", note)
		}
		last = note
		if left := r.Remaining(); left > 0 {
			if err := r.Clock.Sleep(ctx, min(interval, left)); err != nil {
				return Generic("interrupted waiting for %s: %w", what, err)
			}
		}
		// A check with no time left could only time out and hide the
		// last real answer.
		if r.Remaining() <= 0 {
			msg := fmt.Sprintf("timed out after %s waiting for %s", r.Clock.Now().Sub(start).Round(time.Second), what)
			if last != "" {
				msg += " (" + last + ")"
			}
			return &Error{Code: ErrGeneric, Msg: msg}
		}
	}
}
