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

	"github.com/computeha/computeha/internal/health"
)

// gateConfig writes a configuration whose health section judges cmp1 (a compute Pacemaker
// knows as a remote node), cmp2 (a peer known only from reachability and heartbeats) and
// node1 (the test node), with heartbeats in sharedDir.
func gateConfig(t *testing.T, dir, shared string) string {
	t.Helper()
	p := filepath.Join(dir, fmt.Sprintf("evacd-%d.yaml", time.Now().UnixNano()))
	doc := fmt.Sprintf(`cloud: nowhere
segments:
  seg-a:
    hosts: [cmp1, cmp2]
health:
  shared_dir: %s
  decide: 3s
  confirm: 1s
  networks:
    - {name: mgmt, management: true}
    - {name: storage}
  hosts:
    cmp1: {mgmt: 192.0.2.11, storage: 198.51.100.11}
    cmp2: {mgmt: 192.0.2.12, storage: 198.51.100.12}
    node1: {mgmt: 192.0.2.1, storage: 198.51.100.1}
`, shared)
	if err := os.WriteFile(p, []byte(doc), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// heartbeats writes each host's record, as hostcheck does (temp file, then rename), aged as
// given: 0 is fresh, a minute is long stale.
func heartbeats(t *testing.T, shared string, ages map[string]time.Duration) {
	t.Helper()
	for host, age := range ages {
		b, err := health.MarshalRecord(health.Record{Host: host, Seq: 1, Time: time.Now().Add(-age), Service: health.ServiceOK})
		if err != nil {
			t.Fatal(err)
		}
		tmp := filepath.Join(shared, "."+host+".tmp")
		if err := os.WriteFile(tmp, b, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, filepath.Join(shared, health.RecordFile(host))); err != nil {
			t.Fatal(err)
		}
	}
}

// TestFenceHostcheck runs the gate against a live Pacemaker node, with evidence built from
// real private node attributes (attrd_updater --private) and heartbeat files, and then inside a fencing
// topology level in front of fence_dummy, through Pacemaker's fencer.
func TestFenceHostcheck(t *testing.T) {
	node := startPacemaker(t)
	dir := sharedDir(t)
	shared := filepath.Join(dir, "shared")
	if err := os.Mkdir(shared, 0o755); err != nil {
		t.Fatal(err)
	}
	cfg := gateConfig(t, dir, shared)
	ctx := context.Background()

	// cmp1 is a remote node without a connection: crm_mon lists it offline.
	if r := node.exec(t, time.Minute, "cibadmin", "--create", "-o", "nodes", "-X", `<node id="cmp1" uname="cmp1" type="remote"/>`); r.code != 0 {
		t.Fatalf("adding cmp1: %s", r)
	}
	// node1, the one online observer, has lost cmp1 on both networks and still reaches
	// cmp2, so its report counts. hostcheck publishes it as a private attribute: held by
	// attrd, never written to the CIB.
	for _, net := range []string{"mgmt", "storage"} {
		if r := node.exec(t, time.Minute, "attrd_updater", "--private", "-n", health.ReachAttribute(net), "-U", "cmp1=lost cmp2=ok", "-N", "node1"); r.code != 0 {
			t.Fatalf("attrd_updater: %s", r)
		}
	}
	c := node.crmClient()
	deadline := time.Now().Add(10 * time.Second)
	for {
		vals, err := c.AttributeAllNodes(ctx, health.ReachAttribute("storage"))
		if err != nil {
			t.Fatal(err)
		}
		if vals["node1"] != "" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("attrd never held the reachability attributes: %v", vals)
		}
		time.Sleep(50 * time.Millisecond)
	}
	cib, err := c.CIB(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if ns, _ := cib.NodeState("node1"); ns.Transient[health.ReachAttribute("mgmt")] != "" || ns.Transient[health.ReachAttribute("storage")] != "" {
		t.Fatalf("private attributes were written to the CIB: %v", ns.Transient)
	}
	st, err := c.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if n, ok := st.Node("cmp1"); !ok || n.Online {
		t.Fatalf("cmp1 should be a known, offline node: %+v (known %v)", n, ok)
	}

	gate := func(t *testing.T, action, config string) run {
		t.Helper()
		return node.exec(t, time.Minute, "fence_hostcheck", "--action="+action, "--plug=cmp1", "--config="+config)
	}

	t.Run("a dead host is let through once the decision held for confirm", func(t *testing.T) {
		heartbeats(t, shared, map[string]time.Duration{"cmp1": time.Minute, "cmp2": 0, "node1": 0})
		r := gate(t, "off", cfg)
		if r.code != 0 || r.stdout != "Success: Powered OFF\n" {
			t.Fatalf("want exit 0 and Success: %s", r)
		}
		if r.elapsed < time.Second || r.elapsed > 2500*time.Millisecond {
			t.Errorf("allowed after %s, want after confirm (1s) and well before decide (3s)", r.elapsed)
		}
		t.Logf("dead host allowed in %s", r.elapsed.Round(time.Millisecond))
	})

	t.Run("an isolated host is refused at the decide deadline, naming its state", func(t *testing.T) {
		heartbeats(t, shared, map[string]time.Duration{"cmp1": 0, "cmp2": 0, "node1": 0})
		r := gate(t, "reboot", cfg)
		if r.code != 1 || !strings.Contains(r.stderr, "refusing to fence cmp1 after 3") ||
			!strings.Contains(r.stderr, "cmp1 is isolated") || !strings.Contains(r.stderr, "storage heartbeat ok") {
			t.Fatalf("want exit 1 naming isolation: %s", r)
		}
		if r.elapsed < 3*time.Second || r.elapsed > 5*time.Second {
			t.Errorf("refused after %s, want at decide (3s)", r.elapsed)
		}
	})

	t.Run("storage down for everyone is refused: nobody is dead because of it", func(t *testing.T) {
		heartbeats(t, shared, map[string]time.Duration{"cmp1": time.Minute, "cmp2": time.Minute, "node1": time.Minute})
		r := gate(t, "off", cfg)
		if r.code != 1 || !strings.Contains(r.stderr, "cmp1 is undecided") || !strings.Contains(r.stderr, "storage heartbeat unknown") {
			t.Fatalf("want exit 1, undecided with the storage unknown: %s", r)
		}
	})

	t.Run("a shared directory that is not there is refused, and said so", func(t *testing.T) {
		r := gate(t, "off", gateConfig(t, dir, filepath.Join(dir, "not-mounted")))
		if r.code != 1 || !strings.Contains(r.stderr, "storage heartbeats unreadable") || !strings.Contains(r.stderr, "cmp1 is undecided") {
			t.Fatalf("want exit 1 with the unreadable storage named: %s", r)
		}
	})

	t.Run("a cluster that does not answer is refused, and said so", func(t *testing.T) {
		// A fresh network namespace has no cluster daemons: the crm tools cannot connect.
		r := execute(t, time.Minute, "", "unshare", "--net", agentPath("fence_hostcheck"), "--action=off", "--plug=cmp1", "--config="+cfg)
		if r.code != 1 || !strings.Contains(r.stderr, "refusing to fence cmp1: the evidence could not be gathered") {
			t.Fatalf("want exit 1 with the evidence unreachable: %s", r)
		}
	})

	t.Run("on, status, monitor, list and validate-all", func(t *testing.T) {
		for _, tc := range []struct {
			args       []string
			wantStdout string
		}{
			{[]string{"--action=on", "--plug=cmp1"}, "Success: Already ON\n"},
			{[]string{"--action=status", "--plug=cmp1"}, "Status: ON\n"},
			{[]string{"--action=monitor"}, ""},
			{[]string{"--action=list"}, "cmp1,\ncmp2,\nnode1,\n"},
			{[]string{"--action=validate-all", "--plug=cmp1"}, ""},
		} {
			r := node.exec(t, time.Minute, append([]string{"fence_hostcheck", "--config=" + cfg}, tc.args...)...)
			if r.code != 0 || r.stdout != tc.wantStdout {
				t.Errorf("%q: want exit 0 and %q: %s", tc.args, tc.wantStdout, r)
			}
		}
		r := execute(t, time.Minute, "", "unshare", "--net", agentPath("fence_hostcheck"), "--action=monitor", "--config="+cfg)
		if r.code != 1 {
			t.Errorf("monitor without a cluster: want exit 1: %s", r)
		}
	})

	t.Run("pcs -f creates the gate without --force and puts it first in a level", func(t *testing.T) {
		cib := filepath.Join(dir, "offline-cib.xml")
		if r := node.exec(t, time.Minute, "sh", "-c", "cibadmin --empty > "+cib+
			` && CIB_file=`+cib+` cibadmin --create -o nodes -X '<node id="cmp1" uname="cmp1" type="remote"/>'`); r.code != 0 {
			t.Fatalf("offline CIB: %s", r)
		}
		for _, args := range [][]string{
			{"stonith", "create", "gate", "fence_hostcheck", "config=" + cfg, "pcmk_host_list=cmp1"},
			{"stonith", "create", "fence-cmp1", "fence_dummy", "pcmk_host_list=cmp1"},
			{"stonith", "level", "add", "1", "cmp1", "gate,fence-cmp1"},
			{"stonith", "level", "add", "2", "cmp1", "gate", "fence-cmp1"},
		} {
			if r := node.exec(t, time.Minute, append([]string{"pcs", "-f", cib}, args...)...); r.code != 0 {
				t.Errorf("pcs %q: %s", args, r)
			}
		}
		r := node.exec(t, time.Minute, "pcs", "-f", cib, "stonith", "create", "typo", "fence_hostcheck", "confg="+cfg)
		if r.code == 0 || !strings.Contains(r.stderr+r.stdout, "confg") {
			t.Errorf("pcs accepted a misspelt option: %s", r)
		}
		data, err := os.ReadFile(cib)
		if err != nil {
			t.Fatal(err)
		}
		for _, want := range []string{`type="fence_hostcheck"`, `devices="gate,fence-cmp1"`, `name="config" value="` + cfg + `"`} {
			if !strings.Contains(string(data), want) {
				t.Errorf("the CIB lacks %s", want)
			}
		}
	})

	t.Run("in a topology level, Pacemaker's fencer runs the next device only when the gate allows it", func(t *testing.T) {
		// fence_dummy records its power state in a file: "off" once it has fenced.
		dummy := filepath.Join(dir, "cmp1.power")
		if err := os.WriteFile(dummy, []byte("on"), 0o644); err != nil {
			t.Fatal(err)
		}
		for _, args := range [][]string{
			{"stonith", "create", "gate", "fence_hostcheck", "config=" + cfg, "pcmk_host_list=cmp1"},
			{"stonith", "create", "fence-cmp1", "fence_dummy", "type=file", "status_file=" + dummy, "pcmk_host_list=cmp1"},
			{"stonith", "level", "add", "1", "cmp1", "gate", "fence-cmp1"},
		} {
			if r := node.exec(t, time.Minute, append([]string{"pcs"}, args...)...); r.code != 0 {
				t.Fatalf("pcs %q: %s", args, r)
			}
		}
		// Both devices started (fence_dummy's monitor reads the file).
		deadline := time.Now().Add(30 * time.Second)
		for {
			st, err := c.Status(ctx)
			if err != nil {
				t.Fatal(err)
			}
			started := 0
			for _, rsc := range st.Resources {
				if (rsc.ID == "gate" || rsc.ID == "fence-cmp1") && rsc.Active && !rsc.Failed {
					started++
				}
			}
			if started == 2 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("the devices did not start: %+v", st.Resources)
			}
			time.Sleep(200 * time.Millisecond)
		}
		power := func() string {
			b, err := os.ReadFile(dummy)
			if err != nil {
				t.Fatal(err)
			}
			return string(b)
		}

		heartbeats(t, shared, map[string]time.Duration{"cmp1": 0, "cmp2": 0, "node1": 0})
		start := time.Now()
		if r := node.exec(t, time.Minute, "stonith_admin", "--fence", "cmp1", "--timeout", "30"); r.code == 0 {
			t.Errorf("an isolated cmp1 was fenced: %s", r)
		}
		t.Logf("isolated: fencing refused after %s", time.Since(start).Round(time.Millisecond))
		if got := power(); got != "on" {
			t.Errorf("fence_dummy ran behind a refusing gate: power %q", got)
		}

		heartbeats(t, shared, map[string]time.Duration{"cmp1": time.Minute, "cmp2": 0, "node1": 0})
		start = time.Now()
		if r := node.exec(t, time.Minute, "stonith_admin", "--fence", "cmp1", "--timeout", "30"); r.code != 0 {
			t.Fatalf("a dead cmp1 was not fenced: %s", r)
		}
		t.Logf("dead: fenced through the level in %s", time.Since(start).Round(time.Millisecond))
		if got := power(); got != "off" {
			t.Errorf("fence_dummy's power is %q after the level succeeded, want off", got)
		}
	})
}
