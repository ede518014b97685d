package instancemon

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	libvirt "github.com/digitalocean/go-libvirt"
	"github.com/google/go-cmp/cmp"
)

func TestLifecycleEventsAreFailuresOnlyWhenNobodyAskedForThem(t *testing.T) {
	type want struct {
		kind   Kind
		reason string
		ok     bool
	}
	for _, c := range []struct {
		name          string
		event, detail int32
		want          want
	}{
		{"qemu died: stopped, failed", int32(libvirt.DomainEventStopped), int32(libvirt.DomainEventStoppedFailed), want{Crashed, "failed", true}},
		{"the guest crashed: stopped, crashed", int32(libvirt.DomainEventStopped), int32(libvirt.DomainEventStoppedCrashed), want{Crashed, "crashed", true}},
		{"the guest panicked", int32(libvirt.DomainEventCrashed), int32(libvirt.DomainEventCrashedPanicked), want{Crashed, "panicked", true}},
		{"a guest shut down by itself is a stop for Nova to explain", int32(libvirt.DomainEventStopped), int32(libvirt.DomainEventStoppedShutdown), want{Stopped, "shutdown", true}},
		{"a destroy is a stop for Nova to explain", int32(libvirt.DomainEventStopped), int32(libvirt.DomainEventStoppedDestroyed), want{Stopped, "destroyed", true}},
		{"migrated away: on purpose", int32(libvirt.DomainEventStopped), int32(libvirt.DomainEventStoppedMigrated), want{}},
		{"saved: on purpose", int32(libvirt.DomainEventStopped), int32(libvirt.DomainEventStoppedSaved), want{}},
		{"paused by an I/O error", int32(libvirt.DomainEventSuspended), int32(libvirt.DomainEventSuspendedIoerror), want{IOError, "paused", true}},
		{"paused by its watchdog", int32(libvirt.DomainEventSuspended), int32(libvirt.DomainEventSuspendedWatchdog), want{Watchdog, "paused", true}},
		{"paused by someone: on purpose", int32(libvirt.DomainEventSuspended), int32(libvirt.DomainEventSuspendedPaused), want{}},
		{"started", int32(libvirt.DomainEventStarted), int32(libvirt.DomainEventStartedBooted), want{}},
		{"a crash kernel took over: it runs", int32(libvirt.DomainEventCrashed), int32(libvirt.DomainEventCrashedCrashloaded), want{}},
	} {
		t.Run(c.name, func(t *testing.T) {
			k, r, ok := Lifecycle(c.event, c.detail)
			if got := (want{k, r, ok}); got != c.want {
				t.Errorf("Lifecycle(%d, %d) = %+v, want %+v", c.event, c.detail, got, c.want)
			}
		})
	}
}

func newQueue(r Reporter) *Queue {
	return &Queue{Reporter: r, Backoff: time.Second, MaxBackoff: 8 * time.Second, MaxAge: 10 * time.Minute, Senders: 4, Log: slog.New(slog.DiscardHandler)}
}

func TestABurstOfOneGuestsFailuresIsOneReportOfTheLatestWithTheCount(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := &FakeReporter{}
		release := r.Block()
		q := newQueue(r)
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		go func() { _ = q.Run(ctx) }()
		q.Put(Event{Server: "a", Kind: IOError, Time: time.Now()})
		synctest.Wait()
		// The first is being sent (blocked); the next three wait as one.
		for _, k := range []Kind{IOError, IOError, Watchdog} {
			q.Put(Event{Server: "a", Kind: k, Time: time.Now()})
		}
		if q.Len() != 1 {
			t.Fatalf("%d pending, want 1", q.Len())
		}
		release()
		synctest.Wait()
		got := r.Got()
		if len(got) != 2 || got[0].Count != 1 || got[1].Kind != Watchdog || got[1].Count != 3 {
			t.Errorf("reports %+v, want the first, then the watchdog standing for 3", got)
		}
	})
}

