package alert

import (
	"net/http"

	"github.com/computeha/computeha/internal/config"
)

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
