// Package instancemon is ocf:computeha:instancemon: it runs computeha's instance monitor
// (computeha instancemon) as a clone on every compute. The process watches the host's
// libvirt domains and reports each guest failure (its qemu died, its watchdog fired, a disk
// failed under it) to the evacuation daemon's HA API, which restarts the guest. monitor asks
// the process itself, over its socket, whether it runs and is connected to libvirtd.
package instancemon

import (
	"context"
	"errors"
	"os"
	"strings"
	"time"

	"github.com/computeha/computeha/agents"
	"github.com/computeha/computeha/internal/config"
	im "github.com/computeha/computeha/internal/instancemon"
)

// Name is the agent's name under resource.d/computeha/.
const Name = "instancemon"

// Params are the agent's parameters.
type Params struct {
	Config string `ocf:"config" default:"/etc/computeha/evacd.yaml" help:"computeha configuration file" long:"The YAML configuration shared with the evacuation daemon. Its api.url says where failures are reported; cloud and clouds_yaml whom the monitor logs in to Keystone as (a user with a role of api.monitor_roles). validate-all and start require api.url."`
	Socket string `ocf:"socket" default:"/run/computeha/instancemon.sock" help:"Health socket of the process" long:"The UNIX socket the instancemon process answers health requests on; monitor asks it."`
	URI    string `ocf:"uri" default:"qemu:///system" help:"libvirt URI" long:"The libvirt URI of this host's hypervisor, where Nova's libvirt driver runs the guests."`
}

// NewAgent returns the agent.
func NewAgent() *agents.Agent {
	return &agents.Agent{
		Name:      Name,
		Version:   "1.0",
		ShortDesc: "Runs computeha's instance monitor",
		LongDesc: "Run as a clone on every compute: " +
			"pcs resource create instancemon ocf:computeha:instancemon config=/etc/computeha/evacd.yaml clone. " +
			"start runs computeha instancemon and waits until it is connected to libvirtd; monitor asks it; stop stops it. " +
			"The process subscribes to libvirt's domain events (lifecycle, I/O error, watchdog, control error), " +
			"tells a guest's failure (qemu failed or crashed, the guest panicked, a disk error, its watchdog) from what " +
			"Nova or an operator did on purpose, and reports each failure to the evacuation daemon's HA API (api.url), " +
			"retrying until it is taken; the daemon decides (a restart in place). When libvirtd goes away it connects " +
			"again and compares every domain with what it knew, so a guest that failed meanwhile is still reported. " +
			"monitor reports degraded while libvirtd cannot be reached (the process goes on trying) and fails when the " +
			"process does not answer.",
		NewParams: func() any { return new(Params) },
		Timeouts: map[string]agents.ActionDefaults{
			"start":        {Timeout: 30 * time.Second},
			"stop":         {Timeout: 20 * time.Second},
			"monitor":      {Timeout: 20 * time.Second, Interval: 10 * time.Second},
			"validate-all": {Timeout: 20 * time.Second},
		},
		Open:   open,
		Sample: (*resource)(nil),
	}
}

type resource struct {
	req  *agents.Request
	p    *Params
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
	proc, err := agents.NewDaemonProcess(req, Name, exe, "instancemon", "--config", p.Config, "--socket", p.Socket,
		"--node", node, "--uri", p.URI)
	if err != nil {
		return nil, err
	}
	return &resource{req: req, p: p, proc: proc}, nil
}

// Validate checks the configuration: it loads and says where to report.
func (r *resource) Validate(context.Context) error {
	cfg, err := config.Load(r.p.Config)
	if err != nil {
		var ce *config.Error
		if errors.As(err, &ce) {
			return agents.Configured("%s", strings.Join(ce.Problems, "; "))
		}
		return agents.Args("%v", err)
	}
	if cfg.API.URL == "" {
		return agents.Configured("%s: api.url is not set: the monitor has nowhere to report failures", r.p.Config)
	}
	if _, err := im.LibvirtDialer(r.p.URI); err != nil {
		return agents.Configured("uri: %v", err)
	}
	return nil
}

func (r *resource) Start(ctx context.Context) error {
	return agents.StartAndWait(ctx, r.req, r.proc, "instancemon", func(ctx context.Context) (bool, string, error) {
		cctx, cancel := r.req.CallContext(ctx, 2*time.Second)
		defer cancel()
		h, err := im.AskHealth(cctx, r.p.Socket)
		if err != nil {
			return false, err.Error(), nil
		}
		if !h.Connected {
			return false, "not connected to libvirtd yet", nil
		}
		return true, "", nil
	})
}

func (r *resource) Stop(ctx context.Context) error {
	if err := r.proc.Stop(ctx); err != nil {
		return agents.Generic("stopping the process: %w", err)
	}
	return nil
}

func (r *resource) Monitor(ctx context.Context) error {
	if err := agents.CheckRunning(ctx, r.req, r.proc, "instancemon"); err != nil {
		return err
	}
	cctx, cancel := r.req.CallContext(ctx, 5*time.Second)
	defer cancel()
	h, err := im.AskHealth(cctx, r.p.Socket)
	if err != nil {
		return agents.Generic("instancemon runs but does not answer on %s: %v", r.p.Socket, err)
	}
	if !h.Connected {
		// libvirtd restarting or down: the process connects again by itself and then finds
		// what failed meanwhile; restarting it would lose what it knew of the guests.
		return agents.Degraded("instancemon is not connected to libvirtd (since %s)", h.Since.Format(time.RFC3339))
	}
	if h.Pending > 0 {
		r.req.Log.Warn("guest failures not reported yet", "pending", h.Pending, "dropped", h.Dropped)
	}
	return nil
}
