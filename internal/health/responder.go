package health

import (
	"strings"
	"sync"
	"time"

	"github.com/computeha/computeha/internal/config"
)

// The responder answers each confirmed change of a host's state once, and what time brings to
// a decision:
//
//   - fence (storage lost while Pacemaker still sees the host, or a cluster service that did
//     not come back within the restart timeout): the host is to be fenced; Pacemaker's fencing
//     topology (fence_hostcheck's gate, the power device, fence_nova's mark) and the
//     evacuation job then do the rest. Nothing is evacuated by the responder.
//   - dead: recorded; Pacemaker fences the host already, and the daemon asks for the fencing
//     itself only when the host is still unclean [DeadFenceAfter] later.
//   - migrate: the host's HA VMs are live-migrated inside its segment, then the host is
//     disabled in Nova.
//   - disable: an alert, and nova-compute disabled; enabled again when the host is running
//     (only a disable of this kind: an operator's or an evacuation's stays).
//   - restart: recorded; the host's hostcheck restarts the service; fenced after the restart
//     timeout, if Pacemaker wants it fenced.
//
// When a host that Pacemaker still shows unclean is back (management reachable, heartbeat
// fresh, service up) and its trouble began a confirmation period ago, it is to be confirmed
// fenced (stonith_admin --confirm) so Pacemaker stops trying to fence it and reconnects it.
//
// The responder decides; the daemon carries out its [Action]s and reports the end of each
// asynchronous one ([Responder.Done]).

// Retry is how long a failed response (Nova or Pacemaker refused or unreachable) waits before
// it is tried again, and how often a confirmation is repeated while Pacemaker still shows the
// host unclean.
const Retry = 30 * time.Second

// DeadFenceAfter is how long a host judged dead may stay unclean before the daemon asks for
// its fencing itself. Pacemaker fences a node it lost within seconds, but stops after
// stonith-max-attempts failures (10 by default), and the gate refusing an isolated host is
// such a failure: a host that died after a long isolation would wait for an operator.
const DeadFenceAfter = time.Minute

// ActionKind says what the daemon is to do for a host.
type ActionKind int

// What a round can ask. Those that call Nova or Pacemaker run asynchronously
// ([Action.Async]), one at a time per host.
const (
	// ActSuspend: the host's responses are suspended (Why): record it; the host has no state.
	ActSuspend ActionKind = iota + 1
	// ActResume: the responses are resumed after Why; the host's state is Decision.State
	// again when one was confirmed (Decision.State not empty).
	ActResume
	// ActJudged: the unconfirmed judgement (Decision) changed: log it.
	ActJudged
	// ActDecide: Decision is confirmed, after Previous, on Evidence: record it; it is the
	// host's state.
	ActDecide
	// ActNoQuorum: not acting on Decision, this partition has no quorum: record it.
	ActNoQuorum
	// ActEnable: enable the host in Nova again if the disable response disabled it.
	ActEnable
	// ActFence: fence the host for Decision (Why).
	ActFence
	// ActMigrate: move the host's HA VMs away, then disable it (Decision).
	ActMigrate
	// ActDisable: alert, and disable the host in Nova (Decision).
	ActDisable
	// ActAlert: alert (Decision).
	ActAlert
	// ActConfirm: confirm the host fenced to Pacemaker, unless a fence device ran since
	// Episode, with Evidence saying it is back.
	ActConfirm
	// ActRestartTimeoutClean: the restart timeout passed, but Pacemaker does not want the
	// host fenced: record that it is not fenced (Decision).
	ActRestartTimeoutClean
	// ActEscalate: the restart timeout passed and Pacemaker wants the host fenced: fence it
	// (Why).
	ActEscalate
	// ActDeadNotFenced: judged dead DeadFenceAfter ago and still unclean: record it and fence
	// the host (Why).
	ActDeadNotFenced
)

// Async tells the actions that call Nova or Pacemaker.
func (k ActionKind) Async() bool {
	switch k {
	case ActEnable, ActFence, ActMigrate, ActDisable, ActConfirm, ActEscalate, ActDeadNotFenced:
		return true
	}
	return false
}

// Action is one thing to do for Host.
type Action struct {
	Kind     ActionKind
	Host     string
	Decision Decision
	Previous Decision
	Evidence Evidence
	Why      string
	Episode  time.Time
}

// Look is what one round sees of one host.
type Look struct {
	Now time.Time
	// Suspended says why the host's responses are suspended (maintenance, standby); "" when
	// they are not.
	Suspended string
	// Evidence and Raw are the round's evidence and unconfirmed judgement of the host.
	Evidence Evidence
	Raw      Decision
	Quorate  bool
	// Known says Pacemaker knows the node; Unclean that it wants it fenced.
	Known, Unclean bool
}

