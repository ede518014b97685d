package e2e

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/computeha/computeha/crm"
	"github.com/computeha/computeha/internal/evacstate"
	"github.com/computeha/computeha/internal/openstack"
	"github.com/computeha/computeha/test/nova"
)

// VM is a server the scenario booted.
type VM struct {
	ID, Name string
	Host     string // where it was booted
	HA       bool
}

// Boot starts n HA VMs (flavor with evacuable=true) and m others on host,
// and waits until all are ACTIVE there.
func (e *Env) Boot(ctx context.Context, host string, n, m int) ([]VM, error) {
	var vms []VM
	for i := range n + m {
		ha := i < n
		kind := "ha"
		if !ha {
			kind = "plain"
		}
		name := fmt.Sprintf("%s-%s-%02d", host, kind, i)
		id, err := e.boot(ctx, name, host, ha)
		if err != nil {
			return vms, err
		}
		vms = append(vms, VM{ID: id, Name: name, Host: host, HA: ha})
	}
	// A boot takes seconds: one that has not ended in minutes is a broken setup, said at once,
	// not a wait that eats the whole test's time.
	wctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	for i, v := range vms {
		got, err := e.Admin.Wait(wctx, v.ID)
		// A boot the scheduler failed (a host just back, or seen down
		// under load) is set up again: it is the setup, not the story.
		for try := 0; err != nil && strings.Contains(err.Error(), "ERROR") && try < 2; try++ {
			e.logf("%s: %v; booting it again", v.Name, err)
			if derr := e.Admin.Delete(ctx, v.ID); derr != nil {
				return vms, derr
			}
			if vms[i].ID, err = e.boot(ctx, v.Name, host, v.HA); err != nil {
				return vms, err
			}
			got, err = e.Admin.Wait(wctx, vms[i].ID)
		}
		if err != nil {
			return vms, err
		}
		if got != host {
			return vms, fmt.Errorf("%s booted on %s, not %s", v.Name, got, host)
		}
	}
	return vms, nil
}

// boot creates one server on host, HA through its flavor when ha is set: the image tiny with
// m1.evacuable or m1.tiny, or in a lab with guests the test guest with m1.guest-evacuable or
// m1.guest.
func (e *Env) boot(ctx context.Context, name, host string, ha bool) (string, error) {
	if !e.guests {
		flavor := nova.FlavorEvacuable
		if !ha {
			flavor = nova.FlavorTiny
		}
		return e.Admin.Boot(ctx, name, host, flavor)
	}
	image, err := e.Admin.ImageID(ctx, nova.GuestImage)
	if err != nil {
		return "", err
	}
	flavor := nova.FlavorGuestEvacuable
	if !ha {
		flavor = nova.FlavorGuest
	}
	return e.Admin.BootWith(ctx, nova.BootOpts{Name: name, Host: host, Flavor: flavor, Image: image})
}

// BootMany is Boot for many VMs: n HA VMs and m others on host, each kind in one request
// (Nova's multiple create), waited for in Nova's database rather than by one API read per
// VM, within limit. A VM Nova failed to build is deleted and booted again, alone, twice at
// most.
func (e *Env) BootMany(ctx context.Context, host string, n, m int, limit time.Duration) ([]VM, error) {
	var vms []VM
	for _, k := range []struct {
		count  int
		flavor string
		kind   string
	}{{n, nova.FlavorEvacuable, "ha"}, {m, nova.FlavorTiny, "plain"}} {
		if k.count == 0 {
			continue
		}
		names, err := e.Admin.BootMany(ctx, host+"-"+k.kind, host, k.flavor, k.count)
		if err != nil {
			return vms, err
		}
		for id, name := range names {
			vms = append(vms, VM{ID: id, Name: name, Host: host, HA: k.flavor == nova.FlavorEvacuable})
		}
	}
	tries := map[string]int{}
	deadline := time.Now().Add(limit)
	for {
		states, err := e.States(ctx)
		if err != nil {
			return vms, err
		}
		ready := 0
		for i, v := range vms {
			s := states[v.ID]
			switch {
			case s.Status == "ACTIVE" && s.TaskState == "":
				if s.Host != host {
					return vms, fmt.Errorf("%s booted on %s, not %s", v.Name, s.Host, host)
				}
				ready++
			case s.Status == "ERROR" && tries[v.Name] < 2:
				tries[v.Name]++
				e.logf("%s: ERROR; booting it again", v.Name)
				if err := e.Admin.Delete(ctx, v.ID); err != nil {
					return vms, err
				}
				flavor := nova.FlavorEvacuable
				if !v.HA {
					flavor = nova.FlavorTiny
				}
				if vms[i].ID, err = e.Admin.Boot(ctx, v.Name, host, flavor); err != nil {
					return vms, err
				}
			case s.Status == "ERROR":
				return vms, fmt.Errorf("%s failed to build %d times", v.Name, tries[v.Name]+1)
			}
		}
		if ready == len(vms) {
			return vms, nil
		}
		if time.Now().After(deadline) {
			return vms, fmt.Errorf("%d of %d VMs on %s ACTIVE after %s", ready, len(vms), host, limit)
		}
		select {
		case <-ctx.Done():
			return vms, ctx.Err()
		case <-time.After(2 * time.Second):
		}
	}
}

