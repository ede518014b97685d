package procs

import (
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strings"
	"testing"
)

// TestMain, in a child started by runChild, prints GOMAXPROCS as the
// package's init left it and after Default.
func TestMain(m *testing.M) {
	if os.Getenv("PROCS_TEST_CHILD") == "1" {
		before := runtime.GOMAXPROCS(0)
		Default()
		fmt.Printf("%d %d\n", before, runtime.GOMAXPROCS(0))
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// runChild starts this test binary with env (GOMAXPROCS removed unless
// env sets it) and returns what its TestMain printed.
func runChild(t *testing.T, env ...string) string {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe)
	cmd.Env = append(slices.DeleteFunc(os.Environ(), func(kv string) bool {
		return strings.HasPrefix(kv, "GOMAXPROCS=")
	}), append(env, "PROCS_TEST_CHILD=1")...)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("child: %v", err)
	}
	return strings.TrimSpace(string(out))
}

func TestOneProcUntilDefault(t *testing.T) {
	if runtime.NumCPU() < 2 {
		t.Skip("one CPU: the default is one P too")
	}
	// The runtime's default for a process started without GOMAXPROCS, as
	// a fresh process with the variable set to nothing computes it.
	var before, after int
	if _, err := fmt.Sscan(runChild(t), &before, &after); err != nil {
		t.Fatal(err)
	}
	if before != 1 {
		t.Errorf("GOMAXPROCS after init = %d, want 1", before)
	}
	if after < 2 {
		t.Errorf("GOMAXPROCS after Default = %d, want the runtime's default (%d CPUs)", after, runtime.NumCPU())
	}
}

func TestEnvironmentIsTheOperatorsWord(t *testing.T) {
	if got := runChild(t, "GOMAXPROCS=3"); got != "3 3" {
		t.Errorf("with GOMAXPROCS=3: init, Default gave %q, want \"3 3\"", got)
	}
}
