package health

import (
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/computeha/computeha/internal/config"
)

// Reason codes of [Decide] and [Tracker.Observe]. Logs, the history and tests match on them;
// Reason.Text says the same for people, naming the signals behind it.
const (
	// ReasonHealthy: the host is a member and no other network, nor its heartbeat, is lost.
	ReasonHealthy ReasonCode = "healthy"
	// ReasonNetworksLost: the host is a member but one or more other networks are lost
	// (Decision.Networks), perhaps its storage heartbeat too.
	ReasonNetworksLost ReasonCode = "networks-lost"
	// ReasonHeartbeatLost: the host is a member, every network is fine, but its storage
	// heartbeat is stale while other hosts' are fresh: its VMs' storage is gone.
	ReasonHeartbeatLost ReasonCode = "storage-heartbeat-lost"
	// ReasonAllLost: membership, every network and the storage heartbeat are lost.
	ReasonAllLost ReasonCode = "all-signals-lost"
	// ReasonServiceUnreachable: membership is lost but the host answers on a network: its
	// cluster service is to be restarted.
	ReasonServiceUnreachable ReasonCode = "service-unreachable"
	// ReasonRestartTimedOut: the host has been service-unreachable for the restart timeout:
	// it is to be fenced.
	ReasonRestartTimedOut ReasonCode = "restart-timed-out"
	// ReasonIsolated: membership and every network are lost, but the storage heartbeat is
	// fresh: the host and its VMs run, cut off.
	ReasonIsolated ReasonCode = "isolated"
	// ReasonManagementLost: membership and the management network are lost, another network
	// answers and the storage heartbeat is fresh.
	ReasonManagementLost ReasonCode = "management-lost"
	// ReasonMembershipUnknown: Pacemaker's view of the host could not be read.
	ReasonMembershipUnknown ReasonCode = "membership-unknown"
	// ReasonEvidenceUnknown: membership is lost but the other signals are unknown, or do not
	// agree on any row of the decision table.
	ReasonEvidenceUnknown ReasonCode = "evidence-unknown"
	// ReasonMembershipAhead: Pacemaker still has the host but its management network does
	// not answer probes. Pacemaker's heartbeat runs over that network, so its view is about
	// to change (or the probes are filtered): nothing is done on the other networks' losses
	// until the two agree, so that a host going dead or isolated is never first answered as
	// merely degraded (a live migration towards a dead host, a fence of an isolated one).
	ReasonMembershipAhead ReasonCode = "membership-ahead"
	// ReasonUnconfirmed: the tracker has not yet seen any decision hold for the confirmation
	// time since it started watching the host.
	ReasonUnconfirmed ReasonCode = "unconfirmed"
)

// StorageHeartbeat stands in Decision.Networks for a lost storage heartbeat of a member host.
// It cannot clash with a network: network names hold no space.
const StorageHeartbeat = "storage heartbeat"

// Collect turns observations into the evidence about host, under the configured tolerances.
//
//   - Membership: obs.Members[host]; absent is Unknown.
//   - Networks: for each configured network, OK when any other observer sees host ok there;
//     Lost when at least one observer sees it lost and none sees it ok, counting only
//     observers that reach another host on that network (one whose own link is down proves
//     nothing) and that Pacemaker does not report offline (their published views cannot be
//     current); Unknown otherwise.
//   - Storage: OK when host's record is fresh (at most StaleAfter+ClockSkew old). Lost when
//     it is stale or missing while another host's record is fresh. Unknown without a shared
//     directory, when the directory could not be read, when host's file could not be decoded,
//     when nobody's record is fresh (the storage is down for everyone) or when the record is
//     more than ClockSkew in the future.
//   - Service: from a fresh record only; ServiceDownFor is Now - ServiceDownSince.
func Collect(cfg *config.Health, obs Observations, host string) Evidence {
	ev := Evidence{
		Host:       host,
		Membership: membership(obs.Members, host),
		Networks:   make(map[string]Signal, len(cfg.Networks)),
	}
	for _, n := range cfg.Networks {
		ev.Networks[n.Name] = reach(cfg, obs, n.Name, host)
	}
	var rec Record
	ev.Storage, rec = storage(cfg, obs, host)
	if ev.Storage == OK {
		switch rec.Service {
		case ServiceOK:
			ev.Service = OK
		case ServiceDown:
			ev.Service = Lost
			if !rec.ServiceDownSince.IsZero() {
				// Two clocks are compared: a "since" ahead of ours is read as just now.
				ev.ServiceDownFor = max(obs.Now.Sub(rec.ServiceDownSince), 0)
			}
		}
	}
	return ev
}

