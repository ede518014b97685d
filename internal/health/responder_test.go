package health

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/computeha/computeha/internal/config"
)

// rounds steps one host, "cmp1", through the responder's rounds on a clock of its own. Each
// asynchronous action asked is reported done at once, unless hold.
type rounds struct {
	t    *testing.T
	r    *Responder
	now  time.Time
	hold bool
}

func newRounds(t *testing.T) *rounds {
	cfg := testConfig()
	cfg.Confirm, cfg.RestartTimeout = 10*time.Second, time.Minute
	return &rounds{t: t, r: NewResponder(cfg), now: time.Date(2026, 12, 6, 8, 0, 0, 0, time.UTC)}
}

// step advances the clock by one round (5 s) and takes one round's look.
func (x *rounds) step(l Look) []Action {
	x.now = x.now.Add(5 * time.Second)
	l.Now = x.now
	out := x.r.Step("cmp1", l)
	for _, a := range out {
		if a.Kind.Async() && !x.hold {
			x.r.Done(x.now, a, nil)
		}
	}
	return out
}

// until takes a look every 5 s for d and returns every action asked meanwhile.
func (x *rounds) until(d time.Duration, l Look) []Action {
	var out []Action
	for end := x.now.Add(d); x.now.Before(end); {
		out = append(out, x.step(l)...)
	}
	return out
}

// only keeps the actions that are no log or record of a judgement or decision.
func only(as []Action) []ActionKind {
	var out []ActionKind
	for _, a := range as {
		if a.Kind != ActJudged && a.Kind != ActDecide {
			out = append(out, a.Kind)
		}
	}
	return out
}

func rawDecision(st State, r Response, member bool, nets ...string) Decision {
	return Decision{State: st, Response: r, Member: member, Networks: nets, Reason: Reason{Code: "test", Text: string(st)}}
}

var (
	healthy     = Evidence{Membership: OK, Networks: map[string]Signal{"mgmt": OK, "tenant": OK, "storage": OK}, Storage: OK, Service: OK}
	runningLook = Look{Quorate: true, Known: true, Evidence: healthy, Raw: rawDecision(Running, config.ResponseNone, true)}
)

func storageLost(member bool, nets ...string) Look {
	return Look{
		Quorate: true, Known: true, Unclean: !member, Raw: rawDecision(Degraded, config.ResponseFence, member, nets...),
		Evidence: Evidence{Membership: OK, Networks: map[string]Signal{"mgmt": OK, "tenant": OK, "storage": Lost}, Storage: Lost, Service: OK},
	}
}

func TestAResponseIsAskedOnceWhenItsDecisionIsConfirmedAndAFencingOnceForOneTrouble(t *testing.T) {
	x := newRounds(t)
	x.until(30*time.Second, runningLook)
	got := x.until(5*time.Second, storageLost(true, "storage"))
	if k := only(got); len(k) != 0 {
		t.Fatalf("before the confirmation period: %v, want nothing", k)
	}
	got = x.until(15*time.Second, storageLost(true, "storage"))
	i := slices.IndexFunc(got, func(a Action) bool { return a.Kind == ActDecide })
	if i < 0 || got[i].Decision.State != Degraded || got[i].Previous.State != Running {
		t.Fatalf("confirmed: %+v, want the decision degraded after runningLook", got)
	}
	if k := only(got); !slices.Equal(k, []ActionKind{ActFence}) {
		t.Fatalf("responses %v, want one fencing", k)
	}
	x.hold = true
	fence := got[slices.IndexFunc(got, func(a Action) bool { return a.Kind == ActFence })]
	if fence.Host != "cmp1" || fence.Why != "degraded" {
		t.Errorf("the fencing %+v: for cmp1, with the decision's reason", fence)
	}
	if k := only(x.until(time.Minute, storageLost(true, "storage"))); len(k) != 0 {
		t.Fatalf("while the fencing runs: %v, want nothing", k)
	}
	x.r.Done(x.now, fence, nil)
	x.hold = false
	// The fencing dropped the host's connection: the same trouble, seen differently.
	got = x.until(30*time.Second, storageLost(false, "storage", "tenant"))
	if !slices.ContainsFunc(got, func(a Action) bool { return a.Kind == ActDecide }) {
		t.Fatalf("the changed decision was not recorded: %+v", got)
	}
	if k := only(got); slices.Contains(k, ActFence) {
		t.Errorf("a second fencing for the same trouble: %v", k)
	}
	// Running again, then the storage lost again: a new trouble, a new fencing.
	x.until(30*time.Second, runningLook)
	if k := only(x.until(30*time.Second, storageLost(true, "storage"))); !slices.Equal(k, []ActionKind{ActFence}) {
		t.Errorf("a new trouble: %v, want one fencing", k)
	}
}

