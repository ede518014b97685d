// Package e2e assembles the whole of computeha on real parts for the
// end-to-end suite and the demo: the Pacemaker lab (controllers, computes
// as pacemaker-remote nodes, BMCs), a real Nova control plane on the lab's
// management network with a fake-driver nova-compute on every compute
// node, fencing topology fence_ipmi + fence_nova, the nova-compute clone
// and the evacuator.
package e2e

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/computeha/computeha/crm"
	"github.com/computeha/computeha/internal/config"
	"github.com/computeha/computeha/internal/openstack"
	"github.com/computeha/computeha/test/lab"
	"github.com/computeha/computeha/test/nova"
)

// MetricsPort is where the evacuation daemon serves its metrics on every controller.
const MetricsPort = 9731

// CloudAddr is the cloud's address on the lab's management network.
const CloudAddr = "192.168.1.250"

// The HA API of a lab up with Options.Guests: a Pacemaker IPaddr2 on the management network,
// colocated with the evacuator.
const (
	APIAddr = "192.168.1.200"
	APIPort = 8787
)

// GuestMaxRestarts is instances.max_restarts in a lab with guests: a VM restarted that often
// on its host is moved to another at its next failure.
const GuestMaxRestarts = 2

// GuestProcessGiveUp is instances.process_give_up in a lab with guests.
const GuestProcessGiveUp = 10 * time.Second

// APIURL is where the computes' instance monitors reach the HA API.
func APIURL() string { return fmt.Sprintf("http://%s:%d", APIAddr, APIPort) }

// DefaultPrefix names the lab's namespaces when LAB_PREFIX is unset.
const DefaultPrefix = "chalab"

// Prefix is the lab's namespace prefix: LAB_PREFIX, as the lab script
// reads it, so that a second lab and its cloud can run beside the first.
func Prefix() string {
	if p := os.Getenv("LAB_PREFIX"); p != "" {
		return p
	}
	return DefaultPrefix
}

// CloudNS is the cloud's namespace, attached to the lab's management
// network.
func CloudNS() string { return Prefix() + "-cloud" }

// fabricNS holds the lab's bridges.
func fabricNS() string { return Prefix() + "-fabric" }

// DefaultNovaDir is Nova's state directory for the lab's prefix: the
// default prefix keeps the directory earlier runs warmed up.
func DefaultNovaDir() string {
	if p := Prefix(); p != DefaultPrefix {
		return "/tmp/computeha-nova-" + p
	}
	return "/tmp/computeha-nova-lab"
}

// Options configure Up.
type Options struct {
	Dir      string // state; default a new temporary directory
	NovaDir  string // Nova's state, kept for warm starts; default DefaultNovaDir()
	Bin      string // computeha and its agents (make build)
	Computes int    // default 3
	// Controllers is the number of controllers (default 3).
	Controllers int
	// MaxRestarts is instances.max_restarts with Guests (default GuestMaxRestarts).
	MaxRestarts int
	// Guests: every compute runs nova-compute's libvirt driver and real qemu guests (a
	// libvirtd of its own, instance files on the lab's shared storage), and Glance has the
	// test guest (nova.GuestImage). Without it, the computes run the fake driver.
	Guests bool
	Log    io.Writer
}

// Env is the assembled system.
type Env struct {
	Lab      *lab.Lab
	Plane    *nova.Plane
	Admin    *nova.Admin
	Nova     openstack.Client
	CRM      *crm.Client
	Dir      string
	Bin      string   // computeha and its agents
	settings Settings // what the daemon's configuration says beyond the fixed parts
	// health is the configuration's health section once EnableHealth ran.
	health string
	// alerts is the configuration's alerts section, when the suite delivers alerts.
	alerts string
	log    io.Writer
	hosts  []string
	// OnEvacStart, when set, runs once when PowerLoss sees the first VM
	// being rebuilt (a test kills the daemon there).
	OnEvacStart func()
	// guests: the computes run real guests, an instance monitor each, and the daemon serves
	// the HA API at APIURL.
	guests      bool
	maxRestarts int
	// observer is the controller the suite reads the cluster from and runs the operator's
	// commands on (ObserveFrom): ctl1 unless a scenario fails ctl1.
	observer string
}

func (e *Env) logf(format string, a ...any) {
	if e.log != nil {
		fmt.Fprintf(e.log, "e2e: "+format+"\n", a...)
	}
}

// Computes names the compute nodes (also their Nova host names).
func (e *Env) Computes() []string { return e.hosts }