func membership(members map[string]bool, host string) Signal {
	online, known := members[host]
	switch {
	case !known:
		return Unknown
	case online:
		return OK
	default:
		return Lost
	}
}

func reach(cfg *config.Health, obs Observations, network, host string) Signal {
	lost := false
	for observer, nets := range obs.Reach {
		if observer == host {
			continue
		}
		if online, known := obs.Members[observer]; known && !online {
			continue
		}
		view := nets[network]
		switch view[host] {
		case OK:
			return OK
		case Lost:
			lost = lost || reachesAnother(cfg, view, observer, host)
		}
	}
	if lost {
		return Lost
	}
	return Unknown
}

// reachesAnother reports whether observer's view shows some host other than itself and host
// reachable: then its own link works and its loss report about host means something. When
// the hosts gossip, only the peers an observer probes itself count (the seeds and the
// observers): what the gossip says of the others is the network's view, which a host cut off
// keeps holding alive for a while.
func reachesAnother(cfg *config.Health, view map[string]Signal, observer, host string) bool {
	own := !cfg.Gossip.Enabled() || cfg.Direct(observer)
	for peer, s := range view {
		if s == OK && peer != host && peer != observer && (own || cfg.Direct(peer)) {
			return true
		}
	}
	return false
}

type freshness uint8

const (
	stale freshness = iota
	fresh
	future
)

func age(cfg *config.Health, now time.Time, r Record) freshness {
	a := now.Sub(r.Time)
	switch {
	case a < -cfg.ClockSkew:
		return future
	case a <= cfg.StaleAfter+cfg.ClockSkew:
		return fresh
	default:
		return stale
	}
}

func storage(cfg *config.Health, obs Observations, host string) (Signal, Record) {
	if cfg.SharedDir == "" || obs.StorageErr != nil || obs.RecordErrs[host] != nil {
		return Unknown, Record{}
	}
	rec, ok := obs.Records[host]
	if ok {
		if rec.Host != host {
			// Another host's record under this host's name proves nothing about either.
			return Unknown, Record{}
		}
		switch age(cfg, obs.Now, rec) {
		case fresh:
			return OK, rec
		case future:
			return Unknown, Record{}
		}
	}
	// Stale or missing counts only if the storage demonstrably works for someone else.
	for h, r := range obs.Records {
		if h != host && r.Host == h && age(cfg, obs.Now, r) == fresh {
			return Lost, Record{}
		}
	}
	return Unknown, Record{}
}

