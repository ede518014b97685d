// Package evacstate is the contract between the parts of computeha that
// hand a failed compute host from one to the next: fence_nova marks a
// fenced host for evacuation, the evacuation daemon records its progress,
// and fence_nova's unfencing and the nova-compute agent wait until it is
// done. The state lives in a permanent node attribute of the host's
// Pacemaker node, so it survives the daemon dying, moving to another
// controller, and whole-cluster restarts.
//
// The attribute's value is the phase, optionally followed by
// ";key=value" fields:
//
//	pending;by=fence_nova;since=2026-11-21T10:42:07Z   fenced, nothing evacuated yet
//	running;owner=ctl2;since=2026-11-21T10:42:08Z      a daemon is evacuating it
//	done;since=2026-11-21T10:42:19Z                    every HA VM recovered
//	failed;since=...;reason=3 VMs not recovered        recovery gave up: an operator decides
//
// An absent attribute means the host is not under recovery.
package evacstate

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/computeha/computeha/crm"
)

// Attribute is the node attribute holding a host's evacuation state.
const Attribute = "computeha-evacuate"

// DisabledReasonPrefix starts the reason computeha gives Nova when it
// disables a compute service. Only services disabled with it are enabled
// again by computeha: one an operator disabled stays disabled.
const DisabledReasonPrefix = "computeha:"

// HealthReasonPrefix starts the reason the evacuation daemon gives Nova when it disables a host
// because of its health (isolated, a network lost) rather than for its fencing. Only the
// daemon undoes such a disable, when the host is healthy again: fence_nova and the
// nova-compute agent leave it alone, as they leave an operator's, since the host they see
// running is exactly the one that must take no new VMs.
const HealthReasonPrefix = DisabledReasonPrefix + " health:"

// ReserveReasonPrefix starts the reason a reserved host is disabled with while it is held in
// reserve (`computeha reserved return` writes it). A recovery that takes the host into use
// enables it; fence_nova and the nova-compute agent leave it disabled.
const ReserveReasonPrefix = DisabledReasonPrefix + " reserved:"

// MaintenanceReasonPrefix starts the reason a host's service is disabled with while it is in
// computeha maintenance: only ending the maintenance enables it again.
const MaintenanceReasonPrefix = DisabledReasonPrefix + " maintenance:"

// DisabledByUs tells whether computeha disabled a service with this reason for its fencing
// and evacuation: the disables fence_nova and the nova-compute agent undo once the host is let
// back. A health disable ([DisabledForHealth]), a reserved host held in reserve
// ([ReserveReasonPrefix]) and a host in maintenance ([MaintenanceReasonPrefix]) are not among
// them.
func DisabledByUs(reason string) bool {
	return strings.HasPrefix(reason, DisabledReasonPrefix) && !DisabledForHealth(reason) &&
		!strings.HasPrefix(reason, ReserveReasonPrefix) && !strings.HasPrefix(reason, MaintenanceReasonPrefix)
}

// HeldInReserve tells whether a reserved host's service, disabled with this reason, is held in
// reserve and may be taken into use: disabled by `computeha reserved return`, with no reason
// at all (a plain `openstack compute service set --disable`), or with one of the operator's
// own that says so (it mentions "reserve": "reserved for failover"). Any other reason (a
// repair, a health problem, a fencing) keeps it out: taking it would enable it.
func HeldInReserve(reason string) bool {
	if reason == "" || strings.HasPrefix(reason, ReserveReasonPrefix) {
		return true
	}
	return !strings.HasPrefix(reason, DisabledReasonPrefix) && strings.Contains(strings.ToLower(reason), "reserve")
}

// DisabledForHealth tells whether the evacuation daemon disabled a service with this reason
// because of the host's health.
func DisabledForHealth(reason string) bool { return strings.HasPrefix(reason, HealthReasonPrefix) }

// Phase is where a host is in its recovery.
type Phase string

// Phases.
const (
	None    Phase = ""
	Pending Phase = "pending"
	Running Phase = "running"
	Done    Phase = "done"
	Failed  Phase = "failed"
)

// State is a host's evacuation state.
type State struct {
	Phase Phase
	// Owner is the daemon instance evacuating the host (running).
	Owner string
	// By names who set the state (pending: the fence agent).
	By string
	// Since is when the phase began.
	Since time.Time
	// Reason explains a failure.
	Reason string
}

