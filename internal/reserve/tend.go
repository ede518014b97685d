package reserve

import (
	"context"
	"log/slog"
	"time"

	"github.com/computeha/computeha/internal/clock"
	"github.com/computeha/computeha/internal/config"
	"github.com/computeha/computeha/internal/history"
)

// Tender looks after the pool for the evacuation daemon. A reserved host exposed (enabled in
// Nova while held in reserve: the scheduler may fill it) or withheld (disabled for another
// reason: no recovery takes it) is an alert in the history, once each time it becomes so.
// Where its segment says reserved_return: auto, a host a recovery took into use and that is
// empty again goes back to the pool, unless a recovery runs (it may be placing VMs there).
type Tender struct {
	Pool Pool
	Log  *slog.Logger
	// Record keeps an alert or a decision (a history's Record).
	Record func(ctx context.Context, e history.Event)
	// Recovering tells whether a recovery runs now.
	Recovering func() bool

	seen map[string]State // by node, as last looked at
}

// Run looks at the pool every interval until ctx ends.
func (t *Tender) Run(ctx context.Context, every time.Duration, clk clock.Clock) {
	for {
		t.Once(ctx)
		if clk.Sleep(ctx, every) != nil {
			return
		}
	}
}

// Once looks at the pool once.
func (t *Tender) Once(ctx context.Context) {
	if t.seen == nil {
		t.seen = map[string]State{}
	}
	hosts, err := t.Pool.List(ctx)
	if err != nil {
		if ctx.Err() == nil {
			t.Log.Warn("reading the reserved hosts failed; tried again later", "error", err)
		}
		return
	}
	now := t.Pool.Now
	for _, h := range hosts {
		was := t.seen[h.Node]
		t.seen[h.Node] = h.State
		if h.State != was && (h.State == Exposed || h.State == Withheld) {
			t.Record(ctx, history.Event{
				Time: now(), Host: h.Node, Kind: history.KindAlert,
				Summary: "reserved host " + h.Node + " of segment " + h.Segment + " is " + string(h.State) + ": " + h.Note,
				Reason:  history.Reason{Code: history.ReasonCode("reserved-" + string(h.State)), Text: "service " + h.Service.Status + ", reason " + h.Service.DisabledReason},
			})
		}
		if h.State != InUse || h.Servers > 0 || t.Pool.Config.Segments[h.Segment].ReservedReturn != config.ReservedReturnAuto || t.Recovering() {
			continue
		}
		back, err := t.Pool.Return(ctx, h.Node)
		if err != nil {
			t.Log.Warn("returning an emptied reserved host to the pool failed", "host", h.Node, "error", err)
			continue
		}
		t.seen[h.Node] = back.State
		t.Record(ctx, history.Event{
			Time: now(), Host: h.Node, Kind: history.KindDecision,
			Summary: "reserved host " + h.Node + " returned to the pool of segment " + h.Segment + ": empty again",
			Reason:  history.Reason{Code: "reserved-returned", Text: "reserved_return: auto"},
		})
	}
}
