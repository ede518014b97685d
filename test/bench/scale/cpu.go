package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/computeha/computeha/test/e2e"
	"github.com/computeha/computeha/test/lab"
)

// The parts whose CPU is measured. A part's processes are found by the mount namespace they run
// in (each lab node and Nova's cloud have theirs) and their name; the time a process spent
// includes that of the children it reaped (the agents pacemaker-execd and pacemaker-remoted
// ran, the crm_mon and stonith_admin calls of the daemon), except in Nova's cloud, whose
// workers are counted themselves.
const (
	gEvacd       = "evacuation daemon (with the commands it ran)"
	gPacemaker   = "Pacemaker and Corosync on the 3 controllers"
	gRemoted     = "pacemaker-remoted on the computes (with agents)"
	gNovaCompute = "nova-compute on the computes"
	gCloud       = "Nova, Placement, Keystone, MariaDB, RabbitMQ"
	machine      = "machine"
)

var groups = []string{gEvacd, gPacemaker, gRemoted, gNovaCompute, gCloud}

// clockTicks is the unit of /proc's CPU times (USER_HZ, 100 on every Linux this runs on).
const clockTicks = 100

func cores() int { return runtime.NumCPU() }

// classifier says which part a process belongs to.
type classifier struct {
	evacd int
	kind  map[string]string // mount namespace → lab.Controller, lab.Compute or "cloud"
}

func newClassifier(ctx context.Context, env *e2e.Env) (*classifier, error) {
	c := &classifier{kind: map[string]string{}}
	_, pid, err := env.EvacuatorPID(ctx)
	if err != nil {
		return nil, err
	}
	if c.evacd, err = strconv.Atoi(pid); err != nil {
		return nil, fmt.Errorf("evacuation daemon pid %q: %w", pid, err)
	}
	nodes, err := env.Lab.Nodes(ctx)
	if err != nil {
		return nil, err
	}
	for _, n := range nodes {
		if n.HolderPID == 0 {
			continue
		}
		ns, err := mountNS(n.HolderPID)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", n.Name, err)
		}
		c.kind[ns] = n.Kind
	}
	b, err := os.ReadFile(filepath.Join(env.Plane.Dir, "run", "holder.pid"))
	if err != nil {
		return nil, err
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return nil, fmt.Errorf("the cloud's holder pid file is empty")
	}
	holder, err := strconv.Atoi(f[0])
	if err != nil {
		return nil, fmt.Errorf("the cloud's holder pid file: %w", err)
	}
	ns, err := mountNS(holder)
	if err != nil {
		return nil, fmt.Errorf("the cloud: %w", err)
	}
	c.kind[ns] = "cloud"
	return c, nil
}

func mountNS(pid int) (string, error) {
	return os.Readlink(fmt.Sprintf("/proc/%d/ns/mnt", pid))
}

