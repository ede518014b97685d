// Package hostcheck is ocf:computeha:hostcheck: it runs computeha's per-host health process
// (computeha hostcheck) as a clone on every node, controllers and computes alike. The process
// writes the host's heartbeat to the shared storage, probes the other hosts on every network
// and publishes what it sees as node attributes, and restarts the host's cluster service when
// it dies. monitor asks the process itself, over its socket, whether its heartbeat writer and
// its probe loop work.
package hostcheck

import (
	"context"
	"errors"
	"os"
	"strings"
	"time"

	"github.com/computeha/computeha/agents"
	"github.com/computeha/computeha/internal/config"
	"github.com/computeha/computeha/internal/health"
	hc "github.com/computeha/computeha/internal/hostcheck"
)

// Name is the agent's name under resource.d/computeha/.
const Name = "hostcheck"

// Params are the agent's parameters.
type Params struct {
	Config  string `ocf:"config" default:"/etc/computeha/evacd.yaml" help:"computeha configuration file" long:"The YAML configuration shared with the evacuation daemon. Its health section (shared_dir, networks, hosts, interval, restart_command) drives this agent; validate-all and start require it, and require this node in health.hosts."`
	Socket  string `ocf:"socket" default:"/run/computeha/hostcheck.sock" help:"Health socket of the process" long:"The UNIX socket the hostcheck process answers health requests on; monitor asks it."`
	Service string `ocf:"service" default:"pacemaker-remoted pacemakerd" help:"Process names of the cluster service" long:"The process names of this node's cluster service, space-separated; the service runs when any of them does, so one clone fits computes (pacemaker-remoted) and controllers (pacemakerd). Only processes in this node's network namespace count. While none runs, hostcheck runs health.restart_command with a growing backoff."`
	PidFile string `ocf:"pidfile" help:"Pid file of the cluster service (instead of service)" long:"When set, the cluster service is the process this pid file names, and service is not used."`
}

// NewAgent returns the agent.
func NewAgent() *agents.Agent {
	return &agents.Agent{
		Name:      Name,
		Version:   "1.0",
		ShortDesc: "Runs computeha's per-host health process",
		LongDesc: "Run as a clone on every node, controllers and computes: " +
			"pcs resource create hostcheck ocf:computeha:hostcheck config=/etc/computeha/evacd.yaml clone. " +
			"start runs computeha hostcheck and waits until it reports itself healthy; monitor asks it; stop stops it. " +
			"Every health.interval the process writes this host's heartbeat record to health.shared_dir, " +
			"probes every other host of health.hosts on every network with ICMP echo (with health.gossip: joins the " +
			"hosts' gossip membership on every network and probes only the seeds and observers, which probe every host), " +
			"publishes its view of each network " +
			"as the node attribute computeha-reach-NETWORK when it changes (private to attrd: never written to the CIB, " +
			"so a flapping peer does not disturb Pacemaker's transitions), and restarts the cluster service " +
			"with health.restart_command while it is down. fence_hostcheck and the evacuation daemon judge hosts from this " +
			"evidence. monitor fails, naming the reason, when heartbeats cannot be written or the probes cannot run.",
		NewParams: func() any { return new(Params) },
		Timeouts: map[string]agents.ActionDefaults{
			"start":        {Timeout: 30 * time.Second},
			"stop":         {Timeout: 20 * time.Second},
			"monitor":      {Timeout: 20 * time.Second, Interval: 10 * time.Second},
			"validate-all": {Timeout: 20 * time.Second},
		},
		// The process publishes its reachability through attrd.
		Binaries: func(any) []string { return []string{"attrd_updater"} },
		Open:     open,
		Sample:   (*resource)(nil),
	}
}

type resource struct {
	req  *agents.Request
	p    *Params
	node string
	proc agents.Process
}