// Timeline is what happened after a host failed, as offsets from the fault.
type Timeline struct {
	Fault      time.Time
	Lost       time.Duration
	Fenced     time.Duration
	EvacStart  time.Duration // first evacuation Nova recorded
	AllActive  time.Duration
	VMs        map[string]time.Duration // VM name → ACTIVE elsewhere
	Where      map[string]string        // VM name → host
	FenceDone  time.Time                // Pacemaker's completion of the fencing
	FirstEvac  time.Time                // first evacuation migration's creation
	Violations []string                 // safety or outcome checks that failed
	Failed     int                      // evacuations Nova failed (and the daemon retried)
}

func (tl *Timeline) violate(format string, a ...any) {
	tl.Violations = append(tl.Violations, fmt.Sprintf(format, a...))
}

// EvacuatorPID finds the evacuation daemon: the controller running the
// evacuator, and the daemon's pid there.
func (e *Env) EvacuatorPID(ctx context.Context) (string, string, error) {
	st, err := e.CRM.Status(ctx)
	if err != nil {
		return "", "", err
	}
	for _, r := range st.Resources {
		if r.ID == "evacuator" && r.Role == "Started" && len(r.Nodes) > 0 {
			out, _, code, err := e.Lab.Exec(ctx, r.Nodes[0], "sh", "-c", "cat /run/resource-agents/computeha-evacuator-*.pid")
			if err != nil || code != 0 {
				return "", "", fmt.Errorf("evacuator pid file on %s: exit %d, %v", r.Nodes[0], code, err)
			}
			if f := strings.Fields(out); len(f) > 0 {
				return r.Nodes[0], f[0], nil
			}
		}
	}
	return "", "", fmt.Errorf("the evacuator runs nowhere")
}

// PowerLoss powers host off through its BMC and follows the recovery of
// vms until every HA VM is ACTIVE elsewhere (or limit passes), checking
// that nothing moved before the fencing was confirmed and that every HA VM
// moved exactly once.
func (e *Env) PowerLoss(ctx context.Context, host string, vms []VM, limit time.Duration, out io.Writer) (*Timeline, error) {
	return e.PowerLossHosts(ctx, []string{host}, vms, limit, out)
}

// PowerLossHosts is PowerLoss of several hosts at once: all are powered
// off together, and the timeline's Lost and Fenced are those of the last
// host to get there. vms are those of every failed host (VM.Host says
// which).
func (e *Env) PowerLossHosts(ctx context.Context, hosts []string, vms []VM, limit time.Duration, out io.Writer) (*Timeline, error) {
	return e.Recovery(ctx, hosts, vms, limit, out, func(say func(string, ...any)) error {
		var (
			wg   sync.WaitGroup
			errs = make([]error, len(hosts))
		)
		for i, h := range hosts {
			wg.Go(func() { _, errs[i] = e.Lab.Power(ctx, h, "off") })
		}
		wg.Wait()
		if err := errors.Join(errs...); err != nil {
			return err
		}
		say("%s powered off through its BMC", strings.Join(hosts, ", "))
		return nil
	})
}

