package instancemon

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/computeha/computeha/internal/clock"
)

// ProcessState is what a HostEvent says of a provisioning process.
type ProcessState string

const (
	// ProcessFailed: down for ProcessGuard.GiveUpAfter, its restarts failing.
	ProcessFailed ProcessState = "failed"
	// ProcessRecovered: running again after it was reported failed.
	ProcessRecovered ProcessState = "recovered"
)

// HostEvent is a provisioning process of a host that failed for good, or runs again.
type HostEvent struct {
	Host    string       `json:"host"`
	Process string       `json:"process"`
	State   ProcessState `json:"state"`
	// Detail says what was seen (the last restart's error, how long it was down).
	Detail string    `json:"detail,omitempty"`
	Time   time.Time `json:"time"`
}

// GuardedProcess is one process the guard keeps running.
type GuardedProcess struct {
	Name, RestartCommand string
}

// ProcessGuard keeps the host's provisioning processes (libvirtd, the network agent) running:
// each is checked every Interval and restarted with a growing backoff while it is down; one
// down for GiveUpAfter is reported failed (the daemon disables the host), and reported
// recovered once it runs again.
type ProcessGuard struct {
	Host      string
	Processes []GuardedProcess
	// Running tells whether the process named name runs (with a detail); an error means the
	// check failed: not known, not down.
	Running func(name string) (bool, string, error)
	// Restart runs a restart command.
	Restart func(ctx context.Context, command string) error
	// Report delivers a HostEvent; an error is retried with backoff.
	Report      func(ctx context.Context, e HostEvent) error
	Interval    time.Duration // default 5 s
	GiveUpAfter time.Duration // default 1 min
	// Backoff is the first wait between restarts, doubled up to MaxBackoff (defaults 1 s, 1 min).
	Backoff, MaxBackoff time.Duration
	// RestartTimeout bounds a restart command (default 1 min).
	RestartTimeout time.Duration
	Clock          clock.Clock
	Log            *slog.Logger
}

// processState is the guard's view of one process.
type processState struct {
	up          bool
	downSince   time.Time
	nextRestart time.Time
	backoff     time.Duration
	restarts    int
	lastErr     string
	reported    bool // reported failed, not yet recovered
}

// Run guards until ctx ends.
func (g *ProcessGuard) Run(ctx context.Context) error {
	if len(g.Processes) == 0 {
		return nil
	}
	clk := clock.Or(g.Clock)
	log := g.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	interval := g.Interval
	if interval <= 0 {
		interval = 5 * time.Second
	}
	giveUp := g.GiveUpAfter
	if giveUp <= 0 {
		giveUp = time.Minute
	}
	first := g.Backoff
	if first <= 0 {
		first = time.Second
	}
	maxBackoff := max(g.MaxBackoff, first)
	if g.MaxBackoff <= 0 {
		maxBackoff = max(time.Minute, first)
	}
	timeout := g.RestartTimeout
	if timeout <= 0 {
		timeout = time.Minute
	}
	states := make([]processState, len(g.Processes))
	for i := range states {
		states[i] = processState{up: true, backoff: first}
	}
	var wg sync.WaitGroup
	defer wg.Wait()
	var mu sync.Mutex // restarts and reports run in the background; they touch states
	restarting := make([]bool, len(g.Processes))
	reporters := make([]reporter, len(g.Processes))
	for {
		now := clk.Now()
		for i, p := range g.Processes {
			up, detail, err := g.Running(p.Name)
			if err != nil {
				log.Warn("cannot check a process", "process", p.Name, "error", err)
				continue
			}
			mu.Lock()
			st := &states[i]
			switch {
			case up:
				if !st.up {
					log.Info("the process runs again", "process", p.Name, "detail", detail, "down_for", now.Sub(st.downSince).Round(time.Second).String())
				}
				if st.reported {
					st.reported = false
					g.send(ctx, &wg, clk, log, &reporters[i], HostEvent{Host: g.Host, Process: p.Name, State: ProcessRecovered, Detail: detail, Time: now})
				}
				*st = processState{up: true, backoff: first}
			default:
				if st.up {
					st.up, st.downSince = false, now
					log.Warn("the process is down", "process", p.Name, "detail", detail)
				}
				if !st.reported && now.Sub(st.downSince) >= giveUp {
					st.reported = true
					why := "down for " + now.Sub(st.downSince).Round(time.Second).String()
					if st.lastErr != "" {
						why += "; the last restart: " + st.lastErr
					}
					log.Error("the process cannot be restarted: reporting it", "process", p.Name, "detail", why)
					g.send(ctx, &wg, clk, log, &reporters[i], HostEvent{Host: g.Host, Process: p.Name, State: ProcessFailed, Detail: why, Time: now})
				}
				if !restarting[i] && !now.Before(st.nextRestart) {
					restarting[i] = true
					st.restarts++
					st.nextRestart = now.Add(st.backoff)
					st.backoff = min(2*st.backoff, maxBackoff)
					log.Warn("restarting the process", "process", p.Name, "command", p.RestartCommand, "attempt", st.restarts)
					wg.Go(func() {
						rctx, cancel := context.WithTimeout(ctx, timeout)
						err := g.Restart(rctx, p.RestartCommand)
						cancel()
						mu.Lock()
						defer mu.Unlock()
						restarting[i] = false
						if err != nil {
							states[i].lastErr = err.Error()
							log.Error("the restart command failed", "process", p.Name, "error", err)
						}
					})
				}
			}
			mu.Unlock()
		}
		if clk.Sleep(ctx, interval) != nil {
			return nil
		}
	}
}

// reporter delivers the events of one process in order, the latest only: a process that
// failed and recovered before the failure could be delivered is reported recovered.
type reporter struct {
	mu      sync.Mutex
	pending *HostEvent
	sending bool
}

// send queues e and starts the delivery unless one runs: retried with backoff until it is
// taken or refused for good, or ctx ends.
func (g *ProcessGuard) send(ctx context.Context, wg *sync.WaitGroup, clk clock.Clock, log *slog.Logger, r *reporter, e HostEvent) {
	r.mu.Lock()
	r.pending = &e
	if r.sending {
		r.mu.Unlock()
		return
	}
	r.sending = true
	r.mu.Unlock()
	wg.Go(func() {
		wait := time.Second
		for attempt := 1; ; attempt++ {
			r.mu.Lock()
			e := r.pending
			r.mu.Unlock()
			err := g.Report(ctx, *e)
			r.mu.Lock()
			switch {
			case err == nil || errors.Is(err, ErrRejected):
				if err != nil {
					log.Error("process event refused: dropped", "process", e.Process, "state", string(e.State), "error", err)
				} else {
					log.Info("process event reported", "process", e.Process, "state", string(e.State), "attempts", attempt)
				}
				if r.pending == e {
					r.pending, r.sending = nil, false
					r.mu.Unlock()
					return
				}
				// A newer event came meanwhile: it goes next.
				r.mu.Unlock()
				attempt, wait = 0, time.Second
				continue
			}
			r.mu.Unlock()
			log.Warn("reporting a process event failed: retrying", "process", e.Process, "state", string(e.State), "error", err, "retry_in", wait.String())
			if clk.Sleep(ctx, wait) != nil {
				r.mu.Lock()
				r.sending = false
				r.mu.Unlock()
				return
			}
			wait = min(2*wait, 30*time.Second)
		}
	})
}
