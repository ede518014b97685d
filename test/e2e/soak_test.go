//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"maps"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/computeha/computeha/internal/openstack"
)

// TestSoak runs a seeded random sequence of faults over the lab with real Nova and checks the
// invariants after every round (soakInvariants). It runs only when SOAK_ROUNDS is set (make
// soak): SOAK_ROUNDS rounds at most, none started past SOAK_BUDGET (default 10m), from
// SOAK_SEED (default: the time). A violation names the seed, the round and the command that
// replays the run, and the logs are kept.
func TestSoak(t *testing.T) {
	rounds, budget, seed := soakParams(t)
	// The longest round (a recovery, a host waited back, what it set moving) takes about 10
	// minutes; bring-up 5.
	ctx, env := upWithin(t, budget+20*time.Minute)
	if err := env.EnableHealth(ctx); err != nil {
		t.Fatal(err)
	}
	var vms []VM
	for _, h := range env.Computes() {
		v, err := env.Boot(ctx, h, 2, 1)
		if err != nil {
			t.Fatal(err)
		}
		vms = append(vms, v...)
	}
	env.soak(ctx, t, vms, rounds, budget, seed, fmt.Sprintf("SOAK_SEED=%d SOAK_ROUNDS=%d make soak", seed, rounds))
}

// soak runs at most rounds rounds of faults drawn from seed, none started once budget has
// passed since it began, checking soakInvariants over vms after each. A violation fails t with
// the seed, the round and replay, the command that runs the same faults in the same order.
func (e *Env) soak(ctx context.Context, t *testing.T, vms []VM, rounds int, budget time.Duration, seed uint64, replay string) {
	t.Helper()
	start := time.Now()
	rng := rand.New(rand.NewPCG(seed, 0))
	t.Logf("soak: seed %d, at most %d rounds, none started past %s (replay: %s)", seed, rounds, budget, replay)
	done, tally := 0, map[string]int{}
	for r := 1; r <= rounds && time.Since(start) < budget; r++ {
		f := soakFaults[rng.IntN(len(soakFaults))]
		host := e.Computes()[rng.IntN(len(e.Computes()))]
		began := time.Now()
		target, violations := e.soakRound(ctx, t, f, host, vms)
		where := " on " + target
		if len(violations) > 0 {
			for _, v := range violations {
				t.Errorf("soak round %d (%s%s), seed %d: %s", r, f.name, where, seed, v)
			}
			t.Fatalf("soak: stopped at round %d; replay: %s", r, replay)
		}
		done++
		tally[f.name]++
		t.Logf("soak round %d: %s%s: invariants hold (%s)", r, f.name, where, time.Since(began).Round(time.Second))
	}
	var kinds []string
	for _, k := range slices.Sorted(maps.Keys(tally)) {
		kinds = append(kinds, fmt.Sprintf("%s %d", k, tally[k]))
	}
	t.Logf("soak: %d rounds, seed %d, no violation, in %s: %s", done, seed, time.Since(start).Round(time.Second), strings.Join(kinds, ", "))
}

// soakMaxBudget is the longest SOAK_BUDGET make soak allows (its go test -timeout is 200m).
const soakMaxBudget = 170 * time.Minute

// soakParams reads SOAK_ROUNDS, SOAK_BUDGET and SOAK_SEED; it skips t when SOAK_ROUNDS is unset.
func soakParams(t *testing.T) (rounds int, budget time.Duration, seed uint64) {
	t.Helper()
	v := os.Getenv("SOAK_ROUNDS")
	if v == "" {
		t.Skip("the soak runs with SOAK_ROUNDS set (make soak)")
	}
	rounds, err := strconv.Atoi(v)
	if err != nil || rounds < 1 {
		t.Fatalf("SOAK_ROUNDS=%q: want a positive number", v)
	}
	budget = 10 * time.Minute
	if v := os.Getenv("SOAK_BUDGET"); v != "" {
		if budget, err = time.ParseDuration(v); err != nil || budget <= 0 || budget > soakMaxBudget {
			t.Fatalf("SOAK_BUDGET=%q: want a duration up to %s", v, soakMaxBudget)
		}
	}
	seed, err = soakSeed()
	if err != nil {
		t.Fatal(err)
	}
	return rounds, budget, seed
}

// soakSeed is SOAK_SEED, or the time when it is unset.
func soakSeed() (uint64, error) {
	v := os.Getenv("SOAK_SEED")
	if v == "" {
		return uint64(time.Now().UnixNano()), nil
	}
	seed, err := strconv.ParseUint(v, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("SOAK_SEED=%q: want a number", v)
	}
	return seed, nil
}