func TestTwentyGuestsFailingWhileTheReceiverHangsAreAllReportedAndPutNeverBlocks(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := &FakeReporter{}
		release := r.Block()
		q := newQueue(r)
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		go func() { _ = q.Run(ctx) }()
		for i := range 20 {
			q.Put(Event{Server: fmt.Sprintf("vm-%02d", i), Kind: Crashed, Time: time.Now()})
		}
		// Put returned 20 times while every sender is blocked: the reader never waits.
		time.Sleep(time.Hour)
		release()
		synctest.Wait()
		if got := len(r.Got()); got != 20 {
			t.Errorf("%d reports, want 20", got)
		}
	})
}

func TestAFailedReportIsRetriedWithBackoffAndARejectedOneIsDropped(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := &FakeReporter{}
		r.Fail(3)
		q := newQueue(r)
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		go func() { _ = q.Run(ctx) }()
		start := time.Now()
		q.Put(Event{Server: "a", Kind: Crashed, Time: start})
		// Tried at once, then after 1 s, 2 s and 4 s of backoff: delivered at 7 s.
		time.Sleep(6900 * time.Millisecond)
		synctest.Wait()
		if n := len(r.Got()); n != 0 {
			t.Fatalf("delivered before 7 s (after %s)", time.Since(start))
		}
		time.Sleep(200 * time.Millisecond)
		synctest.Wait()
		if n := len(r.Got()); n != 1 {
			t.Fatalf("%d deliveries at 7.1 s, want 1", n)
		}
		r.Reject()
		q.Put(Event{Server: "b", Kind: Crashed, Time: time.Now()})
		synctest.Wait()
		if sent, dropped := q.Counts(); sent != 1 || dropped != 1 {
			t.Errorf("sent %d dropped %d, want 1 and 1", sent, dropped)
		}
	})
}

func TestAReportNotDeliveredWithinMaxAgeIsDropped(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := &FakeReporter{}
		r.Fail(1 << 30)
		q := newQueue(r)
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		go func() { _ = q.Run(ctx) }()
		q.Put(Event{Server: "a", Kind: Crashed, Time: time.Now()})
		time.Sleep(11 * time.Minute)
		synctest.Wait()
		if _, dropped := q.Counts(); dropped != 1 || q.Len() != 0 {
			t.Errorf("dropped %d, pending %d; want the failure dropped after 10 minutes", dropped, q.Len())
		}
	})
}

func running(uuid string) DomainState {
	return DomainState{UUID: uuid, Name: "instance-" + uuid, State: int32(libvirt.DomainRunning)}
}

func startMonitor(t *testing.T, h *FakeHypervisor) (*FakeReporter, context.CancelFunc) {
	t.Helper()
	r := &FakeReporter{}
	q := newQueue(r)
	m := &Monitor{
		Host: "cmp1", Dial: h.Dial, Queue: q, Log: slog.New(slog.DiscardHandler),
		PingInterval: 5 * time.Second, PingTimeout: 3 * time.Second, RetryBackoff: time.Second, MaxRetryBackoff: 4 * time.Second,
	}
	ctx, cancel := context.WithCancel(t.Context())
	go func() { _ = q.Run(ctx) }()
	go func() { _ = m.Run(ctx) }()
	synctest.Wait()
	return r, cancel
}

func kinds(es []Event) []string {
	var out []string
	for _, e := range es {
		out = append(out, fmt.Sprintf("%s %s %s %s", e.Server, e.Kind, e.Reason, e.Source))
	}
	return out
}

