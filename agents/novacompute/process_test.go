package novacompute

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/computeha/computeha/agents"
)

// commandRun runs the agent in command mode with real processes, the real
// clock and a private HA_RSCTMP, with a fake Nova that has the host healthy.
func commandRun(t *testing.T, stateDir string, env []string, action string) (int, string) {
	t.Helper()
	nova := NewFakeNova(healthy("compute1"))
	nova.Beating = true // the process started reports, as nova-compute does
	a := NewAgent(Deps{
		Nova:       func(context.Context, *Params, string) (Nova, error) { return nova, nil },
		Evacuation: func(context.Context, *Params) (EvacuationState, error) { return NewFakeEvacuation(), nil },
	})
	yaml := filepath.Join(stateDir, "clouds.yaml")
	if err := os.WriteFile(yaml, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	var errb bytes.Buffer
	code := agents.Main(context.Background(), a, agents.Env{
		Args: []string{action},
		Environ: append([]string{
			"OCF_RESKEY_cloud=test", "OCF_RESOURCE_INSTANCE=nc", "OCF_RESKEY_CRM_meta_on_node=compute1",
			"OCF_RESKEY_clouds_yaml=" + yaml, "HA_RSCTMP=" + stateDir, "PATH=" + os.Getenv("PATH"),
		}, env...),
		Stdout: &bytes.Buffer{},
		Stderr: &errb,
		Syslog: func(string) (agents.Syslogger, error) { return nil, errors.New("none") },
	})
	return code, errb.String()
}

func recordedPid(t *testing.T, stateDir string) int {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(stateDir, "computeha-nova-compute-nc.pid"))
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.Fields(string(b))[0])
	if err != nil {
		t.Fatal(err)
	}
	return pid
}

func TestCommandModeRunsMonitorsAndStopsARealProcess(t *testing.T) {
	tests := []struct {
		name  string
		env   []string
		extra string // expected in the stop's stderr
	}{
		{name: "SIGTERM stops a command that exits on it", env: []string{"OCF_RESKEY_start_command=sleep 300"}},
		{name: "stop_command is used instead of SIGTERM", env: []string{
			"OCF_RESKEY_start_command=trap 'exit 0' USR1; sleep 300 & wait",
			"OCF_RESKEY_stop_command=kill -USR1 $(cat " + "STATE/computeha-nova-compute-nc.pid | cut -d' ' -f1)",
		}},
		{name: "SIGKILL ends a command that ignores SIGTERM", env: []string{
			"OCF_RESKEY_start_command=trap '' TERM; touch STATE/trapped; while :; do sleep 0.05; done",
			"OCF_RESKEY_CRM_meta_timeout=2000",
		}, extra: "sending SIGKILL"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			var env []string
			for _, e := range tt.env {
				env = append(env, strings.ReplaceAll(e, "STATE", dir))
			}
			mon := append([]string{recurring}, env...)
			if code, out := commandRun(t, dir, mon, "monitor"); code != 7 {
				t.Fatalf("monitor before start: exit %d\n%s", code, out)
			}
			if code, out := commandRun(t, dir, env, "start"); code != 0 {
				t.Fatalf("start: exit %d\n%s", code, out)
			}
			pid := recordedPid(t, dir)
			t.Cleanup(func() { _ = killGroup(pid) })
			if code, out := commandRun(t, dir, mon, "monitor"); code != 0 {
				t.Errorf("monitor of the running process: exit %d\n%s", code, out)
			}
			if code, out := commandRun(t, dir, env, "start"); code != 0 || recordedPid(t, dir) != pid {
				t.Errorf("second start: exit %d, pid %d (was %d)\n%s", code, recordedPid(t, dir), pid, out)
			}
			if strings.Contains(strings.Join(env, " "), "trapped") {
				// Stop only once the shell ignores SIGTERM, or the test
				// races the shell's start-up on a loaded machine.
				waitForFile(t, filepath.Join(dir, "trapped"))
			}
			code, out := commandRun(t, dir, env, "stop")
			if code != 0 || !strings.Contains(out, tt.extra) {
				t.Errorf("stop: exit %d, want 0 and %q\n%s", code, tt.extra, out)
			}
			// Gone, a zombie, or dead while its parent (this test) reaps it: 'X' is seen for a
			// moment between the two, as Alive knows.
			if state, _, err := agents.ProcStat(pid); err == nil && state != 'Z' && state != 'X' {
				t.Errorf("process %d still runs after stop (state %c)", pid, state)
			}
			if code, out := commandRun(t, dir, mon, "monitor"); code != 7 {
				t.Errorf("monitor after stop: exit %d\n%s", code, out)
			}
			if code, out := commandRun(t, dir, env, "stop"); code != 0 {
				t.Errorf("second stop: exit %d\n%s", code, out)
			}
		})
	}
}

