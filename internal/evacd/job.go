package evacd

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/computeha/computeha/crm"
	"github.com/computeha/computeha/internal/config"
	"github.com/computeha/computeha/internal/evacstate"
	"github.com/computeha/computeha/internal/history"
	"github.com/computeha/computeha/internal/openstack"
	"github.com/computeha/computeha/internal/plan"
	"github.com/computeha/computeha/internal/policy"
)

// job recovers one host.
type job struct {
	d    *Daemon
	node string // Pacemaker node carrying the mark: what Pacemaker, the history and operators name
	host string // its Nova host (Config.NovaHost): what every Nova call names
	mark evacstate.State
	// nodes are the cluster's node names, read with the capacity: they turn a Nova host (a
	// target, a reserved host) back into its node.
	nodes []string

	mu   sync.Mutex
	what string
	inc  *history.Incident

	watch *serverWatch // the VMs' states during the evacuations
	// planSeg is the segment as planned (hosts and their capacity then): retries of failed
	// evacuations are placed from it. Read-only once the evacuations start.
	planSeg plan.Segment
}

func (j *job) setStep(s string) {
	j.mu.Lock()
	j.what = s
	j.mu.Unlock()
	if j.host != j.node {
		j.d.o.Log.Info(s, "host", j.node, "nova_host", j.host)
		return
	}
	j.d.o.Log.Info(s, "host", j.node)
}

// nodeOf is the Pacemaker node of a Nova host ("" stays "").
func (j *job) nodeOf(novaHost string) string {
	if novaHost == "" {
		return ""
	}
	return j.d.o.Config.NodeAmong(novaHost, j.nodes)
}

func (j *job) step() string {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.what
}

func (j *job) record(ctx context.Context, kind history.Kind, summary string, reason history.Reason, details any) {
	e := history.Event{Host: j.node, Kind: kind, Summary: summary, Reason: reason}
	if details != nil {
		if b, err := json.Marshal(details); err == nil {
			e.Details = b
		}
	}
	var err error
	switch {
	case j.inc != nil:
		err = j.inc.Record(ctx, e)
	case j.d.o.History != nil:
		err = j.d.o.History.Record(ctx, e)
	}
	if err != nil {
		j.d.o.Log.Warn("recording history failed", "error", err, "summary", summary)
	}
}

// waitTick waits for a poke or the poll interval.
func (j *job) waitTick(ctx context.Context) error {
	j.d.mu.Lock()
	ch := j.d.wake[j.node]
	j.d.mu.Unlock()
	t := time.NewTimer(j.d.o.Poll)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-ch:
	case <-t.C:
	}
	return nil
}