func TestAFailedResponseIsAskedAgainAfterRetryWhileItsDecisionHolds(t *testing.T) {
	x := newRounds(t)
	isolated := Look{Quorate: true, Known: true, Raw: rawDecision(Isolated, config.ResponseDisable, true), Evidence: healthy}
	x.hold = true
	got := x.until(30*time.Second, isolated)
	if k := only(got); !slices.Equal(k, []ActionKind{ActDisable}) {
		t.Fatalf("responses %v, want one disable", k)
	}
	x.r.Done(x.now, got[slices.IndexFunc(got, func(a Action) bool { return a.Kind == ActDisable })], errors.New("nova down"))
	failed := x.now
	got = x.until(Retry-5*time.Second, isolated)
	if k := only(got); len(k) != 0 {
		t.Fatalf("within %s of the failure: %v, want nothing", Retry, k)
	}
	// The first round at Retry after the failure asks again.
	if k := only(x.step(isolated)); !slices.Equal(k, []ActionKind{ActDisable}) {
		t.Fatalf("%s after the failure: %v, want the disable again", x.now.Sub(failed), k)
	}
}

func TestWhileAnActionRunsTheHostGetsNoOther(t *testing.T) {
	x := newRounds(t)
	x.until(30*time.Second, runningLook)
	// Isolated, with evidence that is healed already and Pacemaker wanting the host fenced:
	// the round that confirms it asks the disable, and not also the confirmation that the
	// healed evidence would call for.
	back := Look{Quorate: true, Known: true, Unclean: true, Raw: rawDecision(Isolated, config.ResponseDisable, false), Evidence: healthy}
	x.hold = true
	got := x.until(30*time.Second, back)
	if k := only(got); !slices.Equal(k, []ActionKind{ActDisable}) {
		t.Fatalf("isolated, healed evidence: %v, want the disable alone", k)
	}
	disable := got[slices.IndexFunc(got, func(a Action) bool { return a.Kind == ActDisable })]
	// The decision changes while the disable runs: recorded, and nothing else asked.
	got = x.until(time.Minute, storageLost(true, "storage"))
	if !slices.ContainsFunc(got, func(a Action) bool { return a.Kind == ActDecide }) {
		t.Fatalf("the new decision was not recorded: %+v", got)
	}
	if k := only(got); len(k) != 0 {
		t.Fatalf("while the disable runs: %v, want nothing", k)
	}
	x.r.Done(x.now, disable, nil)
	if k := only(x.step(storageLost(true, "storage"))); !slices.Equal(k, []ActionKind{ActFence}) {
		t.Fatalf("the disable over: %v, want the new decision's fencing", k)
	}
}

func TestOnlyAFencingOfTheResponseHoldsBackTheNextFenceResponse(t *testing.T) {
	x := newRounds(t)
	x.until(30*time.Second, runningLook)
	unreachable := Look{
		Quorate: true, Known: true, Unclean: true, Raw: rawDecision(ServiceUnreachable, ResponseRestart, false),
		Evidence: Evidence{Membership: Lost, Networks: map[string]Signal{"mgmt": OK}, Storage: OK, Service: Lost},
	}
	if k := only(x.until(3*time.Minute, unreachable)); !slices.Equal(k, []ActionKind{ActEscalate}) {
		t.Fatalf("past the restart timeout: %v, want one fencing", k)
	}
	// The escalation's fencing succeeded (reported done at once); the host is then seen to
	// have lost its storage network: that is a fence response of its own.
	if k := only(x.until(30*time.Second, storageLost(false, "storage"))); !slices.Equal(k, []ActionKind{ActFence}) {
		t.Errorf("a fence response after an escalation: %v, want its fencing", k)
	}
}

func TestWithoutQuorumNothingIsDoneAndThatIsSaidOnce(t *testing.T) {
	x := newRounds(t)
	l := storageLost(true, "storage")
	l.Quorate = false
	if k := only(x.until(time.Minute, l)); !slices.Equal(k, []ActionKind{ActNoQuorum}) {
		t.Fatalf("without quorum: %v, want it said once and nothing done", k)
	}
	l.Quorate = true
	if k := only(x.until(10*time.Second, l)); !slices.Equal(k, []ActionKind{ActFence}) {
		t.Fatalf("quorum back: %v, want the response", k)
	}
}

