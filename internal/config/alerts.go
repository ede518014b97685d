package config

import (
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/computeha/computeha/internal/secretfile"
)

// Alerts says where the evacuation daemon delivers the alerts it raises (a host isolated or
// dead, a recovery paused, failed or waiting on its fencing): to an Alertmanager, a webhook, a
// command, any of them or none. Delivery never delays a recovery: a receiver that is down is
// retried until it answers. Without any receiver, alerts are only the history's and the logs'.
type Alerts struct {
	// Labels are added to every alert, e.g. {cluster: east}: what tells this cloud's alerts
	// from another's in a shared Alertmanager. Names follow Prometheus' label syntax; the
	// labels the daemon sets itself (alertname, severity, host, state, phase, segment) are refused.
	Labels map[string]string `yaml:"labels"`
	// Resend is how often the alerts still firing are sent to the Alertmanager again (it
	// resolves an alert that is not sent again in time), from 10s to 5m. Default 1m.
	Resend time.Duration `yaml:"resend"`
	// Alertmanager receives every alert through its v2 API.
	Alertmanager *Alertmanager `yaml:"alertmanager"`
	// Webhook receives every alert, when it fires and when it is resolved, as a JSON POST.
	Webhook *Webhook `yaml:"webhook"`
	// Command is run with every alert, when it fires and when it is resolved, as JSON on its
	// standard input: for mail or SMS gateways.
	Command *AlertCommand `yaml:"command"`
}

// Alertmanager is a Prometheus Alertmanager, or the peers of an Alertmanager cluster.
type Alertmanager struct {
	// URLs are the base URLs of the Alertmanager peers, e.g. http://10.0.0.5:9093; every
	// alert is sent to each (as Prometheus does), through POST URL/api/v2/alerts.
	URLs []string `yaml:"urls"`
	// Timeout bounds one request. Default 10s.
	Timeout time.Duration `yaml:"timeout"`
}

// Webhook is an HTTP endpoint that takes the alerts as JSON.
type Webhook struct {
	// URL is where the alerts are POSTed.
	URL string `yaml:"url"`
	// TokenFile is a root-only file holding a bearer token sent as "Authorization: Bearer
	// TOKEN"; empty sends none. The token itself is never written in this file.
	TokenFile string `yaml:"token_file"`
	// Timeout bounds one request. Default 10s.
	Timeout time.Duration `yaml:"timeout"`
}

// AlertCommand is a program run for the alerts.
type AlertCommand struct {
	// Argv is the program (an absolute path) and its arguments; no shell is involved.
	Argv []string `yaml:"argv"`
	// Timeout bounds one run; the program is killed past it and run again later. Default 30s.
	Timeout time.Duration `yaml:"timeout"`
}

// Defaults of the alerts section.
const (
	DefaultAlertResend         = time.Minute
	DefaultAlertHTTPTimeout    = 10 * time.Second
	DefaultAlertCommandTimeout = 30 * time.Second
	MinAlertResend             = 10 * time.Second
	MaxAlertResend             = 5 * time.Minute
)

// ReservedAlertLabels are set by the daemon on its alerts: the configuration may not set them.
var ReservedAlertLabels = []string{"alertname", "severity", "host", "state", "phase", "segment"}

var labelName = regexp.MustCompile(`^[a-zA-Z_][a-zA-Z0-9_]*$`)

// Any reports whether at least one receiver is configured.
func (a Alerts) Any() bool { return a.Alertmanager != nil || a.Webhook != nil || a.Command != nil }

func (a *Alerts) applyDefaults() {
	if a.Alertmanager != nil && a.Alertmanager.Timeout == 0 {
		a.Alertmanager.Timeout = DefaultAlertHTTPTimeout
	}
	if a.Webhook != nil && a.Webhook.Timeout == 0 {
		a.Webhook.Timeout = DefaultAlertHTTPTimeout
	}
	if a.Command != nil && a.Command.Timeout == 0 {
		a.Command.Timeout = DefaultAlertCommandTimeout
	}
}

