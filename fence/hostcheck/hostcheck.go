// Package hostcheck is fence_hostcheck: not a fence device but a gate, placed first in a
// compute host's fencing topology level, that lets the devices after it run only when
// computeha's health evidence says the host is really gone.
//
// Pacemaker runs a level's devices in order and stops at the first failure, so the gate
// failing refuses the whole level. off (and reboot) judges the host as the evacuation daemon
// does (internal/health), from evidence gathered every 500 ms (internal/evidence), with the
// same hysteresis: it succeeds as soon as the confirmed decision is to fence, and fails once
// health.decide has passed without one. An isolated host, which still writes its storage
// heartbeat and so still runs its VMs, is never fenced. Evidence that cannot be gathered
// refuses fencing: the gate never fails open.
package hostcheck

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/computeha/computeha/crm"
	"github.com/computeha/computeha/fence"
	"github.com/computeha/computeha/internal/config"
	"github.com/computeha/computeha/internal/evidence"
	"github.com/computeha/computeha/internal/health"
)

// DefaultConfig is where the configuration is read from unless config= says otherwise.
const DefaultConfig = "/etc/computeha/evacd.yaml"

// roundInterval is how often the evidence is gathered and judged while off waits. The
// signals themselves change at most every health.interval (1 s by default).
const roundInterval = 500 * time.Millisecond

// Params are fence_hostcheck's options.
type Params struct {
	Plug   string `fence:"plug" old:"port" short:"n" metavar:"host" required:"true" help:"Host to judge: its Pacemaker node name, as health.hosts of the configuration names it"`
	Config string `fence:"config" metavar:"path" default:"/etc/computeha/evacd.yaml" help:"computeha configuration whose health section judges the host"`
	fence.Common

	// health is the configuration's health section, loaded by Validate.
	health *config.Health
}

// target is the host being fenced: the node the fencer named, or else the plug.
func (p *Params) target() string { return p.Target(p.Plug) }

// Validate loads the configuration, so that validate-all (and every action) fails on one
// that cannot judge anything, and refuses at once to fence a host it does not list. It sets
// power_timeout to health.decide: the runtime waits that long for the gate to open.
func (p *Params) Validate() error {
	c, err := config.Load(p.Config)
	if err != nil {
		return fmt.Errorf("no host can be judged: %w", err)
	}
	if !c.Health.Enabled() {
		return fmt.Errorf("%s configures no health checks (health.networks is empty): there is no evidence to judge a host by", p.Config)
	}
	p.health = &c.Health
	p.PowerTimeout = c.Health.Decide
	if p.Action == "off" || p.Action == "reboot" {
		if why := c.Health.NotAHost(p.target()); why != "" {
			return fmt.Errorf("refusing to fence %s: it is not one of the hosts of %s (health.hosts), and %s", p.target(), p.Config, why)
		}
	}
	return nil
}

// Deps are what the agent talks to; tests replace them.
type Deps struct {
	// Cluster is Pacemaker; nil runs the crm tools found on PATH.
	Cluster evidence.Cluster
	// Storage reads the heartbeat records; nil reads the shared directory.
	Storage *evidence.Storage
	// Decide judges host from observations; nil is health.Collect then health.Decide.
	Decide func(cfg *config.Health, obs health.Observations, host string) health.Decision
	// Now is the clock; nil is time.Now.
	Now func() time.Time
}

func judge(cfg *config.Health, obs health.Observations, host string) health.Decision {
	return health.Decide(cfg, health.Collect(cfg, obs, host))
}

// LongDesc is the agent's description in its metadata and man page.
const LongDesc = "fence_hostcheck is not a fence device: it is a gate, placed first in a compute host's fencing " +
	"topology level (pcs stonith level add 1 cmp1 gate fence-cmp1 fence-nova), that lets the devices after " +
	"it run only when computeha's health evidence says the host is gone. " +
	"off (and reboot) gathers the evidence every 500 ms: Pacemaker's membership, the reachability of the host " +
	"that every node publishes in its computeha-reach-* node attributes, and the heartbeat records in " +
	"health.shared_dir. It judges the host as computeha's evacuation daemon does, with the same hysteresis " +
	"(a decision counts once it has held for health.confirm), and succeeds as soon as the decision is to " +
	"fence: the host is dead, its storage heartbeat is lost, or its cluster service has been unreachable " +
	"beyond health.restart_timeout. It fails, naming the state and why, when by health.decide the host is " +
	"still anything else: isolated (cut off from every network but still writing its storage heartbeat, so " +
	"its VMs still run), management-lost, running, or unknown: an isolated host is never fenced. Evidence that " +
	"cannot be gathered (configuration unreadable, cluster tools failing) refuses fencing as well. " +
	"A host Pacemaker still has as a member (a failed stop, a fencing asked for on purpose) is not judged: " +
	"the gate only stands between a lost contact and a power-off, and lets such a fencing through. " +
	"on does nothing and succeeds. status and monitor succeed when the configuration loads and the cluster " +
	"answers. list prints the hosts: those of health.hosts, and those that joined by gossip. " +
	"The wait is health.decide of the configuration (power_timeout is not used): keep the level's " +
	"pcmk_off_timeout and pcmk_reboot_timeout above it plus the other devices' time."

