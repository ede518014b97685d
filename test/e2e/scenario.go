package e2e

import (
	"context"
	"fmt"
	"io"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/computeha/computeha/crm"
	"github.com/computeha/computeha/internal/evacstate"
	"github.com/computeha/computeha/internal/openstack"
	"github.com/computeha/computeha/test/nova"
)

// VM is a server the scenario booted.
type VM struct {
	ID, Name string
	HA       bool
}

// Boot starts n HA VMs (flavor with evacuable=true) and m others on host,
// and waits until all are ACTIVE there.
func (e *Env) Boot(ctx context.Context, host string, n, m int) ([]VM, error) {
	var vms []VM
	for i := range n + m {
		ha := i < n
		flavor, kind := nova.FlavorEvacuable, "ha"
		if !ha {
			flavor, kind = nova.FlavorTiny, "plain"
		}
		name := fmt.Sprintf("%s-%s-%02d", host, kind, i)
		id, err := e.Admin.Boot(ctx, name, host, flavor)
		if err != nil {
			return vms, err
		}
		vms = append(vms, VM{ID: id, Name: name, HA: ha})
	}
	for _, v := range vms {
		got, err := e.Admin.Wait(ctx, v.ID)
		if err != nil {
			return vms, err
		}
		if got != host {
			return vms, fmt.Errorf("%s booted on %s, not %s", v.Name, got, host)
		}
	}
	return vms, nil
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
	if _, err := e.Lab.Power(ctx, host, "off"); err != nil {
		return tl, err
	}
	say(0, "%s powered off through its BMC", host)
	go func() {
		for ev := range events {
			if ev.Node != host {
				continue
			}
			d := time.Since(tl.Fault)
			mu.Lock()
			switch {
			case ev.Kind == crm.NodeLost && tl.Lost == 0:
				tl.Lost = d
			case ev.Kind == crm.NodeFenced && ev.OK && tl.Fenced == 0:
				tl.Fenced = d
			}
			mu.Unlock()
			switch ev.Kind {
			case crm.NodeLost:
				say(d, "%s lost (Pacemaker)", host)
			case crm.NodeFenced:
				say(d, "%s fenced: %s %v", host, ev.Action, map[bool]string{true: "succeeded", false: "FAILED"}[ev.OK])
			}
		}
	}()

	want := 0
	for _, v := range vms {
		if v.HA {
			want++
		}
	}
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		// One listing per round: the watcher must not slow the control
		// plane it measures.
		states, err := e.Admin.States(ctx)
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
				if s.Host != "" && s.Host != host && s.Status == "ACTIVE" && s.TaskState == "" {
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
		time.Sleep(500 * time.Millisecond)
	}
	stop()
	e.check(ctx, tl, host, vms)
	return tl, nil
}

// check verifies safety and outcome after the fact.
func (e *Env) check(ctx context.Context, tl *Timeline, host string, vms []VM) {
	segment := e.Computes()
	for _, v := range vms {
		s, err := e.Nova.Server(ctx, v.ID)
		if err != nil {
			tl.violate("%s: %v", v.Name, err)
			continue
		}
		if v.HA && (s.Host == host || s.Status != "ACTIVE" || !slices.Contains(segment, s.Host)) {
			tl.violate("HA VM %s is %s on %s, want ACTIVE on another segment host", v.Name, s.Status, s.Host)
		}
		if !v.HA && s.Host != host {
			tl.violate("non-HA VM %s was moved to %s", v.Name, s.Host)
		}
	}
	migs, err := e.Nova.Migrations(ctx, openstack.MigrationFilter{Host: host, Type: "evacuation"})
	if err != nil {
		tl.violate("migrations: %v", err)
		return
	}
	per := map[string]int{}
	for _, m := range migs {
		if m.SourceCompute != host {
			continue
		}
		per[m.ServerID]++
		if tl.FirstEvac.IsZero() || m.CreatedAt.Before(tl.FirstEvac) {
			tl.FirstEvac = m.CreatedAt
		}
	}
	if tl.EvacStart == 0 && !tl.FirstEvac.IsZero() {
		tl.EvacStart = tl.FirstEvac.Sub(tl.Fault)
	}
	for _, v := range vms {
		if v.HA && per[v.ID] != 1 {
			tl.violate("HA VM %s was evacuated %d times", v.Name, per[v.ID])
		}
		if !v.HA && per[v.ID] != 0 {
			tl.violate("non-HA VM %s was evacuated", v.Name)
		}
	}
	hist, err := e.CRM.FencingHistory(ctx, host)
	if err != nil {
		tl.violate("fencing history: %v", err)
		return
	}
	for _, f := range hist {
		if f.Succeeded() && !f.Completed.Before(tl.Fault.Add(-time.Second)) && (tl.FenceDone.IsZero() || f.Completed.Before(tl.FenceDone)) {
			tl.FenceDone = f.Completed
		}
	}
	switch {
	case tl.FenceDone.IsZero():
		tl.violate("no successful fencing of %s in Pacemaker's history", host)
	case !tl.FirstEvac.IsZero() && tl.FirstEvac.Before(tl.FenceDone.Truncate(time.Second)):
		tl.violate("first evacuation at %s, before the fencing completed at %s", tl.FirstEvac, tl.FenceDone)
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
		return "not online"
	}
	running := false
	for _, r := range st.Resources {
		if strings.HasPrefix(r.ID, "nova-compute") && r.Role == "Started" && slices.Contains(r.Nodes, host) {
			running = true
		}
	}
	if !running {
		return "nova-compute not started there"
	}
	s, err := e.Nova.FindComputeService(ctx, host)
	if err != nil {
		return err.Error()
	}
	if s.State != "up" || s.ForcedDown || !s.Enabled() {
		return fmt.Sprintf("Nova: %s, forced down %v, %s", s.State, s.ForcedDown, s.Status)
	}
	v, err := e.CRM.Attribute(ctx, host, evacstate.Attribute, crm.Permanent)
	if err == nil {
		if st, _ := evacstate.Parse(v); st.Blocking() {
			return "evacuation " + string(st.Phase)
		}
	}
	return ""
}

// Summary renders the timeline's figures.
func (tl *Timeline) Summary() string {
	var b strings.Builder
	fmt.Fprintf(&b, "power off -> lost %s, fenced %s, evacuation started %s, all HA VMs ACTIVE %s\n",
		r(tl.Lost), r(tl.Fenced), r(tl.EvacStart), r(tl.AllActive))
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
