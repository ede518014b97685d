package hostcheck

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// fakeProc builds a /proc with the given processes; ns is each one's network namespace.
type fakeProcess struct {
	pid     string
	comm    string
	state   string
	argv0   string
	netns   string
	exeBase string
}

func fakeProc(t *testing.T, procs ...fakeProcess) string {
	t.Helper()
	root := t.TempDir()
	mk := func(pid, netns string) string {
		dir := filepath.Join(root, pid)
		if err := os.MkdirAll(filepath.Join(dir, "ns"), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(netns, filepath.Join(dir, "ns", "net")); err != nil {
			t.Fatal(err)
		}
		return dir
	}
	mk("self", "net:[4026531840]")
	for _, p := range procs {
		dir := mk(p.pid, p.netns)
		stat := p.pid + " (" + p.comm + ") " + p.state + " 1 1 1 0 -1 4194560 0 0 0 0 0 0 0 0 20 0 1 0 12345 0 0\n"
		if err := os.WriteFile(filepath.Join(dir, "stat"), []byte(stat), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "cmdline"), []byte(p.argv0+"\x00--flag\x00"), 0o644); err != nil {
			t.Fatal(err)
		}
		if p.exeBase != "" {
			if err := os.Symlink("/usr/sbin/"+p.exeBase, filepath.Join(dir, "exe")); err != nil {
				t.Fatal(err)
			}
		}
	}
	return root
}

func TestTheServiceIsFoundByProcessName(t *testing.T) {
	const here, other = "net:[4026531840]", "net:[4026532999]"
	cases := []struct {
		name   string
		procs  []fakeProcess
		names  []string
		want   bool
		detail string
	}{
		{
			name:   "pacemaker-remoted, whose name the kernel cuts, is found by its command line",
			procs:  []fakeProcess{{pid: "10", comm: "pacemaker-remot", state: "S", argv0: "/usr/sbin/pacemaker-remoted", netns: here}},
			names:  DefaultServices,
			want:   true,
			detail: "pacemaker-remoted is running (pid 10)",
		},
		{
			name:   "or by its executable when the command line was rewritten",
			procs:  []fakeProcess{{pid: "11", comm: "pacemaker-remot", state: "S", argv0: "remoted: main", netns: here, exeBase: "pacemaker-remoted"}},
			names:  DefaultServices,
			want:   true,
			detail: "pacemaker-remoted is running (pid 11)",
		},
		{
			name:   "pacemakerd on a full cluster node counts as the service",
			procs:  []fakeProcess{{pid: "12", comm: "pacemakerd", state: "S", argv0: "pacemakerd", netns: here}},
			names:  DefaultServices,
			want:   true,
			detail: "pacemakerd is running (pid 12)",
		},
		{
			name:   "a zombie is not running",
			procs:  []fakeProcess{{pid: "13", comm: "pacemakerd", state: "Z", argv0: "", netns: here}},
			names:  DefaultServices,
			detail: "no process named pacemaker-remoted or pacemakerd is running",
		},
		{
			name:   "another node's daemon in another network namespace is not this node's service",
			procs:  []fakeProcess{{pid: "14", comm: "pacemakerd", state: "S", argv0: "pacemakerd", netns: other}},
			names:  DefaultServices,
			detail: "no process named pacemaker-remoted or pacemakerd is running",
		},
		{
			name:   "a different program whose name starts the same is not the service",
			procs:  []fakeProcess{{pid: "15", comm: "pacemaker-remot", state: "S", argv0: "/opt/pacemaker-remote-helper", netns: here}},
			names:  []string{"pacemaker-remoted"},
			detail: "no process named pacemaker-remoted is running",
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := &ProcessCheck{Names: tc.names, Proc: fakeProc(t, tc.procs...)}
			got, detail, err := c.Running()
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want || detail != tc.detail {
				t.Errorf("Running() = %v, %q; want %v, %q", got, detail, tc.want, tc.detail)
			}
		})
	}
}

func TestTheServiceIsFoundByPidFile(t *testing.T) {
	proc := fakeProc(t,
		fakeProcess{pid: "20", comm: "pacemakerd", state: "S", argv0: "pacemakerd", netns: "x"},
		fakeProcess{pid: "21", comm: "pacemakerd", state: "Z", argv0: "pacemakerd", netns: "x"},
	)
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	cases := []struct {
		name    string
		path    string
		want    bool
		wantErr string
	}{
		{"a live process named by the pid file runs", write("live.pid", "20\n"), true, ""},
		{"a zombie named by the pid file does not", write("zombie.pid", "21\n"), false, ""},
		{"a gone process does not", write("gone.pid", "99\n"), false, ""},
		{"a missing pid file means not running", filepath.Join(dir, "missing.pid"), false, ""},
		{"a pid file without a pid is an error, not a verdict", write("junk.pid", "junk\n"), false, "holds no pid"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, _, err := (&PidFileCheck{Path: tc.path, Proc: proc}).Running()
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Errorf("error = %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Errorf("Running() = %v, %v; want %v", got, err, tc.want)
			}
		})
	}
}

func TestTheRestartCommandRunsThroughTheShellAndReportsItsOutput(t *testing.T) {
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	marker := filepath.Join(dir, "ran")
	if err := ShellRestart(ctx, "echo started > "+marker); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(marker); err != nil || string(b) != "started\n" {
		t.Errorf("marker = %q, %v", b, err)
	}
	err := ShellRestart(ctx, "echo unit pacemaker_remote not found >&2; exit 5")
	if err == nil || err.Error() != "exit status 5: unit pacemaker_remote not found" {
		t.Errorf("error of a failing command = %v", err)
	}
	// A command that leaves a daemon behind holding its output returns once it exits itself.
	start := time.Now()
	if err := ShellRestart(ctx, "sleep 30 & echo forked"); err != nil {
		t.Errorf("a command leaving a daemon behind: %v", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("the command leaving a daemon behind took %s", d)
	}
}
