//go:build e2e

package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/computeha/computeha/test/lab"
	"github.com/computeha/computeha/test/nova"
)

// Prometheus is a real Prometheus server (Debian's) in the cloud's namespace, scraping the
// evacuation daemon on every controller each second, with computeha's packaged alert rules.
type Prometheus struct {
	cmd     *exec.Cmd
	base    string
	client  *http.Client
	dir     string
	stopped bool
}

// StartPrometheus starts the server and waits until it is ready and scrapes the daemon. With
// hostcheck, it scrapes every node's hostcheck too (job computeha-hostcheck), every 2 s.
func (e *Env) StartPrometheus(ctx context.Context, repoRoot string, hostcheck bool) (*Prometheus, error) {
	nodes, err := e.Lab.Nodes(ctx)
	if err != nil {
		return nil, err
	}
	var targets, checks []string
	for _, n := range nodes {
		if n.Kind == lab.Controller {
			targets = append(targets, fmt.Sprintf("%q", fmt.Sprintf("%s:%d", n.Mgmt, MetricsPort)))
		}
		checks = append(checks, fmt.Sprintf("%q", fmt.Sprintf("%s:%d", n.Mgmt, HostcheckMetricsPort)))
	}
	if len(targets) == 0 {
		return nil, errors.New("prometheus: the lab lists no controller")
	}
	dir := filepath.Join(e.Dir, "prometheus")
	if err := os.MkdirAll(filepath.Join(dir, "data"), 0o755); err != nil {
		return nil, err
	}
	rules, err := filepath.Abs(filepath.Join(repoRoot, "packaging", "prometheus", "computeha-rules.yml"))
	if err != nil {
		return nil, err
	}
	cfg := fmt.Sprintf(`global:
  scrape_interval: 1s
  evaluation_interval: 1s
rule_files:
  - %s
scrape_configs:
  - job_name: computeha-evacd
    scrape_timeout: 900ms
    static_configs:
      - targets: [%s]
`, rules, strings.Join(targets, ", "))
	if hostcheck {
		cfg += fmt.Sprintf(`  - job_name: computeha-hostcheck
    scrape_interval: 2s
    scrape_timeout: 1s
    static_configs:
      - targets: [%s]
`, strings.Join(checks, ", "))
	}
	conf := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(conf, []byte(cfg), 0o644); err != nil {
		return nil, err
	}
	addr := fmt.Sprintf("%s:9090", CloudAddr)
	log, err := os.Create(filepath.Join(dir, "prometheus.log"))
	if err != nil {
		return nil, err
	}
	cmd := exec.Command("ip", "netns", "exec", CloudNS(), "prometheus", "--config.file="+conf,
		"--storage.tsdb.path="+filepath.Join(dir, "data"), "--web.listen-address="+addr, "--log.level=warn")
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		_ = log.Close()
		return nil, fmt.Errorf("prometheus: %w", err)
	}
	_ = log.Close()
	p := &Prometheus{cmd: cmd, base: "http://" + addr, client: &http.Client{Transport: nova.NetNSTransport(CloudNS()), Timeout: 10 * time.Second}, dir: dir}
	deadline := time.Now().Add(time.Minute)
	for {
		up, err := p.Query(ctx, `count(up{job="computeha-evacd"})`)
		if err == nil && up == float64(len(targets)) {
			return p, nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			p.Stop()
			return nil, fmt.Errorf("prometheus not ready and scraping within a minute (see %s): %v", filepath.Join(dir, "prometheus.log"), err)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// Stop stops the server; once stopped, it does nothing.
func (p *Prometheus) Stop() {
	if p.cmd.Process == nil || p.stopped {
		return
	}
	p.stopped = true
	stopGroup(p.cmd)
}

// stopGroup ends a server started in a process group of its own: SIGTERM, then SIGKILL if it
// has not exited within 10 s; it returns once the server has exited.
func stopGroup(cmd *exec.Cmd) {
	_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-done
	}
}

// Query evaluates an instant query whose answer is one sample (an empty answer is 0) through
// Prometheus' HTTP API.
func (p *Prometheus) Query(ctx context.Context, q string) (float64, error) {
	req, err := http.NewRequestWithContext(ctx, "GET", p.base+"/api/v1/query?query="+url.QueryEscape(q), nil)
	if err != nil {
		return 0, err
	}
	resp, err := p.client.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	var body struct {
		Status string `json:"status"`
		Error  string `json:"error"`
		Data   struct {
			Result []struct {
				Value [2]any `json:"value"`
			} `json:"result"`
		} `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		return 0, fmt.Errorf("query %s: %w", q, err)
	}
	if body.Status != "success" {
		return 0, fmt.Errorf("query %s: %s %s", q, body.Status, body.Error)
	}
	switch len(body.Data.Result) {
	case 0:
		return 0, nil
	case 1:
		s, _ := body.Data.Result[0].Value[1].(string)
		return strconv.ParseFloat(s, 64)
	}
	return 0, fmt.Errorf("query %s: %d samples, want one", q, len(body.Data.Result))
}

// Firing lists the names of the alerts firing now.
func (p *Prometheus) Firing(ctx context.Context) ([]string, error) {
	var body struct {
		Data struct {
			Alerts []struct {
				Labels map[string]string `json:"labels"`
				State  string            `json:"state"`
			} `json:"alerts"`
		} `json:"data"`
	}
	if err := getJSON(ctx, p.client, p.base+"/api/v1/alerts", &body); err != nil {
		return nil, err
	}
	var out []string
	for _, a := range body.Data.Alerts {
		if a.State == "firing" {
			out = append(out, a.Labels["alertname"]+"{"+a.Labels["host"]+"}")
		}
	}
	return out, nil
}

// getJSON decodes the JSON answer of GET u into v; any status but 200 is an error.
func getJSON(ctx context.Context, client *http.Client, u string, v any) error {
	req, err := http.NewRequestWithContext(ctx, "GET", u, nil)
	if err != nil {
		return err
	}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", u, resp.Status)
	}
	return json.NewDecoder(resp.Body).Decode(v)
}
