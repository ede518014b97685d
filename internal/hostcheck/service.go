package hostcheck

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// ServiceCheck tells whether the host's cluster service runs.
type ServiceCheck interface {
	// Running reports whether the service runs, with a detail for logs (its pid, or what
	// was looked for). An error means the check itself failed: the state is unknown.
	Running() (bool, string, error)
}

// DefaultServices are the process names of the cluster service: pacemaker-remoted on
// compute nodes, pacemakerd on full cluster nodes (the controllers). A node runs one of
// them, so one clone configuration fits every node.
var DefaultServices = []string{"pacemaker-remoted", "pacemakerd"}

// ProcessCheck finds the service by process name in /proc. Only processes in this process's
// network namespace count: where several nodes share one kernel (containers, test labs), the
// other nodes' daemons are visible in /proc but are not this node's service.
type ProcessCheck struct {
	// Names are the process names; the service runs when any of them does.
	Names []string
	// Proc is the proc file system (default /proc).
	Proc string
}

var _ ServiceCheck = (*ProcessCheck)(nil)

// commLen is the kernel's limit on a process name in /proc/PID/stat (TASK_COMM_LEN - 1).
const commLen = 15

func (c *ProcessCheck) Running() (bool, string, error) {
	proc := c.Proc
	if proc == "" {
		proc = "/proc"
	}
	self, err := os.Readlink(filepath.Join(proc, "self", "ns", "net"))
	if err != nil {
		return false, "", fmt.Errorf("reading this process's network namespace: %w", err)
	}
	entries, err := os.ReadDir(proc)
	if err != nil {
		return false, "", fmt.Errorf("listing processes: %w", err)
	}
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid <= 0 {
			continue
		}
		dir := filepath.Join(proc, e.Name())
		name, ok := c.match(dir)
		if !ok {
			continue
		}
		// A process that exited between the reads is simply not found.
		if ns, err := os.Readlink(filepath.Join(dir, "ns", "net")); err != nil || ns != self {
			continue
		}
		return true, fmt.Sprintf("%s is running (pid %d)", name, pid), nil
	}
	return false, "no process named " + strings.Join(c.Names, " or ") + " is running", nil
}

// match tells whether the process of dir is alive (zombies are not: without an init that
// reaps them they linger) and has one of the names.
func (c *ProcessCheck) match(dir string) (string, bool) {
	stat, err := os.ReadFile(filepath.Join(dir, "stat"))
	if err != nil {
		return "", false
	}
	open, end := bytes.IndexByte(stat, '('), bytes.LastIndexByte(stat, ')')
	if open < 0 || end < open || end+2 >= len(stat) {
		return "", false
	}
	comm, state := string(stat[open+1:end]), stat[end+2]
	if state == 'Z' || state == 'X' {
		return "", false
	}
	for _, n := range c.Names {
		if len(n) <= commLen {
			if comm == n {
				return n, true
			}
			continue
		}
		// The kernel cuts longer names (pacemaker-remoted is "pacemaker-remot"): the full
		// name is in the command line.
		if comm != n[:commLen] {
			continue
		}
		cmdline, err := os.ReadFile(filepath.Join(dir, "cmdline"))
		if err != nil {
			continue
		}
		argv0, _, _ := bytes.Cut(cmdline, []byte{0})
		if filepath.Base(string(argv0)) == n {
			return n, true
		}
		if exe, err := os.Readlink(filepath.Join(dir, "exe")); err == nil && filepath.Base(exe) == n {
			return n, true
		}
	}
	return "", false
}

// PidFileCheck finds the service by its pid file.
type PidFileCheck struct {
	Path string
	// Proc is the proc file system (default /proc).
	Proc string
}

var _ ServiceCheck = (*PidFileCheck)(nil)

func (c *PidFileCheck) Running() (bool, string, error) {
	proc := c.Proc
	if proc == "" {
		proc = "/proc"
	}
	b, err := os.ReadFile(c.Path)
	if errors.Is(err, os.ErrNotExist) {
		return false, "no pid file " + c.Path, nil
	}
	if err != nil {
		return false, "", fmt.Errorf("reading the pid file: %w", err)
	}
	f := strings.Fields(string(b))
	pid := 0
	if len(f) > 0 {
		pid, _ = strconv.Atoi(f[0])
	}
	if pid <= 0 {
		return false, "", fmt.Errorf("pid file %s holds no pid", c.Path)
	}
	stat, err := os.ReadFile(filepath.Join(proc, strconv.Itoa(pid), "stat"))
	if err != nil {
		return false, fmt.Sprintf("process %d of %s is gone", pid, c.Path), nil
	}
	if end := bytes.LastIndexByte(stat, ')'); end >= 0 && end+2 < len(stat) && (stat[end+2] == 'Z' || stat[end+2] == 'X') {
		return false, fmt.Sprintf("process %d of %s has exited", pid, c.Path), nil
	}
	return true, fmt.Sprintf("pid %d of %s is running", pid, c.Path), nil
}

// ShellRestart runs command through /bin/sh in its own session until it exits or ctx ends.
// Its own session: the restarted service must not be in hostcheck's process group, which a
// stop of hostcheck signals as a whole. Output is returned in the error only.
func ShellRestart(ctx context.Context, command string) error {
	cmd := exec.CommandContext(ctx, "/bin/sh", "-c", command)
	cmd.Dir = "/"
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	// A command that starts a daemon may leave it holding the output pipe; the command's own
	// exit is what counts.
	cmd.WaitDelay = waitDelay
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	if errors.Is(err, exec.ErrWaitDelay) {
		err = nil
	}
	if err != nil {
		if msg := strings.Join(strings.Fields(out.String()), " "); msg != "" {
			return fmt.Errorf("%w: %s", err, clip(msg, 300))
		}
		return err
	}
	return nil
}

func clip(s string, n int) string {
	if len(s) > n {
		return s[:n] + "..."
	}
	return s
}
