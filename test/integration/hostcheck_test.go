//go:build integration

package integration

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/computeha/computeha/crm"
	"github.com/computeha/computeha/internal/health"
)

// startHostcheckNode is startPacemaker in a network namespace of its own name, so that this
// suite never meets another suite's node.
func startHostcheckNode(t *testing.T) *pcmkNode {
	t.Helper()
	n := &pcmkNode{dir: t.TempDir(), netns: "chahostck" + strconv.Itoa(os.Getpid()%100000)}
	env := []string{"PCMK_NETNS=" + n.netns}
	start := time.Now()
	t.Cleanup(func() { harness(t, env, "pcmk.sh", "down", n.dir) })
	harness(t, env, "pcmk.sh", "up", n.dir, binDir)
	t.Logf("pacemaker node up in %s", time.Since(start).Round(time.Millisecond))
	return n
}

// hostcheckConfig writes a configuration whose health section lists the node (node1, on the
// node's loopback 127.0.0.1) and two peers: peer-a at 127.0.0.2, which the loopback answers,
// and peer-b at a documentation address nothing answers.
func hostcheckConfig(t *testing.T, dir, shared, restartCommand string) string {
	t.Helper()
	cfg := filepath.Join(dir, "hostcheck.yaml")
	if err := os.WriteFile(cfg, fmt.Appendf(nil, `cloud: nowhere
segments:
  seg-a:
    hosts: [compute1, compute2]
health:
  shared_dir: %s
  interval: 1s
  stale_after: 3s
  probe_failures: 2
  restart_command: %q
  networks:
    - name: mgmt
      management: true
  hosts:
    node1: {mgmt: 127.0.0.1}
    peer-a: {mgmt: 127.0.0.2}
    peer-b: {mgmt: 192.0.2.1}
`, shared, restartCommand), 0o600); err != nil {
		t.Fatal(err)
	}
	return cfg
}

// readHeartbeat reads node1's heartbeat record from the shared directory.
func readHeartbeat(t *testing.T, shared string) health.Record {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(shared, health.RecordFile("node1")))
	if err != nil {
		t.Fatal(err)
	}
	rec, err := health.ParseRecord(b)
	if err != nil {
		t.Fatal(err)
	}
	return rec
}

