//go:build integration

package integration

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/computeha/computeha/agents"
	"github.com/computeha/computeha/internal/evacdsock"
)

// evacdConfig writes a configuration whose cloud is unreachable: the
// daemon must still start (it waits Nova out) and answer its monitor.
func evacdConfig(t *testing.T, dir string) string {
	t.Helper()
	clouds := filepath.Join(dir, "clouds.yaml")
	if err := os.WriteFile(clouds, []byte(`clouds:
  nowhere:
    auth:
      auth_url: http://127.0.0.1:9/v3
      username: admin
      password: x
      project_name: admin
      user_domain_name: Default
      project_domain_name: Default
`), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(dir, "evacd.yaml")
	if err := os.WriteFile(cfg, fmt.Appendf(nil, `cloud: nowhere
clouds_yaml: %s
segments:
  seg-a:
    hosts: [compute1, compute2]
history:
  driver: sqlite
  dsn: %s
`, clouds, filepath.Join(dir, "history.db")), 0o600); err != nil {
		t.Fatal(err)
	}
	return cfg
}

// TestOCFTesterPassesForTheEvacuator runs resource-agents' ocf-tester on
// ocf:computeha:evacuator inside a live Pacemaker node: the agent starts
// computeha evacd, which registers its alert agent and answers on its
// health socket; stops; and is started and stopped twice.
func TestOCFTesterPassesForTheEvacuator(t *testing.T) {
	node := startPacemaker(t)
	dir := sharedDir(t)
	cfg := evacdConfig(t, dir)
	sock := filepath.Join(dir, "evacd.sock")
	r := node.exec(t, 5*time.Minute, "ocf-tester", "-n", "evac",
		"-o", "config="+cfg, "-o", "socket="+sock, "-o", "alert_socket="+filepath.Join(dir, "alert.sock"),
		"-o", "state_dir="+filepath.Join(dir, "state"), "-o", "alert_agent=/usr/sbin/computeha_alert",
		ocfAgentPath("evacuator"))
	if r.code != 0 || !strings.Contains(r.stdout, "passed all tests") {
		t.Fatalf("ocf-tester: %s", r)
	}
	// The daemon registered the alert agent in the CIB while it ran.
	cib, err := node.crmClient().CIB(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(cib.Alerts) != 1 || cib.Alerts[0].Path != "/usr/sbin/computeha_alert" {
		t.Errorf("alerts in the CIB: %+v", cib.Alerts)
	}
}

func TestTheEvacuatorRefusesABadConfiguration(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(bad, []byte("cloud: x\nsegments:\n  s:\n    hosts: [a, b]\n    recovery_method: fast\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	r := execute(t, time.Minute, "", "env", "OCF_RESKEY_config="+bad, "OCF_ROOT=/usr/lib/ocf",
		ocfAgentPath("evacuator"), "validate-all")
	if r.code != 6 || !strings.Contains(r.stderr, `recovery_method: "fast" is not one of`) {
		t.Errorf("validate-all of a bad configuration: %s", r)
	}
}

func TestTheDaemonAnswersItsHealthSocket(t *testing.T) {
	node := startPacemaker(t)
	dir := sharedDir(t)
	cfg := evacdConfig(t, dir)
	sock := filepath.Join(dir, "evacd.sock")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan run, 1)
	go func() {
		done <- node.exec(t, 2*time.Minute, "timeout", "20", "/usr/sbin/computeha", "evacd", "--config", cfg, "--socket", sock,
			"--alert-socket", filepath.Join(dir, "alert.sock"), "--state-dir", filepath.Join(dir, "state"),
			"--alert-agent", "/usr/sbin/computeha_alert")
	}()
	deadline := time.Now().Add(15 * time.Second)
	for {
		hctx, hcancel := context.WithTimeout(ctx, time.Second)
		h, err := evacdsock.Ask(hctx, sock)
		hcancel()
		if err == nil && h.OK {
			t.Logf("health: %+v", h)
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no healthy answer within 15 s: %v", err)
		}
		time.Sleep(200 * time.Millisecond)
	}
	<-done
}

// TestAProbeFindingTheDaemonGoneIsNotAFailure: the evacuator is a resource of a live
// Pacemaker; its daemon dies while its pid file stays (as when a node reboots with a state
// directory that survives, or Pacemaker is restarted), and Pacemaker probes it again.
// Pacemaker 2.1 sends a probe no interval at all: the agent must still take it for a probe
// and answer not running, so that Pacemaker just starts the daemon, with no failed action
// (a failed probe is "possibly active" to Pacemaker, which then recovers the resource
// wherever else it runs).
func TestAProbeFindingTheDaemonGoneIsNotAFailure(t *testing.T) {
	node := startPacemaker(t)
	dir := sharedDir(t)
	cfg := evacdConfig(t, dir)
	must := func(args ...string) {
		t.Helper()
		if r := node.exec(t, 2*time.Minute, args...); r.code != 0 {
			t.Fatalf("%s: %s", strings.Join(args, " "), r)
		}
	}
	// Nothing here is fenced: without a device, stonith-enabled would keep evac from starting.
	must("crm_attribute", "--type", "crm_config", "--name", "stonith-enabled", "--update", "false")
	// The recurring monitor runs once after the start, then not for an hour: only the probe
	// looks at the dead daemon.
	must("pcs", "resource", "create", "evac", "ocf:computeha:evacuator", "config="+cfg,
		"socket="+filepath.Join(dir, "evacd.sock"), "alert_socket="+filepath.Join(dir, "alert.sock"),
		"state_dir="+filepath.Join(dir, "state"), "alert_agent=/usr/sbin/computeha_alert",
		"op", "monitor", "interval=1h", "timeout=20s")
	must("crm_resource", "--wait", "--timeout=60s")
	pidFile := filepath.Join(node.dir, "run", "resource-agents", "computeha-evacuator-evac.pid")
	daemon := func() int {
		t.Helper()
		b, err := os.ReadFile(pidFile)
		if err != nil {
			t.Fatal(err)
		}
		f := strings.Fields(string(b))
		if len(f) != 2 {
			t.Fatalf("%s: %q", pidFile, b)
		}
		pid, err := strconv.Atoi(f[0])
		if err != nil {
			t.Fatal(err)
		}
		return pid
	}
	// alive is false once pid is gone or a zombie (nothing may reap it at once).
	alive := func(pid int) bool {
		state, _, err := agents.ProcStat(pid)
		return err == nil && state != 'Z' && state != 'X'
	}
	before := daemon()
	if err := syscall.Kill(before, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(10 * time.Second); alive(before); time.Sleep(100 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the daemon (pid %d) did not die", before)
		}
	}
	logPath := filepath.Join(node.dir, "log", "pacemaker", "pacemaker.log")
	fi, err := os.Stat(logPath)
	if err != nil {
		t.Fatal(err)
	}
	// Forget what Pacemaker knows of evac: it probes it again.
	must("crm_resource", "--refresh", "--resource", "evac")
	must("crm_resource", "--wait", "--timeout=60s")
	st, err := node.crmClient().Status(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range st.Failures {
		t.Errorf("failed %s of %s on %s: %s", f.Task, f.Resource, f.Node, f.ExitReason)
	}
	if after := daemon(); after == before || !alive(after) {
		t.Errorf("the daemon was not started again: pid %d before, %d now", before, after)
	}
	log, err := os.ReadFile(logPath)
	if err != nil {
		t.Fatal(err)
	}
	if since := string(log[min(fi.Size(), int64(len(log))):]); !strings.Contains(since, "Result of probe operation for evac on node1: not running") {
		t.Error("pacemaker.log has no probe of evac, after the refresh, answered not running")
	}
}
