// Command health measures how fast computeha tells what happened to a host, on the Pacemaker
// lab (3 controllers, 2 pacemaker-remote computes, shared storage over the storage network):
// it injects each fault with the lab's power, cut and kill commands, and times the fault to the
// confirmed decision `computeha health --watch` prints on a controller (the decision the
// evacuation daemon acts on), over repeated runs. hostcheck runs on every node and
// fence_hostcheck gates every compute's fencing, as in production.
//
// Any confirmed decision other than the expected one (an undecided state on the way is not
// one) counts as wrong, on the faulted host or on any other. It prints the median and worst
// per fault and exits 1 when a median misses the target or any decision was wrong.
//
// Then it times a power loss to the fencing Pacemaker confirms, when the BMC went with the
// power (the second level, gate and fence_gossip, through the host's watchdog: target
// -fence-target), beside the same power loss with the BMC answering (the first level, the
// reference of the same run).
//
//	go run ./test/bench/health -bin bin -runs 3 -fence-runs 3
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/computeha/computeha/test/lab"
)

// fault is one injected failure and what it must be decided as.
type fault struct {
	name   string
	host   string
	state  string // the expected confirmed state
	inject func(ctx context.Context, l *lab.Lab, host string) error
	heal   func(ctx context.Context, l *lab.Lab, host string) error
}

func cut(nets ...string) func(ctx context.Context, l *lab.Lab, host string) error {
	return func(ctx context.Context, l *lab.Lab, host string) error {
		for _, n := range nets {
			if err := l.Cut(ctx, host, n); err != nil {
				return err
			}
		}
		return nil
	}
}

func heal(nets ...string) func(ctx context.Context, l *lab.Lab, host string) error {
	return func(ctx context.Context, l *lab.Lab, host string) error {
		for _, n := range nets {
			if err := l.Heal(ctx, host, n); err != nil {
				return err
			}
		}
		return nil
	}
}

func faults() []fault {
	return []fault{
		{
			name: "power off", host: "cmp1", state: "dead",
			inject: powerOff,
			// The gate lets the fencing through and the lab's fencing reboots the host.
			heal: func(context.Context, *lab.Lab, string) error { return nil },
		},
		{name: "management and tenant cut (storage path intact)", host: "cmp2", state: "isolated", inject: cut("mgmt", "tenant"), heal: heal("mgmt", "tenant")},
		{name: "management cut", host: "cmp1", state: "management-lost", inject: cut("mgmt"), heal: heal("mgmt")},
		{name: "tenant cut", host: "cmp2", state: "degraded", inject: cut("tenant"), heal: heal("tenant")},
		{
			name: "pacemaker-remoted killed", host: "cmp1", state: "service-unreachable",
			inject: func(ctx context.Context, l *lab.Lab, h string) error { return l.Kill(ctx, h, "pacemaker-remoted") },
			heal:   func(context.Context, *lab.Lab, string) error { return nil }, // hostcheck restarts it
		},
	}
}

// powerOff powers host off through its BMC. ipmi_sim answers nothing while its power hook
// runs, so a request that meets a busy BMC on a loaded machine is sent again.
func powerOff(ctx context.Context, l *lab.Lab, host string) error {
	var err error
	for range 3 {
		if _, err = l.Power(ctx, host, "off"); err == nil {
			return nil
		}
	}
	return err
}

// config is the configuration every node reads. Only mgmt and tenant are watched: the storage
// network carries the shared storage, so the heartbeat is the storage path's signal and a host
// cut from both watched networks while still writing its heartbeat is isolated. The hosts
// gossip on both, joined through the controllers.
func config(nodes []lab.Node, labDir string) (string, error) {
	var b strings.Builder
	fmt.Fprintf(&b, `cloud: unused-by-this-benchmark
segments:
  lab:
    hosts: [cmp1, cmp2]
health:
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
    - {name: mgmt, management: true}
    - {name: tenant}
  hosts:
`, lab.SharedDir, lab.Script(), labDir)
	var observers []string
	for _, n := range nodes {
		fmt.Fprintf(&b, "    %s: {mgmt: %s, tenant: %s}\n", n.Name, n.Mgmt, n.Tenant)
		if n.Kind == lab.Controller {
			observers = append(observers, n.Name)
		}
	}
	key, err := lab.WriteGossipKey(labDir)
	if err != nil {
		return "", err
	}
	fmt.Fprintf(&b, `  watchdog:
    device: file:/run/computeha/lab-watchdog
    timeout: 5s
    self_fence_after: 5s
    observers: [%s]
    margin: 1s
  gossip:
    key_file: %s
`, strings.Join(observers, ", "), key)
	return b.String(), nil
}

