package evacd

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/computeha/computeha/internal/config"
	"github.com/computeha/computeha/internal/haapi"
	"github.com/computeha/computeha/internal/history"
	"github.com/computeha/computeha/internal/instancemon"
	"github.com/computeha/computeha/internal/openstack"
	"github.com/computeha/computeha/internal/policy"
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
	// io is what the policy says to do about a VM an I/O error paused, and why (the batch
	// sets it).
	io policy.IOErrorDecision
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
	// boundMu makes the batches decide one at a time: each one's bounds count the restarts
	// of the history and those decided by the batches still running (pending).
	boundMu sync.Mutex
	// pending are the restarts decided by batches still running, by server: the history has
	// them only once each starts.
	pending map[string]pendingRestart
}

// pendingRestart is a restart decided and not over: from which node, decided when.
type pendingRestart struct {
	node string
	at   time.Time
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
	if err := d.takingReports(); err != nil {
		return haapi.Answer{}, err
	}
	d.mu.Lock()
	_, hostBusy := d.jobs[e.Host]
	d.mu.Unlock()
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
	if e.Kind == instancemon.IOError && d.paused.has(e.Server, e.Host) {
		// libvirt tells of an I/O error only when a write fails, so a guest still paused
		// since it was left is found again by a listing only (the monitor reconnecting, the
		// check after a resume). An event is a new pause: resumed by someone since, it
		// failed again.
		if e.Source != instancemon.FromEvent {
			return haapi.Answer{Status: haapi.Ignored, Reason: "it is left paused already, with an alert"}, nil
		}
		d.paused.drop(e.Server)
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
		})
	}
	if e.Kind == instancemon.IOError {
		return haapi.Answer{Status: haapi.Accepted, Reason: "queued on " + e.Host + ": what policy.io_error says"}, nil
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
	switch {
	case e.Kind == instancemon.Watchdog && e.Action == "reset":
		return "its watchdog fired and qemu reset the guest already: it boots again by itself"
	case e.Kind == instancemon.IOError && e.Action == "report":
		// The guest got the error and runs on: what it does about it is its own (a paused
		// guest, or a per-VM policy, is another matter).
		return "the I/O error was reported to the guest, which runs on"
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

// restart restarts the failed VMs of node in one incident. Once it has acted (before it
// closes the incident), a new failure of these VMs is news again.
func (d *Daemon) restart(ctx context.Context, node string, batch []vmReport) {
	acted := sync.OnceFunc(func() {
		d.vms.mu.Lock()
		defer d.vms.mu.Unlock()
		for _, r := range batch {
			delete(d.vms.busy, r.event.Server)
			delete(d.vms.pending, r.event.Server) // the history has what was started
		}
	})
	defer acted()
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
	// HA VMs an I/O error paused go by policy.io_error; the others (and those it says to
	// restart) are restarted within the bounds.
	var ha, moveNow, resume []vmReport
	var paused []leftAlone
	for _, r := range batch {
		if dec := d.engine.Decide(reads, host, r.server); !dec.HA {
			// Seen and said, but nothing to recover: no incident.
			d.record(ctx, history.Event{
				Host: node, Kind: history.KindDecision, Summary: fmt.Sprintf("%s %s on %s: left, it is not an HA VM", vmLabel(r), r.event.Kind, node),
				Reason: history.Reason{Code: recovery.CodeNoHA, Text: fmt.Sprintf("%s: %s", dec.Level, dec.Reason)}, Details: history.DetailsOf(reportDetails(r)),
			})
			continue
		}
		if r.event.Kind != instancemon.IOError {
			ha = append(ha, r)
			continue
		}
		r.io = d.engine.IOError(reads, host, r.server)
		if len(r.io.Ignored) > 0 {
			log.Warn("ignored I/O-error policy values", "vm", r.server.ID, "ignored", r.io.Ignored)
		}
		switch r.io.Value {
		case config.IOErrorResume:
			resume = append(resume, r)
		case config.IOErrorMove:
			moveNow = append(moveNow, r)
		case config.IOErrorLeavePaused:
			paused = append(paused, leftAlone{vmReport: r, why: "as its policy says (" + r.io.Reason + ")"})
		default:
			ha = append(ha, r)
		}
	}
	if len(ha)+len(moveNow)+len(resume)+len(paused) == 0 {
		return
	}
	// The batches decide one at a time, cloud-wide, and run together: the bounds count the
	// restarts of the history and those the batches still running decided.
	d.vms.boundMu.Lock()
	d.mu.Lock()
	_, hostBusy := d.jobs[node]
	d.mu.Unlock()
	if hostBusy {
		d.vms.boundMu.Unlock()
		log.Info("the host's recovery started: its failed VMs are left to it", "vms", len(ha)+len(moveNow)+len(resume)+len(paused))
		return
	}
	b := d.bound(ctx, node, ha, resume)
	restart, relocate, resume := b.restart, append(b.relocate, moveNow...), b.resume
	decided := d.clock.Now()
	d.vms.mu.Lock()
	if d.vms.pending == nil {
		d.vms.pending = map[string]pendingRestart{}
	}
	for _, r := range restart {
		d.vms.pending[r.server.ID] = pendingRestart{node: node, at: decided}
	}
	d.vms.mu.Unlock()
	d.vms.boundMu.Unlock()
	for _, r := range b.stormed {
		det := reportDetails(r.vmReport)
		det["limit"] = r.limit
		d.record(ctx, history.Event{
			Host: node, Kind: history.KindAlert, Summary: fmt.Sprintf("%s %s on %s: left, a restart storm (%s)", vmLabel(r.vmReport), r.event.Kind, node, r.why),
			Reason: history.Reason{Code: ReasonRestartStorm, Text: r.why}, Details: history.DetailsOf(det),
		})
		d.storms.note(node, r.limit, d.clock.Now())
		log.Warn("failed VM left: restart storm", "vm", r.server.ID, "why", r.why)
	}
	for _, r := range append(paused, b.exhausted...) {
		d.record(ctx, history.Event{
			Host: node, Kind: history.KindAlert, Summary: fmt.Sprintf("%s %s on %s: left paused, %s", vmLabel(r.vmReport), r.event.Kind, node, r.why),
			Reason: history.Reason{Code: ReasonLeftPaused, Text: describe(r.event) + "; " + r.why}, Details: history.DetailsOf(reportDetails(r.vmReport)),
		})
		d.paused.add(r.server.ID, pausedVM{node: node, name: r.server.Name})
		log.Warn("VM paused by an I/O error left paused", "vm", r.server.ID, "why", r.why)
	}
	all := slices.Concat(restart, relocate, resume)
	if len(all) == 0 {
		return
	}
	var kinds []string
	var details []map[string]any
	for _, r := range all {
		details = append(details, reportDetails(r))
		if !slices.Contains(kinds, string(r.event.Kind)) {
			kinds = append(kinds, string(r.event.Kind))
		}
	}
	var inc *history.Incident
	if d.o.History != nil {
		first := all[0]
		summary := fmt.Sprintf("%s %s on %s: %s", vmLabel(first), first.event.Kind, node, d.whatIsDone(restart, relocate, resume))
		if len(all) > 1 {
			summary = fmt.Sprintf("%d VMs failed on %s (%s): %s", len(all), node, strings.Join(kinds, ", "), d.whatIsDone(restart, relocate, resume))
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
	total, failed := 0, 0
	var runErr error
	for _, part := range []struct {
		sit recovery.Situation
		vms []vmReport
	}{{recovery.VMFailed, restart}, {recovery.VMRelocate, relocate}, {recovery.VMResume, resume}} {
		if len(part.vms) == 0 {
			continue
		}
		if part.sit == recovery.VMResume {
			// The time a storage blip is given to pass; the VMs stay busy (their reports
			// coalesce) meanwhile.
			if wait := decided.Add(d.o.Config.Instances.ResumeDelay).Sub(d.clock.Now()); wait > 0 {
				if err := d.clock.Sleep(ctx, wait); err != nil {
					runErr = errors.Join(runErr, err)
					break
				}
			}
		}
		ids := map[string]bool{}
		for _, r := range part.vms {
			ids[r.server.ID] = true
		}
		job := recovery.Job{Source: host, Situation: part.sit, VMs: ids, Reads: reads}
		if inc != nil {
			job.Recorder = inc
		}
		rep, err := d.engine.Run(ctx, job)
		total += len(ids)
		if err != nil {
			runErr = errors.Join(runErr, err)
			continue
		}
		failed += rep.Count(recovery.Failed) + rep.Count(recovery.Unrecoverable)
		if part.sit == recovery.VMResume {
			for _, v := range rep.VMs {
				if v.Result == recovery.Recovered {
					d.checkResumed(ctx, node, v.ID)
				}
			}
		}
	}
	acted()
	outcome, summary := history.OutcomeRecovered, fmt.Sprintf("%d VMs of %s running again", total, node)
	switch {
	case runErr != nil:
		outcome, summary = history.OutcomeFailed, "recovering the failed VMs of "+node+" stopped: "+runErr.Error()
	case failed > 0:
		outcome, summary = history.OutcomePartial, fmt.Sprintf("%d of %d failed VMs of %s could not be recovered", failed, total, node)
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

// ReasonLeftPaused is the history's reason of an HA VM an I/O error paused that is left
// paused: its policy says so, or resuming it did not help.
const ReasonLeftPaused history.ReasonCode = "vm-left-paused"

// ResumeCheck is how long after a VM was resumed the daemon checks in Nova that qemu did not
// pause it again at once.
const ResumeCheck = 3 * time.Second

// checkResumed makes sure a VM resumed on node is not paused again unseen: qemu pausing it
// again at once (its storage still full) is reported while its resume still runs, and such a
// report is coalesced into it. ResumeCheck later, a VM Nova has ACTIVE and paused by the
// hypervisor there is taken for a new failure (resumed again within the bounds, or left paused
// with an alert); one reported again meanwhile is coalesced into that report.
func (d *Daemon) checkResumed(ctx context.Context, node, id string) {
	d.vms.wg.Go(func() {
		if d.clock.Sleep(ctx, ResumeCheck) != nil {
			return
		}
		s, err := d.o.Nova.Server(ctx, id)
		if err != nil || !stillPaused(s, d.names.ByNode(node).NovaHost) || s.PowerState != openstack.PowerPaused {
			return
		}
		e := instancemon.Event{
			Server: id, Domain: s.Name, Host: node, Kind: instancemon.IOError, Reason: "paused again after its resume", Action: "pause",
			Time: d.clock.Now(), Source: instancemon.Source("resume-check"), Count: 1,
		}
		if ans, err := d.takeFailure(ctx, e, "computeha"); err != nil {
			d.o.Log.Warn("a resumed VM is paused again: not taken", "vm", id, "host", node, "error", err)
		} else {
			d.o.Log.Info("a resumed VM is paused again", "vm", id, "host", node, "status", string(ans.Status), "why", ans.Reason)
		}
	})
}

// ReasonRestartStorm is the history's reason of a failed VM left alone because its host, or the
// cloud, restarted too many VMs lately.
const ReasonRestartStorm history.ReasonCode = "restart-storm"

// whatIsDone says what is done about the failed VMs of a batch.
func (d *Daemon) whatIsDone(restart, relocate, resume []vmReport) string {
	var parts []string
	one := len(restart)+len(relocate)+len(resume) == 1
	for _, p := range []struct {
		vms       []vmReport
		many, one string
	}{
		{restart, "restarting %d where they are", "restarting it where it is"},
		{relocate, "moving %d to another host of the segment", "moving it to another host of the segment"},
		{resume, "resuming %d where they are in " + d.o.Config.Instances.ResumeDelay.String(), "resuming it where it is in " + d.o.Config.Instances.ResumeDelay.String()},
	} {
		switch {
		case len(p.vms) == 0:
		case one:
			parts = append(parts, p.one)
		default:
			parts = append(parts, fmt.Sprintf(p.many, len(p.vms)))
		}
	}
	return strings.Join(parts, ", ")
}

// leftAlone is a failed VM left alone, and why: limit names the storm bound it hit
// (storm_host, storm_cloud), "" for another reason.
type leftAlone struct {
	vmReport
	why   string
	limit string
}

// bounds is how instances bounds a batch: the VMs restarted where they are, moved elsewhere,
// resumed, and those left alone for a storm or left paused because resuming them did not help.
type bounds struct {
	restart, relocate, resume []vmReport
	stormed, exhausted        []leftAlone
}

// bound splits the failed HA VMs of node by what instances allows. vms are to be restarted:
// moved elsewhere instead once restarted max_restarts times within restart_window since they
// last moved, or left (a restart storm on the host or in the cloud). paused are to be resumed:
// left paused once resumed max_restarts times within restart_window. What was done is read
// from the history's moves, so it outlives the daemon and follows it to another controller,
// plus the restarts that batches still running decided (called under vms.boundMu).
func (d *Daemon) bound(ctx context.Context, node string, vms, paused []vmReport) (b bounds) {
	lim := d.o.Config.Instances
	now := d.clock.Now()
	perVM, resumed := map[string]int{}, map[string]int{}
	onHost, inCloud := 0, 0
	d.vms.mu.Lock()
	pending := maps.Clone(d.vms.pending)
	d.vms.mu.Unlock()
	if d.o.History != nil {
		since := now.Add(-max(lim.RestartWindow, lim.StormWindow))
		moves, err := d.o.History.Moves(ctx, history.Filter{Since: since})
		if err != nil {
			d.o.Log.Warn("reading the restarts done from the history failed: counting none", "error", err)
		}
		for _, m := range moves {
			if p, ok := pending[m.VMID]; ok && m.Method == string(recovery.Restart) && !m.Start.Before(p.at) {
				continue // a pending restart that started: counted below
			}
			inWindow := !m.Start.Before(now.Add(-lim.RestartWindow))
			if m.Method == string(recovery.Resume) {
				// Resumed where it is: neither a restart nor a move.
				if inWindow {
					resumed[m.VMID]++
				}
				continue
			}
			if m.Method != string(recovery.Restart) {
				// Moved since: its restarts before are another host's story.
				delete(perVM, m.VMID)
				continue
			}
			if inWindow {
				perVM[m.VMID]++
			}
			if !m.Start.Before(now.Add(-lim.StormWindow)) {
				inCloud++
				if m.From == node {
					onHost++
				}
			}
		}
	}
	for _, p := range pending {
		inCloud++
		if p.node == node {
			onHost++
		}
	}
	for _, r := range vms {
		switch {
		case lim.StormHost > 0 && onHost >= lim.StormHost:
			b.stormed = append(b.stormed, leftAlone{r, fmt.Sprintf("%d restarts on %s within %s, storm_host is %d", onHost, node, lim.StormWindow, lim.StormHost), "storm_host"})
		case lim.StormCloud > 0 && inCloud >= lim.StormCloud:
			b.stormed = append(b.stormed, leftAlone{r, fmt.Sprintf("%d restarts in the cloud within %s, storm_cloud is %d", inCloud, lim.StormWindow, lim.StormCloud), "storm_cloud"})
		case lim.MaxRestarts > 0 && perVM[r.server.ID] >= lim.MaxRestarts && r.event.Kind != SignalKind:
			// A signal restarts where it is: a project cannot have its VM moved by asking.
			b.relocate = append(b.relocate, r)
		default:
			b.restart = append(b.restart, r)
			onHost++
			inCloud++
		}
	}
	for _, r := range paused {
		if n := resumed[r.server.ID]; lim.MaxRestarts > 0 && n >= lim.MaxRestarts {
			b.exhausted = append(b.exhausted, leftAlone{vmReport: r, why: fmt.Sprintf("the error persists (resumed %d times within %s, max_restarts is %d)", n, lim.RestartWindow, lim.MaxRestarts)})
			continue
		}
		b.resume = append(b.resume, r)
	}
	return b
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
	if r.io.Value != "" {
		d["io_error_action"], d["io_error_policy"] = string(r.io.Value), r.io.Reason
	}
	return d
}

// ProcessReasonPrefix starts the reason Nova keeps for a host the daemon disabled because some
// of its provisioning processes cannot be restarted (processReason); only such a disable is
// undone, once every process it names runs again.
const ProcessReasonPrefix = "computeha: process "

// Reasons of the history for provisioning processes.
const (
	ReasonProcessDown      history.ReasonCode = "process-down"
	ReasonProcessRecovered history.ReasonCode = "process-recovered"
)

// HostProcess takes a monitor's report of a provisioning process (haapi.Sink): a process that
// cannot be restarted gets its host disabled in Nova (nothing new is scheduled there), an alert,
// and with instances.process_migrate its HA VMs live-migrated away; once it runs again, the
// host is enabled, if the daemon is what disabled it.
func (d *Daemon) HostProcess(ctx context.Context, e instancemon.HostEvent, by haapi.Caller) (haapi.Answer, error) {
	if err := d.takingReports(); err != nil {
		return haapi.Answer{}, err
	}
	node := e.Host
	d.mu.Lock()
	_, hostBusy := d.jobs[node]
	d.mu.Unlock()
	if hostBusy {
		return haapi.Answer{Status: haapi.Ignored, Reason: "the host " + node + " is being recovered"}, nil
	}
	// Nova's service update calls the host's compute, which may take a minute: done to its
	// end even when the monitor's request times out meanwhile (its retry finds it done).
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Minute)
	defer cancel()
	host := d.names.ByNode(node)
	svc, err := d.o.Nova.FindComputeService(ctx, host.NovaHost)
	switch {
	case openstack.IsNotFound(err):
		return haapi.Answer{Status: haapi.Ignored, Reason: "Nova has no compute service on " + host.NovaHost}, nil
	case err != nil:
		return haapi.Answer{}, fmt.Errorf("%w: reading the compute service from Nova: %w", haapi.ErrUnavailable, err)
	}
	down, ours := processesOf(svc.DisabledReason, node)
	switch e.State {
	case instancemon.ProcessFailed:
		// Nova's own disable (libvirt lost: AUTO) is taken over; any other is someone's decision.
		if !svc.Enabled() && !ours && !strings.HasPrefix(svc.DisabledReason, "AUTO:") {
			return haapi.Answer{Status: haapi.Ignored, Reason: "the host is disabled already: " + svc.DisabledReason}, nil
		}
		if slices.Contains(down, e.Process) {
			d.procs.set(node, down) // a retry of a report whose answer was lost: Nova says it all
			return haapi.Answer{Status: haapi.Coalesced, Reason: "the host is disabled for it already"}, nil
		}
		down = append(down, e.Process)
		reason := processReason(down, node)
		if _, err := d.o.Nova.DisableService(ctx, svc.ID, reason); err != nil {
			return haapi.Answer{}, fmt.Errorf("%w: disabling %s in Nova: %w", haapi.ErrUnavailable, node, err)
		}
		d.procs.set(node, down)
		d.record(ctx, history.Event{
			Host: node, Kind: history.KindAlert, Summary: fmt.Sprintf("%s cannot be restarted on %s: disabled in Nova", e.Process, node),
			Reason:  history.Reason{Code: ReasonProcessDown, Text: e.Detail},
			Details: history.DetailsOf(map[string]any{"process": e.Process, "reported_by": by.UserName, "nova_reason": reason}),
		})
		d.o.Log.Warn("a provisioning process cannot be restarted: host disabled in Nova", "host", node, "process", e.Process, "detail", e.Detail)
		if d.o.Config.Instances.ProcessMigrate && len(down) == 1 {
			d.migrateOff(node, e.Process)
		}
		return haapi.Answer{Status: haapi.Accepted, Reason: node + " disabled in Nova"}, nil
	case instancemon.ProcessRecovered:
		if !ours || !slices.Contains(down, e.Process) {
			if svc.Enabled() {
				d.procs.set(node, nil) // enabled already (a retry of a report whose answer was lost)
			}
			return haapi.Answer{Status: haapi.Ignored, Reason: "the host is not disabled for it (" + svc.Status + " " + svc.DisabledReason + ")"}, nil
		}
		down = slices.DeleteFunc(down, func(p string) bool { return p == e.Process })
		if len(down) > 0 {
			if _, err := d.o.Nova.DisableService(ctx, svc.ID, processReason(down, node)); err != nil {
				return haapi.Answer{}, fmt.Errorf("%w: updating %s's reason in Nova: %w", haapi.ErrUnavailable, node, err)
			}
			d.procs.set(node, down)
			return haapi.Answer{Status: haapi.Accepted, Reason: node + " stays disabled: " + strings.Join(down, ", ") + " still down"}, nil
		}
		if st, err := d.marks.Get(ctx, node); err != nil {
			return haapi.Answer{}, fmt.Errorf("%w: reading the host's evacuation mark: %w", haapi.ErrUnavailable, err)
		} else if st.Blocking() {
			return haapi.Answer{Status: haapi.Ignored, Reason: "the host is marked for evacuation"}, nil
		}
		if _, err := d.o.Nova.EnableService(ctx, svc.ID); err != nil {
			return haapi.Answer{}, fmt.Errorf("%w: enabling %s in Nova: %w", haapi.ErrUnavailable, node, err)
		}
		d.procs.set(node, nil)
		d.record(ctx, history.Event{
			Host: node, Kind: history.KindDecision, Summary: fmt.Sprintf("enabled %s again in Nova: %s runs", node, e.Process),
			Reason: history.Reason{Code: ReasonProcessRecovered, Text: "was disabled: " + svc.DisabledReason},
		})
		return haapi.Answer{Status: haapi.Accepted, Reason: node + " enabled in Nova"}, nil
	}
	return haapi.Answer{}, fmt.Errorf("unknown process state %q", e.State)
}

// processReason is the reason Nova keeps for node disabled because procs cannot be restarted.
func processReason(procs []string, node string) string {
	return ProcessReasonPrefix + strings.Join(procs, ", ") + " cannot be restarted on " + node
}

// processesOf reads the processes a processReason of node names; ours is false for any other
// reason.
func processesOf(reason, node string) (procs []string, ours bool) {
	rest, ok := strings.CutPrefix(reason, ProcessReasonPrefix)
	if !ok {
		return nil, false
	}
	list, ok := strings.CutSuffix(rest, " cannot be restarted on "+node)
	if !ok {
		return nil, false
	}
	return strings.Split(list, ", "), true
}

// migrateOff live-migrates the HA VMs of node to other hosts of its segment, in the
// background, in an incident.
func (d *Daemon) migrateOff(node, process string) {
	d.vms.mu.Lock()
	defer d.vms.mu.Unlock()
	if d.vms.closed || d.vms.ctx == nil {
		return
	}
	ctx := d.vms.ctx
	d.vms.wg.Go(func() {
		var inc *history.Incident
		if d.o.History != nil {
			var err error
			inc, err = d.o.History.OpenIncident(ctx, node, history.Event{
				Host: node, Kind: history.KindFailure, Summary: fmt.Sprintf("%s cannot be restarted on %s: live-migrating its HA VMs", process, node),
				Reason: history.Reason{Code: ReasonProcessDown},
			})
			if err != nil {
				d.o.Log.Warn("opening an incident failed", "error", err)
			}
		}
		job := recovery.Job{Source: d.names.ByNode(node), Situation: recovery.HostDegraded}
		if inc != nil {
			job.Recorder = inc
		}
		rep, err := d.engine.Run(ctx, job)
		outcome, summary := history.OutcomeRecovered, "every HA VM of "+node+" moved"
		switch {
		case err != nil:
			outcome, summary = history.OutcomeFailed, "moving the VMs off "+node+" stopped: "+err.Error()
		case rep.Count(recovery.Failed)+rep.Count(recovery.Unrecoverable) > 0:
			outcome, summary = history.OutcomePartial, fmt.Sprintf("%d HA VMs of %s could not be moved", rep.Count(recovery.Failed)+rep.Count(recovery.Unrecoverable), node)
		}
		if inc != nil {
			cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
			defer cancel()
			_ = inc.Close(cctx, outcome, summary, history.Reason{})
		}
	})
}

// takingReports is nil when the daemon takes reports now, or says why not (503).
func (d *Daemon) takingReports() error {
	d.vms.mu.Lock()
	started, closed := d.vms.ctx != nil, d.vms.closed
	d.vms.mu.Unlock()
	if !started || closed {
		return fmt.Errorf("%w: the daemon is starting or stopping", haapi.ErrUnavailable)
	}
	d.mu.Lock()
	noQuorum := d.quorumKnown && !d.quorate
	d.mu.Unlock()
	if noQuorum {
		// Another daemon, on the quorate side, takes it: the monitor tries again.
		return fmt.Errorf("%w: this controller's partition has no quorum", haapi.ErrUnavailable)
	}
	return nil
}
