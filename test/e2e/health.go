package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/computeha/computeha/test/lab"
	"github.com/computeha/computeha/test/nova"
)

// The lab's watchdog: the file its supervisor watches in every node, and the bounds.
const (
	LabWatchdog     = "file:/run/computeha/lab-watchdog"
	WatchdogTimeout = 5 * time.Second
	SelfFenceAfter  = 5 * time.Second
)

// JoinedHosts are the computes that health.hosts leaves out: their hostcheck finds their
// addresses in the networks' subnets, and the others learn of them by gossip and from their
// heartbeat records. The suite's scenarios on them (the management cut, the power loss, the
// storage network lost, the cut from everything, the fence query by gossip) prove such a
// host watched, judged and fenced like cmp2, which is listed.
var JoinedHosts = []string{"cmp1", "cmp3"}

// HealthConfig is the health section the suite appends to the daemon's configuration: the
// lab's three networks, its shared storage, and tolerances sized for a lab where a fault must
// be decided within seconds. Every node is listed with its addresses but JoinedHosts, which
// join by gossip.
func (e *Env) HealthConfig(ctx context.Context) (string, error) {
	nodes, err := e.Lab.Nodes(ctx)
	if err != nil {
		return "", err
	}
	var b strings.Builder
	fmt.Fprintf(&b, `health:
  shared_dir: %s
  interval: 500ms
  stale_after: 2s
  clock_skew: 500ms
  probe_failures: 3
  confirm: 1s
  restart_timeout: 60s
  decide: 10s
  restart_command: %s _boot --dir %s "$(hostname)"
  networks:
    - {name: mgmt, management: true, response: disable, subnet: %s}
    - {name: storage, response: fence, subnet: %s}
    - {name: tenant, response: migrate, subnet: %s}
  hosts:
`, lab.SharedDir, lab.Script(), e.Lab.Dir(), lab.MgmtSubnet, lab.StorageSubnet, lab.TenantSubnet)
	var observers []string
	for _, n := range nodes {
		if n.Kind == lab.Controller {
			observers = append(observers, n.Name)
		}
		if slices.Contains(JoinedHosts, n.Name) {
			continue
		}
		fmt.Fprintf(&b, "    %s: {mgmt: %s, storage: %s, tenant: %s}\n", n.Name, n.Mgmt, n.Storage, n.Tenant)
	}
	key, err := e.Lab.GossipKey()
	if err != nil {
		return "", err
	}
	// Every node's hostcheck holds the lab's watchdog, which powers the node off through its
	// BMC's power path when it is not fed (test/lab/lab: the watchdog supervisor). The hosts
	// gossip on every network, joined through the controllers.
	fmt.Fprintf(&b, `  watchdog:
    device: %s
    timeout: %s
    self_fence_after: %s
    observers: [%s]
    margin: 1s
  gossip:
    key_file: %s
`, LabWatchdog, WatchdogTimeout, SelfFenceAfter, strings.Join(observers, ", "), key)
	return b.String(), nil
}

