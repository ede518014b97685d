//go:build e2e

package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"

	"github.com/computeha/computeha/internal/alert"
	"github.com/computeha/computeha/test/nova"
)

// AlertmanagerPort is where the suite's Alertmanager listens, on the cloud's address.
const AlertmanagerPort = 9093

// Alertmanager is a real Alertmanager (Debian's) in the cloud's namespace, which the
// evacuation daemon sends its alerts to. It routes them nowhere: the suite reads them back
// through its API.
type Alertmanager struct {
	dir    string
	base   string
	client *http.Client
	cmd    *exec.Cmd
}

// AlertmanagerURL is the Alertmanager's base URL, as the daemon's configuration names it.
func AlertmanagerURL() string { return fmt.Sprintf("http://%s:%d", CloudAddr, AlertmanagerPort) }

// NewAlertmanager prepares an Alertmanager in the environment's directory; Start runs it.
func (e *Env) NewAlertmanager() (*Alertmanager, error) {
	dir := filepath.Join(e.Dir, "alertmanager")
	if err := os.MkdirAll(filepath.Join(dir, "data"), 0o755); err != nil {
		return nil, err
	}
	cfg := "route:\n  receiver: suite\n  group_wait: 1s\nreceivers:\n  - name: suite\n"
	if err := os.WriteFile(filepath.Join(dir, "alertmanager.yml"), []byte(cfg), 0o644); err != nil {
		return nil, err
	}
	return &Alertmanager{
		dir: dir, base: AlertmanagerURL(),
		client: &http.Client{Transport: nova.NetNSTransport(CloudNS()), Timeout: 10 * time.Second},
	}, nil
}

// Start runs the server and waits until it is ready.
func (a *Alertmanager) Start(ctx context.Context) error {
	if a.cmd != nil {
		return nil
	}
	log, err := os.OpenFile(filepath.Join(a.dir, "alertmanager.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer log.Close()
	cmd := exec.Command("ip", "netns", "exec", CloudNS(), "prometheus-alertmanager",
		"--config.file="+filepath.Join(a.dir, "alertmanager.yml"), "--storage.path="+filepath.Join(a.dir, "data"),
		fmt.Sprintf("--web.listen-address=%s:%d", CloudAddr, AlertmanagerPort), "--cluster.listen-address=", "--log.level=warn")
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("alertmanager: %w", err)
	}
	a.cmd = cmd
	deadline := time.Now().Add(time.Minute)
	for {
		req, _ := http.NewRequestWithContext(ctx, "GET", a.base+"/-/ready", nil)
		resp, err := a.client.Do(req)
		if err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			a.Stop()
			return fmt.Errorf("alertmanager not ready within a minute (see %s): %v", filepath.Join(a.dir, "alertmanager.log"), err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// Stop stops the server (what it held is kept on disk); stopped, it does nothing.
func (a *Alertmanager) Stop() {
	if a.cmd == nil || a.cmd.Process == nil {
		return
	}
	stopGroup(a.cmd)
	a.cmd = nil
}

// AMAlert is an alert as the Alertmanager's API gives it.
type AMAlert struct {
	Labels      map[string]string `json:"labels"`
	Annotations map[string]string `json:"annotations"`
	StartsAt    time.Time         `json:"startsAt"`
	EndsAt      time.Time         `json:"endsAt"`
	Status      struct {
		State string `json:"state"`
	} `json:"status"`
}

// Active returns the alerts named name about host that the Alertmanager holds unresolved.
func (a *Alertmanager) Active(ctx context.Context, name, host string) ([]AMAlert, error) {
	q := url.Values{"filter": {fmt.Sprintf("alertname=%q", name), fmt.Sprintf("host=%q", host)}}
	var out []AMAlert
	if err := getJSON(ctx, a.client, a.base+"/api/v2/alerts?"+q.Encode(), &out); err != nil {
		return nil, err
	}
	return out, nil
}

// WaitActive waits until the Alertmanager holds the alert name about host unresolved.
func (a *Alertmanager) WaitActive(ctx context.Context, name, host string, limit time.Duration) (AMAlert, error) {
	deadline := time.Now().Add(limit)
	for {
		as, err := a.Active(ctx, name, host)
		if err == nil && len(as) > 0 {
			return as[0], nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return AMAlert{}, fmt.Errorf("the Alertmanager has no active %s about %s after %s (last error: %v)", name, host, limit, err)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// WaitResolved waits until the Alertmanager no longer holds the alert name about host.
func (a *Alertmanager) WaitResolved(ctx context.Context, name, host string, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for {
		as, err := a.Active(ctx, name, host)
		if err == nil && len(as) == 0 {
			return nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("the Alertmanager still holds %s about %s after %s (%d alerts, last error: %v)", name, host, limit, len(as), err)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// AlertCommandOutput is where the suite's alert command appends each message it is given.
func (e *Env) AlertCommandOutput() string { return filepath.Join(e.Dir, "alerts.jsonl") }

// alertsSection writes the alert command and returns the configuration's alerts section:
// the suite's Alertmanager, and a command that appends each message to AlertCommandOutput.
func (e *Env) alertsSection() (string, error) {
	script := filepath.Join(e.Dir, "alert-command")
	body := "#!/bin/sh\n# Appends the alerts computeha gives it on stdin, one JSON message per line.\ncat >> \"$1\"\n"
	if err := os.WriteFile(script, []byte(body), 0o755); err != nil {
		return "", err
	}
	return fmt.Sprintf("alerts:\n  labels: {cluster: lab}\n  resend: 1m\n  alertmanager:\n    urls: [%s]\n    timeout: 5s\n  command:\n    argv: [%s, %s]\n",
		AlertmanagerURL(), script, e.AlertCommandOutput()), nil
}

// CommandAlerts returns the alerts the alert command was given, in order.
func (e *Env) CommandAlerts() ([]alert.MessageAlert, error) {
	f, err := os.Open(e.AlertCommandOutput())
	if os.IsNotExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []alert.MessageAlert
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var m alert.Message
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			return nil, fmt.Errorf("%s: a line that is not a message: %w", e.AlertCommandOutput(), err)
		}
		out = append(out, m.Alerts...)
	}
	return out, sc.Err()
}

// WaitCommandAlert waits until the alert command was given the alert name about host with
// status, started at or after since.
func (e *Env) WaitCommandAlert(name, host, status string, since time.Time, limit time.Duration) (alert.MessageAlert, error) {
	deadline := time.Now().Add(limit)
	for {
		as, err := e.CommandAlerts()
		for _, a := range as {
			if a.Name() == name && a.Labels["host"] == host && a.Status == status && !a.StartsAt.Before(since.Add(-time.Second)) {
				return a, nil
			}
		}
		if time.Now().After(deadline) {
			return alert.MessageAlert{}, fmt.Errorf("the alert command was not given %s %s about %s within %s (%d alerts, error %v)", name, status, host, limit, len(as), err)
		}
		time.Sleep(500 * time.Millisecond)
	}
}