// Responder remembers each host's confirmed decision and says what to do about it. Safe for
// concurrent use.
type Responder struct {
	cfg     *config.Health
	tracker *Tracker

	mu    sync.Mutex
	hosts map[string]*responding
}

// NewResponder returns a responder for cfg.
func NewResponder(cfg *config.Health) *Responder {
	return &Responder{cfg: cfg, tracker: NewTracker(cfg), hosts: map[string]*responding{}}
}

// responding is what the responder remembers of one host.
type responding struct {
	decision Decision // the confirmed decision
	evidence Evidence // the latest evidence
	recorded string   // key of the confirmed decision last recorded
	acted    string   // key of the confirmed decision last acted on
	since    time.Time
	// episode is when the host's trouble began (the first confirmed state Pacemaker cannot
	// see it in); zero while it is running or degraded. A fencing completed since then means
	// Pacemaker did its job; none means a confirmation is due once the host is back.
	episode     time.Time
	healedSince time.Time // since when the evidence, membership aside, is fully running
	lastConfirm time.Time
	retryAt     time.Time // a failed response is not retried before
	busy        bool      // an asynchronous action runs
	skipped     string    // why responses are suspended
	noQuorum    bool      // "no quorum" said for the current decision
	escalated   bool      // the restart timeout passed and fencing was asked
	offlineNote bool      // "offline but clean: not fencing" said
	// fenced: a fencing the response asked for succeeded since the host was last running. A
	// decision that still says fence (the same trouble seen differently once the fencing
	// dropped the host's connection, say) asks for no other.
	fenced  bool
	lastRaw string // key of the latest unconfirmed judgement
}

func decisionKey(d Decision) string {
	return string(d.State) + "/" + string(d.Response) + "/" + strings.Join(d.Networks, ",")
}

// Step takes one round's look at host and returns what to do, in order. An asynchronous
// action returned must be reported done ([Responder.Done]); until then the host gets no other.
func (r *Responder) Step(host string, l Look) []Action {
	r.mu.Lock()
	defer r.mu.Unlock()
	h := r.hosts[host]
	if h == nil {
		h = &responding{}
		r.hosts[host] = h
	}
	var out []Action
	do := func(a Action) {
		a.Host = host
		if a.Kind.Async() {
			h.busy = true
		}
		out = append(out, a)
	}
	if l.Suspended != "" {
		// Not judged while suspended: no state, so no alert (maintenance ignores them).
		if h.skipped != l.Suspended {
			h.skipped = l.Suspended
			do(Action{Kind: ActSuspend, Why: l.Suspended})
		}
		return out
	}
	if h.skipped != "" {
		a := Action{Kind: ActResume, Why: h.skipped}
		if h.recorded != "" {
			a.Decision = h.decision
		}
		h.skipped = ""
		do(a)
	}
	raw := l.Raw
	raw.Host = host
	if k := decisionKey(raw); k != h.lastRaw {
		// Each change of the unconfirmed judgement, once: a decision that is slow to come
		// shows whether the evidence kept changing or never said it.
		h.lastRaw = k
		do(Action{Kind: ActJudged, Decision: raw})
	}
	dec, _ := r.tracker.Observe(l.Now, raw)
	h.evidence = l.Evidence
	if dec.State == "" || dec.Reason.Code == ReasonUnconfirmed {
		return out // nothing confirmed yet
	}
	if k := decisionKey(dec); k != h.recorded {
		prev := h.decision
		h.recorded, h.decision, h.since = k, dec, l.Now
		h.noQuorum, h.escalated, h.offlineNote = false, false, false
		if dec.State == Running {
			h.fenced = false
		}
		switch {
		case dec.State == Running || dec.State == Degraded:
			h.episode = time.Time{}
		case h.episode.IsZero():
			// The raw state began a confirmation period ago.
			h.episode = l.Now.Add(-r.cfg.Confirm)
		}
		do(Action{Kind: ActDecide, Decision: dec, Previous: prev, Evidence: l.Evidence})
	}
	if h.busy {
		return out
	}
	if !l.Quorate {
		if !h.noQuorum && h.acted != h.recorded {
			h.noQuorum = true
			do(Action{Kind: ActNoQuorum, Decision: dec})
		}
		return out
	}
	if h.acted != h.recorded {
		if l.Now.Before(h.retryAt) {
			return out
		}
		h.acted = h.recorded
		if a, ok := r.respond(h, dec); ok {
			do(a)
		}
	}
	if a, ok := r.followUp(h, l); ok {
		do(a)
	}
	return out
}

