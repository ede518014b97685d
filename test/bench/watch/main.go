// Command watch measures how fast crm.Watch reports what computeha reacts
// to, on the Pacemaker lab (3 controllers, 2 pacemaker-remote computes):
// from an attribute change to its event, and from cutting a compute's
// management network to its "fenced" event, once through the alert path
// and once through the poll path alone (two watchers run side by side).
// It prints the medians and worst cases and exits 1 when a target is
// missed.
//
//	go run ./test/bench/watch -bin bin -attrs 20 -cuts 3
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"time"

	"github.com/computeha/computeha/crm"
	"github.com/computeha/computeha/test/lab"
)

func main() {
	bin := flag.String("bin", "bin", "directory of computeha and its agents (make build)")
	attrs := flag.Int("attrs", 20, "attribute changes to time")
	cuts := flag.Int("cuts", 3, "management-network cuts to time")
	attrTarget := flag.Duration("attr-target", 200*time.Millisecond, "largest acceptable median, attribute change to event, alert path")
	fenceTarget := flag.Duration("fence-target", 5*time.Second, "largest acceptable median, cut to fenced event, alert path")
	flag.Parse()
	if err := run(*bin, *attrs, *cuts, *attrTarget, *fenceTarget); err != nil {
		fmt.Fprintln(os.Stderr, "watch:", err)
		os.Exit(1)
	}
}

// stamped is an event with the time this process received it.
type stamped struct {
	crm.Event
	at time.Time
}

func watch(ctx context.Context, w *crm.Watcher) <-chan stamped {
	raw := make(chan crm.Event, 256)
	out := make(chan stamped, 256)
	go func() { _ = w.Run(ctx, raw) }()
	go func() {
		for e := range raw {
			out <- stamped{e, time.Now()}
		}
	}()
	return out
}

// first waits for the first event matching match.
func first(ch <-chan stamped, limit time.Duration, match func(crm.Event) bool) (time.Time, error) {
	deadline := time.After(limit)
	for {
		select {
		case e := <-ch:
			if match(e.Event) {
				return e.at, nil
			}
		case <-deadline:
			return time.Time{}, errors.New("no matching event in time")
		}
	}
}

