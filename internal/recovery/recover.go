package recovery

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sort"
	"time"

	"github.com/computeha/computeha/crm"
	"github.com/computeha/computeha/internal/config"
	"github.com/computeha/computeha/internal/evacstate"
	"github.com/computeha/computeha/internal/history"
	"github.com/computeha/computeha/internal/openstack"
	"github.com/computeha/computeha/internal/plan"
	"github.com/computeha/computeha/internal/policy"
	"github.com/computeha/computeha/internal/reserve"
)

// hostState is a segment host as the plan saw it.
type hostState = plan.Host

func (x *run) run(ctx context.Context) (Report, error) {
	// fence_nova forced the source down and disabled it already, unless the host was marked
	// by something else, or the reads are older than its fencing: make sure, beside the
	// moves. An evacuation Nova refuses because it still sees the source up forces it down
	// again itself.
	fenced := make(chan error, 1)
	if x.job.Situation == HostFenced {
		go func() { fenced <- x.fenceInNova(ctx) }()
	} else {
		fenced <- nil
	}
	defer func() {
		if err := <-fenced; err != nil && ctx.Err() == nil {
			x.e.log.Warn("taking the fenced host out of Nova failed", "host", x.job.Source.Node, "error", err)
		}
	}()
	moves := x.classify(ctx)
	x.mu.Lock()
	x.moves = moves
	x.mu.Unlock()
	if err := x.plan(ctx, moves); err != nil {
		return Report{}, err
	}
	x.watch = newServerWatch(x.e.o.Poll, x.e.clock, func(ctx context.Context, host string) (out []openstack.Server, err error) {
		err = x.e.nova(ctx, "list servers", func(ctx context.Context) (err error) {
			out, err = x.e.o.Nova.ServersOnHost(ctx, host)
			return err
		})
		return out, err
	})
	x.watch.migs = func(ctx context.Context) (out []openstack.Migration, err error) {
		err = x.e.nova(ctx, "list migrations", func(ctx context.Context) (err error) {
			// Nova's clock may differ from ours: a minute of margin.
			out, err = x.e.o.Nova.Migrations(ctx, openstack.MigrationFilter{Host: x.job.Source.NovaHost, Type: "evacuation", ChangedSince: x.r.At.Add(-time.Minute)})
			return err
		})
		return out, err
	}
	active := 0
	for _, m := range moves {
		if m.report.Result == "" {
			x.includeTarget(m)
			active++
		}
	}
	x.step(fmt.Sprintf("%s %d VMs", x.verb(), active))
	tiers := x.tiers(moves)
	released := make(chan struct{})
	for i, tier := range tiers {
		for _, m := range tier {
			go x.execute(ctx, m)
		}
		if i == 0 {
			go func() { defer close(released); x.release(ctx) }()
		}
		if i < len(tiers)-1 {
			x.awaitTier(ctx, i, tier, tiers[i+1])
		}
	}
	rep := Report{}
	for _, m := range moves {
		<-m.ended
		rep.VMs = append(rep.VMs, m.report)
	}
	<-released
	return rep, ctx.Err()
}

// verb says what the moves of this recovery are, for the daemon's health and log.
func (x *run) verb() string {
	switch x.job.Situation {
	case HostFenced:
		return "evacuating"
	case VMFailed:
		return "restarting"
	case VMResume:
		return "resuming"
	case VMRelocate:
		return "moving failing VMs off"
	}
	return "moving off"
}

// fenceInNova makes sure Nova takes the fenced source down and schedules nothing to it:
// fence_nova did both already, unless the host was marked by something else.
func (x *run) fenceInNova(ctx context.Context) error {
	nova, svc := x.e.o.Nova, x.r.Service
	if !svc.ForcedDown {
		if err := x.e.nova(ctx, "force down", func(ctx context.Context) error { _, err := nova.ForceDown(ctx, svc.ID); return err }); err != nil {
			return err
		}
	}
	if svc.Enabled() {
		reason := fmt.Sprintf("%s evacuated by computeha at %s", evacstate.DisabledReasonPrefix, x.e.clock.Now().UTC().Format(time.RFC3339))
		if err := x.e.nova(ctx, "disable", func(ctx context.Context) error { _, err := nova.DisableService(ctx, svc.ID, reason); return err }); err != nil {
			return err
		}
	}
	return nil
}

// record keeps an event of the recovery, about the source host unless e says otherwise.
// Until the first moves are sent, records are held and written together right after: each
// durable write costs milliseconds, and a hundred of them would delay the first request.
func (x *run) record(ctx context.Context, kind history.Kind, summary string, reason Reason, details any) {
	e := history.Event{Time: x.e.clock.Now(), Host: x.job.Source.Node, Kind: kind, Summary: summary, Reason: reason, Details: history.DetailsOf(details)}
	if x.hold(func() { x.held = append(x.held, e) }) {
		return
	}
	if err := x.job.Recorder.Record(ctx, e); err != nil {
		x.e.log.Warn("recording history failed", "error", err, "summary", summary)
	}
}