func (j *job) run(ctx context.Context) error {
	j.openIncident(ctx)
	var pre *prefetch
	if j.mark.Phase == evacstate.Pending {
		// Read what the recovery needs while the fencing is confirmed:
		// those seconds belong to the recovery.
		pctx, cancel := context.WithCancel(ctx)
		defer cancel()
		pre = j.prefetch(pctx)
		if err := j.awaitFencing(ctx); err != nil {
			return err
		}
	} else {
		// running: a daemon before us confirmed the fencing and began.
		j.record(ctx, history.KindDecision, "resuming the recovery of "+j.node,
			history.Reason{Code: "resume", Text: fmt.Sprintf("found running (owner %s, since %s)", j.mark.Owner, j.mark.Since.Format(time.RFC3339))}, nil)
	}
	var (
		segName string
		seg     config.Segment
		aggs    []openstack.Aggregate
		err     error
	)
	pre = pre.wait(ctx)
	if pre != nil {
		segName, seg, aggs = pre.segName, pre.seg, pre.aggs
	} else {
		segName, seg, aggs, err = j.d.segmentOf(ctx, j.host)
	}
	if err != nil {
		if ctx.Err() != nil {
			// Stopping is not failing: the next daemon resumes.
			return ctx.Err()
		}
		j.fail(ctx, "no failover segment", err)
		return err
	}
	if err := j.awaitGuard(ctx, segName, seg); err != nil {
		return err
	}
	running := evacstate.State{Phase: evacstate.Running, Owner: j.d.o.Owner, Since: j.d.o.Now().UTC()}
	if err := j.d.marks.Set(ctx, j.node, running); err != nil {
		return fmt.Errorf("mark %s running: %w", j.node, err)
	}
	var early *reads
	if pre != nil && j.d.o.Now().Sub(pre.r.at) <= prefetchMaxAge {
		early = &pre.r
	}
	failed, err := j.recover(ctx, segName, seg, aggs, early)
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if err != nil {
		j.fail(ctx, "recovery stopped", err)
		return err
	}
	if failed > 0 {
		reason := fmt.Sprintf("%d VMs not recovered", failed)
		j.fail(ctx, reason, errors.New(reason))
		return errors.New(reason)
	}
	done := evacstate.State{Phase: evacstate.Done, Since: j.d.o.Now().UTC()}
	if err := j.d.marks.Set(ctx, j.node, done); err != nil {
		return fmt.Errorf("mark %s done: %w", j.node, err)
	}
	j.setStep("done")
	if j.inc != nil {
		// The node is done: a daemon stopping now must still close its incident.
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if err := j.inc.Close(ctx, history.OutcomeRecovered, "every HA VM of "+j.node+" recovered", history.Reason{Code: "recovered"}); err != nil {
			j.d.o.Log.Warn("closing the incident failed", "error", err)
		}
	}
	return nil
}

func (j *job) openIncident(ctx context.Context) {
	s := j.d.o.History
	if s == nil {
		return
	}
	if open, err := s.Incidents(ctx, history.Filter{Host: j.node}); err == nil {
		for i := len(open) - 1; i >= 0; i-- {
			if open[i].Outcome == "" {
				if inc, err := s.ResumeIncident(ctx, open[i].ID); err == nil {
					j.inc = inc
					return
				}
			}
		}
	}
	failure := history.Event{
		Host: j.node, Kind: history.KindFailure, Summary: j.node + " marked for evacuation",
		Reason: history.Reason{Code: "marked", Text: j.mark.String()},
	}
	if j.host != j.node {
		failure.Details, _ = json.Marshal(map[string]string{"nova_host": j.host})
	}
	inc, err := s.OpenIncident(ctx, j.node, failure)
	if err != nil {
		j.d.o.Log.Warn("opening an incident failed", "error", err)
		return
	}
	j.inc = inc
}

func (j *job) fail(ctx context.Context, summary string, cause error) {
	st := evacstate.State{Phase: evacstate.Failed, Since: j.d.o.Now().UTC(), Reason: summary}
	if err := j.d.marks.Set(ctx, j.node, st); err != nil {
		j.d.o.Log.Error("marking the host failed did not work", "error", err)
	}
	j.setStep("failed: " + summary)
	j.record(ctx, history.KindAlert, "recovery of "+j.node+" failed: "+summary,
		history.Reason{Code: "recovery-failed", Text: cause.Error()}, nil)
	if j.inc != nil {
		outcome := history.OutcomePartial
		if strings.Contains(summary, "segment") || strings.Contains(summary, "stopped") {
			outcome = history.OutcomeFailed
		}
		_ = j.inc.Close(ctx, outcome, summary, history.Reason{Code: "recovery-failed", Text: cause.Error()})
	}
}