// soakFault is one kind of fault a round injects into one compute host, or into a controller.
type soakFault struct {
	name string
	// controller, when set, names the controller the fault goes to (instead of the compute
	// drawn): the round observes the cluster from another, and waits for it to be back.
	controller func(ctx context.Context, e *Env) (string, error)
	// fence: the host is to be fenced and its HA VMs recovered elsewhere; otherwise it must
	// not be fenced and its VMs stay (or are live-migrated, never rebuilt).
	fence bool
	// inject puts the fault in place.
	inject func(ctx context.Context, e *Env, host string) error
	// during, when set, runs once the recovery has begun (a VM rebuilding).
	during func(ctx context.Context, e *Env, host string) error
	// undo repairs what inject did, once the outcome is seen; the host is then powered on if
	// it is off and waited for.
	undo func(ctx context.Context, e *Env, host string) error
}

func powerOff(ctx context.Context, e *Env, host string) error {
	_, err := e.Lab.Power(ctx, host, "off")
	return err
}

func cut(networks ...string) func(ctx context.Context, e *Env, host string) error {
	return func(ctx context.Context, e *Env, host string) error {
		for _, n := range networks {
			if err := e.Lab.Cut(ctx, host, n); err != nil {
				return err
			}
		}
		return nil
	}
}

func heal(networks ...string) func(ctx context.Context, e *Env, host string) error {
	return func(ctx context.Context, e *Env, host string) error {
		for _, n := range networks {
			if err := e.Lab.Heal(ctx, host, n); err != nil {
				return err
			}
		}
		return nil
	}
}

// healAndEnable heals the networks, waits (2 minutes at most) for the migrate response to
// disable the host, which it does once its VMs are moved, and enables it again in Nova as its
// operator would.
func healAndEnable(networks ...string) func(ctx context.Context, e *Env, host string) error {
	return func(ctx context.Context, e *Env, host string) error {
		if err := heal(networks...)(ctx, e, host); err != nil {
			return err
		}
		deadline := time.Now().Add(2 * time.Minute)
		for {
			s, err := e.Nova.FindComputeService(ctx, host)
			switch {
			case err == nil && !s.Enabled():
				_, err := e.Nova.EnableService(ctx, s.ID)
				return err
			case time.Now().After(deadline):
				return fmt.Errorf("%s not disabled by the migrate response within 2 minutes (%v)", host, err)
			}
			time.Sleep(2 * time.Second)
		}
	}
}

// soakFaults are the faults a round draws from.
var soakFaults = []soakFault{
	{name: "power loss", fence: true, inject: powerOff},
	{name: "kernel hang", fence: true, inject: freeze},
	{name: "storage network cut", fence: true, inject: cut("storage"), undo: heal("storage")},
	{name: "management network cut", inject: cut("mgmt"), undo: heal("mgmt")},
	// The migrate response leaves the host disabled for an operator, who enables it once healed.
	{name: "tenant network cut", inject: cut("tenant"), undo: healAndEnable("tenant")},
	// The storage heartbeat goes over the storage network: with every network, it is lost too.
	{name: "every network cut", fence: true, inject: cut("mgmt", "storage", "tenant"), undo: heal("mgmt", "storage", "tenant")},
	{name: "management and tenant networks cut", inject: cut("mgmt", "tenant"), undo: heal("mgmt", "tenant")},
	{name: "pacemaker-remoted killed", inject: kill("pacemaker-remoted")},
	// Pacemaker restarts it (its agent's monitor fails); nothing else happens to the host.
	{name: "nova-compute killed", inject: killNovaCompute},
	// The two controllers left keep quorum and fence it (a reboot); no compute is fenced.
	{name: "the DC controller powered off", controller: dcOf, inject: powerOff},
	// The daemon's controller alone: fenced by the two others, the daemon moves; no compute
	// is fenced.
	{name: "a 2|1 controller partition (the daemon's controller cut)", controller: daemonsController, inject: cut("mgmt"), undo: heal("mgmt")},
	{name: "power loss, the evacuation daemon killed mid-recovery", fence: true, inject: powerOff, during: killDaemon},
	{name: "power loss, nova-api hung 20 s mid-recovery", fence: true, inject: powerOff, during: hangNovaAPI},
	{name: "power loss, the host powered on mid-recovery", fence: true, inject: powerOff, during: powerOn},
}

