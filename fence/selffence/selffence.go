// Package selffence is fence_gossip: the fencing level after the power fence, for a host whose
// BMC cannot be reached. It fences by the host's own watchdog (held by its hostcheck, see
// internal/hostcheck), never by a device of its own.
//
// off writes a poison pill for the host on the shared storage and, when the hosts gossip,
// sends it a fence query by gossip on every network (query.go), then reads the evidence every
// 500 ms and succeeds when either:
//   - the host acknowledged the pill in its heartbeat record, or the query by gossip (it
//     stopped feeding its watchdog before either), and the watchdog's countdown plus the
//     margin has passed since the acknowledgement was first seen here; or
//   - the host has been silent, on the storage and to every observer on every network, for
//     longer than it lives alone (health.watchdog.self_fence_after) plus the countdown plus
//     the margin: it is dead, or it fenced itself (health.SilentUntil).
//
// Otherwise it fails once power_timeout has passed, saying which condition was missing. On
// success the pill is removed: the host is off, and must be able to start again. on removes
// the pill too.
package selffence

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"time"

	"github.com/computeha/computeha/crm"
	"github.com/computeha/computeha/fence"
	"github.com/computeha/computeha/internal/config"
	"github.com/computeha/computeha/internal/evidence"
	"github.com/computeha/computeha/internal/health"
	"github.com/computeha/computeha/internal/hostcheck"
	"github.com/computeha/computeha/internal/within"
)

// roundInterval is how often the evidence is read while off waits.
const roundInterval = 500 * time.Millisecond

// Params are fence_gossip's options.
type Params struct {
	Plug   string `fence:"plug" old:"port" short:"n" metavar:"host" required:"true" help:"Host to fence: its Pacemaker node name, as health.hosts of the configuration names it"`
	Config string `fence:"config" metavar:"path" default:"/etc/computeha/evacd.yaml" help:"computeha configuration whose health section (shared_dir, watchdog) fences the host"`
	fence.Common

	health *config.Health
}

func (p *Params) target() string { return p.Target(p.Plug) }

// Wait is the longest off may take with cfg: a host that went silent just as off started is
// off by the self-fence bound after its last contact, which the observers learn up to
// probe_failures intervals late and its heartbeat shows up to stale_after late.
func Wait(cfg *config.Health) time.Duration {
	w := cfg.Watchdog
	return w.SelfFenceAfter + cfg.Interval + w.Timeout + w.Margin + cfg.ClockSkew +
		time.Duration(cfg.ProbeFailures+1)*cfg.Interval + cfg.StaleAfter
}

// Validate loads the configuration: fence_gossip needs the shared directory and the
// watchdog, and refuses a host the configuration does not list. power_timeout becomes at
// least Wait.
func (p *Params) Validate() error {
	c, err := config.Load(p.Config)
	if err != nil {
		return fmt.Errorf("no host can be fenced: %w", err)
	}
	h := &c.Health
	switch {
	case !h.Enabled():
		return fmt.Errorf("%s configures no health checks (health.networks is empty): no host holds a watchdog", p.Config)
	case h.SharedDir == "":
		return fmt.Errorf("%s sets no health.shared_dir: there is nowhere to write a poison pill", p.Config)
	case !h.Watchdog.Enabled():
		return fmt.Errorf("%s sets no health.watchdog.device: no host holds a watchdog, so none can be fenced by it", p.Config)
	}
	p.health = h
	p.PowerTimeout = max(p.PowerTimeout, Wait(h))
	if p.Action == "off" || p.Action == "reboot" || p.Action == "on" {
		if why := h.NotAHost(p.target()); why != "" {
			return fmt.Errorf("refusing to fence %s: it is not one of the hosts of %s (health.hosts), and %s", p.target(), p.Config, why)
		}
		if h.Watchdog.IsObserver(p.target()) {
			return fmt.Errorf("refusing to fence %s: it is one of health.watchdog.observers, whose views prove the others silent", p.target())
		}
	}
	return nil
}