// recordEnded records a move that ended before it began (a VM left, or that cannot be
// placed), held like the events until the first moves are sent.
func (x *run) recordEnded(ctx context.Context, m *move, res history.MoveResult, errText string) {
	mv := history.Move{
		VMID: m.srv.ID, VMName: m.srv.Name, Project: m.srv.ProjectID,
		From: x.job.Source.Node, Method: string(m.report.Method), Start: x.e.clock.Now(),
	}
	write := func(ctx context.Context) {
		id, err := x.job.Recorder.StartMove(ctx, mv)
		if err == nil {
			err = x.job.Recorder.FinishMove(ctx, id, history.MoveOutcome{Result: res, Error: errText, End: mv.Start})
		}
		if err != nil {
			x.e.log.Warn("recording a move failed", "vm", mv.VMID, "error", err)
		}
	}
	if x.hold(func() { x.heldMoves = append(x.heldMoves, write) }) {
		return
	}
	write(ctx)
}

// hold runs keep, under the lock, while records are held, and says whether it did.
func (x *run) hold(keep func()) bool {
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.holding {
		keep()
	}
	return x.holding
}

// release writes what was held, in one transaction for the events, and records directly from
// then on.
func (x *run) release(ctx context.Context) {
	x.mu.Lock()
	events, moves := x.held, x.heldMoves
	x.held, x.heldMoves, x.holding = nil, nil, false
	x.mu.Unlock()
	if err := x.job.Recorder.RecordAll(ctx, events); err != nil {
		x.e.log.Warn("recording history failed", "error", err, "events", len(events))
	}
	for _, w := range moves {
		w(ctx)
	}
}

// novaTarget is the details of a decision naming a target, when its Nova name is not its
// node's: the history names nodes.
func (x *run) novaTarget(target string) any {
	h := x.names.ByNova(target)
	if target == "" || h.Node == target {
		return nil
	}
	return map[string]string{"nova_host": target}
}

// sourcePolicyView is what the policy needs of the source host: its aggregates, availability
// zone and cells.
func (x *run) sourcePolicyView() (aggs []string, az string, cells []string) {
	return policyView(x.cfg(), x.r, x.job.Source)
}

func policyView(cfg *config.Config, r *Reads, source Host) (aggs []string, az string, cells []string) {
	for _, a := range r.Aggregates {
		if slices.Contains(a.Hosts, source.NovaHost) {
			aggs = append(aggs, a.Name)
			if a.AvailabilityZone != "" {
				az = a.AvailabilityZone
			}
		}
	}
	cells = cfg.Cells.Of(source.NovaHost, openstack.HostsByAggregate(r.Aggregates))
	return aggs, az, cells
}

// Decide is the policy's decision on server s of source, with what r read of the source's
// aggregates: whether it is an HA VM, and why.
func (e *Engine) Decide(r *Reads, source Host, s openstack.Server) policy.Decision {
	aggs, az, cells := policyView(e.o.Config, r, source)
	return e.policy.Decide(PolicyVM(s, aggs, az, cells))
}

// IOError is what the policy says to do about server s of source, which an I/O error paused.
func (e *Engine) IOError(r *Reads, source Host, s openstack.Server) policy.IOErrorDecision {
	aggs, az, cells := policyView(e.o.Config, r, source)
	return e.policy.IOError(PolicyVM(s, aggs, az, cells))
}

// PolicyVM is the policy's view of a server on a host with the given aggregates, availability
// zone and cells.
func PolicyVM(s openstack.Server, aggs []string, az string, cells []string) policy.VM {
	if s.AvailabilityZone != "" {
		az = s.AvailabilityZone
	}
	return policy.VM{
		ID: s.ID, Name: s.Name, ProjectID: s.ProjectID, AvailabilityZone: az, Cells: cells,
		Aggregates: aggs, FlavorExtraSpecs: s.Flavor.ExtraSpecs, ImageProperties: s.ImageProperties, Metadata: s.Metadata, Tags: s.Tags,
	}
}

// localDisks tells whether the server keeps data on its host's disks: a root disk made from an
// image, an ephemeral disk.
func localDisks(s openstack.Server) bool { return s.ImageID != "" || s.Flavor.EphemeralGB > 0 }

