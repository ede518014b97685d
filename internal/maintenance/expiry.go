package maintenance

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/computeha/computeha/crm"
	"github.com/computeha/computeha/internal/history"
)

// Expiry ends, for the evacuation daemon, the windows whose until has passed, as `computeha
// maintenance exit` does, and records it. Safe for concurrent use.
type Expiry struct {
	Hosts Hosts
	Log   *slog.Logger
	// Record keeps what it did (a history's Record).
	Record func(ctx context.Context, e history.Event)

	mu     sync.Mutex
	ending map[string]bool // the nodes whose window is being ended
}

// End ends every window of cib over at now, each in a goroutine of wg's, one at a time per
// node: it calls Nova, which the caller must not wait for.
func (x *Expiry) End(ctx context.Context, wg *sync.WaitGroup, cib *crm.CIB, now time.Time) {
	for node, w := range Of(cib) {
		if !w.Over(now) {
			continue
		}
		x.mu.Lock()
		if x.ending == nil {
			x.ending = map[string]bool{}
		}
		busy := x.ending[node]
		x.ending[node] = true
		x.mu.Unlock()
		if busy {
			continue
		}
		wg.Go(func() {
			defer func() {
				x.mu.Lock()
				delete(x.ending, node)
				x.mu.Unlock()
			}()
			res, err := x.Hosts.Exit(ctx, node)
			if err != nil {
				x.Log.Warn("ending an expired maintenance failed; tried again later", "host", node, "error", err)
				return
			}
			summary := node + " left maintenance: its window ended"
			if res.Kept {
				summary += " (its nova-compute stays disabled: " + res.Service.DisabledReason + ")"
			}
			// Recorded even when the daemon is stopping (the window is gone already), at the
			// time it is written.
			x.Record(context.WithoutCancel(ctx), history.Event{
				Host: node, Kind: history.KindMaintenance, Summary: summary,
				Reason: history.Reason{Code: "maintenance-ended", Text: w.Describe()},
			})
		})
	}
}
