package hostcheck

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/computeha/computeha/internal/config"
	"github.com/computeha/computeha/internal/health"
	"github.com/computeha/computeha/internal/watchdog"
)

// wdRig is a rig whose host holds a fake watchdog, with ctrl1 as its only observer.
type wdRig struct {
	*rig
	dev   *watchdog.Fake
	opens int
	mark  string
	// ctrl1Writes tells whether ctrl1, the observer, writes its heartbeat to the shared
	// directory each round (the storage is shared).
	ctrl1Writes bool
}

func watchdogHealth() config.Health {
	h := testHealth("/shared")
	h.Watchdog = config.Watchdog{
		Device: "file:/run/wd", Timeout: 8 * time.Second, SelfFenceAfter: 6 * time.Second,
		Observers: []string{"ctrl1"}, Margin: 2 * time.Second,
	}
	return h
}

func newWDRig(t *testing.T, h config.Health, mark string) *wdRig {
	t.Helper()
	return newWDRigBooted(t, h, mark, newClock().Now().Add(-time.Hour))
}

func newWDRigBooted(t *testing.T, h config.Health, mark string, boot time.Time) *wdRig {
	t.Helper()
	w := &wdRig{ctrl1Writes: true}
	if mark == "" {
		mark = filepath.Join(t.TempDir(), "condemned")
	}
	w.mark = mark
	w.rig = newRig(t, h, NewFakeStore(), func(o *Options) {
		o.OpenWatchdog = func(spec string, timeout time.Duration) (watchdog.Device, error) {
			w.opens++
			if spec != "file:/run/wd" {
				return nil, errors.New("no such device")
			}
			w.dev = watchdog.NewFake(timeout, w.clock.Now)
			return w.dev, nil
		}
		o.CondemnedMark, o.BootTime = mark, boot
	})
	return w
}

// round runs one round of every loop, with the pill read and the write finished, then
// moves the clock by a second.
func (w *wdRig) round() {
	if w.ctrl1Writes {
		b, _ := health.MarshalRecord(health.Record{Host: "ctrl1", Seq: 1, Time: w.clock.Now(), Service: health.ServiceOK})
		w.store.mu.Lock()
		w.store.files["/shared/ctrl1.heartbeat"] = b
		w.store.mu.Unlock()
	}
	w.c.probeStep(context.Background())
	w.beat()
	w.c.watchdogStep()
	if r := w.c.sf.read; r != nil {
		<-r.done
	}
	w.clock.Advance(time.Second)
}

func (w *wdRig) feeds() int {
	n, _, _ := w.dev.State()
	return n
}

func (w *wdRig) putPill(t *testing.T, p health.Pill) {
	t.Helper()
	b, err := health.MarshalPill(p)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.store.WriteFile(filepath.Join("/shared", health.PillFile(p.Host)), b); err != nil {
		t.Fatal(err)
	}
}

func (w *wdRig) answer(ctrl1, cmp2 bool) {
	w.probers["mgmt"].Set(addr("10.0.0.10"), ctrl1)
	w.probers["mgmt"].Set(addr("10.0.0.2"), cmp2)
	w.probers["storage"].Set(addr("10.1.0.2"), cmp2)
}

func TestAHealthyHostFeedsItsWatchdogAndAnnouncesIt(t *testing.T) {
	w := newWDRig(t, watchdogHealth(), "")
	w.answer(true, true)
	for range 20 {
		w.round()
	}
	if w.dev.Expired() || w.feeds() < 20 {
		t.Fatalf("a healthy host: %d feeds, expired %v", w.feeds(), w.dev.Expired())
	}
	w.beat()
	rec := ownRecord(t, w.store)
	if rec.Watchdog == nil || rec.Watchdog.Timeout() != 8*time.Second || rec.Watchdog.SelfFenceAfter() != 6*time.Second || rec.Condemned != nil {
		t.Fatalf("record %+v, want the watchdog announced and no condemnation", rec)
	}
	if h := w.c.Health(); h.Watchdog == nil || !h.Watchdog.Armed || !h.OK {
		t.Fatalf("health %+v", h)
	}
}

