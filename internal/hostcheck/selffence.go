package hostcheck

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/computeha/computeha/internal/config"
	"github.com/computeha/computeha/internal/health"
	"github.com/computeha/computeha/internal/watchdog"
)

// DefaultCondemnedMark is where a condemnation is kept across restarts of hostcheck: on a
// tmpfs (/run), so that it ends with the host's power.
const DefaultCondemnedMark = "/run/computeha/condemned"

// finalWriteTimeout bounds the heartbeat that says the watchdog is released, at a stop.
const finalWriteTimeout = 2 * time.Second

// selfFence is the state of the watchdog loop. Only that loop touches dev, every and read;
// the fields under "c.mu" are read by the heartbeat loop, the health socket and the metrics.
type selfFence struct {
	cfg config.Watchdog
	dev watchdog.Device
	// every is how often the loop runs: an interval, or a quarter of the device's countdown
	// if that is sooner.
	every time.Duration
	// read is the read of the shared storage in flight, if any.
	read *storageRead

	// Under c.mu:
	// openErr is why the device could not be opened (retried every round); feedErr why the
	// last feed failed.
	openErr, feedErr string
	// armed is the watchdog the heartbeat announces; nil when none is held.
	armed     *health.RecordWatchdog
	condemned *health.Condemned
	// obeyed is the order condemned stands for (kept in the mark).
	obeyed health.Pill
	// alone is set once this host fenced itself for having lost everything.
	alone string
	// keptCountdown: hostcheck restarted on a condemned host. The device is not opened
	// again (opening restarts its countdown); the one the earlier process left runs out.
	keptCountdown bool
	// sharedAt is when a read last found an observer's record fresh in the shared
	// directory, on the process's clock: proof that it is the shared storage, not an empty
	// mount point, that this host reads its pills from.
	sharedAt time.Time
}

// storageRead is one read of the shared directory: this host's pill, and whether an
// observer's heartbeat there is fresh. A hung storage keeps it in flight; no other read
// starts behind it.
type storageRead struct {
	at     time.Time // when it started, on the process's clock
	done   chan struct{}
	pill   *health.Pill
	shared bool
}

// condemnedMark is what the mark keeps: the pill obeyed, and the watchdog whose countdown
// then ran.
type condemnedMark struct {
	Pill     health.Pill           `json:"pill"`
	Watchdog health.RecordWatchdog `json:"watchdog"`
}

// startWatchdog prepares the watchdog loop; it does nothing without a device configured.
func (c *checker) startWatchdog() {
	c.sf.cfg = c.h.Watchdog
	c.sf.every = min(c.h.Interval, config.FeedEvery(c.sf.cfg.Timeout))
	if !c.sf.cfg.Enabled() {
		return
	}
	data, err := os.ReadFile(c.o.CondemnedMark)
	switch {
	case err == nil:
		var m condemnedMark
		if err := json.Unmarshal(data, &m); err == nil && m.Pill.Host == c.o.Node && m.Watchdog.TimeoutMS > 0 {
			// hostcheck restarted after the host was condemned: the host must still die, by
			// the countdown that runs since then.
			c.sf.condemned, c.sf.obeyed = &health.Condemned{Pill: m.Pill.ID, Since: c.o.Now().UTC()}, m.Pill
			c.sf.armed, c.sf.keptCountdown = &m.Watchdog, true
			c.log.Error("this host was condemned before hostcheck restarted: the watchdog is left counting down, the host resets",
				"pill", m.Pill.ID, "by", m.Pill.By)
		} else {
			c.log.Warn("ignoring an unreadable condemnation mark", "path", c.o.CondemnedMark)
		}
	case !errors.Is(err, fs.ErrNotExist):
		c.log.Warn("cannot read the condemnation mark", "path", c.o.CondemnedMark, "error", err)
	}
}

// watchdogLoop runs the watchdog's rounds until ctx ends. It neither disarms nor releases
// the device: Run does, once every loop has stopped (stopWatchdog).
func (c *checker) watchdogLoop(ctx context.Context) {
	if !c.sf.cfg.Enabled() {
		return
	}
	t := time.NewTicker(c.sf.every)
	defer t.Stop()
	for {
		every := c.sf.every
		c.watchdogStep()
		if c.sf.every != every {
			t.Reset(c.sf.every)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case q := <-c.queries:
			// Here, between two rounds: no feed is under way, and none comes after.
			c.answerQuery(q, c.o.Now())
		}
	}
}