// Recovery runs fault, which makes hosts fail (say prints a line of the
// timeline), and follows as PowerLoss does.
func (e *Env) Recovery(ctx context.Context, hosts []string, vms []VM, limit time.Duration, out io.Writer, fault func(say func(string, ...any)) error) (*Timeline, error) {
	tl := &Timeline{VMs: map[string]time.Duration{}, Where: map[string]string{}}
	evacStarted := e.OnEvacStart
	wctx, stop := context.WithCancel(ctx)
	defer stop()
	w := crm.NewWatcher(e.CRM, crm.WatchOptions{PollInterval: 250 * time.Millisecond})
	events := make(chan crm.Event, 256)
	go func() { _ = w.Run(wctx, events) }()
	time.Sleep(time.Second) // the watcher's first snapshot

	var mu sync.Mutex
	say := func(d time.Duration, format string, a ...any) {
		mu.Lock()
		defer mu.Unlock()
		if out != nil {
			fmt.Fprintf(out, "  %7.2fs  %s\n", d.Seconds(), fmt.Sprintf(format, a...))
		}
	}
	tl.Fault = time.Now()
	lost, fenced := map[string]bool{}, map[string]bool{}
	go func() {
		for ev := range events {
			if !slices.Contains(hosts, ev.Node) {
				continue
			}
			d := time.Since(tl.Fault)
			mu.Lock()
			switch {
			case ev.Kind == crm.NodeLost && !lost[ev.Node]:
				lost[ev.Node] = true
				if len(lost) == len(hosts) {
					tl.Lost = d
				}
			case ev.Kind == crm.NodeFenced && ev.OK && !fenced[ev.Node]:
				fenced[ev.Node] = true
				if len(fenced) == len(hosts) {
					tl.Fenced = d
				}
			}
			mu.Unlock()
			switch ev.Kind {
			case crm.NodeLost:
				say(d, "%s lost (Pacemaker)", ev.Node)
			case crm.NodeFenced:
				say(d, "%s fenced: %s %v", ev.Node, ev.Action, map[bool]string{true: "succeeded", false: "FAILED"}[ev.OK])
			}
		}
	}()

	if err := fault(func(format string, a ...any) { say(time.Since(tl.Fault), format, a...) }); err != nil {
		return tl, err
	}

	want := 0
	for _, v := range vms {
		if v.HA {
			want++
		}
	}
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		// From the database, not the API: the watcher must not slow the
		// control plane it measures.
		states, err := e.States(ctx)
		if err == nil {
			done := 0
			for _, v := range vms {
				if !v.HA {
					continue
				}
				if _, seen := tl.VMs[v.Name]; seen {
					done++
					continue
				}
				s := states[v.ID]
				if s.Host != "" && !slices.Contains(hosts, s.Host) && s.Status == "ACTIVE" && s.TaskState == "" {
					d := time.Since(tl.Fault)
					tl.VMs[v.Name], tl.Where[v.Name] = d, s.Host
					say(d, "%s ACTIVE on %s", v.Name, s.Host)
					done++
				}
				if tl.EvacStart == 0 && s.TaskState != "" && s.Host != "" {
					tl.EvacStart = time.Since(tl.Fault)
					say(tl.EvacStart, "evacuation started (first VM rebuilding)")
					if evacStarted != nil {
						evacStarted()
						evacStarted = nil
					}
				}
			}
			if done == want {
				tl.AllActive = time.Since(tl.Fault)
				break
			}
		}
		time.Sleep(250 * time.Millisecond)
	}
	stop()
	if tl.AllActive == 0 && out != nil {
		e.Diagnose(out)
	}
	e.check(ctx, tl, hosts, vms)
	return tl, nil
}

