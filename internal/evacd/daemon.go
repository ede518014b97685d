// Package evacd is computeha's evacuation daemon: it takes a compute host
// that fence_nova marked for evacuation, confirms the host's fencing, and
// rebuilds the host's HA VMs on other hosts of its failover segment.
//
// Safety rules, in the order they apply:
//   - A host is acted on only when it carries the evacuation mark
//     (evacstate) AND Pacemaker's fencing history shows a successful
//     fencing of it at or after the mark; a host whose fencing is not
//     confirmed is never evacuated, and the wait is logged and recorded.
//   - Only a partition with quorum acts.
//   - The mass-failure guard pauses recovery when too many hosts fail
//     together; an operator releases the pause (computeha guard release).
//   - Progress lives in the node attribute (pending → running → done or
//     failed), so a daemon that dies or moves to another controller
//     resumes: servers already rebuilt elsewhere, or with an evacuation in
//     flight in Nova, are never evacuated again.
package evacd

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/computeha/computeha/crm"
	"github.com/computeha/computeha/internal/alert"
	"github.com/computeha/computeha/internal/clock"
	"github.com/computeha/computeha/internal/config"
	"github.com/computeha/computeha/internal/evacdsock"
	"github.com/computeha/computeha/internal/evacstate"
	"github.com/computeha/computeha/internal/history"
	"github.com/computeha/computeha/internal/maintenance"
	"github.com/computeha/computeha/internal/metrics"
	"github.com/computeha/computeha/internal/openstack"
	"github.com/computeha/computeha/internal/recovery"
	"github.com/computeha/computeha/internal/reserve"
)

// ReleaseAttribute is set on a host's node by an operator (computeha guard
// release) to let a recovery the guard paused go on.
const ReleaseAttribute = "computeha-guard-release"

// Cluster is what the daemon needs of Pacemaker (crm.Client has it).
type Cluster interface {
	Status(ctx context.Context) (*crm.Status, error)
	CIB(ctx context.Context) (*crm.CIB, error)
	Attribute(ctx context.Context, node, name string, l crm.Lifetime) (string, error)
	SetAttribute(ctx context.Context, node, name, value string, l crm.Lifetime) error
	DeleteAttribute(ctx context.Context, node, name string, l crm.Lifetime) error
	// AttributeAllNodes reads an attrd attribute of every node: the health evidence's
	// reachability.
	AttributeAllNodes(ctx context.Context, name string) (map[string]string, error)
	FencingHistory(ctx context.Context, node string) ([]crm.FenceEvent, error)
}

var _ Cluster = (*crm.Client)(nil)

// Options configure the daemon.
type Options struct {
	Config  *config.Config
	Cluster Cluster
	Nova    openstack.Client
	History *history.Store
	// Metrics, when set, receives the hosts' judged states and reads the recoveries in
	// flight at each scrape (the history feeds it the rest).
	Metrics *metrics.Metrics
	// Owner names this daemon instance in the evacuation state (the node
	// it runs on).
	Owner string
	Log   *slog.Logger
	// Clock paces every wait (nil: the real one).
	Clock clock.Clock
	// Poll is how often job loops look again (VM state, fencing, guard);
	// default 1 s.
	Poll time.Duration
	// Reconcile is how often the whole CIB is checked for marked hosts,
	// as a backstop to events; default 15 s.
	Reconcile time.Duration
	// ReserveEvery is how often the reserved hosts are looked at; default [ReserveEvery].
	ReserveEvery time.Duration
	// FenceSkew is how much earlier than the mark a fencing may complete
	// and still confirm it (clocks of controllers differ); default 30 s.
	FenceSkew time.Duration

	// Observer gathers the health evidence of every host when the
	// configuration enables health checks (nil: evidence.Gather from
	// Cluster and the shared directory).
	Observer Observer
	// Fencer fences or confirms hosts for the health loop (nil: Cluster,
	// when it has those methods, as crm.Client does).
	Fencer Fencer
	// Judge replaces health.Collect+Decide (nil: those).
	Judge Judge
	// FenceTimeout bounds a fencing the health loop asks for; default
	// health.decide plus a minute.
	FenceTimeout time.Duration
}

