package agents

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// ProcState is what a process manager knows of the process it runs.
type ProcState int

const (
	// ProcStopped: not running, and nothing says it ever failed.
	ProcStopped ProcState = iota
	ProcRunning
	// ProcCrashed: not running although it was started and not stopped.
	ProcCrashed
)

func (s ProcState) String() string {
	return [...]string{"stopped", "running", "crashed"}[s]
}

// Process runs a resource's daemon: through systemd or a command.
type Process interface {
	// Status tells the state, with a detail for logs (pid, unit state).
	Status(ctx context.Context) (ProcState, string, error)
	Start(ctx context.Context) error
	Stop(ctx context.Context) error
}

// procPoll is how often a stop checks whether the process has exited.
const procPoll = 100 * time.Millisecond

// NewCommandProcess runs start (through /bin/sh -c) in its own session,
// stopped by stop (when not empty) or SIGTERM; its pid and start time are
// kept in statePath and its output in outputPath.
func NewCommandProcess(req *Request, start, stop, statePath, outputPath string) *CommandProcess {
	return &CommandProcess{req: req, start: start, stop: stop, statePath: statePath, outputPath: outputPath}
}

// NewSystemdUnit manages unit with systemctl.
func NewSystemdUnit(req *Request, unit string) *SystemdUnit {
	return &SystemdUnit{req: req, unit: unit}
}

// CommandProcess runs a command in its own session and tracks it by pid
// and start time, recorded in HA_RSCTMP, so a reused pid is never taken
// for it.
type CommandProcess struct {
	req        *Request
	start      string
	stop       string
	statePath  string
	outputPath string

	mu     sync.Mutex
	waited string // exit status of a process this invocation started
}

var _ Process = (*CommandProcess)(nil)

// ProcStat reads the state letter and start time (clock ticks since boot)
// of pid from /proc.
func ProcStat(pid int) (byte, uint64, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, 0, err
	}
	// The command name may hold spaces and parentheses: fields start after
	// the last ')'.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, 0, fmt.Errorf("malformed /proc/%d/stat", pid)
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 20 {
		return 0, 0, fmt.Errorf("malformed /proc/%d/stat", pid)
	}
	st, err := strconv.ParseUint(f[19], 10, 64)
	if err != nil {
		return 0, 0, fmt.Errorf("malformed /proc/%d/stat: %w", pid, err)
	}
	return f[0][0], st, nil
}

// Alive tells whether pid is still the process recorded with start time
// st. Zombies are dead: without an init that reaps, they linger.
func Alive(pid int, st uint64) bool {
	state, cur, err := ProcStat(pid)
	return err == nil && cur == st && state != 'Z' && state != 'X'
}

func (c *CommandProcess) readState() (pid int, st uint64, ok bool, err error) {
	b, err := os.ReadFile(c.statePath)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, 0, false, nil
	}
	if err != nil {
		return 0, 0, false, fmt.Errorf("reading %s: %w", c.statePath, err)
	}
	f := strings.Fields(string(b))
	if len(f) != 2 {
		return 0, 0, false, fmt.Errorf("%s is malformed", c.statePath)
	}
	pid, err1 := strconv.Atoi(f[0])
	st, err2 := strconv.ParseUint(f[1], 10, 64)
	if err1 != nil || err2 != nil || pid <= 1 {
		return 0, 0, false, fmt.Errorf("%s is malformed", c.statePath)
	}
	return pid, st, true, nil
}

func (c *CommandProcess) writeState(pid int, st uint64) error {
	tmp := c.statePath + ".tmp"
	if err := os.WriteFile(tmp, fmt.Appendf(nil, "%d %d\n", pid, st), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, c.statePath)
}

func (c *CommandProcess) Status(context.Context) (ProcState, string, error) {
	pid, st, ok, err := c.readState()
	if err != nil {
		return ProcStopped, "", err
	}
	if !ok {
		return ProcStopped, "no process recorded", nil
	}
	if Alive(pid, st) {
		return ProcRunning, "pid " + strconv.Itoa(pid), nil
	}
	detail := fmt.Sprintf("process %d has exited", pid)
	c.mu.Lock()
	if c.waited != "" {
		detail += " (" + c.waited + "; output in " + c.outputPath + ")"
	}
	c.mu.Unlock()
	return ProcCrashed, detail, nil
}

// childEnv is the agent's environment without the resource's parameters.
func childEnv(environ []string) []string {
	var env []string
	for _, kv := range environ {
		if !strings.HasPrefix(kv, "OCF_RESKEY_") {
			env = append(env, kv)
		}
	}
	return env
}

// MaxOutput is the size past which a command's output file is set aside (renamed with a
// ".1" suffix, replacing the one before) when the command is started again.
const MaxOutput = 16 << 20

