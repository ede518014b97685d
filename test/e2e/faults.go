package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/computeha/computeha/internal/evacstate"
	"github.com/computeha/computeha/test/nova"
)

// Guard is the mass-failure guard of the daemon's configuration.
type Guard struct {
	MaxHosts           int
	Window             string // a duration, as the configuration spells it
	MaxSegmentFraction float64
}

// DefaultGuard lets the lab lose two of its three computes together.
var DefaultGuard = Guard{MaxHosts: 3, Window: "10m", MaxSegmentFraction: 0.7}

// SetGuard rewrites the daemon's configuration with guard g (see Reconfigure).
func (e *Env) SetGuard(ctx context.Context, g Guard) error {
	return e.Reconfigure(ctx, func(s *Settings) { s.Guard = g })
}

// Reconfigure rewrites the daemon's configuration with what change makes of its settings and
// restarts the evacuator so that it reads it (the daemon reads its file at start only).
func (e *Env) Reconfigure(ctx context.Context, change func(*Settings)) error {
	s := e.settings
	change(&s)
	if err := e.writeEvacdConfig(s); err != nil {
		return err
	}
	e.settings = s
	return e.RestartEvacuator(ctx)
}

// RestartEvacuator restarts the evacuator resource and waits until a new
// daemon answers Pacemaker's start.
func (e *Env) RestartEvacuator(ctx context.Context) error {
	_, before, _ := e.EvacuatorPID(ctx)
	if err := e.pcs(ctx, "resource", "restart", "evacuator"); err != nil {
		return err
	}
	deadline := time.Now().Add(time.Minute)
	for time.Now().Before(deadline) {
		if _, pid, err := e.EvacuatorPID(ctx); err == nil && pid != before {
			return nil
		}
		time.Sleep(500 * time.Millisecond)
	}
	return fmt.Errorf("the evacuator did not restart within a minute (daemon pid %s before)", before)
}

// HistoryEvent is one event line of `computeha history --json`.
type HistoryEvent struct {
	Type       string `json:"type"`
	Time       string `json:"time"`
	Host       string `json:"host"`
	Kind       string `json:"kind"`
	Summary    string `json:"summary"`
	ReasonCode string `json:"reason_code"`
	ReasonText string `json:"reason_text"`
	Incident   string `json:"incident"`
	Actor      string `json:"actor"` // the daemon that recorded it: its node
}

// History runs `computeha history --json` as an operator would and returns
// the events about host of kind (any kind when empty).
func (e *Env) History(ctx context.Context, host, kind string) ([]HistoryEvent, error) {
	args := []string{"history", "--config", e.EvacdConfig(), "--host", host, "--json"}
	if kind != "" {
		args = append(args, "--kind", kind)
	}
	out, err := exec.CommandContext(ctx, filepath.Join(e.Bin, "computeha"), args...).Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return nil, fmt.Errorf("computeha history: %w: %s", err, ee.Stderr)
		}
		return nil, fmt.Errorf("computeha history: %w", err)
	}
	var evs []HistoryEvent
	sc := bufio.NewScanner(strings.NewReader(string(out)))
	sc.Buffer(make([]byte, 0, 64*1024), 4*1024*1024)
	for sc.Scan() {
		var ev HistoryEvent
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
			return nil, fmt.Errorf("computeha history: line %q: %w", sc.Text(), err)
		}
		if ev.Type == "event" {
			evs = append(evs, ev)
		}
	}
	return evs, sc.Err()
}

// ReleaseGuard runs `computeha guard release HOST` on a controller, as an
// operator would.
func (e *Env) ReleaseGuard(ctx context.Context, host string) error {
	out, errOut, code, err := e.Lab.Exec(ctx, e.observer, "computeha", "guard", "release", host)
	if err != nil {
		return err
	}
	if code != 0 {
		return fmt.Errorf("computeha guard release %s: exit %d: %s%s", host, code, out, errOut)
	}
	return nil
}

// Mark reads host's evacuation state.
func (e *Env) Mark(ctx context.Context, host string) (evacstate.State, error) {
	return evacstate.Marks{Attrs: e.CRM}.Get(ctx, host)
}