// decision is a line of `computeha health --watch --json`, with when it was read.
type decision struct {
	Time   time.Time `json:"time"`
	Host   string    `json:"host"`
	State  string    `json:"state"`
	Reason string    `json:"reason"`
	seen   time.Time
}

// watcher follows `computeha health --watch --json` on ctl1.
type watcher struct {
	cmd *exec.Cmd
	mu  sync.Mutex
	all []decision
}

func startWatcher(ctx context.Context, l *lab.Lab, cfg string) (*watcher, error) {
	cmd := exec.CommandContext(ctx, lab.Script(), "exec", "--dir", l.Dir(), "ctl1",
		"computeha", "health", "--config", cfg, "--watch", "--json")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	w := &watcher{cmd: cmd}
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			var d decision
			if err := json.Unmarshal(sc.Bytes(), &d); err != nil {
				fmt.Fprintf(os.Stderr, "health: %s\n", sc.Text())
				continue
			}
			d.seen = time.Now()
			w.mu.Lock()
			w.all = append(w.all, d)
			w.mu.Unlock()
		}
	}()
	return w, nil
}

func (w *watcher) stop() {
	_ = syscall.Kill(-w.cmd.Process.Pid, syscall.SIGKILL)
	_ = w.cmd.Wait()
}

// since returns the decisions read after t.
func (w *watcher) since(t time.Time) []decision {
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []decision
	for _, d := range w.all {
		if !d.seen.Before(t) {
			out = append(out, d)
		}
	}
	return out
}

// current is each host's latest confirmed state.
func (w *watcher) current() map[string]string {
	w.mu.Lock()
	defer w.mu.Unlock()
	cur := map[string]string{}
	for _, d := range w.all {
		cur[d.Host] = d.State
	}
	return cur
}

// waitAll waits until every host of hosts is confirmed state.
func (w *watcher) waitAll(hosts []string, state string, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		cur := w.current()
		if !slices.ContainsFunc(hosts, func(h string) bool { return cur[h] != state }) {
			return nil
		}
		time.Sleep(200 * time.Millisecond)
	}
	return fmt.Errorf("not every host of %v is %s after %s: %v", hosts, state, limit, w.current())
}

func main() {
	bin := flag.String("bin", "bin", "directory of computeha and its agents (make build)")
	runs := flag.Int("runs", 3, "repetitions of every fault")
	target := flag.Duration("target", 5*time.Second, "largest acceptable median, fault to the decided state")
	flag.IntVar(&fenceRuns, "fence-runs", 3, "repetitions of the power losses timed to the fencing")
	flag.DurationVar(&fenceTarget, "fence-target", 20*time.Second, "largest acceptable median, power loss with the BMC to the confirmed fencing")
	flag.BoolVar(&keep, "keep", false, "leave the lab up when the benchmark fails, to look at it (then: test/lab/lab down --dir DIR)")
	flag.Parse()
	if err := run(*bin, *runs, *target); err != nil {
		fmt.Fprintln(os.Stderr, "health:", err)
		os.Exit(1)
	}
}

var (
	keep        bool
	fenceRuns   int
	fenceTarget time.Duration
)

