package hostcheck

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/memberlist"

	"github.com/computeha/computeha/internal/gossip"
	"github.com/computeha/computeha/internal/healthsock"

	"github.com/computeha/computeha/crm"
	"github.com/computeha/computeha/internal/config"
	"github.com/computeha/computeha/internal/health"
	"github.com/computeha/computeha/internal/watchdog"
)

// Defaults of the process's files.
const (
	DefaultSocket = "/run/computeha/hostcheck.sock"
)

// Bounds that are not in the configuration.
const (
	// restartBackoffMax caps the wait between two restarts of the cluster service.
	restartBackoffMax = 30 * time.Second
	// waitDelay is how long a finished command's leftover children may hold its output.
	waitDelay = time.Second
)

// Publisher publishes a node attribute that every node can read.
type Publisher interface {
	Publish(ctx context.Context, node, name, value string) error
}

// CRMPublisher publishes private attributes through Pacemaker's attrd (attrd_updater
// --private). Private, because probes flap under load and every change of an attribute in
// the CIB's status section aborts the DC's transition in progress: written to the CIB, the
// reachability of a busy cluster can keep Pacemaker from ever scheduling a fencing.
type CRMPublisher struct {
	Client *crm.Client
}

var _ Publisher = (*CRMPublisher)(nil)

func (p *CRMPublisher) Publish(ctx context.Context, node, name, value string) error {
	return p.Client.SetAttribute(ctx, node, name, value, crm.Private)
}

// Options configure Run. Only Health and Node are required.
type Options struct {
	// Health is the configuration's health section.
	Health config.Health
	// Node is this host's name: its Pacemaker node name and its key in Health.Hosts.
	Node string
	// Socket is the UNIX socket the process's health is served on; empty serves none.
	Socket string
	// MetricsListen is the host:port the Prometheus metrics are served on; empty serves
	// none. An address that cannot be taken is logged, and the process goes on without.
	MetricsListen string
	// Service tells whether the cluster service runs (default: a ProcessCheck for
	// DefaultServices).
	Service ServiceCheck
	// Restart runs Health.RestartCommand (default: ShellRestart). It is bounded by
	// Health.RestartTimeout.
	Restart func(ctx context.Context, command string) error
	// RestartBackoff is the first wait between restarts of the service; it doubles up to
	// 30s while the service stays down. Default: twice the interval.
	RestartBackoff time.Duration
	// NewProber opens the prober of one network, bound to this host's address there
	// (default: NewICMPProber).
	NewProber func(network string, local netip.Addr) (Prober, error)
	// Publisher publishes the reachability attributes (default: CRMPublisher).
	Publisher Publisher
	// Store writes the heartbeat (default: DirStore).
	Store Store
	// ProbeTimeout bounds one round of probes (default: 60% of the interval).
	ProbeTimeout time.Duration
	// PublishTimeout bounds one publication (default: the interval, at least 2s).
	PublishTimeout time.Duration
	// OpenWatchdog arms the watchdog of Health.Watchdog (default watchdog.Open).
	OpenWatchdog func(spec string, timeout time.Duration) (watchdog.Device, error)
	// BootTime is when this host started (default: the kernel's boot time): a poison pill
	// written before it was for the host's earlier life, which ended.
	BootTime time.Time
	// CondemnedMark keeps a condemnation across restarts of the process (default
	// DefaultCondemnedMark).
	CondemnedMark string
	// GossipTune adjusts memberlist's configuration after hostcheck set its timing (tests
	// make it faster).
	GossipTune func(*memberlist.Config)
	// InterfaceAddrs lists this host's addresses, among which a host that health.hosts does
	// not list finds its own on each network (default health.InterfaceAddrs).
	InterfaceAddrs func() ([]netip.Addr, error)
	// Now is the clock (default time.Now).
	Now func() time.Time
	Log *slog.Logger
}