func TestCommandModeTellsACrashFromACleanStop(t *testing.T) {
	dir := t.TempDir()
	env := []string{"OCF_RESKEY_start_command=sleep 300"}
	if code, out := commandRun(t, dir, env, "start"); code != 0 {
		t.Fatalf("start: exit %d\n%s", code, out)
	}
	pid := recordedPid(t, dir)
	if err := killGroup(pid); err != nil {
		t.Fatal(err)
	}
	// The test process is not the parent: wait until the kill took effect.
	for agents.Alive(pid, mustStart(t, dir)) {
		if state, _, err := agents.ProcStat(pid); err != nil || state == 'Z' {
			break
		}
	}
	if code, out := commandRun(t, dir, append([]string{probe}, env...), "monitor"); code != 7 {
		t.Errorf("probe after a crash: exit %d, want 7\n%s", code, out)
	}
	code, out := commandRun(t, dir, append([]string{recurring}, env...), "monitor")
	if code != 1 || !strings.Contains(out, "ocf-exit-reason:nova-compute is not running: process "+strconv.Itoa(pid)+" has exited") {
		t.Errorf("recurring monitor after a crash: exit %d, want 1 with the pid\n%s", code, out)
	}
	// A pid recorded with another start time is not ours: never signalled.
	state := filepath.Join(dir, "computeha-nova-compute-nc.pid")
	if err := os.WriteFile(state, []byte(strconv.Itoa(os.Getpid())+" 1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if code, out := commandRun(t, dir, env, "stop"); code != 0 {
		t.Errorf("stop with a reused pid recorded: exit %d\n%s", code, out)
	}
}

func mustStart(t *testing.T, dir string) uint64 {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "computeha-nova-compute-nc.pid"))
	if err != nil {
		t.Fatal(err)
	}
	st, err := strconv.ParseUint(strings.Fields(string(b))[1], 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func waitForFile(t *testing.T, path string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if _, err := os.Stat(path); err == nil {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("%s never appeared", path)
}

func TestARestartKeepsWhatTheRunBeforeWroteAndSetsABigOutputAside(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "computeha-nova-compute-nc.out")
	run := func(word string) {
		t.Helper()
		env := []string{"OCF_RESKEY_start_command=echo " + word + "; exec sleep 300"}
		if code, o := commandRun(t, dir, env, "start"); code != 0 {
			t.Fatalf("start: exit %d\n%s", code, o)
		}
		for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
			if b, _ := os.ReadFile(out); strings.Contains(string(b), word) || time.Now().After(deadline) {
				break
			}
		}
		if code, o := commandRun(t, dir, env, "stop"); code != 0 {
			t.Fatalf("stop: exit %d\n%s", code, o)
		}
	}
	run("first")
	run("second")
	if b, err := os.ReadFile(out); err != nil || string(b) != "first\nsecond\n" {
		t.Errorf("output after a restart: %q, %v; want both runs' lines", b, err)
	}
	if err := os.Truncate(out, agents.MaxOutput+1); err != nil {
		t.Fatal(err)
	}
	run("third")
	if b, err := os.ReadFile(out); err != nil || string(b) != "third\n" {
		t.Errorf("output after a restart past the size bound: %q, %v; want the new run's only", b, err)
	}
	if fi, err := os.Stat(out + ".1"); err != nil || fi.Size() != agents.MaxOutput+1 {
		t.Errorf("the big output was not set aside as .1: %v", err)
	}
}