func run(bin string, runs int, target time.Duration) (err error) {
	absBin, err := filepath.Abs(bin)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()
	dir, err := os.MkdirTemp("", "computeha-bench-health-")
	if err != nil {
		return err
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		return err
	}
	l, err := lab.Up(ctx, lab.Options{Controllers: 3, Computes: 2, Dir: filepath.Join(dir, "lab"), Bin: absBin})
	if err != nil {
		return err
	}
	defer func() {
		if err != nil && keep {
			fmt.Fprintf(os.Stderr, "health: the lab is left up in %s\n", l.Dir())
			return
		}
		_ = l.Down(context.Background())
		_ = os.RemoveAll(dir)
	}()
	nodes, err := l.Nodes(ctx)
	if err != nil {
		return err
	}
	doc, err := config(nodes, l.Dir())
	if err != nil {
		return err
	}
	cfg := filepath.Join(dir, "computeha.yaml")
	if err := os.WriteFile(cfg, []byte(doc), 0o644); err != nil {
		return err
	}
	hosts := make([]string, 0, len(nodes))
	for _, n := range nodes {
		hosts = append(hosts, n.Name)
	}
	pcs := func(args ...string) error {
		out, errOut, code, err := l.Exec(ctx, "ctl1", append([]string{"pcs"}, args...)...)
		if err == nil && code != 0 {
			err = fmt.Errorf("pcs %s: exit %d: %s%s", strings.Join(args, " "), code, out, errOut)
		}
		return err
	}
	steps := [][]string{
		{"resource", "create", "hostcheck", "ocf:computeha:hostcheck", "config=" + cfg, "op", "monitor", "interval=2s", "timeout=20s", "clone", "interleave=true"},
		{"stonith", "create", "gate", "fence_hostcheck", "config=" + cfg, "pcmk_host_list=cmp1 cmp2", "pcmk_off_retries=1", "pcmk_reboot_retries=1", "pcmk_reboot_timeout=60s", "pcmk_off_timeout=60s"},
		{"constraint", "location", "gate", "rule", "score=-INFINITY", "#kind", "ne", "cluster"},
		{"stonith", "create", "fence-gossip", "fence_gossip", "config=" + cfg, "pcmk_host_list=cmp1 cmp2", "pcmk_off_retries=1", "pcmk_reboot_retries=1", "pcmk_reboot_timeout=60s", "pcmk_off_timeout=60s"},
		{"constraint", "location", "fence-gossip", "rule", "score=-INFINITY", "#kind", "ne", "cluster"},
	}
	for _, h := range []string{"cmp1", "cmp2"} {
		steps = append(steps, []string{"stonith", "level", "clear", h},
			[]string{"stonith", "level", "add", "1", h, "gate", "fence-" + h},
			[]string{"stonith", "level", "add", "2", h, "gate", "fence-gossip"})
	}
	for _, s := range steps {
		if err := pcs(s...); err != nil {
			return err
		}
	}
	w, err := startWatcher(ctx, l, cfg)
	if err != nil {
		return err
	}
	defer w.stop()
	if err := w.waitAll(hosts, "running", 2*time.Minute); err != nil {
		return err
	}
	// The fencings first: the faults below leave Pacemaker retrying a fencing the gate
	// refuses (pacemaker-remoted killed, the host service-unreachable), and a power loss
	// then completes that fencing instead of one of its own.
	fenced, err := fencings(ctx, l, w, hosts, pcs)
	if err != nil {
		return err
	}

	took := map[string][]time.Duration{}
	var wrong []string
	fs := faults()
	for r := range runs {
		for _, f := range fs {
			start := time.Now()
			if err := f.inject(ctx, l, f.host); err != nil {
				return fmt.Errorf("%s of %s: %w", f.name, f.host, err)
			}
			d, bad, err := waitDecided(w, f, start, 30*time.Second)
			wrong = append(wrong, bad...)
			if err != nil {
				return fmt.Errorf("run %d, %s of %s: %w", r+1, f.name, f.host, err)
			}
			took[f.name] = append(took[f.name], d)
			fmt.Printf("run %d: %-50s %s %s after %s\n", r+1, f.name, f.host, f.state, d.Round(time.Millisecond))
			if err := f.heal(ctx, l, f.host); err != nil {
				return err
			}
			if err := back(ctx, l, w, hosts, f.host); err != nil {
				return fmt.Errorf("run %d, after %s of %s: %w", r+1, f.name, f.host, err)
			}
			wrong = append(wrong, judgeOthers(w, f, start)...)
		}
	}

	fmt.Printf("\nfault to decided state over %d runs (target: median <= %s, no wrong decision)\n", runs, target)
	missed := false
	for _, f := range fs {
		ds := took[f.name]
		slices.Sort(ds)
		med, worst := ds[len(ds)/2], ds[len(ds)-1]
		mark := "ok"
		if med > target {
			mark, missed = "MISSED", true
		}
		fmt.Printf("  %-50s %-20s median %7s  worst %7s  %s\n", f.name, f.state, med.Round(time.Millisecond), worst.Round(time.Millisecond), mark)
	}
	fmt.Printf("  wrong decisions: %d\n", len(wrong))
	for _, s := range wrong {
		fmt.Printf("    %s\n", s)
	}
	fmt.Print(fenced.summary)
	if missed || len(wrong) > 0 || fenced.missed {
		return errors.New("a target was missed")
	}
	return nil
}

// fenceFigures are the fencings' results, printed after the decisions'.
type fenceFigures struct {
	summary string
	missed  bool
}

