package evacd

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/computeha/computeha/crm"
	"github.com/computeha/computeha/internal/config"
	"github.com/computeha/computeha/internal/evacstate"
	"github.com/computeha/computeha/internal/evidence"
	"github.com/computeha/computeha/internal/health"
	"github.com/computeha/computeha/internal/history"
	"github.com/computeha/computeha/internal/maintenance"
	"github.com/computeha/computeha/internal/recovery"
)

// The health loop judges every configured compute host each health interval and carries out
// what its responder (health.Responder) says: the responses to each confirmed change of a
// host's state, and what time brings to them (a host back confirmed to Pacemaker, a host left
// unclean fenced).

// Observer gathers the raw health observations of every host at one instant.
type Observer interface {
	Observe(ctx context.Context) (health.Observations, error)
}

// ObserverFunc adapts a function to Observer.
type ObserverFunc func(ctx context.Context) (health.Observations, error)

// Observe calls f.
func (f ObserverFunc) Observe(ctx context.Context) (health.Observations, error) { return f(ctx) }

// Fencer is what the health loop asks of Pacemaker's fencer (crm.Client has it).
type Fencer interface {
	Fence(ctx context.Context, node string, action crm.FenceAction, timeout time.Duration) error
	RemoteConnection(ctx context.Context, node string) (string, error)
	FenceRemote(ctx context.Context, node, where string, timeout time.Duration) error
	ConfirmFenced(ctx context.Context, node string) error
}

var _ Fencer = (*crm.Client)(nil)

// Judge turns observations into the evidence and the raw (unconfirmed) decision about host.
type Judge func(cfg *config.Health, obs health.Observations, host string) (health.Evidence, health.Decision)

// DefaultJudge is health.Collect followed by health.Decide.
func DefaultJudge(cfg *config.Health, obs health.Observations, host string) (health.Evidence, health.Decision) {
	ev := health.Collect(cfg, obs, host)
	return ev, health.Decide(cfg, ev)
}

// stateNames are the health states as the metrics label them.
var stateNames = func() []string {
	var out []string
	for _, st := range health.States() {
		out = append(out, string(st))
	}
	return out
}()

// healthLoop runs the health responses of one daemon.
type healthLoop struct {
	d       *Daemon
	cfg     *config.Health
	obs     Observer
	fencer  Fencer
	judge   Judge
	resp    *health.Responder
	fenceTO time.Duration

	wg sync.WaitGroup // responses in flight

	segs   config.Segments // cached: aggregate-defined segments cost a Nova call
	segsAt time.Time
	// seen are the hosts the evidence has named since the daemon started: a host that
	// joined by gossip stays judged when the evidence of it goes (its record file removed,
	// its views dropped), which is how it looks when it dies.
	seen map[string]bool
}

func newHealthLoop(d *Daemon) *healthLoop {
	cfg := &d.o.Config.Health
	l := &healthLoop{
		d: d, cfg: cfg, obs: d.o.Observer, fencer: d.o.Fencer, judge: d.o.Judge, resp: health.NewResponder(cfg),
		fenceTO: d.o.FenceTimeout,
	}
	if l.fencer == nil {
		l.fencer, _ = d.o.Cluster.(Fencer)
	}
	if l.obs == nil {
		src := evidence.Sources{Cluster: d.o.Cluster, Storage: &evidence.Storage{}, Now: d.clock.Now, Log: d.o.Log}
		l.obs = ObserverFunc(func(ctx context.Context) (health.Observations, error) { return evidence.Gather(ctx, src, cfg) })
	}
	if l.judge == nil {
		l.judge = DefaultJudge
	}
	if l.fenceTO <= 0 {
		// fence_hostcheck gathers evidence up to Decide before the power device runs.
		l.fenceTO = cfg.Decide + time.Minute
	}
	return l
}