// Decide judges a host from its evidence. It is pure: same input, same decision.
//
// The decision table (mgmt is the management network's reachability, others every other
// network; rows are tried in order):
//
//	membership  mgmt      others         storage  state                response
//	ok          lost      (as if membership were lost: dead, isolated or management-lost;
//	                       anything else: unknown, alert, until Pacemaker's view agrees)
//	ok          ok/unk.   none lost      not lost running              none
//	ok          ok/unk.   some lost      *        degraded             strongest of the lost networks'
//	ok          ok/unk.   *              lost     degraded             alert (the writer may have crashed)
//	unknown     *         *              *        unknown              alert
//	lost        ok        *              *        service-unreachable  restart (fence after RestartTimeout)
//	lost        *         some ok        lost     service-unreachable  restart (fence after RestartTimeout)
//	lost        lost      all lost       lost     dead                 fence
//	lost        lost      all lost       ok       isolated             disable
//	lost        lost      some ok        ok       management-lost      management network's, never fence
//	anything else (some signal unknown)           unknown              alert
//
// Unknown is never read as lost: a host is dead only when every signal is lost. A
// service-unreachable host is fenced once ev.ServiceDownFor reaches cfg.RestartTimeout (a
// RestartTimeout of zero never escalates); [Tracker] escalates the same way from its own
// time in that state when the host's record is not available.
func Decide(cfg *config.Health, ev Evidence) Decision {
	mgmt := cfg.ManagementNetwork()
	mgmtSig := Unknown
	if mgmt != "" {
		mgmtSig = ev.Networks[mgmt]
	}
	var ok, lost []string // other networks, in configuration order
	others := 0
	for _, n := range cfg.Networks {
		if n.Name == mgmt {
			continue
		}
		others++
		switch ev.Networks[n.Name] {
		case OK:
			ok = append(ok, n.Name)
		case Lost:
			lost = append(lost, n.Name)
		}
	}
	d := Decision{Host: ev.Host, Member: ev.Membership == OK}
	why := func(code ReasonCode, format string, args ...any) Decision {
		d.Reason = Reason{Code: code, Text: fmt.Sprintf(format, args...) + " (" + signals(cfg, ev) + ")"}
		return d
	}

	switch ev.Membership {
	case OK:
		if mgmtSig == Lost {
			// The management network's own heartbeat is lost before Pacemaker's: judge as
			// Pacemaker soon will, but take only the verdicts that fence nothing on their own
			// (dead is recorded, Pacemaker does the fencing; isolated and management-lost
			// disable) and wait on anything else.
			ahead := ev
			ahead.Membership = Lost
			if a := Decide(cfg, ahead); a.State == Dead || a.State == Isolated || a.State == ManagementLost {
				a.Reason.Text = strings.Replace(a.Reason.Text, "(membership lost", "(membership ok but its management network silent", 1)
				return a
			}
			d.State, d.Response = Undecided, config.ResponseAlert
			return why(ReasonMembershipAhead, "%s is undecided: Pacemaker still has it but its management network %s does not answer; alert, wait for the two to agree", ev.Host, mgmt)
		}
		d.Response = config.ResponseNone
		for _, n := range lost {
			d.Response = Strongest(d.Response, networkResponse(cfg, n))
		}
		d.Networks = lost
		if ev.Storage == Lost {
			d.Networks = append(d.Networks, StorageHeartbeat)
			d.Response = Strongest(d.Response, storageHeartbeatResponse(cfg))
		}
		switch {
		case len(lost) > 0:
			d.State = Degraded
			return why(ReasonNetworksLost, "%s is degraded: lost %s; response %s", ev.Host, strings.Join(d.Networks, ", "), d.Response)
		case ev.Storage == Lost:
			d.State = Degraded
			return why(ReasonHeartbeatLost, "%s is degraded: its storage heartbeat is stale while other hosts' are fresh; response %s", ev.Host, d.Response)
		}
		d.State, d.Networks = Running, nil
		return why(ReasonHealthy, "%s is running", ev.Host)
	case Unknown:
		d.State, d.Response = Undecided, config.ResponseAlert
		return why(ReasonMembershipUnknown, "%s is undecided: its cluster membership is unknown; alert, never fence", ev.Host)
	}

	if mgmtSig == OK && len(lost) > 0 {
		// The host answers on its management network but lost a network whose own response
		// is to fence (storage, say): restarting its cluster service would not bring its VMs'
		// disks back, so the lost networks decide, as they do for a member. (A daemon that
		// fences such a host by failing its connection makes it a non-member itself.)
		resp := config.ResponseNone
		for _, n := range lost {
			resp = Strongest(resp, networkResponse(cfg, n))
		}
		if resp == config.ResponseFence {
			d.State, d.Response, d.Networks = Degraded, resp, lost
			return why(ReasonNetworksLost, "%s is degraded: lost %s, and its cluster service is unreachable; response %s", ev.Host, strings.Join(lost, ", "), resp)
		}
	}
	anyOK := mgmtSig == OK || len(ok) > 0
	allLost := mgmtSig == Lost && len(lost) == others
	switch {
	case mgmtSig == OK || anyOK && ev.Storage == Lost:
		d.State, d.Response, d.Networks = ServiceUnreachable, ResponseRestart, lost
		if cfg.RestartTimeout > 0 && ev.Service == Lost && ev.ServiceDownFor >= cfg.RestartTimeout {
			d.Response = config.ResponseFence
			return why(ReasonRestartTimedOut, "%s's cluster service has been down for %s, beyond the restart timeout %s; fence",
				ev.Host, ev.ServiceDownFor.Round(time.Second), cfg.RestartTimeout)
		}
		return why(ReasonServiceUnreachable, "%s's cluster service is unreachable but the host answers on the network; restart it, fence after %s",
			ev.Host, cfg.RestartTimeout)
	case allLost && ev.Storage == Lost:
		d.State, d.Response = Dead, config.ResponseFence
		return why(ReasonAllLost, "%s is dead: membership, every network and the storage heartbeat are lost; fence", ev.Host)
	case allLost && ev.Storage == OK:
		d.State, d.Response = Isolated, config.ResponseDisable
		return why(ReasonIsolated, "%s is isolated: every network is lost but its storage heartbeat is fresh, so its VMs still run; disable, never fence", ev.Host)
	case mgmtSig == Lost && anyOK && ev.Storage == OK:
		d.State, d.Networks = ManagementLost, []string{mgmt}
		d.Response = networkResponse(cfg, mgmt)
		if Strongest(d.Response, config.ResponseDisable) != config.ResponseDisable {
			// Validation refuses these; the host still runs its VMs, so never more than disable.
			d.Response = config.ResponseDisable
		}
		return why(ReasonManagementLost, "%s lost only the management network %s: its other networks answer and its storage heartbeat is fresh; %s, never fence",
			ev.Host, mgmt, d.Response)
	}
	d.State, d.Response = Undecided, config.ResponseAlert
	return why(ReasonEvidenceUnknown, "%s is undecided: its membership is lost but the other signals are unknown or inconclusive; alert, never fence", ev.Host)
}