// ownRecord is cmp1's heartbeat record as written in the fake shared directory.
func ownRecord(t *testing.T, s *FakeStore) health.Record {
	t.Helper()
	b, err := s.ReadFile("/shared/cmp1.heartbeat")
	if err != nil {
		t.Fatal(err)
	}
	rec, err := health.ParseRecord(b)
	if err != nil {
		t.Fatal(err)
	}
	return rec
}

func TestAPillStopsTheFeedsForGoodAndIsAcknowledged(t *testing.T) {
	w := newWDRig(t, watchdogHealth(), "")
	w.answer(true, true)
	for range 3 {
		w.round()
	}
	// A pill for another host, and one that does not parse, are ignored.
	w.putPill(t, health.Pill{Host: "cmp2", ID: "p0", By: "ctrl1", Time: w.clock.Now()})
	_ = w.store.WriteFile("/shared/cmp1.pill", []byte("{garbage"))
	for range 3 {
		w.round()
	}
	if w.dev.Expired() || w.c.Health().Watchdog.Condemned != "" {
		t.Fatal("a foreign or torn pill condemned the host")
	}
	w.putPill(t, health.Pill{Host: "cmp1", ID: "p1", By: "ctrl1", Time: w.clock.Now()})
	w.round() // reads it
	w.round() // obeys it
	condemnedAt := w.dev.LastFeed()
	for range 10 {
		w.round()
	}
	if !w.dev.Expired() {
		t.Fatal("the watchdog was still fed after the pill")
	}
	if got := w.dev.LastFeed(); !got.Equal(condemnedAt) {
		t.Fatalf("fed at %s after being condemned at %s", got, condemnedAt)
	}
	w.beat()
	rec := ownRecord(t, w.store)
	if rec.Condemned == nil || rec.Condemned.Pill != "p1" || rec.Condemned.Since.Before(condemnedAt) {
		t.Fatalf("record %+v, want the pill acknowledged after the last feed (%s)", rec.Condemned, condemnedAt)
	}
	// A restarted hostcheck finds the mark and never feeds either, even with the pill gone.
	if _, err := os.Stat(w.mark); err != nil {
		t.Fatal(err)
	}
	// Opening the device again would restart its countdown: it is left as it runs.
	w2 := newWDRig(t, watchdogHealth(), w.mark)
	w2.answer(true, true)
	for range 10 {
		w2.round()
	}
	if w2.opens != 0 {
		t.Fatalf("a restarted hostcheck opened a condemned host's watchdog %d times", w2.opens)
	}
	w2.beat()
	rec2 := ownRecord(t, w2.store)
	if rec2.Condemned == nil || rec2.Condemned.Pill != "p1" || rec2.Watchdog == nil || rec2.Watchdog.Timeout() != 8*time.Second {
		t.Fatalf("a restarted condemned hostcheck's record: %+v, %+v", rec2.Condemned, rec2.Watchdog)
	}
	// A condemned host's stop leaves the countdown running.
	w.c.stopWatchdog(true)
	if _, disarmed, _ := w.dev.State(); disarmed {
		t.Fatal("a condemned host disarmed its watchdog")
	}
}