// Blocking tells whether the host must stay out of service: its VMs are
// not all recovered, so letting it back (unfencing, restarting
// nova-compute) could start a VM twice or delete a copy still needed.
// Failed blocks too, until an operator clears it.
func (s State) Blocking() bool {
	return s.Phase == Pending || s.Phase == Running || s.Phase == Failed
}

// String renders the attribute value.
func (s State) String() string {
	if s.Phase == None {
		return ""
	}
	var b strings.Builder
	b.WriteString(string(s.Phase))
	add := func(k, v string) {
		if v != "" {
			fmt.Fprintf(&b, ";%s=%s", k, url.QueryEscape(v))
		}
	}
	add("owner", s.Owner)
	add("by", s.By)
	if !s.Since.IsZero() {
		add("since", s.Since.UTC().Format(time.RFC3339))
	}
	add("reason", s.Reason)
	return b.String()
}

var phases = []Phase{Pending, Running, Done, Failed}

// Parse reads an attribute value ("" is None). Unknown fields are kept out
// but tolerated, so older readers accept what newer writers add; an unknown
// phase is an error, since guessing could unblock a host too early.
func Parse(v string) (State, error) {
	v = strings.TrimSpace(v)
	if v == "" {
		return State{}, nil
	}
	parts := strings.Split(v, ";")
	s := State{Phase: Phase(strings.TrimSpace(parts[0]))}
	if !slices.Contains(phases, s.Phase) {
		return State{}, fmt.Errorf("evacuation state %q: unknown phase %q", v, parts[0])
	}
	for _, p := range parts[1:] {
		k, raw, ok := strings.Cut(p, "=")
		if !ok {
			return State{}, fmt.Errorf("evacuation state %q: field %q is not key=value", v, p)
		}
		val, err := url.QueryUnescape(raw)
		if err != nil {
			return State{}, fmt.Errorf("evacuation state %q: field %q: %w", v, k, err)
		}
		switch k {
		case "owner":
			s.Owner = val
		case "by":
			s.By = val
		case "reason":
			s.Reason = val
		case "since":
			t, err := time.Parse(time.RFC3339, val)
			if err != nil {
				return State{}, fmt.Errorf("evacuation state %q: since: %w", v, err)
			}
			s.Since = t
		}
	}
	return s, nil
}

// Attributes reads and writes a node's permanent attributes ([crm.Client] and [crm.Fake]
// have them).
type Attributes interface {
	Attribute(ctx context.Context, node, name string, l crm.Lifetime) (string, error)
	SetAttribute(ctx context.Context, node, name, value string, l crm.Lifetime) error
	DeleteAttribute(ctx context.Context, node, name string, l crm.Lifetime) error
}

// Marks is where every part of computeha reads and writes a host's state: the permanent
// attribute [Attribute] of its Pacemaker node.
type Marks struct{ Attrs Attributes }

// Get reads node's state; a node without the attribute is [None].
func (m Marks) Get(ctx context.Context, node string) (State, error) {
	v, err := m.Attrs.Attribute(ctx, node, Attribute, crm.Permanent)
	if errors.Is(err, crm.ErrNoSuchObject) {
		return State{}, nil
	}
	if err != nil {
		return State{}, fmt.Errorf("evacuation state of %s: %w", node, err)
	}
	return Parse(v)
}

// Set writes node's state; [None] removes the attribute.
func (m Marks) Set(ctx context.Context, node string, s State) error {
	if s.Phase == None {
		return m.Attrs.DeleteAttribute(ctx, node, Attribute, crm.Permanent)
	}
	return m.Attrs.SetAttribute(ctx, node, Attribute, s.String(), crm.Permanent)
}

// ConfirmedBy finds, among evs, the successful fencing of node that confirms this mark: one
// completed at or after the mark, less skew (controllers' clocks differ), or at any time for a
// mark with no time. A retry's mark has no allowance: it was written before the retry asked
// for the fencing, on the same clock, and an allowance would let the fencing before the
// failed recovery confirm it, though the host may have been powered on since.
func (s State) ConfirmedBy(evs []crm.FenceEvent, node string, skew time.Duration) (crm.FenceEvent, bool) {
	since := s.Since.Add(-skew)
	if s.By == ByRetry {
		since = s.Since
	}
	for _, e := range evs {
		if e.Target == node && e.Succeeded() && (s.Since.IsZero() || !e.Completed.Before(since)) {
			return e, true
		}
	}
	return crm.FenceEvent{}, false
}