// stopWatchdog lets go of the device when the process ends. Only a deliberate stop of a
// host that may live disarms it, and only once a heartbeat saying that no watchdog is held
// has been written: a record still announcing one would let fence_gossip take the silence
// of a host whose watchdog no longer runs for its reset. Otherwise (a failure, a condemned
// host, that heartbeat not written) the countdown goes on, and the host resets unless
// hostcheck starts again in time.
func (c *checker) stopWatchdog(deliberate bool) {
	if c.sf.dev == nil {
		return
	}
	c.mu.Lock()
	doomed := c.sf.condemned != nil || c.sf.alone != ""
	armed := c.sf.armed
	if deliberate && !doomed {
		c.sf.armed = nil
	}
	c.mu.Unlock()
	release := func(why string) {
		c.log.Error("the watchdog keeps counting down: the host resets unless hostcheck starts again in time",
			"device", c.sf.cfg.Device, "timeout", c.sf.dev.Timeout(), "why", why)
		if err := c.sf.dev.Release(); err != nil {
			c.log.Warn("closing the watchdog failed", "device", c.sf.cfg.Device, "error", err)
		}
	}
	switch {
	case doomed:
		release("this host is condemned")
		return
	case !deliberate:
		release("hostcheck failed")
		return
	}
	now := c.o.Now()
	rec := c.record(now)
	if err := c.writer.writeNow(rec, now, c.o.Now, finalWriteTimeout); err != nil {
		c.mu.Lock()
		c.sf.armed = armed
		c.mu.Unlock()
		release("the heartbeat saying that the watchdog is released could not be written: " + err.Error())
		return
	}
	if err := c.sf.dev.Disarm(); err != nil {
		c.log.Warn("disarming the watchdog failed", "device", c.sf.cfg.Device, "error", err)
		return
	}
	c.log.Info("watchdog disarmed", "device", c.sf.cfg.Device)
}

// watchdogStep is one round: open the device if needed, read the storage, judge, feed.
func (c *checker) watchdogStep() {
	now := c.o.Now()
	c.mu.Lock()
	kept := c.sf.keptCountdown
	c.mu.Unlock()
	if c.sf.dev == nil && !kept && !c.openWatchdog() {
		return
	}
	c.checkStorage(now)
	c.mu.Lock()
	doomed := c.sf.condemned != nil || c.sf.alone != ""
	if !doomed {
		if contact, ok := c.lastContact(now); ok && now.Sub(contact) > c.sf.cfg.SelfFenceAfter {
			c.sf.alone = fmt.Sprintf("no heartbeat written and read back from the shared storage, and no observer (%v) answering on any network, since %s",
				c.sf.cfg.Observers, contact.UTC().Format(time.RFC3339Nano))
			doomed = true
			c.log.Error("this host has lost its storage and every observer: it fences itself, the watchdog is no longer fed",
				"alone_for", now.Sub(contact).Round(time.Millisecond), "why", c.sf.alone)
			c.sf.obeyed = health.Pill{Host: c.o.Node, ID: "alone", By: c.o.Node, Time: now.UTC()}
			c.keepCondemnation(c.sf.obeyed)
		}
	}
	c.mu.Unlock()
	if doomed || c.sf.dev == nil {
		return
	}
	err := c.sf.dev.Feed()
	c.mu.Lock()
	defer c.mu.Unlock()
	if err != nil {
		if c.sf.feedErr != err.Error() {
			c.log.Error("feeding the watchdog failed", "device", c.sf.cfg.Device, "error", err)
		}
		c.sf.feedErr = err.Error()
		return
	}
	c.sf.feedErr = ""
}

