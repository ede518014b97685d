package hostcheck

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/computeha/computeha/internal/config"
	"github.com/computeha/computeha/internal/health"
	"github.com/computeha/computeha/internal/watchdog"
)

// DefaultCondemnedMark is where a condemnation is kept across restarts of hostcheck: on a
// tmpfs (/run), so that it ends with the host's power.
const DefaultCondemnedMark = "/run/computeha/condemned"

// selfFence is the state of the watchdog loop. Only that loop touches dev and pill; the
// fields under "c.mu" are read by the heartbeat loop and the health socket.
type selfFence struct {
	cfg config.Watchdog
	dev watchdog.Device
	// openErr is why the device could not be opened (retried every round).
	openErr string
	// feedErr is why the last feed failed.
	feedErr string
	// pill is the read of the pill file in flight, if any.
	pill *pillRead

	// Under c.mu:
	armed     *health.RecordWatchdog
	condemned *health.Condemned
	// alone is set once this host fenced itself for having lost everything.
	alone string
}

// pillRead is one read of the pill file. A hung storage keeps it in flight; no other read
// starts behind it.
type pillRead struct {
	done chan struct{}
	pill *health.Pill
	err  error
}

// startWatchdog prepares the watchdog loop; it does nothing without a device configured.
func (c *checker) startWatchdog() {
	c.sf.cfg = c.h.Watchdog
	if !c.sf.cfg.Enabled() {
		return
	}
	data, err := os.ReadFile(c.o.CondemnedMark)
	switch {
	case err == nil:
		if p, err := health.ParsePill(data); err == nil && p.Host == c.o.Node {
			// hostcheck restarted after it obeyed a pill: the host must still die.
			c.sf.condemned = &health.Condemned{Pill: p.ID, Since: c.o.Now().UTC()}
			c.log.Error("this host obeyed a poison pill before hostcheck restarted: the watchdog is not fed, the host resets",
				"pill", p.ID, "by", p.By)
		} else {
			c.log.Warn("ignoring an unreadable condemnation mark", "path", c.o.CondemnedMark)
		}
	case !errors.Is(err, fs.ErrNotExist):
		c.log.Warn("cannot read the condemnation mark", "path", c.o.CondemnedMark, "error", err)
	}
}

// watchdogLoop feeds the watchdog while the host may live, every round (at most a quarter of
// its countdown apart), until ctx ends; then it disarms it, since stopping hostcheck is
// deliberate. A hostcheck that dies instead leaves the countdown running.
func (c *checker) watchdogLoop(ctx context.Context) {
	if !c.sf.cfg.Enabled() {
		return
	}
	every := min(c.h.Interval, config.FeedEvery(c.sf.cfg.Timeout))
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		c.watchdogStep()
		select {
		case <-ctx.Done():
			c.releaseWatchdog()
			return
		case <-t.C:
		}
	}
}

// releaseWatchdog ends the loop: disarmed on a deliberate stop, unless the host must die.
func (c *checker) releaseWatchdog() {
	if c.sf.dev == nil {
		return
	}
	c.mu.Lock()
	doomed := c.sf.condemned != nil || c.sf.alone != ""
	c.mu.Unlock()
	var err error
	if doomed {
		err = c.sf.dev.Release()
	} else {
		err = c.sf.dev.Disarm()
		c.log.Info("watchdog disarmed", "device", c.sf.cfg.Device)
	}
	if err != nil {
		c.log.Warn("releasing the watchdog failed", "device", c.sf.cfg.Device, "error", err)
	}
}