// classify decides, for every server of the source, whether and how it is recovered. A VM
// left alone gets its report (and its records) at once.
func (x *run) classify(ctx context.Context) []*move {
	aggs, az, cells := x.sourcePolicyView()
	inFlight := x.inFlight()
	var out []*move
	for _, s := range x.r.Servers {
		if x.job.VMs != nil && !x.job.VMs[s.ID] {
			continue
		}
		m := &move{srv: s, id: s.ID, ended: make(chan struct{})}
		m.report = VMReport{Server: s, ID: s.ID}
		out = append(out, m)
		pv := PolicyVM(s, aggs, az, cells)
		dec := x.e.policy.Decide(pv)
		if !dec.HA {
			x.leave(ctx, m, Reason{Code: CodeNoHA, Text: fmt.Sprintf("%s: %s", dec.Level, dec.Reason)}, "no HA")
			continue
		}
		cls := x.e.policy.Class(pv)
		m.class = cls.Value
		if len(cls.Ignored) > 0 {
			x.e.log.Warn("ignored recovery class values", "vm", s.ID, "ignored", cls.Ignored)
		}
		name, why := x.choose(s, cls)
		if why.Code != "" && name == None {
			m.method = x.e.methods[None]
			x.leave(ctx, m, why, string(why.Code))
			continue
		}
		if why.Code != "" {
			x.record(ctx, history.KindDecision, fmt.Sprintf("%s %s instead of %s", m.label(), name, cls.Value), why, nil)
		}
		m.method = x.e.methods[name]
		m.want = wantStatus(name, s)
		if x.job.Situation == VMRelocate {
			// Stopped by Nova after its crash, not by its owner: it must run.
			m.want = "ACTIVE"
		}
		if name == Evacuate {
			_, busy := inFlight[s.ID]
			m.seen = priorEvacuations(x.r.Migrations, s.ID, busy)
		}
		if mig, ok := inFlight[s.ID]; ok && migrationType(name) == mig.Type {
			m.inFlight = true
			m.target = mig.DestCompute
			x.record(ctx, history.KindDecision, fmt.Sprintf("%s already moving in Nova (%s %s)", m.label(), mig.Type, mig.Status),
				Reason{Code: CodeResumed, Text: "a recovery before this one asked for it"}, nil)
		}
		m.pv = plan.VM{
			ID: s.ID, Name: s.Name, VCPUs: int64(s.Flavor.VCPUs), RAMMB: int64(s.Flavor.RAMMB),
			DiskGB: int64(s.Flavor.DiskGB + s.Flavor.EphemeralGB), Priority: x.e.policy.Priority(pv).Value,
			Group: x.groupOf(s.ID),
		}
	}
	return out
}

// choose is the method for a VM of class cls in this recovery's situation; a non-empty reason
// says why it is not the class's plain meaning (None with a reason: the VM is left).
func (x *run) choose(s openstack.Server, cls policy.ClassDecision) (MethodName, Reason) {
	c := cls.Value
	if c == config.ClassNone {
		return None, Reason{Code: CodeClassNone, Text: cls.Reason}
	}
	switch x.job.Situation {
	case VMFailed:
		// Its host runs: the VM runs again where it is, whatever its class says of moves.
		return Restart, Reason{}
	case VMResume:
		return Resume, Reason{}
	case VMRelocate:
		// It fails where it is: it runs elsewhere, started from its disk.
		return ColdMigrate, Reason{}
	}
	recreateOK := c == config.ClassRecreateLosingLocalData || c == config.ClassRecreate && !localDisks(s)
	if (c == config.ClassRecreate || c == config.ClassRecreateLosingLocalData) && recreateOK {
		return Recreate, Reason{}
	}
	var fallback Reason
	if c == config.ClassRecreate {
		fallback = Reason{Code: CodeLocalDataKept, Text: "it keeps data on its host's disks, which recreating it would lose (" + cls.Reason + "; say " +
			string(config.ClassRecreateLosingLocalData) + " to recreate it anyway)"}
	}
	switch x.job.Situation {
	case HostFenced:
		if s.Status == "ERROR" && x.cfg().Evacuation.ErrorVMs == config.ErrorVMsSkip {
			return None, Reason{Code: CodeErrorVMSkipped, Text: "evacuation.error_vms is skip"}
		}
		return Evacuate, fallback
	default:
		running := s.Status == "ACTIVE" || s.Status == "PAUSED"
		switch {
		case running && c != config.ClassColdMigrate:
			return LiveMigrate, fallback
		case s.Status == "ACTIVE" || s.Status == "SHUTOFF":
			return ColdMigrate, fallback
		}
		return None, Reason{Code: CodeNotMovable, Text: fmt.Sprintf("it is %s: a running host gives up only running or stopped VMs", s.Status)}
	}
}

// wantStatus is the status a VM ends in after method: as it was, a stopped one stays stopped,
// and one in ERROR comes back running.
func wantStatus(method MethodName, s openstack.Server) string {
	switch {
	case method == LiveMigrate && s.Status == "PAUSED":
		return "PAUSED"
	case (method == Evacuate || method == ColdMigrate) && s.Status == "SHUTOFF":
		return "SHUTOFF"
	}
	return "ACTIVE"
}

