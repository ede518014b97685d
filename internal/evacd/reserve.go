package evacd

import (
	"context"
	"time"

	"github.com/computeha/computeha/internal/config"
	"github.com/computeha/computeha/internal/history"
	"github.com/computeha/computeha/internal/reserve"
)

// ReserveEvery is how often the daemon looks at the reserved hosts.
const ReserveEvery = time.Minute

// tendReserve looks at the reserved hosts every interval, while any segment has some. A
// reserved host exposed (enabled in Nova while held in reserve: the scheduler may fill it) or
// withheld (disabled for another reason: no recovery takes it) is an alert in the history,
// once each time it becomes so. Where its segment says reserved_return: auto, a host a
// recovery took into use and that is empty again goes back to the pool, unless a recovery
// runs (it may be placing VMs there).
func (d *Daemon) tendReserve(ctx context.Context, every time.Duration) {
	pool := reserve.Pool{Config: d.o.Config, Nova: d.o.Nova, Cluster: d.o.Cluster, Now: d.clock.Now}
	seen := map[string]reserve.State{}
	for {
		d.tendReserveOnce(ctx, pool, seen)
		if d.clock.Sleep(ctx, every) != nil {
			return
		}
	}
}

func (d *Daemon) tendReserveOnce(ctx context.Context, pool reserve.Pool, seen map[string]reserve.State) {
	hosts, err := pool.List(ctx)
	if err != nil {
		if ctx.Err() == nil {
			d.o.Log.Warn("reading the reserved hosts failed; tried again later", "error", err)
		}
		return
	}
	for _, h := range hosts {
		was := seen[h.Node]
		seen[h.Node] = h.State
		if h.State != was && (h.State == reserve.Exposed || h.State == reserve.Withheld) {
			d.record(ctx, history.Event{
				Time: d.clock.Now(), Host: h.Node, Kind: history.KindAlert,
				Summary: "reserved host " + h.Node + " of segment " + h.Segment + " is " + string(h.State) + ": " + h.Note,
				Reason:  history.Reason{Code: history.ReasonCode("reserved-" + string(h.State)), Text: "service " + h.Service.Status + ", reason " + h.Service.DisabledReason},
			})
		}
		if h.State != reserve.InUse || h.Servers > 0 || d.o.Config.Segments[h.Segment].ReservedReturn != config.ReservedReturnAuto || d.recovering() {
			continue
		}
		back, err := pool.Return(ctx, h.Node)
		if err != nil {
			d.o.Log.Warn("returning an emptied reserved host to the pool failed", "host", h.Node, "error", err)
			continue
		}
		seen[h.Node] = back.State
		d.record(ctx, history.Event{
			Time: d.clock.Now(), Host: h.Node, Kind: history.KindDecision,
			Summary: "reserved host " + h.Node + " returned to the pool of segment " + h.Segment + ": empty again",
			Reason:  history.Reason{Code: "reserved-returned", Text: "reserved_return: auto"},
		})
	}
}

// recovering tells whether a recovery job runs.
func (d *Daemon) recovering() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.jobs) > 0
}
