package evacd

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/computeha/computeha/internal/haapi"
	"github.com/computeha/computeha/internal/history"
	"github.com/computeha/computeha/internal/instancemon"
	"github.com/computeha/computeha/internal/openstack"
	"github.com/computeha/computeha/internal/recovery"
)

// The daemon's side of the HA API: guests that failed on hosts that run (their qemu died,
// their watchdog fired, a disk failed under them), and servers their project signalled. Each
// is checked against Nova (a stop Nova was asked for is no failure), then restarted where it
// is through the recovery engine, in one incident per host and batch: failures of one host
// that come together (a burst of 20) are restarted together.

// GatherWindow is how long the failures of a host are gathered before their restart starts.
const GatherWindow = 500 * time.Millisecond

// SignalKind is the event name a project's signal gets in the history.
const SignalKind instancemon.Kind = "signal"

// vmReport is one failure to act on.
type vmReport struct {
	event  instancemon.Event
	server openstack.Server
	by     string // who reported it (a monitor's user, a project member)
}

// vmFailures gathers failures by host and runs their restarts.
type vmFailures struct {
	mu  sync.Mutex
	ctx context.Context // the daemon's (nil before Run)
	// wg counts the restarts running; closed (under mu) once Run ends: none starts after.
	wg     sync.WaitGroup
	closed bool
	// busy are the servers whose restart is gathered or running.
	busy map[string]bool
	// gathering are the failures of each node waiting for GatherWindow to end.
	gathering map[string][]vmReport
}

// startInstances makes the daemon take failures until ctx ends (called by Run); the
// function it returns waits for the restarts under way.
func (d *Daemon) startInstances(ctx context.Context) (wait func()) {
	d.vms.mu.Lock()
	defer d.vms.mu.Unlock()
	d.vms.ctx = ctx
	return func() {
		d.vms.mu.Lock()
		d.vms.closed = true
		d.vms.mu.Unlock()
		d.vms.wg.Wait()
	}
}

var _ haapi.Sink = (*Daemon)(nil)

// InstanceFailed takes a monitor's report of a guest failure (haapi.Sink).
func (d *Daemon) InstanceFailed(ctx context.Context, e instancemon.Event, by haapi.Caller) (haapi.Answer, error) {
	return d.takeFailure(ctx, e, by.UserName)
}

// Signal takes a project's request to recover server s (haapi.Sink): its VM is restarted
// where it is, as a failure would be, within the same checks (policy, its host's recovery).
func (d *Daemon) Signal(ctx context.Context, s openstack.Server, reason string, by haapi.Caller) (haapi.Answer, error) {
	node := d.names.ByNova(s.Host).Node
	if node == "" {
		return haapi.Answer{Status: haapi.Ignored, Reason: "it runs on no host (" + s.Status + ")"}, nil
	}
	e := instancemon.Event{
		Server: s.ID, Domain: s.Name, Host: node, Kind: SignalKind, Reason: reason,
		Time: d.clock.Now(), Source: instancemon.Source("signal"), Count: 1,
	}
	return d.takeFailure(ctx, e, by.UserName+" of project "+by.ProjectName)
}