// migrationType is the type of Nova's migration records of a method ("" when it leaves none).
func migrationType(m MethodName) string {
	switch m {
	case Evacuate:
		return "evacuation"
	case LiveMigrate:
		return "live-migration"
	case ColdMigrate:
		return "migration"
	}
	return ""
}

var terminalMigration = []string{"done", "completed", "confirmed", "finished", "error", "failed", "cancelled", "reverted"}

// inFlight maps each server of the source that Nova is moving away to that migration.
func (x *run) inFlight() map[string]openstack.Migration {
	out := map[string]openstack.Migration{}
	for _, m := range x.r.Migrations {
		if m.SourceCompute != x.job.Source.NovaHost || slices.Contains(terminalMigration, m.Status) {
			continue
		}
		if _, seen := out[m.ServerID]; !seen { // newest first
			out[m.ServerID] = m
		}
	}
	return out
}

// groupOf is the server group of a server ("" when none).
func (x *run) groupOf(id string) string {
	for _, g := range x.r.Groups {
		if slices.Contains(g.Members, id) {
			return g.ID
		}
	}
	return ""
}

// leave records that m is not moved, and why.
func (x *run) leave(ctx context.Context, m *move, why Reason, short string) {
	m.report.Result, m.report.Reason = Left, why
	if m.method != nil {
		m.report.Method = m.method.Name()
	}
	x.record(ctx, history.KindDecision, fmt.Sprintf("%s left on %s: %s", m.label(), x.job.Source.Node, short), why, nil)
	x.recordEnded(ctx, m, history.MoveSkipped, short+": "+why.Text)
	m.endedAt = x.e.clock.Now()
	close(m.ended)
}

// plan gives targets to the moves that need one, takes the reserved hosts the plan uses, and
// records every decision.
func (x *run) plan(ctx context.Context, moves []*move) error {
	p, byID, err := x.makePlan(moves)
	if p == nil || err != nil {
		return err
	}
	for _, w := range p.Preflight.Warnings {
		x.record(ctx, history.KindAlert, "capacity: "+w, Reason{Code: CodePreflight}, nil)
	}
	for _, r := range p.ReservedHostsUsed {
		if err := x.takeReserved(ctx, r); err != nil {
			return err
		}
	}
	for _, pm := range p.Moves {
		m := byID[pm.VM.ID]
		m.target = pm.Target
		x.record(ctx, history.KindDecision, fmt.Sprintf("%s goes to %s", m.label(), x.names.ByNova(pm.Target).Node),
			Reason{Code: codeOf(pm.Reason), Text: pm.Detail}, x.novaTarget(pm.Target))
		if pm.Degraded != "" {
			x.record(ctx, history.KindDecision, m.label()+": a soft server group policy is not followed", Reason{Code: CodeGroupDegraded, Text: pm.Degraded}, nil)
		}
	}
	for _, u := range p.Unplaced {
		m := byID[u.VM.ID]
		if u.Reason != plan.ReasonNoRoom {
			// A hard server group policy no host of the segment can follow: asking Nova
			// would only see it refused, or see the VM leave its segment.
			why := Reason{Code: codeOf(u.Reason), Text: u.Detail}
			x.record(ctx, history.KindAlert, fmt.Sprintf("%s cannot be recovered inside segment %s", m.label(), x.r.SegmentName), why, nil)
			m.report.Result, m.report.Reason, m.report.Method = Unrecoverable, why, m.method.Name()
			x.recordEnded(ctx, m, history.MoveFailed, u.Detail)
			m.endedAt = x.e.clock.Now()
			close(m.ended)
			continue
		}
		// No room in the segment: let Nova's scheduler try, inside its rules, rather than
		// leave the VM down.
		x.record(ctx, history.KindAlert, fmt.Sprintf("%s fits on no host of segment %s", m.label(), x.r.SegmentName),
			Reason{Code: codeOf(u.Reason), Text: u.Detail}, nil)
	}
	return nil
}

// makePlan plans targets for the moves that need one, changing nothing: nil when none does.
// byID finds each planned VM's move.
func (x *run) makePlan(moves []*move) (p *plan.Plan, byID map[string]*move, err error) {
	hosts := x.segmentHosts()
	var vms []plan.VM
	byID = map[string]*move{}
	for _, m := range moves {
		if m.report.Result != "" || !m.method.Placed() || m.inFlight {
			continue
		}
		vms = append(vms, m.pv)
		byID[m.srv.ID] = m
	}
	x.segHosts = hosts
	if len(vms) == 0 {
		return nil, byID, nil
	}
	p, err = plan.Make(plan.Input{
		FailedHost: x.job.Source.NovaHost,
		Segment:    plan.Segment{Name: x.r.SegmentName, RecoveryMethod: x.r.Segment.RecoveryMethod, Hosts: hosts},
		VMs:        vms, Groups: x.planGroups(moves, nil),
	})
	return p, byID, err
}