// watchdogStep is one round: open the device if needed, read the pill, judge, feed.
func (c *checker) watchdogStep() {
	now := c.o.Now()
	if c.sf.dev == nil {
		dev, err := c.o.OpenWatchdog(c.sf.cfg.Device, c.sf.cfg.Timeout)
		if err != nil {
			if c.sf.openErr != err.Error() {
				c.log.Error("cannot open the watchdog: this host cannot fence itself, and fence_gossip will refuse to fence it", "device", c.sf.cfg.Device, "error", err)
			}
			c.sf.openErr = err.Error()
			return
		}
		c.sf.dev, c.sf.openErr = dev, ""
		// The record announces the countdown the device runs, which a driver may have
		// rounded up, and never less than asked for.
		armed := &health.RecordWatchdog{
			TimeoutMS:        max(dev.Timeout(), c.sf.cfg.Timeout).Milliseconds(),
			SelfFenceAfterMS: c.sf.cfg.SelfFenceAfter.Milliseconds(),
		}
		c.mu.Lock()
		c.sf.armed = armed
		c.mu.Unlock()
		c.log.Info("watchdog armed", "device", c.sf.cfg.Device, "timeout", dev.Timeout(), "self_fence_after", c.sf.cfg.SelfFenceAfter)
	}
	c.checkPill(now)
	c.mu.Lock()
	doomed := c.sf.condemned != nil || c.sf.alone != ""
	if !doomed {
		if contact := c.lastContact(); now.Sub(contact) > c.sf.cfg.SelfFenceAfter {
			c.sf.alone = fmt.Sprintf("no heartbeat written and no observer (%v) answering on any network since %s",
				c.sf.cfg.Observers, contact.UTC().Format(time.RFC3339Nano))
			doomed = true
			c.log.Error("this host has lost its storage and every observer: it fences itself, the watchdog is no longer fed",
				"alone_for", now.Sub(contact).Round(time.Millisecond), "why", c.sf.alone)
		}
	}
	c.mu.Unlock()
	if doomed {
		return
	}
	if err := c.sf.dev.Feed(); err != nil {
		if c.sf.feedErr != err.Error() {
			c.log.Error("feeding the watchdog failed", "device", c.sf.cfg.Device, "error", err)
		}
		c.sf.feedErr = err.Error()
		return
	}
	c.sf.feedErr = ""
}

// lastContact is the latest sign that this host can still learn whether it was condemned:
// its newest heartbeat written to the shared storage, or the newest answer from an observer
// on any network; the start of the process before either. Called with c.mu held.
func (c *checker) lastContact() time.Time {
	last := c.started
	if ws := c.writer.status(c.o.Now()); ws.LastWrite.After(last) {
		last = ws.LastWrite
	}
	observers := 0
	for _, n := range c.nets {
		for _, p := range n.peers {
			if !c.sf.cfg.IsObserver(p.name) {
				continue
			}
			observers++
			if p.lastOK.After(last) {
				last = p.lastOK
			}
		}
	}
	if observers == 0 {
		// This host is the only observer, or none reaches it on a network it has: nothing
		// to have lost but the storage.
		if floor := c.o.Now().Add(-c.sf.cfg.SelfFenceAfter); floor.After(last) {
			return floor
		}
	}
	return last
}

// checkPill starts a read of this host's pill when none is in flight, and obeys a pill
// found by an earlier read.
func (c *checker) checkPill(now time.Time) {
	if r := c.sf.pill; r != nil {
		select {
		case <-r.done:
			c.sf.pill = nil
			if r.pill != nil {
				c.obey(*r.pill, now)
			}
		default:
			return // still reading: the storage hangs
		}
	}
	r := &pillRead{done: make(chan struct{})}
	c.sf.pill = r
	path := filepath.Join(c.h.SharedDir, health.PillFile(c.o.Node))
	go func() {
		defer close(r.done)
		data, err := c.o.Store.ReadFile(path)
		if err != nil {
			r.err = err
			return
		}
		p, err := health.ParsePill(data)
		if err != nil {
			r.err = err
			c.log.Warn("ignoring an unreadable poison pill", "path", path, "error", err)
			return
		}
		if p.Host != c.o.Node {
			c.log.Warn("ignoring a poison pill addressed to another host", "path", path, "host", p.Host)
			return
		}
		r.pill = &p
	}()
}

// obey condemns this host for pill: the watchdog is not fed from here on (the caller's
// round does not feed), the condemnation is kept on the local tmpfs in case hostcheck
// restarts, and the next heartbeat acknowledges it.
func (c *checker) obey(p health.Pill, now time.Time) {
	c.mu.Lock()
	if c.sf.condemned != nil {
		c.mu.Unlock()
		return
	}
	c.sf.condemned = &health.Condemned{Pill: p.ID, Since: now.UTC()}
	c.mu.Unlock()
	c.log.Error("this host read a poison pill for itself: the watchdog is no longer fed, the host resets",
		"pill", p.ID, "by", p.By, "written", p.Time, "timeout", c.sf.dev.Timeout())
	if err := keepMark(c.o.CondemnedMark, p); err != nil {
		c.log.Warn("cannot keep the condemnation across a restart of hostcheck", "path", c.o.CondemnedMark, "error", err)
	}
}

// keepMark writes the pill a host obeyed to path.
func keepMark(path string, p health.Pill) error {
	data, err := health.MarshalPill(p)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return os.WriteFile(path, data, 0o600)
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