// Frozen is a group of processes stopped with SIGSTOP.
type Frozen struct {
	procs []proc
}

type proc struct {
	pid   int
	start string // start time in clock ticks, field 22 of /proc/PID/stat
}

// FreezeNovaDaemon stops one daemon of the cloud (nova-api, keystone, ...)
// and its workers with SIGSTOP: connections are still accepted by the
// kernel but never answered, as with a hung service. The daemon is found
// through the pid file the Nova script keeps (pid and start time), never
// by name, since other labs run the same programs.
func (e *Env) FreezeNovaDaemon(name string) (*Frozen, error) {
	b, err := os.ReadFile(filepath.Join(e.Plane.Dir, "run", name+".pid"))
	if err != nil {
		return nil, err
	}
	f := strings.Fields(string(b))
	if len(f) != 2 {
		return nil, fmt.Errorf("%s pid file: %q", name, b)
	}
	pid, err := strconv.Atoi(f[0])
	if err != nil {
		return nil, fmt.Errorf("%s pid file: %w", name, err)
	}
	if st, err := startTime(pid); err != nil || st != f[1] {
		return nil, fmt.Errorf("%s (pid %d) is not running (start time %q, recorded %s, %v)", name, pid, st, f[1], err)
	}
	// The master first, so it cannot respawn a worker stopped before it.
	fr := &Frozen{procs: []proc{{pid: pid, start: f[1]}}}
	if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
		return nil, err
	}
	for _, c := range descendants(pid) {
		if err := syscall.Kill(c.pid, syscall.SIGSTOP); err == nil {
			fr.procs = append(fr.procs, c)
		}
	}
	return fr, nil
}

// Thaw resumes the processes, those still the same processes.
func (f *Frozen) Thaw() error {
	var errs []error
	for _, p := range slices.Backward(f.procs) {
		if st, err := startTime(p.pid); err != nil || st != p.start {
			continue
		}
		if err := syscall.Kill(p.pid, syscall.SIGCONT); err != nil {
			errs = append(errs, fmt.Errorf("SIGCONT %d: %w", p.pid, err))
		}
	}
	return errors.Join(errs...)
}

// Count is how many processes were stopped.
func (f *Frozen) Count() int { return len(f.procs) }

// statFields returns the fields of /proc/PID/stat after the command name
// (which may hold spaces): index 0 is field 3 (state).
func statFields(pid int) ([]string, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return nil, err
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return nil, fmt.Errorf("/proc/%d/stat: %q", pid, s)
	}
	return strings.Fields(s[i+1:]), nil
}

func startTime(pid int) (string, error) {
	f, err := statFields(pid)
	if err != nil {
		return "", err
	}
	if len(f) < 20 {
		return "", fmt.Errorf("/proc/%d/stat: too short", pid)
	}
	return f[19], nil
}

// descendants lists every process below pid.
func descendants(pid int) []proc {
	ents, _ := os.ReadDir("/proc")
	children := map[int][]proc{}
	for _, d := range ents {
		p, err := strconv.Atoi(d.Name())
		if err != nil {
			continue
		}
		f, err := statFields(p)
		if err != nil || len(f) < 20 {
			continue
		}
		ppid, _ := strconv.Atoi(f[1])
		children[ppid] = append(children[ppid], proc{pid: p, start: f[19]})
	}
	var out []proc
	queue := []int{pid}
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		for _, c := range children[p] {
			out = append(out, c)
			queue = append(queue, c.pid)
		}
	}
	return out
}