// signals names every signal of ev, for Reason.Text.
func signals(cfg *config.Health, ev Evidence) string {
	var b strings.Builder
	b.WriteString("membership ")
	b.WriteString(ev.Membership.String())
	for _, n := range cfg.Networks {
		b.WriteString(", network ")
		b.WriteString(n.Name)
		b.WriteByte(' ')
		b.WriteString(ev.Networks[n.Name].String())
	}
	b.WriteString(", storage heartbeat ")
	b.WriteString(ev.Storage.String())
	b.WriteString(", service ")
	switch ev.Service {
	case Lost:
		fmt.Fprintf(&b, "down for %s", ev.ServiceDownFor.Round(time.Second))
	default:
		b.WriteString(ev.Service.String())
	}
	return b.String()
}

// networkResponse is the configured (or default) response to losing network alone.
func networkResponse(cfg *config.Health, network string) config.Response {
	for _, n := range cfg.Networks {
		if n.Name == network {
			return n.ResponseOrDefault()
		}
	}
	return config.ResponseAlert
}

// storageHeartbeatResponse answers a member host's stale heartbeat as the loss of the network
// named "storage" when one is configured, else by fencing: the host's VMs lost their disks.
// storageHeartbeatResponse answers a stale heartbeat of a member host whose storage network is
// not seen lost. That is alert only: a crashed or stuck heartbeat writer looks exactly like it,
// and fencing a healthy host is the outcome this package exists to prevent. A storage network
// that is really lost is seen by the probes and answered with that network's response.
func storageHeartbeatResponse(*config.Health) config.Response {
	return config.ResponseAlert
}

// strength orders the network responses: fence > migrate > disable > alert > none.
func strength(r Response) int {
	switch r {
	case config.ResponseNone:
		return 0
	case config.ResponseDisable:
		return 2
	case config.ResponseMigrate:
		return 3
	case config.ResponseFence:
		return 4
	default:
		// alert, and anything a validated configuration cannot hold: tell a person.
		return 1
	}
}