// PillStore reads, writes and removes pills on the shared storage.
type PillStore interface {
	ReadFile(path string) ([]byte, error)
	WriteFile(path string, data []byte) error
	Remove(path string) error
}

// DirStore is the shared directory itself; writes are atomic and synced.
type DirStore struct{ hostcheck.DirStore }

// Remove removes path; a file already gone is not an error.
func (DirStore) Remove(path string) error {
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}

// Deps are what the agent talks to; tests replace them.
type Deps struct {
	Cluster evidence.Cluster
	Storage *evidence.Storage
	Pills   PillStore
	Now     func() time.Time
	// Node is the name of the node the agent runs on, written in the pill (default: the
	// host name).
	Node string
	// InterfaceAddrs lists this node's addresses, among which it finds its own on each
	// network when health.hosts does not list it (default health.InterfaceAddrs).
	InterfaceAddrs func() ([]netip.Addr, error)
}

// LongDesc is the agent's description in its metadata and man page.
const LongDesc = "fence_gossip fences a compute host whose power fence cannot act (its BMC is unreachable: a power " +
	"loss that took the BMC with it, a cut IPMI network) through the host's own watchdog, which computeha's hostcheck " +
	"holds on every host (health.watchdog). Put it in the fencing level after the power fence: level 1 " +
	"gate,fence-ipmi,fence-nova; level 2 gate,fence-gossip,fence-nova. " +
	"off writes a poison pill for the host in health.shared_dir (or takes up the one there; one it cannot read is " +
	"never replaced) and, when the hosts gossip (health.gossip), sends the host a fence query by gossip on every " +
	"network every half second, which reaches a host that lost its storage (a host not listed in health.hosts, " +
	"which joined by gossip, at the addresses its heartbeat record announces). It succeeds when the host acknowledged " +
	"the pill in a heartbeat written since off began, or the query by gossip (it stopped feeding its watchdog " +
	"first), and the watchdog's timeout plus health.watchdog.margin has passed since, or when " +
	"the host has been silent on the storage and to every observer (health.watchdog.observers, the controllers, " +
	"each online in this partition and timing the host's loss) on every network for longer than self_fence_after + " +
	"one interval + the watchdog's timeout + the margin: it is dead, or it fenced itself, since a host alone that " +
	"long stops feeding its watchdog. The host's own record must announce its watchdog, or nothing is assumed of " +
	"it. Otherwise off fails, naming the missing condition (an observer offline or still reaching the host, a host " +
	"isolated but still writing its heartbeat, no watchdog). On success the pill is removed; on removes it too; " +
	"status reads OFF while a pill is in place. power_timeout is raised to the longest wait the configuration " +
	"allows (self_fence_after + the timeout + the margin + the time to notice a silence); keep pcmk_off_timeout " +
	"above it."

// NewAgent returns fence_gossip talking to deps.
func NewAgent(deps Deps) *fence.Agent {
	return &fence.Agent{
		Name:      "fence_gossip",
		ShortDesc: "Fence a host through its own watchdog (computeha)",
		LongDesc:  LongDesc,
		VendorURL: "https://clusterlabs.org/pacemaker/",
		NewParams: func() fence.Params { return &Params{} },
		Connect: func(_ context.Context, fp fence.Params, log *slog.Logger) (fence.Device, error) {
			p := fp.(*Params)
			if p.health == nil {
				return nil, errors.New("the configuration was not loaded")
			}
			d := &device{p: p, cfg: p.health, log: log, host: p.target(), deps: deps}
			if d.deps.Cluster == nil {
				d.deps.Cluster = crm.NewClient(nil)
			}
			if d.deps.Storage == nil {
				d.deps.Storage = &evidence.Storage{}
			}
			if d.deps.Pills == nil {
				d.deps.Pills = DirStore{}
			}
			if d.deps.Now == nil {
				d.deps.Now = time.Now
			}
			if d.deps.Node == "" {
				d.deps.Node, _ = os.Hostname()
			}
			if d.deps.InterfaceAddrs == nil {
				d.deps.InterfaceAddrs = health.InterfaceAddrs
			}
			return d, nil
		},
	}
}

