package evacd

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/computeha/computeha/crm"
	"github.com/computeha/computeha/internal/config"
	"github.com/computeha/computeha/internal/evacstate"
	"github.com/computeha/computeha/internal/history"
	"github.com/computeha/computeha/internal/maintenance"
	"github.com/computeha/computeha/internal/plan"
	"github.com/computeha/computeha/internal/recovery"
)

// job recovers one fenced host: it waits for the fencing to be confirmed and for the guard,
// then has the recovery engine evacuate the host's VMs, and keeps the host's evacuation state
// (the mark) and its incident.
type job struct {
	d    *Daemon
	node string        // Pacemaker node carrying the mark: what Pacemaker, the history and operators name
	host recovery.Host // the node and its Nova host
	mark evacstate.State

	mu    sync.Mutex
	what  string
	phase Phase
	inc   *history.Incident
}

// Phase is where a host's recovery is, in a few words the metrics can carry.
type Phase string

// The phases of a recovery.
const (
	PhaseFencing    Phase = "fencing"    // waiting for the fencing to be confirmed
	PhaseReading    Phase = "reading"    // reading servers, migrations and capacity
	PhasePaused     Phase = "paused"     // paused by the mass-failure guard
	PhaseRecovering Phase = "recovering" // moving the VMs
	PhaseFailed     Phase = "failed"     // an operator must look
	PhaseDone       Phase = "done"       // over (done, or the mark cleared)
)

func (j *job) getPhase() Phase {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.phase
}

// setStep says what the job does now, in which phase.
func (j *job) setStep(p Phase, s string) {
	j.mu.Lock()
	j.what, j.phase = s, p
	j.mu.Unlock()
	if j.host.NovaHost != j.node {
		j.d.o.Log.Info(s, "host", j.node, "nova_host", j.host.NovaHost)
		return
	}
	j.d.o.Log.Info(s, "host", j.node)
}

func (j *job) step() string {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.what
}

// recorder is the incident, or nothing when there is no history.
func (j *job) recorder() recovery.Recorder {
	if j.inc == nil {
		return nil
	}
	return j.inc
}

