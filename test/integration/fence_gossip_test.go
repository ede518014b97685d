//go:build integration

package integration

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/computeha/computeha/internal/health"
)

// selfFenceConfig writes a configuration where cmp1's hostcheck holds a watchdog (2s
// countdown, alone for 5s), and node1, the test node, is the only observer.
func selfFenceConfig(t *testing.T, dir, shared string) string {
	t.Helper()
	p := filepath.Join(dir, fmt.Sprintf("evacd-%d.yaml", time.Now().UnixNano()))
	doc := fmt.Sprintf(`cloud: nowhere
segments:
  seg-a:
    hosts: [cmp1, cmp2]
health:
  shared_dir: %s
  networks:
    - {name: mgmt, management: true}
  hosts:
    cmp1: {mgmt: 192.0.2.11}
    cmp2: {mgmt: 192.0.2.12}
    node1: {mgmt: 192.0.2.1}
  watchdog: {device: /dev/watchdog, timeout: 2s, self_fence_after: 5s, observers: [node1], margin: 2s}
`, shared)
	if err := os.WriteFile(p, []byte(doc), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// armedHeartbeat writes cmp1's record as its hostcheck does, aged as given, announcing its
// watchdog and, when pill is set, its acknowledgement.
func armedHeartbeat(t *testing.T, shared string, age time.Duration, pill string) {
	t.Helper()
	if err := writeArmedHeartbeat(shared, age, pill); err != nil {
		t.Fatal(err)
	}
}

func writeArmedHeartbeat(shared string, age time.Duration, pill string) error {
	rec := health.Record{
		Host: "cmp1", Seq: uint64(time.Now().UnixNano()), Time: time.Now().Add(-age), Service: health.ServiceOK,
		Watchdog: &health.RecordWatchdog{TimeoutMS: 2000, SelfFenceAfterMS: 5000},
	}
	if pill != "" {
		rec.Condemned = &health.Condemned{Pill: pill, Since: time.Now()}
	}
	b, err := health.MarshalRecord(rec)
	if err != nil {
		return err
	}
	tmp := filepath.Join(shared, ".cmp1.tmp")
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, filepath.Join(shared, health.RecordFile("cmp1")))
}

// TestFenceGossip runs fence_gossip against a live Pacemaker node: real private attributes
// for the observer's view, real heartbeat and pill files, and pcs.
func TestFenceGossip(t *testing.T) {
	node := startPacemaker(t)
	dir := sharedDir(t)
	shared := filepath.Join(dir, "shared")
	if err := os.Mkdir(shared, 0o755); err != nil {
		t.Fatal(err)
	}
	cfg := selfFenceConfig(t, dir, shared)
	pill := filepath.Join(shared, health.PillFile("cmp1"))
	if r := node.exec(t, time.Minute, "cibadmin", "--create", "-o", "nodes", "-X", `<node id="cmp1" uname="cmp1" type="remote"/>`); r.code != 0 {
		t.Fatalf("adding cmp1: %s", r)
	}
	view := func(t *testing.T, v string) {
		t.Helper()
		if r := node.exec(t, time.Minute, "attrd_updater", "--private", "-n", health.ReachAttribute("mgmt"), "-U", v, "-N", "node1"); r.code != 0 {
			t.Fatalf("attrd_updater: %s", r)
		}
		deadline := time.Now().Add(10 * time.Second)
		for {
			vals, err := node.crmClient().AttributeAllNodes(context.Background(), health.ReachAttribute("mgmt"))
			if err == nil && vals["node1"] == v {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("attrd never held %q: %v %v", v, vals, err)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	agent := func(t *testing.T, action string) run {
		t.Helper()
		return node.exec(t, time.Minute, "fence_gossip", "--action="+action, "--plug=cmp1", "--config="+cfg)
	}

	t.Run("a host silent to the observer and on the storage for longer than the bound is off at once", func(t *testing.T) {
		armedHeartbeat(t, shared, 20*time.Second, "")
		view(t, "cmp1=lost@"+strconv.FormatInt(time.Now().Add(-20*time.Second).UnixMilli(), 10)+" cmp2=ok")
		r := agent(t, "off")
		if r.code != 0 || !strings.Contains(r.stdout, "Success: Powered OFF") || r.elapsed > 5*time.Second {
			t.Fatalf("off: %s", r)
		}
		if _, err := os.Stat(pill); !os.IsNotExist(err) {
			t.Fatalf("the pill is still there after success: %v", err)
		}
	})

	t.Run("a host that acknowledges the pill is off its countdown and the margin later", func(t *testing.T) {
		armedHeartbeat(t, shared, 0, "")
		view(t, "cmp1=ok cmp2=ok")
		// cmp1's hostcheck, played here: it reads its pill, acknowledges it, and goes on
		// writing its heartbeat until its watchdog resets it.
		stop := make(chan struct{})
		acked := make(chan time.Time, 1)
		werr := make(chan error, 1)
		var wg sync.WaitGroup
		wg.Add(1)
		go func() {
			defer wg.Done()
			ack := ""
			for {
				select {
				case <-stop:
					return
				case <-time.After(100 * time.Millisecond):
				}
				if ack == "" {
					b, err := os.ReadFile(pill)
					if err != nil {
						continue
					}
					p, err := health.ParsePill(b)
					if err != nil {
						continue
					}
					ack = p.ID
					acked <- time.Now()
				}
				if err := writeArmedHeartbeat(shared, 0, ack); err != nil {
					werr <- err
					return
				}
			}
		}()
		r := agent(t, "off")
		close(stop)
		wg.Wait()
		select {
		case err := <-werr:
			t.Fatal(err)
		default:
		}
		if r.code != 0 || !strings.Contains(r.stdout, "Success: Powered OFF") {
			t.Fatalf("off: %s", r)
		}
		select {
		case at := <-acked:
			// Only a record written more than the clock skew (2s) after the attempt began counts.
			if took := time.Since(at); took < 4*time.Second {
				t.Fatalf("called off %s after the acknowledgement, before the 2s countdown + 2s margin", took)
			}
		default:
			t.Fatal("called off without an acknowledgement")
		}
	})

	t.Run("a host still reachable that does not acknowledge is refused, saying why; on removes the pill", func(t *testing.T) {
		armedHeartbeat(t, shared, 0, "")
		view(t, "cmp1=ok cmp2=ok")
		r := agent(t, "off")
		if r.code == 0 || !strings.Contains(r.stderr, "did not acknowledge the poison pill") ||
			!strings.Contains(r.stderr, "observer node1 still reaches cmp1 on network mgmt") {
			t.Fatalf("off: %s", r)
		}
		if _, err := os.Stat(pill); err != nil {
			t.Fatalf("the pill of a refused fencing is gone: %v", err)
		}
		if r := node.exec(t, time.Minute, "fence_gossip", "--action=status", "--plug=cmp1", "--config="+cfg); r.code != 2 {
			t.Fatalf("status with a pill in place: %s, want exit 2 (off)", r)
		}
		if r := agent(t, "on"); r.code != 0 {
			t.Fatalf("on: %s", r)
		}
		if _, err := os.Stat(pill); !os.IsNotExist(err) {
			t.Fatalf("on left the pill: %v", err)
		}
	})

	t.Run("pcs -f creates it without --force in the level after the power fence", func(t *testing.T) {
		cib := filepath.Join(dir, "offline-cib.xml")
		if r := node.exec(t, time.Minute, "sh", "-c", "cibadmin --empty > "+cib+
			` && CIB_file=`+cib+` cibadmin --create -o nodes -X '<node id="cmp1" uname="cmp1" type="remote"/>'`); r.code != 0 {
			t.Fatalf("offline CIB: %s", r)
		}
		for _, args := range [][]string{
			{"stonith", "create", "gate", "fence_hostcheck", "config=" + cfg, "pcmk_host_list=cmp1"},
			{"stonith", "create", "fence-cmp1", "fence_dummy", "pcmk_host_list=cmp1"},
			{"stonith", "create", "fence-selfs", "fence_gossip", "config=" + cfg, "pcmk_host_list=cmp1", "pcmk_off_timeout=40s"},
			{"stonith", "level", "add", "1", "cmp1", "gate,fence-cmp1"},
			{"stonith", "level", "add", "2", "cmp1", "gate,fence-selfs"},
		} {
			if r := node.exec(t, time.Minute, append([]string{"pcs", "-f", cib}, args...)...); r.code != 0 {
				t.Errorf("pcs %q: %s", args, r)
			}
		}
		if r := node.exec(t, time.Minute, "pcs", "-f", cib, "stonith", "create", "typo", "fence_gossip", "confg="+cfg); r.code == 0 {
			t.Errorf("pcs accepted a misspelt option: %s", r)
		}
	})
}