// States reads every server's host and state from Nova's cell database,
// not its API: a watcher polling the API several times a second takes a
// good share of nova-api's two workers, and slows the recovery it
// measures. Status follows the API's mapping for the states a recovery
// goes through (active, error, stopped, with a task or without).
func (e *Env) States(ctx context.Context) (map[string]nova.ServerState, error) {
	b, err := os.ReadFile(filepath.Join(e.Plane.Dir, "run", "holder.pid"))
	if err != nil {
		return nil, err
	}
	f := strings.Fields(string(b))
	if len(f) != 2 {
		return nil, fmt.Errorf("holder pid file: %q", b)
	}
	if pid, err := strconv.Atoi(f[0]); err != nil {
		return nil, fmt.Errorf("holder pid file: %w", err)
	} else if st, err := startTime(pid); err != nil || st != f[1] {
		return nil, fmt.Errorf("the cloud's namespace holder %d is gone", pid)
	}
	cmd := exec.CommandContext(ctx, "nsenter", "-t", f[0], "-m", "-n", "--",
		"mariadb", "--no-defaults", "--socket="+filepath.Join(e.Plane.Dir, "run", "mysqld.sock"), "-u", "root", "-N", "-B",
		"-e", "SELECT uuid, IFNULL(host, ''), vm_state, IFNULL(task_state, '') FROM nova.instances WHERE deleted = 0")
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("reading Nova's instances: %w", err)
	}
	states := map[string]nova.ServerState{}
	for line := range strings.Lines(string(out)) {
		c := strings.Split(strings.TrimRight(line, "\n"), "\t")
		if len(c) != 4 {
			continue
		}
		status := strings.ToUpper(c[2])
		switch c[2] {
		case "active":
			status = "ACTIVE"
			if c[3] == "rebuilding" || c[3] == "rebuild_spawning" || c[3] == "rebuild_block_device_mapping" {
				status = "REBUILD"
			}
		case "stopped":
			status = "SHUTOFF"
		}
		states[c[0]] = nova.ServerState{Host: c[1], Status: status, TaskState: c[3]}
	}
	return states, nil
}

// HistoryMove is one move line of `computeha history --json`.
type HistoryMove struct {
	Incident string    `json:"incident"`
	VMID     string    `json:"vm_id"`
	VMName   string    `json:"vm_name"`
	From     string    `json:"from"`
	To       string    `json:"to"`
	Start    time.Time `json:"start"`
	End      time.Time `json:"end"`
	Result   string    `json:"result"`
	Method   string    `json:"method"`
	Error    string    `json:"error"`
}

// HistoryMoves returns the moves from or to host that `computeha history --json` lists.
func (e *Env) HistoryMoves(ctx context.Context, host string) ([]HistoryMove, error) {
	out, err := exec.CommandContext(ctx, filepath.Join(e.Bin, "computeha"), "history", "--config", e.EvacdConfig(), "--host", host, "--json").Output()
	if err != nil {
		return nil, fmt.Errorf("computeha history: %w", err)
	}
	var moves []HistoryMove
	for line := range strings.Lines(string(out)) {
		var head struct {
			Type string `json:"type"`
		}
		if err := json.Unmarshal([]byte(line), &head); err != nil {
			return nil, fmt.Errorf("computeha history: line %q: %w", line, err)
		}
		if head.Type != "move" {
			continue
		}
		var m HistoryMove
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			return nil, fmt.Errorf("computeha history: line %q: %w", line, err)
		}
		moves = append(moves, m)
	}
	return moves, nil
}

// ConfirmToRequest reads from the daemon's history when it confirmed host's fencing after
// fault, and when it began its first move from host.
func (e *Env) ConfirmToRequest(ctx context.Context, host string, fault time.Time) (confirmed, first time.Time, err error) {
	evs, err := e.History(ctx, host, "decision")
	if err != nil {
		return confirmed, first, err
	}
	for _, ev := range evs {
		at, perr := time.Parse(time.RFC3339Nano, ev.Time)
		if perr == nil && ev.ReasonCode == "fencing-confirmed" && at.After(fault) && (confirmed.IsZero() || at.Before(confirmed)) {
			confirmed = at
		}
	}
	moves, err := e.HistoryMoves(ctx, host)
	if err != nil {
		return confirmed, first, err
	}
	for _, m := range moves {
		if m.From == host && m.Result != "skipped" && m.Start.After(fault) && (first.IsZero() || m.Start.Before(first)) {
			first = m.Start
		}
	}
	if confirmed.IsZero() || first.IsZero() {
		return confirmed, first, fmt.Errorf("the history of %s has no fencing confirmed (%s) or no move (%s) after the fault", host, confirmed, first)
	}
	return confirmed, first, nil
}