// openOutput opens the command's output file for appending: after a restart, what the run
// before wrote (a crashed daemon's last words) is still there to read. A file grown past
// MaxOutput is set aside first, so two files bound the space.
func openOutput(path string) (*os.File, error) {
	if fi, err := os.Stat(path); err == nil && fi.Size() > MaxOutput {
		if err := os.Rename(path, path+".1"); err != nil {
			return nil, err
		}
	}
	return os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o640)
}

func (c *CommandProcess) Start(context.Context) error {
	out, err := openOutput(c.outputPath)
	if err != nil {
		return fmt.Errorf("opening the output file: %w", err)
	}
	defer out.Close()
	cmd := exec.Command("/bin/sh", "-c", c.start)
	cmd.Env = childEnv(c.req.Environ)
	cmd.Dir = "/"
	// The output goes to a file: a child holding the agent's own stderr
	// would keep Pacemaker's executor waiting for the end of it.
	cmd.Stdout, cmd.Stderr = out, out
	// Its own session: signals to the agent's process group do not reach
	// it, and stop can signal its whole group.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("ProcRunning start_command: %w", err)
	}
	pid := cmd.Process.Pid
	_, st, err := ProcStat(pid)
	if err == nil {
		err = c.writeState(pid, st)
	}
	if err != nil {
		_ = syscall.Kill(-pid, syscall.SIGKILL)
		_ = cmd.Wait()
		return fmt.Errorf("recording the started process: %w", err)
	}
	go func() {
		werr := cmd.Wait()
		c.mu.Lock()
		defer c.mu.Unlock()
		if werr == nil {
			c.waited = "exit status 0"
		} else {
			c.waited = werr.Error()
		}
	}()
	c.req.Log.Info("started the command", "pid", pid, "command", c.start, "output", c.outputPath)
	return nil
}

// Stop asks the recorded process to exit (stop_command or SIGTERM to its
// process group), waits, and sends SIGKILL when there is little time left.
func (c *CommandProcess) Stop(ctx context.Context) error {
	pid, st, ok, err := c.readState()
	if err != nil {
		// A state file that cannot be read names no process to stop.
		c.req.Log.Warn("ignoring unreadable state", "error", err)
		return c.forget()
	}
	if !ok || !Alive(pid, st) {
		return c.forget()
	}
	clock := c.req.Clock
	left := c.req.Remaining()
	// Time kept for SIGKILL and the wait after it.
	reserve := min(left/5, 3*time.Second)
	termUntil := clock.Now().Add(left - reserve)
	if c.stop != "" {
		if err := c.runStop(ctx, left-reserve); err != nil {
			c.req.Log.Warn("stop_command failed; sending SIGTERM", "error", err)
			c.signal(pid, st, syscall.SIGTERM)
		}
	} else {
		c.signal(pid, st, syscall.SIGTERM)
	}
	if c.waitExit(ctx, pid, st, termUntil) {
		return c.forget()
	}
	c.req.Log.Warn("the process did not exit in time; sending SIGKILL", "pid", pid)
	c.signal(pid, st, syscall.SIGKILL)
	if c.waitExit(ctx, pid, st, c.req.Deadline()) {
		return c.forget()
	}
	return fmt.Errorf("process %d did not exit after SIGKILL", pid)
}

// signal sends sig to the process group of pid, after checking that pid is
// still the recorded process (its group is then ours).
func (c *CommandProcess) signal(pid int, st uint64, sig syscall.Signal) {
	if !Alive(pid, st) {
		return
	}
	if err := syscall.Kill(-pid, sig); err != nil {
		// A process that left its group is still signalled itself.
		_ = syscall.Kill(pid, sig)
	}
}

func (c *CommandProcess) waitExit(ctx context.Context, pid int, st uint64, until time.Time) bool {
	for {
		if !Alive(pid, st) {
			return true
		}
		left := until.Sub(c.req.Clock.Now())
		if left <= 0 || c.req.Clock.Sleep(ctx, min(procPoll, left)) != nil {
			return !Alive(pid, st)
		}
	}
}

func (c *CommandProcess) runStop(ctx context.Context, limit time.Duration) error {
	ctx, cancel := c.req.CallContext(ctx, limit)
	defer cancel()
	cmd := exec.CommandContext(ctx, "/bin/sh", "-c", c.stop)
	cmd.Env = childEnv(c.req.Environ)
	cmd.Dir = "/"
	cmd.WaitDelay = time.Second
	out, err := cmd.CombinedOutput()
	if len(out) > 0 {
		c.req.Log.Info("stop_command output", "output", string(out))
	}
	if err != nil {
		return fmt.Errorf("stop_command: %w", err)
	}
	return nil
}

func (c *CommandProcess) forget() error {
	if err := os.Remove(c.statePath); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("removing %s: %w", c.statePath, err)
	}
	return nil
}

// SystemdUnit manages a daemon as a systemd unit.
type SystemdUnit struct {
	req  *Request
	unit string
}

var _ Process = (*SystemdUnit)(nil)

// systemctlTimeout bounds the quick systemctl queries.
const systemctlTimeout = 10 * time.Second

