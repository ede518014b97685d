package novacompute

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/computeha/computeha/agents"
	"github.com/computeha/computeha/internal/evacstate"
	"github.com/computeha/computeha/internal/openstack"
)

// Name is the agent's name: ocf:computeha:nova-compute.
const Name = "nova-compute"

// Deps are what the agent reaches outside the node's processes. Each
// function is called at most once per invocation, only by the actions that
// need it.
type Deps struct {
	// Nova returns a Nova client for the parameters' cloud; loginFile, when not empty, is
	// where the Keystone login is kept between invocations.
	Nova func(ctx context.Context, p *Params, loginFile string) (Nova, error)
	// Evacuation returns the reader of the evacuation state.
	Evacuation func(ctx context.Context, p *Params) (EvacuationState, error)
	// Hostname is the machine's host name; nil means os.Hostname.
	Hostname func() (string, error)

	// proc replaces the process manager in tests of the agent's logic.
	proc func(req *agents.Request, p *Params) agents.Process
}

// How often start polls: Nova's answer changes with heartbeats
// (report_interval, 10 s by default), the evacuation state with the end of
// each evacuation.
const (
	novaPoll       = time.Second
	evacuationPoll = time.Second
)

// unforceRefusedLimit is how long start goes on asking Nova to unset forced_down once the
// nova-compute running here has reported. Nova refuses while evacuations from the host are
// "done", and only a starting nova-compute confirms them (it reads them once, at start-up),
// so past its first report waiting cannot help: the start fails, Pacemaker restarts
// nova-compute once the failure expires (failure-timeout), and meanwhile the transition that
// waits for this start is free, so other hosts' actions run (one of them may be the
// nova-compute whose evacuation ending unblocks this one). Nova confirms one evacuation per
// instance at start-up: an instance evacuated twice from this host, its first target having
// died before rebuilding it, can leave the second one "done" until that target has run its
// queue.
const unforceRefusedLimit = 30 * time.Second

// NewAgent returns the agent using deps.
func NewAgent(deps Deps) *agents.Agent {
	if deps.Hostname == nil {
		deps.Hostname = os.Hostname
	}
	return &agents.Agent{
		Name:      Name,
		Version:   "1.0",
		ShortDesc: "Runs nova-compute and keeps Nova's view of this compute host right",
		LongDesc: "Run as a clone on the compute nodes. start waits until no evacuation from this host is pending " +
			"(nova-compute deletes evacuated instances' local copies when it starts), starts nova-compute through " +
			"systemd or start_command, then waits until Nova reports the service up, unsetting forced_down and enabling " +
			"it; a nova-compute it started must first have reported to Nova, so an up state left by the process before " +
			"does not count. monitor checks the process and that Nova has the service up, not forced down and enabled; when the " +
			"Nova API cannot be reached it answers OCF_DEGRADED (190) with the reason, not a failure, and when Nova " +
			"reports every compute service down (a control-plane outage) it answers OCF_DEGRADED too. stop stops " +
			"nova-compute and never talks to Nova. Every call is bounded by the operation timeout.",
		NewParams: func() any { return new(Params) },
		Timeouts: map[string]agents.ActionDefaults{
			"start":        {Timeout: 180 * time.Second},
			"stop":         {Timeout: 60 * time.Second},
			"monitor":      {Timeout: 30 * time.Second, Interval: 10 * time.Second},
			"validate-all": {Timeout: 10 * time.Second},
		},
		Binaries: binaries,
		Open:     func(req *agents.Request) (agents.Resource, error) { return open(req, deps) },
		Sample:   (*resource)(nil),
	}
}

type resource struct {
	req  *agents.Request
	p    *Params
	deps Deps
	proc agents.Process
	// host is the Nova host name; hostErr why it could not be found.
	host    string
	hostErr error
}

var _ agents.Validator = (*resource)(nil)

func open(req *agents.Request, deps Deps) (*resource, error) {
	p := req.Params.(*Params)
	if err := p.check(); err != nil && req.Action != "stop" {
		return nil, err
	}
	r := &resource{req: req, p: p, deps: deps}
	r.host, r.hostErr = r.resolveHost()
	switch {
	case deps.proc != nil:
		r.proc = deps.proc(req, p)
	case p.StartCommand != "":
		state, err := req.StatePath(Name, ".pid")
		if err != nil {
			return nil, err
		}
		r.proc = agents.NewCommandProcess(req, p.StartCommand, p.StopCommand, state, strings.TrimSuffix(state, ".pid")+".out")
	default:
		r.proc = agents.NewSystemdUnit(req, p.Service)
	}
	return r, nil
}

// resolveHost finds the name Nova knows this node by.
func (r *resource) resolveHost() (string, error) {
	if r.p.Host != "" {
		return r.p.Host, nil
	}
	name := r.req.Meta["on_node"]
	if name == "" {
		h, err := r.deps.Hostname()
		if err != nil || h == "" {
			return "", agents.Args("host is not set and the host name cannot be read: %v", err)
		}
		name = h
	}
	if r.p.Domain != "" && !strings.Contains(name, ".") {
		name += "." + r.p.Domain
	}
	return name, nil
}