// Daemon recovers marked hosts, one job per host.
type Daemon struct {
	o      Options
	clock  clock.Clock
	engine *recovery.Engine
	// leftovers watches the VMs recovered after their evacuation was lost with a failed host.
	leftovers *recovery.Leftovers
	marks     evacstate.Marks
	names     recovery.Names // node ↔ Nova host, by the configuration's rule

	mu       sync.Mutex
	jobs     map[string]*job
	failures map[string]time.Time // host → when it was first seen marked
	// failed are the hosts marked failed (an operator decides), for the metrics: their job is
	// over, their mark stays.
	failed map[string]bool
	// expiry ends the maintenance windows whose until has passed.
	expiry  *maintenance.Expiry
	lastErr string
	started time.Time
	wake    map[string]chan struct{}
	// away are the hosts recovered since they last joined, by when their recovery began: no
	// targets, even once their job is over (a VM sent to one just before it failed is asked
	// again elsewhere while it stays away).
	away map[string]time.Time
	// hostStates are the hosts' confirmed health states, for the alerts; a host whose
	// responses are suspended (maintenance, standby) has none.
	hostStates map[string]string
	// headroom is the segments' headroom, when it is read (metrics served or alerts on).
	headroom *recovery.Headroom
	// quorate is whether this partition had quorum when last seen, once quorumKnown.
	quorate, quorumKnown bool
	// vms are the failed guests of running hosts being restarted (the HA API's reports).
	vms vmFailures
	// doneSeen are the hosts found marked done, by their mark's time, once their incidents
	// left open were closed (closeOrphans).
	doneSeen map[string]time.Time
	// procs are the hosts disabled for provisioning processes, for the metrics and alerts.
	procs processesDown
	// paused are the VMs left paused after an I/O error, for the metrics and alerts.
	paused leftPaused
	// storms are the restart storms of the hosts, for the metrics and alerts.
	storms restartStorms
}