// dcOf names the DC.
func dcOf(ctx context.Context, e *Env) (string, error) {
	st, err := e.CRM.Status(ctx)
	if err != nil {
		return "", err
	}
	if st.DC == "" {
		return "", fmt.Errorf("the cluster has no DC")
	}
	return st.DC, nil
}

// daemonsController names the controller running the evacuation daemon.
func daemonsController(ctx context.Context, e *Env) (string, error) {
	node, _, err := e.EvacuatorPID(ctx)
	return node, err
}

// freeze hangs host as a hung kernel would (links down, every process stopped).
func freeze(ctx context.Context, e *Env, host string) error { return e.Lab.Freeze(ctx, host) }

func powerOn(ctx context.Context, e *Env, host string) error {
	_, err := e.Lab.Power(ctx, host, "on")
	return err
}

// kill returns a fault that kills daemon on the host.
func kill(daemon string) func(ctx context.Context, e *Env, host string) error {
	return func(ctx context.Context, e *Env, host string) error { return e.Lab.Kill(ctx, host, daemon) }
}

// killNovaCompute kills host's nova-compute: its agent's recorded process (it runs as python3),
// when the pid file's start time is that process's (the lab shares one PID namespace).
func killNovaCompute(ctx context.Context, e *Env, host string) error {
	out, errOut, code, err := e.Lab.Exec(ctx, host, "sh", "-c", "cat /run/resource-agents/computeha-nova-compute-*.pid")
	if err != nil || code != 0 {
		return fmt.Errorf("nova-compute's pid file on %s: exit %d, %v: %s", host, code, err, errOut)
	}
	f := strings.Fields(out)
	if len(f) != 2 {
		return fmt.Errorf("nova-compute's pid file on %s: %q", host, out)
	}
	pid, err := strconv.Atoi(f[0])
	if err != nil {
		return fmt.Errorf("nova-compute's pid file on %s: %q", host, out)
	}
	if st, err := startTime(pid); err != nil || st != f[1] {
		return fmt.Errorf("nova-compute on %s: process %d is not the one recorded (start %q, recorded %s, %v)", host, pid, st, f[1], err)
	}
	if _, errOut, code, err := e.Lab.Exec(ctx, host, "kill", "-9", f[0]); err != nil || code != 0 {
		return fmt.Errorf("killing nova-compute (%d) on %s: exit %d, %v: %s", pid, host, code, err, errOut)
	}
	return nil
}

// killDaemon kills the evacuation daemon, wherever it runs.
func killDaemon(ctx context.Context, e *Env, _ string) error {
	node, pid, err := e.EvacuatorPID(ctx)
	if err != nil {
		return err
	}
	if _, _, code, err := e.Lab.Exec(ctx, node, "kill", "-9", pid); err != nil || code != 0 {
		return fmt.Errorf("killing the daemon on %s: exit %d, %v", node, code, err)
	}
	return nil
}

// hangNovaAPI stops nova-api for 20 s.
func hangNovaAPI(ctx context.Context, e *Env, _ string) error {
	fr, err := e.FreezeNovaDaemon("nova-api")
	if err != nil {
		return err
	}
	time.Sleep(20 * time.Second)
	return fr.Thaw()
}