// segmentHosts is the segment's hosts as the hypervisors show them. The hosts being recovered
// are down, whatever Nova said when it was read: the reads may predate their fencing.
func (x *run) segmentHosts() []hostState {
	failing := x.failingNow()
	seg := x.r.Segment
	var out []hostState
	for _, name := range seg.Hosts {
		h := hostState{Name: name, Reserved: slices.Contains(seg.ReservedHosts, name) && !x.r.Used[name], Maintenance: x.r.Maintenance[name]}
		for _, hv := range x.r.Hypervisors {
			if hv.ServiceHost != name {
				continue
			}
			h.Enabled = hv.Status == "enabled"
			h.Withheld = h.Reserved && !h.Enabled && !evacstate.HeldInReserve(hv.DisabledReason)
			h.Up = hv.State == "up"
			h.FreeVCPUs = hv.Resources["VCPU"].Free()
			h.FreeRAMMB = hv.Resources["MEMORY_MB"].Free()
			h.FreeDiskGB = hv.Resources["DISK_GB"].Free()
		}
		if failing[name] || name == x.job.Source.NovaHost && x.job.Situation == HostFenced {
			h.Up = false
		}
		out = append(out, h)
	}
	return out
}

// planGroups is the plan's view of the server groups of the VMs being placed: where their
// other members run. targets overrides where some members go (a retry places one VM among
// moves already planned).
func (x *run) planGroups(moves []*move, targets map[string]string) map[string]plan.Group {
	out := map[string]plan.Group{}
	onSource := map[string]*move{}
	for _, m := range moves {
		onSource[m.srv.ID] = m
	}
	for _, g := range x.r.Groups {
		relevant := false
		for _, id := range g.Members {
			if _, ok := onSource[id]; ok {
				relevant = true
			}
		}
		if !relevant {
			continue
		}
		pg := plan.Group{Policy: plan.GroupPolicy(g.Policy), MaxPerHost: g.MaxServerPerHost, Members: map[string]int{}}
		for _, id := range g.Members {
			if h, ok := targets[id]; ok {
				if h != "" {
					pg.Members[h]++
				}
				continue
			}
			if _, ok := onSource[id]; ok {
				continue // being placed
			}
			if h := x.r.MemberHosts[id]; h != "" && h != x.job.Source.NovaHost {
				pg.Members[h]++
			}
		}
		out[g.ID] = pg
	}
	return out
}

// takeReserved enables a reserved host and records, on its node, that it is no longer reserved.
func (x *run) takeReserved(ctx context.Context, novaHost string) error {
	nova := x.e.o.Nova
	var svc openstack.Service
	if err := x.e.nova(ctx, "find reserved service", func(ctx context.Context) (err error) {
		svc, err = nova.FindComputeService(ctx, novaHost)
		return err
	}); err != nil {
		return err
	}
	if !svc.Enabled() {
		if err := x.e.nova(ctx, "enable reserved host", func(ctx context.Context) error { _, err := nova.EnableService(ctx, svc.ID); return err }); err != nil {
			return err
		}
	}
	h := x.names.ByNova(novaHost)
	if x.e.o.Cluster != nil {
		if err := x.e.o.Cluster.SetAttribute(ctx, h.Node, reserve.UsedAttribute, x.e.clock.Now().UTC().Format(time.RFC3339), crm.Permanent); err != nil {
			x.e.log.Warn("recording the reserved host's use failed", "host", h.Node, "nova_host", novaHost, "error", err)
		}
	}
	x.record(ctx, history.KindDecision, "reserved host "+h.Node+" taken into use", Reason{Code: CodeReservedHostUsed}, x.novaTarget(novaHost))
	return nil
}

// includeTarget makes the watch list where m may end.
func (x *run) includeTarget(m *move) {
	switch {
	case m.method.ByMigrations():
		x.watch.wantMigrations()
	case !m.method.Placed():
		x.watch.include(x.job.Source.NovaHost)
	case m.target == "":
		x.watch.include(x.r.Segment.Hosts...)
	default:
		x.watch.include(m.target)
	}
}

// tiers groups the moves to run by restart priority, highest first: one tier each when tiers
// are enabled, one tier of all otherwise (priorities then only order the requests).
func (x *run) tiers(moves []*move) [][]*move {
	var todo []*move
	for _, m := range moves {
		if m.report.Result == "" {
			todo = append(todo, m)
		}
	}
	sort.SliceStable(todo, func(i, j int) bool { return todo[i].pv.Priority > todo[j].pv.Priority })
	if !x.cfg().Evacuation.Tiers.Enabled || len(todo) == 0 {
		return [][]*move{todo}
	}
	var out [][]*move
	for i, m := range todo {
		if i == 0 || m.pv.Priority != todo[i-1].pv.Priority {
			out = append(out, nil)
		}
		m.tier = len(out) - 1
		out[len(out)-1] = append(out[len(out)-1], m)
	}
	return out
}