// fencings times power losses to the fencing Pacemaker confirms: with the BMC answering (the
// first level; the reference) and with the BMC gone with the power (the second level, through
// the host's watchdog), interleaved so that both see the same machine.
func fencings(ctx context.Context, l *lab.Lab, w *watcher, hosts []string, pcs func(...string) error) (fenceFigures, error) {
	type kind struct {
		name string
		host string
		bmc  bool
	}
	kinds := []kind{
		{"power loss, BMC answering (level 1: the power fence)", "cmp1", true},
		{"power loss, BMC gone with it (level 2: fence_gossip)", "cmp2", false},
	}
	took := map[string][]time.Duration{}
	for r := range fenceRuns {
		for _, k := range kinds {
			start := time.Now()
			if err := powerOff(ctx, l, k.host); err != nil {
				return fenceFigures{}, err
			}
			if !k.bmc {
				if _, err := l.BMC(ctx, k.host, "down"); err != nil {
					return fenceFigures{}, err
				}
			}
			d, err := waitFenced(l, k.host, start, 2*time.Minute)
			if err != nil {
				return fenceFigures{}, fmt.Errorf("run %d, %s of %s: %w", r+1, k.name, k.host, err)
			}
			took[k.name] = append(took[k.name], d)
			fmt.Printf("run %d: %-55s %s fenced after %s\n", r+1, k.name, k.host, d.Round(time.Millisecond))
			if !k.bmc {
				if _, err := l.BMC(ctx, k.host, "up"); err != nil {
					return fenceFigures{}, err
				}
				// Its power device failed to start while its BMC did not answer.
				if err := pcs("resource", "cleanup", "fence-"+k.host); err != nil {
					return fenceFigures{}, err
				}
			}
			// The first level reboots the host; the second cannot power it on.
			if st, err := l.Power(ctx, k.host, "status"); err == nil && st == "off" {
				if _, err := l.Power(ctx, k.host, "on"); err != nil {
					return fenceFigures{}, err
				}
			}
			if err := back(ctx, l, w, hosts, k.host); err != nil {
				return fenceFigures{}, fmt.Errorf("run %d, after %s of %s: %w", r+1, k.name, k.host, err)
			}
		}
	}
	var b strings.Builder
	fmt.Fprintf(&b, "\npower loss to confirmed fencing over %d runs (target for the BMC gone: median <= %s)\n", fenceRuns, fenceTarget)
	var ref time.Duration
	missed := false
	for i, k := range kinds {
		ds := took[k.name]
		slices.Sort(ds)
		med, worst := ds[len(ds)/2], ds[len(ds)-1]
		mark := "reference"
		if i == 0 {
			ref = med
		} else {
			mark = fmt.Sprintf("%.1fx the reference, ok", med.Seconds()/ref.Seconds())
			if med > fenceTarget {
				mark, missed = fmt.Sprintf("%.1fx the reference, MISSED", med.Seconds()/ref.Seconds()), true
			}
		}
		fmt.Fprintf(&b, "  %-55s median %7s  worst %7s  %s\n", k.name, med.Round(time.Millisecond), worst.Round(time.Millisecond), mark)
	}
	return fenceFigures{summary: b.String(), missed: missed}, nil
}