// New returns a daemon.
func New(o Options) *Daemon {
	if o.Poll <= 0 {
		o.Poll = time.Second
	}
	if o.Reconcile <= 0 {
		o.Reconcile = 15 * time.Second
	}
	if o.ReserveEvery <= 0 {
		o.ReserveEvery = ReserveEvery
	}
	if o.FenceSkew <= 0 {
		o.FenceSkew = 30 * time.Second
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	base := o.Log // the engine names its own component
	o.Log = o.Log.With("component", "evacd")
	d := &Daemon{
		o:          o,
		clock:      clock.Or(o.Clock),
		marks:      evacstate.Marks{Attrs: o.Cluster},
		jobs:       map[string]*job{},
		failures:   map[string]time.Time{},
		failed:     map[string]bool{},
		wake:       map[string]chan struct{}{},
		away:       map[string]time.Time{},
		hostStates: map[string]string{},
		doneSeen:   map[string]time.Time{},
		names:      recovery.NewNames(o.Config, nil),
	}
	if o.Metrics != nil {
		o.Metrics.GaugeFunc("recovery_phase", "1 for each host under recovery, labelled with its phase "+
			"(fencing: waiting for its fencing to be confirmed, reading, paused by the guard, recovering, failed).",
			[]string{"host", "phase"}, d.phases)
		o.Metrics.GaugeFunc("host_process_down", "1 for each provisioning process (instances.processes) of a host that "+
			"cannot be restarted: the host is disabled in Nova until it runs again.",
			[]string{"host", "process"}, d.procs.gauge)
		o.Metrics.GaugeFunc("vm_left_paused", "1 for each HA VM an I/O error paused that computeha left paused "+
			"(policy.io_error leave-paused, or resumed too often), until it is no longer paused there.",
			[]string{"host", "vm"}, d.paused.gauge)
		o.Metrics.GaugeFunc("restart_storm", "1 for each host whose failed VMs were left alone lately for a restart storm, "+
			"labelled with the limit reached (instances.storm_host, storm_cloud), for instances.storm_window after the last one.",
			[]string{"host", "limit"}, d.stormsGauge)
	}
	d.engine = recovery.New(recovery.Options{
		Config: o.Config, Nova: o.Nova, Cluster: o.Cluster, Clock: d.clock, Poll: o.Poll, Log: base,
		Failing: d.failingNovaHosts, OnNovaError: d.setErr,
	})
	d.expiry = &maintenance.Expiry{
		Hosts: maintenance.Hosts{Cluster: o.Cluster, Nova: o.Nova, NovaHost: func(n string) string { return d.names.ByNode(n).NovaHost }},
		Log:   o.Log, Record: d.record,
	}
	d.leftovers = recovery.NewLeftovers(o.Nova, d.clock, o.Log, d.names, d.record)
	return d
}

// Health is what the daemon reports to its OCF agent's monitor.
type Health = evacdsock.Health

// phases reads each job's phase for the metrics, and "failed" for each host marked failed whose
// job is over (until an operator clears the mark); a done job is left out.
func (d *Daemon) phases() map[[2]string]float64 {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := map[[2]string]float64{}
	for host := range d.failed {
		if _, busy := d.jobs[host]; !busy {
			out[[2]string{host, string(PhaseFailed)}] = 1
		}
	}
	for host, j := range d.jobs {
		if p := j.getPhase(); p != "" && p != PhaseDone {
			out[[2]string{host, string(p)}] = 1
		}
	}
	return out
}

// setHostState keeps host's confirmed health state for the metrics and the alerts; "" when
// the host is not judged (its responses suspended).
func (d *Daemon) setHostState(host, state string) {
	d.mu.Lock()
	if state == "" {
		delete(d.hostStates, host)
	} else {
		d.hostStates[host] = state
	}
	d.mu.Unlock()
	if m := d.o.Metrics; m != nil {
		m.SetHostState(host, state, stateNames)
	}
}

// AlertState is what the alert rules read: every judged host's state, every recovery's phase
// and each segment's capacity, when it is read.
func (d *Daemon) AlertState() alert.Snapshot {
	s := alert.Snapshot{Health: map[string]string{}, Phases: map[string]string{}, Capacity: map[string]string{}}
	for k := range d.phases() {
		s.Phases[k[0]] = k[1]
	}
	d.mu.Lock()
	for h, st := range d.hostStates {
		s.Health[h] = st
	}
	c := d.headroom
	d.mu.Unlock()
	s.Processes = d.procs.snapshot()
	s.Paused = d.paused.byHost()
	s.Storms = d.storms.byHost(d.clock.Now(), d.o.Config.Instances.StormWindow)
	if c != nil {
		for seg, short := range c.Short() {
			s.Capacity[seg] = alert.CapacityOK
			if short {
				s.Capacity[seg] = alert.CapacityShort
			}
		}
	}
	return s
}

// Health reports the daemon's state.
func (d *Daemon) Health() Health {
	d.mu.Lock()
	defer d.mu.Unlock()
	h := Health{OK: !d.started.IsZero(), Owner: d.o.Owner, Since: d.started, Jobs: map[string]string{}, LastErr: d.lastErr}
	for host, j := range d.jobs {
		h.Jobs[host] = j.step()
	}
	return h
}

// Run handles events until ctx ends. It first looks for hosts already
// marked (a previous daemon's unfinished work), then follows events, and
// rereads the CIB every Reconcile as a backstop.
func (d *Daemon) Run(ctx context.Context, events <-chan crm.Event) error {
	d.mu.Lock()
	d.started = d.clock.Now()
	d.mu.Unlock()
	var wg sync.WaitGroup
	defer wg.Wait()
	d.reconcile(ctx, &wg)
	d.seedStorms(ctx)
	defer d.startInstances(ctx)()
	d.startHealth(ctx, &wg)
	d.startCapacity(ctx, &wg)
	if every := d.o.Config.Evacuation.Refresh; every > 0 {
		wg.Go(func() { d.engine.KeepFresh(ctx, every) })
	}
	if keep := d.o.Config.History.Retention; keep > 0 && d.o.History != nil {
		wg.Go(func() { d.o.History.KeepPruned(ctx, d.clock, keep, d.o.Log) })
	}
	if d.o.Config.API.Listen != "" {
		// Hosts are disabled for their processes through the HA API only.
		wg.Go(func() { d.tendProcesses(ctx) })
		wg.Go(func() { d.tendPaused(ctx) })
	}
	for _, s := range d.o.Config.Segments {
		if len(s.ReservedHosts) > 0 {
			wg.Go(func() { d.tendReserve(ctx) })
			break
		}
	}
	tick := time.NewTicker(d.o.Reconcile)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			d.quorumAtStop()
			return ctx.Err()
		case <-tick.C:
			d.reconcile(ctx, &wg)
		case e, ok := <-events:
			if !ok {
				events = nil
				continue
			}
			d.event(ctx, &wg, e)
		}
	}
}

