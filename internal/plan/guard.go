package plan

import (
	"fmt"
	"slices"
	"time"

	"github.com/computeha/computeha/internal/config"
)

// Failure is one host failure: the host was found failed (and fenced) at At.
type Failure struct {
	Host    string
	Segment string
	At      time.Time
}

// Action is what the guard tells the daemon to do.
type Action string

const (
	// ActionProceed: recover the host's VMs.
	ActionProceed Action = "proceed"
	// ActionPause: do not recover; hold the host and alert an operator.
	ActionPause Action = "pause"
)

// GuardReason says why the guard decided as it did.
type GuardReason string

const (
	// ReasonWithinLimits: the failure is within every threshold.
	ReasonWithinLimits GuardReason = "within-limits"
	// ReasonNoQuorum: this side of the cluster lacks quorum, so it may be the partitioned one
	// and the "failed" hosts may be running.
	ReasonNoQuorum GuardReason = "no-quorum"
	// ReasonTooManyHosts: more than guard.max_hosts hosts failed within guard.window.
	ReasonTooManyHosts GuardReason = "too-many-hosts"
	// ReasonSegmentFraction: more than guard.max_segment_fraction of the segment failed
	// within guard.window.
	ReasonSegmentFraction GuardReason = "segment-fraction"
	// ReasonNoFailureRecorded: Allow was asked about a host with no recorded failure.
	ReasonNoFailureRecorded GuardReason = "no-failure-recorded"
	// ReasonUnknownSegment: the size of the host's segment is unknown, so the fraction
	// cannot be checked.
	ReasonUnknownSegment GuardReason = "unknown-segment"
)

// Decision is the guard's verdict on recovering one host.
type Decision struct {
	Action Action
	Reason GuardReason
	// Message is one line for logs, the alert and the history, with the figures compared.
	Message string
	// FailedHosts are the distinct hosts counted within the window, sorted.
	FailedHosts []string
}

// Guard refuses mass recovery (STYLE: refuse mass damage). It is a plain value: the daemon
// fills it with its thresholds, the segment sizes, the recent failures (its durable history
// is the source) and the quorum flag, and asks [Guard.Allow]. It keeps no state of its own,
// so a pause lasts only as long as the failures stay within the window: the daemon, not the
// guard, must hold a paused host until an operator releases it.
type Guard struct {
	Config config.Guard
	// SegmentSizes maps a segment name to its number of hosts (reserved hosts included).
	SegmentSizes map[string]int
	// Failures are recent host failures; older ones than Config.Window are ignored.
	Failures []Failure
	// Quorate is true when this side of the cluster has quorum.
	Quorate bool
}

// Allow decides whether host's VMs may be recovered now. host must have a recorded failure
// (its latest gives its segment). Failures count within (now - Window, now], plus host itself
// even if its own failure is older (a recovery resumed after a restart). Failures after now
// count too: clocks of cluster nodes differ a little, and counting more is the safe side.
func (g Guard) Allow(host string, now time.Time) Decision {
	if !g.Quorate {
		return Decision{
			Action: ActionPause, Reason: ReasonNoQuorum,
			Message: fmt.Sprintf("not recovering %s: this partition has no quorum, so the host may still be running", host),
		}
	}
	own, ok := g.latest(host)
	if !ok {
		return Decision{
			Action: ActionPause, Reason: ReasonNoFailureRecorded,
			Message: fmt.Sprintf("not recovering %s: no failure of it is recorded", host),
		}
	}
	since := now.Add(-g.Config.Window)
	all := map[string]bool{host: true}
	inSegment := map[string]bool{host: true}
	for _, f := range g.Failures {
		if !f.At.After(since) {
			continue
		}
		all[f.Host] = true
		if f.Segment == own.Segment {
			inSegment[f.Host] = true
		}
	}
	failed := sortedSet(all)
	if len(all) > g.Config.MaxHosts {
		return Decision{
			Action: ActionPause, Reason: ReasonTooManyHosts, FailedHosts: failed,
			Message: fmt.Sprintf("not recovering %s: %d hosts failed within %s (%v), more than guard.max_hosts %d; pausing recovery",
				host, len(all), g.Config.Window, failed, g.Config.MaxHosts),
		}
	}
	size := g.SegmentSizes[own.Segment]
	if size <= 0 {
		return Decision{
			Action: ActionPause, Reason: ReasonUnknownSegment, FailedHosts: failed,
			Message: fmt.Sprintf("not recovering %s: the size of its segment %q is unknown", host, own.Segment),
		}
	}
	fraction := float64(len(inSegment)) / float64(size)
	if fraction > g.Config.MaxSegmentFraction {
		return Decision{
			Action: ActionPause, Reason: ReasonSegmentFraction, FailedHosts: failed,
			Message: fmt.Sprintf("not recovering %s: %d of the %d hosts of segment %s failed within %s (%v), more than guard.max_segment_fraction %g; pausing recovery",
				host, len(inSegment), size, own.Segment, g.Config.Window, sortedSet(inSegment), g.Config.MaxSegmentFraction),
		}
	}
	return Decision{
		Action: ActionProceed, Reason: ReasonWithinLimits, FailedHosts: failed,
		Message: fmt.Sprintf("recovering %s: %s failed within %s (max %d), %d of %d in segment %s (max fraction %g)",
			host, hosts(len(all)), g.Config.Window, g.Config.MaxHosts, len(inSegment), size, own.Segment, g.Config.MaxSegmentFraction),
	}
}

// latest returns host's most recent failure.
func (g Guard) latest(host string) (Failure, bool) {
	var out Failure
	found := false
	for _, f := range g.Failures {
		if f.Host == host && (!found || f.At.After(out.At)) {
			out, found = f, true
		}
	}
	return out, found
}

// Recent returns the failures that still count at now (within the window), in input order,
// so the daemon can drop older ones from memory.
func (g Guard) Recent(now time.Time) []Failure {
	since := now.Add(-g.Config.Window)
	var out []Failure
	for _, f := range g.Failures {
		if f.At.After(since) {
			out = append(out, f)
		}
	}
	return out
}

func sortedSet(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

func hosts(n int) string {
	if n == 1 {
		return "1 host"
	}
	return fmt.Sprintf("%d hosts", n)
}