// CheckConfig tells whether h lets node run hostcheck: the health section is configured and
// lists node, or lets a host it does not list join by gossip. The error names what is missing.
func CheckConfig(h *config.Health, node string) error {
	if !h.Enabled() {
		return errors.New("the configuration has no health section (health.networks is empty)")
	}
	addrs, ok := h.Hosts[node]
	if !ok {
		if why := h.Unlisted(); why != "" {
			return fmt.Errorf("host %q is not listed in health.hosts (listed: %s), and %s", node, strings.Join(h.HostNames(), ", "), why)
		}
		return nil
	}
	if len(addrs) == 0 {
		return fmt.Errorf("health.hosts.%s: no address on any network", node)
	}
	return nil
}

// Run runs the health process until ctx ends: the heartbeat loop, the probe loop and the
// health socket. It returns nil when ctx ends, and an error when it cannot start (bad
// options, the socket cannot be served).
func Run(ctx context.Context, o Options) error {
	c, err := newChecker(o)
	if err != nil {
		return err
	}
	defer c.close()
	parent := ctx
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errs := make(chan error, 1)
	if o.Socket != "" {
		ln, err := healthsock.Listen(o.Socket)
		if err != nil {
			return err
		}
		go func() { errs <- healthsock.Serve(ctx, ln, c.Health) }()
	}
	if o.MetricsListen != "" {
		serveMetrics(ctx, c, o.MetricsListen)
	}
	c.log.Info("hostcheck started", "node", c.o.Node, "shared_dir", c.h.SharedDir, "interval", c.h.Interval,
		"networks", len(c.nets), "socket", o.Socket)
	var wg sync.WaitGroup
	wg.Add(3)
	go func() { defer wg.Done(); c.every(ctx, c.heartbeatStep) }()
	go func() { defer wg.Done(); c.every(ctx, c.probeStep) }()
	// The watchdog has a loop of its own: neither a hung storage nor a slow probe round may
	// delay a feed.
	go func() { defer wg.Done(); c.watchdogLoop(ctx) }()
	select {
	case <-ctx.Done():
		err = nil
	case err = <-errs:
	}
	// Asked to stop (a signal, Pacemaker's stop), not failing: only then is the watchdog
	// disarmed.
	deliberate := parent.Err() != nil
	cancel()
	wg.Wait()
	c.stopWatchdog(deliberate)
	c.stopGossip(deliberate)
	return err
}

// checker is the state of one hostcheck process.
type checker struct {
	o   Options
	h   config.Health
	log *slog.Logger

	writer *writer
	nets   []*network
	sf     selfFence
	// gossipKey is the gossip's key, when the hosts gossip; queries are the fence queries
	// for this host that the gossip received, for the watchdog loop.
	gossipKey []byte
	queries   chan fenceQuery
	// joins are the joins under way; ignored is the last gossip message ignored (c.mu).
	joins   sync.WaitGroup
	ignored string
	// hungWarned tells whether the write in flight was already logged as hung (heartbeat
	// loop only).
	hungWarned bool
	// addresses is this host's address on each network, which its record announces, when
	// health.hosts does not list it.
	addresses map[string]string

	mu sync.Mutex
	// Service state, kept by the heartbeat loop.
	serviceUp        bool
	serviceDetail    string
	serviceDownSince time.Time
	restarting       bool
	nextRestart      time.Time
	backoff          time.Duration
	restarts         int
	lastRestartErr   string
	// Probe loop state.
	started      time.Time
	lastRound    time.Time
	publishSince time.Time // first failed publication since the last success
	publishErr   string
	restartWG    sync.WaitGroup
}

// network is the probe state of one network this host has an address on.
type network struct {
	name   string
	local  netip.Addr
	peers  []*peer
	prober Prober
	gossip gossipOf
	// openErr is why the prober could not be opened in the last round.
	openErr string
	// published is the attribute value last published successfully; dirty forces the
	// next publication (at start, and after a failure).
	published   string
	publishedAt time.Time
	dirty       bool
	// ignored is why each gossip member not taken as a peer was ignored (probe goroutine).
	ignored map[string]string
}