// Up brings everything up and waits until it is settled. On failure it
// takes down what it started.
func Up(ctx context.Context, o Options) (env *Env, err error) {
	if o.Computes <= 0 {
		o.Computes = 3
	}
	if o.Controllers <= 0 {
		o.Controllers = 3
	}
	if o.NovaDir == "" {
		o.NovaDir = DefaultNovaDir()
	}
	if o.Dir == "" {
		if o.Dir, err = os.MkdirTemp("", "computeha-e2e-"); err != nil {
			return nil, err
		}
	}
	if err := os.MkdirAll(o.Dir, 0o755); err != nil {
		return nil, err
	}
	e := &Env{Dir: o.Dir, Bin: o.Bin, log: o.Log, guests: o.Guests, maxRestarts: o.MaxRestarts}
	if e.maxRestarts <= 0 {
		e.maxRestarts = GuestMaxRestarts
	}
	defer func() {
		if err != nil {
			e.Down(context.Background())
		}
	}()
	start := time.Now()
	e.Lab, err = lab.Up(ctx, lab.Options{
		Controllers: o.Controllers, Computes: o.Computes, Dir: filepath.Join(o.Dir, "lab"), Bin: o.Bin, Log: o.Log,
		Libvirt: o.Guests,
	})
	if err != nil {
		return e, err
	}
	e.logf("lab up in %s", time.Since(start).Round(time.Millisecond))
	if err := e.ObserveFrom(ctx, "ctl1"); err != nil {
		return e, err
	}
	nodes, err := e.Lab.Nodes(ctx)
	if err != nil {
		return e, err
	}
	if err := attachCloud(ctx); err != nil {
		return e, err
	}
	e.Plane = &nova.Plane{Dir: o.NovaDir, NetNS: CloudNS(), Addr: CloudAddr, Driver: nova.DriverFake}
	if o.Guests {
		e.Plane.Driver = nova.DriverLibvirt
	}
	t := time.Now()
	if err := e.Plane.Up(ctx); err != nil {
		return e, fmt.Errorf("nova up: %w", err)
	}
	e.logf("Nova up in %s", time.Since(t).Round(time.Millisecond))
	if o.Guests {
		t := time.Now()
		if err := e.Plane.UploadGuest(ctx); err != nil {
			return e, err
		}
		e.logf("test guest in Glance after %s", time.Since(t).Round(time.Millisecond))
	}
	tr, err := e.Plane.Transport()
	if err != nil {
		return e, err
	}
	if e.Nova, err = openstack.New(ctx, openstack.Options{Cloud: nova.CloudAdmin, CloudsFile: e.Plane.CloudsYAML(), DialContext: tr.DialContext}); err != nil {
		return e, err
	}
	if e.Admin, err = e.Plane.AdminClient(ctx); err != nil {
		return e, err
	}
	if err := e.Admin.DeleteAll(ctx); err != nil {
		return e, err
	}
	if err := e.Admin.Unlimited(ctx); err != nil {
		return e, err
	}
	// Register each host in Nova (service, compute node, cell mapping) and clear what an
	// earlier run left; from then on the nova-compute clone runs it. The computes are
	// registered together: each waits tens of seconds for Nova, most of it idle.
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
	)
	t = time.Now()
	for _, n := range nodes {
		if n.Kind != lab.Compute {
			continue
		}
		e.hosts = append(e.hosts, n.Name)
		wg.Go(func() {
			err := e.Plane.Ready(ctx, n.Name, e.Nova, "nsenter", "-t", strconv.Itoa(n.HolderPID), "-m", "-n", "-u")
			if err != nil {
				err = fmt.Errorf("register %s in Nova: %w", n.Name, err)
			} else {
				err = e.Plane.ComputeStop(ctx, n.Name)
			}
			if err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return e, err
	}
	e.logf("%d computes registered in Nova in %s", len(e.hosts), time.Since(t).Round(time.Millisecond))
	if err := e.configure(ctx); err != nil {
		return e, err
	}
	if err := e.settle(ctx); err != nil {
		return e, err
	}
	e.logf("everything settled %s after start", time.Since(start).Round(time.Millisecond))
	return e, nil
}

// attachCloud makes the cloud's namespace, on the management bridge.
func attachCloud(ctx context.Context) error {
	ns, fabric := CloudNS(), fabricNS()
	_ = exec.CommandContext(ctx, "ip", "netns", "del", ns).Run()
	for _, args := range [][]string{
		{"netns", "add", ns},
		{"-n", fabric, "link", "add", "cloud-mgmt", "type", "veth", "peer", "name", "mgmt", "netns", ns},
		{"-n", fabric, "link", "set", "cloud-mgmt", "master", "br-mgmt", "up"},
		{"-n", ns, "addr", "add", CloudAddr + "/24", "dev", "mgmt"},
		{"-n", ns, "link", "set", "mgmt", "up"},
		{"-n", ns, "link", "set", "lo", "up"},
	} {
		if out, err := exec.CommandContext(ctx, "ip", args...).CombinedOutput(); err != nil {
			return fmt.Errorf("ip %s: %v: %s", strings.Join(args, " "), err, out)
		}
	}
	return nil
}

// ObserveFrom makes controller the one the suite reads the cluster from (e.CRM) and runs
// pcs and the operator's commands on: a scenario that fails a controller observes from
// another, as an operator would.
func (e *Env) ObserveFrom(ctx context.Context, controller string) error {
	nodes, err := e.Lab.Nodes(ctx)
	if err != nil {
		return err
	}
	for _, n := range nodes {
		if n.Name == controller && n.Kind == lab.Controller && n.HolderPID > 0 {
			// What `lab exec` runs, without a shell script per call: the watchers poll
			// several times a second, on the same cores as the recovery they time.
			e.CRM = crm.NewClient(&crm.Runner{Prefix: []string{
				"nsenter", "-t", strconv.Itoa(n.HolderPID), "-m", "-n", "-u", "--root", "--",
				"setpriv", "--bounding-set", "-sys_boot", "--",
			}, Timeout: 2 * time.Minute})
			e.observer = controller
			return nil
		}
	}
	return fmt.Errorf("no controller %s in the lab", controller)
}

// Observer is the controller the suite observes from (ObserveFrom).
func (e *Env) Observer() string { return e.observer }

// pcs runs pcs on the observer.
func (e *Env) pcs(ctx context.Context, args ...string) error {
	out, errOut, code, err := e.Lab.Exec(ctx, e.observer, append([]string{"pcs"}, args...)...)
	if err != nil {
		return err
	}
	if code != 0 {
		return fmt.Errorf("pcs %s: exit %d: %s%s", strings.Join(args, " "), code, out, errOut)
	}
	return nil
}

// EvacdConfig is the daemon's configuration file.
func (e *Env) EvacdConfig() string { return filepath.Join(e.Dir, "evacd.yaml") }

// HistoryDB is the daemon's history store.
func (e *Env) HistoryDB() string { return filepath.Join(e.Dir, "history.db") }

// Settings are the parts of the daemon's configuration a scenario changes.
type Settings struct {
	Guard Guard
	// Segment is the body of the lab segment, each line indented four spaces; empty: every
	// compute, recovery method auto.
	Segment string
	// Retries and Backoff (a flow mapping of initial and max) of the moves; zero: 3 and
	// {initial: 1s, max: 5s}.
	Retries int
	Backoff string
	// Tiers, when set, is the flow mapping of evacuation.tiers.
	Tiers string
}

// DefaultSettings are the configuration the suite starts from.
func DefaultSettings() Settings { return Settings{Guard: DefaultGuard} }

// writeEvacdConfig writes the daemon's configuration with s.
func (e *Env) writeEvacdConfig(s Settings) error {
	seg := s.Segment
	if seg == "" {
		seg = fmt.Sprintf("    hosts: [%s]\n    recovery_method: auto\n", strings.Join(e.hosts, ", "))
	}
	if s.Retries == 0 {
		s.Retries = 3
	}
	if s.Backoff == "" {
		s.Backoff = "{initial: 1s, max: 5s}"
	}
	tiers := ""
	if s.Tiers != "" {
		tiers = "  tiers: " + s.Tiers + "\n"
	}
	g := s.Guard
	cfg := fmt.Sprintf(`cloud: %s
clouds_yaml: %s
segments:
  lab:
%spolicy:
  default: off
  flavor_key: evacuable
evacuation:
  concurrency: 16
  retries: %d
  retry_backoff: %s
  confirm_timeout: 3m
%sguard:
  max_hosts: %d
  window: %s
  max_segment_fraction: %g
history:
  driver: sqlite
  dsn: %s
metrics:
  listen: 0.0.0.0:%d
  hostcheck_listen: 0.0.0.0:%d
  capacity_interval: 30s
`, nova.CloudAdmin, e.Plane.CloudsYAML(), seg, s.Retries, s.Backoff, tiers, g.MaxHosts, g.Window, g.MaxSegmentFraction, e.HistoryDB(), MetricsPort,
		HostcheckMetricsPort)
	if e.guests {
		// The lab's computes have no init to restart libvirtd: the instance monitor does.
		cfg += fmt.Sprintf("api:\n  listen: 0.0.0.0:%d\n  url: %s\ninstances:\n  max_restarts: %d\n  restart_window: 1h\n"+
			"  processes: [{name: libvirtd, restart_command: libvirtd --daemon}]\n  process_give_up: %s\n",
			APIPort, APIURL(), e.maxRestarts, GuestProcessGiveUp)
	}
	doc := []byte(cfg + e.health + e.alerts)
	// Said here, at once, rather than as a daemon that never starts.
	if _, err := config.Parse(doc); err != nil {
		return fmt.Errorf("the evacuation daemon's configuration the e2e writes is invalid: %w", err)
	}
	return os.WriteFile(e.EvacdConfig(), doc, 0o644)
}

func (e *Env) configure(ctx context.Context) error {
	e.settings = DefaultSettings()
	if err := e.writeEvacdConfig(e.settings); err != nil {
		return err
	}
	clouds := e.Plane.CloudsYAML()
	notComputes := []string{"rule", "score=-INFINITY", "#kind", "ne", "cluster"}
	// Never probed on the computes either: a probe there fails while a remote connection is
	// being set up ("Not connected to remote executor"), and Pacemaker then takes the
	// daemon for active on two nodes, restarts it, and fences the compute when the stop
	// there fails too.
	controllersOnly := []string{"rule", "resource-discovery=never", "score=-INFINITY", "#kind", "ne", "cluster"}
	steps := [][]string{
		{"property", "set", "maintenance-mode=true"},
		{
			"stonith", "create", "fence-nova", "fence_nova", "cloud=" + nova.CloudAdmin, "clouds_yaml=" + clouds,
			"pcmk_host_list=" + strings.Join(e.hosts, " "),
		},
		append([]string{"constraint", "location", "fence-nova"}, notComputes...),
	}
	for _, h := range e.hosts {
		// A failed compute stays off until someone powers it on: Pacemaker
		// fences with off, not reboot.
		steps = append(steps,
			[]string{"stonith", "update", "fence-" + h, "pcmk_reboot_action=off"},
			[]string{"stonith", "level", "add", "1", h, "fence-" + h + ",fence-nova"})
	}
	startCmd := fmt.Sprintf("exec %s compute-run $(hostname) --driver %s --dir %s", nova.Script(), e.Plane.Driver, e.Plane.Dir)
	steps = append(steps,
		[]string{
			"resource", "create", "nova-compute", "ocf:computeha:nova-compute", "cloud=" + nova.CloudAdmin,
			"clouds_yaml=" + clouds, "start_command=" + startCmd,
			"op", "start", "timeout=180s", "op", "monitor", "interval=10s", "timeout=30s",
			// A failed start (Nova refusing to unset forced_down after nova-compute reported)
			// is tried again, restarting nova-compute, once it expires.
			"meta", "failure-timeout=60s", "clone", "interleave=true",
		},
		[]string{"constraint", "location", "nova-compute-clone", "rule", "score=-INFINITY", "#kind", "ne", "remote"},
		// Sticky: without it the scheduler may move the daemon to another
		// controller on any transition (a host failing is one), and its
		// start then waits behind the recovery's own transitions.
		[]string{
			"resource", "create", "evacuator", "ocf:computeha:evacuator", "config=" + e.EvacdConfig(),
			"state_dir=" + filepath.Join(e.Dir, "evacd-state"), "op", "monitor", "interval=5s", "timeout=20s",
			"meta", "resource-stickiness=INFINITY",
		},
		append([]string{"constraint", "location", "evacuator"}, controllersOnly...),
	)
	if e.guests {
		steps = append(steps,
			// The HA API's address follows the daemon.
			[]string{
				"resource", "create", "api-vip", "ocf:heartbeat:IPaddr2", "ip=" + APIAddr, "cidr_netmask=24", "nic=mgmt",
				"op", "monitor", "interval=10s",
			},
			[]string{"constraint", "colocation", "add", "api-vip", "with", "evacuator", "INFINITY"},
			append([]string{"constraint", "location", "api-vip"}, controllersOnly...),
			[]string{
				"resource", "create", "instancemon", "ocf:computeha:instancemon", "config=" + e.EvacdConfig(),
				"op", "monitor", "interval=10s", "timeout=20s", "clone", "interleave=true",
			},
			[]string{"constraint", "location", "instancemon-clone", "rule", "score=-INFINITY", "#kind", "ne", "remote"},
		)
	}
	steps = append(steps, []string{"property", "set", "maintenance-mode=false"})
	for _, s := range steps {
		if err := e.pcs(ctx, s...); err != nil {
			return err
		}
	}
	return nil
}

// settle waits until every compute runs nova-compute, up and enabled in
// Nova, and the evacuator runs.
func (e *Env) settle(ctx context.Context) error {
	deadline := time.Now().Add(5 * time.Minute)
	var why string
	for time.Now().Before(deadline) {
		why = e.notSettled(ctx)
		if why == "" {
			return nil
		}
		time.Sleep(time.Second)
	}
	return fmt.Errorf("not settled after 5 minutes: %s", why)
}

func (e *Env) notSettled(ctx context.Context) string {
	st, err := e.CRM.Status(ctx)
	if err != nil {
		return err.Error()
	}
	started := map[string]int{}
	for _, r := range st.Resources {
		if r.Role == "Started" && !r.Failed {
			started[strings.SplitN(r.ID, ":", 2)[0]] += len(r.Nodes)
		}
	}
	if started["evacuator"] != 1 {
		return "evacuator not started"
	}
	if e.guests && (started["api-vip"] != 1 || started["instancemon"] != len(e.hosts)) {
		return fmt.Sprintf("api-vip started %d, instancemon on %d of %d computes", started["api-vip"], started["instancemon"], len(e.hosts))
	}
	if started["nova-compute"] != len(e.hosts) {
		return fmt.Sprintf("nova-compute started on %d of %d computes", started["nova-compute"], len(e.hosts))
	}
	for _, h := range e.hosts {
		s, err := e.Nova.FindComputeService(ctx, h)
		if err != nil {
			return err.Error()
		}
		if s.State != "up" || !s.Enabled() || s.ForcedDown {
			return fmt.Sprintf("%s: %s, %s, forced down %v", h, s.State, s.Status, s.ForcedDown)
		}
	}
	return ""
}

// Down takes everything down.
func (e *Env) Down(ctx context.Context) {
	var errs []error
	if e.Plane != nil {
		errs = append(errs, e.Plane.Down(ctx))
	}
	if e.Lab != nil {
		errs = append(errs, e.Lab.Down(ctx))
	}
	_ = exec.CommandContext(ctx, "ip", "netns", "del", CloudNS()).Run()
	if err := errors.Join(errs...); err != nil {
		e.logf("down: %v", err)
	}
}

// KeepLogs copies what explains a failure into dir, before Down throws it away: the lab's
// directory (every node's Pacemaker, Corosync and boot logs, the scheduler's inputs, the
// daemons' output under each node's /run/resource-agents), the daemon's configuration and
// history, and Nova's logs. It returns dir.
func (e *Env) KeepLogs(dir string) (string, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", err
	}
	var errs []error
	keep := func(name, from string, exclude ...string) {
		if _, err := os.Stat(from); err != nil {
			return
		}
		args := []string{"-C", from, "--warning=no-file-changed", "--warning=no-file-removed", "--ignore-failed-read"}
		for _, x := range exclude {
			args = append(args, "--exclude="+x)
		}
		args = append(args, "-czf", filepath.Join(dir, name+".tar.gz"), ".")
		// tar exits 1 when a file changed while it was read: what it wrote is still useful.
		if out, err := exec.Command("tar", args...).CombinedOutput(); err != nil {
			var ee *exec.ExitError
			if !errors.As(err, &ee) || ee.ExitCode() != 1 {
				errs = append(errs, fmt.Errorf("tar %s: %v: %s", from, err, out))
			}
		}
	}
	// The secrets stay behind: the BMC password, the remote key, the storage keys, the
	// Keystone logins the nova-compute agents keep.
	keep("e2e", e.Dir, "./lab/bmc-password", "./lab/authkey", "./lab/storage", "*/etc/pacemaker/authkey", "./lab/agents",
		"*.login")
	if e.Plane != nil {
		keep("nova-log", filepath.Join(e.Plane.Dir, "log"))
	}
	return dir, errors.Join(errs...)
}

// KeepFailedRun keeps the logs of a command's failed run (err not nil) in a new directory of
// keep, named by the time, and says where on stderr, after who; nothing when keep is "".
func (e *Env) KeepFailedRun(who, keep string, err error) {
	if err == nil || keep == "" {
		return
	}
	dir := filepath.Join(keep, time.Now().UTC().Format("20060102T150405Z"))
	if _, kerr := e.KeepLogs(dir); kerr != nil {
		fmt.Fprintf(os.Stderr, "%s: keeping the logs: %v\n", who, kerr)
		return
	}
	fmt.Fprintf(os.Stderr, "%s: logs kept in %s\n", who, dir)
}
