// Package evacuator is ocf:computeha:evacuator: it runs computeha's
// evacuation daemon (computeha evacd) as a single primitive on the
// controllers, so Pacemaker keeps exactly one running and moves it when its
// controller fails. monitor asks the daemon itself, over its socket,
// whether it is healthy.
package evacuator

import (
	"context"
	"errors"
	"os"
	"strings"
	"time"

	"github.com/computeha/computeha/agents"
	"github.com/computeha/computeha/crm"
	"github.com/computeha/computeha/internal/config"
	"github.com/computeha/computeha/internal/evacdsock"
)

// Name is the agent's name under resource.d/computeha/.
const Name = "evacuator"

// Params are the agent's parameters.
type Params struct {
	Config      string `ocf:"config" default:"/etc/computeha/evacd.yaml" help:"Evacuation daemon configuration file" long:"The YAML configuration of the evacuation daemon: the cloud, failover segments, reserved hosts, HA policy, limits, guard and history store. validate-all and start check it and list every problem."`
	Socket      string `ocf:"socket" default:"/run/computeha/evacd.sock" help:"Health socket of the daemon" long:"The UNIX socket the daemon answers health requests on; monitor asks it."`
	AlertSocket string `ocf:"alert_socket" default:"/run/computeha/alert.sock" help:"Socket the alert agent delivers to" long:"Where computeha's Pacemaker alert agent delivers node, fencing and attribute alerts for the daemon."`
	AlertAgent  string `ocf:"alert_agent" default:"/usr/libexec/computeha/computeha_alert" help:"Alert agent registered in the CIB" long:"The path of computeha's alert agent, which the daemon registers in the CIB's alerts section."`
	StateDir    string `ocf:"state_dir" default:"/var/lib/computeha" help:"Directory of the daemon's saved state" long:"The daemon keeps the cluster state it has seen here, so that after a restart it reports what changed while it was down."`
	Binary      string `ocf:"binary" help:"computeha binary to run (default: this agent's own binary)" long:"The computeha binary that runs the daemon; by default the binary this agent is part of."`
}

// NewAgent returns the agent.
func NewAgent() *agents.Agent {
	return &agents.Agent{
		Name:      Name,
		Version:   "1.0",
		ShortDesc: "Runs computeha's evacuation daemon",
		LongDesc: "Run as a single primitive on the controllers. start runs computeha evacd with the given " +
			"configuration and waits until it answers on its health socket; monitor asks it; stop stops it. " +
			"The daemon recovers the VMs of compute hosts fence_nova marked for evacuation, after their fencing " +
			"is confirmed; its progress lives in the CIB, so a daemon started on another controller resumes. " +
			"Give the resource meta resource-stickiness=INFINITY: otherwise the scheduler may move it between " +
			"controllers when a host fails, and its new start then waits behind the recovery's transitions.",
		NewParams: func() any { return new(Params) },
		Timeouts: map[string]agents.ActionDefaults{
			"start":        {Timeout: 60 * time.Second},
			"stop":         {Timeout: 30 * time.Second},
			"monitor":      {Timeout: 20 * time.Second, Interval: 10 * time.Second},
			"validate-all": {Timeout: 20 * time.Second},
		},
		// The daemon talks to Pacemaker through its tools.
		Binaries: func(any) []string { return crm.Tools },
		Open:     open,
		Sample:   (*resource)(nil),
	}
}

type resource struct {
	req  *agents.Request
	p    *Params
	proc agents.Process
}

func open(req *agents.Request) (agents.Resource, error) {
	p := req.Params.(*Params)
	bin := p.Binary
	if bin == "" {
		exe, err := os.Executable()
		if err != nil {
			return nil, agents.Installed("cannot find the computeha binary: %v", err)
		}
		bin = exe
	}
	args := []string{
		"evacd", "--config", p.Config, "--socket", p.Socket, "--alert-socket", p.AlertSocket,
		"--alert-agent", p.AlertAgent, "--state-dir", p.StateDir,
	}
	if node := req.Meta["on_node"]; node != "" {
		args = append(args, "--owner", node)
	}
	proc, err := agents.NewDaemonProcess(req, Name, bin, args...)
	if err != nil {
		return nil, err
	}
	return &resource{req: req, p: p, proc: proc}, nil
}

// Validate checks the configuration file.
func (r *resource) Validate(context.Context) error {
	if _, err := config.Load(r.p.Config); err != nil {
		var ce *config.Error
		if errors.As(err, &ce) {
			return agents.Configured("%s", strings.Join(ce.Problems, "; "))
		}
		return agents.Args("%v", err)
	}
	return nil
}

func (r *resource) Start(ctx context.Context) error {
	return agents.StartAndWait(ctx, r.req, r.proc, "the daemon", func(ctx context.Context) (bool, string, error) {
		h, err := evacdsock.Ask(ctx, r.p.Socket)
		if err != nil {
			return false, err.Error(), nil
		}
		return h.OK, "not ready", nil
	})
}

func (r *resource) Stop(ctx context.Context) error {
	if err := r.proc.Stop(ctx); err != nil {
		return agents.Generic("stopping the daemon: %w", err)
	}
	return nil
}

func (r *resource) Monitor(ctx context.Context) error {
	if err := agents.CheckRunning(ctx, r.req, r.proc, "the evacuation daemon"); err != nil {
		return err
	}
	cctx, cancel := r.req.CallContext(ctx, 5*time.Second)
	defer cancel()
	h, err := evacdsock.Ask(cctx, r.p.Socket)
	if err != nil {
		return agents.Generic("the evacuation daemon runs but does not answer on %s: %v", r.p.Socket, err)
	}
	if !h.OK {
		return agents.Generic("the evacuation daemon reports a problem: %s", h.LastErr)
	}
	if h.LastErr != "" {
		r.req.Log.Warn("the evacuation daemon reports an error", "error", h.LastErr)
	}
	return nil
}
