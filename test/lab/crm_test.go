//go:build lab

package lab

import (
	"bytes"
	"context"
	"flag"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/computeha/computeha/crm"
)

var capture = flag.Bool("capture", false, "write the crm_mon XML of each state into crm/testdata/ (the decoders' fixtures)")

// crmOn is a crm client whose tools run on a controller of the lab.
func crmOn(l *Lab, node string) *crm.Client {
	return crm.NewClient(&crm.Runner{Prefix: []string{l.script, "exec", "--dir", l.dir, node}, Timeout: time.Minute})
}

// fixture decodes a live crm_mon snapshot (and keeps it as a fixture with
// -capture), returning the decoded status.
func fixture(ctx context.Context, t *testing.T, c *crm.Client, name string) *crm.Status {
	t.Helper()
	out, err := c.Runner.Run(ctx, "crm_mon", "--one-shot", "--output-as=xml", "--include=all")
	if err != nil {
		t.Fatalf("crm_mon for %s: %v", name, err)
	}
	return keep(t, out, name)
}

// keep decodes a crm_mon snapshot, and keeps it as a fixture with -capture.
func keep(t *testing.T, out []byte, name string) *crm.Status {
	t.Helper()
	st, err := crm.DecodeStatus(bytes.NewReader(out))
	if err != nil {
		t.Fatalf("decoding %s: %v", name, err)
	}
	if *capture {
		_, file, _, _ := runtime.Caller(0)
		path := filepath.Join(filepath.Dir(file), "..", "..", "crm", "testdata", "crm_mon-lab-"+name+".xml")
		if err := os.WriteFile(path, out, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("captured %s", path)
	}
	return st
}

// wait polls the decoded status until cond holds.
func wait(ctx context.Context, t *testing.T, c *crm.Client, limit time.Duration, what string, cond func(*crm.Status) bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for {
		st, err := c.Status(ctx)
		if err == nil && cond(st) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s (last error %v)", what, limit, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func node(st *crm.Status, name string) crm.Node {
	n, _ := st.Node(name)
	return n
}

// rejoined is "online again", which crm_mon claims for a remote node
// before its connection resource is started again.
func rejoined(st *crm.Status, name string) bool {
	n, ok := st.Node(name)
	if !ok || !n.Online || n.Unclean {
		return false
	}
	if n.Type != crm.NodeRemote {
		return true
	}
	for _, r := range st.Resources {
		if r.ID == name {
			return r.Role == "Started" && !r.Failed
		}
	}
	return false
}

// TestCRMOnTheLab checks the crm package against a real multi-node cluster
// with pacemaker-remote computes: decoding of every state computeha reacts
// to, attributes of remote nodes, and Watch reporting a cut compute as lost
// then fenced, and healed as joined, through the alert agent on every
// controller.
func TestCRMOnTheLab(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatal("the lab needs root")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	l, err := Up(ctx, Options{Controllers: 3, Computes: 2, Dir: filepath.Join(t.TempDir(), "lab"), Bin: os.Getenv("LAB_BIN"), Log: testLog{t}})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := l.Down(context.Background()); err != nil {
			t.Error(err)
		}
	}()
	c := crmOn(l, "ctl1")

	t.Run("every state decodes as it is", func(t *testing.T) {
		st := fixture(ctx, t, c, "settled")
		if len(st.Nodes) != 5 || !st.Quorate || st.DC == "" {
			t.Errorf("settled: %d nodes, quorate %v, DC %q", len(st.Nodes), st.Quorate, st.DC)
		}
		for _, n := range st.Nodes {
			wantType := crm.NodeMember
			if strings.HasPrefix(n.Name, "cmp") {
				wantType = crm.NodeRemote
			}
			if !n.Online || n.Unclean || n.Type != wantType {
				t.Errorf("settled: %+v", n)
			}
		}

		if err := c.SetStandby(ctx, "cmp1", true); err != nil {
			t.Fatal(err)
		}
		wait(ctx, t, c, 20*time.Second, "cmp1 in standby", func(st *crm.Status) bool { return node(st, "cmp1").Standby })
		fixture(ctx, t, c, "remote-standby")
		if err := c.SetStandby(ctx, "cmp1", false); err != nil {
			t.Fatal(err)
		}
		if err := c.SetMaintenance(ctx, "cmp1", true); err != nil {
			t.Fatal(err)
		}
		wait(ctx, t, c, 20*time.Second, "cmp1 in maintenance", func(st *crm.Status) bool { return node(st, "cmp1").Maintenance })
		fixture(ctx, t, c, "remote-maintenance")
		if err := c.SetMaintenance(ctx, "cmp1", false); err != nil {
			t.Fatal(err)
		}

		// A lost remote node is unclean until its fencing completes.
		if err := l.Cut(ctx, "cmp2", "mgmt"); err != nil {
			t.Fatal(err)
		}
		wait(ctx, t, c, 20*time.Second, "cmp2 unclean", func(st *crm.Status) bool {
			n := node(st, "cmp2")
			return !n.Online && n.Unclean
		})
		fixture(ctx, t, c, "remote-unclean")
		wait(ctx, t, c, 30*time.Second, "cmp2 fenced", func(st *crm.Status) bool {
			for _, f := range st.Fencing {
				if f.Target == "cmp2" && f.Succeeded() {
					return !node(st, "cmp2").Unclean
				}
			}
			return false
		})
		fixture(ctx, t, c, "remote-fenced")
		if err := l.Heal(ctx, "cmp2", "mgmt"); err != nil {
			t.Fatal(err)
		}
		wait(ctx, t, c, 90*time.Second, "cmp2 back", func(st *crm.Status) bool { return rejoined(st, "cmp2") })

		// A controller cut off: the majority sees it lost, it sees no quorum.
		if err := l.Cut(ctx, "ctl3", "mgmt"); err != nil {
			t.Fatal(err)
		}
		wait(ctx, t, c, 30*time.Second, "ctl3 lost", func(st *crm.Status) bool { return !node(st, "ctl3").Online })
		fixture(ctx, t, c, "controller-partitioned")
		// The majority fences ctl3 a few seconds after losing it, and a crm_mon running there
		// dies with it. ctl3 reboots still cut off, without quorum again: the snapshot is
		// taken again then.
		minority := crmOn(l, "ctl3")
		for attempt := 1; ; attempt++ {
			wait(ctx, t, minority, 90*time.Second, "ctl3 without quorum", func(st *crm.Status) bool { return !st.Quorate })
			out, err := minority.Runner.Run(ctx, "crm_mon", "--one-shot", "--output-as=xml", "--include=all")
			if err == nil {
				keep(t, out, "controller-partitioned-minority")
				break
			}
			if attempt == 3 {
				t.Fatalf("crm_mon on ctl3, three times: %v", err)
			}
			t.Logf("crm_mon on ctl3 (attempt %d): %v; ctl3 was likely fenced under it: again once it is back", attempt, err)
		}
		if err := l.Heal(ctx, "ctl3", "mgmt"); err != nil {
			t.Fatal(err)
		}
		wait(ctx, t, c, 90*time.Second, "ctl3 back", func(st *crm.Status) bool { return rejoined(st, "ctl3") })
	})

	t.Run("attributes of a remote node round-trip", func(t *testing.T) {
		for _, lt := range []crm.Lifetime{crm.Transient, crm.Permanent} {
			if err := c.SetAttribute(ctx, "cmp1", "computeha-lab-test", "x1", lt); err != nil {
				t.Fatal(err)
			}
			if v, err := crmOn(l, "ctl2").Attribute(ctx, "cmp1", "computeha-lab-test", lt); err != nil || v != "x1" {
				t.Errorf("lifetime %d: read from ctl2 %q, %v", lt, v, err)
			}
			if err := c.DeleteAttribute(ctx, "cmp1", "computeha-lab-test", lt); err != nil {
				t.Fatal(err)
			}
		}
	})

	t.Run("watch reports a cut compute lost, then fenced, then joined, through every controller's alerts", func(t *testing.T) {
		dir := t.TempDir()
		for d := dir; d != "/tmp" && d != "/"; d = filepath.Dir(d) {
			if err := os.Chmod(d, 0o755); err != nil {
				t.Fatal(err)
			}
		}
		sock := filepath.Join(dir, "alert.sock")
		if err := c.EnsureAlert(ctx, crm.AlertConfig{ID: "computeha", Path: "/usr/libexec/computeha/computeha_alert", Recipient: sock}); err != nil {
			t.Fatal(err)
		}
		w := crm.NewWatcher(c, crm.WatchOptions{Socket: sock, StateFile: filepath.Join(dir, "state.json"), PollInterval: time.Second})
		if err := w.Listen(); err != nil {
			t.Fatal(err)
		}
		events := make(chan crm.Event, 256)
		wctx, stop := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() { done <- w.Run(wctx, events) }()
		defer func() { stop(); <-done }()
		time.Sleep(2 * time.Second)

		cut := time.Now()
		if err := l.Cut(ctx, "cmp1", "mgmt"); err != nil {
			t.Fatal(err)
		}
		var order []string
		deadline := time.After(60 * time.Second)
		for len(order) == 0 || order[len(order)-1] != "fenced" {
			select {
			case e := <-events:
				t.Logf("%6.2fs %s", time.Since(cut).Seconds(), e)
				if e.Node != "cmp1" {
					continue
				}
				switch e.Kind {
				case crm.NodeLost:
					order = append(order, "lost")
				case crm.NodeFenced:
					if !e.OK {
						t.Errorf("fencing failed: %s", e)
					}
					order = append(order, "fenced")
					t.Logf("cut to fenced event: %s (via %s)", time.Since(cut).Round(time.Millisecond), e.Source)
				}
			case <-deadline:
				t.Fatalf("no fenced event within 60 s; saw %v", order)
			}
		}
		if len(order) < 2 || order[0] != "lost" {
			t.Errorf("events for cmp1: %v, want lost before fenced", order)
		}
		if n := strings.Count(strings.Join(order, " "), "fenced"); n != 1 {
			t.Errorf("fenced reported %d times", n)
		}
		if err := l.Heal(ctx, "cmp1", "mgmt"); err != nil {
			t.Fatal(err)
		}
		deadline = time.After(90 * time.Second)
		for {
			select {
			case e := <-events:
				t.Logf("%6.2fs %s", time.Since(cut).Seconds(), e)
				if e.Node == "cmp1" && e.Kind == crm.NodeFenced {
					t.Errorf("duplicate fencing event %s", e)
				}
				if e.Node == "cmp1" && e.Kind == crm.NodeJoined {
					return
				}
			case <-deadline:
				t.Fatal("no joined event for cmp1 within 90 s of the heal")
			}
		}
	})
}