// Strongest returns the strongest of network responses (fence > migrate > disable > alert >
// none), or none when given none. A value that is not a network response counts as alert.
func Strongest(rs ...Response) Response {
	best := config.ResponseNone
	for _, r := range rs {
		if strength(r) > strength(best) {
			best = r
		}
	}
	return best
}

// Tracker adds hysteresis: a host's decided state changes only once a new state has held for
// cfg.Confirm.
//
// A decision is "the same" as another when state, response and lost networks agree (the text
// may differ); a different one replaces the confirmed decision only after every raw decision
// fed for cfg.Confirm has been that same one. There is no exception, towards dead or running
// alike: a signal flapping faster than Confirm never changes the confirmed decision. Until a
// host's first decision is confirmed, Observe returns an [Undecided] decision with response
// none and code [ReasonUnconfirmed].
//
// The tracker also keeps since when each host has been (confirmed) service-unreachable,
// starting at the first raw observation of that state: once that lasts cfg.RestartTimeout,
// the confirmed decision's response turns from restart to fence (code
// [ReasonRestartTimedOut]), even when no record of the host says how long its service has been
// down. A RestartTimeout of zero never escalates.
//
// A host that comes back is given a grace: until its first raw running decision, for at most
// cfg.RejoinGrace, what is seen of it is held, neither confirmed nor started towards
// confirmation. It comes back when it rejoins (a raw decision made while Pacemaker has it,
// after one made while it did not), or when a host confirmed dead answers again at all (any
// raw decision but dead: powered on after its fencing, it answers on its networks before its
// cluster service is up). Other hosts' views of its networks and its heartbeat record may still
// be those of the time it was away, and its own hostcheck may not run yet: acting on them would
// fence or migrate a host that has just come back healthy (after its fencing, the very host
// that was just recovered), and confirming each step of its boot would make its state flap
// (dead, degraded, service-unreachable, running) and alert on what is only its return. Held
// are the decisions made while it is a member that are not running (a network or its storage
// heartbeat lost, its management network silent) and, while it is still confirmed dead, every
// decision but dead. Once it is seen running, every signal about it has been seen working
// since its return, so a loss after that is new evidence and is judged as usual. A loss that
// is still seen when the grace ends is confirmed as usual, cfg.Confirm later. A host lost
// again (a raw dead decision, or a decision made while it is not a member after a rejoin from
// any state but dead) is not held, and its next return starts a new grace.
//
// Time is only what the caller passes as now, so a Tracker is deterministic. It is safe for
// concurrent use.
type Tracker struct {
	confirm        time.Duration
	restartTimeout time.Duration
	rejoinGrace    time.Duration

	mu    sync.Mutex
	hosts map[string]*track
}

type track struct {
	confirmed Decision
	// pending is the latest raw decision differing from confirmed, seen unchanged since
	// pendingSince; hasPending is false when the latest raw decision matched confirmed.
	pending      Decision
	pendingSince time.Time
	hasPending   bool
	// unreachableSince is when the confirmed service-unreachable state began; zero in any
	// other state.
	unreachableSince time.Time
	// member tells whether the latest raw decision was made while Pacemaker had the host;
	// memberKnown is false until the first one. back is when the host last came back (it
	// rejoined, or answered again while confirmed dead); zero once it has been seen running
	// since (its grace is over) or it was lost again.
	member, memberKnown bool
	back                time.Time
	lastDead            bool // the latest raw decision was dead
}

// NewTracker returns a tracker for the configured hysteresis.
func NewTracker(cfg *config.Health) *Tracker {
	return &Tracker{confirm: cfg.Confirm, restartTimeout: cfg.RestartTimeout, rejoinGrace: cfg.RejoinGrace, hosts: map[string]*track{}}
}

