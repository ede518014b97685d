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
	"sync"
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

	// A lab that died without "lab down" (killed, or a machine restarted
	// with /run kept) leaves empty namespaces and no record of them: the
	// next lab takes their place instead of refusing to start.
	prefix := os.Getenv("LAB_PREFIX")
	if prefix == "" {
		prefix = DefaultPrefix
	}
	for _, ns := range []string{prefix + "-fabric", prefix + "-cmp2"} {
		if _, err := os.Stat("/run/netns/" + ns); err == nil {
			continue
		}
		if out, err := exec.Command("ip", "netns", "add", ns).CombinedOutput(); err != nil {
			t.Fatalf("ip netns add %s: %v: %s", ns, err, out)
		}
	}

	upStart := time.Now()
	l, err := Up(ctx, Options{Controllers: 3, Computes: 2, Dir: labDir(t), Bin: os.Getenv("LAB_BIN"), Log: testLog{t}})
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
		for _, n := range nodes {
			if n.Shared != SharedDir {
				t.Errorf("node %s: shared storage at %q, want %q", n.Name, n.Shared, SharedDir)
			}
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
		var holder int
		for _, n := range nodes {
			if n.Name == node {
				holder = n.HolderPID
			}
		}
		// A daemon that restarts another the moment it sees it die (as hostcheck restarts
		// pacemaker-remoted, with a command that also brings the links up): a power-off
		// must leave it no moment to act.
		respawner := `sleep 600 </dev/null >/dev/null 2>&1 & g=$!
setsid bash -c 'while read -r _ _ st _ </proc/$0/stat && [ "$st" != Z ]; do :; done; ip link set mgmt up; exec sleep 600' $g </dev/null >/dev/null 2>&1 &
echo started`
		if out, errOut, code, err := l.Exec(ctx, node, "bash", "-c", respawner); err != nil || code != 0 {
			t.Fatalf("starting the respawner on %s: exit %d, %v: %s%s", node, code, err, out, errOut)
		}
		nodeMntns, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/mnt", holder))
		if err != nil {
			t.Fatal(err)
		}
		t0 := time.Now()
		if _, err := l.Power(ctx, node, "off"); err != nil {
			t.Fatal(err)
		}
		// Off means off, until Pacemaker's reboot a few seconds later: no process of the node
		// but its holder, and its links down.
		for end := time.Now().Add(time.Second); time.Now().Before(end); time.Sleep(100 * time.Millisecond) {
			var left []string
			for _, p := range leftInMntns(t, map[string]string{nodeMntns: node}) {
				if p != fmt.Sprintf("/proc/%d (%s)", holder, node) {
					left = append(left, p)
				}
			}
			if len(left) > 0 {
				t.Fatalf("%s is powered off, but processes of it still run: %v", node, left)
			}
			link, err := exec.CommandContext(ctx, "ip", "-n", l.Prefix()+"-"+node, "-o", "link", "show", "mgmt").Output()
			if err != nil {
				t.Fatal(err)
			}
			if strings.Contains(string(link), ",UP") || strings.Contains(string(link), "<UP") {
				t.Fatalf("%s is powered off, but its management link is up: %s", node, link)
			}
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
		// The reboot mounted the shared storage again.
		mounted := waitShared(ctx, t, l, node, "ctl1", 15*time.Second)
		t.Logf("power off -> shared storage written from %s and read on ctl1 %s", node, mounted.Sub(t0).Round(time.Millisecond))
	})

	t.Run("hostcheck's prober misses only the compute whose tenant link is cut, every round", func(t *testing.T) {
		checkProberOnTheLab(ctx, t, l, "ctl1", "cmp2")
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

	t.Run("lab down leaves no namespace of the lab and no process in a node's mount namespace", func(t *testing.T) {
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
			if strings.HasPrefix(line, l.Prefix()+"-") {
				t.Errorf("namespace left after lab down: %s", strings.TrimSpace(line))
			}
		}
		for _, p := range leftInMntns(t, mntns) {
			t.Errorf("process %s is left after lab down", p)
		}
		// A second down finds nothing to do and succeeds.
		if err := l.Down(ctx); err != nil {
			t.Errorf("second lab down: %v", err)
		}
	})
	t.Logf("the whole test took %s", time.Since(start).Round(time.Millisecond))
}

