package alert

import (
	"net/http"

	"github.com/computeha/computeha/internal/clock"
	"github.com/computeha/computeha/internal/config"
)

// FromConfig returns the receivers the alerts section configures: one per Alertmanager URL,
// then the webhook, then the command. transport carries their HTTP requests (nil: Go's
// default transport).
func FromConfig(a config.Alerts, transport http.RoundTripper, clk clock.Clock) []Receiver {
	var out []Receiver
	if am := a.Alertmanager; am != nil {
		client := &http.Client{Transport: transport, Timeout: am.Timeout}
		for _, u := range am.URLs {
			out = append(out, &Alertmanager{Base: u, Client: client, Valid: 4 * a.Resend, Clock: clk})
		}
	}
	if w := a.Webhook; w != nil {
		var token func() (string, error)
		if w.TokenFile != "" {
			token = w.ReadToken
		}
		out = append(out, &Webhook{URL: w.URL, Client: &http.Client{Transport: transport, Timeout: w.Timeout}, Token: token})
	}
	if c := a.Command; c != nil {
		out = append(out, &Command{Argv: c.Argv, Timeout: c.Timeout, CheckProgram: c.CheckProgram})
	}
	return out
}