// EnableHealth turns computeha's health checks on: the health section in the configuration,
// the hostcheck clone on every node, fence_hostcheck first in every compute's fencing level,
// and the evacuator restarted to read the new configuration. It returns once every host is
// judged running.
func (e *Env) EnableHealth(ctx context.Context) error {
	section, err := e.HealthConfig(ctx)
	if err != nil {
		return err
	}
	e.health = section
	if err := e.writeEvacdConfig(e.settings); err != nil {
		return err
	}
	steps := [][]string{
		{
			// Monitored well within the watchdog's countdown: a hostcheck that died is started
			// again before its host resets.
			"resource", "create", "hostcheck", "ocf:computeha:hostcheck", "config=" + e.EvacdConfig(),
			"op", "monitor", "interval=2s", "timeout=20s", "clone", "interleave=true",
		},
		// One gate for every compute. It is tried once per fencing attempt (not twice,
		// as Pacemaker retries a failing device by default), so a refusal costs decide.
		{
			"stonith", "create", "gate", "fence_hostcheck", "config=" + e.EvacdConfig(),
			"pcmk_host_list=" + strings.Join(e.hosts, " "), "pcmk_off_retries=1", "pcmk_reboot_retries=1",
			"pcmk_off_timeout=60s", "pcmk_reboot_timeout=60s",
		},
		{"constraint", "location", "gate", "rule", "score=-INFINITY", "#kind", "ne", "cluster"},
		// The level after the power fence, for a host whose BMC does not answer: the host's
		// own watchdog, through a poison pill or its proven silence. Tried once too: a
		// refusal is the answer.
		{
			"stonith", "create", "fence-gossip", "fence_gossip", "config=" + e.EvacdConfig(),
			"pcmk_host_list=" + strings.Join(e.hosts, " "), "pcmk_off_retries=1", "pcmk_reboot_retries=1",
			"pcmk_reboot_action=off", "pcmk_off_timeout=60s", "pcmk_reboot_timeout=60s",
		},
		{"constraint", "location", "fence-gossip", "rule", "score=-INFINITY", "#kind", "ne", "cluster"},
	}
	for _, h := range e.hosts {
		steps = append(steps,
			[]string{"stonith", "level", "clear", h},
			[]string{"stonith", "level", "add", "1", h, "gate", "fence-" + h, "fence-nova"},
			[]string{"stonith", "level", "add", "2", h, "gate", "fence-gossip", "fence-nova"})
	}
	for _, s := range steps {
		if err := e.pcs(ctx, s...); err != nil {
			return err
		}
	}
	if err := e.RestartEvacuator(ctx); err != nil {
		return err
	}
	return e.WaitJudged(ctx, e.hosts, "running", 90*time.Second)
}

// Judgement is one host's line of `computeha health --json`.
type Judgement struct {
	Host     string   `json:"host"`
	State    string   `json:"state"`
	Response string   `json:"response"`
	Networks []string `json:"networks"`
	Code     string   `json:"code"`
	Reason   string   `json:"reason"`
}

// Judge runs `computeha health --json` on the observer, as an operator would, and returns each
// host's judgement.
func (e *Env) Judge(ctx context.Context) (map[string]Judgement, error) {
	out, errOut, code, err := e.Lab.Exec(ctx, e.observer, "computeha", "health", "--config", e.EvacdConfig(), "--json")
	if err != nil {
		return nil, err
	}
	if code != 0 {
		return nil, fmt.Errorf("computeha health: exit %d: %s%s", code, out, errOut)
	}
	js := map[string]Judgement{}
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		var j Judgement
		if err := json.Unmarshal([]byte(line), &j); err != nil {
			return nil, fmt.Errorf("computeha health: line %q: %w", line, err)
		}
		js[j.Host] = j
	}
	return js, nil
}

// WaitJudged waits until every host of hosts is judged state.
func (e *Env) WaitJudged(ctx context.Context, hosts []string, state string, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	var last string
	for time.Now().Before(deadline) {
		js, err := e.Judge(ctx)
		if err != nil {
			last = err.Error()
		} else {
			var off []string
			for _, h := range hosts {
				if js[h].State != state {
					off = append(off, fmt.Sprintf("%s is %s (%s)", h, js[h].State, js[h].Reason))
				}
			}
			if len(off) == 0 {
				return nil
			}
			last = strings.Join(off, "; ")
		}
		time.Sleep(500 * time.Millisecond)
	}
	return fmt.Errorf("not every host of %v judged %s within %s: %s", hosts, state, limit, last)
}

// HostcheckMetricsPort is where every node's hostcheck serves its metrics.
const HostcheckMetricsPort = 9732