// Agent is fence_gossip on the real cluster and storage.
var Agent = NewAgent(Deps{})

type phase int

const (
	idle phase = iota
	waiting
	done
	reopened
)

type device struct {
	p    *Params
	cfg  *config.Health
	log  *slog.Logger
	host string
	deps Deps

	phase     phase
	pill      health.Pill
	pillErr   error
	start     time.Time
	deadline  time.Time
	lastRound time.Time
	ackSeen   time.Time
	until     time.Time // the silence bound of the latest round (zero: none)
	missing   string    // what the latest round lacked
	refused   bool
	// query sends the fence query by gossip (nil: the hosts do not gossip, or it could not
	// start: queryErr says why).
	query    *querier
	queryErr error
	queryID  string // the query's ID, once off began and the hosts gossip
	// queryTried is the sequence number of the record whose addresses the query last
	// failed to start from, for a host that joined by gossip.
	queryTried uint64
}

var _ fence.Device = (*device)(nil)

func (d *device) pillPath() string { return filepath.Join(d.cfg.SharedDir, health.PillFile(d.host)) }

// bounded runs f on the storage within ctx: a hung mount must not hold the agent past its
// own timeouts.
func bounded[T any](ctx context.Context, f func() (T, error)) (T, error) {
	v, err := within.Within(ctx, f)
	if err != nil && ctx.Err() != nil {
		return v, fmt.Errorf("the shared storage does not answer: %w", err)
	}
	return v, err
}

func (d *device) Status(ctx context.Context, _ string) (fence.State, error) {
	switch d.phase {
	case done:
		return fence.Off, nil
	case waiting:
		return d.judge(ctx), nil
	case reopened:
		return fence.On, nil
	}
	switch d.p.Action {
	case "status", "monitor":
		if _, err := bounded(ctx, func() (fs.FileInfo, error) { return os.Stat(d.cfg.SharedDir) }); err != nil {
			return fence.Unknown, err
		}
		if _, err := d.deps.Cluster.Status(ctx); err != nil {
			return fence.Unknown, err
		}
	}
	switch d.p.Action {
	case "status", "on":
		// A pill in place reads OFF, so that on removes it. Never for off: a pill left by an
		// attempt that failed proves nothing.
		_, err := bounded(ctx, func() ([]byte, error) { return d.deps.Pills.ReadFile(d.pillPath()) })
		switch {
		case err == nil:
			return fence.Off, nil
		case !errors.Is(err, fs.ErrNotExist):
			return fence.Unknown, err
		}
	}
	return fence.On, nil
}

// SetPower(off) writes the pill (or takes up the one already there) and starts waiting;
// SetPower(on) removes it.
func (d *device) SetPower(ctx context.Context, _ string, on bool) error {
	if on {
		if _, err := bounded(ctx, func() (struct{}, error) { return struct{}{}, d.deps.Pills.Remove(d.pillPath()) }); err != nil {
			return fmt.Errorf("removing the poison pill of %s: %w", d.host, err)
		}
		d.phase = reopened
		return nil
	}
	if d.phase == waiting {
		return nil
	}
	now := d.deps.Now()
	d.phase, d.start = waiting, now
	// A round before the runtime gives up, so the refusal says why.
	d.deadline = now.Add(d.p.PowerTimeout - roundInterval)
	d.pill, d.pillErr = d.placePill(ctx, now)
	if d.pillErr != nil {
		d.log.Warn("cannot write the poison pill; only a proven silence can fence the host", "host", d.host, "error", d.pillErr)
	} else {
		d.log.Info("poison pill in place", "host", d.host, "pill", d.pill.ID, "path", d.pillPath(), "wait", d.p.PowerTimeout)
	}
	if d.cfg.Gossip.Enabled() {
		d.queryID = d.pill.ID
		if d.pillErr != nil {
			d.queryID = health.NewPillID()
		}
		var rec *health.Record
		if !d.cfg.Listed(d.host) {
			// A host that joined by gossip is where its record says.
			rec = d.gather(ctx).Record
		}
		d.startQuery(now, rec)
	}
	return nil
}