func (s *SystemdUnit) systemctl(ctx context.Context, limit time.Duration, args ...string) (string, error) {
	ctx, cancel := s.req.CallContext(ctx, limit)
	defer cancel()
	path, err := s.req.LookPath("systemctl")
	if err != nil {
		return "", err
	}
	cmd := exec.CommandContext(ctx, path, args...)
	cmd.WaitDelay = time.Second
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err = cmd.Run()
	if err != nil && errb.Len() > 0 {
		err = fmt.Errorf("%w: %s", err, strings.TrimSpace(errb.String()))
	}
	return strings.TrimSpace(out.String()), err
}

func (s *SystemdUnit) Status(ctx context.Context) (ProcState, string, error) {
	// is-active exits non-zero for every state but active: its output is
	// the answer.
	out, err := s.systemctl(ctx, systemctlTimeout, "is-active", s.unit)
	state := "unit " + s.unit + " is " + out
	switch out {
	case "active", "activating", "reloading", "deactivating", "refreshing":
		return ProcRunning, state, nil
	case "inactive":
		return ProcStopped, state, nil
	case "failed":
		return ProcCrashed, state, nil
	}
	if err == nil {
		err = fmt.Errorf("unexpected answer %q", out)
	}
	return ProcStopped, "", fmt.Errorf("systemctl is-active %s: %w", s.unit, err)
}

func (s *SystemdUnit) Start(ctx context.Context) error {
	if _, err := s.systemctl(ctx, 0, "start", s.unit); err != nil {
		return fmt.Errorf("systemctl start %s: %w", s.unit, err)
	}
	s.req.Log.Info("started unit", "unit", s.unit)
	return nil
}

func (s *SystemdUnit) Stop(ctx context.Context) error {
	if _, err := s.req.LookPath("systemctl"); err != nil {
		// Without systemctl no unit can be ProcRunning.
		s.req.Log.Warn("systemctl is missing; nothing to stop", "unit", s.unit)
		return nil
	}
	if _, err := s.systemctl(ctx, 0, "stop", s.unit); err != nil {
		return fmt.Errorf("systemctl stop %s: %w", s.unit, err)
	}
	return nil
}

// CheckRunning is the first step of a monitor of a managed process, named
// what in the reasons: nil when it runs; NotRunning when it was stopped
// cleanly, or on a probe when it died; a generic failure when it died
// after it was started (Pacemaker then recovers it).
func CheckRunning(ctx context.Context, req *Request, p Process, what string) error {
	st, detail, err := p.Status(ctx)
	if err != nil {
		return Generic("checking %s: %w", what, err)
	}
	switch st {
	case ProcStopped:
		return NotRunning("%s is stopped", what)
	case ProcCrashed:
		if req.Probe() {
			return NotRunning("%s is not running: %s", what, detail)
		}
		return Generic("%s is not running: %s", what, detail)
	}
	return nil
}

// StartAndWait is the start of a managed daemon, named what in the reasons: it starts p
// unless it already runs, then polls ready every 200 ms until the daemon says it is ready
// (note says why not yet). A daemon that exits meanwhile fails the start at once.
func StartAndWait(ctx context.Context, req *Request, p Process, what string, ready func(ctx context.Context) (bool, string, error)) error {
	st, _, err := p.Status(ctx)
	if err != nil {
		return Generic("checking %s: %w", what, err)
	}
	if st != ProcRunning {
		if err := p.Start(ctx); err != nil {
			return Generic("starting %s: %w", what, err)
		}
	}
	return req.Poll(ctx, 200*time.Millisecond, what+" to answer", func(ctx context.Context) (bool, string, error) {
		if st, detail, err := p.Status(ctx); err == nil && st != ProcRunning {
			return false, "", Generic("%s exited while starting: %s", what, detail)
		}
		return ready(ctx)
	})
}

// ShellQuote quotes s as one word for sh.
func ShellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

// NewDaemonProcess is a CommandProcess that runs bin with args (each quoted for sh, exec'd so
// that the pid is the daemon's), its state and output files named after the agent's state file
// for name.
func NewDaemonProcess(req *Request, name, bin string, args ...string) (*CommandProcess, error) {
	state, err := req.StatePath(name, ".pid")
	if err != nil {
		return nil, err
	}
	cmd := "exec " + ShellQuote(bin)
	for _, a := range args {
		cmd += " " + ShellQuote(a)
	}
	return NewCommandProcess(req, cmd, "", state, strings.TrimSuffix(state, ".pid")+".out"), nil
}

// NodeName is the node the resource runs on: Pacemaker names it for a clone instance
// (on_node); by hand, the host name is the node.
func NodeName(req *Request) (string, error) {
	if node := req.Meta["on_node"]; node != "" {
		return node, nil
	}
	node, err := os.Hostname()
	if err != nil {
		return "", Generic("this host's name: %v", err)
	}
	return node, nil
}
