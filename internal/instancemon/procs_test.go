package instancemon

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

// fakeProcess is a process the guard watches: down until a restart brings it back, unless
// restarts are broken.
type fakeProcess struct {
	mu       sync.Mutex
	up       bool
	broken   bool
	restarts []time.Duration // when each restart was run, since start
	start    time.Time
	events   []HostEvent
	failNext int
}

func (f *fakeProcess) running(string) (bool, string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.up, "", nil
}

func (f *fakeProcess) restart(context.Context, string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.restarts = append(f.restarts, time.Since(f.start))
	if f.broken {
		return errors.New("exit status 1: bad configuration")
	}
	f.up = true
	return nil
}

func (f *fakeProcess) report(_ context.Context, e HostEvent) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.failNext > 0 {
		f.failNext--
		return errors.New("connection refused")
	}
	f.events = append(f.events, e)
	return nil
}

func (f *fakeProcess) set(up, broken bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.up, f.broken = up, broken
}

func (f *fakeProcess) states() []ProcessState {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []ProcessState
	for _, e := range f.events {
		out = append(out, e.State)
	}
	return out
}

func guard(t *testing.T, f *fakeProcess) context.CancelFunc {
	t.Helper()
	f.start = time.Now()
	g := &ProcessGuard{
		Host: "cmp1", Processes: []GuardedProcess{{Name: "libvirtd", RestartCommand: "libvirtd --daemon"}},
		Running: f.running, Restart: f.restart, Report: f.report,
		Interval: 5 * time.Second, GiveUpAfter: time.Minute, Backoff: time.Second, MaxBackoff: 16 * time.Second,
		Log: slog.New(slog.DiscardHandler),
	}
	ctx, cancel := context.WithCancel(t.Context())
	go func() { _ = g.Run(ctx) }()
	return cancel
}

func TestAProcessThatDiesIsRestartedAtOnceAndNothingIsReported(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := &fakeProcess{up: true}
		defer guard(t, f)()
		time.Sleep(7 * time.Second)
		f.set(false, false)
		time.Sleep(5 * time.Second)
		synctest.Wait()
		if len(f.restarts) != 1 || !f.up {
			t.Fatalf("restarts %v, up %v; want one restart at the first check after it died", f.restarts, f.up)
		}
		time.Sleep(2 * time.Minute)
		if s := f.states(); len(s) != 0 {
			t.Errorf("reported %v; a process restarted at once is no failure to report", s)
		}
	})
}

func TestAProcessThatCannotBeRestartedIsReportedFailedOnceThenRecovered(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := &fakeProcess{}
		f.set(false, true)
		f.failNext = 2 // the daemon is away at first: the report is retried
		defer guard(t, f)()
		time.Sleep(3 * time.Minute)
		synctest.Wait()
		if s := f.states(); len(s) != 1 || s[0] != ProcessFailed {
			t.Fatalf("reported %v after 3 minutes down; want failed, once", s)
		}
		// Restarts at the checks after a growing backoff (1, 2, 4, 8, 16, 16... s).
		n := len(f.restarts)
		if n < 8 || n > 14 {
			t.Errorf("%d restarts in 3 minutes: %v; want a growing backoff up to 16 s", n, f.restarts)
		}
		f.set(false, false) // fixed: the next restart works
		time.Sleep(time.Minute)
		synctest.Wait()
		if s := f.states(); len(s) != 2 || s[1] != ProcessRecovered {
			t.Errorf("reported %v; want failed, then recovered", s)
		}
	})
}