// awaitTier holds the next tier back until every VM of tier has ended and, if recovered, has
// been ACTIVE for the ready delay; or until the tier timeout.
func (x *run) awaitTier(ctx context.Context, i int, tier, next []*move) {
	t := x.cfg().Evacuation.Tiers
	start := x.e.clock.Now()
	x.step(fmt.Sprintf("tier %d (restart priority %d, %d VMs) running; tier %d waits", i+1, tier[0].pv.Priority, len(tier), i+2))
	for {
		now := x.e.clock.Now()
		var waiting []string
		for _, m := range tier {
			select {
			case <-m.ended:
				if m.report.Result == Recovered && now.Sub(m.endedAt) < t.ReadyDelay {
					waiting = append(waiting, m.label()+" (ready delay)")
				}
			default:
				waiting = append(waiting, m.label())
			}
		}
		took := now.Sub(start).Round(time.Millisecond)
		if len(waiting) == 0 {
			x.record(ctx, history.KindDecision, fmt.Sprintf("tier %d (restart priority %d) ready after %s: tier %d (restart priority %d, %d VMs) begins",
				i+1, tier[0].pv.Priority, took, i+2, next[0].pv.Priority, len(next)),
				Reason{Code: CodeTierReady, Text: fmt.Sprintf("every VM of tier %d ended, the recovered ones ACTIVE for %s", i+1, t.ReadyDelay)}, nil)
			return
		}
		if now.Sub(start) >= t.Timeout {
			x.record(ctx, history.KindAlert, fmt.Sprintf("tier %d (restart priority %d) not ready after %s: tier %d (restart priority %d, %d VMs) begins anyway",
				i+1, tier[0].pv.Priority, took, i+2, next[0].pv.Priority, len(next)),
				Reason{Code: CodeTierTimeout, Text: "not ready: " + joinMax(waiting, 10)}, nil)
			return
		}
		if err := x.e.clock.Sleep(ctx, min(x.e.o.Poll, t.Timeout-now.Sub(start))); err != nil {
			return
		}
	}
}

func joinMax(s []string, n int) string {
	if len(s) <= n {
		return fmt.Sprint(s)
	}
	return fmt.Sprintf("%v and %d more", s[:n], len(s)-n)
}

// failingNow is the Nova hosts failed now: those being recovered (Options.Failing), and
// those a simulation takes for failed.
func (x *run) failingNow() map[string]bool {
	failing := map[string]bool{}
	if x.e.o.Failing != nil {
		maps.Copy(failing, x.e.o.Failing())
	}
	maps.Copy(failing, x.failing)
	return failing
}

// execute runs one move to its end, with retries, and records it.
func (x *run) execute(ctx context.Context, m *move) {
	defer func() {
		m.endedAt = x.e.clock.Now()
		close(m.ended)
	}()
	name := m.method.Name()
	m.report.Method = name
	rec := x.job.Recorder
	if id, err := rec.StartMove(ctx, history.Move{
		VMID: m.srv.ID, VMName: m.srv.Name, Project: m.srv.ProjectID,
		From: x.job.Source.Node, To: x.names.ByNova(m.target).Node, Method: string(name),
	}); err == nil {
		m.recID = id
	}
	finish := func(res history.MoveResult, to, errText string) {
		if m.recID == 0 {
			return
		}
		if err := rec.FinishMove(context.WithoutCancel(ctx), m.recID, history.MoveOutcome{Result: res, To: x.names.ByNova(to).Node, Error: errText}); err != nil {
			x.e.log.Warn("recording a move failed", "error", err)
		}
	}
	if name == None {
		m.report.Result = Left
		finish(history.MoveSkipped, "", "recovery class none")
		return
	}
	cfg := x.cfg().Evacuation
	backoff := cfg.RetryBackoff.Initial
	var last error
	for attempt := 0; attempt <= cfg.Retries; attempt++ {
		if attempt > 0 {
			if err := x.e.clock.Sleep(ctx, backoff); err != nil {
				last = err
				break
			}
			backoff = min(2*backoff, cfg.RetryBackoff.Max)
			if m.recID != 0 {
				_ = rec.RetryMove(ctx, m.recID, x.names.ByNova(m.target).Node)
			}
		}
		host, err := x.attempt(ctx, m, attempt)
		if err == nil {
			m.report.Result, m.report.To, m.report.ID = Recovered, x.names.ByNova(host), m.id
			if m.method.Placed() && !slices.Contains(x.r.Segment.Hosts, host) {
				x.record(ctx, history.KindAlert, fmt.Sprintf("%s landed on %s, outside segment %s", m.label(), x.names.ByNova(host).Node, x.r.SegmentName),
					Reason{Code: CodeOutsideSegment, Text: "Nova's scheduler chose it"}, nil)
			}
			finish(history.MoveSucceeded, host, "")
			return
		}
		last = err
		if ctx.Err() != nil || errors.Is(err, ErrStillMoving) || errors.Is(err, ErrHandedOver) {
			break
		}
		x.e.log.Warn("move failed", "vm", m.srv.ID, "method", name, "attempt", attempt+1, "error", err)
		if attempt < cfg.Retries {
			x.awaitSourceService(ctx)
		}
		if m.method.Placed() && attempt < cfg.Retries {
			x.retarget(ctx, m, err)
		}
	}
	if last == nil {
		last = errors.New("no attempt made")
	}
	m.report.Result, m.report.ID = Failed, m.id
	m.report.Reason = Reason{Code: CodeMoveFailed, Text: last.Error()}
	switch {
	case errors.Is(last, ErrStillMoving):
		m.report.Reason.Code = CodeStillMoving
	case errors.Is(last, ErrHandedOver):
		m.report.Reason.Code = CodeHandedOver
	}
	finish(history.MoveFailed, "", last.Error())
}