func (a Alerts) validate(p *problems) {
	names := make([]string, 0, len(a.Labels))
	for n := range a.Labels {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range names {
		switch {
		case !labelName.MatchString(n) || strings.HasPrefix(n, "__"):
			p.add("alerts.labels: %q is not a label name (letters, digits and _, not starting with a digit or __)", n)
		case slices.Contains(ReservedAlertLabels, n):
			p.add("alerts.labels.%s: set by the daemon itself (%s are)", n, strings.Join(ReservedAlertLabels, ", "))
		case strings.TrimSpace(a.Labels[n]) == "":
			p.add("alerts.labels.%s: empty value", n)
		}
	}
	if a.Resend < MinAlertResend || a.Resend > MaxAlertResend {
		p.add("alerts.resend: %s is not from %s to %s", a.Resend, MinAlertResend, MaxAlertResend)
	}
	if am := a.Alertmanager; am != nil {
		if len(am.URLs) == 0 {
			p.add("alerts.alertmanager.urls: at least one URL is required (e.g. http://10.0.0.5:9093)")
		}
		seen := map[string]bool{}
		for i, u := range am.URLs {
			if err := checkAlertURL(u); err != nil {
				p.add("alerts.alertmanager.urls[%d]: %v", i, err)
			} else if seen[strings.TrimRight(u, "/")] {
				p.add("alerts.alertmanager.urls[%d]: %s is listed twice", i, u)
			}
			seen[strings.TrimRight(u, "/")] = true
		}
		positive(p, "alerts.alertmanager.timeout", am.Timeout)
	}
	if w := a.Webhook; w != nil {
		if err := checkAlertURL(w.URL); err != nil {
			p.add("alerts.webhook.url: %v", err)
		}
		if w.TokenFile != "" && !filepath.IsAbs(w.TokenFile) {
			p.add("alerts.webhook.token_file: %q is not an absolute path", w.TokenFile)
		}
		positive(p, "alerts.webhook.timeout", w.Timeout)
	}
	if c := a.Command; c != nil {
		switch {
		case len(c.Argv) == 0:
			p.add("alerts.command.argv: the program to run is required (an absolute path, then its arguments)")
		case !filepath.IsAbs(c.Argv[0]):
			p.add("alerts.command.argv[0]: %q is not an absolute path", c.Argv[0])
		}
		positive(p, "alerts.command.timeout", c.Timeout)
	}
}

// checkAlertURL accepts an absolute http or https URL without credentials: a password would
// be in clear text in this file (the webhook's token goes in token_file).
func checkAlertURL(s string) error {
	u, err := url.Parse(s)
	switch {
	case s == "":
		return fmt.Errorf("required")
	case err != nil:
		return fmt.Errorf("%q is not a URL: %v", s, err)
	case u.Scheme != "http" && u.Scheme != "https":
		return fmt.Errorf("%q: the scheme must be http or https", s)
	case u.Host == "":
		return fmt.Errorf("%q has no host", s)
	case u.User != nil:
		return fmt.Errorf("%q holds credentials: they would be in clear text here", redactURL(u))
	case u.RawQuery != "" || u.Fragment != "":
		return fmt.Errorf("%q: a query or fragment is not allowed", s)
	}
	return nil
}

func redactURL(u *url.URL) string {
	c := *u
	c.User = url.User("REDACTED")
	return c.String()
}

// ReadToken returns the webhook's bearer token ("" without a token file). The file must be a
// secret file (secretfile: a regular file of this process's user, mode 0600 or 0400) and hold
// the token.
func (w Webhook) ReadToken() (string, error) {
	if w.TokenFile == "" {
		return "", nil
	}
	b, err := secretfile.Read(w.TokenFile, 64<<10)
	if err != nil {
		return "", fmt.Errorf("alerts.webhook.token_file: %w", err)
	}
	tok := strings.TrimRight(string(b), " \t\r\n")
	switch {
	case tok == "":
		return "", fmt.Errorf("alerts.webhook.token_file: %s is empty", w.TokenFile)
	case strings.ContainsAny(tok, "\r\n"):
		return "", fmt.Errorf("alerts.webhook.token_file: %s holds more than one line", w.TokenFile)
	}
	return tok, nil
}

// CheckProgram tells whether the command's program is an executable regular file.
func (c AlertCommand) CheckProgram() error {
	fi, err := os.Stat(c.Argv[0])
	if err != nil {
		return fmt.Errorf("alerts.command.argv[0]: %w", err)
	}
	if !fi.Mode().IsRegular() || fi.Mode().Perm()&0o111 == 0 {
		return fmt.Errorf("alerts.command.argv[0]: %s is not an executable file", c.Argv[0])
	}
	return nil
}

// CheckFiles checks what the alerts section names on this host: the webhook's token file and
// the command's program. It returns one error per problem; the daemon starts anyway and says
// so (a receiver's files are no reason to stop recovering hosts), `config validate` fails.
func (a Alerts) CheckFiles() []error {
	var errs []error
	if a.Webhook != nil {
		if _, err := a.Webhook.ReadToken(); err != nil {
			errs = append(errs, err)
		}
	}
	if a.Command != nil && len(a.Command.Argv) > 0 {
		if err := a.Command.CheckProgram(); err != nil {
			errs = append(errs, err)
		}
	}
	return errs
}