func open(req *agents.Request) (agents.Resource, error) {
	p := req.Params.(*Params)
	exe, err := os.Executable()
	if err != nil {
		return nil, agents.Installed("cannot find the computeha binary: %v", err)
	}
	node, err := agents.NodeName(req)
	if err != nil {
		return nil, err
	}
	args := []string{"hostcheck", "--config", p.Config, "--socket", p.Socket, "--node", node, "--service", p.Service}
	if p.PidFile != "" {
		args = append(args, "--pidfile", p.PidFile)
	}
	proc, err := agents.NewDaemonProcess(req, Name, exe, args...)
	if err != nil {
		return nil, err
	}
	return &resource{req: req, p: p, node: node, proc: proc}, nil
}

// Validate checks the parameters and the configuration: it loads, has a health section, and
// lists this node.
func (r *resource) Validate(context.Context) error {
	// Checked here, not when opening: a stop must go on whatever the parameters say.
	if strings.TrimSpace(r.p.Service) == "" && r.p.PidFile == "" {
		return agents.Configured("parameter service is empty and no pidfile is given: nothing tells whether the cluster service runs")
	}
	cfg, err := config.Load(r.p.Config)
	if err != nil {
		var ce *config.Error
		if errors.As(err, &ce) {
			return agents.Configured("%s", strings.Join(ce.Problems, "; "))
		}
		return agents.Args("%v", err)
	}
	if err := hc.CheckConfig(&cfg.Health, r.node); err != nil {
		return agents.Configured("%s: %v", r.p.Config, err)
	}
	if !cfg.Health.Listed(r.node) {
		// It joins by gossip: it must have an address in the management network's subnet.
		if _, err := health.LocalAddresses(&cfg.Health, r.node, health.InterfaceAddrs); err != nil {
			return agents.Configured("%s: %v", r.p.Config, err)
		}
	}
	if cfg.Health.SharedDir == "" {
		return agents.Configured("%s: health.shared_dir is not set: there is no heartbeat to write", r.p.Config)
	}
	return nil
}

func (r *resource) Start(ctx context.Context) error {
	return agents.StartAndWait(ctx, r.req, r.proc, "hostcheck", func(ctx context.Context) (bool, string, error) {
		cctx, cancel := r.req.CallContext(ctx, 2*time.Second)
		defer cancel()
		h, err := hc.AskHealth(cctx, r.p.Socket)
		if err != nil {
			return false, err.Error(), nil
		}
		// The heartbeat writer is not waited for: shared storage that is down for every
		// host must not keep hostcheck (and its reachability reports) stopped everywhere.
		return h.Probes.OK, h.Probes.Reason, nil
	})
}

func (r *resource) Stop(ctx context.Context) error {
	if err := r.proc.Stop(ctx); err != nil {
		return agents.Generic("stopping the process: %w", err)
	}
	return nil
}

func (r *resource) Monitor(ctx context.Context) error {
	if err := agents.CheckRunning(ctx, r.req, r.proc, "hostcheck"); err != nil {
		return err
	}
	cctx, cancel := r.req.CallContext(ctx, 5*time.Second)
	defer cancel()
	h, err := hc.AskHealth(cctx, r.p.Socket)
	if err != nil {
		return agents.Generic("hostcheck runs but does not answer on %s: %v", r.p.Socket, err)
	}
	switch {
	case !h.Probes.OK:
		return agents.Generic("hostcheck reports a problem: %s", h.Reason)
	case !h.OK:
		// A failing heartbeat writer is the shared storage's problem, seen the same way on
		// every host when the storage itself is down; restarting hostcheck cannot fix it, and
		// failing here would stop it on every node. Degraded reports it and keeps it running.
		return agents.Degraded("hostcheck reports a problem: %s", h.Reason)
	}
	if h.Service != "ok" {
		r.req.Log.Warn("the cluster service is down", "detail", h.ServiceDetail, "restarts", h.Restarts, "last_error", h.LastRestartError)
	}
	return nil
}
