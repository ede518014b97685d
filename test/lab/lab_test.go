//go:build lab

package lab

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// TestLab proves the lab against the real parts: it brings up 3 controllers
// and 2 computes, checks the cluster and the BMCs, fails computes the way a
// host fails (power loss through the BMC, a cut management network) and
// checks that Pacemaker fences them through fence_ipmi, then checks that
// "lab down" leaves nothing behind. Needs root and Debian 12.
func TestLab(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatal("the lab needs root: it creates namespaces and runs Pacemaker")
	}
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()

	dir := filepath.Join(t.TempDir(), "lab")
	upStart := time.Now()
	l, err := Up(ctx, Options{Controllers: 3, Computes: 2, Dir: dir, Bin: os.Getenv("LAB_BIN"), Log: testLog{t}})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("lab up (3 controllers, 2 computes) in %s", time.Since(upStart).Round(time.Millisecond))
	down := func() {
		if err := l.Down(context.Background()); err != nil {
			t.Error(err)
		}
	}
	defer down()

	nodes, err := l.Nodes(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// Mount namespaces of the nodes, to check later that none has a process left.
	mntns := map[string]string{}
	for _, n := range nodes {
		id, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/mnt", n.HolderPID))
		if err != nil {
			t.Fatalf("node %s: %v", n.Name, err)
		}
		mntns[id] = n.Name
	}

	t.Run("every node is online in crm_mon and every BMC reports power on", func(t *testing.T) {
		var names []string
		for _, n := range nodes {
			names = append(names, n.Name+" "+n.Kind)
		}
		want := []string{"ctl1 controller", "ctl2 controller", "ctl3 controller", "cmp1 compute", "cmp2 compute"}
		if diff := cmp.Diff(want, names); diff != "" {
			t.Errorf("lab nodes (-want +got):\n%s", diff)
		}
		st, err := l.ClusterState(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, n := range nodes {
			ns, ok := st.Node(n.Name)
			if !ok || !ns.Online || ns.Unclean || ns.Pending {
				t.Errorf("node %s in crm_mon: %+v (listed: %t), want online", n.Name, ns, ok)
			}
			dev, ok := st.Resource("fence-" + n.Name)
			if !ok || dev.Role != "Started" || dev.Agent != "stonith:fence_ipmi" {
				t.Errorf("stonith device of %s: %+v, want a started stonith:fence_ipmi", n.Name, dev)
			}
			if p, err := l.Power(ctx, n.Name, "status"); err != nil || p != "on" {
				t.Errorf("BMC of %s: power %q, error %v; want on", n.Name, p, err)
			}
		}
	})

	t.Run("a compute powered off through its BMC is seen lost, fenced with a reboot and rejoins", func(t *testing.T) {
		const node = "cmp1"
		t0 := time.Now()
		if _, err := l.Power(ctx, node, "off"); err != nil {
			t.Fatal(err)
		}
		lost := waitFor(ctx, t, 30*time.Second, "Pacemaker to see "+node+" lost", func() (bool, error) {
			st, err := l.ClusterState(ctx)
			if err != nil {
				return false, err
			}
			ns, _ := st.Node(node)
			return !ns.Online || ns.Unclean, nil
		})
		fenced := waitFenced(ctx, t, l, node, 0)
		t.Logf("power off -> seen lost %s, fenced %s", lost.Sub(t0).Round(time.Millisecond), fenced.Sub(t0).Round(time.Millisecond))
		// Pacemaker's default fencing action is reboot: fence_ipmi confirms
		// the host off (it already is, so no second "off"), then powers it on.
		evs, err := l.BMCEvents(node)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff([]string{"off", "on"}, evs); diff != "" {
			t.Errorf("BMC power changes (-want +got):\n%s", diff)
		}
		if p, err := l.Power(ctx, node, "status"); err != nil || p != "on" {
			t.Errorf("BMC of %s after the reboot: power %q, error %v; want on", node, p, err)
		}
		back := waitRejoined(ctx, t, l, node)
		t.Logf("power off -> rejoined online %s", back.Sub(t0).Round(time.Millisecond))
	})

	t.Run("a compute whose management network is cut is fenced, and rejoins once healed", func(t *testing.T) {
		const node = "cmp2"
		before, err := l.FenceHistory(ctx, node)
		if err != nil {
			t.Fatal(err)
		}
		t0 := time.Now()
		if err := l.Cut(ctx, node, "mgmt"); err != nil {
			t.Fatal(err)
		}
		fenced := waitFenced(ctx, t, l, node, len(before))
		t.Logf("cut mgmt -> fenced %s (remote node; monitor interval 1s, timeout 3s)", fenced.Sub(t0).Round(time.Millisecond))
		evs, err := l.BMCEvents(node)
		if err != nil {
			t.Fatal(err)
		}
		// The host was on: a reboot is a real off, then on.
		if diff := cmp.Diff([]string{"off", "on"}, evs); diff != "" {
			t.Errorf("BMC power changes (-want +got):\n%s", diff)
		}
		// Rebooted, but still cut off: it must not come back online.
		time.Sleep(2 * time.Second)
		st, err := l.ClusterState(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if r, _ := st.Resource(node); r.Role == "Started" {
			t.Errorf("the connection to %s is started while its management network is cut: %+v", node, r)
		}
		healed := time.Now()
		if err := l.Heal(ctx, node, "mgmt"); err != nil {
			t.Fatal(err)
		}
		back := waitRejoined(ctx, t, l, node)
		t.Logf("heal -> rejoined online %s", back.Sub(healed).Round(time.Millisecond))
	})

	t.Run("lab down leaves no chalab namespace and no process in a node's mount namespace", func(t *testing.T) {
		downStart := time.Now()
		if err := l.Down(ctx); err != nil {
			t.Fatal(err)
		}
		t.Logf("lab down in %s", time.Since(downStart).Round(time.Millisecond))
		out, err := exec.CommandContext(ctx, "ip", "netns", "list").Output()
		if err != nil {
			t.Fatal(err)
		}
		for line := range strings.Lines(string(out)) {
			if strings.HasPrefix(line, "chalab-") {
				t.Errorf("namespace left after lab down: %s", strings.TrimSpace(line))
			}
		}
		procs, err := filepath.Glob("/proc/[0-9]*/ns/mnt")
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range procs {
			id, err := os.Readlink(p)
			if err != nil {
				continue // exited meanwhile
			}
			if node, ok := mntns[id]; ok && !zombie(filepath.Dir(filepath.Dir(p))) {
				t.Errorf("process %s of node %s is left after lab down", p, node)
			}
		}
		// A second down finds nothing to do and succeeds.
		if err := l.Down(ctx); err != nil {
			t.Errorf("second lab down: %v", err)
		}
	})
	t.Logf("the whole test took %s", time.Since(start).Round(time.Millisecond))
}

// waitFor polls cond every 200 ms until it holds and returns when it did.
func waitFor(ctx context.Context, t *testing.T, limit time.Duration, what string, cond func() (bool, error)) time.Time {
	t.Helper()
	deadline := time.Now().Add(limit)
	var last error
	for time.Now().Before(deadline) {
		ok, err := cond()
		if ok {
			return time.Now()
		}
		last = err
		select {
		case <-ctx.Done():
			t.Fatalf("waiting for %s: %v", what, ctx.Err())
		case <-time.After(200 * time.Millisecond):
		}
	}
	t.Fatalf("timed out after %s waiting for %s (last error: %v)", limit, what, last)
	return time.Time{}
}

// waitFenced waits for a successful fencing of node beyond the first skip
// events of its history and returns when it was seen.
func waitFenced(ctx context.Context, t *testing.T, l *Lab, node string, skip int) time.Time {
	t.Helper()
	var hist []FenceEvent
	at := waitFor(ctx, t, 60*time.Second, "a successful fencing of "+node, func() (bool, error) {
		h, err := l.FenceHistory(ctx, node)
		if err != nil {
			return false, err
		}
		hist = h
		return len(h) > skip && slices.ContainsFunc(h, func(e FenceEvent) bool {
			return e.Target == node && e.Status == "success"
		}), nil
	})
	for _, e := range hist {
		t.Logf("fencing history of %s: %s %s by %s at %s", node, e.Action, e.Status, e.Delegate, e.Completed)
	}
	return at
}

// waitRejoined waits until node is online and its connection resource is
// started (crm_mon lists a remote node online while its connection is
// still starting).
func waitRejoined(ctx context.Context, t *testing.T, l *Lab, node string) time.Time {
	t.Helper()
	return waitFor(ctx, t, 60*time.Second, node+" to rejoin", func() (bool, error) {
		st, err := l.ClusterState(ctx)
		if err != nil {
			return false, err
		}
		ns, _ := st.Node(node)
		r, _ := st.Resource(node)
		return ns.Online && !ns.Unclean && r.Role == "Started" && !r.Failed, nil
	})
}

func zombie(procDir string) bool {
	data, err := os.ReadFile(filepath.Join(procDir, "stat"))
	if err != nil {
		return true
	}
	s := string(data)
	i := strings.LastIndexByte(s, ')')
	return i < 0 || len(s) < i+3 || s[i+2] == 'Z' || s[i+2] == 'X'
}

// testLog sends the script's progress to the test log.
type testLog struct{ t *testing.T }

func (w testLog) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}