// respond is the response to a newly confirmed decision, if it has one.
func (r *Responder) respond(h *responding, dec Decision) (Action, bool) {
	switch {
	case dec.State == Running:
		return Action{Kind: ActEnable, Decision: dec}, true
	case dec.State == Dead:
		// Pacemaker lost the host and fences it; the evacuation follows its fencing.
	case dec.State == ServiceUnreachable:
		// restart: the host's hostcheck restarts its service. Past the restart timeout the
		// tracker turns the response to fence, which followUp carries out when Pacemaker
		// itself wants the host fenced.
	case dec.Response == config.ResponseFence && h.fenced:
		// Fenced already for this trouble: what is seen now is that host, fenced.
	case dec.Response == config.ResponseFence:
		return Action{Kind: ActFence, Decision: dec, Why: dec.Reason.Text}, true
	case dec.Response == config.ResponseMigrate:
		return Action{Kind: ActMigrate, Decision: dec}, true
	case dec.Response == config.ResponseDisable:
		return Action{Kind: ActDisable, Decision: dec}, true
	case dec.Response == config.ResponseAlert:
		return Action{Kind: ActAlert, Decision: dec}, true
	}
	return Action{}, false
}

// followUp is what time brings to a decision: a host back to health that Pacemaker still
// shows unclean is confirmed, a host judged dead that Pacemaker stopped fencing is fenced, and
// so is a host whose cluster service did not come back within the restart timeout, if
// Pacemaker wants it fenced.
func (r *Responder) followUp(h *responding, l Look) (Action, bool) {
	if h.busy {
		return Action{}, false
	}
	if r.healed(h.evidence) {
		if h.healedSince.IsZero() {
			h.healedSince = l.Now
		}
	} else {
		h.healedSince = time.Time{}
	}
	if !h.healedSince.IsZero() {
		// Back: a fencing now would kill a healthy host; the confirmation is due instead.
		if l.Now.Sub(h.healedSince) >= r.cfg.Confirm && l.Known && l.Unclean && !h.episode.IsZero() &&
			l.Now.Sub(h.lastConfirm) >= Retry {
			h.lastConfirm = l.Now
			return Action{Kind: ActConfirm, Episode: h.episode, Evidence: h.evidence}, true
		}
		return Action{}, false
	}
	dec := h.decision
	if dec.State == Dead {
		if h.escalated || !l.Known || !l.Unclean || l.Now.Sub(h.since) < DeadFenceAfter {
			return Action{}, false
		}
		h.escalated = true
		return Action{Kind: ActDeadNotFenced, Decision: dec, Why: dec.Reason.Text}, true
	}
	if dec.State != ServiceUnreachable || dec.Response != config.ResponseFence || h.escalated {
		return Action{}, false
	}
	if !l.Known || !l.Unclean {
		// Pacemaker does not want the host fenced (its connection was stopped cleanly, or the
		// node is unknown to it): a fencing would be ours alone.
		if !h.offlineNote {
			h.offlineNote = true
			return Action{Kind: ActRestartTimeoutClean, Decision: dec}, true
		}
		return Action{}, false
	}
	h.escalated = true
	return Action{Kind: ActEscalate, Decision: dec, Why: dec.Reason.Text}, true
}

// healed tells whether the evidence, Pacemaker's membership aside, is fully running: the
// management network reaches the host, no network is lost, its heartbeat is fresh and it
// reports its cluster service up. Unknown storage is not enough: only a host seen writing
// proves it was running all along.
func (r *Responder) healed(ev Evidence) bool {
	if ev.Storage != OK || ev.Service != OK {
		return false
	}
	if ev.Networks[r.cfg.ManagementNetwork()] != OK {
		return false
	}
	for _, s := range ev.Networks {
		if s == Lost {
			return false
		}
	}
	return true
}

// Done reports the end of an asynchronous action Step returned, at now: err nil when it did
// what it was for, and a failed one is asked again after [Retry] if its decision still holds.
// An action stopped by the daemon's own end need not be reported: no round follows.
func (r *Responder) Done(now time.Time, a Action, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	h := r.hosts[a.Host]
	if h == nil {
		return
	}
	h.busy = false
	if err != nil {
		h.acted = ""
		h.retryAt = now.Add(Retry)
		return
	}
	if a.Kind == ActFence {
		h.fenced = true
	}
}
