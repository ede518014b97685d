//go:build integration

package integration

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/computeha/computeha/crm"
)

// crmClient talks to the node's Pacemaker through pcmk.sh exec.
func (n *pcmkNode) crmClient() *crm.Client {
	return crm.NewClient(&crm.Runner{
		Prefix:  []string{filepath.Join(repoRoot, "test", "harness", "pcmk.sh"), "exec", n.dir},
		Timeout: time.Minute,
	})
}

// sharedDir is a directory both the test and the node's alert agent
// (running as hacluster) can reach: /tmp is not private in the node.
func sharedDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	for d := dir; d != "/tmp" && d != "/"; d = filepath.Dir(d) {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// eventTimeout bounds the wait for an event; the tuned paths deliver in
// well under a second.
const eventTimeout = 10 * time.Second

// nextEvent waits for the first event matching match.
func nextEvent(t *testing.T, events <-chan crm.Event, what string, match func(crm.Event) bool) crm.Event {
	t.Helper()
	deadline := time.After(eventTimeout)
	for {
		select {
		case e := <-events:
			t.Logf("event: %s", e)
			if match(e) {
				return e
			}
		case <-deadline:
			t.Fatalf("no %s event within %s", what, eventTimeout)
			return crm.Event{}
		}
	}
}

func TestCRM(t *testing.T) {
	node := startPacemaker(t)
	c := node.crmClient()
	ctx := context.Background()

	t.Run("status, quorum and DC of a live node", func(t *testing.T) {
		st, err := c.Status(ctx)
		if err != nil {
			t.Fatal(err)
		}
		n, ok := st.Node("node1")
		if !ok || !n.Online || !n.IsDC || st.DC != "node1" || !st.Quorate {
			t.Errorf("status: %+v", st)
		}
	})

	t.Run("transient and permanent attributes round-trip", func(t *testing.T) {
		for _, l := range []crm.Lifetime{crm.Transient, crm.Permanent} {
			name := "computeha-test-" + strconv.Itoa(int(l))
			if err := c.SetAttribute(ctx, "node1", name, "v1", l); err != nil {
				t.Fatal(err)
			}
			got, err := c.Attribute(ctx, "node1", name, l)
			if err != nil || got != "v1" {
				t.Errorf("lifetime %d: read %q, %v", l, got, err)
			}
			if err := c.DeleteAttribute(ctx, "node1", name, l); err != nil {
				t.Fatal(err)
			}
			deadline := time.Now().Add(5 * time.Second)
			for {
				_, err = c.Attribute(ctx, "node1", name, l)
				if errors.Is(err, crm.ErrNoSuchObject) || time.Now().After(deadline) {
					break
				}
				time.Sleep(50 * time.Millisecond)
			}
			if !errors.Is(err, crm.ErrNoSuchObject) {
				t.Errorf("lifetime %d: after delete, err = %v, want ErrNoSuchObject", l, err)
			}
			if err := c.DeleteAttribute(ctx, "node1", name, l); err != nil {
				t.Errorf("deleting a missing attribute: %v", err)
			}
		}
		cib, err := c.CIB(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if cib.Version.Epoch == 0 {
			t.Errorf("CIB version %v", cib.Version)
		}
		v, err := c.Version(ctx)
		if err != nil || v.Less(cib.Version) {
			t.Errorf("version %v after %v: %v", v, cib.Version, err)
		}
	})

	t.Run("standby and maintenance show in the status", func(t *testing.T) {
		if err := c.SetStandby(ctx, "node1", true); err != nil {
			t.Fatal(err)
		}
		if err := c.SetMaintenance(ctx, "node1", true); err != nil {
			t.Fatal(err)
		}
		st, err := c.Status(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if n, _ := st.Node("node1"); !n.Standby || !n.Maintenance {
			t.Errorf("node1: %+v", n)
		}
		if err := c.SetStandby(ctx, "node1", false); err != nil {
			t.Fatal(err)
		}
		if err := c.SetMaintenance(ctx, "node1", false); err != nil {
			t.Fatal(err)
		}
		st, _ = c.Status(ctx)
		if n, _ := st.Node("node1"); n.Standby || n.Maintenance {
			t.Errorf("node1 after clearing: %+v", n)
		}
	})

	t.Run("a tool that cannot reach the cluster is ErrNotConnected", func(t *testing.T) {
		// A fresh, empty network namespace has no cluster daemons (their
		// IPC sockets are abstract, so per namespace).
		dead := crm.NewClient(&crm.Runner{Prefix: []string{"unshare", "--net"}, Timeout: 20 * time.Second})
		if _, err := dead.CIB(ctx); !errors.Is(err, crm.ErrNotConnected) {
			t.Errorf("cibadmin: err = %v, want ErrNotConnected", err)
		}
		_, err := dead.Status(ctx)
		if !errors.Is(err, crm.ErrNotConnected) {
			t.Errorf("crm_mon: err = %v, want ErrNotConnected", err)
		}
		t.Logf("error: %v", err)
	})

	t.Run("watch reports attribute changes and fencing through alerts, and resumes after a restart", func(t *testing.T) {
		dir := sharedDir(t)
		sock := filepath.Join(dir, "alert.sock")
		state := filepath.Join(dir, "watch.json")
		if err := c.EnsureAlert(ctx, crm.AlertConfig{ID: "computeha", Path: "/usr/sbin/computeha_alert", Recipient: sock}); err != nil {
			t.Fatal(err)
		}
		if err := c.EnsureAlert(ctx, crm.AlertConfig{ID: "computeha", Path: "/usr/sbin/computeha_alert", Recipient: sock}); err != nil {
			t.Fatalf("registering again: %v", err)
		}
		cib, err := c.CIB(ctx)
		if err != nil || len(cib.Alerts) != 1 || cib.Alerts[0].Recipients[0] != sock {
			t.Fatalf("alerts in the CIB: %+v (%v)", cib.Alerts, err)
		}

		b := startBMC(t, "compute1", node.netns)
		pw := filepath.Join(dir, "pw")
		if err := os.WriteFile(pw, []byte(bmcPassword+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		if r := node.exec(t, time.Minute, "pcs", "stonith", "create", "ipmi-watch", "fence_ipmi", "ip=127.0.0.1",
			"ipport="+strconv.Itoa(b.port), "username=admin", "password_script=cat "+pw, "lanplus=1", "cipher=3",
			"pcmk_host_list=compute1"); r.code != 0 {
			t.Fatalf("pcs stonith create: %s", r)
		}

		run := func() (chan crm.Event, context.CancelFunc, chan error) {
			w := crm.NewWatcher(c, crm.WatchOptions{Socket: sock, StateFile: state, PollInterval: time.Second})
			if err := w.Listen(); err != nil {
				t.Fatal(err)
			}
			wctx, cancel := context.WithCancel(ctx)
			events := make(chan crm.Event, 100)
			done := make(chan error, 1)
			go func() { done <- w.Run(wctx, events) }()
			return events, cancel, done
		}
		events, stop, done := run()
		time.Sleep(1500 * time.Millisecond) // let the first snapshot seed the state

		start := time.Now()
		if err := c.SetAttribute(ctx, "node1", "computeha-evacuate", "pending", crm.Transient); err != nil {
			t.Fatal(err)
		}
		e := nextEvent(t, events, "attribute", func(e crm.Event) bool {
			return e.Kind == crm.AttributeChanged && e.Name == "computeha-evacuate" && e.Value == "pending"
		})
		t.Logf("attribute change reported after %s through %s", time.Since(start).Round(time.Millisecond), e.Source)
		if e.Source != crm.SourceAlert {
			t.Errorf("attribute change came through %s, want the alert path", e.Source)
		}

		if err := c.Fence(ctx, "compute1", crm.FenceReboot, 30*time.Second); err != nil {
			t.Fatal(err)
		}
		e = nextEvent(t, events, "fenced", func(e crm.Event) bool { return e.Kind == crm.NodeFenced && e.Node == "compute1" })
		if !e.OK || e.Action != "reboot" || e.Source != crm.SourceAlert {
			t.Errorf("fenced event %+v", e)
		}

		// Watcher down: Pacemaker's alerts must neither hang nor be lost.
		stop()
		<-done
		start = time.Now()
		if err := c.SetAttribute(ctx, "node1", "computeha-evacuate", "running", crm.Transient); err != nil {
			t.Fatal(err)
		}
		if err := c.Fence(ctx, "compute1", crm.FenceOff, 30*time.Second); err != nil {
			t.Fatal(err)
		}
		if d := time.Since(start); d > 10*time.Second {
			t.Errorf("with the watcher down, an attribute change and a fencing took %s", d)
		}
		deadline := time.Now().Add(10 * time.Second)
		for {
			spooled, _ := filepath.Glob(filepath.Join(crm.SpoolDir(sock), "*.json"))
			if len(spooled) >= 2 || time.Now().After(deadline) {
				t.Logf("%d alerts spooled while the watcher was down", len(spooled))
				break
			}
			time.Sleep(100 * time.Millisecond)
		}

		events, stop, done = run()
		defer func() { stop(); <-done }()
		nextEvent(t, events, "attribute after restart", func(e crm.Event) bool {
			return e.Kind == crm.AttributeChanged && e.Value == "running"
		})
		e = nextEvent(t, events, "fenced after restart", func(e crm.Event) bool {
			return e.Kind == crm.NodeFenced && e.Action == "off"
		})
		if e.Source == crm.SourceAlert {
			t.Errorf("the fencing done while the watcher was down came through %s", e.Source)
		}
		if got := b.power(t); got != "off" {
			t.Errorf("compute1's BMC reports %s after the off", got)
		}

		// No duplicates: the replayed changes are not reported again by
		// the poll that follows.
		deadlineDup := time.After(3 * time.Second)
		for {
			select {
			case e := <-events:
				if (e.Kind == crm.NodeFenced && e.Node == "compute1") || (e.Kind == crm.AttributeChanged && e.Name == "computeha-evacuate") {
					t.Errorf("duplicate event %s", e)
				}
				continue
			case <-deadlineDup:
			}
			break
		}
	})

	t.Run("a manual confirmation is a successful fencing in Pacemaker's history", func(t *testing.T) {
		// No fence device targets compute-confirm: --confirm runs none, it only
		// records the node as safely down.
		start := time.Now().Add(-time.Second)
		if err := c.ConfirmFenced(ctx, "compute-confirm"); err != nil {
			t.Fatal(err)
		}
		evs, err := c.FencingHistory(ctx, "compute-confirm")
		if err != nil {
			t.Fatal(err)
		}
		if len(evs) == 0 || !evs[0].Succeeded() || evs[0].Target != "compute-confirm" || evs[0].Completed.Before(start) {
			t.Errorf("fencing history after the confirmation: %+v", evs)
		}
		if err := c.ConfirmFenced(ctx, ""); err == nil {
			t.Errorf("confirming an empty node name succeeded")
		}
	})

	t.Run("the poll path alone reports attribute changes", func(t *testing.T) {
		w := crm.NewWatcher(c, crm.WatchOptions{PollInterval: 500 * time.Millisecond})
		wctx, cancel := context.WithCancel(ctx)
		events := make(chan crm.Event, 100)
		done := make(chan error, 1)
		go func() { done <- w.Run(wctx, events) }()
		defer func() { cancel(); <-done }()
		time.Sleep(time.Second)
		if err := c.SetAttribute(ctx, "node1", "computeha-polled", "yes", crm.Transient); err != nil {
			t.Fatal(err)
		}
		e := nextEvent(t, events, "polled attribute", func(e crm.Event) bool { return e.Name == "computeha-polled" })
		if e.Source != crm.SourcePoll {
			t.Errorf("source %s, want poll", e.Source)
		}
	})
}