// classify returns pid's part ("" for none) and whether its reaped children count.
func (c *classifier) classify(pid int) (string, bool) {
	if pid == c.evacd {
		return gEvacd, true
	}
	ns, err := mountNS(pid)
	if err != nil {
		return "", false
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
	if err != nil {
		return "", false
	}
	comm := strings.TrimSpace(string(b))
	switch c.kind[ns] {
	case lab.Controller:
		if strings.HasPrefix(comm, "pacemaker") || comm == "corosync" {
			return gPacemaker, true
		}
	case lab.Compute:
		switch {
		case strings.HasPrefix(comm, "pacemaker-remot"):
			return gRemoted, true
		case isNovaCompute(pid):
			return gNovaCompute, true
		}
	case "cloud":
		return gCloud, false
	}
	return "", false
}

// isNovaCompute says whether pid runs nova-compute (a Python script: its name is python3).
func isNovaCompute(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	return err == nil && strings.Contains(string(b), "nova-compute")
}

// sample is the CPU time of every measured process and of the whole machine at one time.
type sample struct {
	at          time.Time
	busy, total int64        // the machine's, in ticks
	procs       map[int]proc // by pid
	evacd       e2e.Memory   // the daemon's, zero when it could not be read
}

type proc struct {
	group string
	ticks int64
}

// use is each part's CPU between s and later, in percent of one core.
func (s sample) use(later sample) map[string]float64 {
	secs := later.at.Sub(s.at).Seconds()
	out := map[string]float64{}
	if secs <= 0 {
		return out
	}
	for pid, p := range later.procs {
		// A process gone by then lost its last seconds; one new since counts from zero.
		out[p.group] += float64(p.ticks-s.procs[pid].ticks) / clockTicks / secs * 100
	}
	if dt := later.total - s.total; dt > 0 {
		out[machine] = float64(later.busy-s.busy) / float64(dt) * float64(cores()) * 100
	}
	return out
}

// class is a process's part and whether the children it reaped count with it.
type class struct {
	group string
	kids  bool
}

// sampler takes a sample at every interval.
type sampler struct {
	c       *classifier
	mu      sync.Mutex
	samples []sample
	known   map[int]class // by pid; a process not measured has no group
}

func (s *sampler) run(ctx context.Context, every time.Duration) {
	s.known = map[int]class{}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		if sm, err := s.take(); err == nil {
			s.mu.Lock()
			s.samples = append(s.samples, sm)
			s.mu.Unlock()
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (s *sampler) take() (sample, error) {
	sm := sample{at: time.Now(), procs: map[int]proc{}}
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return sm, err
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	if len(f) < 8 || f[0] != "cpu" {
		return sm, errors.New("/proc/stat: no cpu line")
	}
	for i, v := range f[1:] {
		n, _ := strconv.ParseInt(v, 10, 64)
		sm.total += n
		if i != 3 && i != 4 { // idle, iowait
			sm.busy += n
		}
	}
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return sm, err
	}
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		k, ok := s.known[pid]
		if !ok {
			k.group, k.kids = s.c.classify(pid)
			s.known[pid] = k
		}
		if k.group == "" {
			continue
		}
		if t, err := ticks(pid, k.kids); err == nil {
			sm.procs[pid] = proc{group: k.group, ticks: t}
		}
	}
	sm.evacd, _ = e2e.ReadMemory(s.c.evacd)
	return sm, nil
}

// ticks is pid's user and system time, with that of its reaped children when kids.
func ticks(pid int, kids bool) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The name in parentheses may hold spaces: the fields after it are counted from there.
	i := strings.LastIndexByte(string(b), ')')
	if i < 0 {
		return 0, fmt.Errorf("/proc/%d/stat: no name", pid)
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 15 {
		return 0, fmt.Errorf("/proc/%d/stat: %d fields", pid, len(f))
	}
	n := 2 // utime, stime: fields 14 and 15, f[11] and f[12]
	if kids {
		n = 4 // and cutime, cstime
	}
	var sum int64
	for _, v := range f[11 : 11+n] {
		x, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("/proc/%d/stat: %w", pid, err)
		}
		sum += x
	}
	return sum, nil
}

// around is the sample nearest to t.
func (s *sampler) around(t time.Time) sample {
	s.mu.Lock()
	defer s.mu.Unlock()
	var best sample
	for _, sm := range s.samples {
		if best.at.IsZero() || abs(sm.at.Sub(t)) < abs(best.at.Sub(t)) {
			best = sm
		}
	}
	return best
}

func abs(d time.Duration) time.Duration {
	if d < 0 {
		return -d
	}
	return d
}

// busiest is the largest fraction of the machine busy over any window between from and to,
// and when (after from) that window began.
func (s *sampler) busiest(from, to time.Time, window time.Duration) (float64, time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	best, when := 0.0, time.Duration(0)
	for i, a := range s.samples {
		if a.at.Before(from) {
			continue
		}
		for _, b := range s.samples[i+1:] {
			if b.at.After(to) {
				break
			}
			if b.at.Sub(a.at) >= window {
				if dt := b.total - a.total; dt > 0 {
					if f := float64(b.busy-a.busy) / float64(dt); f > best {
						best, when = f, a.at.Sub(from)
					}
				}
				break
			}
		}
	}
	return best, when
}

// evacdMemory is the daemon's memory in kB from the last sample: its RSS, its peak, and
// the largest anonymous (heap, stacks) and file-backed (the binary's pages) parts sampled.
func (s *sampler) evacdMemory() (rss, hwm, anon, file int64, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, sm := range s.samples {
		anon, file = max(anon, sm.evacd.Anon), max(file, sm.evacd.File)
	}
	for i := len(s.samples) - 1; i >= 0; i-- {
		if m := s.samples[i].evacd; m != (e2e.Memory{}) {
			return m.RSS, m.HWM, anon, file, nil
		}
	}
	return 0, 0, 0, 0, errors.New("the evacuation daemon's memory was never read")
}