// startQuery starts sending the fence query, from now on every round. A host that joined
// by gossip is reached at the addresses of its record: until that works, it is tried again
// with each newer record read.
func (d *device) startQuery(now time.Time, rec *health.Record) {
	if rec != nil {
		d.queryTried = rec.Seq // tried again on a newer record only
	}
	d.query, d.queryErr = startQuerier(d.cfg, d.deps.Node, d.host, rec, d.deps.InterfaceAddrs, d.queryID, d.start, d.log)
	if d.queryErr != nil {
		d.log.Warn("cannot send the fence query by gossip", "host", d.host, "error", d.queryErr)
		return
	}
	d.log.Info("sending the fence query by gossip", "host", d.host, "query", d.queryID, "networks", len(d.query.to))
	d.query.send(now)
}

// placePill takes up the host's pill already on the storage (an earlier attempt's, which
// the host may have acknowledged), or writes a new one.
func (d *device) placePill(ctx context.Context, now time.Time) (health.Pill, error) {
	data, err := bounded(ctx, func() ([]byte, error) { return d.deps.Pills.ReadFile(d.pillPath()) })
	switch {
	case err == nil:
		if p, err := health.ParsePill(data); err == nil && p.Host == d.host {
			return p, nil
		}
	case !errors.Is(err, fs.ErrNotExist):
		// A pill the host may have acknowledged is never replaced on a failed read.
		return health.Pill{}, err
	}
	p := health.Pill{Host: d.host, ID: health.NewPillID(), By: d.deps.Node, Time: now.UTC()}
	b, err := health.MarshalPill(p)
	if err != nil {
		return health.Pill{}, err
	}
	if _, err := bounded(ctx, func() (struct{}, error) { return struct{}{}, d.deps.Pills.WriteFile(d.pillPath(), b) }); err != nil {
		return health.Pill{}, err
	}
	return p, nil
}

// judge reads the evidence (at most every roundInterval) and reports OFF once either
// condition holds.
func (d *device) judge(ctx context.Context) fence.State {
	now := d.deps.Now()
	if !now.Before(d.deadline) {
		if !d.refused {
			d.refused = true
			d.log.Error(d.refusal(now))
		}
		return fence.On
	}
	if !d.lastRound.IsZero() && now.Sub(d.lastRound) < roundInterval {
		return fence.On
	}
	d.lastRound = now
	if d.query != nil {
		d.query.send(now)
	}
	ev := d.gather(ctx)
	if rec := ev.Record; d.query == nil && d.queryID != "" && !d.cfg.Listed(d.host) && rec != nil && rec.Seq != d.queryTried {
		d.startQuery(now, rec)
	}
	// The acknowledgement: the host stopped feeding before it gave it, so it is off once its
	// countdown has run from when it was first seen here. On the storage it counts only in
	// a record written since this attempt began (an old one may be of the host's earlier
	// life: reset since, it ignores the pill now), by a host that announces its watchdog. By
	// gossip it answers this attempt's query, which it took only fresh.
	var announced time.Duration
	how := ""
	if rec := ev.Record; d.pillErr == nil && rec != nil && rec.Condemned != nil && rec.Condemned.Pill == d.pill.ID &&
		rec.Watchdog != nil && rec.Time.After(d.start.Add(d.cfg.ClockSkew)) {
		announced, how = rec.Watchdog.Timeout(), "the poison pill, in its heartbeat"
	}
	if d.query != nil {
		if a, ok := d.query.acked(); ok {
			announced, how = max(announced, a.Watchdog.Timeout()), "the fence query, by gossip"
		}
	}
	if how != "" {
		if d.ackSeen.IsZero() {
			d.ackSeen = now
			id := d.pill.ID
			if d.query != nil {
				id = d.query.id
			}
			d.log.Info("the host acknowledged its condemnation", "host", d.host, "order", id, "by_way_of", how)
		}
		timeout := max(d.cfg.Watchdog.Timeout, announced)
		if off := d.ackSeen.Add(timeout + d.cfg.Watchdog.Margin); !now.Before(off) {
			return d.succeed(ctx, now, fmt.Sprintf("it acknowledged %s, and its watchdog (%s) and the margin have run out since", how, timeout))
		}
	}
	until, missing := health.SilentUntil(d.cfg, d.host, ev)
	if missing != d.missing {
		if missing != "" {
			d.log.Info("the host's silence is not proven", "host", d.host, "missing", missing)
		} else {
			d.log.Info("the host is silent", "host", d.host, "off_by", until)
		}
	}
	d.until, d.missing = until, missing
	if missing == "" && !now.Before(until) {
		return d.succeed(ctx, now, "it has been silent on the storage and to every observer for longer than it lives alone, plus its watchdog and the margin")
	}
	return fence.On
}