// TestHostcheck runs ocf:computeha:hostcheck inside a live Pacemaker node: ocf-tester's
// checks, then the process's real effects — the heartbeat record rewritten with a growing
// seq, the reachability attribute published through attrd and kept out of the CIB, a monitor
// that fails with the reason once the shared directory is gone and recovers when it is back —
// and the restart of a cluster service that is down.
func TestHostcheck(t *testing.T) {
	node := startHostcheckNode(t)
	dir := sharedDir(t)
	shared := filepath.Join(dir, "shared")
	if err := os.Mkdir(shared, 0o755); err != nil {
		t.Fatal(err)
	}
	cfg := hostcheckConfig(t, dir, shared, "true")
	// pacemakerd is this node's cluster service; other nodes' pacemakerd on this machine are
	// in other network namespaces and do not count.
	params := []string{"config=" + cfg, "service=pacemakerd"}

	t.Run("ocf-tester passes", func(t *testing.T) {
		args := []string{"ocf-tester", "-n", "hc"}
		for _, p := range params {
			args = append(args, "-o", p)
		}
		r := node.exec(t, 5*time.Minute, append(args, ocfAgentPath("hostcheck"))...)
		if r.code != 0 || !strings.Contains(r.stdout, "passed all tests") {
			t.Fatalf("ocf-tester: %s", r)
		}
		t.Logf("ocf-tester took %s", r.elapsed.Round(time.Millisecond))
	})

	agent := func(t *testing.T, action string) run {
		t.Helper()
		args := []string{"env", "OCF_ROOT=/usr/lib/ocf", "OCF_RESOURCE_INSTANCE=hc", "OCF_RESOURCE_TYPE=hostcheck"}
		for _, p := range params {
			args = append(args, "OCF_RESKEY_"+p)
		}
		return node.exec(t, time.Minute, append(args, ocfAgentPath("hostcheck"), action)...)
	}

	t.Run("validate-all refuses a configuration that does not list this node", func(t *testing.T) {
		other := filepath.Join(dir, "other.yaml")
		data, err := os.ReadFile(cfg)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(other, []byte(strings.Replace(string(data), "node1:", "node9:", 1)), 0o600); err != nil {
			t.Fatal(err)
		}
		r := node.exec(t, time.Minute, "env", "OCF_ROOT=/usr/lib/ocf", "OCF_RESKEY_config="+other,
			ocfAgentPath("hostcheck"), "validate-all")
		if r.code != 6 || !strings.Contains(r.stderr, `is not listed in health.hosts (listed: node9, peer-a, peer-b)`) {
			t.Errorf("validate-all: %s", r)
		}
	})

	t.Run("the running process writes heartbeats, publishes reachability and reports a lost storage", func(t *testing.T) {
		begun := time.Now()
		r := agent(t, "start")
		if r.code != 0 {
			t.Fatalf("start: %s", r)
		}
		t.Logf("start took %s", r.elapsed.Round(time.Millisecond))
		t.Cleanup(func() {
			if r := agent(t, "stop"); r.code != 0 {
				t.Errorf("stop: %s", r)
			}
		})
		if r := agent(t, "monitor"); r.code != 0 {
			t.Fatalf("monitor: %s", r)
		}

		first := readHeartbeat(t, shared)
		time.Sleep(2500 * time.Millisecond)
		second := readHeartbeat(t, shared)
		if second.Seq < first.Seq+2 || !second.Time.After(first.Time) || second.Host != "node1" || second.Service != health.ServiceOK {
			t.Errorf("heartbeat 2.5 s apart: %+v then %+v; want seq up by at least 2, service ok", first, second)
		}
		t.Logf("heartbeat seq %d -> %d in 2.5 s", first.Seq, second.Seq)

		// peer-b is lost after two failed probes, never heard since the process started (which
		// its loss carries); peer-a answers.
		cl := node.crmClient()
		want := func(v string) bool {
			view, lastOK, err := health.ParseReachTimes(v)
			at := lastOK["peer-b"]
			return err == nil && len(view) == 2 && view["peer-a"] == health.OK && view["peer-b"] == health.Lost &&
				!at.Before(begun.Add(-time.Millisecond)) && !at.After(begun.Add(r.elapsed))
		}
		var got string
		deadline := time.Now().Add(10 * time.Second)
		for time.Now().Before(deadline) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			v, err := cl.Attribute(ctx, "node1", health.ReachAttribute("mgmt"), crm.Private)
			cancel()
			if got = v; err == nil && want(v) {
				break
			}
			time.Sleep(200 * time.Millisecond)
		}
		if !want(got) {
			t.Errorf("attribute %s = %q, want peer-a=ok peer-b=lost@(the process's start, %s + %s)", health.ReachAttribute("mgmt"), got,
				begun.Format(time.RFC3339Nano), r.elapsed)
		}
		// Private to attrd: a flapping probe must not write the CIB (each write of the status
		// section aborts Pacemaker's transition).
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		all, err := cl.AttributeAllNodes(ctx, health.ReachAttribute("mgmt"))
		if err != nil || all["node1"] != got {
			t.Errorf("every node's %s = %v (%v), want node1's %q", health.ReachAttribute("mgmt"), all, err, got)
		}
		cib, err := cl.CIB(ctx)
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		if ns, _ := cib.NodeState("node1"); ns.Transient[health.ReachAttribute("mgmt")] != "" {
			t.Errorf("the reachability was written to the CIB: %v", ns.Transient)
		}
		if rec := readHeartbeat(t, shared); rec.Networks["mgmt"] != "ok" {
			t.Errorf("record's own view of mgmt = %q, want ok (peer-a answers)", rec.Networks["mgmt"])
		}

		// The shared directory disappears: writes fail, and once nothing was written for
		// stale_after (3 s) monitor reports it as degraded (190), naming why: a failing
		// writer is the storage's problem, which a restart of hostcheck cannot fix.
		gone := shared + ".gone"
		if err := os.Rename(shared, gone); err != nil {
			t.Fatal(err)
		}
		lost := time.Now()
		var failed run
		for {
			failed = agent(t, "monitor")
			if failed.code != 0 || time.Since(lost) > 15*time.Second {
				break
			}
			time.Sleep(250 * time.Millisecond)
		}
		if failed.code != 190 || !strings.Contains(failed.stderr, "ocf-exit-reason:hostcheck reports a problem: heartbeat writes have failed for") ||
			!strings.Contains(failed.stderr, "no such file or directory") {
			t.Fatalf("monitor without the shared directory: %s", failed)
		}
		t.Logf("monitor reported degraded %s after the shared directory went away", time.Since(lost).Round(time.Millisecond))

		if err := os.Rename(gone, shared); err != nil {
			t.Fatal(err)
		}
		back := time.Now()
		for {
			r := agent(t, "monitor")
			if r.code == 0 {
				break
			}
			if time.Since(back) > 10*time.Second {
				t.Fatalf("monitor after the shared directory came back: %s", r)
			}
			time.Sleep(250 * time.Millisecond)
		}
		t.Logf("monitor succeeded again %s after the shared directory came back", time.Since(back).Round(time.Millisecond))
	})

	t.Run("a cluster service that is down is restarted with backoff and reported in the record", func(t *testing.T) {
		log := filepath.Join(dir, "restarts")
		cfg := hostcheckConfig(t, dir, shared, "date +%s.%N >> "+log)
		r := node.exec(t, time.Minute, "timeout", "--preserve-status", "5", filepath.Join(binDir, "computeha"), "hostcheck",
			"--config", cfg, "--socket", "/run/computeha/hostcheck-restart.sock", "--service", "no-such-service")
		if r.code != 0 && r.code != 143 {
			t.Fatalf("hostcheck: %s", r)
		}
		rec := readHeartbeat(t, shared)
		if rec.Service != health.ServiceDown || rec.ServiceDownSince.IsZero() {
			t.Errorf("record = %+v, want the service down with its time", rec)
		}
		data, err := os.ReadFile(log)
		if err != nil {
			t.Fatal(err)
		}
		// Restarts at 0 s, 2 s and 6 s after the service is seen down: 2 within 5 s.
		lines := strings.Fields(string(data))
		if len(lines) != 2 {
			t.Errorf("restart command ran %d times in 5 s, want 2 (backoff 2 s, then 4 s): %q", len(lines), lines)
		}
	})
}