func TestEventsAreClassifiedAndOnlyFailuresReported(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := &FakeHypervisor{}
		h.SetDomain(running("a"))
		r, cancel := startMonitor(t, h)
		defer cancel()
		c := h.Conn()
		c.Send(Raw{Type: RawLifecycle, UUID: "a", Name: "instance-a", Event: int32(libvirt.DomainEventStopped), Detail: int32(libvirt.DomainEventStoppedFailed)})
		c.Send(Raw{Type: RawLifecycle, UUID: "b", Name: "instance-b", Event: int32(libvirt.DomainEventStopped), Detail: int32(libvirt.DomainEventStoppedMigrated)})
		c.Send(Raw{Type: RawIOError, UUID: "c", Name: "instance-c", Action: int32(libvirt.DomainEventIoErrorPause), Reason: "enospc", Device: "/x/disk"})
		c.Send(Raw{Type: RawWatchdog, UUID: "d", Name: "instance-d", Action: int32(libvirt.DomainEventWatchdogPause)})
		synctest.Wait()
		// Sent by concurrent senders: in any order.
		got := r.Got()
		slices.SortFunc(got, func(a, b Event) int { return strings.Compare(a.Server, b.Server) })
		want := []string{"a crashed failed event", "c io-error enospc event", "d watchdog  event"}
		if d := cmp.Diff(want, kinds(got)); d != "" {
			t.Errorf("reports (-want +got):\n%s", d)
		}
		if len(got) == 3 && (got[1].Action != "pause" || got[1].Device != "/x/disk" || got[2].Action != "pause" || got[0].Host != "cmp1") {
			t.Errorf("details lost: %+v", got)
		}
	})
}

func TestAGuestThatCrashedWhileLibvirtdWasDownIsReportedOnReconnectingAndOldNewsIsNot(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := &FakeHypervisor{}
		h.SetDomain(running("a"))
		h.SetDomain(running("b"))
		// Shut off before the monitor started: not news. Paused by an error: still to act on.
		h.SetDomain(DomainState{UUID: "old", State: int32(libvirt.DomainShutoff), Reason: int32(libvirt.DomainShutoffCrashed)})
		h.SetDomain(DomainState{UUID: "stuck", State: int32(libvirt.DomainPaused), Reason: int32(libvirt.DomainPausedIoerror)})
		r, cancel := startMonitor(t, h)
		defer cancel()
		if d := cmp.Diff([]string{"stuck io-error paused reconcile"}, kinds(r.Got())); d != "" {
			t.Errorf("reports at start (-want +got):\n%s", d)
		}
		// libvirtd dies; a crashes meanwhile; b is stopped by Nova (shut down: not a crash).
		h.SetDown(true)
		h.Conn().Break()
		h.SetDomain(DomainState{UUID: "a", State: int32(libvirt.DomainShutoff), Reason: int32(libvirt.DomainShutoffCrashed)})
		h.SetDomain(DomainState{UUID: "b", State: int32(libvirt.DomainShutoff), Reason: int32(libvirt.DomainShutoffShutdown)})
		time.Sleep(10 * time.Second)
		dials := h.Dials
		h.SetDown(false)
		time.Sleep(5 * time.Second)
		synctest.Wait()
		if h.Dials != dials+1 {
			t.Fatalf("dials %d, want one more after libvirtd came back", h.Dials)
		}
		// The first at start; the two found on reconnecting are sent together, in any order.
		want := []string{"stuck io-error paused reconcile", "a crashed crashed reconcile", "b stopped shutdown reconcile"}
		got := kinds(r.Got())
		if len(got) > 1 {
			slices.Sort(got[1:])
		}
		if d := cmp.Diff(want, got); d != "" {
			t.Errorf("reports (-want +got):\n%s", d)
		}
	})
}

func TestAHungLibvirtdIsDroppedAndConnectedAgain(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := &FakeHypervisor{}
		_, cancel := startMonitor(t, h)
		defer cancel()
		c := h.Conn()
		c.Hang()
		// The next ping (5 s) times out after 3 s: closed and dialled again.
		time.Sleep(9 * time.Second)
		synctest.Wait()
		select {
		case <-c.Closed():
		default:
			t.Fatal("the hung connection was not closed")
		}
		if h.Dials != 2 {
			t.Errorf("dials %d, want 2", h.Dials)
		}
	})
}