// waitFenced waits until a controller's fencer logs a fencing of host completed OK after
// start, and returns when it completed, by the fencer's clock. (The fencer's history is no
// timer: it keeps one entry for a target's repeated fencings, with the first one's time.)
func waitFenced(l *lab.Lab, host string, start time.Time, limit time.Duration) (time.Duration, error) {
	done := regexp.MustCompile(`^(\w{3} \d{2} \d{2}:\d{2}:\d{2}\.\d{3}) \S+ pacemaker-fenced .*Operation '(?:reboot|off)' targeting ` +
		regexp.QuoteMeta(host) + ` by \S+ for \S+: OK`)
	logs, _ := filepath.Glob(filepath.Join(l.Dir(), "nodes", "ctl*", "log", "pacemaker", "pacemaker.log"))
	for time.Since(start) < limit {
		for _, path := range logs {
			data, err := os.ReadFile(path)
			if err != nil {
				continue
			}
			for line := range strings.Lines(string(data)) {
				m := done.FindStringSubmatch(line)
				if m == nil {
					continue
				}
				at, err := time.ParseInLocation("Jan 02 15:04:05.000", m[1], time.Local)
				if err != nil {
					continue
				}
				at = at.AddDate(start.Year(), 0, 0)
				if at.After(start) {
					return at.Sub(start), nil
				}
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
	return 0, fmt.Errorf("%s not fenced within %s", host, limit)
}

// waitDecided waits for f's host to be confirmed f.state, and returns how long that took from
// start and the wrong confirmed decisions about that host on the way.
func waitDecided(w *watcher, f fault, start time.Time, limit time.Duration) (time.Duration, []string, error) {
	deadline := time.Now().Add(limit)
	var bad []string
	seen := 0
	for time.Now().Before(deadline) {
		ds := w.since(start)
		for _, d := range ds[seen:] {
			if d.Host != f.host {
				continue
			}
			switch d.State {
			case f.state:
				return d.seen.Sub(start), bad, nil
			case "unknown":
				// Undecided on the way (evidence not in agreement yet) is not a decision.
			default:
				bad = append(bad, fmt.Sprintf("%s of %s: %s confirmed %s on the way to %s (%s)", f.name, f.host, d.Host, d.State, f.state, d.Reason))
			}
		}
		seen = len(ds)
		time.Sleep(50 * time.Millisecond)
	}
	return 0, bad, fmt.Errorf("not confirmed %s within %s; decisions: %+v", f.state, limit, w.since(start))
}

// judgeOthers lists wrong decisions about hosts other than the faulted one since start.
func judgeOthers(w *watcher, f fault, start time.Time) []string {
	var bad []string
	for _, d := range w.since(start) {
		if d.Host != f.host && d.State != "running" {
			bad = append(bad, fmt.Sprintf("%s of %s: %s confirmed %s (%s)", f.name, f.host, d.Host, d.State, d.Reason))
		}
	}
	return bad
}

// back waits until host is in the cluster again and every host is confirmed running. A host
// whose fencing the gate refused stays UNCLEAN in Pacemaker after it heals; it is confirmed
// to Pacemaker once its evidence is running again, as the evacuation daemon does. Pacemaker
// may not have noticed the fault yet when it is healed, so "online" alone proves nothing:
// the watcher must see every host running too.
func back(ctx context.Context, l *lab.Lab, w *watcher, hosts []string, host string) error {
	deadline := time.Now().Add(3 * time.Minute)
	var confirmed time.Time
	last := "no cluster state yet"
	for time.Now().Before(deadline) {
		st, err := l.ClusterState(ctx)
		if err != nil {
			last = err.Error()
			time.Sleep(500 * time.Millisecond)
			continue
		}
		i := slices.IndexFunc(st.Nodes, func(n lab.NodeState) bool { return n.Name == host })
		if i < 0 {
			return fmt.Errorf("%s is not in crm_mon's node list", host)
		}
		n := st.Nodes[i]
		cur := w.current()
		running := !slices.ContainsFunc(hosts, func(h string) bool { return cur[h] != "running" })
		if n.Online && !n.Unclean && running {
			return nil
		}
		last = fmt.Sprintf("online=%v unclean=%v, decisions %v", n.Online, n.Unclean, cur)
		// A confirmation Pacemaker takes while it is still setting up the fencing can be
		// lost; it is repeated, as the evacuation daemon repeats it.
		if n.Unclean && time.Since(confirmed) > 10*time.Second && evidenceBack(ctx, l, host) {
			out, errOut, code, err := l.Exec(ctx, "ctl1", "stonith_admin", "--confirm", host)
			if err != nil || code != 0 {
				return fmt.Errorf("stonith_admin --confirm %s: exit %d, %v: %s%s", host, code, err, out, errOut)
			}
			confirmed = time.Now()
		}
		time.Sleep(500 * time.Millisecond)
	}
	return fmt.Errorf("%s did not come back in 3 minutes: %s", host, last)
}

// evidenceBack asks `computeha health` whether host answers on every network again, with a
// fresh heartbeat and its service running: everything but Pacemaker's membership.
func evidenceBack(ctx context.Context, l *lab.Lab, host string) bool {
	out, _, code, err := l.Exec(ctx, "ctl1", "computeha", "health", "--config", configPath(l), "--host", host, "--json")
	if err != nil || code != 0 {
		return false
	}
	var j struct{ Reason string }
	if json.Unmarshal([]byte(out), &j) != nil {
		return false
	}
	return strings.Contains(j.Reason, "network mgmt ok") && strings.Contains(j.Reason, "network tenant ok") &&
		strings.Contains(j.Reason, "storage heartbeat ok") && strings.Contains(j.Reason, "service ok")
}

func configPath(l *lab.Lab) string { return filepath.Join(filepath.Dir(l.Dir()), "computeha.yaml") }