// awaitSourceService holds the next attempt of a move of a failed VM, off a host that runs,
// until Nova has the host's compute service up again, for the confirmation timeout at most:
// Nova refuses to migrate a VM off a host whose compute service it has down (409 "Service is
// unavailable") and leaves a reboot cast to it waiting, and a compute that lost its libvirtd a
// moment ago reports up again within a minute or two. A few quick retries would be spent
// before that.
func (x *run) awaitSourceService(ctx context.Context) {
	switch x.job.Situation {
	case VMFailed, VMRelocate, VMResume:
	default:
		return
	}
	deadline := x.e.clock.Now().Add(x.cfg().Evacuation.ConfirmTimeout)
	waited := false
	for {
		svc, err := x.e.o.Nova.FindComputeService(ctx, x.job.Source.NovaHost)
		if err != nil || svc.Up() || !x.e.clock.Now().Before(deadline) {
			if waited {
				x.e.log.Info("waited for the source's compute service", "host", x.job.Source.Node, "up", err == nil && svc.Up())
			}
			return
		}
		if !waited {
			x.e.log.Info("the source's compute service is down in Nova: the next attempt waits for it", "host", x.job.Source.Node)
			waited = true
		}
		if x.e.clock.Sleep(ctx, x.e.o.Poll) != nil {
			return
		}
	}
}

// attempt runs one attempt of m: within its target's bound, Start, then wait for the VM to
// run where it goes.
func (x *run) attempt(ctx context.Context, m *move, attempt int) (string, error) {
	key := m.target
	if !m.method.Placed() {
		key = x.job.Source.NovaHost
	}
	release, err := x.e.limits.Acquire(ctx, key)
	if err != nil {
		return "", err
	}
	ok := false
	defer func() { release(ok) }()
	if err := m.method.Start(ctx, x, m, attempt); err != nil {
		return "", err
	}
	x.includeTarget(m)
	// Only listings begun after Nova accepted the request tell its outcome: an earlier one
	// may show the VM before it.
	host, err := x.await(ctx, m, x.watch.begun())
	ok = err == nil
	return host, err
}

// await waits until m's method says the move is done, or failed, or the confirmation timeout
// passes. It looks at rounds of the watch begun after the first `after`; a VM no round shows
// is read on its own.
func (x *run) await(ctx context.Context, m *move, after uint64) (string, error) {
	timeout := x.cfg().Evacuation.ConfirmTimeout
	deadline := x.e.clock.Now().Add(timeout)
	extended := 0
	for {
		round, err := x.watch.after(ctx, after)
		if err != nil {
			return "", err
		}
		after = round.seq
		var o observation
		listed := true
		if m.method.ByMigrations() {
			o.migrations = round.migrations[m.id]
		} else {
			o.server, listed = round.servers[m.id]
			if !listed {
				var err error
				if o.server, err = x.showServer(ctx, m.id); err != nil {
					return "", err
				}
				x.watch.include(o.server.Host)
			}
		}
		done, host, err := m.method.Check(ctx, x, m, o)
		if err != nil || done {
			return host, err
		}
		if now := x.e.clock.Now(); now.After(deadline) {
			s := o.server
			moving := x.stillMovingNow(ctx, m, o)
			if moving == "" {
				return "", fmt.Errorf("%s not %s within %s (status %s, host %s, task %q)", m.id, m.want, timeout, s.Status, s.Host, s.TaskState)
			}
			// Nova is still at it: asking again could start a second copy of the VM (Nova
			// accepts a second evacuation while the first still rebuilds). Wait for its
			// verdict, up to stillMovingWaits more timeouts, and say so.
			if extended >= stillMovingWaits {
				return "", fmt.Errorf("%s not %s within %s: %w (%s)", m.id, m.want, timeout*time.Duration(extended+1), ErrStillMoving, moving)
			}
			extended++
			deadline = now.Add(timeout)
			x.record(ctx, history.KindAlert, fmt.Sprintf("%s still being moved by Nova after %s (%s): waiting for it, not asking again", m.label(), timeout*time.Duration(extended), moving),
				Reason{Code: CodeStillMoving, Text: "Nova has not finished the move it accepted"}, nil)
		}
		// Rounds are paced by the watch; reads of single servers here.
		if !listed {
			if err := x.e.clock.Sleep(ctx, x.e.o.Poll); err != nil {
				return "", err
			}
		}
	}
}

