package alert

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/computeha/computeha/internal/config"
)

// Start delivers the alerts of state to the receivers a configures, until ctx ends (nothing
// when it configures none). Nothing here fails: a receiver that cannot be reached at start, or
// a webhook token that cannot be read, is told to unreachable (logged and recorded by the
// caller), and its alerts wait until it answers. delivered hears each delivery's outcome.
func Start(
	ctx context.Context, a config.Alerts, state func() Snapshot, delivered func(kind string, err error),
	unreachable func(summary string, err error), log *slog.Logger,
) {
	if !a.Any() {
		return
	}
	if w := a.Webhook; w != nil {
		if _, err := w.ReadToken(); err != nil {
			unreachable("alerts: the webhook's token cannot be read; its alerts wait until it can", err)
		}
	}
	receivers := FromConfig(a)
	n := NewNotifier(Options{
		Labels: a.Labels, State: state, Resend: a.Resend, Receivers: receivers, Delivered: delivered, Log: log,
	})
	go func() {
		cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		for r, err := range n.Check(cctx) {
			unreachable(fmt.Sprintf("alerts: %s receiver %s cannot be reached at start; its alerts are sent once it answers", r.Kind(), r.Name()), err)
		}
	}()
	go n.Run(ctx)
	for _, r := range receivers {
		log.Info("delivering alerts", "receiver", r.Kind(), "to", r.Name())
	}
}

// FromConfig returns the receivers the alerts section configures: one per Alertmanager URL,
// then the webhook, then the command.
func FromConfig(a config.Alerts) []Receiver {
	var out []Receiver
	if am := a.Alertmanager; am != nil {
		client := &http.Client{Timeout: am.Timeout}
		for _, u := range am.URLs {
			out = append(out, &Alertmanager{Base: u, Client: client, Valid: 4 * a.Resend})
		}
	}
	if w := a.Webhook; w != nil {
		// Read at each delivery ("" without a token file), so a new token needs no restart.
		out = append(out, &Webhook{URL: w.URL, Client: &http.Client{Timeout: w.Timeout}, Token: w.ReadToken})
	}
	if c := a.Command; c != nil {
		out = append(out, &Command{Argv: c.Argv, Timeout: c.Timeout, CheckProgram: c.CheckProgram})
	}
	return out
}