// Observe feeds the latest raw decision for d.Host at now and returns the confirmed decision,
// and whether it changed with this observation (its state, response or networks; a new text
// alone is no change).
func (t *Tracker) Observe(now time.Time, d Decision) (Decision, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	h := t.hosts[d.Host]
	if h == nil {
		h = &track{confirmed: Decision{
			Host: d.Host, State: Undecided, Response: config.ResponseNone,
			Reason: Reason{Code: ReasonUnconfirmed, Text: fmt.Sprintf("%s: no decision has held for %s yet", d.Host, t.confirm)},
		}}
		t.hosts[d.Host] = h
	}
	switch {
	case d.Member && d.State == Running, d.State == Dead:
		h.back = time.Time{} // seen running, or lost again
	case d.Member && h.memberKnown && !h.member:
		h.back = now // rejoined
	case h.lastDead && h.confirmed.State == Dead:
		h.back = now // answers again
	}
	h.member, h.memberKnown, h.lastDead = d.Member, true, d.State == Dead
	if t.holding(now, h, d) {
		// Not evidence yet: neither confirmed nor counted towards a confirmation.
		h.hasPending = false
		return h.confirmed, false
	}
	// A raw restart for a host whose time is up reads as the fence already confirmed, so it
	// does not start a change back to restart.
	d = t.escalate(now, h, d)
	changed := false
	switch {
	case sameKind(d, h.confirmed):
		h.confirmed, h.hasPending = d, false
	case !h.hasPending || !sameKind(d, h.pending):
		h.pending, h.pendingSince, h.hasPending = d, now, true
		fallthrough
	default:
		h.pending = d // the latest text
		if now.Sub(h.pendingSince) < t.confirm {
			break
		}
		if d.State == ServiceUnreachable && h.confirmed.State != ServiceUnreachable {
			h.unreachableSince = h.pendingSince
		}
		if d.State != ServiceUnreachable {
			h.unreachableSince = time.Time{}
		}
		h.confirmed, h.hasPending, changed = d, false, true
	}
	if esc := t.escalate(now, h, h.confirmed); !sameKind(esc, h.confirmed) {
		h.confirmed, changed = esc, true
	}
	return h.confirmed, changed
}

// holding reports whether d falls within the grace of a host that came back: a raw decision
// that is not running about a member, or any raw decision but dead about a host still
// confirmed dead.
func (t *Tracker) holding(now time.Time, h *track, d Decision) bool {
	if h.back.IsZero() || now.Sub(h.back) >= t.rejoinGrace || d.State == Running || d.State == Dead {
		return false
	}
	return d.Member || h.confirmed.State == Dead
}

// escalate turns a service-unreachable restart into a fence once the host has been confirmed
// service-unreachable for the restart timeout.
func (t *Tracker) escalate(now time.Time, h *track, d Decision) Decision {
	if t.restartTimeout <= 0 || h.unreachableSince.IsZero() || h.confirmed.State != ServiceUnreachable ||
		d.State != ServiceUnreachable || d.Response != ResponseRestart {
		return d
	}
	down := now.Sub(h.unreachableSince)
	if down < t.restartTimeout {
		return d
	}
	d.Response = config.ResponseFence
	d.Reason = Reason{
		Code: ReasonRestartTimedOut,
		Text: fmt.Sprintf("%s has been service-unreachable for %s, beyond the restart timeout %s; fence. %s",
			d.Host, down.Round(time.Second), t.restartTimeout, d.Reason.Text),
	}
	return d
}

func sameKind(a, b Decision) bool {
	return a.State == b.State && a.Response == b.Response && slices.Equal(a.Networks, b.Networks)
}

// Since returns when host's confirmed service-unreachable state began (its first raw
// observation), and false when host is not confirmed service-unreachable.
func (t *Tracker) Since(host string) (time.Time, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	h := t.hosts[host]
	if h == nil || h.confirmed.State != ServiceUnreachable || h.unreachableSince.IsZero() {
		return time.Time{}, false
	}
	return h.unreachableSince, true
}

// Confirmed returns host's confirmed decision, and false when host was never observed.
func (t *Tracker) Confirmed(host string) (Decision, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	h := t.hosts[host]
	if h == nil {
		return Decision{}, false
	}
	return h.confirmed, true
}

// Forget drops what the tracker knows of host (a host removed from the configuration); its
// next observation starts unconfirmed.
func (t *Tracker) Forget(host string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.hosts, host)
}
