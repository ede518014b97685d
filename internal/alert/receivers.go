package alert

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os/exec"
	"strings"
	"time"

	"github.com/computeha/computeha/internal/clock"
)

// Alertmanager sends alerts to one Alertmanager through POST BASE/api/v2/alerts.
type Alertmanager struct {
	Base   string // e.g. http://10.0.0.5:9093
	Client *http.Client
	// Valid is how long past now a firing alert is declared to last (its endsAt): the
	// Alertmanager resolves it by itself if it is not sent again by then (the daemon
	// stopped). Prometheus uses four resend periods.
	Valid time.Duration
	Clock clock.Clock
}

// Kind is "alertmanager".
func (a *Alertmanager) Kind() string { return "alertmanager" }

// Name is the base URL.
func (a *Alertmanager) Name() string { return a.Base }

// TakesAll is true: every firing alert is sent each time, and again each resend.
func (a *Alertmanager) TakesAll() bool { return true }

// postableAlert is the Alertmanager v2 API's alert.
type postableAlert struct {
	Labels      map[string]string `json:"labels"`
	Annotations map[string]string `json:"annotations,omitempty"`
	StartsAt    time.Time         `json:"startsAt"`
	EndsAt      time.Time         `json:"endsAt"`
}

// Send posts alerts, a firing one ending Valid from now.
func (a *Alertmanager) Send(ctx context.Context, alerts []Alert) error {
	now := clock.Or(a.Clock).Now()
	body := make([]postableAlert, 0, len(alerts))
	for _, x := range alerts {
		p := postableAlert{Labels: x.Labels, Annotations: x.Annotations, StartsAt: x.StartsAt.UTC(), EndsAt: x.EndsAt.UTC()}
		if x.EndsAt.IsZero() {
			p.EndsAt = now.Add(a.Valid).UTC()
		}
		body = append(body, p)
	}
	return postJSON(ctx, a.Client, strings.TrimRight(a.Base, "/")+"/api/v2/alerts", "", body)
}

// Check asks the Alertmanager whether it is ready (GET BASE/-/ready).
func (a *Alertmanager) Check(ctx context.Context) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimRight(a.Base, "/")+"/-/ready", nil)
	if err != nil {
		return err
	}
	return do(a.Client, req)
}

// Webhook posts a [Message] of the alerts to URL.
type Webhook struct {
	URL    string
	Client *http.Client
	// Token, when set, returns the bearer token (read from its file at each delivery, so a
	// new token is taken without a restart).
	Token func() (string, error)
}

// Kind is "webhook".
func (w *Webhook) Kind() string { return "webhook" }

// Name is the URL.
func (w *Webhook) Name() string { return w.URL }

// Send posts the message.
func (w *Webhook) Send(ctx context.Context, alerts []Alert) error {
	tok := ""
	if w.Token != nil {
		var err error
		if tok, err = w.Token(); err != nil {
			return err
		}
	}
	return postJSON(ctx, w.Client, w.URL, tok, NewMessage("webhook", alerts))
}

// Check connects to the URL's host and port, without sending anything: a request would be
// an alert.
func (w *Webhook) Check(ctx context.Context) error {
	u, err := url.Parse(w.URL)
	if err != nil {
		return err
	}
	port := u.Port()
	if port == "" {
		port = map[string]string{"http": "80", "https": "443"}[u.Scheme]
	}
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", net.JoinHostPort(u.Hostname(), port))
	if err != nil {
		return err
	}
	return c.Close()
}

// Command runs Argv with a [Message] of the alerts on its standard input.
type Command struct {
	Argv    []string
	Timeout time.Duration
	// Check reports whether the program can be run (config.AlertCommand.CheckProgram).
	CheckProgram func() error
}

// Kind is "command".
func (c *Command) Kind() string { return "command" }

// Name is the program.
func (c *Command) Name() string { return c.Argv[0] }

// Send runs the command; a non-zero exit or a timeout is an error.
func (c *Command) Send(ctx context.Context, alerts []Alert) error {
	body, err := json.Marshal(NewMessage("command", alerts))
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, c.Timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, c.Argv[0], c.Argv[1:]...)
	cmd.Stdin = bytes.NewReader(append(body, '\n'))
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.WaitDelay = time.Second
	if err := cmd.Run(); err != nil {
		msg := strings.TrimSpace(out.String())
		if len(msg) > 200 {
			msg = msg[:200]
		}
		if ctx.Err() == context.DeadlineExceeded {
			return fmt.Errorf("%s did not finish within %s", c.Argv[0], c.Timeout)
		}
		return fmt.Errorf("%s: %v: %s", c.Argv[0], err, msg)
	}
	return nil
}

// Check tells whether the program can be run.
func (c *Command) Check(context.Context) error {
	if c.CheckProgram == nil {
		return nil
	}
	return c.CheckProgram()
}

// postJSON posts v as JSON to u, with a bearer token when tok is set; any status but 2xx is
// an error.
func postJSON(ctx context.Context, client *http.Client, u, tok string, v any) error {
	body, err := json.Marshal(v)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "computeha-evacd")
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	return do(client, req)
}

// do sends req; an answer with any status but 2xx is an error quoting the start of its body.
func do(client *http.Client, req *http.Request) error {
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if resp.StatusCode/100 != 2 {
		if len(b) > 200 {
			b = b[:200]
		}
		return errors.New("answered " + resp.Status + ": " + string(b))
	}
	return nil
}