// stillMovingWaits is how many more confirmation timeouts a move Nova still carries out is
// waited for before it counts as failed (without being asked again).
const stillMovingWaits = 3

// stillMovingNow is stillMoving, the VM's own migrations read first for a move followed by
// migrations: the shared listing asks for changes since the recovery began, and Nova leaves
// out of it a record never saved since its API created it (no updated_at), which is exactly
// a move accepted and not begun on a loaded Nova. A read that fails counts as moving: a move
// asked for twice is worse than one reported late.
func (x *run) stillMovingNow(ctx context.Context, m *move, o observation) string {
	if m.method.ByMigrations() {
		err := x.e.nova(ctx, "list the VM's migrations", func(ctx context.Context) (err error) {
			o.migrations, err = x.e.o.Nova.Migrations(ctx, openstack.MigrationFilter{ServerID: m.id, Type: migrationType(m.method.Name())})
			return err
		})
		if err != nil {
			return "its migrations could not be read: " + err.Error()
		}
	}
	return stillMoving(m, o)
}

// stillMoving says what Nova is still doing with m ("" when nothing): a migration of the
// method's kind accepted after the request and not ended, or a task under way on the server.
func stillMoving(m *move, o observation) string {
	if m.method.ByMigrations() {
		typ := migrationType(m.method.Name())
		for _, mg := range o.migrations { // newest first
			if mg.ID <= m.seen || mg.Type != typ {
				continue
			}
			if slices.Contains(terminalMigration, mg.Status) {
				return ""
			}
			return fmt.Sprintf("its %s is %s", mg.Type, mg.Status)
		}
		return ""
	}
	if o.server.TaskState != "" {
		return "task " + o.server.TaskState
	}
	return ""
}

// setTarget changes the target of m, which runs: only m's goroutine writes it, and it reads it
// unlocked; other moves' retargets read it under x.mu.
func (x *run) setTarget(m *move, target string) {
	x.mu.Lock()
	m.target = target
	x.mu.Unlock()
}

// retarget chooses where the retry of a failed move goes: the plan's best host of the segment
// among those the VM has not failed on yet, since a move that failed on a host (a broken
// hypervisor, a leftover of the VM there) tends to fail there again, still following its
// server group. Reserved hosts not yet in use stay out, as taking one into use is the plan's
// decision; with no host left, Nova's scheduler chooses.
func (x *run) retarget(ctx context.Context, m *move, cause error) {
	if openstack.IsSourceServiceUp(cause) {
		return // the source, not the target, made it fail: the same target again
	}
	if m.target != "" && !slices.Contains(m.failedOn, m.target) {
		m.failedOn = append(m.failedOn, m.target)
	}
	from := m.target
	x.setTarget(m, "")
	if m.pv.ID == "" || len(m.failedOn) == 0 {
		return
	}
	hosts := slices.Clone(x.segHosts)
	failing := x.failingNow()
	for i, h := range hosts {
		if h.Reserved || slices.Contains(m.failedOn, h.Name) || failing[h.Name] {
			hosts[i].Up = false
		}
	}
	x.mu.Lock()
	targets := map[string]string{}
	for _, o := range x.moves {
		if o != m {
			targets[o.srv.ID] = o.target
		}
	}
	moves := slices.Clone(x.moves)
	x.mu.Unlock()
	p, err := plan.Make(plan.Input{
		FailedHost: x.job.Source.NovaHost,
		Segment:    plan.Segment{Name: x.r.SegmentName, RecoveryMethod: x.r.Segment.RecoveryMethod, Hosts: hosts},
		VMs:        []plan.VM{m.pv}, Groups: x.planGroups(moves, targets),
	})
	if err != nil || len(p.Moves) != 1 {
		return
	}
	x.setTarget(m, p.Moves[0].Target)
	what := fmt.Sprintf("%s retried on %s", m.label(), x.names.ByNova(m.target).Node)
	if from != "" {
		what += ", not " + x.names.ByNova(from).Node
	}
	x.record(ctx, history.KindDecision, what, Reason{Code: CodeRetryElsewhere, Text: "it failed there: " + cause.Error()}, x.novaTarget(m.target))
}