// Validate checks what depends on this node: the host name and the
// clouds.yaml file. The file is only opened, never read into a message.
func (r *resource) Validate(context.Context) error {
	if r.hostErr != nil {
		return r.hostErr
	}
	f, err := os.Open(r.p.CloudsYAML)
	if err != nil {
		var pe *os.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		return agents.Args("clouds_yaml %s cannot be read: %v", r.p.CloudsYAML, err)
	}
	_ = f.Close()
	return nil
}

func (r *resource) Start(ctx context.Context) error {
	if r.p.EvacuationWait {
		if err := r.waitEvacuations(ctx); err != nil {
			return err
		}
	}
	st, detail, err := r.proc.Status(ctx)
	if err != nil {
		return agents.Generic("checking nova-compute: %w", err)
	}
	// A nova-compute started here must report to Nova before start
	// succeeds: until it does, Nova's "up" rests on the heartbeats of the
	// process before it, which expire within service_down_time, and the
	// first monitor would find the service down.
	var hb heartbeat
	if st == agents.ProcRunning {
		r.req.Log.Info("nova-compute is already running", "detail", detail)
		hb.seen = true
	} else if err := r.proc.Start(ctx); err != nil {
		return agents.Generic("starting nova-compute: %w", err)
	}
	nova, err := r.deps.Nova(ctx, r.p, r.loginFile())
	if err != nil {
		return agents.Generic("Nova API: %w", err)
	}
	return r.req.Poll(ctx, novaPoll, "nova-compute on "+r.host+" to be up and enabled in Nova",
		func(ctx context.Context) (bool, string, error) {
			if st, detail, err := r.proc.Status(ctx); err == nil && st != agents.ProcRunning {
				return false, "", agents.Generic("nova-compute exited while starting: %s", detail)
			}
			return r.settle(ctx, nova, &hb)
		})
}

// heartbeat follows, across start's polls, whether the nova-compute just
// started has reported to Nova. Nova's API shows no heartbeat counter,
// only the service's updated_at, which each report moves forward, and so
// does every change made through the API (unsetting forced_down,
// enabling): the time read after the last such change is the base, and a
// later one is a report.
type heartbeat struct {
	seen    bool
	base    time.Time
	hasBase bool
	// refused is when Nova first refused to unset forced_down after the report (zero while
	// it has not, or has accepted since).
	refused time.Time
}

// observe takes one reading of updated_at.
func (h *heartbeat) observe(updated time.Time) {
	switch {
	case h.seen:
	case !h.hasBase:
		h.base, h.hasBase = updated, true
	case updated.After(h.base):
		h.seen = true
	}
}

// changed records a change made through the API: the next reading is the
// new base.
func (h *heartbeat) changed() { h.hasBase = false }

// settle reads the service and makes one correction (unforce, enable).
// done reports that the service is up, has reported since nova-compute
// started, is not forced down and is enabled.
func (r *resource) settle(ctx context.Context, nova Nova, hb *heartbeat) (done bool, note string, err error) {
	cctx, cancel := r.req.CallContext(ctx, r.p.NovaTimeout)
	defer cancel()
	s, err := nova.Service(cctx, r.host)
	switch {
	case errors.Is(err, ErrNoService):
		return false, "not registered in Nova yet", nil
	case err != nil:
		return false, "Nova API: " + err.Error(), nil
	}
	hb.observe(s.UpdatedAt)
	if s.ForcedDown {
		if err := nova.Unforce(cctx, s.ID); err != nil {
			if hb.seen && openstack.IsEvacuationsPending(err) {
				now := r.req.Clock.Now()
				if hb.refused.IsZero() {
					hb.refused = now
				}
				if now.Sub(hb.refused) >= unforceRefusedLimit {
					return false, "", agents.Generic("Nova refuses to unset forced_down %s after nova-compute on %s reported (%v): it confirms finished evacuations only when it starts, so it must be restarted (failure-timeout lets Pacemaker do it)",
						now.Sub(hb.refused).Round(time.Second), r.host, err)
				}
			}
			return false, "forced down, and Nova refuses to unset it yet: " + err.Error(), nil
		}
		hb.refused = time.Time{}
		hb.changed()
		r.req.Log.Info("unset forced_down in Nova", "host", r.host, "service", s.ID)
		// Nova counts the heartbeats again from now: read it again.
		return false, "forced_down unset", nil
	}
	if !s.Up() {
		return false, "Nova reports it " + s.State, nil
	}
	if !hb.seen {
		return false, "Nova reports it up, but the nova-compute started here has not reported yet", nil
	}
	// A service disabled by computeha (fencing) is enabled again; one an
	// operator disabled (maintenance) is left so, and nova-compute runs.
	if !s.Enabled() && (s.DisabledReason == "" || evacstate.DisabledByUs(s.DisabledReason)) {
		if err := nova.Enable(cctx, s.ID); err != nil {
			return false, "disabled, and enabling it failed: " + err.Error(), nil
		}
		r.req.Log.Info("enabled the compute service in Nova", "host", r.host, "service", s.ID,
			"was_disabled_because", s.DisabledReason)
	}
	r.req.Log.Info("nova-compute is up and enabled in Nova", "host", r.host)
	return true, "", nil
}