func (d *device) succeed(ctx context.Context, now time.Time, why string) fence.State {
	d.phase = done
	d.log.Info("the host is off", "host", d.host, "after", now.Sub(d.start).Round(time.Millisecond), "because", why)
	if _, err := bounded(ctx, func() (struct{}, error) { return struct{}{}, d.deps.Pills.Remove(d.pillPath()) }); err != nil {
		d.log.Warn("cannot remove the poison pill: the host will fence itself again when it starts, until it is removed (fence_gossip -o on)", "host", d.host, "error", err)
	}
	return fence.Off
}

// gather reads the host's record, the observers' views and who is online.
func (d *device) gather(ctx context.Context) health.SilenceEvidence {
	var ev health.SilenceEvidence
	hb, err := d.deps.Storage.Read(ctx, d.cfg.SharedDir, []string{d.host}, evidence.StorageWait(d.cfg))
	switch {
	case err != nil:
		ev.StorageErr = err
	case hb.Errs[d.host] != nil:
		ev.StorageErr = hb.Errs[d.host]
	default:
		if rec, ok := hb.Records[d.host]; ok {
			ev.Record = &rec
		}
	}
	ev.Online = map[string]bool{}
	ev.Views = map[string]map[string]string{}
	st, err := d.deps.Cluster.Status(ctx)
	if err != nil {
		// Without the membership every observer counts as online: each must have its say.
		for _, o := range d.cfg.Watchdog.Observers {
			ev.Online[o] = true
		}
	} else {
		for _, n := range st.Nodes {
			ev.Online[n.Name] = n.Online
		}
	}
	for _, n := range d.cfg.Networks {
		values, err := d.deps.Cluster.AttributeAllNodes(ctx, health.ReachAttribute(n.Name))
		if err != nil {
			d.log.Debug("cannot read the reachability", "network", n.Name, "error", err)
			continue
		}
		ev.Views[n.Name] = values
	}
	return ev
}

func (d *device) refusal(now time.Time) string {
	waited := now.Sub(d.start).Round(100 * time.Millisecond)
	ack := "it did not acknowledge the poison pill"
	if d.pillErr != nil {
		ack = "the poison pill could not be written (" + d.pillErr.Error() + ")"
	}
	switch {
	case d.query != nil && d.pillErr != nil:
		ack += ", and it did not acknowledge the fence query by gossip"
	case d.query != nil:
		ack += " nor the fence query by gossip"
	case d.queryErr != nil:
		ack += ", and the fence query could not be sent by gossip (" + d.queryErr.Error() + ")"
	}
	if !d.ackSeen.IsZero() {
		ack = "it acknowledged its condemnation too late to be sure it is off"
	}
	silence := d.missing
	if silence == "" && !d.until.IsZero() {
		silence = fmt.Sprintf("it is silent, but may run until %s", d.until.UTC().Format(time.RFC3339))
	}
	if silence == "" {
		silence = "no evidence was read"
	}
	return fmt.Sprintf("refusing to call %s off after %s: %s, and its silence is not proven: %s", d.host, waited, ack, silence)
}

func (d *device) Close() error {
	if d.query != nil {
		d.query.close()
	}
	return nil
}