// openWatchdog opens the device; false when it cannot (retried next round).
func (c *checker) openWatchdog() bool {
	dev, err := c.o.OpenWatchdog(c.sf.cfg.Device, c.sf.cfg.Timeout)
	c.mu.Lock()
	defer c.mu.Unlock()
	if err != nil {
		if c.sf.openErr != err.Error() {
			c.log.Error("cannot open the watchdog: this host cannot fence itself, and fence_gossip will refuse to fence it", "device", c.sf.cfg.Device, "error", err)
		}
		c.sf.openErr = err.Error()
		return false
	}
	c.sf.dev, c.sf.openErr = dev, ""
	// Fed a quarter of the countdown the device really runs apart, at least: a driver may
	// have kept a shorter one than asked for.
	c.sf.every = min(c.sf.every, config.FeedEvery(dev.Timeout()))
	// The record announces the longer of the two: what fence_gossip waits for.
	c.sf.armed = &health.RecordWatchdog{
		TimeoutMS:        max(dev.Timeout(), c.sf.cfg.Timeout).Milliseconds(),
		SelfFenceAfterMS: c.sf.cfg.SelfFenceAfter.Milliseconds(),
	}
	c.log.Info("watchdog armed", "device", c.sf.cfg.Device, "timeout", dev.Timeout(), "self_fence_after", c.sf.cfg.SelfFenceAfter)
	if c.sf.condemned != nil {
		// Condemned before the device could be opened: it is never fed, and the mark now
		// names the countdown, so that a restarted hostcheck leaves it running.
		c.keepCondemnation(c.sf.obeyed)
	}
	return true
}

// lastContact is the latest sign that this host could still learn whether it was condemned,
// and false when it has no observer to lose (fence_gossip cannot prove such a host silent
// either): an answer from an observer on any network, counted from when its round's probes
// were sent (from the process's start before any), or its storage, which counts from the older of its newest heartbeat
// written and its newest read of the shared directory that found an observer's record
// fresh there. fence_gossip counts the storage from that heartbeat's time, so the host never
// counts from later than it does. Called with c.mu held.
func (c *checker) lastContact(now time.Time) (time.Time, bool) {
	last := c.started
	ws := c.writer.status(now)
	if wrote, read := ws.LastWriteAt, c.sf.sharedAt; !wrote.IsZero() && !read.IsZero() {
		storage := wrote
		if read.Before(wrote) {
			storage = read
		}
		if storage.After(last) {
			last = storage
		}
	}
	observers := 0
	for _, n := range c.nets {
		for _, p := range n.peers {
			if !c.sf.cfg.IsObserver(p.name) {
				continue
			}
			observers++
			if p.lastSent.After(last) {
				last = p.lastSent
			}
		}
	}
	return last, observers > 0
}

// checkStorage starts a read of the shared directory when none is in flight, and takes up
// the result of the one that finished: obeys a pill, notes that the storage is shared.
func (c *checker) checkStorage(now time.Time) {
	if r := c.sf.read; r != nil {
		select {
		case <-r.done:
			c.sf.read = nil
			if r.shared {
				c.mu.Lock()
				c.sf.sharedAt = r.at
				c.mu.Unlock()
			}
			if r.pill != nil {
				c.obey(*r.pill, now, "a poison pill")
			}
		default:
			return // still reading: the storage hangs
		}
	}
	r := &storageRead{at: now, done: make(chan struct{})}
	c.sf.read = r
	wall := now.UTC()
	go func() {
		defer close(r.done)
		r.shared = c.observerRecordFresh(wall)
		path := filepath.Join(c.h.SharedDir, health.PillFile(c.o.Node))
		data, err := c.o.Store.ReadFile(path)
		if err != nil {
			return
		}
		p, err := health.ParsePill(data)
		switch {
		case err != nil:
			c.log.Warn("ignoring an unreadable poison pill", "path", path, "error", err)
		case p.Host != c.o.Node:
			c.log.Warn("ignoring a poison pill addressed to another host", "path", path, "host", p.Host)
		case p.Time.Add(c.h.ClockSkew).Before(c.o.BootTime):
			// Written before this host started: the life it condemned has ended.
			c.log.Debug("ignoring a poison pill written before this host started", "pill", p.ID, "written", p.Time, "boot", c.o.BootTime)
		default:
			r.pill = &p
		}
	}()
}