// republishEvery is how often an unchanged view is published again: attrd drops a node's
// values in some cases (a remote node's, when its connection is set up again), and a value
// that changes rarely would stay missing until its next change. Private attributes never
// reach the CIB, so this costs attrd a message, not a transition.
const republishEvery = 30 * time.Second

type peer struct {
	name string
	addr netip.Addr
	// direct: probed (ICMP), not learned from the gossip.
	direct bool
	fails  int
	state  health.Signal
	// lastOK is when its last answer was taken in (the end of that round), or when this
	// process started: what the views publish, never earlier than the answer. lastSent is
	// when that round's probes were sent: what this host counts its own contact from, never
	// later than the answer. fence_gossip's margin covers the two being out of step.
	lastOK, lastSent time.Time
	// lastErr is why the last probe failed, for the log.
	lastErr error
}

func newChecker(o Options) (*checker, error) {
	if o.Node == "" {
		return nil, errors.New("hostcheck: no node name")
	}
	h := o.Health
	if err := CheckConfig(&h, o.Node); err != nil {
		return nil, err
	}
	if h.SharedDir == "" {
		return nil, errors.New("health.shared_dir is not set: hostcheck has no heartbeat to write")
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Log == nil {
		o.Log = slog.Default()
	}
	if o.Service == nil {
		o.Service = &ProcessCheck{Names: DefaultServices}
	}
	if o.Restart == nil {
		o.Restart = ShellRestart
	}
	if o.RestartBackoff <= 0 {
		o.RestartBackoff = 2 * h.Interval
	}
	if o.NewProber == nil {
		o.NewProber = func(_ string, local netip.Addr) (Prober, error) { return NewICMPProber(local) }
	}
	if o.Store == nil {
		o.Store = DirStore{}
	}
	if o.InterfaceAddrs == nil {
		o.InterfaceAddrs = health.InterfaceAddrs
	}
	if o.OpenWatchdog == nil {
		o.OpenWatchdog = watchdog.Open
	}
	if o.CondemnedMark == "" {
		o.CondemnedMark = DefaultCondemnedMark
	}
	if o.BootTime.IsZero() {
		o.BootTime = bootTime()
	}
	if o.ProbeTimeout <= 0 {
		o.ProbeTimeout = h.Interval * 6 / 10
	}
	if o.PublishTimeout <= 0 {
		o.PublishTimeout = max(h.Interval, 2*time.Second)
	}
	if o.Publisher == nil {
		o.Publisher = &CRMPublisher{Client: crm.NewClient(&crm.Runner{Timeout: o.PublishTimeout})}
	}
	now := o.Now()
	c := &checker{
		o: o, h: h, log: o.Log.With("component", "hostcheck"),
		// A write may take one interval before it is reported hung: the next one is due.
		writer:    newWriter(o.Store, h.SharedDir, o.Node, h.StaleAfter, h.Interval, now),
		serviceUp: true, backoff: o.RestartBackoff, started: now,
		queries: make(chan fenceQuery, 16),
	}
	if h.Gossip.Enabled() {
		key, err := gossip.ReadKey(h.Gossip.KeyFile)
		if err != nil {
			return nil, err
		}
		c.gossipKey = key
	}
	local, err := health.LocalAddresses(&h, o.Node, o.InterfaceAddrs)
	if err != nil {
		return nil, err
	}
	if !h.Listed(o.Node) {
		c.addresses = map[string]string{}
		for net, a := range local {
			c.addresses[net] = a.String()
		}
		c.log.Info("not listed in health.hosts: taking part by gossip", "addresses", c.addresses)
	}
	for _, n := range h.Networks {
		local, ok := local[n.Name]
		if !ok {
			continue
		}
		nw := &network{name: n.Name, local: local, dirty: true}
		for _, name := range h.HostNames() {
			if name == o.Node {
				continue
			}
			if a, ok := h.Address(name, n.Name); ok {
				nw.peers = append(nw.peers, c.newPeer(name, a, now))
			}
		}
		if h.Gossip.Enabled() {
			nw.gossip.seeds = c.gossipSeeds(n.Name)
		}
		// With the gossip, a network with no listed peer gets those that join it.
		if len(nw.peers) > 0 || h.Gossip.Enabled() {
			c.nets = append(c.nets, nw)
		}
	}
	c.startWatchdog()
	return c, nil
}

// newPeer is a peer at a on one network, not heard since this process started: what it
// publishes of a peer lost from the start says so (fence_gossip bounds a silence by it).
// Without gossip every peer is probed. With it, only the seeds and the observers are, and
// they probe everyone: what times a silence and a self-fencing.
func (c *checker) newPeer(name string, a netip.Addr, now time.Time) *peer {
	direct := !c.h.Gossip.Enabled() || c.h.Direct(c.o.Node) || c.h.Direct(name)
	return &peer{name: name, addr: a, direct: direct, lastOK: now, lastSent: now}
}

func (c *checker) close() {
	for _, n := range c.nets {
		if n.prober != nil {
			_ = n.prober.Close()
		}
	}
}

// every calls step at once, then every interval, until ctx ends. A slow step delays only
// its own loop; missed ticks are dropped, not queued.
func (c *checker) every(ctx context.Context, step func(context.Context)) {
	t := time.NewTicker(c.h.Interval)
	defer t.Stop()
	for {
		step(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// heartbeatStep checks the service (restarting it when due) and starts writing the record.
func (c *checker) heartbeatStep(ctx context.Context) {
	now := c.o.Now()
	c.checkService(ctx, now)
	rec := c.record(now)
	if c.writer.kick(rec, now, c.o.Now) {
		c.hungWarned = false
		return
	}
	// Once per hang: the loop runs every interval and a hung mount may last for hours.
	if st := c.writer.status(now); st.Hung && !c.hungWarned {
		c.hungWarned = true
		c.log.Warn("a heartbeat write has not returned; no other is started until it does", "path", c.writer.path)
	}
}

// checkService reads the service's state and runs the restart command when it is down and
// the backoff allows.
func (c *checker) checkService(ctx context.Context, now time.Time) {
	up, detail, err := c.o.Service.Running()
	c.mu.Lock()
	defer c.mu.Unlock()
	if err != nil {
		// Unknown is not down: restarting a service that may well run would do harm.
		c.log.Warn("cannot check the cluster service", "error", err)
		return
	}
	if up != c.serviceUp || detail != c.serviceDetail {
		if up {
			c.log.Info("the cluster service runs", "detail", detail)
		} else {
			c.log.Warn("the cluster service is down", "detail", detail)
		}
	}
	c.serviceDetail = detail
	if up {
		c.serviceUp, c.serviceDownSince = true, time.Time{}
		c.backoff, c.nextRestart = c.o.RestartBackoff, time.Time{}
		return
	}
	if c.serviceUp {
		c.serviceUp, c.serviceDownSince = false, now
	}
	if c.h.RestartCommand == "" || c.restarting || now.Before(c.nextRestart) {
		return
	}
	c.restarting = true
	c.restarts++
	c.nextRestart = now.Add(c.backoff)
	c.backoff = min(2*c.backoff, restartBackoffMax)
	c.log.Warn("restarting the cluster service", "command", c.h.RestartCommand, "attempt", c.restarts,
		"down_for", now.Sub(c.serviceDownSince).Round(time.Millisecond), "next_no_sooner_than", c.nextRestart.Sub(now))
	c.restartWG.Add(1)
	go func() {
		defer c.restartWG.Done()
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), c.h.RestartTimeout)
		defer cancel()
		err := c.o.Restart(rctx, c.h.RestartCommand)
		c.mu.Lock()
		defer c.mu.Unlock()
		c.restarting = false
		if err != nil {
			c.lastRestartErr = err.Error()
			c.log.Error("the restart command failed", "command", c.h.RestartCommand, "error", err)
			return
		}
		c.lastRestartErr = ""
		c.log.Info("the restart command finished", "command", c.h.RestartCommand)
	}()
}

// ownView is this host's own view of each network for its record: ok when it reaches at least
// one peer it probes there, lost when every one is lost, absent while undecided.
func (c *checker) ownView() map[string]string {
	c.mu.Lock()
	defer c.mu.Unlock()
	view := map[string]string{}
	for _, n := range c.nets {
		lost, direct := 0, 0
		for _, p := range n.peers {
			// What the gossip says of a peer is the network's view, not this host's: a host
			// cut off still holds the others alive until it has probed each of them.
			if !p.direct {
				continue
			}
			direct++
			switch p.state {
			case health.OK:
				view[n.name] = health.OK.String()
			case health.Lost:
				lost++
			}
		}
		if _, ok := view[n.name]; !ok && direct > 0 && lost == direct {
			view[n.name] = health.Lost.String()
		}
	}
	if len(view) == 0 {
		return nil
	}
	return view
}

// probeStep probes every network at once, then publishes what changed.
func (c *checker) probeStep(ctx context.Context) {
	var wg sync.WaitGroup
	for _, n := range c.nets {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c.probe(ctx, n)
		}()
	}
	wg.Wait()
	c.publish(ctx)
	c.mu.Lock()
	c.lastRound = c.o.Now()
	c.mu.Unlock()
}

// probe runs one round on n. The prober is opened on demand, so an address that appears
// late (an interface brought up after hostcheck) is used as soon as it exists; so is the
// gossip's member, when the hosts gossip.
func (c *checker) probe(ctx context.Context, n *network) {
	var gossiped map[string]error
	if c.h.Gossip.Enabled() {
		if err := c.startGossip(n); err != nil {
			c.forget(n, false)
		} else {
			c.maybeJoin(n, c.o.Now())
			c.learnPeers(n, c.o.Now())
			gossiped = c.gossipResults(n)
		}
	}
	sent := c.o.Now()
	res, probed := c.probeDirect(ctx, n)
	if ctx.Err() != nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, p := range n.peers {
		if !p.direct || !probed {
			continue
		}
		perr, ok := res[p.addr.Unmap()]
		if !ok {
			perr = ErrNoReply
		}
		c.observe(n, p, perr, sent)
	}
	c.applyGossip(n, gossiped, sent)
}

// probeDirect probes n's peers that are probed directly; false when it could not (no peer to
// probe, the prober cannot be opened or failed: it is opened again next round).
func (c *checker) probeDirect(ctx context.Context, n *network) (map[netip.Addr]error, bool) {
	var targets []netip.Addr
	for _, p := range n.peers {
		if p.direct {
			targets = append(targets, p.addr)
		}
	}
	if len(targets) == 0 {
		return nil, false
	}
	if n.prober == nil {
		p, err := c.o.NewProber(n.name, n.local)
		c.mu.Lock()
		if err != nil {
			if n.openErr != err.Error() {
				c.log.Error("cannot probe network", "network", n.name, "error", err)
			}
			n.openErr = err.Error()
			c.mu.Unlock()
			// Without a socket this host sees nothing on n directly: what it said before no
			// longer holds.
			c.forget(n, true)
			return nil, false
		}
		n.openErr = ""
		c.mu.Unlock()
		// Only this network's probe goroutine touches its prober.
		n.prober = p
	}
	pctx, cancel := context.WithTimeout(ctx, c.o.ProbeTimeout)
	res, err := n.prober.Probe(pctx, targets)
	cancel()
	if err != nil && ctx.Err() == nil {
		c.log.Error("probing failed; reopening the socket", "network", n.name, "error", err)
		_ = n.prober.Close()
		n.prober = nil
		return nil, false
	}
	return res, err == nil
}

// forget makes n's peers unknown: those probed directly (direct), or those the gossip
// tells of (!direct), when that source is gone.
func (c *checker) forget(n *network, direct bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, p := range n.peers {
		if p.direct == direct {
			p.fails, p.state = 0, health.Unknown
		}
	}
}

// applyGossip takes in what the gossip says of n's peers that are not probed directly.
// Called with c.mu held.
func (c *checker) applyGossip(n *network, gossiped map[string]error, sent time.Time) {
	if gossiped == nil {
		return
	}
	for _, p := range n.peers {
		err, ok := gossiped[p.name]
		if !ok || p.direct {
			continue
		}
		if errors.Is(err, errGossipNoSay) {
			if p.state != health.Unknown {
				c.log.Info("peer reachability changed", "network", n.name, "peer", p.name, "from", p.state.String(), "to", health.Unknown.String(), "why", err)
			}
			p.fails, p.state, p.lastErr = 0, health.Unknown, err
			continue
		}
		// Confirmed already: memberlist declares a member dead only once its suspicion,
		// spread to the others, was not refuted in time. No rounds are counted on top.
		p.fails = max(p.fails, c.h.ProbeFailures-1)
		c.observe(n, p, err, sent)
	}
}

// observe applies one probe result to p: lost after ProbeFailures failures in a row, ok at
// the first answer. Called with c.mu held.
func (c *checker) observe(n *network, p *peer, err error, sent time.Time) {
	old := p.state
	if err == nil {
		p.fails, p.state, p.lastErr, p.lastOK, p.lastSent = 0, health.OK, nil, c.o.Now(), sent
	} else {
		p.fails++
		p.lastErr = err
		if p.fails >= c.h.ProbeFailures {
			p.state = health.Lost
		}
	}
	if p.state != old {
		args := []any{"network", n.name, "peer", p.name, "address", p.addr, "from", old.String(), "to", p.state.String()}
		if p.lastErr != nil {
			args = append(args, "failures", p.fails, "error", p.lastErr)
		}
		c.log.Info("peer reachability changed", args...)
	}
}

// publish publishes each network's view when it changed since the last successful
// publication.
func (c *checker) publish(ctx context.Context) {
	type job struct {
		n     *network
		value string
	}
	var jobs []job
	c.mu.Lock()
	for _, n := range c.nets {
		view := make(map[string]health.Signal, len(n.peers))
		lastOK := make(map[string]time.Time, len(n.peers))
		for _, p := range n.peers {
			view[p.name], lastOK[p.name] = p.state, p.lastOK
		}
		if v := health.FormatReach(view, lastOK); n.dirty || v != n.published || c.o.Now().Sub(n.publishedAt) >= republishEvery {
			jobs = append(jobs, job{n, v})
		}
	}
	c.mu.Unlock()
	for _, j := range jobs {
		name := health.ReachAttribute(j.n.name)
		pctx, cancel := context.WithTimeout(ctx, c.o.PublishTimeout)
		err := c.o.Publisher.Publish(pctx, c.o.Node, name, j.value)
		cancel()
		if ctx.Err() != nil {
			return
		}
		c.mu.Lock()
		if err != nil {
			j.n.dirty = true
			if c.publishSince.IsZero() {
				c.publishSince = c.o.Now()
			}
			if c.publishErr != err.Error() {
				c.log.Error("cannot publish reachability", "attribute", name, "value", j.value, "error", err)
			}
			c.publishErr = err.Error()
		} else {
			level := slog.LevelInfo
			if j.value == j.n.published && !j.n.dirty {
				level = slog.LevelDebug // the periodic republication
			}
			j.n.dirty, j.n.published, j.n.publishedAt = false, j.value, c.o.Now()
			c.publishSince, c.publishErr = time.Time{}, ""
			c.log.Log(ctx, level, "published reachability", "attribute", name, "value", j.value)
		}
		c.mu.Unlock()
	}
}

// Health is what the process reports about itself on its socket.
type Health struct {
	// OK is true when both the heartbeat writer and the probe loop work.
	OK bool `json:"ok"`
	// Reason says why not, when not OK.
	Reason string `json:"reason,omitempty"`
	Node   string `json:"node"`
	Writer Part   `json:"writer"`
	Probes Part   `json:"probes"`
	// Seq and LastWrite are those of the newest heartbeat written successfully; WriteTime
	// is how long the last finished write took.
	Seq       uint64        `json:"seq"`
	LastWrite time.Time     `json:"last_write,omitzero"`
	WriteTime time.Duration `json:"write_time_ns"`
	// Service is the cluster service as last seen ("ok" or "down"), with a detail.
	Service          string    `json:"service"`
	ServiceDetail    string    `json:"service_detail,omitempty"`
	ServiceDownSince time.Time `json:"service_down_since,omitzero"`
	Restarts         int       `json:"restarts,omitempty"`
	LastRestartError string    `json:"last_restart_error,omitempty"`
	// Reach is the value last published for each network.
	Reach map[string]string `json:"reach,omitempty"`
	// Watchdog is the watchdog this process holds, when one is configured.
	Watchdog *WatchdogHealth `json:"watchdog,omitempty"`
}

// Part is the health of one loop.
type Part struct {
	OK     bool   `json:"ok"`
	Reason string `json:"reason,omitempty"`
}

// Health judges the process at this instant. It never waits on the storage or on a probe.
func (c *checker) Health() Health {
	now := c.o.Now()
	ws := c.writer.status(now)
	h := Health{
		Node: c.o.Node, Writer: Part{OK: ws.OK, Reason: ws.Reason},
		Seq: ws.Seq, LastWrite: ws.LastWrite, WriteTime: ws.Duration,
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	h.Service, h.ServiceDetail = health.ServiceOK, c.serviceDetail
	if !c.serviceUp {
		h.Service, h.ServiceDownSince = health.ServiceDown, c.serviceDownSince
	}
	h.Restarts, h.LastRestartError = c.restarts, c.lastRestartErr
	h.Probes = c.probeHealth(now)
	for _, n := range c.nets {
		if !n.dirty {
			if h.Reach == nil {
				h.Reach = map[string]string{}
			}
			h.Reach[n.name] = n.published
		}
	}
	wd, wdReason := c.watchdogHealth()
	h.Watchdog = wd
	h.OK = h.Writer.OK && h.Probes.OK && wdReason == ""
	var reasons []string
	for _, r := range []string{h.Writer.Reason, h.Probes.Reason, wdReason} {
		if r != "" {
			reasons = append(reasons, r)
		}
	}
	h.Reason = strings.Join(reasons, "; ")
	return h
}

// probeHealth judges the probe loop: a round must have finished recently, every network's
// socket must be open, and publishing must not have failed for longer than StaleAfter.
// Called with c.mu held.
func (c *checker) probeHealth(now time.Time) Part {
	var reasons []string
	// A round takes at most the probe timeout plus one publication per network.
	late := c.h.StaleAfter + c.o.ProbeTimeout + time.Duration(len(c.nets))*c.o.PublishTimeout
	switch {
	case c.lastRound.IsZero() && now.Sub(c.started) <= late:
		reasons = append(reasons, "no probe round finished yet")
	case c.lastRound.IsZero():
		reasons = append(reasons, fmt.Sprintf("no probe round has finished in %s", now.Sub(c.started).Round(time.Millisecond)))
	case now.Sub(c.lastRound) > late:
		reasons = append(reasons, fmt.Sprintf("the last probe round finished %s ago", now.Sub(c.lastRound).Round(time.Millisecond)))
	}
	for _, n := range c.nets {
		if n.openErr != "" {
			reasons = append(reasons, fmt.Sprintf("cannot probe network %s: %s", n.name, n.openErr))
		}
		if n.gossip.startErr != "" {
			reasons = append(reasons, fmt.Sprintf("cannot gossip on network %s: %s", n.name, n.gossip.startErr))
		}
	}
	if !c.publishSince.IsZero() && now.Sub(c.publishSince) > c.h.StaleAfter {
		reasons = append(reasons, fmt.Sprintf("publishing reachability has failed for %s: %s",
			now.Sub(c.publishSince).Round(time.Millisecond), c.publishErr))
	}
	return Part{OK: len(reasons) == 0, Reason: strings.Join(reasons, "; ")}
}