func (r *resource) waitEvacuations(ctx context.Context) error {
	if r.hostErr != nil {
		return r.hostErr
	}
	evac, err := r.deps.Evacuation(ctx, r.p)
	if err != nil {
		return agents.Generic("reading the evacuation state: %w", err)
	}
	return r.req.Poll(ctx, evacuationPoll, "the evacuations from "+r.host+" to finish",
		func(ctx context.Context) (bool, string, error) {
			cctx, cancel := r.req.CallContext(ctx, r.p.NovaTimeout)
			defer cancel()
			pending, desc, err := evac.Pending(cctx, r.host)
			switch {
			case err != nil:
				return false, "evacuation state unreadable: " + err.Error(), nil
			case pending:
				if desc == "" {
					desc = "evacuations pending"
				}
				return false, desc, nil
			}
			return true, "", nil
		})
}

func (r *resource) Stop(ctx context.Context) error {
	if err := r.proc.Stop(ctx); err != nil {
		return agents.Generic("stopping nova-compute: %w", err)
	}
	return nil
}

func (r *resource) Monitor(ctx context.Context) error {
	if err := agents.CheckRunning(ctx, r.req, r.proc, "nova-compute"); err != nil {
		return err
	}
	if r.hostErr != nil {
		return r.hostErr
	}
	// Logging in to Keystone is a call too: bounded like the others, so that a loaded control
	// plane makes the monitor say degraded, never run into its timeout.
	lctx, lcancel := r.req.CallContext(ctx, r.p.NovaTimeout)
	defer lcancel()
	nova, err := r.deps.Nova(lctx, r.p, r.loginFile())
	if err != nil {
		return agents.Degraded("nova-compute runs, but Nova cannot be checked: %v", err)
	}
	cctx, cancel := r.req.CallContext(ctx, r.p.NovaTimeout)
	defer cancel()
	s, err := nova.Service(cctx, r.host)
	switch {
	case errors.Is(err, ErrNoService):
		return agents.Generic("nova-compute runs, but Nova has no compute service for host %q (is host right?)", r.host)
	case err != nil:
		return agents.Degraded("nova-compute runs, but Nova cannot be checked: %v", err)
	case s.ForcedDown:
		return agents.Generic("nova-compute runs, but Nova has %s forced down", r.host)
	case !s.Up():
		return r.down(cctx, nova, s)
	case !s.Enabled() && (s.DisabledReason == "" || evacstate.DisabledByUs(s.DisabledReason)):
		return agents.Generic("nova-compute runs, but %s is disabled in Nova (%s)", r.host, disabledReason(s))
	case !s.Enabled():
		r.req.Log.Info("compute service disabled by an operator; left so", "host", r.host, "reason", s.DisabledReason)
	}
	return nil
}

// loginFile is where the agent keeps its Keystone login between invocations, in HA_RSCTMP
// (emptied at boot), so that a monitor does not log in each time (openstack.Options.
// LoginFile says why). "" when the directory cannot be made: each invocation then logs in.
func (r *resource) loginFile() string {
	p, err := r.req.StatePath(Name, ".login")
	if err != nil {
		r.req.Log.Warn("no state directory for the Keystone login; logging in at each call", "error", err)
		return ""
	}
	return p
}

// down judges a running nova-compute that Nova reports down. When no
// compute service at all is up, Nova's control plane is at fault (its
// conductor, database or message queue): restarting nova-compute on every
// node would not help and would only add load, so that is reported as
// degraded.
func (r *resource) down(ctx context.Context, nova Nova, s Service) error {
	all, err := nova.ComputeServices(ctx)
	if err != nil {
		return agents.Degraded("nova-compute runs, but Nova reports %s down and the other services cannot be listed: %v", r.host, err)
	}
	for _, o := range all {
		if o.Host != s.Host && o.Up() {
			return agents.Generic("nova-compute runs, but Nova reports %s down (last report %s) while %s is up",
				r.host, lastReport(s), o.Host)
		}
	}
	return agents.Degraded("nova-compute runs, but Nova reports every compute service down: a Nova control-plane problem")
}

func lastReport(s Service) string {
	if s.UpdatedAt.IsZero() {
		return "unknown"
	}
	return s.UpdatedAt.UTC().Format(time.RFC3339)
}

func disabledReason(s Service) string {
	if s.DisabledReason == "" {
		return "no reason given"
	}
	return fmt.Sprintf("reason: %q", s.DisabledReason)
}