// NewAgent returns fence_hostcheck talking to deps.
func NewAgent(deps Deps) *fence.Agent {
	return &fence.Agent{
		Name:      "fence_hostcheck",
		ShortDesc: "Gate that lets a host be fenced only when it is gone (computeha)",
		LongDesc:  LongDesc,
		VendorURL: "https://clusterlabs.org/pacemaker/",
		NewParams: func() fence.Params { return &Params{} },
		Connect: func(_ context.Context, fp fence.Params, log *slog.Logger) (fence.Device, error) {
			p := fp.(*Params)
			if p.health == nil {
				return nil, errors.New("the configuration was not loaded")
			}
			d := &device{
				p: p, cfg: p.health, log: log, host: p.target(), decide: deps.Decide, now: deps.Now,
				src: evidence.Sources{Cluster: deps.Cluster, Storage: deps.Storage, Log: log},
			}
			if d.src.Cluster == nil {
				d.src.Cluster = crm.NewClient(nil)
			}
			if d.src.Storage == nil {
				// One reader for the whole wait: a read hung on a dead mount is not joined by
				// a new one every round.
				d.src.Storage = &evidence.Storage{}
			}
			if d.decide == nil {
				d.decide = judge
			}
			if d.now == nil {
				d.now = time.Now
			}
			d.src.Now = d.now
			d.tracker = health.NewTracker(d.cfg)
			return d, nil
		},
	}
}

// Agent is fence_hostcheck with the real Pacemaker and shared storage.
var Agent = NewAgent(Deps{})

// phase is where the gate is in one invocation.
type phase int

const (
	// closed: nothing asked yet; the gate reads ON (the host may not be fenced).
	closed phase = iota
	// judging: off was asked; every status gathers and judges until the deadline.
	judging
	// open: the decision allows fencing; the gate reads OFF.
	open
	// reclosed: on was asked after off (the second half of a reboot); the gate reads ON.
	reclosed
)

type device struct {
	p       *Params
	cfg     *config.Health
	log     *slog.Logger
	host    string
	src     evidence.Sources
	decide  func(*config.Health, health.Observations, string) health.Decision
	now     func() time.Time
	tracker *health.Tracker

	phase     phase
	start     time.Time
	deadline  time.Time
	lastRound time.Time
	rounds    int
	raw       health.Decision // the latest raw decision
	confirmed health.Decision // the latest confirmed decision
	judged    bool            // raw and confirmed hold a decision
	gatherErr error           // the latest round's failure to gather; nil after a good round
	stranger  bool            // the latest round found no evidence the host (not listed) ever joined
	refused   bool
}

var (
	_ fence.Device = (*device)(nil)
	_ fence.Lister = (*device)(nil)
)

// Status reads ON while the gate is closed and OFF once the decision allows fencing. The
// runtime polls it after off until power_timeout (set to health.decide), so this is where
// the judging happens. The status action checks that the evidence can be gathered.
func (d *device) Status(ctx context.Context, _ string) (fence.State, error) {
	switch d.phase {
	case open:
		return fence.Off, nil
	case judging:
		return d.judge(ctx), nil
	case reclosed:
		return fence.On, nil
	case closed:
		// off and reboot start judging from here, where a failure to gather is retried
		// until the deadline; status is a one-shot check of the same gathering.
		if d.p.Action == "status" {
			if _, err := evidence.Gather(ctx, d.src, d.cfg); err != nil {
				return fence.Unknown, err
			}
		}
	}
	return fence.On, nil
}

