//go:build e2e

package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/computeha/computeha/crm"
	"github.com/computeha/computeha/internal/evacstate"
	"github.com/computeha/computeha/internal/openstack"
	"github.com/computeha/computeha/test/nova"
)

// booted is a server a recovery scenario booted, by name.
type booted map[string]string

// bootAll boots every server of opts and waits until each is ACTIVE on its host.
func (e *Env) bootAll(ctx context.Context, t *testing.T, opts ...nova.BootOpts) booted {
	t.Helper()
	out := booted{}
	for _, o := range opts {
		id, err := e.Admin.BootWith(ctx, o)
		if err != nil {
			t.Fatal(err)
		}
		out[o.Name] = id
	}
	for _, o := range opts {
		host, err := e.Admin.Wait(ctx, out[o.Name])
		if err != nil {
			t.Fatalf("%s: %v", o.Name, err)
		}
		if host != o.Host {
			t.Fatalf("%s booted on %s, not %s", o.Name, host, o.Host)
		}
	}
	return out
}

// haMeta is the instance metadata of an HA VM with the given extra keys.
func haMeta(kv ...string) map[string]string {
	m := map[string]string{"HA_Enabled": "true"}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return m
}

// powerOffUntilDone powers host off and waits until its evacuation mark says done (or failed,
// which fails t), and returns when the power went.
func (e *Env) powerOffUntilDone(ctx context.Context, t *testing.T, host string, limit time.Duration) time.Time {
	t.Helper()
	fault := time.Now()
	if _, err := e.Lab.Power(ctx, host, "off"); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(limit)
	for {
		st, err := e.Mark(ctx, host)
		if err == nil && st.Phase == evacstate.Done && !st.Since.Before(fault.Add(-time.Second).Truncate(time.Second)) {
			t.Logf("%s fenced and its recovery done %s after the power-off", host, time.Since(fault).Round(time.Millisecond))
			return fault
		}
		if err == nil && st.Phase == evacstate.Failed {
			t.Fatalf("the recovery of %s failed: %s", host, st.Reason)
		}
		if time.Now().After(deadline) {
			t.Fatalf("the recovery of %s not done within %s (mark %+v, %v)", host, limit, st, err)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// nothingBeforeFencing fails t when an evacuation or recreation from host began before its
// fencing completed.
func (e *Env) nothingBeforeFencing(ctx context.Context, t *testing.T, host string, fault time.Time) {
	t.Helper()
	hist, err := e.Fencings(ctx, host)
	if err != nil {
		t.Fatal(err)
	}
	var fenced time.Time
	for _, f := range hist {
		if f.Succeeded() && !f.Completed.Before(fault.Add(-time.Second)) && (fenced.IsZero() || f.Completed.Before(fenced)) {
			fenced = f.Completed
		}
	}
	if fenced.IsZero() {
		t.Fatalf("no successful fencing of %s since %s", host, fault)
	}
	moves, err := e.HistoryMoves(ctx, host)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range moves {
		if m.From == host && m.Result != "skipped" && m.Start.After(fault) && m.Start.Before(fenced.Truncate(time.Second)) {
			t.Errorf("%s of %s began at %s, before %s's fencing completed at %s", m.Method, m.VMName, m.Start, host, fenced)
		}
	}
}

// classesAndGroups: a failed host carrying VMs of three recovery classes and members of server
// groups. The evacuate VMs are rebuilt elsewhere, keeping their ids; the recreate VM is
// deleted and created again with its name, flavor, image, metadata and server group; the none
// VM is left and recorded. An anti-affinity member never joins another member; two
// soft-anti-affinity members end on two hosts; an anti-affinity member that no host may take
// is reported, not moved.
func classesAndGroups(ctx context.Context, t *testing.T, env *Env) {
	fresh(ctx, t, env)
	if err := env.Admin.DeleteGroups(ctx); err != nil {
		t.Fatal(err)
	}
	const host = "cmp1"
	group := func(name, policy string) string {
		id, err := env.Admin.CreateGroup(ctx, name, policy)
		if err != nil {
			t.Fatal(err)
		}
		return id
	}
	anti, soft, full, cattle := group("anti", "anti-affinity"), group("soft", "soft-anti-affinity"), group("full", "anti-affinity"), group("cattle", "anti-affinity")
	b := func(name, on, group string, meta map[string]string) nova.BootOpts {
		return nova.BootOpts{Name: name, Host: on, Flavor: nova.FlavorTiny, Metadata: meta, Group: group}
	}
	vms := env.bootAll(ctx, t,
		b("pet-1", host, "", haMeta()),
		b("pet-2", host, "", haMeta()),
		b("cattle", host, cattle, haMeta("computeha_recovery", "recreate-losing-local-data", "role", "web")),
		b("cattle-peer", "cmp2", cattle, nil),
		b("keep", host, "", haMeta("computeha_recovery", "none")),
		b("anti-1", host, anti, haMeta()),
		b("anti-2", "cmp2", anti, nil),
		b("soft-1", host, soft, haMeta()),
		b("soft-2", host, soft, haMeta()),
		b("full-1", host, full, haMeta()),
		b("full-2", "cmp2", full, nil),
		b("full-3", "cmp3", full, nil),
	)
	before := map[string]openstack.Server{}
	for name, id := range vms {
		s, err := env.Nova.Server(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		before[name] = s
	}
	fault := env.powerOffUntilDone(ctx, t, host, 4*time.Minute)
	env.nothingBeforeFencing(ctx, t, host, fault)

	server := func(name string) openstack.Server {
		s, err := env.Nova.Server(ctx, vms[name])
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		return s
	}
	evacuations := func(name string) int {
		migs, err := env.Nova.Migrations(ctx, openstack.MigrationFilter{ServerID: vms[name], Type: "evacuation"})
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, m := range migs {
			if m.Status != "error" && m.Status != "failed" {
				n++
			}
		}
		return n
	}
	for _, name := range []string{"pet-1", "pet-2", "anti-1", "soft-1", "soft-2"} {
		s := server(name)
		if s.Host == host || s.Status != "ACTIVE" || evacuations(name) != 1 {
			t.Errorf("%s is %s on %s after %d evacuations, want ACTIVE elsewhere after one", name, s.Status, s.Host, evacuations(name))
		}
	}
	if h := server("anti-1").Host; h == "cmp2" {
		t.Errorf("anti-affinity member anti-1 landed on cmp2, with anti-2")
	}
	if h1, h2 := server("soft-1").Host, server("soft-2").Host; h1 == h2 {
		t.Errorf("both soft-anti-affinity members on %s", h1)
	}
	for _, name := range []string{"keep", "full-1"} {
		if s := server(name); s.Host != host || evacuations(name) != 0 {
			t.Errorf("%s is on %s after %d evacuations, want left on %s", name, s.Host, evacuations(name), host)
		}
	}
	// The recreated VM: a new server, the same specification.
	if _, err := env.Nova.Server(ctx, vms["cattle"]); !openstack.IsNotFound(err) {
		t.Errorf("the recreated VM's old server is still there (%v)", err)
	}
	all, err := env.States(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var again []openstack.Server
	for id := range all {
		s, err := env.Nova.Server(ctx, id)
		if err == nil && s.Name == "cattle" {
			again = append(again, s)
		}
	}
	if len(again) != 1 {
		t.Fatalf("%d servers named cattle after the recovery, want 1", len(again))
	}
	old, got := before["cattle"], again[0]
	if got.Status != "ACTIVE" || got.Host == host || got.Host == "cmp2" {
		t.Errorf("recreated cattle is %s on %s, want ACTIVE on neither %s nor cmp2 (its anti-affinity peer)", got.Status, got.Host, host)
	}
	if got.Flavor.OriginalName != old.Flavor.OriginalName || got.ImageID != old.ImageID || got.Metadata["role"] != "web" ||
		got.Metadata["computeha_recovery"] != old.Metadata["computeha_recovery"] || got.ProjectID != old.ProjectID {
		t.Errorf("recreated cattle differs: flavor %s image %s metadata %v project %s; was %s %s %v %s",
			got.Flavor.OriginalName, got.ImageID, got.Metadata, got.ProjectID, old.Flavor.OriginalName, old.ImageID, old.Metadata, old.ProjectID)
	}
	if members, err := env.Admin.GroupMembers(ctx, cattle); err != nil || !slices.Contains(members, got.ID) || slices.Contains(members, old.ID) {
		t.Errorf("server group cattle holds %v (%v), want the new %s and not the old %s", members, err, got.ID, old.ID)
	}
	// What the history says of each.
	evs, err := env.History(ctx, host, "")
	if err != nil {
		t.Fatal(err)
	}
	has := func(code, name string) bool {
		return slices.ContainsFunc(evs, func(e HistoryEvent) bool { return e.ReasonCode == code && strings.Contains(e.Summary, name) })
	}
	for _, c := range []struct{ code, name string }{
		{"class-none", "keep"}, {"anti-affinity-unsatisfiable", "full-1"}, {"recreated", "cattle"},
	} {
		if !has(c.code, c.name) {
			t.Errorf("no %s event about %s in %s's history", c.code, c.name, host)
		}
	}
	moves, err := env.HistoryMoves(ctx, host)
	if err != nil {
		t.Fatal(err)
	}
	methods := map[string]string{}
	for _, m := range moves {
		if m.Start.After(fault) {
			methods[m.VMName] = m.Method + "/" + m.Result
		}
	}
	for name, want := range map[string]string{"pet-1": "evacuate/succeeded", "cattle": "recreate/succeeded", "keep": "none/skipped", "full-1": "evacuate/failed"} {
		if methods[name] != want {
			t.Errorf("the history's move of %s: %q, want %q", name, methods[name], want)
		}
	}
	if _, err := env.PowerOn(ctx, host, 4*time.Minute, testLog{t}); err != nil {
		t.Error(err)
	}
}

// restartTiers: with tiers on, the VMs of a lower restart priority are asked for only once
// every VM of the higher one is ACTIVE on its target for the ready delay; a VM of a tier that
// cannot be recovered for now holds the next tier back only for the tier timeout.
func restartTiers(ctx context.Context, t *testing.T, env *Env) {
	fresh(ctx, t, env)
	const host, timeout, ready = "cmp2", 20 * time.Second, 2 * time.Second
	if err := env.Reconfigure(ctx, func(s *Settings) {
		s.Tiers = fmt.Sprintf("{enabled: true, timeout: %s, ready_delay: %s}", timeout, ready)
		// The stuck VM keeps being retried until the test makes room for it.
		s.Retries, s.Backoff = 40, "{initial: 2s, max: 3s}"
	}); err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := env.Reconfigure(context.Background(), func(s *Settings) { *s = DefaultSettings() }); err != nil {
			t.Errorf("restoring the settings: %v", err)
		}
	}()
	// A VM too big for any host left once the others hold a filler as big: stuck until a
	// filler goes.
	const huge = "91"
	if err := env.Admin.EnsureFlavor(ctx, huge, "m1.huge", 1, 700000, 1); err != nil {
		t.Fatal(err)
	}
	b := func(name, on, flavor string, meta map[string]string) nova.BootOpts {
		return nova.BootOpts{Name: name, Host: on, Flavor: flavor, Metadata: meta}
	}
	prio := func(p int) map[string]string { return haMeta("restart_priority", fmt.Sprint(p)) }
	vms := env.bootAll(ctx, t,
		b("db-1", host, nova.FlavorTiny, prio(10)), b("db-2", host, nova.FlavorTiny, prio(10)),
		b("app-1", host, nova.FlavorTiny, prio(5)), b("stuck", host, huge, prio(5)),
		b("web-1", host, nova.FlavorTiny, prio(1)), b("web-2", host, nova.FlavorTiny, prio(1)),
		b("filler-1", "cmp1", huge, nil), b("filler-3", "cmp3", huge, nil),
	)
	fault := time.Now()
	if _, err := env.Lab.Power(ctx, host, "off"); err != nil {
		t.Fatal(err)
	}
	// Tier 3 begins once tier 2's timeout has passed; then the stuck VM is given room.
	var moves []HistoryMove
	deadline := time.Now().Add(4 * time.Minute)
	for {
		var err error
		if moves, err = env.HistoryMoves(ctx, host); err != nil {
			t.Fatal(err)
		}
		if slices.ContainsFunc(moves, func(m HistoryMove) bool { return m.VMName == "web-1" && m.Start.After(fault) }) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("tier 3 did not begin within 4 minutes: %+v", moves)
		}
		time.Sleep(500 * time.Millisecond)
	}
	if err := env.Admin.Delete(ctx, vms["filler-3"]); err != nil {
		t.Fatal(err)
	}
	deadline = time.Now().Add(4 * time.Minute)
	for {
		st, err := env.Mark(ctx, host)
		if err == nil && st.Phase == evacstate.Done {
			break
		}
		if err == nil && st.Phase == evacstate.Failed || time.Now().After(deadline) {
			t.Fatalf("the recovery of %s did not end done: %+v (%v)", host, st, err)
		}
		time.Sleep(500 * time.Millisecond)
	}
	env.nothingBeforeFencing(ctx, t, host, fault)
	if moves, err := env.HistoryMoves(ctx, host); err == nil {
		moves = slices.DeleteFunc(moves, func(m HistoryMove) bool { return !m.Start.After(fault) })
		at := map[string]HistoryMove{}
		for _, m := range moves {
			at[m.VMName] = m
		}
		for _, name := range []string{"db-1", "db-2", "app-1", "stuck", "web-1", "web-2"} {
			if m, ok := at[name]; !ok || m.Result != "succeeded" {
				t.Errorf("%s: %+v, want a move that succeeded", name, m)
			}
		}
		tier1End := maxTime(at["db-1"].End, at["db-2"].End)
		for _, name := range []string{"app-1", "stuck"} {
			if s := at[name].Start; s.Before(tier1End.Add(ready)) {
				t.Errorf("tier 2's %s asked for at %s, before tier 1 had run %s (its last VM ACTIVE at %s)", name, s.Format(time.StampMilli), ready, tier1End.Format(time.StampMilli))
			}
		}
		tier2Start := minTime(at["app-1"].Start, at["stuck"].Start)
		tier3Start := minTime(at["web-1"].Start, at["web-2"].Start)
		// Tier 2's moves are recorded a moment after its timeout began to run.
		if d := tier3Start.Sub(tier2Start); d < timeout-time.Second || d > timeout+15*time.Second {
			t.Errorf("tier 3 began %s after tier 2, want about the %s tier timeout (the stuck VM holds it no longer)", d, timeout)
		}
		t.Logf("tier 1 done %s after the fault; tier 2 began %s later; tier 3 %s after tier 2",
			tier1End.Sub(fault).Round(time.Millisecond), tier2Start.Sub(tier1End).Round(time.Millisecond), tier3Start.Sub(tier2Start).Round(time.Millisecond))
	} else {
		t.Fatal(err)
	}
	evs, err := env.History(ctx, host, "")
	if err != nil {
		t.Fatal(err)
	}
	for _, code := range []string{"tier-ready", "tier-timeout"} {
		if !slices.ContainsFunc(evs, func(e HistoryEvent) bool { return e.ReasonCode == code }) {
			t.Errorf("no %s event in %s's history", code, host)
		}
	}
	if _, err := env.PowerOn(ctx, host, 4*time.Minute, testLog{t}); err != nil {
		t.Error(err)
	}
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

// reservedHostsOfAnAggregateSegment: the segment is a Nova aggregate; with reserved_host its
// reserved host takes the failed host's VMs and is taken into use; `computeha reserved
// return` refuses it while it holds them and, once they are deleted, gives it back to the
// pool, where the next failure takes it again; then, with rh_priority and another reserved
// host, that one does.
func reservedHostsOfAnAggregateSegment(ctx context.Context, t *testing.T, env *Env) {
	fresh(ctx, t, env)
	const agg, host = "lab-ha", "cmp1"
	if _, err := env.Admin.SetAggregate(ctx, agg, env.Computes()); err != nil {
		t.Fatal(err)
	}
	defer func() {
		cctx := context.Background()
		for _, h := range []string{"cmp2", "cmp3"} {
			_ = env.CRM.DeleteAttribute(cctx, h, "computeha-reserved-used", crm.Permanent)
			if svc, err := env.Nova.FindComputeService(cctx, h); err == nil && !svc.Enabled() {
				_, _ = env.Nova.EnableService(cctx, svc.ID)
			}
		}
		if err := env.Reconfigure(cctx, func(s *Settings) { *s = DefaultSettings() }); err != nil {
			t.Errorf("restoring the settings: %v", err)
		}
		if err := env.Admin.DeleteAggregate(cctx, agg); err != nil {
			t.Errorf("deleting the aggregate: %v", err)
		}
	}()
	// reserved_host twice: the reserved host taken by the first failure is returned to the
	// pool (computeha reserved return) and taken again by the second.
	for i, c := range []struct{ method, reserved string }{{"reserved_host", "cmp3"}, {"reserved_host", "cmp3"}, {"rh_priority", "cmp2"}} {
		svc, err := env.Nova.FindComputeService(ctx, c.reserved)
		if err != nil {
			t.Fatal(err)
		}
		if i == 1 {
			// Given back by the operator after the first failure.
			if svc.Enabled() || !strings.HasPrefix(svc.DisabledReason, evacstate.ReserveReasonPrefix) {
				t.Fatalf("%s after its return: %+v, want disabled as held in reserve", c.reserved, svc)
			}
		} else if _, err := env.Nova.DisableService(ctx, svc.ID, "reserved for failover"); err != nil {
			t.Fatal(err)
		}
		if err := env.Reconfigure(ctx, func(s *Settings) {
			s.Segment = fmt.Sprintf("    aggregate: %s\n    recovery_method: %s\n    reserved_hosts: [%s]\n", agg, c.method, c.reserved)
		}); err != nil {
			t.Fatal(err)
		}
		vms := env.bootAll(ctx, t,
			nova.BootOpts{Name: c.method + "-1", Host: host, Flavor: nova.FlavorTiny, Metadata: haMeta()},
			nova.BootOpts{Name: c.method + "-2", Host: host, Flavor: nova.FlavorTiny, Metadata: haMeta()})
		fault := env.powerOffUntilDone(ctx, t, host, 4*time.Minute)
		env.nothingBeforeFencing(ctx, t, host, fault)
		for name, id := range vms {
			s, err := env.Nova.Server(ctx, id)
			if err != nil || s.Host != c.reserved || s.Status != "ACTIVE" {
				t.Errorf("%s: %s: %s on %s (%v), want ACTIVE on the reserved host %s", c.method, name, s.Status, s.Host, err, c.reserved)
			}
		}
		if svc, err := env.Nova.FindComputeService(ctx, c.reserved); err != nil || !svc.Enabled() {
			t.Errorf("%s: the reserved host %s taken into use is not enabled: %+v (%v)", c.method, c.reserved, svc, err)
		}
		if v, err := env.CRM.Attribute(ctx, c.reserved, "computeha-reserved-used", crm.Permanent); err != nil || v == "" {
			t.Errorf("%s: %s's node does not record its use: %q (%v)", c.method, c.reserved, v, err)
		}
		if i == 0 {
			env.reserved(ctx, t, c.reserved, "in-use")
			if out, errOut, code, err := env.Computeha(ctx, "reserved", "return", "--config", env.EvacdConfig(), c.reserved); err != nil || code != 1 || !strings.Contains(errOut, "not empty") {
				t.Errorf("computeha reserved return %s holding VMs: exit %d, %v, %q, %q: want a refusal", c.reserved, code, err, out, errOut)
			}
			env.reserved(ctx, t, c.reserved, "in-use")
		}
		if _, err := env.PowerOn(ctx, host, 4*time.Minute, testLog{t}); err != nil {
			t.Fatal(err)
		}
		fresh(ctx, t, env)
		if i == 0 {
			env.returnReserved(ctx, t, c.reserved, time.Minute)
			env.reserved(ctx, t, c.reserved, "in-reserve")
		}
	}
}

// reserved checks `computeha reserved list` says host is state.
func (e *Env) reserved(ctx context.Context, t *testing.T, host, state string) {
	t.Helper()
	out, errOut, code, err := e.Computeha(ctx, "reserved", "list", "--json", "--config", e.EvacdConfig())
	if err != nil || code != 0 {
		t.Fatalf("computeha reserved list: exit %d, %v: %s%s", code, err, out, errOut)
	}
	for line := range strings.Lines(out) {
		var r struct{ Host, State string }
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatalf("computeha reserved list: %q: %v", line, err)
		}
		if r.Host == host {
			if r.State != state {
				t.Errorf("computeha reserved list says %s is %s, want %s:\n%s", host, r.State, state, out)
			}
			return
		}
	}
	t.Errorf("computeha reserved list lacks %s:\n%s", host, out)
}

// returnReserved runs `computeha reserved return host` until the host is empty (VMs deleted
// just before may still be going) and it succeeds.
func (e *Env) returnReserved(ctx context.Context, t *testing.T, host string, limit time.Duration) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for {
		out, errOut, code, err := e.Computeha(ctx, "reserved", "return", "--config", e.EvacdConfig(), host)
		if err == nil && code == 0 {
			t.Logf("computeha reserved return %s: %s", host, strings.TrimSpace(out))
			return
		}
		if err != nil || !strings.Contains(errOut, "not empty") || time.Now().After(deadline) {
			t.Fatalf("computeha reserved return %s: exit %d, %v: %s%s", host, code, err, out, errOut)
		}
		time.Sleep(time.Second)
	}
}