func TestAHostAloneFencesItselfButAnIsolatedOneDoesNot(t *testing.T) {
	tests := []struct {
		name         string
		storageFails bool
		ctrl1, cmp2  bool
		wantFenced   bool
	}{
		{"storage and the observer lost: fenced", true, false, false, true},
		{"storage and the observer lost, a non-observer still answering: fenced", true, false, true, true},
		{"every network lost, storage fine: isolated, never fenced", false, false, false, false},
		{"every network lost, writes succeed but to a directory no observer writes to (a mount point left empty): fenced", false, false, false, true},
		{"storage lost, the observer answering: it could hear a pill, not fenced", true, true, false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := newWDRig(t, watchdogHealth(), "")
			w.answer(true, true)
			for range 3 {
				w.round()
			}
			if tt.storageFails {
				w.store.Fail(errors.New("EIO"))
			}
			if strings.Contains(tt.name, "mount point") {
				w.ctrl1Writes = false
			}
			w.answer(tt.ctrl1, tt.cmp2)
			for range 30 {
				w.round()
			}
			if fired := w.dev.Expired(); fired != tt.wantFenced {
				t.Fatalf("watchdog fired %v, want %v (health %+v)", fired, tt.wantFenced, w.c.Health().Watchdog)
			}
			if tt.wantFenced {
				// Alone from the last write and the last answer of round 3 (t0+2s): 6s later
				// it notices on its next round, so the last feed is at most 7s after.
				last := newClock().Now().Add(2 * time.Second)
				if !w.ctrl1Writes {
					// ctrl1's last record stays fresh for stale_after + clock_skew (6s).
					last = last.Add(6 * time.Second)
				}
				if fed := w.dev.LastFeed(); fed.After(last.Add(7 * time.Second)) {
					t.Fatalf("last fed at %s, more than self_fence_after + a round after %s", fed, last)
				}
				if a := w.c.Health().Watchdog.Alone; !strings.Contains(a, "no observer") {
					t.Fatalf("alone = %q", a)
				}
			}
		})
	}
}

func TestOnlyADeliberateStopThatSaysSoDisarms(t *testing.T) {
	w := newWDRig(t, watchdogHealth(), "")
	w.answer(true, true)
	w.round()
	w.c.stopWatchdog(true)
	if _, disarmed, _ := w.dev.State(); !disarmed {
		t.Fatal("a deliberate stop left the watchdog armed")
	}
	// The last heartbeat says no watchdog is held any more, before it was disarmed.
	if rec := ownRecord(t, w.store); rec.Watchdog != nil {
		t.Fatalf("the last heartbeat still announces a watchdog: %+v", rec.Watchdog)
	}

	// A failure is no deliberate stop: the countdown goes on.
	w = newWDRig(t, watchdogHealth(), "")
	w.answer(true, true)
	w.round()
	w.c.stopWatchdog(false)
	if _, disarmed, _ := w.dev.State(); disarmed {
		t.Fatal("hostcheck failing disarmed the watchdog")
	}

	// A stop whose last heartbeat cannot say so leaves the countdown going too, and the
	// watchdog announced.
	w = newWDRig(t, watchdogHealth(), "")
	w.answer(true, true)
	w.round()
	w.store.Fail(errors.New("EIO"))
	w.c.stopWatchdog(true)
	if _, disarmed, _ := w.dev.State(); disarmed {
		t.Fatal("a stop that could not announce it disarmed the watchdog")
	}
	if h := w.c.Health(); !h.Watchdog.Armed {
		t.Fatal("the watchdog is no longer announced though it still counts down")
	}
}

func TestAPillFromBeforeTheHostStartedIsIgnored(t *testing.T) {
	boot := newClock().Now().Add(-time.Minute)
	w := newWDRigBooted(t, watchdogHealth(), "", boot)
	w.answer(true, true)
	w.round()
	// Written before the boot by more than the clock skew allowed: for the host's last life.
	w.putPill(t, health.Pill{Host: "cmp1", ID: "old", By: "ctrl1", Time: boot.Add(-3 * time.Second)})
	for range 5 {
		w.round()
	}
	if w.dev.Expired() || w.c.Health().Watchdog.Condemned != "" {
		t.Fatal("a pill from the host's earlier life condemned it")
	}
	// One written since is obeyed.
	w.putPill(t, health.Pill{Host: "cmp1", ID: "new", By: "ctrl1", Time: w.clock.Now()})
	w.round()
	w.round()
	if w.c.Health().Watchdog.Condemned != "new" {
		t.Fatal("a pill written since the boot was not obeyed")
	}
}