// SetPower(off) starts judging; SetPower(on), the second half of a reboot, closes the gate
// again. Neither touches the host.
func (d *device) SetPower(_ context.Context, _ string, on bool) error {
	if on {
		d.phase = reclosed
		return nil
	}
	if d.phase != judging {
		d.phase = judging
		d.start = d.now()
		d.deadline = d.start.Add(d.cfg.Decide)
		d.log.Debug("judging whether the host may be fenced", "host", d.host, "decide", d.cfg.Decide, "confirm", d.cfg.Confirm)
	}
	return nil
}

// judge runs one round of gathering and judging, at most every roundInterval, and reports
// OFF when the confirmed decision allows fencing. Past the deadline it logs the refusal once
// and keeps the gate closed.
func (d *device) judge(ctx context.Context) fence.State {
	now := d.now()
	if !now.Before(d.deadline) {
		if !d.refused {
			d.refused = true
			d.log.Error(d.refusal(now))
		}
		return fence.On
	}
	if d.rounds > 0 && now.Sub(d.lastRound) < roundInterval {
		return fence.On
	}
	d.lastRound = now
	src := d.src
	if d.rounds > 0 {
		// What Gather leaves out is said once, not every round.
		src.Log = slog.New(slog.DiscardHandler)
	}
	d.rounds++
	obs, err := evidence.Gather(ctx, src, d.cfg)
	if err != nil {
		if d.gatherErr == nil {
			d.log.Warn("cannot gather the evidence; retrying until the deadline", "host", d.host, "error", err)
		}
		d.gatherErr = err
		return fence.On
	}
	d.gatherErr = nil
	if !d.cfg.Listed(d.host) && !slices.Contains(obs.Hosts(d.cfg), d.host) {
		// Not listed, and never joined: no hostcheck of it wrote or was seen, so nothing
		// could tell it gone.
		d.stranger = true
		return fence.On
	}
	d.stranger = false
	raw := d.decide(d.cfg, obs, d.host)
	confirmed, _ := d.tracker.Observe(obs.Now, raw)
	if !d.judged || raw.State != d.raw.State || raw.Response != d.raw.Response {
		d.log.Info("judged", "host", d.host, "state", raw.State, "response", raw.Response, "reason", raw.Reason.Code, "text", raw.Reason.Text)
	}
	d.raw, d.confirmed, d.judged = raw, confirmed, true
	if raw.Member && (raw.State == health.Running || raw.State == health.Degraded) {
		// Pacemaker still has the host as a member: this fencing is not about lost contact,
		// which is all the gate judges, but a failed stop or a fencing asked for on purpose
		// (the evacuation daemon's answer to a lost storage network, an operator's).
		d.phase = open
		d.log.Info("fencing allowed: the host is still a cluster member, so this fencing is not about lost contact",
			"host", d.host, "state", raw.State, "text", raw.Reason.Text)
		return fence.Off
	}
	if confirmed.Fence() {
		d.phase = open
		d.log.Info("fencing allowed", "host", d.host, "after", now.Sub(d.start).Round(time.Millisecond), "reason", confirmed.Reason.Code, "text", confirmed.Reason.Text)
		return fence.Off
	}
	return fence.On
}

// refusal says why the host is not fenced, for the log and Pacemaker's.
func (d *device) refusal(now time.Time) string {
	waited := now.Sub(d.start).Round(100 * time.Millisecond)
	switch {
	case d.gatherErr != nil:
		return fmt.Sprintf("refusing to fence %s: the evidence could not be gathered within %s: %v", d.host, waited, d.gatherErr)
	case d.stranger:
		return fmt.Sprintf("refusing to fence %s: it is not listed in health.hosts and never joined: it has no heartbeat record and no host's view names it", d.host)
	case !d.judged:
		return fmt.Sprintf("refusing to fence %s: no evidence was gathered within %s", d.host, waited)
	case d.confirmed.Reason.Code == health.ReasonUnconfirmed:
		return fmt.Sprintf("refusing to fence %s: no decision held for %s within %s; the latest: %s",
			d.host, d.cfg.Confirm, waited, d.raw.Reason.Text)
	}
	return fmt.Sprintf("refusing to fence %s after %s: %s", d.host, waited, d.confirmed.Reason.Text)
}

// List names the hosts, those listed and those that joined, once the cluster has answered
// (monitor runs it).
func (d *device) List(ctx context.Context) ([]fence.Outlet, error) {
	obs, err := evidence.Gather(ctx, d.src, d.cfg)
	if err != nil {
		return nil, err
	}
	var out []fence.Outlet
	for _, h := range obs.Hosts(d.cfg) {
		out = append(out, fence.Outlet{ID: h, State: fence.On})
	}
	return out, nil
}

func (d *device) Close() error { return nil }