// awaitFencing waits until Pacemaker's history shows the host fenced at or
// after it was marked, in a quorate partition. It never gives up: fencing
// that fails is retried by Pacemaker, and until it succeeds nothing moves.
func (j *job) awaitFencing(ctx context.Context) error {
	j.setStep("waiting for fencing to be confirmed")
	logged := false
	for {
		st, err := j.d.marks.Get(ctx, j.node)
		if err != nil {
			j.d.o.Log.Warn("reading the evacuation state failed", "host", j.node, "error", err)
		} else if !st.Blocking() {
			j.setStep("mark cleared before recovery began")
			return fmt.Errorf("%s: evacuation mark cleared (%q) before fencing was confirmed", j.node, st.Phase)
		}
		confirmed, why := j.fencingConfirmed(ctx)
		if confirmed {
			j.record(ctx, history.KindDecision, "fencing of "+j.node+" confirmed: recovering",
				history.Reason{Code: "fencing-confirmed", Text: why}, nil)
			return nil
		}
		if !logged {
			j.record(ctx, history.KindDecision, "not evacuating "+j.node+" yet: fencing not confirmed",
				history.Reason{Code: "fencing-unconfirmed", Text: why}, nil)
			logged = true
		}
		if err := j.waitTick(ctx); err != nil {
			return err
		}
	}
}

func (j *job) fencingConfirmed(ctx context.Context) (bool, string) {
	st, err := j.d.o.Cluster.Status(ctx)
	if err != nil {
		return false, "cluster status unreadable: " + err.Error()
	}
	if !st.Quorate {
		return false, "this partition has no quorum"
	}
	since := j.mark.Since.Add(-j.d.o.FenceSkew)
	confirms := func(evs []crm.FenceEvent) (bool, string) {
		for _, e := range evs {
			if e.Target == j.node && e.Succeeded() && (j.mark.Since.IsZero() || !e.Completed.Before(since)) {
				return true, fmt.Sprintf("%s of %s succeeded at %s (delegate %s)", e.Action, e.Target, e.Completed.Format(time.RFC3339), e.Delegate)
			}
		}
		return false, ""
	}
	// crm_mon's full fencing history first: stonith_admin --history
	// without --verbose lists one operation per target, not always the
	// latest, so a host fenced a second time would wait forever there.
	if ok, why := confirms(st.Fencing); ok {
		return true, why
	}
	evs, err := j.d.o.Cluster.FencingHistory(ctx, j.node)
	if err != nil {
		return false, "fencing history unreadable: " + err.Error()
	}
	if ok, why := confirms(evs); ok {
		return true, why
	}
	return false, "no successful fencing of " + j.node + " since " + j.mark.Since.Format(time.RFC3339) + " in Pacemaker's history"
}

// awaitGuard holds the recovery while the mass-failure guard says pause,
// until an operator releases it.
func (j *job) awaitGuard(ctx context.Context, segName string, seg config.Segment) error {
	logged := false
	for {
		g := plan.Guard{Config: j.d.o.Config.Guard, SegmentSizes: map[string]int{}, Quorate: true}
		if st, err := j.d.o.Cluster.Status(ctx); err == nil {
			g.Quorate = st.Quorate
		}
		segs, _ := j.d.o.Config.ResolveSegments(nil)
		for name, s := range segs {
			g.SegmentSizes[name] = len(s.Hosts)
		}
		g.SegmentSizes[segName] = len(seg.Hosts)
		// The guard counts nodes (an operator releases a node); segments list Nova hosts.
		for node, at := range j.d.recentFailures() {
			sn := segName
			if node != j.node {
				if n, ok := segs.Of(j.d.o.Config.NovaHost(node)); ok {
					sn = n
				}
			}
			g.Failures = append(g.Failures, plan.Failure{Host: node, Segment: sn, At: at})
		}
		dec := g.Allow(j.node, j.d.o.Now())
		if dec.Action == plan.ActionProceed {
			return nil
		}
		if j.released(ctx) {
			j.record(ctx, history.KindGuard, "guard released by an operator for "+j.node, history.Reason{Code: "released", Text: dec.Message}, nil)
			return nil
		}
		if !logged {
			j.setStep("paused by the guard: " + dec.Message)
			j.record(ctx, history.KindGuard, "recovery of "+j.node+" paused", history.Reason{Code: history.ReasonCode(dec.Reason), Text: dec.Message},
				map[string]any{"failed_hosts": dec.FailedHosts})
			j.record(ctx, history.KindAlert, "operator action needed: computeha guard release "+j.node,
				history.Reason{Code: history.ReasonCode(dec.Reason), Text: dec.Message}, nil)
			logged = true
		}
		if err := j.waitTick(ctx); err != nil {
			return err
		}
	}
}