func run(bin string, attrs, cuts int, attrTarget, fenceTarget time.Duration) error {
	absBin, err := filepath.Abs(bin)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	dir, err := os.MkdirTemp("", "computeha-bench-watch-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	if err := os.Chmod(dir, 0o755); err != nil {
		return err
	}
	l, err := lab.Up(ctx, lab.Options{Controllers: 3, Computes: 2, Dir: filepath.Join(dir, "lab"), Bin: absBin})
	if err != nil {
		return err
	}
	defer func() { _ = l.Down(context.Background()) }()

	c := crm.NewClient(&crm.Runner{Prefix: []string{lab.Script(), "exec", "--dir", l.Dir(), "ctl1"}, Timeout: time.Minute})
	sock := filepath.Join(dir, "alert.sock")
	if err := c.EnsureAlert(ctx, crm.AlertConfig{ID: "computeha", Path: "/usr/libexec/computeha/computeha_alert", Recipient: sock}); err != nil {
		return err
	}
	alertW := crm.NewWatcher(c, crm.WatchOptions{Socket: sock, PollInterval: time.Hour})
	pollW := crm.NewWatcher(c, crm.WatchOptions{PollInterval: 500 * time.Millisecond})
	if err := alertW.Listen(); err != nil {
		return err
	}
	alerts := watch(ctx, alertW)
	polls := watch(ctx, pollW)
	time.Sleep(3 * time.Second) // both take their first snapshot

	var attrAlert, attrPoll []time.Duration
	for i := range attrs {
		v := "v" + strconv.Itoa(i)
		start := time.Now()
		if err := c.SetAttribute(ctx, "cmp1", "computeha-bench", v, crm.Transient); err != nil {
			return err
		}
		match := func(e crm.Event) bool {
			return e.Kind == crm.AttributeChanged && e.Name == "computeha-bench" && e.Value == v
		}
		a, err := first(alerts, 10*time.Second, match)
		if err != nil {
			return fmt.Errorf("attribute %s, alert path: %w", v, err)
		}
		p, err := first(polls, 10*time.Second, match)
		if err != nil {
			return fmt.Errorf("attribute %s, poll path: %w", v, err)
		}
		attrAlert = append(attrAlert, a.Sub(start))
		attrPoll = append(attrPoll, p.Sub(start))
	}

	var fenceAlert, fencePoll []time.Duration
	for i := range cuts {
		target := "cmp" + strconv.Itoa(1+i%2)
		start := time.Now()
		if err := l.Cut(ctx, target, "mgmt"); err != nil {
			return err
		}
		match := func(e crm.Event) bool { return e.Kind == crm.NodeFenced && e.Node == target && e.OK }
		a, err := first(alerts, time.Minute, match)
		if err != nil {
			return fmt.Errorf("cut %d of %s, alert path: %w", i, target, err)
		}
		p, err := first(polls, time.Minute, match)
		if err != nil {
			return fmt.Errorf("cut %d of %s, poll path: %w", i, target, err)
		}
		fenceAlert = append(fenceAlert, a.Sub(start))
		fencePoll = append(fencePoll, p.Sub(start))
		if err := l.Heal(ctx, target, "mgmt"); err != nil {
			return err
		}
		if _, err := first(alerts, 2*time.Minute, func(e crm.Event) bool { return e.Kind == crm.NodeJoined && e.Node == target }); err != nil {
			return fmt.Errorf("%s did not rejoin: %w", target, err)
		}
		if err := rejoined(ctx, c, target); err != nil {
			return err
		}
	}

	fmt.Printf("crm.Watch on the lab (3 controllers, 2 remote computes; poll path every 500 ms):\n")
	report := func(name string, d []time.Duration) time.Duration {
		s := slices.Sorted(slices.Values(d))
		m := s[len(s)/2]
		if len(s)%2 == 0 {
			m = (s[len(s)/2-1] + s[len(s)/2]) / 2
		}
		fmt.Printf("  %-44s median %8s   worst %8s   (%d runs)\n", name, m.Round(time.Millisecond), s[len(s)-1].Round(time.Millisecond), len(s))
		return m
	}
	am := report("attribute change -> event, alert path", attrAlert)
	report("attribute change -> event, poll path", attrPoll)
	fm := report("mgmt cut -> fenced event, alert path", fenceAlert)
	report("mgmt cut -> fenced event, poll path", fencePoll)
	var missed []string
	if am > attrTarget {
		missed = append(missed, fmt.Sprintf("attribute median %s > %s", am.Round(time.Millisecond), attrTarget))
	}
	if fm > fenceTarget {
		missed = append(missed, fmt.Sprintf("fenced median %s > %s", fm.Round(time.Millisecond), fenceTarget))
	}
	fmt.Printf("  targets: attribute <= %s, fenced <= %s: ", attrTarget, fenceTarget)
	if len(missed) > 0 {
		fmt.Println("MISSED")
		return fmt.Errorf("targets missed: %v", missed)
	}
	fmt.Println("met")
	return nil
}

// rejoined waits until the remote node's connection is started again
// (crm_mon calls a remote node online before that).
func rejoined(ctx context.Context, c *crm.Client, node string) error {
	deadline := time.Now().Add(2 * time.Minute)
	for time.Now().Before(deadline) {
		st, err := c.Status(ctx)
		if err == nil {
			n, _ := st.Node(node)
			for _, r := range st.Resources {
				if r.ID == node && r.Role == "Started" && !r.Failed && n.Online && !n.Unclean {
					return nil
				}
			}
		}
		time.Sleep(300 * time.Millisecond)
	}
	return fmt.Errorf("%s's connection did not start again", node)
}