// TestSharedStorage proves the lab's shared storage: a directory of a
// storage server namespace that every node mounts with sshfs over its
// storage link only. A node cut from the storage network, or every node when
// the server is unreachable, sees its writes fail within seconds (never an
// unbounded hang), the others are unaffected, and all recover when the link
// comes back, including a node that booted while cut off.
func TestSharedStorage(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatal("the lab needs root: it creates namespaces and runs Pacemaker")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	l, err := Up(ctx, Options{Controllers: 2, Computes: 2, Dir: labDir(t), Bin: os.Getenv("LAB_BIN"), Log: testLog{t}})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := l.Down(context.Background()); err != nil {
			t.Error(err)
		}
	}()
	nodes, err := l.Nodes(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	mntns := map[string]string{}
	for _, n := range nodes {
		names = append(names, n.Name)
		if n.Shared != SharedDir {
			t.Errorf("node %s: shared storage at %q, want %q", n.Name, n.Shared, SharedDir)
		}
		id, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/mnt", n.HolderPID))
		if err != nil {
			t.Fatalf("node %s: %v", n.Name, err)
		}
		mntns[id] = n.Name
	}
	if id, err := storageMntns(l); err != nil {
		t.Fatal(err)
	} else {
		mntns[id] = "storage server"
	}

	t.Run("a file written on one node's mount is read on every other node's mount within a second", func(t *testing.T) {
		for _, writer := range []string{"cmp1", "ctl1"} {
			content := fmt.Sprintf("%s %d", writer, time.Now().UnixNano())
			if code, out := writeShared(ctx, l, writer, "seen-"+writer, content, 10*time.Second); code != 0 {
				t.Fatalf("write on %s: exit %d: %s", writer, code, out)
			}
			written := time.Now()
			for _, reader := range names {
				if reader == writer {
					continue
				}
				var last string
				at := waitFor(ctx, t, time.Second, reader+" to read what "+writer+" wrote", func() (bool, error) {
					got, _, code, err := l.Exec(ctx, reader, "timeout", "-s", "KILL", "5", "cat", SharedDir+"/seen-"+writer)
					last = got
					return err == nil && code == 0 && got == content, err
				})
				if last != content {
					t.Errorf("%s read %q, want %q", reader, last, content)
				}
				t.Logf("written on %s, read on %s after %s (includes one lab exec, ~50 ms)", writer, reader, at.Sub(written).Round(time.Millisecond))
			}
		}
	})

	t.Run("a node cut from the storage network sees its writes fail within 5 s while the others still read and write", func(t *testing.T) {
		if err := l.Cut(ctx, "cmp1", "storage"); err != nil {
			t.Fatal(err)
		}
		cut := time.Now()
		failed := waitWriteFails(ctx, t, l, "cmp1", 10*time.Second)
		t.Logf("cut cmp1 storage -> first failed write on cmp1 after %s", failed.Sub(cut).Round(time.Millisecond))
		if d := failed.Sub(cut); d > 8*time.Second {
			t.Errorf("cmp1's write failed only %s after the cut, want about 5 s", d.Round(time.Millisecond))
		}
		for _, n := range []string{"ctl1", "cmp2"} {
			if code, out := writeShared(ctx, l, n, "during-cut-"+n, "ok", 5*time.Second); code != 0 {
				t.Errorf("write on %s while cmp1 is cut: exit %d: %s", n, code, out)
			}
		}
		// The file cmp1 wrote before the cut is still there for the others.
		if _, _, code, err := l.Exec(ctx, "ctl1", "timeout", "-s", "KILL", "5", "cat", SharedDir+"/seen-cmp1"); err != nil || code != 0 {
			t.Errorf("reading cmp1's older file on ctl1: exit %d, error %v", code, err)
		}
	})

	t.Run("healing the storage link lets the node write again within 10 s", func(t *testing.T) {
		if err := l.Heal(ctx, "cmp1", "storage"); err != nil {
			t.Fatal(err)
		}
		healed := time.Now()
		at := waitShared(ctx, t, l, "cmp1", "ctl1", 10*time.Second)
		t.Logf("heal cmp1 storage -> write on cmp1 read on ctl1 after %s", at.Sub(healed).Round(time.Millisecond))
	})

	t.Run("storage down makes every node's writes fail, and storage up makes them work again", func(t *testing.T) {
		if err := l.StorageDown(ctx); err != nil {
			t.Fatal(err)
		}
		down := time.Now()
		if st, err := l.StorageStatus(ctx); err != nil || st != "down" {
			t.Errorf("storage status after storage down: %q, error %v; want down", st, err)
		}
		failed := forEachNode(t, names, func(n string) (time.Time, string, error) { return writeFails(ctx, l, n, 10*time.Second) })
		for _, n := range names {
			t.Logf("storage down -> first failed write on %s after %s", n, failed[n].Sub(down).Round(time.Millisecond))
		}
		if err := l.StorageUp(ctx); err != nil {
			t.Fatal(err)
		}
		up := time.Now()
		if st, err := l.StorageStatus(ctx); err != nil || st != "up" {
			t.Errorf("storage status after storage up: %q, error %v; want up", st, err)
		}
		back := forEachNode(t, names, func(n string) (time.Time, string, error) {
			reader := "ctl1"
			if n == reader {
				reader = "ctl2"
			}
			at, err := sharedWorks(ctx, l, n, reader, 10*time.Second)
			return at, "", err
		})
		for _, n := range names {
			t.Logf("storage up -> write on %s read elsewhere after %s", n, back[n].Sub(up).Round(time.Millisecond))
		}
	})

	t.Run("a node that boots while cut from the storage network mounts the shared storage once healed", func(t *testing.T) {
		const node = "cmp2"
		if err := l.Cut(ctx, node, "storage"); err != nil {
			t.Fatal(err)
		}
		if _, err := l.Power(ctx, node, "off"); err != nil {
			t.Fatal(err)
		}
		// A powered-off node has no mount left (its sshfs died with it).
		if _, _, code, err := l.Exec(ctx, node, "findmnt", "-t", "fuse.sshfs", "--mountpoint", SharedDir); err != nil || code == 0 {
			t.Errorf("findmnt %s on %s after power off: exit %d, error %v; want not mounted", SharedDir, node, code, err)
		}
		// Pacemaker fences it (a reboot): it comes back with its storage
		// link still cut and keeps trying to mount.
		waitFenced(ctx, t, l, node, 0)
		waitRejoined(ctx, t, l, node)
		if code, out := writeShared(ctx, l, node, "while-cut", "x", 10*time.Second); code == 0 {
			t.Errorf("a write on %s succeeded while its storage link is cut: %s", node, out)
		}
		if err := l.Heal(ctx, node, "storage"); err != nil {
			t.Fatal(err)
		}
		healed := time.Now()
		at := waitShared(ctx, t, l, node, "ctl1", 15*time.Second)
		t.Logf("heal %s storage after a boot while cut -> shared storage usable after %s", node, at.Sub(healed).Round(time.Millisecond))
	})

	t.Run("lab down removes the storage server, the mounts and every namespace", func(t *testing.T) {
		if err := l.Down(ctx); err != nil {
			t.Fatal(err)
		}
		out, err := exec.CommandContext(ctx, "ip", "netns", "list").Output()
		if err != nil {
			t.Fatal(err)
		}
		for line := range strings.Lines(string(out)) {
			if strings.HasPrefix(line, l.Prefix()+"-") {
				t.Errorf("namespace left after lab down: %s", strings.TrimSpace(line))
			}
		}
		for _, p := range leftInMntns(t, mntns) {
			t.Errorf("process %s is left after lab down", p)
		}
		mounts, err := os.ReadFile("/proc/self/mountinfo")
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(mounts), l.Dir()+"/storage/shared") {
			t.Errorf("a mount of the shared storage is left in the machine's mount namespace")
		}
	})
}