func TestTheHealthOfTheWatchdogIsReadWhileItsLoopRuns(t *testing.T) {
	// Run under the race detector: the socket and the metrics read what the loop writes.
	h := watchdogHealth()
	h.Watchdog.Device = "/dev/watchdog-missing"
	w := newWDRig(t, h, "")
	done := make(chan struct{})
	go func() {
		defer close(done)
		for range 50 {
			w.c.watchdogStep()
		}
	}()
	for range 50 {
		_ = w.c.Health()
	}
	<-done
}

func TestAMissingDeviceIsReported(t *testing.T) {
	h := watchdogHealth()
	h.Watchdog.Device = "/dev/watchdog-missing"
	w := newWDRig(t, h, "")
	w.answer(true, true)
	w.round()
	w.round()
	hl := w.c.Health()
	if hl.OK || !strings.Contains(hl.Reason, "cannot open the watchdog") || hl.Watchdog.Armed || w.opens != 2 {
		t.Fatalf("health %+v after %d opens, want the failure reported and retried", hl, w.opens)
	}
	w.beat()
	if rec := ownRecord(t, w.store); rec.Watchdog != nil {
		t.Fatalf("a host without its watchdog announced one: %+v", rec.Watchdog)
	}
}

func TestTheWatchdogMetricSaysWhetherItIsFed(t *testing.T) {
	w := newWDRig(t, watchdogHealth(), "")
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(newCollector(w.c))
	watchdogGauge := func() float64 {
		t.Helper()
		mfs, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		for _, mf := range mfs {
			for _, m := range mf.GetMetric() {
				for _, l := range m.GetLabel() {
					if mf.GetName() == "computeha_hostcheck_healthy" && l.GetValue() == "watchdog" {
						return m.GetGauge().GetValue()
					}
				}
			}
		}
		t.Fatal("no computeha_hostcheck_healthy{part=\"watchdog\"}")
		return -1
	}
	w.answer(true, true)
	w.round()
	if v := watchdogGauge(); v != 1 {
		t.Fatalf("armed and fed: %v, want 1", v)
	}
	w.putPill(t, health.Pill{Host: "cmp1", ID: "p1", By: "ctrl1", Time: w.clock.Now()})
	w.round()
	w.round()
	if v := watchdogGauge(); v != 0 {
		t.Fatalf("condemned: %v, want 0", v)
	}
}

func TestAHostCondemnedBeforeItsWatchdogOpenedKeepsTheCountdownOnceItDoes(t *testing.T) {
	h := watchdogHealth()
	h.Watchdog.Device = "/dev/watchdog-missing"
	w := newWDRig(t, h, "")
	w.answer(true, true)
	w.round()
	// A fence query by gossip reaches it before the device could be opened: obeyed, but not
	// acknowledged (there is no countdown to wait for).
	now := w.clock.Now()
	w.c.answerQuery(fenceQuery{q: health.FenceQuery{Host: "cmp1", ID: "early", By: "ctrl1", Time: now, Since: now}}, now)
	w.round()
	w.c.mu.Lock()
	condemned := w.c.sf.condemned
	w.c.mu.Unlock()
	if condemned == nil || condemned.Pill != "early" {
		t.Fatalf("condemned %+v, want the pill obeyed", condemned)
	}
	// The device appears: it is opened (its countdown starts) and never fed, and the mark
	// now names the countdown, so that a restarted hostcheck leaves it running.
	w.c.sf.cfg.Device = "file:/run/wd"
	w.round()
	w.round()
	if w.dev == nil || w.feeds() != 0 {
		t.Fatalf("device %v fed %d times after the condemnation", w.dev, w.feeds())
	}
	b, err := os.ReadFile(w.mark)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), `"early"`) || !strings.Contains(string(b), `"timeout_ms":8000`) {
		t.Fatalf("mark %s: want the pill and the 8s countdown", b)
	}
}