// check verifies safety and outcome after the fact.
func (e *Env) check(ctx context.Context, tl *Timeline, failed []string, vms []VM) {
	segment := e.Computes()
	for _, v := range vms {
		s, err := e.Nova.Server(ctx, v.ID)
		if err != nil {
			tl.violate("%s: %v", v.Name, err)
			continue
		}
		if v.HA && (slices.Contains(failed, s.Host) || s.Status != "ACTIVE" || !slices.Contains(segment, s.Host)) {
			tl.violate("HA VM %s is %s on %s, want ACTIVE on a segment host that did not fail", v.Name, s.Status, s.Host)
		}
		if !v.HA && s.Host != v.Host {
			tl.violate("non-HA VM %s was moved to %s", v.Name, s.Host)
		}
	}
	per := map[string]int{}
	for _, host := range failed {
		migs, err := e.Nova.Migrations(ctx, openstack.MigrationFilter{Host: host, Type: "evacuation"})
		if err != nil {
			tl.violate("migrations: %v", err)
			return
		}
		var first time.Time
		for _, m := range migs {
			// This fault's evacuations: the host may have been evacuated by an earlier one.
			if m.SourceCompute != host || m.CreatedAt.Before(tl.Fault.Add(-time.Second)) {
				continue
			}
			// An evacuation Nova failed (no valid host) rebuilt nothing:
			// its retry is not a second copy of the VM.
			if m.Status == "error" || m.Status == "failed" {
				tl.Failed++
			} else {
				per[m.ServerID]++
			}
			if first.IsZero() || m.CreatedAt.Before(first) {
				first = m.CreatedAt
			}
		}
		if tl.FirstEvac.IsZero() || (!first.IsZero() && first.Before(tl.FirstEvac)) {
			tl.FirstEvac = first
		}
		hist, err := e.Fencings(ctx, host)
		if err != nil {
			tl.violate("fencing history: %v", err)
			return
		}
		var done time.Time
		for _, f := range hist {
			if f.Succeeded() && !f.Completed.Before(tl.Fault.Add(-time.Second)) && (done.IsZero() || f.Completed.Before(done)) {
				done = f.Completed
			}
		}
		switch {
		case done.IsZero():
			tl.violate("no successful fencing of %s in Pacemaker's history", host)
		case !first.IsZero() && first.Before(done.Truncate(time.Second)):
			tl.violate("first evacuation from %s at %s, before its fencing completed at %s", host, first, done)
		}
		if tl.FenceDone.IsZero() || done.After(tl.FenceDone) {
			tl.FenceDone = done
		}
	}
	if tl.EvacStart == 0 && !tl.FirstEvac.IsZero() {
		tl.EvacStart = tl.FirstEvac.Sub(tl.Fault)
	}
	for _, v := range vms {
		// Rebuilt once: counted from Nova's completed rebuilds, which the migration records
		// do not tell (a rebuild asked again after a lost one is recorded on the lost one's).
		if v.HA {
			n, err := e.rebuilds(ctx, v.ID, tl.Fault)
			switch {
			case err != nil:
				tl.violate("rebuilds of %s: %v", v.Name, err)
			case n != 1:
				tl.violate("HA VM %s was rebuilt %d times, want once", v.Name, n)
			}
		}
		if !v.HA && per[v.ID] != 0 {
			tl.violate("non-HA VM %s was evacuated", v.Name)
		}
	}
}

// PowerOn powers host on and waits until it has rejoined, nova-compute runs
// there again and Nova has it up, unforced and enabled, and the
// evacuation mark no longer blocks it.
func (e *Env) PowerOn(ctx context.Context, host string, limit time.Duration, out io.Writer) (time.Duration, error) {
	start := time.Now()
	if _, err := e.Lab.Power(ctx, host, "on"); err != nil {
		return 0, err
	}
	if out != nil {
		fmt.Fprintf(out, "  %7.2fs  %s powered on through its BMC\n", 0.0, host)
	}
	return e.WaitBack(ctx, host, start, limit, out)
}

// WaitBack waits until host, powered on at start, is back: rejoined,
// running nova-compute, up and enabled in Nova, and no longer held by its
// evacuation mark.
func (e *Env) WaitBack(ctx context.Context, host string, start time.Time, limit time.Duration, out io.Writer) (time.Duration, error) {
	deadline := start.Add(limit)
	var why string
	for time.Now().Before(deadline) {
		why = e.hostBack(ctx, host)
		if why == "" {
			d := time.Since(start)
			if out != nil {
				fmt.Fprintf(out, "  %7.2fs  %s rejoined; nova-compute runs; Nova has it up and enabled\n", d.Seconds(), host)
			}
			return d, nil
		}
		time.Sleep(500 * time.Millisecond)
	}
	return 0, fmt.Errorf("%s not back within %s: %s", host, limit, why)
}