func TestASuspendedHostIsSaidOnceAndGetsItsStateBackWhenResumed(t *testing.T) {
	x := newRounds(t)
	x.until(30*time.Second, runningLook)
	got := x.until(time.Minute, Look{Suspended: "the node is in standby"})
	if len(got) != 1 || got[0].Kind != ActSuspend || got[0].Why != "the node is in standby" {
		t.Fatalf("suspended: %+v, want it said once", got)
	}
	got = x.step(runningLook)
	if len(got) != 1 || got[0].Kind != ActResume || got[0].Decision.State != Running || got[0].Why != "the node is in standby" {
		t.Fatalf("resumed: %+v, want it said once, with the state confirmed before", got)
	}
}

func TestAHostBackThatPacemakerStillShowsUncleanIsConfirmedNoMoreOftenThanRetry(t *testing.T) {
	x := newRounds(t)
	x.until(30*time.Second, runningLook)
	dead := Look{Quorate: true, Known: true, Unclean: true, Raw: rawDecision(Dead, config.ResponseFence, false)}
	x.until(20*time.Second, dead)
	// Back on every network, its heartbeat fresh, its service up, but offline to Pacemaker.
	ev := healthy
	ev.Membership = Lost
	back := Look{Quorate: true, Known: true, Unclean: true, Raw: rawDecision(ServiceUnreachable, ResponseRestart, false), Evidence: ev}
	var at []time.Time
	for end := x.now.Add(2*Retry + 20*time.Second); x.now.Before(end); {
		for _, a := range x.step(back) {
			if a.Kind == ActConfirm {
				at = append(at, x.now)
			}
		}
	}
	if len(at) != 3 {
		t.Fatalf("%d confirmations in %s back, want one every %s: %v", len(at), 2*Retry+20*time.Second, Retry, at)
	}
	for i := 1; i < len(at); i++ {
		if d := at[i].Sub(at[i-1]); d < Retry {
			t.Errorf("confirmations %s apart, want at least %s", d, Retry)
		}
	}
	back.Unclean = false
	if k := only(x.until(2*Retry, back)); slices.Contains(k, ActConfirm) {
		t.Errorf("clean again: %v, want no confirmation", k)
	}
}

func TestAHostJudgedDeadAndLeftUncleanIsFencedOnceAfterDeadFenceAfter(t *testing.T) {
	x := newRounds(t)
	x.until(30*time.Second, runningLook)
	dead := Look{Quorate: true, Known: true, Unclean: true, Raw: rawDecision(Dead, config.ResponseFence, false)}
	got := x.until(DeadFenceAfter, dead)
	if k := only(got); len(k) != 0 {
		t.Fatalf("dead for less than %s after its decision: %v, want nothing (Pacemaker fences it)", DeadFenceAfter, k)
	}
	got = x.until(5*DeadFenceAfter, dead)
	if k := only(got); !slices.Equal(k, []ActionKind{ActDeadNotFenced}) {
		t.Fatalf("dead and unclean: %v, want one fencing", k)
	}
}

func TestAServiceUnreachablePastTheRestartTimeoutIsFencedOnlyWhenPacemakerWantsIt(t *testing.T) {
	for _, unclean := range []bool{false, true} {
		x := newRounds(t)
		x.until(30*time.Second, runningLook)
		l := Look{
			Quorate: true, Known: true, Unclean: unclean, Raw: rawDecision(ServiceUnreachable, ResponseRestart, false),
			Evidence: Evidence{Membership: Lost, Networks: map[string]Signal{"mgmt": OK}, Storage: OK, Service: Lost},
		}
		if k := only(x.until(time.Minute, l)); len(k) != 0 {
			t.Fatalf("unclean %v, within the restart timeout: %v, want nothing (hostcheck restarts it)", unclean, k)
		}
		want := ActRestartTimeoutClean
		if unclean {
			want = ActEscalate
		}
		if k := only(x.until(2*time.Minute, l)); !slices.Equal(k, []ActionKind{want}) {
			t.Errorf("unclean %v, past the restart timeout: %v, want %v once", unclean, k, want)
		}
	}
}