func (d *Daemon) setErr(err error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if err == nil {
		d.lastErr = ""
	} else {
		d.lastErr = err.Error()
	}
}

// reconcile starts a job for every marked host that has none.
func (d *Daemon) reconcile(ctx context.Context, wg *sync.WaitGroup) {
	cib, err := d.o.Cluster.CIB(ctx)
	if err != nil {
		d.o.Log.Warn("reading the CIB failed", "error", err)
		d.setErr(err)
		return
	}
	d.setErr(nil)
	d.noteQuorum(ctx, cib.HaveQuorum)
	d.expiry.End(ctx, wg, cib, d.clock.Now())
	marked, failed := map[string]evacstate.State{}, map[string]bool{}
	for _, n := range cib.Nodes {
		st, err := evacstate.Parse(n.Attributes[evacstate.Attribute])
		if err != nil {
			d.o.Log.Warn("unreadable evacuation state", "node", n.Name, "error", err)
			continue
		}
		switch st.Phase {
		case evacstate.Pending, evacstate.Running:
			marked[n.Name] = st
		case evacstate.Failed:
			failed[n.Name] = true
		case evacstate.Done:
			d.closeOrphans(ctx, n.Name, st)
		}
	}
	d.mu.Lock()
	var gone []string
	for node := range d.failed {
		if !failed[node] {
			gone = append(gone, node)
		}
	}
	d.mu.Unlock()
	for _, node := range gone {
		// A node gone from the configuration has no mark left either.
		n, _ := cib.Node(node)
		st, err := evacstate.Parse(n.Attributes[evacstate.Attribute])
		if err != nil {
			continue // unreadable: not known to be cleared
		}
		d.forgetFailed(ctx, node, st)
	}
	d.mu.Lock()
	for node := range failed {
		d.failed[node] = true
	}
	d.mu.Unlock()
	// Every host found marked counts for the guard before any of their jobs asks it: hosts
	// that failed together are judged together.
	for node, st := range marked {
		d.noteFailure(node, st)
	}
	for _, n := range cib.Nodes {
		if st, ok := marked[n.Name]; ok {
			d.start(ctx, wg, n.Name, st)
		}
	}
}

// closeOrphans closes the incidents of node left open by a daemon that stopped between
// marking the node's recovery done and closing its incident: every incident of node opened
// before the done mark st and still open. Each done mark is looked at once.
func (d *Daemon) closeOrphans(ctx context.Context, node string, st evacstate.State) {
	d.mu.Lock()
	seen, ok := d.doneSeen[node]
	d.doneSeen[node] = st.Since
	d.mu.Unlock()
	if d.o.History == nil || st.Since.IsZero() || (ok && seen.Equal(st.Since)) {
		return
	}
	incs, err := d.o.History.Incidents(ctx, history.Filter{Host: node, Until: st.Since})
	if err != nil {
		d.o.Log.Warn("reading the incidents of a recovered host failed", "host", node, "error", err)
		d.mu.Lock()
		delete(d.doneSeen, node) // looked at again at the next reconciliation
		d.mu.Unlock()
		return
	}
	for _, in := range incs {
		if in.Outcome != "" {
			continue
		}
		inc, err := d.o.History.ResumeIncident(ctx, in.ID)
		if err != nil {
			continue // closed meanwhile, or gone
		}
		summary := fmt.Sprintf("the recovery of %s had ended (marked done at %s); the daemon that ended it stopped before closing this incident",
			node, st.Since.UTC().Format(time.RFC3339))
		if err := inc.Close(ctx, history.OutcomeRecovered, summary, history.Reason{Code: "recovered", Text: "closed on taking over"}); err != nil {
			d.o.Log.Warn("closing an incident left open failed", "incident", in.ID, "error", err)
		}
	}
}