func (e *Env) hostBack(ctx context.Context, host string) string {
	st, err := e.CRM.Status(ctx)
	if err != nil {
		return err.Error()
	}
	if n, _ := st.Node(host); !n.Online || n.Unclean {
		// A host switched off again after its power-on (a fencing) never comes back: say so.
		if p, err := e.Lab.Power(ctx, host, "status"); err == nil && p == "off" {
			return "not online: its power is off (fenced again after its power-on?)"
		}
		return "not online"
	}
	running := false
	for _, r := range st.Resources {
		if strings.HasPrefix(r.ID, "nova-compute") && r.Role == "Started" && slices.Contains(r.Nodes, host) {
			running = true
		}
	}
	if !running {
		if p, err := e.Lab.Power(ctx, host, "status"); err == nil && p == "off" {
			return "nova-compute not started there: its power is off (fenced again after its power-on?)"
		}
		return "nova-compute not started there"
	}
	s, err := e.Nova.FindComputeService(ctx, host)
	if err != nil {
		return err.Error()
	}
	if s.State != "up" || s.ForcedDown || !s.Enabled() {
		return fmt.Sprintf("Nova: %s, forced down %v, %s", s.State, s.ForcedDown, s.Status)
	}
	if st, err := e.Mark(ctx, host); err == nil && st.Blocking() {
		return "evacuation " + string(st.Phase)
	}
	return ""
}

// Summary renders the timeline's figures.
func (tl *Timeline) Summary() string {
	var b strings.Builder
	fmt.Fprintf(&b, "power off -> lost %s, fenced %s, evacuation started %s, all HA VMs ACTIVE %s\n",
		r(tl.Lost), r(tl.Fenced), r(tl.EvacStart), r(tl.AllActive))
	if tl.Failed > 0 {
		fmt.Fprintf(&b, "%d evacuations failed in Nova and were retried\n", tl.Failed)
	}
	names := make([]string, 0, len(tl.VMs))
	for n := range tl.VMs {
		names = append(names, n)
	}
	sort.Strings(names)
	if len(tl.Violations) > 0 {
		fmt.Fprintf(&b, "VIOLATIONS:\n  %s\n", strings.Join(tl.Violations, "\n  "))
	}
	return b.String()
}

func r(d time.Duration) string {
	if d == 0 {
		return "-"
	}
	return d.Round(10 * time.Millisecond).String()
}

// Fencings lists the fencing operations on host: crm_mon's full history
// and stonith_admin's, which without --verbose lists one operation per
// target, not always the latest.
func (e *Env) Fencings(ctx context.Context, host string) ([]crm.FenceEvent, error) {
	st, err := e.CRM.Status(ctx)
	if err != nil {
		return nil, err
	}
	var out []crm.FenceEvent
	for _, f := range st.Fencing {
		if f.Target == host {
			out = append(out, f)
		}
	}
	hist, err := e.CRM.FencingHistory(ctx, host)
	if err != nil {
		return nil, err
	}
	return append(out, hist...), nil
}

// scenario runs f as the subtest name of t; when it fails, the lab is restored (restore) so
// that the scenarios after it test what they are about, not what this one left behind.
func (e *Env) scenario(ctx context.Context, t *testing.T, name string, f func(t *testing.T)) {
	t.Helper()
	if !t.Run(name, f) {
		e.restore(ctx, t)
	}
}

// restore brings the lab back after a failed scenario: a failed recovery cleared, every
// compute powered on, each waited for (3 minutes at most) until it is back. What it does is
// logged; the failure itself was said by the scenario.
func (e *Env) restore(ctx context.Context, t *testing.T) {
	t.Helper()
	for _, h := range e.Computes() {
		if st, err := e.Mark(ctx, h); err == nil && st.Phase == evacstate.Failed {
			out, errOut, code, err := e.Computeha(ctx, "recovery", "clear", h)
			t.Logf("restore: computeha recovery clear %s: exit %d, %v: %s%s", h, code, err, strings.TrimSpace(out), strings.TrimSpace(errOut))
		}
		if p, err := e.Lab.Power(ctx, h, "status"); err == nil && p == "off" {
			t.Logf("restore: powering %s on", h)
			if _, err := e.Lab.Power(ctx, h, "on"); err != nil {
				t.Logf("restore: powering %s on: %v", h, err)
			}
		}
	}
	for _, h := range e.Computes() {
		if _, err := e.WaitBack(ctx, h, time.Now(), 3*time.Minute, nil); err != nil {
			t.Logf("restore: %v", err)
		}
	}
}

// rebuilds is Admin.Rebuilds, read again for up to 10 s while it is 0: Nova records a rebuild's
// end just after the VM turns ACTIVE.
func (e *Env) rebuilds(ctx context.Context, id string, since time.Time) (int, error) {
	deadline := time.Now().Add(10 * time.Second)
	for {
		n, err := e.Admin.Rebuilds(ctx, id, since)
		if err != nil || n > 0 || time.Now().After(deadline) {
			return n, err
		}
		time.Sleep(500 * time.Millisecond)
	}
}
