package recovery

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/computeha/computeha/internal/clock"
	"github.com/computeha/computeha/internal/history"
	"github.com/computeha/computeha/internal/openstack"
)

// A VM whose evacuation was sent to a host that failed before rebuilding it is asked again
// elsewhere by its recovery, but the first request waits in the dead host's queue. When that
// host comes back, its nova-compute runs it: Nova's rebuild finds the VM no longer rebuilding
// and gives up, building nothing, but on the way leaves the VM in vm_state error with task
// "rebuilding" (the API shows REBUILD, for good), though it runs on the host it was recovered
// to. Leftovers remembers such VMs and watches them from their recovery on (LeftoverWatch, more
// if their lost host joins again meanwhile): it resets each one it finds so to active, and
// records it.

// LeftoverWatch is how long after its recovery, or its lost host's last join, a VM whose
// lost evacuation waits in that host's queue is watched for; LeftoverPoll how often.
const (
	LeftoverWatch = 30 * time.Minute
	LeftoverPoll  = 5 * time.Second
)

// ReasonLeftoverRebuild is the history's reason code of a VM reset to active after its lost
// host ran the evacuation left in its queue.
const ReasonLeftoverRebuild history.ReasonCode = "leftover-rebuild"

// Leftovers watches the VMs recovered after their evacuation was lost with a failed host.
// Safe for concurrent use.
type Leftovers struct {
	nova   openstack.Client
	clock  clock.Clock
	log    *slog.Logger
	names  Names
	record func(ctx context.Context, e history.Event)

	mu      sync.Mutex
	vms     map[string][]leftover // by the lost host's node
	until   map[string]time.Time  // watched until then, by node
	watched map[string]bool       // a watch runs, by node
}

// leftover is a VM recovered after its evacuation was lost with a failed host.
type leftover struct {
	id, name string
	host     string // the Nova host it was recovered to
}

// NewLeftovers returns the watch; record keeps what it did (a history's Record).
func NewLeftovers(nova openstack.Client, c clock.Clock, log *slog.Logger, names Names, record func(ctx context.Context, e history.Event)) *Leftovers {
	return &Leftovers{
		nova: nova, clock: clock.Or(c), log: log, names: names, record: record,
		vms: map[string][]leftover{}, until: map[string]time.Time{}, watched: map[string]bool{},
	}
}

// rebuildConflict tells Nova's fault of a rebuild that found the VM no longer rebuilding:
// "Conflict updating instance ID. Expected: {'task_state': ['rebuilding']}. Actual:
// {'task_state': None}" (as Nova 2023.1 words it; "Unexpected task state: expecting
// ['rebuilding'] ..." elsewhere).
func rebuildConflict(fault string) bool {
	return strings.Contains(fault, "['rebuilding']") && (strings.Contains(fault, "task_state") || strings.Contains(fault, "task state"))
}

// Remember notes the VMs of rep recovered after their evacuation was lost with a failed host,
// by that host's node, to be watched for LeftoverWatch ([Leftovers.Watch]).
func (l *Leftovers) Remember(rep Report) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, v := range rep.VMs {
		if v.LostOn.Node == "" || v.Result != Recovered {
			continue
		}
		l.vms[v.LostOn.Node] = append(l.vms[v.LostOn.Node], leftover{id: v.ID, name: v.Server.Name, host: v.To.NovaHost})
		l.until[v.LostOn.Node] = l.clock.Now().Add(LeftoverWatch)
	}
}

// Joined gives the VMs whose lost evacuation waits in node's queue another LeftoverWatch:
// node joined again, and its nova-compute is about to run that queue.
func (l *Leftovers) Joined(node string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.vms[node]) > 0 {
		l.until[node] = l.clock.Now().Add(LeftoverWatch)
	}
}

// Watch starts, for each node with VMs remembered and no watch yet, a watch that resets to
// active each VM Nova left in error when node ran the evacuation left in its queue: in
// vm_state error where it was recovered to, with the rebuild's task left (or Nova's
// rebuild-conflict fault). It watches from the recovery on, not from a join: a remote node
// just fenced can read online for a moment, and its real return is no event to count on.
func (l *Leftovers) Watch(ctx context.Context, wg *sync.WaitGroup) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for node := range l.vms {
		if l.watched[node] {
			continue
		}
		l.watched[node] = true
		wg.Go(func() {
			for l.clock.Sleep(ctx, LeftoverPoll) == nil {
				l.mu.Lock()
				left := l.vms[node]
				delete(l.vms, node)
				if len(left) == 0 || l.clock.Now().After(l.until[node]) {
					delete(l.until, node)
					delete(l.watched, node)
					l.mu.Unlock()
					return
				}
				l.mu.Unlock()
				kept := l.round(ctx, node, left)
				l.mu.Lock()
				l.vms[node] = append(kept, l.vms[node]...)
				l.mu.Unlock()
			}
		})
	}
}

// round looks at each VM once; it returns those still to be watched.
func (l *Leftovers) round(ctx context.Context, node string, left []leftover) []leftover {
	var keep []leftover
	for _, v := range left {
		s, err := l.nova.Server(ctx, v.id)
		switch {
		case err != nil:
			keep = append(keep, v) // read again next round (gone for good: the watch ends)
		case s.Host != v.host:
			// Moved since: no longer what the recovery left.
		case s.VMState == "error" && (s.TaskState == "rebuilding" || rebuildConflict(s.Fault)):
			// Nova shows no fault while the status reads REBUILD: vm_state error with the
			// rebuild's task left, where it was recovered, since the lost host came back, is
			// that request's mark.
			if err := l.nova.ResetState(ctx, v.id, "active"); err != nil {
				l.log.Warn("resetting a VM Nova set ERROR for an evacuation left in a queue failed; tried again", "vm", v.id, "error", err)
				keep = append(keep, v)
				continue
			}
			l.record(ctx, history.Event{
				Host: node, Kind: history.KindDecision,
				Summary: fmt.Sprintf("%s (%s) reset to active: %s, back, ran the evacuation left in its queue, and Nova set the VM ERROR though it runs on %s",
					v.name, v.id, node, l.names.ByNova(v.host).Node),
				Reason: history.Reason{Code: ReasonLeftoverRebuild, Text: s.Fault},
			})
		default:
			keep = append(keep, v)
		}
	}
	return keep
}