// released tells whether an operator released the guard for this host
// after it was marked.
func (j *job) released(ctx context.Context) bool {
	v, err := j.d.o.Cluster.Attribute(ctx, j.node, ReleaseAttribute, crm.Permanent)
	if err != nil {
		return false
	}
	t, err := time.Parse(time.RFC3339, v)
	return err == nil && !t.Before(j.mark.Since.Add(-time.Second))
}

// move is one VM's recovery.
type move struct {
	srv      openstack.Server
	target   string
	id       int64 // history move id
	inFlight bool  // Nova already rebuilds it (a previous daemon's request)
	// vm is what the plan placed (zero for a move already in flight), and
	// failedOn the targets its evacuation failed on: a retry goes elsewhere.
	vm       plan.VM
	failedOn []string
}

// recover evacuates every HA VM still on the host; it returns how many
// could not be recovered. early, when not nil, is what was read while the
// fencing was confirmed.
func (j *job) recover(ctx context.Context, segName string, seg config.Segment, aggs []openstack.Aggregate, early *reads) (int, error) {
	nova := j.d.o.Nova
	var r reads
	if early != nil {
		r = *early
	} else {
		j.setStep("reading servers, migrations and capacity")
		var err error
		if r, err = j.read(ctx); err != nil {
			return 0, err
		}
	}
	svc, servers, migs := r.svc, r.servers, r.migs
	j.nodes = r.nodes
	hosts := hostsOf(seg, r.hvs, r.used)
	// fence_nova forced the service down and disabled it already, unless
	// the mark came from elsewhere: make sure.
	if !svc.ForcedDown {
		j.setStep("forcing the compute service down in Nova")
		if err := j.d.retryNova(ctx, "force down", func(ctx context.Context) error { _, err := nova.ForceDown(ctx, svc.ID); return err }); err != nil {
			return 0, err
		}
	}
	if svc.Enabled() {
		reason := fmt.Sprintf("%s evacuated by computeha at %s", evacstate.DisabledReasonPrefix, j.d.o.Now().UTC().Format(time.RFC3339))
		if err := j.d.retryNova(ctx, "disable", func(ctx context.Context) error { _, err := nova.DisableService(ctx, svc.ID, reason); return err }); err != nil {
			return 0, err
		}
	}
	inFlight := map[string]openstack.Migration{}
	for _, m := range migs {
		if m.SourceCompute == j.host && !slices.Contains([]string{"done", "completed", "error", "failed", "cancelled"}, m.Status) {
			inFlight[m.ServerID] = m
		}
	}

	var hostAggs []string
	az := ""
	for _, a := range aggs {
		if slices.Contains(a.Hosts, j.host) {
			hostAggs = append(hostAggs, a.Name)
			if a.AvailabilityZone != "" {
				az = a.AvailabilityZone
			}
		}
	}
	var vms []plan.VM
	byID := map[string]openstack.Server{}
	var moves []*move
	for _, s := range servers {
		pv := policy.VM{
			ID: s.ID, Name: s.Name, ProjectID: s.ProjectID, AvailabilityZone: firstNonEmpty(s.AvailabilityZone, az),
			Aggregates: hostAggs, FlavorExtraSpecs: s.Flavor.ExtraSpecs, ImageProperties: s.ImageProperties, Metadata: s.Metadata, Tags: s.Tags,
		}
		dec := j.d.policy.Decide(pv)
		if !dec.HA {
			j.record(ctx, history.KindDecision, fmt.Sprintf("%s (%s) left on %s: no HA", s.Name, s.ID, j.node),
				history.Reason{Code: history.ReasonCode("policy-" + string(dec.Level)), Text: dec.Reason}, nil)
			if j.inc != nil {
				if id, err := j.inc.StartMove(ctx, history.Move{VMID: s.ID, VMName: s.Name, Project: s.ProjectID, From: j.node}); err == nil {
					_ = j.inc.FinishMove(ctx, id, history.MoveOutcome{Result: history.MoveSkipped, Error: "no HA: " + dec.Reason})
				}
			}
			continue
		}
		if s.Status == "ERROR" && j.d.o.Config.Evacuation.ErrorVMs == config.ErrorVMsSkip {
			j.record(ctx, history.KindDecision, fmt.Sprintf("%s (%s) in ERROR left on %s", s.Name, s.ID, j.node),
				history.Reason{Code: "error-vm-skipped", Text: "evacuation.error_vms is skip"}, nil)
			continue
		}
		if _, busy := inFlight[s.ID]; busy {
			moves = append(moves, &move{srv: s, inFlight: true})
			continue
		}
		byID[s.ID] = s
		disk := int64(s.Flavor.DiskGB + s.Flavor.EphemeralGB)
		vms = append(vms, plan.VM{
			ID: s.ID, Name: s.Name, VCPUs: int64(s.Flavor.VCPUs), RAMMB: int64(s.Flavor.RAMMB),
			DiskGB: disk, Priority: j.d.policy.Priority(pv).Value,
		})
	}

	j.excludeFailing(hosts)
	j.planSeg = plan.Segment{Name: segName, RecoveryMethod: seg.RecoveryMethod, Hosts: hosts}
	p, err := plan.Make(plan.Input{FailedHost: j.host, Segment: j.planSeg, VMs: vms})
	if err != nil {
		return 0, err
	}
	for _, w := range p.Preflight.Warnings {
		j.record(ctx, history.KindAlert, "capacity: "+w, history.Reason{Code: "preflight"}, nil)
	}
	for _, r := range p.ReservedHostsUsed {
		if err := j.takeReserved(ctx, r); err != nil {
			return 0, err
		}
	}
	for _, m := range p.Moves {
		moves = append(moves, &move{srv: byID[m.VM.ID], target: m.Target, vm: m.VM})
		j.record(ctx, history.KindDecision, fmt.Sprintf("%s (%s) goes to %s", m.VM.Name, m.VM.ID, j.nodeOf(m.Target)),
			history.Reason{Code: history.ReasonCode(m.Reason), Text: m.Detail}, j.novaTarget(m.Target))
	}
	failed := 0
	for _, u := range p.Unplaced {
		// No room in the segment: let Nova's scheduler try, inside the
		// segment's rules, rather than leave the VM down.
		moves = append(moves, &move{srv: byID[u.VM.ID], vm: u.VM})
		j.record(ctx, history.KindAlert, fmt.Sprintf("%s (%s) fits on no host of segment %s", u.VM.Name, u.VM.ID, segName),
			history.Reason{Code: history.ReasonCode(u.Reason), Text: u.Detail}, nil)
	}

	j.watch = newServerWatch(j.d.o.Poll, j.d.o.Now, j.d.o.Sleep, func(ctx context.Context, host string) (out []openstack.Server, err error) {
		err = j.d.retryNova(ctx, "list servers", func(ctx context.Context) (err error) {
			out, err = nova.ServersOnHost(ctx, host)
			return err
		})
		return out, err
	})
	j.watch.include(j.host)
	for _, m := range moves {
		if m.target == "" {
			// The scheduler chooses: any host of the segment.
			j.watch.include(seg.Hosts...)
		}
		j.watch.include(m.target)
	}
	j.setStep(fmt.Sprintf("evacuating %d VMs", len(moves)))
	var wg sync.WaitGroup
	var fmu sync.Mutex
	for _, m := range moves {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := j.evacuate(ctx, m, seg); err != nil {
				fmu.Lock()
				failed++
				fmu.Unlock()
			}
		}()
	}
	wg.Wait()
	return failed, ctx.Err()
}