// labDir is the lab's directory: $LAB_DIR if set (with $LAB_PREFIX, to run
// beside another lab), else a fresh temporary one.
func labDir(t *testing.T) string {
	if d := os.Getenv("LAB_DIR"); d != "" {
		return d
	}
	return filepath.Join(t.TempDir(), "lab")
}

// writeShared writes content to name in the node's shared storage the way a
// heartbeat is written (temporary file, fsync, rename over the old one),
// killed after limit: a write that hangs counts as failed. It returns the
// exit status (137 when killed) and the command's output.
func writeShared(ctx context.Context, l *Lab, node, name, content string, limit time.Duration) (int, string) {
	path := SharedDir + "/" + name
	stdout, stderr, code, err := l.Exec(ctx, node, "timeout", "-s", "KILL", fmt.Sprint(limit.Seconds()),
		"sh", "-c", `printf %s "$1" >"$2.tmp" && sync "$2.tmp" && mv -f "$2.tmp" "$2"`, "sh", content, path)
	if err != nil {
		return -1, err.Error()
	}
	return code, strings.TrimSpace(stdout + stderr)
}

// writeFails writes on node until a write fails (or is killed after 5 s)
// and returns when that attempt ended, with what the failed write said.
func writeFails(ctx context.Context, l *Lab, node string, limit time.Duration) (time.Time, string, error) {
	var code int
	var out string
	at, err := poll(ctx, limit, "a write on "+node+" to fail", func() (bool, error) {
		code, out = writeShared(ctx, l, node, "probe-"+node, "x", 5*time.Second)
		return code != 0, nil
	})
	return at, fmt.Sprintf("exit %d: %s", code, out), err
}

