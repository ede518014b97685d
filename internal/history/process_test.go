package history

import (
	"bufio"
	"cmp"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"syscall"
	"testing"
	"time"
)

// Environment of the child writer started by the two-process test.
// pace spaces each writer's records as a daemon's are spaced: a writer
// that commits back to back keeps SQLite's write lock to itself (the
// waiting side's busy handler backs off), which would hide the interleaving
// the test is about.
const pace = 200 * time.Microsecond

const (
	childDBEnv    = "COMPUTEHA_HISTORY_TEST_CHILD_DB"
	childCountEnv = "COMPUTEHA_HISTORY_TEST_CHILD_COUNT"
)

// TestSQLiteTwoProcessesWriteOneFileAndAKilledWriterLosesNothing runs a
// second process (this test binary again) that writes to the same SQLite
// file while this one does, then kills itself with SIGKILL without closing
// the store. Every record either side saw committed must be there: this is
// what busy_timeout, IMMEDIATE transactions and "durable on return" promise.
func TestSQLiteTwoProcessesWriteOneFileAndAKilledWriterLosesNothing(t *testing.T) {
	if path := os.Getenv(childDBEnv); path != "" {
		childWriter(t, path)
		return
	}
	const each = 300
	path := filepath.Join(t.TempDir(), "history.db")
	cmd := exec.Command(os.Args[0], "-test.run=^TestSQLiteTwoProcessesWriteOneFileAndAKilledWriterLosesNothing$", "-test.count=1")
	cmd.Env = append(os.Environ(), childDBEnv+"="+path, childCountEnv+"="+strconv.Itoa(each))
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	s := open(t, "sqlite", path, WithActor("parent"))
	ctx := context.Background()
	// Start together: the child has opened the store when it says "ready",
	// and writes when it reads "go".
	if line, err := bufio.NewReader(stdout).ReadString('\n'); err != nil || line != "ready\n" {
		t.Fatalf("child said %q, %v; want ready", line, err)
	}
	if _, err := io.WriteString(stdin, "go\n"); err != nil {
		t.Fatal(err)
	}
	for i := range each {
		mustRecord(t, s, Event{Host: "compute1", Kind: KindDecision, Summary: fmt.Sprintf("parent %d", i)})
		time.Sleep(pace)
	}
	err = cmd.Wait()
	ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus)
	if !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		t.Fatalf("child ended with %v, want killed by SIGKILL after writing", err)
	}

	all, err := s.Query(ctx, Filter{})
	if err != nil {
		t.Fatal(err)
	}
	// The parent stamps with a test clock and the child with the real one,
	// so commit order is id order, not time order.
	slices.SortFunc(all, func(a, b Event) int { return cmp.Compare(a.ID, b.ID) })
	switches := 0
	for i := 1; i < len(all); i++ {
		if all[i].Actor != all[i-1].Actor {
			switches++
		}
	}
	// Informative: how interleaved the two writers really were.
	t.Logf("%d events, writer changed %d times in commit order", len(all), switches)
	if switches < 2 {
		t.Errorf("the writers took turns only %d times: they did not run concurrently", switches)
	}
	for _, actor := range []string{"parent", "child"} {
		got := 0
		es, err := s.Query(ctx, Filter{Host: "compute1"})
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range es {
			if e.Actor == actor {
				got++
			}
		}
		if got != each {
			t.Errorf("%d events by the %s, want %d", got, actor, each)
		}
	}
}

// childWriter records events and dies without closing anything.
func childWriter(t *testing.T, path string) {
	n, err := strconv.Atoi(os.Getenv(childCountEnv))
	if err != nil {
		t.Fatal(err)
	}
	s, err := Open(context.Background(), "sqlite", path, WithActor("child"), WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		t.Fatal(err)
	}
	fmt.Println("ready")
	if _, err := bufio.NewReader(os.Stdin).ReadString('\n'); err != nil {
		t.Fatal(err)
	}
	for i := range n {
		if err := s.Record(context.Background(), Event{Host: "compute1", Kind: KindDecision, Summary: fmt.Sprintf("child %d", i)}); err != nil {
			t.Fatal(err)
		}
		time.Sleep(pace)
	}
	_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
	select {}
}