// forgetFailed drops node from the failed hosts, its mark now st (not failed). A mark removed
// is an operator's computeha recovery clear: the host and the VMs left on it are theirs now,
// and the history says so once. A retry (pending again) records itself when its job starts.
func (d *Daemon) forgetFailed(ctx context.Context, node string, st evacstate.State) {
	d.mu.Lock()
	was := d.failed[node]
	delete(d.failed, node)
	d.mu.Unlock()
	if was && st.Phase == evacstate.None {
		d.record(ctx, history.Event{
			Time: d.clock.Now(), Host: node, Kind: history.KindDecision,
			Summary: "the failed recovery of " + node + " was cleared: the host and the VMs left on it are the operator's",
			Reason:  history.Reason{Code: "recovery-cleared", Text: "its evacuation state was removed"},
		})
	}
}

// noteFailure records when node was first seen marked, for the guard.
func (d *Daemon) noteFailure(node string, st evacstate.State) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.noteFailureLocked(node, st)
}

func (d *Daemon) noteFailureLocked(node string, st evacstate.State) {
	if _, seen := d.failures[node]; !seen {
		at := st.Since
		if at.IsZero() {
			at = d.clock.Now()
		}
		d.failures[node] = at
	}
}

func (d *Daemon) event(ctx context.Context, wg *sync.WaitGroup, e crm.Event) {
	switch {
	case e.Kind == crm.AttributeChanged && e.Name == evacstate.Attribute:
		st, err := evacstate.Parse(e.Value)
		if err != nil {
			d.o.Log.Warn("unreadable evacuation state", "node", e.Node, "error", err)
			return
		}
		if st.Phase == evacstate.Pending || st.Phase == evacstate.Running {
			d.start(ctx, wg, e.Node, st)
		}
		// A value that says the recovery goes on or ended is the attribute's; an empty one may
		// only be crm_mon leaving out an offline node's attributes: the reconciliation, from the
		// CIB, tells a cleared recovery.
		if st.Phase != evacstate.Failed && st.Phase != evacstate.None {
			d.forgetFailed(ctx, e.Node, st)
		}
	case e.Kind == crm.AttributeChanged && e.Name == ReleaseAttribute:
		d.poke(e.Node)
	case e.Kind == crm.NodeFenced:
		d.record(ctx, history.Event{
			Time: e.Time, Host: e.Node, Kind: history.KindFencing,
			Summary: fmt.Sprintf("fencing (%s) of %s %s", e.Action, e.Node, map[bool]string{true: "succeeded", false: "failed"}[e.OK]),
			Reason:  history.Reason{Code: "pacemaker-fencing", Text: e.Desc},
		})
		d.poke(e.Node)
		// fence_nova marks the host during the fencing, in a permanent
		// attribute (no alert is raised for those): look now rather than
		// at the next poll.
		if e.OK {
			d.reconcile(ctx, wg)
		}
	case e.Kind == crm.NodeJoined:
		// Reads begun while the host was away tell nothing of what it runs once back: VMs
		// booted on it since would be missing from its next recovery.
		d.joined(e.Node)
		d.leftovers.Joined(e.Node)
	case e.Kind == crm.NodeLost:
		d.readAhead(ctx, e.Node)
		d.record(ctx, history.Event{
			Time: e.Time, Host: e.Node, Kind: history.KindFailure,
			Summary: e.Node + " left the cluster", Reason: history.Reason{Code: "node-lost", Text: "reported by " + e.Source},
		})
	}
}