func waitWriteFails(ctx context.Context, t *testing.T, l *Lab, node string, limit time.Duration) time.Time {
	t.Helper()
	at, out, err := writeFails(ctx, l, node, limit)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("failed write on %s: %s", node, out)
	return at
}

// sharedWorks writes a fresh value on node until the write succeeds and
// reader reads that value, and returns when it did.
func sharedWorks(ctx context.Context, l *Lab, node, reader string, limit time.Duration) (time.Time, error) {
	return poll(ctx, limit, node+"'s shared storage to work", func() (bool, error) {
		content := fmt.Sprintf("%s %d", node, time.Now().UnixNano())
		if code, out := writeShared(ctx, l, node, "back-"+node, content, 3*time.Second); code != 0 {
			return false, fmt.Errorf("write on %s: exit %d: %s", node, code, out)
		}
		got, stderr, code, err := l.Exec(ctx, reader, "timeout", "-s", "KILL", "3", "cat", SharedDir+"/back-"+node)
		if err != nil || code != 0 {
			return false, fmt.Errorf("read on %s: exit %d: %v %s", reader, code, err, stderr)
		}
		return got == content, nil
	})
}

func waitShared(ctx context.Context, t *testing.T, l *Lab, node, reader string, limit time.Duration) time.Time {
	t.Helper()
	at, err := sharedWorks(ctx, l, node, reader, limit)
	if err != nil {
		t.Fatal(err)
	}
	return at
}

// forEachNode runs f for every node at once; failures are reported, from
// the test's goroutine, as errors.
func forEachNode(t *testing.T, names []string, f func(node string) (time.Time, string, error)) map[string]time.Time {
	t.Helper()
	var mu sync.Mutex
	var wg sync.WaitGroup
	res := map[string]time.Time{}
	notes := map[string]string{}
	errs := map[string]error{}
	for _, n := range names {
		wg.Go(func() {
			at, note, err := f(n)
			mu.Lock()
			res[n], notes[n], errs[n] = at, note, err
			mu.Unlock()
		})
	}
	wg.Wait()
	for _, n := range names {
		if errs[n] != nil {
			t.Errorf("%s: %v", n, errs[n])
		} else if notes[n] != "" {
			t.Logf("%s: %s", n, notes[n])
		}
	}
	return res
}

// storageMntns is the mount namespace of the lab's storage server (its sshd
// runs in a private one).
func storageMntns(l *Lab) (string, error) {
	data, err := os.ReadFile(filepath.Join(l.Dir(), "storage", "sshd.pid"))
	if err != nil {
		return "", fmt.Errorf("the storage server's pid file: %w", err)
	}
	f := strings.Fields(string(data))
	if len(f) != 2 {
		return "", fmt.Errorf("malformed pid file of the storage server: %q", data)
	}
	id, err := os.Readlink("/proc/" + f[0] + "/ns/mnt")
	if err != nil {
		return "", fmt.Errorf("the storage server's mount namespace: %w", err)
	}
	return id, nil
}

// leftInMntns lists the live processes whose mount namespace is one of
// mntns (namespace id -> what it belonged to).
func leftInMntns(t *testing.T, mntns map[string]string) []string {
	t.Helper()
	procs, err := filepath.Glob("/proc/[0-9]*/ns/mnt")
	if err != nil {
		t.Fatal(err)
	}
	var left []string
	for _, p := range procs {
		id, err := os.Readlink(p)
		if err != nil {
			continue // exited meanwhile
		}
		if owner, ok := mntns[id]; ok && !zombie(filepath.Dir(filepath.Dir(p))) {
			left = append(left, fmt.Sprintf("%s (%s)", filepath.Dir(filepath.Dir(p)), owner))
		}
	}
	return left
}

// waitFor polls cond every 200 ms until it holds and returns when it did.
func waitFor(ctx context.Context, t *testing.T, limit time.Duration, what string, cond func() (bool, error)) time.Time {
	t.Helper()
	at, err := poll(ctx, limit, what, cond)
	if err != nil {
		t.Fatal(err)
	}
	return at
}

// poll is waitFor for goroutines other than the test's: it returns an error
// instead of ending the test.
func poll(ctx context.Context, limit time.Duration, what string, cond func() (bool, error)) (time.Time, error) {
	deadline := time.Now().Add(limit)
	var last error
	for time.Now().Before(deadline) {
		ok, err := cond()
		if ok {
			return time.Now(), nil
		}
		last = err
		select {
		case <-ctx.Done():
			return time.Time{}, fmt.Errorf("waiting for %s: %w", what, ctx.Err())
		case <-time.After(200 * time.Millisecond):
		}
	}
	return time.Time{}, fmt.Errorf("timed out after %s waiting for %s (last error: %w)", limit, what, last)
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