func (d *Daemon) takeFailure(ctx context.Context, e instancemon.Event, by string) (haapi.Answer, error) {
	d.vms.mu.Lock()
	started, closed := d.vms.ctx != nil, d.vms.closed
	d.vms.mu.Unlock()
	if !started || closed {
		return haapi.Answer{}, fmt.Errorf("%w: the daemon is starting or stopping", haapi.ErrUnavailable)
	}
	d.mu.Lock()
	noQuorum := d.quorumKnown && !d.quorate
	_, hostBusy := d.jobs[e.Host]
	d.mu.Unlock()
	if noQuorum {
		// Another daemon, on the quorate side, takes it: the monitor tries again.
		return haapi.Answer{}, fmt.Errorf("%w: this controller's partition has no quorum", haapi.ErrUnavailable)
	}
	if hostBusy {
		return haapi.Answer{Status: haapi.Ignored, Reason: "its host " + e.Host + " is being recovered"}, nil
	}
	host := d.names.ByNode(e.Host)
	s, err := d.o.Nova.Server(ctx, e.Server)
	switch {
	case openstack.IsNotFound(err):
		return haapi.Answer{Status: haapi.Ignored, Reason: "Nova has no such server (deleted)"}, nil
	case err != nil:
		return haapi.Answer{}, fmt.Errorf("%w: reading the server from Nova: %w", haapi.ErrUnavailable, err)
	}
	if why := notAFailure(e, s, host); why != "" {
		d.o.Log.Info("guest event taken for no failure", "server", e.Server, "host", e.Host, "event", string(e.Kind), "why", why)
		return haapi.Answer{Status: haapi.Ignored, Reason: why}, nil
	}
	d.vms.mu.Lock()
	defer d.vms.mu.Unlock()
	if d.vms.closed {
		return haapi.Answer{}, fmt.Errorf("%w: the daemon is stopping", haapi.ErrUnavailable)
	}
	if d.vms.busy[e.Server] {
		return haapi.Answer{Status: haapi.Coalesced, Reason: "its restart is under way"}, nil
	}
	if d.vms.busy == nil {
		d.vms.busy, d.vms.gathering = map[string]bool{}, map[string][]vmReport{}
	}
	d.vms.busy[e.Server] = true
	first := len(d.vms.gathering[e.Host]) == 0
	d.vms.gathering[e.Host] = append(d.vms.gathering[e.Host], vmReport{event: e, server: s, by: by})
	if first {
		node, rctx := e.Host, d.vms.ctx
		d.vms.wg.Go(func() {
			if d.clock.Sleep(rctx, GatherWindow) != nil {
				return
			}
			d.vms.mu.Lock()
			batch := d.vms.gathering[node]
			delete(d.vms.gathering, node)
			d.vms.mu.Unlock()
			d.restart(rctx, node, batch)
			d.vms.mu.Lock()
			for _, r := range batch {
				delete(d.vms.busy, r.event.Server)
			}
			d.vms.mu.Unlock()
		})
	}
	return haapi.Answer{Status: haapi.Accepted, Reason: "restart on " + e.Host + " queued"}, nil
}

// notAFailure says why a reported event of s is no failure to act on ("" when it is one):
// the server moved, Nova is working on it, or Nova was asked to stop it.
func notAFailure(e instancemon.Event, s openstack.Server, host recovery.Host) string {
	switch {
	case s.Host != host.NovaHost:
		return fmt.Sprintf("it runs on %q now, not %s", s.Host, host.NovaHost)
	case s.TaskState != "":
		return "Nova is working on it (" + s.TaskState + "): what it does is on purpose"
	}
	switch s.Status {
	case "ACTIVE", "SHUTOFF", "PAUSED", "ERROR":
	default:
		return "it is " + s.Status + " in Nova: not a VM that should run"
	}
	// A guest that stopped without a crash is a failure only while Nova still wants it to run:
	// a stop asked of Nova leaves it SHUTOFF (a crash Nova noticed does too, but is a crash).
	if (e.Kind == instancemon.Stopped || e.Kind == SignalKind) && s.Status != "ACTIVE" && s.Status != "PAUSED" {
		if e.Kind == SignalKind {
			return "it is " + s.Status + " in Nova: a signal restarts only a VM that should run"
		}
		return "Nova has it " + s.Status + ": stopped on purpose"
	}
	return ""
}

