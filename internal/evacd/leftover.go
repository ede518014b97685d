package evacd

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/computeha/computeha/internal/history"
	"github.com/computeha/computeha/internal/recovery"
)

// A VM whose evacuation was sent to a host that failed before rebuilding it is asked again
// elsewhere by its recovery, but the first request waits in the dead host's queue. When that
// host comes back, its nova-compute runs it: Nova's rebuild finds the VM no longer rebuilding
// and gives up, building nothing, but on the way leaves the VM in vm_state error with task
// "rebuilding" (the API shows REBUILD, for good), though it runs on the host it was recovered
// to. The daemon remembers such VMs and watches them from their recovery on (30 minutes, more
// if their lost host joins again meanwhile): it resets each one it finds so to active, and
// records it.

// leftover is a VM recovered after its evacuation was lost with a failed host.
type leftover struct {
	id, name string
	host     string // the Nova host it was recovered to
}

// leftoverWatch is how long after its recovery, or its lost host's last join, a VM whose
// lost evacuation waits in that host's queue is watched for; leftoverPoll how often.
const (
	leftoverWatch = 30 * time.Minute
	leftoverPoll  = 5 * time.Second
)

// rebuildConflict tells Nova's fault of a rebuild that found the VM no longer rebuilding:
// "Conflict updating instance ID. Expected: {'task_state': ['rebuilding']}. Actual:
// {'task_state': None}" (as Nova 2023.1 words it; "Unexpected task state: expecting
// ['rebuilding'] ..." elsewhere).
func rebuildConflict(fault string) bool {
	return strings.Contains(fault, "['rebuilding']") && (strings.Contains(fault, "task_state") || strings.Contains(fault, "task state"))
}

// rememberLeftovers notes the VMs of rep recovered after their evacuation was lost with a
// failed host, by that host's node, to be watched for leftoverWatch (watchLeftovers).
func (d *Daemon) rememberLeftovers(rep recovery.Report) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, v := range rep.VMs {
		if v.LostOn.Node == "" || v.Result != recovery.Recovered {
			continue
		}
		d.leftovers[v.LostOn.Node] = append(d.leftovers[v.LostOn.Node], leftover{id: v.ID, name: v.Server.Name, host: v.To.NovaHost})
		d.leftoverUntil[v.LostOn.Node] = d.clock.Now().Add(leftoverWatch)
	}
}

// leftoversJoined gives the VMs whose lost evacuation waits in node's queue another
// leftoverWatch: node joined again, and its nova-compute is about to run that queue.
func (d *Daemon) leftoversJoined(node string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if len(d.leftovers[node]) > 0 {
		d.leftoverUntil[node] = d.clock.Now().Add(leftoverWatch)
	}
}

// watchLeftovers starts, for each node with VMs remembered and no watch yet, a watch that
// resets to active each VM Nova left in error when node ran the evacuation left in its queue:
// in vm_state error where it was recovered to, with the rebuild's task left (or Nova's
// rebuild-conflict fault). It watches from the recovery on, not from a join: a remote node
// just fenced can read online for a moment, and its real return is no event to count on.
func (d *Daemon) watchLeftovers(ctx context.Context, wg *sync.WaitGroup) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for node := range d.leftovers {
		if d.leftoverWatched[node] {
			continue
		}
		d.leftoverWatched[node] = true
		wg.Go(func() {
			for d.clock.Sleep(ctx, leftoverPoll) == nil {
				d.mu.Lock()
				left := d.leftovers[node]
				delete(d.leftovers, node)
				if len(left) == 0 || d.clock.Now().After(d.leftoverUntil[node]) {
					delete(d.leftoverUntil, node)
					delete(d.leftoverWatched, node)
					d.mu.Unlock()
					return
				}
				d.mu.Unlock()
				kept := d.repairRound(ctx, node, left)
				d.mu.Lock()
				d.leftovers[node] = append(kept, d.leftovers[node]...)
				d.mu.Unlock()
			}
		})
	}
}

// repairRound looks at each VM once; it returns those still to be watched.
func (d *Daemon) repairRound(ctx context.Context, node string, left []leftover) []leftover {
	var keep []leftover
	for _, l := range left {
		s, err := d.o.Nova.Server(ctx, l.id)
		switch {
		case err != nil:
			keep = append(keep, l) // read again next round (gone for good: the watch ends)
		case s.Host != l.host:
			// Moved since: no longer what the recovery left.
		case s.VMState == "error" && (s.TaskState == "rebuilding" || rebuildConflict(s.Fault)):
			// Nova shows no fault while the status reads REBUILD: vm_state error with the
			// rebuild's task left, where it was recovered, since the lost host came back, is
			// that request's mark.
			if err := d.o.Nova.ResetState(ctx, l.id, "active"); err != nil {
				d.o.Log.Warn("resetting a VM Nova set ERROR for an evacuation left in a queue failed; tried again", "vm", l.id, "error", err)
				keep = append(keep, l)
				continue
			}
			d.record(ctx, history.Event{
				Host: node, Kind: history.KindDecision,
				Summary: fmt.Sprintf("%s (%s) reset to active: %s, back, ran the evacuation left in its queue, and Nova set the VM ERROR though it runs on %s",
					l.name, l.id, node, d.names.ByNova(l.host).Node),
				Reason: history.Reason{Code: "leftover-rebuild", Text: s.Fault},
			})
		default:
			keep = append(keep, l)
		}
	}
	return keep
}