// startHealth runs the health loop when the configuration enables it.
func (d *Daemon) startHealth(ctx context.Context, wg *sync.WaitGroup) {
	if !d.o.Config.Health.Enabled() {
		return
	}
	l := newHealthLoop(d)
	if l.fencer == nil {
		d.o.Log.Warn("health checks are configured but Pacemaker's fencer is not reachable: health responses are off")
		return
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		l.run(ctx)
	}()
}

// run judges every host each interval until ctx ends, then waits for responses in flight.
func (l *healthLoop) run(ctx context.Context) {
	defer l.wg.Wait()
	every := l.cfg.Interval
	if every <= 0 {
		every = config.DefaultHealthInterval
	}
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		l.tick(ctx)
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// computeHosts lists the hosts (Pacemaker node names) whose Nova hosts are computes of a
// segment, in name order: those health.hosts lists, and those that joined by gossip, as the
// evidence names them now or did before.
func (l *healthLoop) computeHosts(ctx context.Context, obs health.Observations) []string {
	now := l.d.clock.Now()
	if now.Sub(l.segsAt) > time.Minute {
		// Without waiting out a Nova outage: the last known segments serve meanwhile.
		segs, err := l.d.segments(ctx)
		if err != nil {
			// Looked at again in 10 s, not every interval: Nova may be down for a while.
			l.d.o.Log.Warn("health: resolving the segments failed", "error", err)
			l.segsAt = now.Add(-50 * time.Second)
		} else {
			l.segs, l.segsAt = segs, now
		}
	}
	if l.seen == nil {
		l.seen = map[string]bool{}
	}
	for _, h := range obs.Hosts(l.cfg) {
		if !l.seen[h] && !l.cfg.Listed(h) {
			l.d.o.Log.Info("health: a host not listed in health.hosts joined", "host", h)
		}
		l.seen[h] = true
	}
	var out []string
	for _, h := range slices.Sorted(maps.Keys(l.seen)) {
		if _, ok := l.segs.Of(l.d.names.ByNode(h).NovaHost); ok {
			out = append(out, h)
		}
	}
	return out
}

// tick judges every host once and starts the responses due.
func (l *healthLoop) tick(ctx context.Context) {
	start := time.Now()
	obs, err := l.obs.Observe(ctx)
	observed := time.Since(start)
	if err != nil {
		l.d.o.Log.Warn("health: gathering the evidence failed; no decision this round", "error", err,
			"after", observed.Round(time.Millisecond))
		return
	}
	hosts := l.computeHosts(ctx, obs)
	if len(hosts) == 0 {
		return
	}
	st, err := l.d.o.Cluster.Status(ctx)
	if err != nil {
		l.d.o.Log.Warn("health: reading the cluster status failed; no decision this round", "error", err,
			"after", time.Since(start).Round(time.Millisecond))
		return
	}
	// A round that takes several intervals delays every decision: say where the time went.
	if took := time.Since(start); took > slowRound {
		l.d.o.Log.Warn("health: a slow round", "took", took.Round(time.Millisecond),
			"evidence", observed.Round(time.Millisecond), "cluster_status", (took - observed).Round(time.Millisecond))
	}
	// computeha's maintenance windows, from the CIB: crm_mon leaves out the attributes of an
	// offline node, and a host that failed in maintenance must still be known to be in it.
	cib, err := l.d.o.Cluster.CIB(ctx)
	if err != nil {
		l.d.o.Log.Warn("health: reading the CIB failed; no decision this round", "error", err)
		return
	}
	windows := maintenance.Of(cib)
	now := l.d.clock.Now()
	for _, name := range hosts {
		l.judgeHost(ctx, now, name, obs, st, windows)
	}
}

// skipReason tells why the host's responses are suspended: Pacemaker's view of it, or a
// computeha maintenance window.
func skipReason(st *crm.Status, n crm.Node, known bool, w *maintenance.Window) string {
	switch {
	case st.MaintenanceMode:
		return "the cluster is in maintenance mode"
	case known && n.Maintenance:
		return "the node is in maintenance"
	case known && n.Standby:
		return "the node is in standby"
	case w != nil:
		return "the host is " + w.Describe()
	}
	return ""
}

// judgeHost takes the round's look at one host to the responder and carries out what it says.
func (l *healthLoop) judgeHost(ctx context.Context, now time.Time, name string, obs health.Observations, st *crm.Status, windows map[string]maintenance.Window) {
	node, known := st.Node(name)
	look := health.Look{Now: now, Quorate: st.Quorate, Known: known, Unclean: known && node.Unclean}
	var win *maintenance.Window
	if w, ok := windows[name]; ok {
		win = &w
	}
	if look.Suspended = skipReason(st, node, known, win); look.Suspended == "" {
		look.Evidence, look.Raw = l.judge(l.cfg, obs, name)
		look.Evidence.Host = name
	}
	for _, a := range l.resp.Step(name, look) {
		l.do(ctx, a)
	}
}

// do carries out one action of the responder.
func (l *healthLoop) do(ctx context.Context, a health.Action) {
	name, dec := a.Host, a.Decision
	switch a.Kind {
	case health.ActSuspend:
		l.d.setHostState(name, "")
		l.record(ctx, name, history.KindMaintenance, "health responses for "+name+" suspended: "+a.Why,
			history.Reason{Code: "health-suspended", Text: a.Why}, nil)
	case health.ActResume:
		l.record(ctx, name, history.KindMaintenance, "health responses for "+name+" resumed",
			history.Reason{Code: "health-resumed", Text: "no longer: " + a.Why}, nil)
		if dec.State != "" {
			l.d.setHostState(name, string(dec.State))
		}
	case health.ActJudged:
		l.d.o.Log.Info("health: judgement", "host", name, "state", dec.State, "response", dec.Response, "reason", dec.Reason.Text)
	case health.ActDecide:
		l.recordDecision(ctx, a.Previous, dec, a.Evidence)
		l.d.setHostState(name, string(dec.State))
	case health.ActNoQuorum:
		l.record(ctx, name, history.KindGuard, "not acting on "+name+" ("+string(dec.State)+"): this partition has no quorum",
			history.Reason{Code: "quorum-lost", Text: "only a partition with quorum acts"}, nil)
	case health.ActEnable:
		l.async(ctx, a, func(ctx context.Context) error { return l.enable(ctx, name) })
	case health.ActFence, health.ActEscalate:
		l.async(ctx, a, func(ctx context.Context) error { return l.fence(ctx, name, a.Why) })
	case health.ActMigrate:
		l.async(ctx, a, func(ctx context.Context) error { return l.migrate(ctx, name, dec) })
	case health.ActDisable:
		l.alert(ctx, name, dec)
		l.async(ctx, a, func(ctx context.Context) error { return l.disable(ctx, name, dec.DisableReason()) })
	case health.ActAlert:
		l.alert(ctx, name, dec)
	case health.ActConfirm:
		l.async(ctx, a, func(ctx context.Context) error { return l.confirm(ctx, name, a.Episode, a.Evidence) })
	case health.ActRestartTimeoutClean:
		l.record(ctx, name, history.KindAlert, name+" still unreachable by Pacemaker after the restart timeout, but Pacemaker does not want it fenced: not fencing",
			history.Reason{Code: "restart-timeout-clean", Text: dec.Reason.Text}, nil)
	case health.ActDeadNotFenced:
		l.record(ctx, name, history.KindAlert,
			fmt.Sprintf("%s judged dead %s ago and still not fenced: Pacemaker stopped trying (stonith-max-attempts?), asking for the fencing", name, health.DeadFenceAfter),
			history.Reason{Code: "dead-not-fenced", Text: a.Why}, nil)
		l.async(ctx, a, func(ctx context.Context) error { return l.fence(ctx, name, a.Why) })
	}
}

// slowRound is how long a round of the health loop may take before it is logged.
const slowRound = 5 * time.Second

// async runs a response without holding up the loop and reports its end to the responder,
// which asks again after health.Retry for a failed one whose decision still holds.
func (l *healthLoop) async(ctx context.Context, a health.Action, fn func(ctx context.Context) error) {
	l.wg.Go(func() {
		err := fn(ctx)
		if ctx.Err() != nil {
			return // the daemon stops: no round follows
		}
		if err != nil {
			l.d.o.Log.Warn("health response failed; retrying later", "host", a.Host, "error", err, "retry_in", health.Retry)
		}
		l.resp.Done(l.d.clock.Now(), a, err)
	})
}

// wait waits for the responses in flight (tests).
func (l *healthLoop) wait() { l.wg.Wait() }

func (l *healthLoop) record(ctx context.Context, host string, kind history.Kind, summary string, reason history.Reason, details any) {
	l.d.record(ctx, history.Event{Host: host, Kind: kind, Summary: summary, Reason: reason, Details: history.DetailsOf(details)})
}

func (l *healthLoop) recordDecision(ctx context.Context, prev, dec health.Decision, ev health.Evidence) {
	l.d.o.Log.Info("health: state changed", "host", dec.Host, "state", dec.State, "was", prev.State,
		"response", dec.Response, "reason", dec.Reason.Text)
	l.record(ctx, dec.Host, history.KindDecision, dec.Summary(),
		history.Reason{Code: history.ReasonCode(dec.Reason.Code), Text: dec.Reason.Text}, dec.Details(prev.State, ev))
}

func (l *healthLoop) alert(ctx context.Context, name string, dec health.Decision) {
	l.d.o.Log.Warn("health: host needs attention", "host", name, "state", dec.State, "response", dec.Response, "reason", dec.Reason.Text)
	l.record(ctx, name, history.KindAlert, fmt.Sprintf("%s is %s", name, dec.State),
		history.Reason{Code: history.ReasonCode(dec.Reason.Code), Text: dec.Reason.Text}, nil)
}

// fence has the host fenced and waits for the answer. The level Pacemaker runs starts with
// fence_hostcheck, which allows it only on the same evidence, and ends with fence_nova, whose
// mark starts the evacuation.
//
// A remote node whose connection Pacemaker still holds (a host that lost only its storage
// network, say) is fenced by Pacemaker itself, its connection failed: asked of the fencer
// directly, the fencing would be followed by Pacemaker's own once the power-off dropped the
// connection. Any other host is asked of the fencer, with the action Pacemaker's own fencing
// of it asks for (stonith-action), so that a request of Pacemaker's under way merges with it.
func (l *healthLoop) fence(ctx context.Context, name, why string) error {
	where, err := l.fencer.RemoteConnection(ctx, name)
	if err != nil {
		l.d.o.Log.Warn("health: reading where the host's connection runs failed; asking the fencer", "host", name, "error", err)
	}
	if where != "" {
		l.record(ctx, name, history.KindFencing, fmt.Sprintf("asking Pacemaker to fence %s (its connection on %s failed)", name, where),
			history.Reason{Code: "health-fence", Text: why}, nil)
		err = l.fencer.FenceRemote(ctx, name, where, l.fenceTO)
	} else {
		action := crm.FenceOff
		if cib, cerr := l.d.o.Cluster.CIB(ctx); cerr != nil {
			l.d.o.Log.Warn("health: reading the cluster's fencing action failed; fencing with off", "host", name, "error", cerr)
		} else {
			action = cib.FenceAction()
		}
		l.record(ctx, name, history.KindFencing, fmt.Sprintf("asking Pacemaker to fence %s (%s)", name, action),
			history.Reason{Code: "health-fence", Text: why}, nil)
		err = l.fencer.Fence(ctx, name, action, l.fenceTO)
	}
	if err != nil {
		l.record(ctx, name, history.KindFencing, "fencing of "+name+" requested by the health check failed",
			history.Reason{Code: "health-fence-failed", Text: err.Error()}, nil)
		return fmt.Errorf("fence %s: %w", name, err)
	}
	l.record(ctx, name, history.KindFencing, "fencing of "+name+" requested by the health check succeeded",
		history.Reason{Code: "health-fenced", Text: why}, nil)
	return nil
}

// disable alerts and stops scheduling to the host. A service already disabled is left as it
// is: an operator's reason (or an evacuation's) is not overwritten.
func (l *healthLoop) disable(ctx context.Context, name, reason string) error {
	nova, host := l.d.o.Nova, l.d.names.ByNode(name).NovaHost
	svc, err := nova.FindComputeService(ctx, host)
	if err != nil {
		return fmt.Errorf("compute service of %s: %w", l.d.names.ByNova(host), err)
	}
	if !svc.Enabled() {
		l.d.o.Log.Info("health: compute service already disabled; left so", "host", name, "nova_host", host, "reason", svc.DisabledReason)
		return nil
	}
	if _, err := nova.DisableService(ctx, svc.ID, reason); err != nil {
		return fmt.Errorf("disable %s: %w", l.d.names.ByNova(host), err)
	}
	l.record(ctx, name, history.KindDecision, "disabled "+name+" in Nova", history.Reason{Code: "health-disabled", Text: reason}, novaHostDetails(name, host))
	return nil
}

// novaHostDetails is the details of an event about node naming its Nova host, when the two
// names differ: the history names nodes.
func novaHostDetails(node, host string) any {
	if node == host {
		return nil
	}
	return map[string]string{"nova_host": host}
}

// enable undoes the disable response once the host runs again: only a service disabled with
// its reason, not forced down, and not under evacuation.
func (l *healthLoop) enable(ctx context.Context, name string) error {
	nova, host := l.d.o.Nova, l.d.names.ByNode(name).NovaHost
	svc, err := nova.FindComputeService(ctx, host)
	if err != nil {
		return fmt.Errorf("compute service of %s: %w", l.d.names.ByNova(host), err)
	}
	if svc.Enabled() || !health.UndoneWhenRunning(svc.DisabledReason) {
		return nil
	}
	if svc.ForcedDown {
		// Fenced and evacuated meanwhile: fence_nova's unfencing and the nova-compute agent
		// bring it back when its evacuations are done.
		return nil
	}
	if st, err := l.d.marks.Get(ctx, name); err != nil {
		return err
	} else if st.Blocking() {
		return nil
	}
	if _, err := nova.EnableService(ctx, svc.ID); err != nil {
		return fmt.Errorf("enable %s: %w", l.d.names.ByNova(host), err)
	}
	l.record(ctx, name, history.KindDecision, "enabled "+name+" again in Nova: it is running",
		history.Reason{Code: "health-enabled", Text: "was disabled: " + svc.DisabledReason}, novaHostDetails(name, host))
	return nil
}

// confirm tells Pacemaker that a host it still shows unclean, but whose evidence says it is
// running, needs no fencing. Not when a device fenced it since the trouble began (Pacemaker
// did its job), nor while the host's recovery is not over or began in this trouble (it was
// fenced for real, and the rest is Pacemaker's and the evacuation's business). The "done" mark
// of a recovery from before the trouble is history: a host recovered once stays confirmable.
// A confirmation by hand (this loop's own, or an operator's) ran no device and marked nothing
// for evacuation: a host unclean again after one is confirmed again.
func (l *healthLoop) confirm(ctx context.Context, name string, episode time.Time, ev health.Evidence) error {
	evs, err := l.d.o.Cluster.FencingHistory(ctx, name)
	if err != nil {
		return fmt.Errorf("fencing history of %s: %w", name, err)
	}
	// crm_mon's full history too: stonith_admin --history lists one operation per target,
	// not always the latest.
	if st, err := l.d.o.Cluster.Status(ctx); err == nil {
		evs = append(evs, st.Fencing...)
	}
	for _, e := range evs {
		if e.Target == name && e.Succeeded() && !e.Manual() && !e.Completed.Before(episode) {
			return nil
		}
	}
	st, err := l.d.marks.Get(ctx, name)
	if err != nil {
		return err
	}
	if st.Blocking() || (st.Phase != evacstate.None && !st.Since.Before(episode)) {
		return nil
	}
	why := fmt.Sprintf("%s is back (management network %s, storage heartbeat %s, cluster service %s) but Pacemaker still shows it unclean, with no successful fencing since %s; no fence device runs",
		name, ev.Networks[l.cfg.ManagementNetwork()], ev.Storage, ev.Service, episode.UTC().Format(time.RFC3339))
	if err := l.fencer.ConfirmFenced(ctx, name); err != nil {
		l.record(ctx, name, history.KindFencing, "confirming "+name+" to Pacemaker failed",
			history.Reason{Code: "confirm-fenced-failed", Text: err.Error()}, nil)
		return fmt.Errorf("confirm %s: %w", name, err)
	}
	l.d.o.Log.Info("health: confirmed a recovered host to Pacemaker", "host", name, "reason", why)
	l.record(ctx, name, history.KindFencing, "confirmed "+name+" to Pacemaker so it reconnects it",
		history.Reason{Code: "confirm-fenced", Text: why}, nil)
	return nil
}

// migrate moves the host's HA VMs to other hosts of its segment through the recovery engine
// (live-migrated when they run, as each VM's recovery class says), then disables the host.
// The host is alive: nothing is forced down and nothing is evacuated.
func (l *healthLoop) migrate(ctx context.Context, name string, dec health.Decision) error {
	d := l.d
	host := d.names.ByNode(name)
	var inc *history.Incident
	if d.o.History != nil {
		failure := history.Event{
			Host: name, Kind: history.KindFailure, Summary: fmt.Sprintf("%s lost %s: live-migrating its HA VMs", name, dec.LostNetworks()),
			Reason:  history.Reason{Code: history.ReasonCode(dec.Reason.Code), Text: dec.Reason.Text},
			Details: history.DetailsOf(novaHostDetails(name, host.NovaHost)),
		}
		var err error
		if inc, err = d.o.History.OpenIncident(ctx, name, failure); err != nil {
			d.o.Log.Warn("opening an incident failed", "error", err)
		}
	}
	job := recovery.Job{Source: host, Situation: recovery.HostDegraded}
	if inc != nil {
		job.Recorder = inc
	}
	rep, err := d.engine.Run(ctx, job)
	if err != nil {
		l.closeIncident(ctx, inc, history.OutcomeFailed, "moving the VMs off "+name+" stopped: "+err.Error())
		return err
	}
	outcome, summary := history.OutcomeRecovered, "every HA VM of "+name+" moved"
	if failed := rep.Count(recovery.Failed) + rep.Count(recovery.Unrecoverable); failed > 0 {
		outcome, summary = history.OutcomePartial, fmt.Sprintf("%d HA VMs of %s could not be moved", failed, name)
		l.record(ctx, name, history.KindAlert, summary, history.Reason{Code: "live-migration-failed"}, nil)
	}
	if err := l.disable(ctx, name, dec.MigrateReason()); err != nil {
		l.closeIncident(ctx, inc, history.OutcomePartial, summary+"; disabling it failed: "+err.Error())
		return err
	}
	l.closeIncident(ctx, inc, outcome, summary)
	return nil
}

func (l *healthLoop) closeIncident(ctx context.Context, inc *history.Incident, o history.Outcome, summary string) {
	if inc == nil {
		return
	}
	if err := inc.Close(ctx, o, summary, history.Reason{Code: "health-migrate"}); err != nil {
		l.d.o.Log.Warn("closing the incident failed", "error", err)
	}
}
