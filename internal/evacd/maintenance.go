package evacd

import (
	"context"
	"sync"

	"github.com/computeha/computeha/crm"
	"github.com/computeha/computeha/internal/history"
	"github.com/computeha/computeha/internal/maintenance"
)

// endMaintenance ends every maintenance window of cib whose until has passed, as `computeha
// maintenance exit` does, and records it. Each in a goroutine of its own, once at a time: it
// calls Nova, which the reconciliation must not wait for.
func (d *Daemon) endMaintenance(ctx context.Context, wg *sync.WaitGroup, cib *crm.CIB) {
	now := d.clock.Now()
	for node, w := range maintenance.Of(cib) {
		if !w.Over(now) {
			continue
		}
		d.mu.Lock()
		busy := d.ending[node]
		if !busy {
			d.ending[node] = true
		}
		d.mu.Unlock()
		if busy {
			continue
		}
		wg.Go(func() {
			defer func() {
				d.mu.Lock()
				delete(d.ending, node)
				d.mu.Unlock()
			}()
			hosts := maintenance.Hosts{Cluster: d.o.Cluster, Nova: d.o.Nova, NovaHost: func(n string) string { return d.names.ByNode(n).NovaHost }}
			res, err := hosts.Exit(ctx, node)
			if err != nil {
				d.o.Log.Warn("ending an expired maintenance failed; tried again later", "host", node, "error", err)
				return
			}
			summary := node + " left maintenance: its window ended"
			if res.Kept {
				summary += " (its nova-compute stays disabled: " + res.Service.DisabledReason + ")"
			}
			// Recorded even when the daemon is stopping: the window is gone already.
			d.record(context.WithoutCancel(ctx), history.Event{
				Time: d.clock.Now(), Host: node, Kind: history.KindMaintenance, Summary: summary,
				Reason: history.Reason{Code: "maintenance-ended", Text: w.Describe()},
			})
		})
	}
}