// observerRecordFresh tells whether the shared directory holds a fresh heartbeat of another
// observer: then it is the shared storage that this host reads, not a mount point left
// empty, nor a copy of its own.
func (c *checker) observerRecordFresh(now time.Time) bool {
	for _, o := range c.sf.cfg.Observers {
		if o == c.o.Node {
			continue
		}
		data, err := c.o.Store.ReadFile(filepath.Join(c.h.SharedDir, health.RecordFile(o)))
		if err != nil {
			continue
		}
		rec, err := health.ParseRecord(data)
		if err != nil || rec.Host != o {
			continue
		}
		age := now.Sub(rec.Time)
		if age <= c.h.StaleAfter+c.h.ClockSkew && age >= -c.h.ClockSkew {
			return true
		}
	}
	return false
}

// obey condemns this host for pill (read on the storage, or sent as a fence query: how):
// the watchdog is not fed from here on (the watchdog loop calls it, and the round does not
// feed), the condemnation is kept on the local tmpfs in case hostcheck restarts, and the
// next heartbeat acknowledges it.
func (c *checker) obey(p health.Pill, now time.Time, how string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.sf.condemned != nil {
		return
	}
	c.sf.condemned, c.sf.obeyed = &health.Condemned{Pill: p.ID, Since: now.UTC()}, p
	c.log.Error("this host was ordered to fence itself: the watchdog is no longer fed, the host resets",
		"by_way_of", how, "pill", p.ID, "by", p.By, "written", p.Time)
	c.keepCondemnation(p)
}

// keepCondemnation writes the mark a restarted hostcheck finds. Called with c.mu held.
func (c *checker) keepCondemnation(p health.Pill) {
	m := condemnedMark{Pill: p}
	if c.sf.armed != nil {
		m.Watchdog = *c.sf.armed
	}
	err := func() error {
		data, err := json.Marshal(m)
		if err != nil {
			return err
		}
		if err := os.MkdirAll(filepath.Dir(c.o.CondemnedMark), 0o755); err != nil {
			return err
		}
		return os.WriteFile(c.o.CondemnedMark, data, 0o600)
	}()
	if err != nil {
		c.log.Warn("cannot keep the condemnation across a restart of hostcheck", "path", c.o.CondemnedMark, "error", err)
	}
}

// record is this host's heartbeat record at now.
func (c *checker) record(now time.Time) health.Record {
	rec := health.Record{Host: c.o.Node, Time: now.UTC(), Service: health.ServiceOK, Networks: c.ownView()}
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.serviceUp {
		rec.Service = health.ServiceDown
		rec.ServiceDownSince = c.serviceDownSince.UTC()
	}
	rec.Watchdog, rec.Condemned, rec.Addresses = c.sf.armed, c.sf.condemned, c.addresses
	return rec
}

// watchdogHealth is the watchdog's part of the process's health. Called with c.mu held.
func (c *checker) watchdogHealth() (*WatchdogHealth, string) {
	if !c.sf.cfg.Enabled() {
		return nil, ""
	}
	h := &WatchdogHealth{Device: c.sf.cfg.Device, Armed: c.sf.armed != nil, Alone: c.sf.alone}
	if c.sf.armed != nil {
		h.Timeout = c.sf.armed.Timeout()
	}
	if c.sf.condemned != nil {
		h.Condemned = c.sf.condemned.Pill
	}
	switch {
	case c.sf.openErr != "":
		return h, "cannot open the watchdog: " + c.sf.openErr
	case c.sf.feedErr != "":
		return h, "cannot feed the watchdog: " + c.sf.feedErr
	}
	return h, ""
}

// WatchdogHealth is the watchdog as the health socket reports it.
type WatchdogHealth struct {
	Device  string        `json:"device"`
	Armed   bool          `json:"armed"`
	Timeout time.Duration `json:"timeout_ns,omitempty"`
	// Condemned is the pill this host obeyed; Alone why it fenced itself.
	Condemned string `json:"condemned,omitempty"`
	Alone     string `json:"alone,omitempty"`
}

// bootTime is when the kernel started (/proc/stat's btime); the zero time when unknown, which
// ignores no pill.
func bootTime() time.Time {
	f, err := os.Open("/proc/stat")
	if err != nil {
		return time.Time{}
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "btime "); ok {
			if secs, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64); err == nil {
				return time.Unix(secs, 0)
			}
		}
	}
	return time.Time{}
}