// poke wakes a job waiting on fencing or the guard.
func (d *Daemon) poke(node string) {
	d.mu.Lock()
	ch := d.wake[node]
	d.mu.Unlock()
	if ch != nil {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
}

func (d *Daemon) record(ctx context.Context, e history.Event) {
	if d.o.History == nil {
		return
	}
	if err := d.o.History.Record(ctx, e); err != nil {
		d.o.Log.Warn("recording history failed", "error", err, "summary", e.Summary)
	}
}

// start runs a job for node unless one runs already.
func (d *Daemon) start(ctx context.Context, wg *sync.WaitGroup, node string, st evacstate.State) {
	d.mu.Lock()
	if _, busy := d.jobs[node]; busy {
		d.mu.Unlock()
		return
	}
	d.noteFailureLocked(node, st)
	j := &job{d: d, node: node, host: d.names.ByNode(node), mark: st}
	d.jobs[node] = j
	d.away[node] = d.clock.Now()
	d.wake[node] = make(chan struct{}, 1)
	d.mu.Unlock()
	wg.Add(1)
	go func() {
		defer wg.Done()
		err := j.run(ctx)
		d.leftovers.Watch(ctx, wg)
		if err != nil && !errors.Is(err, context.Canceled) {
			d.o.Log.Error("recovery failed", "host", node, "error", err)
		}
		d.mu.Lock()
		if j.getPhase() == PhaseFailed {
			d.failed[node] = true
		}
		delete(d.jobs, node)
		delete(d.wake, node)
		if err == nil {
			delete(d.failures, node)
		}
		d.mu.Unlock()
	}()
}

// failingNovaHosts lists the Nova hosts of the nodes being recovered: whatever Nova says of
// them, they are no targets.
func (d *Daemon) failingNovaHosts() map[string]bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := make(map[string]bool, len(d.jobs)+len(d.away))
	for node := range d.jobs {
		out[d.names.ByNode(node).NovaHost] = true
	}
	now := d.clock.Now()
	for node, since := range d.away {
		if now.Sub(since) < awayFor {
			out[d.names.ByNode(node).NovaHost] = true
		} else {
			delete(d.away, node)
		}
	}
	return out
}

// awayFor bounds how long a recovered host that was never seen joining again counts as
// failed: a join the watch missed costs no more than that much capacity.
const awayFor = 15 * time.Minute

// recentFailures lists the nodes marked recently, for the guard.
func (d *Daemon) recentFailures() map[string]time.Time {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := make(map[string]time.Time, len(d.failures))
	for h, t := range d.failures {
		out[h] = t
	}
	return out
}

// readAhead begins the reads of a recovery of node as soon as Pacemaker loses it, and keeps
// them fresh: its fencing takes seconds (minutes when it is retried), and a recovery that
// follows finds them done. They only read. A node that is not a compute of a segment just gets
// reads that fail, and are never used.
func (d *Daemon) readAhead(ctx context.Context, node string) {
	d.mu.Lock()
	_, busy := d.jobs[node]
	d.mu.Unlock()
	if !busy {
		d.engine.ReadAhead(ctx, d.names.ByNode(node))
	}
}

// joined forgets the reads begun ahead for node, and that it was away. The reads of a recovery
// that runs stay: a remote node just fenced can read online for a moment.
func (d *Daemon) joined(node string) {
	d.mu.Lock()
	_, busy := d.jobs[node]
	delete(d.away, node)
	d.mu.Unlock()
	if !busy {
		d.engine.ForgetAhead(node)
	}
}

// startCapacity keeps the segments' headroom every metrics.capacity_interval while someone
// reads it: the metrics are served, or alerts are delivered.
func (d *Daemon) startCapacity(ctx context.Context, wg *sync.WaitGroup) {
	every := d.o.Config.Metrics.CapacityInterval
	served := d.o.Metrics != nil && d.o.Config.Metrics.Listen != ""
	if every <= 0 || !served && !d.o.Config.Alerts.Any() {
		return
	}
	h := &recovery.Headroom{}
	d.mu.Lock()
	d.headroom = h
	d.mu.Unlock()
	if served {
		d.o.Metrics.ServeHeadroom(h.Segments)
	}
	wg.Go(func() { h.Keep(ctx, every, d.clock, d.o.Log, d.segments, d.o.Nova) })
}

// ReserveEvery is how often the daemon looks at the reserved hosts.
const ReserveEvery = time.Minute

// tendReserve looks at the reserved hosts every ReserveEvery, while any segment has some
// (reserve.Tender).
func (d *Daemon) tendReserve(ctx context.Context) {
	t := reserve.Tender{
		Pool: reserve.Pool{Config: d.o.Config, Nova: d.o.Nova, Cluster: d.o.Cluster, Now: d.clock.Now},
		Log:  d.o.Log, Record: d.record, Recovering: d.recovering,
	}
	t.Run(ctx, d.o.ReserveEvery, d.clock)
}

// recovering tells whether a recovery job runs.
func (d *Daemon) recovering() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.jobs) > 0
}

// segments resolves the configured segments, asking Nova for the aggregates only when a
// segment is defined by one.
func (d *Daemon) segments(ctx context.Context) (config.Segments, error) {
	return d.o.Config.ReadSegments(ctx, openstack.AggregateHostsOf(d.o.Nova))
}