// soakRound runs one round: fault, outcome, repair, invariants. It returns the node the fault
// went to (host, or the controller f names) and the violations.
func (e *Env) soakRound(ctx context.Context, t *testing.T, f soakFault, host string, vms []VM) (string, []string) {
	t.Helper()
	e.quiet(ctx, t)
	states, err := e.States(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var on []VM // the HA VMs on host when the fault comes
	for _, v := range vms {
		if v.HA && states[v.ID].Host == host {
			on = append(on, v)
		}
	}
	target := host
	if f.controller != nil {
		if target, err = f.controller(ctx, e); err != nil {
			t.Fatalf("%s: %v", f.name, err)
		}
		if err := e.observeFromOther(ctx, target); err != nil {
			t.Fatal(err)
		}
		// Whatever ends the round: the next one (or the next scenario) observes from ctl1
		// once it is back.
		defer func() {
			if err := e.observeBack(ctx, 3*time.Minute); err != nil {
				t.Log(err)
			}
		}()
	}
	// The daemon's process before the fault: after a controller's fencing it must not be that
	// one that runs.
	_, pidBefore, _ := e.EvacuatorPID(ctx)
	fault := time.Now()
	if err := f.inject(ctx, e, target); err != nil {
		t.Fatalf("%s on %s: %v", f.name, target, err)
	}
	var out []string
	if f.fence {
		out = append(out, e.soakRecovered(ctx, t, f, host, fault, on)...)
	} else {
		// Long enough for a wrong decision to be confirmed and carried out (fencing takes
		// seconds once decided).
		time.Sleep(40 * time.Second)
	}
	if f.controller != nil {
		// The two others fenced it, and the daemon runs on one of them.
		if fenced, err := e.fencedSince(ctx, target, fault); err != nil || fenced.IsZero() {
			out = append(out, fmt.Sprintf("%s was not fenced by the two other controllers (%v)", target, err))
		}
		// A controller fenced by a reboot may be back, and given the daemon, before it was
		// started on another: then it runs there as a new process, started after the fencing.
		if node, pid, err := e.EvacuatorPID(ctx); err != nil || (node == target && pid == pidBefore) {
			out = append(out, fmt.Sprintf("the evacuation daemon does not run on another controller than %s, nor anew there: %q pid %s, %v", target, node, pid, err))
		}
	}
	if f.undo != nil {
		if err := f.undo(ctx, e, target); err != nil {
			t.Fatalf("repairing %s on %s: %v", f.name, target, err)
		}
	}
	if p, err := e.Lab.Power(ctx, target, "status"); err == nil && p == "off" {
		if _, err := e.Lab.Power(ctx, target, "on"); err != nil {
			t.Fatal(err)
		}
	}
	if f.controller != nil {
		if err := e.waitMember(ctx, target, 4*time.Minute); err != nil {
			out = append(out, err.Error())
		} else if err := e.observeBack(ctx, time.Minute); err != nil {
			out = append(out, err.Error())
		}
	}
	// Back without hand work: only the tenant cut's migrate response leaves the host disabled
	// for an operator, and its undo is that operator.
	if _, err := e.WaitBack(ctx, host, time.Now(), 4*time.Minute, nil); err != nil {
		out = append(out, err.Error())
	}
	// What the round set moving (a live migration, a rebuild) ends before it is judged.
	deadline := time.Now().Add(2 * time.Minute)
	for {
		states, err := e.States(ctx)
		busy := err != nil
		for _, v := range vms {
			busy = busy || states[v.ID].TaskState != ""
		}
		if !busy || time.Now().After(deadline) {
			break
		}
		time.Sleep(time.Second)
	}
	return target, append(out, e.soakInvariants(ctx, fault, f, host, vms, on)...)
}

// soakRecovered waits (4 minutes at most) until host is fenced and every HA VM of on runs on
// another host, running f.during once a VM is seen rebuilding (or, with no HA VM there, once
// the host is fenced).
func (e *Env) soakRecovered(ctx context.Context, t *testing.T, f soakFault, host string, fault time.Time, on []VM) []string {
	t.Helper()
	during := f.during
	deadline := fault.Add(4 * time.Minute)
	for {
		fenced, ferr := e.fencedSince(ctx, host, fault)
		if ferr == nil && !fenced.IsZero() && len(on) == 0 && during != nil {
			if err := during(ctx, e, host); err != nil {
				t.Fatalf("%s on %s: %v", f.name, host, err)
			}
			during = nil
		}
		states, err := e.States(ctx)
		if err == nil && ferr == nil && !fenced.IsZero() {
			moved := 0
			for _, v := range on {
				s := states[v.ID]
				if during != nil && s.TaskState != "" {
					if err := during(ctx, e, host); err != nil {
						t.Fatalf("%s on %s: %v", f.name, host, err)
					}
					during = nil
				}
				if s.Host != host && s.Host != "" && s.Status == "ACTIVE" && s.TaskState == "" {
					moved++
				}
			}
			if moved == len(on) {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return []string{fmt.Sprintf("%s not fenced (%v), or its HA VMs not all ACTIVE elsewhere, within 4 minutes", host, fenced)}
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// soakInvariants checks, once everything is back, what must hold after any round:
//   - every HA VM is ACTIVE, with no task, on a compute of the segment;
//   - a VM is rebuilt once if it was an HA VM of a host to be fenced, never otherwise (so
//     never on two hosts, and never a VM without HA);
//   - no evacuation from a host before a confirmed fencing of it (Pacemaker's fencing
//     history against Nova's migration records);
//   - a host that was not to be fenced, or that was judged isolated or management-lost (and
//     never dead), was not fenced;
//   - a host fenced has an incident in the history, and every incident of the round is closed.
func (e *Env) soakInvariants(ctx context.Context, fault time.Time, f soakFault, host string, vms, on []VM) []string {
	var out []string
	bad := func(format string, a ...any) { out = append(out, fmt.Sprintf(format, a...)) }
	computes := e.Computes()
	for _, v := range vms {
		s, err := e.Nova.Server(ctx, v.ID)
		if err != nil {
			bad("%s: %v", v.Name, err)
			continue
		}
		if v.HA && (s.Status != "ACTIVE" || s.TaskState != "" || !slices.Contains(computes, s.Host)) {
			bad("HA VM %s is %s (task %q) on %q, want ACTIVE with no task on a compute of the segment", v.Name, s.Status, s.TaskState, s.Host)
		}
		want := 0
		if f.fence && slices.ContainsFunc(on, func(o VM) bool { return o.ID == v.ID }) {
			want = 1
		}
		rebuilds := e.Admin.Rebuilds
		if want > 0 {
			rebuilds = e.rebuilds // waits a moment for the rebuild's record
		}
		got, err := rebuilds(ctx, v.ID, fault)
		if err != nil {
			bad("rebuilds of %s: %v", v.Name, err)
			continue
		}
		if got != want {
			bad("%s (HA %v) was rebuilt %d times this round, want %d", v.Name, v.HA, got, want)
		}
	}
	for _, h := range computes {
		fenced, err := e.fencedSince(ctx, h, fault)
		if err != nil {
			bad("fencing history of %s: %v", h, err)
			continue
		}
		migs, err := e.Nova.Migrations(ctx, openstack.MigrationFilter{Host: h, Type: "evacuation"})
		if err != nil {
			bad("migrations of %s: %v", h, err)
			continue
		}
		for _, m := range migs {
			if m.SourceCompute != h || m.CreatedAt.Before(fault.Truncate(time.Second)) {
				continue
			}
			if fenced.IsZero() || m.CreatedAt.Before(fenced.Truncate(time.Second)) {
				bad("VM %s evacuated from %s at %s, before any confirmed fencing of it (first %v)", m.ServerID, h, m.CreatedAt, fenced)
			}
		}
		wantFenced := f.fence && h == host
		if !fenced.IsZero() && !wantFenced {
			bad("%s was fenced at %s, which this round (%s on %s) must not do", h, fenced, f.name, host)
		}
		if fenced.IsZero() && wantFenced {
			bad("%s was not fenced", h)
		}
		evs, err := e.History(ctx, h, "")
		if err != nil {
			bad("history of %s: %v", h, err)
			continue
		}
		judged := map[string]bool{}
		incidents, closed := map[string]bool{}, map[string]bool{}
		last := map[string]string{} // an incident's last event, said of one left open
		for _, ev := range evs {
			at, err := time.Parse(time.RFC3339Nano, ev.Time)
			if err != nil || at.Before(fault) {
				continue
			}
			for _, st := range []string{"isolated", "management-lost", "dead"} {
				if strings.HasPrefix(ev.Summary, h+" is "+st+":") {
					judged[st] = true
				}
			}
			if ev.Incident != "" {
				incidents[ev.Incident] = true
				last[ev.Incident] = ev.Time + " " + ev.Summary
				if strings.HasPrefix(ev.Summary, "incident closed") {
					closed[ev.Incident] = true
				}
			}
		}
		if (judged["isolated"] || judged["management-lost"]) && !judged["dead"] && !fenced.IsZero() {
			bad("%s was judged isolated or management-lost, never dead, and was fenced at %s", h, fenced)
		}
		if !fenced.IsZero() && len(incidents) == 0 {
			bad("%s was fenced at %s but the history has no incident about it", h, fenced)
		}
		for id := range incidents {
			if !closed[id] {
				bad("incident %s about %s is still open; its last event: %s", id, h, last[id])
			}
		}
	}
	return out
}

// fencedSince is when host's first fencing that ran a device (not an operator's or the
// daemon's confirmation) completed successfully since t; zero if none did.
func (e *Env) fencedSince(ctx context.Context, host string, t time.Time) (time.Time, error) {
	hist, err := e.Fencings(ctx, host)
	if err != nil {
		return time.Time{}, err
	}
	var first time.Time
	for _, f := range hist {
		if f.Succeeded() && deviceRan(f) && !f.Completed.Before(t.Add(-time.Second)) && (first.IsZero() || f.Completed.Before(first)) {
			first = f.Completed
		}
	}
	return first, nil
}
