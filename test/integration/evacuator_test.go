//go:build integration

package integration

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

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