func (j *job) record(ctx context.Context, kind history.Kind, summary string, reason history.Reason, details any) {
	e := history.Event{Host: j.node, Kind: kind, Summary: summary, Reason: reason, Details: history.DetailsOf(details)}
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
	// Reads made ahead that the job does not take (the mark cleared, maintenance) end with it.
	defer j.d.engine.ForgetAhead(j.node)
	quorate := false // just seen, with the fencing's confirmation
	var reads *recovery.Reads
	if j.mark.By == evacstate.ByRetry {
		j.record(ctx, history.KindDecision, "retrying the failed recovery of "+j.node+" at an operator's request",
			history.Reason{Code: "recovery-retry", Text: "marked pending by " + j.mark.By + " at " + j.mark.Since.Format(time.RFC3339)}, nil)
	}
	if j.mark.Phase == evacstate.Pending {
		// Read what the recovery needs while the fencing is confirmed: those seconds belong
		// to the recovery. Reads begun when Pacemaker lost the host, and kept fresh since,
		// serve.
		j.d.engine.ReadAhead(ctx, j.host)
		if err := j.awaitFencing(ctx); err != nil {
			return err
		}
		quorate = true
		if w, ok := j.inMaintenance(ctx); ok {
			return j.skipForMaintenance(ctx, w)
		}
		reads = j.d.engine.TakeAhead(ctx, j.host, recovery.DefaultMaxAge)
	} else {
		// running: a daemon before us confirmed the fencing and began. What it asked of Nova
		// is read now, not taken from reads begun before it was seen resuming.
		j.d.engine.ForgetAhead(j.node)
		j.record(ctx, history.KindDecision, "resuming the recovery of "+j.node,
			history.Reason{Code: "resume", Text: fmt.Sprintf("found running (owner %s, since %s)", j.mark.Owner, j.mark.Since.Format(time.RFC3339))}, nil)
	}
	if reads == nil {
		j.setStep(PhaseReading, "reading servers, migrations and capacity")
		var err error
		if reads, err = j.d.engine.Read(ctx, j.host); err != nil {
			if ctx.Err() != nil {
				// Stopping is not failing: the next daemon resumes.
				return ctx.Err()
			}
			what := "reading Nova failed"
			if errors.Is(err, recovery.ErrNoSegment) {
				what = "no failover segment"
			}
			j.fail(ctx, history.OutcomeFailed, what, err)
			return err
		}
	}
	if err := j.awaitGuard(ctx, reads.SegmentName, reads.Segment, quorate); err != nil {
		return err
	}
	// The running mark is written while the recovery begins, not before: it tells a daemon
	// that takes over that this one had begun, and what Nova moves already is found in Nova
	// itself, so nothing waits on it.
	running := evacstate.State{Phase: evacstate.Running, Owner: j.d.o.Owner, Since: j.d.clock.Now().UTC()}
	marked := make(chan error, 1)
	go func() { marked <- j.d.marks.Set(ctx, j.node, running) }()
	rep, err := j.d.engine.Run(ctx, recovery.Job{
		Source: j.host, Situation: recovery.HostFenced, Reads: reads,
		Recorder: j.recorder(), Step: func(s string) { j.setStep(PhaseRecovering, s) },
	})
	j.d.leftovers.Remember(rep)
	if merr := <-marked; merr != nil && ctx.Err() == nil {
		j.d.o.Log.Warn("marking the host running failed", "host", j.node, "error", merr)
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if err != nil {
		j.fail(ctx, history.OutcomeFailed, "recovery stopped", err)
		return err
	}
	if failed := rep.Count(recovery.Failed); failed > 0 {
		reason := fmt.Sprintf("%d VMs not recovered", failed)
		j.fail(ctx, history.OutcomePartial, reason, errors.New(reason))
		return errors.New(reason)
	}
	done := evacstate.State{Phase: evacstate.Done, Since: j.d.clock.Now().UTC()}
	if err := j.d.marks.Set(ctx, j.node, done); err != nil {
		return fmt.Errorf("mark %s done: %w", j.node, err)
	}
	j.setStep(PhaseDone, "done")
	if j.inc != nil {
		// The node is done: a daemon stopping now must still close its incident.
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		outcome, summary := history.OutcomeRecovered, "every HA VM of "+j.node+" recovered"
		// A VM no host of the segment may take under its server group's hard policy was never
		// moved: nothing runs twice if the host comes back, so the host is let back, but the
		// incident says not every VM was recovered.
		if n := rep.Count(recovery.Unrecoverable); n > 0 {
			outcome, summary = history.OutcomePartial, fmt.Sprintf("%d HA VMs of %s could not be recovered inside the segment; the others were", n, j.node)
		}
		if err := j.inc.Close(ctx, outcome, summary, history.Reason{Code: "recovered"}); err != nil {
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
	failure := history.Event{
		Host: j.node, Kind: history.KindFailure, Summary: j.node + " marked for evacuation",
		Reason:  history.Reason{Code: "marked", Text: j.mark.String()},
		Details: history.DetailsOf(novaHostDetails(j.node, j.host.NovaHost)),
	}
	inc, err := s.ResumeOrOpenIncident(ctx, j.node, failure)
	if err != nil {
		j.d.o.Log.Warn("opening an incident failed", "error", err)
		return
	}
	j.inc = inc
}

// inMaintenance reads the host's maintenance window. One that cannot be read (the attribute
// read fails) counts as none: the recovery goes on, the safe side for VMs that are down.
func (j *job) inMaintenance(ctx context.Context) (maintenance.Window, bool) {
	w, err := maintenance.Read(ctx, j.d.o.Cluster, j.node)
	if err != nil || w == nil {
		return maintenance.Window{}, false
	}
	return *w, true
}

// skipForMaintenance ends the recovery of a host fenced while in maintenance: HA is off for
// it, so nothing is recovered. It is marked done (fenced, nothing of it to move: it may come
// back) and the history says why.
func (j *job) skipForMaintenance(ctx context.Context, w maintenance.Window) error {
	why := j.node + " is " + w.Describe()
	j.record(ctx, history.KindMaintenance, j.node+" fenced while in maintenance: nothing recovered",
		history.Reason{Code: "maintenance", Text: why}, nil)
	done := evacstate.State{Phase: evacstate.Done, Since: j.d.clock.Now().UTC(), Reason: "in maintenance: nothing recovered"}
	if err := j.d.marks.Set(ctx, j.node, done); err != nil {
		return fmt.Errorf("mark %s done: %w", j.node, err)
	}
	j.setStep(PhaseDone, "in maintenance: nothing recovered")
	if j.inc != nil {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if err := j.inc.Close(cctx, history.OutcomeAborted, "nothing recovered: "+why, history.Reason{Code: "maintenance"}); err != nil {
			j.d.o.Log.Warn("closing the incident failed", "error", err)
		}
	}
	return nil
}

// fail marks the host failed (an operator decides), alerts, and closes the incident with
// outcome.
func (j *job) fail(ctx context.Context, outcome history.Outcome, summary string, cause error) {
	st := evacstate.State{Phase: evacstate.Failed, Since: j.d.clock.Now().UTC(), Reason: summary}
	if err := j.d.marks.Set(ctx, j.node, st); err != nil {
		j.d.o.Log.Error("marking the host failed did not work", "error", err)
	}
	j.setStep(PhaseFailed, "failed: "+summary)
	j.record(ctx, history.KindAlert, "recovery of "+j.node+" failed: "+summary,
		history.Reason{Code: "recovery-failed", Text: cause.Error()}, nil)
	if j.inc != nil {
		_ = j.inc.Close(ctx, outcome, summary, history.Reason{Code: "recovery-failed", Text: cause.Error()})
	}
}

// awaitFencing waits until Pacemaker's history shows the host fenced at or
// after it was marked, in a quorate partition. It never gives up: fencing
// that fails is retried by Pacemaker, and until it succeeds nothing moves.
func (j *job) awaitFencing(ctx context.Context) error {
	j.setStep(PhaseFencing, "waiting for fencing to be confirmed")
	logged := false
	for {
		st, err := j.d.marks.Get(ctx, j.node)
		if err != nil {
			j.d.o.Log.Warn("reading the evacuation state failed", "host", j.node, "error", err)
		} else if !st.Blocking() {
			j.setStep(PhaseDone, "mark cleared before recovery began")
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
	confirms := func(evs []crm.FenceEvent) (bool, string) {
		e, ok := j.mark.ConfirmedBy(evs, j.node, j.d.o.FenceSkew)
		return ok, fmt.Sprintf("%s of %s succeeded at %s (delegate %s)", e.Action, e.Target, e.Completed.Format(time.RFC3339), e.Delegate)
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
// quorate says the partition was just seen quorate (with the fencing's confirmation): the first
// look needs no cluster status of its own.
func (j *job) awaitGuard(ctx context.Context, segName string, seg config.Segment, quorate bool) error {
	logged := false
	for first := true; ; first = false {
		g := plan.Guard{Config: j.d.o.Config.Guard, SegmentSizes: map[string]int{}, Quorate: true}
		if !first || !quorate {
			if st, err := j.d.o.Cluster.Status(ctx); err == nil {
				g.Quorate = st.Quorate
			}
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
				if n, ok := segs.Of(j.d.names.ByNode(node).NovaHost); ok {
					sn = n
				}
			}
			g.Failures = append(g.Failures, plan.Failure{Host: node, Segment: sn, At: at})
		}
		dec := g.Allow(j.node, j.d.clock.Now())
		if dec.Action == plan.ActionProceed {
			return nil
		}
		if j.released(ctx) {
			j.record(ctx, history.KindGuard, "guard released by an operator for "+j.node, history.Reason{Code: "released", Text: dec.Message}, nil)
			return nil
		}
		if !logged {
			j.setStep(PhasePaused, "paused by the guard: "+dec.Message)
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
