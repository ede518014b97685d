package instancemon

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/computeha/computeha/internal/clock"
	"github.com/computeha/computeha/internal/healthsock"
	"github.com/computeha/computeha/internal/hostcheck"
)

// DefaultSocket is where the monitor answers health requests (ocf:computeha:instancemon's
// monitor asks it).
const DefaultSocket = "/run/computeha/instancemon.sock"

// Options configures Run.
type Options struct {
	Host     string
	Dial     Dialer
	Reporter Reporter
	// Socket is the health socket ("" serves none).
	Socket string
	// Processes are the provisioning processes kept running (none when empty), reported by
	// ReportHost when they cannot be restarted for ProcessGiveUp.
	Processes     []GuardedProcess
	ProcessGiveUp time.Duration
	ReportHost    func(ctx context.Context, e HostEvent) error
	Log           *slog.Logger
	Clock         clock.Clock
}

// Health is the monitor's answer on its socket.
type Health struct {
	// Connected: the monitor is connected to libvirtd and subscribed to its events.
	Connected bool      `json:"connected"`
	Since     time.Time `json:"since,omitzero"`
	// Domains is how many domains the last listing had.
	Domains int `json:"domains"`
	// Pending failures not delivered yet; Sent and Dropped so far.
	Pending int `json:"pending"`
	Sent    int `json:"sent"`
	Dropped int `json:"dropped"`
}

// processRunning tells whether a process of that name runs in this network namespace (the
// host's: other lab nodes share the kernel).
func processRunning(name string) (bool, string, error) {
	return (&hostcheck.ProcessCheck{Names: []string{name}}).Running()
}

// AskHealth reads a running monitor's health from its socket; an error means it did not
// answer.
func AskHealth(ctx context.Context, path string) (Health, error) {
	return healthsock.Ask[Health](ctx, path)
}

// Run watches the host's guests and reports their failures until ctx ends.
func Run(ctx context.Context, o Options) error {
	log := o.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log = log.With("component", "instancemon")
	clk := clock.Or(o.Clock)
	q := &Queue{
		Reporter: o.Reporter, Clock: clk, Log: log, Backoff: time.Second, MaxBackoff: 30 * time.Second,
		MaxAge: 10 * time.Minute, Senders: 8,
	}
	var (
		mu     sync.Mutex
		health Health
	)
	m := &Monitor{
		Host: o.Host, Dial: o.Dial, Queue: q, Clock: clk, Log: log,
		PingInterval: 5 * time.Second, PingTimeout: 5 * time.Second, RetryBackoff: time.Second, MaxRetryBackoff: 10 * time.Second,
		OnConnect: func(listed int) {
			mu.Lock()
			defer mu.Unlock()
			health.Connected, health.Since, health.Domains = true, clk.Now(), listed
		},
		OnDisconnect: func() {
			mu.Lock()
			defer mu.Unlock()
			health.Connected, health.Since = false, clk.Now()
		},
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errs := make(chan error, 3)
	var wg sync.WaitGroup
	wg.Go(func() { errs <- q.Run(ctx) })
	wg.Go(func() { errs <- m.Run(ctx) })
	if len(o.Processes) > 0 {
		g := &ProcessGuard{
			Host: o.Host, Processes: o.Processes, Running: processRunning, Restart: hostcheck.ShellRestart,
			Report: o.ReportHost, GiveUpAfter: o.ProcessGiveUp, Clock: clk, Log: log,
		}
		wg.Go(func() {
			if err := g.Run(ctx); err != nil {
				errs <- err
			}
		})
	}
	if o.Socket != "" {
		ln, err := healthsock.Listen(o.Socket)
		if err != nil {
			cancel()
			wg.Wait()
			return err
		}
		wg.Go(func() {
			errs <- healthsock.Serve(ctx, ln, func() Health {
				mu.Lock()
				h := health
				mu.Unlock()
				h.Pending = q.Len()
				h.Sent, h.Dropped = q.Counts()
				return h
			})
		})
	}
	log.Info("instance monitor started", "host", o.Host, "socket", o.Socket)
	var err error
	select {
	case <-ctx.Done():
	case err = <-errs:
	}
	cancel()
	wg.Wait()
	if n := q.Len(); n > 0 {
		log.Warn("stopping with failures not reported", "pending", n)
	}
	if err == nil || errors.Is(err, context.Canceled) {
		return nil
	}
	return err
}