// restart restarts the failed VMs of node in one incident.
func (d *Daemon) restart(ctx context.Context, node string, batch []vmReport) {
	host := d.names.ByNode(node)
	log := d.o.Log.With("host", node)
	reads, err := d.engine.Read(ctx, host)
	if err != nil {
		log.Error("reading the host for its failed VMs failed: not restarted", "error", err, "vms", len(batch))
		for _, r := range batch {
			d.record(ctx, history.Event{
				Host: node, Kind: history.KindAlert, Summary: fmt.Sprintf("%s %s on %s: not restarted, Nova could not be read", vmLabel(r), r.event.Kind, node),
				Reason: history.Reason{Code: reasonOf(r.event.Kind), Text: err.Error()}, Details: history.DetailsOf(reportDetails(r)),
			})
		}
		return
	}
	vms := map[string]bool{}
	var kinds []string
	for _, r := range batch {
		if dec := d.engine.Decide(reads, host, r.server); !dec.HA {
			// Seen and said, but nothing to recover: no incident.
			d.record(ctx, history.Event{
				Host: node, Kind: history.KindDecision, Summary: fmt.Sprintf("%s %s on %s: left, it is not an HA VM", vmLabel(r), r.event.Kind, node),
				Reason: history.Reason{Code: recovery.CodeNoHA, Text: fmt.Sprintf("%s: %s", dec.Level, dec.Reason)}, Details: history.DetailsOf(reportDetails(r)),
			})
			continue
		}
		vms[r.server.ID] = true
		if !slices.Contains(kinds, string(r.event.Kind)) {
			kinds = append(kinds, string(r.event.Kind))
		}
	}
	if len(vms) == 0 {
		return
	}
	var inc *history.Incident
	if d.o.History != nil {
		var details []map[string]any
		for _, r := range batch {
			if vms[r.server.ID] {
				details = append(details, reportDetails(r))
			}
		}
		first := batch[0]
		summary := fmt.Sprintf("%s %s on %s: restarting it", vmLabel(first), first.event.Kind, node)
		if len(vms) > 1 {
			summary = fmt.Sprintf("%d VMs failed on %s (%s): restarting them", len(vms), node, strings.Join(kinds, ", "))
		}
		failure := history.Event{
			Host: node, Kind: history.KindFailure, Summary: summary,
			Reason:  history.Reason{Code: reasonOf(first.event.Kind), Text: describe(first.event)},
			Details: history.DetailsOf(map[string]any{"vms": details}),
		}
		if inc, err = d.o.History.OpenIncident(ctx, node, failure); err != nil {
			log.Warn("opening an incident failed", "error", err)
		}
	}
	job := recovery.Job{Source: host, Situation: recovery.VMFailed, VMs: vms, Reads: reads}
	if inc != nil {
		job.Recorder = inc
	}
	rep, err := d.engine.Run(ctx, job)
	outcome, summary := history.OutcomeRecovered, fmt.Sprintf("%d VMs of %s running again", len(vms), node)
	switch {
	case err != nil:
		outcome, summary = history.OutcomeFailed, "restarting the VMs of "+node+" stopped: "+err.Error()
	case rep.Count(recovery.Failed)+rep.Count(recovery.Unrecoverable) > 0:
		outcome, summary = history.OutcomePartial, fmt.Sprintf("%d of %d VMs of %s could not be restarted", rep.Count(recovery.Failed)+rep.Count(recovery.Unrecoverable), len(vms), node)
	}
	log.Info("failed VMs handled", "outcome", string(outcome), "summary", summary)
	if inc != nil {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		if err := inc.Close(cctx, outcome, summary, history.Reason{}); err != nil {
			log.Warn("closing the incident failed", "error", err)
		}
	}
}

func vmLabel(r vmReport) string {
	if r.server.Name != "" {
		return fmt.Sprintf("VM %s (%s)", r.server.Name, r.server.ID)
	}
	return "VM " + r.server.ID
}

// reasonOf is the history's reason code of a kind of failure: vm-crashed, vm-io-error, ...
func reasonOf(k instancemon.Kind) history.ReasonCode { return history.ReasonCode("vm-" + string(k)) }

// describe says what was seen, for the incident's reason.
func describe(e instancemon.Event) string {
	s := string(e.Kind)
	if e.Reason != "" {
		s += ": " + e.Reason
	}
	if e.Action != "" {
		s += " (action " + e.Action + ")"
	}
	if e.Device != "" {
		s += " on " + e.Device
	}
	if e.Source == instancemon.FromReconcile {
		s += ", found on reconnecting to libvirtd"
	}
	return s
}

func reportDetails(r vmReport) map[string]any {
	d := map[string]any{
		"vm_id": r.server.ID, "vm_name": r.server.Name, "project": r.server.ProjectID,
		"event": string(r.event.Kind), "seen": r.event.Time, "source": string(r.event.Source), "reported_by": r.by,
	}
	for k, v := range map[string]string{"reason": r.event.Reason, "action": r.event.Action, "device": r.event.Device, "domain": r.event.Domain} {
		if v != "" {
			d[k] = v
		}
	}
	if r.event.Count > 1 {
		d["count"] = r.event.Count
	}
	return d
}