func firstNonEmpty(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// segmentHosts reads the state and free capacity of the segment's hosts.
func (j *job) segmentHosts(ctx context.Context, seg config.Segment) ([]plan.Host, error) {
	var hvs []openstack.Hypervisor
	if err := j.d.retryNova(ctx, "hypervisors", func(ctx context.Context) (err error) {
		hvs, err = j.d.o.Nova.Hypervisors(ctx)
		return err
	}); err != nil {
		return nil, err
	}
	var used map[string]bool
	used, j.nodes = j.clusterNodes(ctx)
	hosts := hostsOf(seg, hvs, used)
	j.excludeFailing(hosts)
	return hosts, nil
}

// excludeFailing marks down the hosts being recovered, whatever Nova said when it was read:
// the reads may predate their fencing. Jobs are kept by node, hosts named by Nova.
func (j *job) excludeFailing(hosts []plan.Host) {
	failing := j.d.failingNovaHosts()
	for i := range hosts {
		if failing[hosts[i].Name] {
			hosts[i].Up = false
		}
	}
}

// novaTarget is the details of a decision naming a target, when its Nova name is not its
// node's: the history names nodes.
func (j *job) novaTarget(target string) any {
	if target == "" || j.nodeOf(target) == target {
		return nil
	}
	return map[string]string{"nova_host": target}
}

// hostsOf is the segment's hosts as the hypervisors show them; used names
// the reserved hosts already taken into use. All are Nova host names.
func hostsOf(seg config.Segment, hvs []openstack.Hypervisor, used map[string]bool) []plan.Host {
	var out []plan.Host
	for _, name := range seg.Hosts {
		h := plan.Host{Name: name, Reserved: slices.Contains(seg.ReservedHosts, name) && !used[name]}
		for _, hv := range hvs {
			if hv.ServiceHost != name {
				continue
			}
			h.Enabled = hv.Status == "enabled"
			h.Up = hv.State == "up"
			h.ForcedDown = false
			h.FreeVCPUs = hv.Resources["VCPU"].Free()
			h.FreeRAMMB = hv.Resources["MEMORY_MB"].Free()
			h.FreeDiskGB = hv.Resources["DISK_GB"].Free()
		}
		out = append(out, h)
	}
	return out
}

// ReservedAttribute records, on a reserved host's node, that it was taken
// into use (it is then an ordinary host of its segment).
const ReservedAttribute = "computeha-reserved-used"

// clusterNodes reads the cluster's node names and, by their Nova host names, the reserved
// hosts already taken into use. An unreadable CIB gives neither: reserved hosts then count as
// still reserved, and Nova hosts map back to nodes by the configured rule alone.
func (j *job) clusterNodes(ctx context.Context) (used map[string]bool, nodes []string) {
	used = map[string]bool{}
	cib, err := j.d.o.Cluster.CIB(ctx)
	if err != nil {
		return used, nil
	}
	for _, n := range cib.Nodes {
		nodes = append(nodes, n.Name)
		if n.Attributes[ReservedAttribute] != "" {
			used[j.d.o.Config.NovaHost(n.Name)] = true
		}
	}
	return used, nodes
}

// takeReserved enables a reserved host (its Nova host name) and records, on its node, that it
// no longer is reserved.
func (j *job) takeReserved(ctx context.Context, host string) error {
	nova := j.d.o.Nova
	var svc openstack.Service
	if err := j.d.retryNova(ctx, "find reserved service", func(ctx context.Context) (err error) {
		svc, err = nova.FindComputeService(ctx, host)
		return err
	}); err != nil {
		return err
	}
	if !svc.Enabled() {
		if err := j.d.retryNova(ctx, "enable reserved host", func(ctx context.Context) error { _, err := nova.EnableService(ctx, svc.ID); return err }); err != nil {
			return err
		}
	}
	node := j.nodeOf(host)
	if err := j.d.o.Cluster.SetAttribute(ctx, node, ReservedAttribute, j.d.o.Now().UTC().Format(time.RFC3339), crm.Permanent); err != nil {
		j.d.o.Log.Warn("recording the reserved host's use failed", "host", node, "nova_host", host, "error", err)
	}
	j.record(ctx, history.KindDecision, "reserved host "+node+" taken into use", history.Reason{Code: "reserved-host-used"}, j.novaTarget(host))
	return nil
}

// evacuate moves one VM, retrying with backoff, and confirms it ACTIVE on
// a host of the segment.
func (j *job) evacuate(ctx context.Context, m *move, seg config.Segment) error {
	cfg := j.d.o.Config.Evacuation
	if j.inc != nil {
		id, err := j.inc.StartMove(ctx, history.Move{VMID: m.srv.ID, VMName: m.srv.Name, Project: m.srv.ProjectID, From: j.node, To: j.nodeOf(m.target)})
		if err == nil {
			m.id = id
		}
	}
	finish := func(res history.MoveResult, to, errText string) {
		if j.inc != nil && m.id != 0 {
			if err := j.inc.FinishMove(ctx, m.id, history.MoveOutcome{Result: res, To: j.nodeOf(to), Error: errText}); err != nil {
				j.d.o.Log.Warn("recording a move failed", "error", err)
			}
		}
	}
	wantStatus := "ACTIVE"
	if m.srv.Status == "SHUTOFF" {
		wantStatus = "SHUTOFF"
	}
	backoff := cfg.RetryBackoff.Initial
	var last error
	for attempt := 0; attempt <= cfg.Retries; attempt++ {
		if attempt > 0 {
			if err := j.d.o.Sleep(ctx, backoff); err != nil {
				finish(history.MoveFailed, "", err.Error())
				return err
			}
			backoff = min(2*backoff, cfg.RetryBackoff.Max)
			if m.id != 0 {
				_ = j.d.o.History.RetryMove(ctx, m.id, j.nodeOf(m.target))
			}
		}
		if m.srv.Status == "ERROR" && j.d.o.Config.Evacuation.ErrorVMs == config.ErrorVMsResetState && attempt == 0 {
			// Nova rebuilds an ERROR VM as ERROR: reset it first, as an
			// operator would, so it comes back running.
			if err := j.d.retryNova(ctx, "reset state", func(ctx context.Context) error {
				return j.d.o.Nova.ResetState(ctx, m.srv.ID, "active")
			}); err != nil {
				last = err
				continue
			}
			wantStatus = "ACTIVE"
		}
		if !m.inFlight || attempt > 0 {
			if err := j.requestEvacuation(ctx, m); err != nil {
				last = err
				j.d.o.Log.Warn("evacuation request failed", "vm", m.srv.ID, "attempt", attempt+1, "error", err)
				continue
			}
		}
		// Only listings begun after Nova accepted the request tell its
		// outcome: an earlier one may show a previous attempt's.
		to, err := j.confirm(ctx, m.srv.ID, wantStatus, seg, j.watch.begun())
		if err == nil {
			finish(history.MoveSucceeded, to, "")
			return nil
		}
		if errors.Is(err, context.Canceled) {
			return err
		}
		last = err
		j.retarget(ctx, m, err)
		if m.target == "" {
			j.watch.include(seg.Hosts...)
		} else {
			j.watch.include(m.target)
		}
	}
	finish(history.MoveFailed, "", last.Error())
	return last
}

// retarget chooses where the retry of a failed evacuation goes: the plan's best host of the
// segment among those the VM has not failed on yet, since a rebuild that failed on a host (a
// broken hypervisor, a leftover of the VM there) tends to fail there again. Reserved hosts
// not yet in use stay out, as taking one into use is the plan's decision; with no host left,
// Nova's scheduler chooses.
func (j *job) retarget(ctx context.Context, m *move, cause error) {
	if m.target != "" && !slices.Contains(m.failedOn, m.target) {
		m.failedOn = append(m.failedOn, m.target)
	}
	from := m.target
	m.target = ""
	if m.vm.ID == "" || len(m.failedOn) == 0 {
		return
	}
	seg := j.planSeg
	seg.Hosts = slices.Clone(seg.Hosts)
	for i, h := range seg.Hosts {
		if h.Reserved || slices.Contains(m.failedOn, h.Name) {
			seg.Hosts[i].Up = false
		}
	}
	p, err := plan.Make(plan.Input{FailedHost: j.host, Segment: seg, VMs: []plan.VM{m.vm}})
	if err != nil || len(p.Moves) != 1 {
		return
	}
	m.target = p.Moves[0].Target
	what := fmt.Sprintf("%s (%s) retried on %s", m.srv.Name, m.srv.ID, j.nodeOf(m.target))
	if from != "" {
		what += ", not " + j.nodeOf(from)
	}
	j.record(ctx, history.KindDecision, what,
		history.Reason{Code: "retry-elsewhere", Text: "the evacuation failed there: " + cause.Error()}, j.novaTarget(m.target))
}

func (j *job) requestEvacuation(ctx context.Context, m *move) error {
	j.d.sem <- struct{}{}
	defer func() { <-j.d.sem }()
	return j.d.retryNova(ctx, "evacuate", func(ctx context.Context) error {
		err := j.d.o.Nova.Evacuate(ctx, m.srv.ID, m.target)
		if openstack.IsSourceServiceUp(err) {
			// Nova still sees the source up: force it down again, then retry.
			if svc, ferr := j.d.o.Nova.FindComputeService(ctx, j.host); ferr == nil {
				_, _ = j.d.o.Nova.ForceDown(ctx, svc.ID)
			}
		}
		return err
	})
}

// confirm waits until the VM runs on a host of the segment other than the
// failed one. It looks at rounds of the watch begun after the first
// `after`; a VM no round shows is read on its own.
func (j *job) confirm(ctx context.Context, id, want string, seg config.Segment, after uint64) (string, error) {
	deadline := j.d.o.Now().Add(j.d.o.Config.Evacuation.ConfirmTimeout)
	for {
		round, err := j.watch.after(ctx, after)
		if err != nil {
			return "", err
		}
		after = round.seq
		s, listed := round.servers[id]
		if !listed {
			if err := j.d.retryNova(ctx, "show server", func(ctx context.Context) (err error) {
				s, err = j.d.o.Nova.Server(ctx, id)
				return err
			}); err != nil {
				return "", err
			}
			j.watch.include(s.Host)
		}
		if s.Host == j.host && s.TaskState == "" && s.Status == "ERROR" {
			// Seen after Nova accepted the request, so not the VM's state
			// before it: the rebuild failed where it was (no valid host:
			// the target was full, or seen down under load). A retry now,
			// not at the confirmation timeout.
			return "", fmt.Errorf("the evacuation of %s failed in Nova: ERROR on %s", id, s.Host)
		}
		if s.Host != j.host && s.TaskState == "" {
			switch {
			case s.Status == want && slices.Contains(seg.Hosts, s.Host):
				return s.Host, nil
			case s.Status == want:
				return s.Host, fmt.Errorf("%s landed on %s, outside the segment", id, s.Host)
			case s.Status == "ERROR":
				return "", fmt.Errorf("%s is in ERROR after evacuation", id)
			}
		}
		if j.d.o.Now().After(deadline) {
			return "", fmt.Errorf("%s not %s on a segment host within %s (status %s, host %s)", id, want, j.d.o.Config.Evacuation.ConfirmTimeout, s.Status, s.Host)
		}
		// Rounds are paced by the watch; reads of single servers here.
		if !listed {
			if err := j.d.o.Sleep(ctx, j.d.o.Poll); err != nil {
				return "", err
			}
		}
	}
}