// WaitHostcheckMetric waits until node's hostcheck serves the sample line want (for example
// `computeha_hostcheck_peer_reachable{network="mgmt",peer="cmp1"} 0`), scraped from the
// cloud's namespace as a Prometheus there would.
func (e *Env) WaitHostcheckMetric(ctx context.Context, node, want string, limit time.Duration) error {
	addr, err := e.mgmtAddr(ctx, node)
	if err != nil {
		return err
	}
	client := &http.Client{Transport: nova.NetNSTransport(CloudNS()), Timeout: 5 * time.Second}
	deadline := time.Now().Add(limit)
	last := ""
	name, _, _ := strings.Cut(want, "{")
	for {
		req, err := http.NewRequestWithContext(ctx, "GET", fmt.Sprintf("http://%s:%d/metrics", addr, HostcheckMetricsPort), nil)
		if err != nil {
			return err
		}
		resp, err := client.Do(req)
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			_ = resp.Body.Close()
			for _, l := range strings.Split(string(b), "\n") {
				if strings.HasPrefix(l, name+"{") {
					last += l + "; "
				}
				if l == want {
					return nil
				}
			}
		} else {
			last = err.Error()
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("%s's hostcheck did not serve %q within %s (last: %s)", node, want, limit, last)
		}
		last = ""
		time.Sleep(500 * time.Millisecond)
	}
}

// WaitDaemonMetric waits until the evacuation daemon serves the sample named series (name and
// labels, as exposed) with a value ok accepts, scraped from the cloud's namespace on the
// controller it runs on.
func (e *Env) WaitDaemonMetric(ctx context.Context, series string, ok func(float64) bool, limit time.Duration) error {
	return e.waitDaemonSample(ctx, series, func(v float64, served bool) bool { return served && ok(v) }, limit)
}

// WaitDaemonMetricGone waits until the evacuation daemon no longer serves the sample series.
func (e *Env) WaitDaemonMetricGone(ctx context.Context, series string, limit time.Duration) error {
	return e.waitDaemonSample(ctx, series, func(_ float64, served bool) bool { return !served }, limit)
}

// waitDaemonSample scrapes the daemon until ok accepts series' value and whether it is served.
func (e *Env) waitDaemonSample(ctx context.Context, series string, ok func(v float64, served bool) bool, limit time.Duration) error {
	client := &http.Client{Transport: nova.NetNSTransport(CloudNS()), Timeout: 5 * time.Second}
	deadline := time.Now().Add(limit)
	var last string
	for {
		if node, _, err := e.EvacuatorPID(ctx); err != nil {
			last = err.Error()
		} else if addr, err := e.mgmtAddr(ctx, node); err != nil {
			last = err.Error()
		} else if v, err := scrapeSample(ctx, client, fmt.Sprintf("http://%s:%d/metrics", addr, MetricsPort), series); errors.Is(err, errNotServed) {
			if ok(0, false) {
				return nil
			}
			last = err.Error()
		} else if err != nil {
			last = err.Error()
		} else {
			if ok(v, true) {
				return nil
			}
			last = fmt.Sprintf("%s %g", series, v)
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("the evacuation daemon did not serve the %s wanted within %s (last: %s)", series, limit, last)
		}
		time.Sleep(time.Second)
	}
}

// mgmtAddr is node's management address.
func (e *Env) mgmtAddr(ctx context.Context, node string) (string, error) {
	nodes, err := e.Lab.Nodes(ctx)
	if err != nil {
		return "", err
	}
	for _, n := range nodes {
		if n.Name == node {
			return n.Mgmt, nil
		}
	}
	return "", fmt.Errorf("no node %s in the lab", node)
}

// scrapeSample reads the value of series from the metrics at url.
func scrapeSample(ctx context.Context, client *http.Client, url, series string) (float64, error) {
	req, err := http.NewRequestWithContext(ctx, "GET", url, nil)
	if err != nil {
		return 0, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, err
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, found := strings.CutPrefix(l, series+" "); found {
			return strconv.ParseFloat(strings.TrimSpace(v), 64)
		}
	}
	return 0, fmt.Errorf("%w: %s at %s", errNotServed, series, url)
}

// errNotServed: the metrics scraped have no such sample.
var errNotServed = errors.New("not served")
