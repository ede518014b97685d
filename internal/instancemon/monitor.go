package instancemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	libvirt "github.com/digitalocean/go-libvirt"

	"github.com/computeha/computeha/internal/clock"
)

// Raw is one event of a domain as the hypervisor connection gives it, before
// classification: Lifecycle (Event, Detail), IOError (Action, Reason, Device),
// Watchdog (Action), ControlError.
type Raw struct {
	Type   RawType
	UUID   string
	Name   string
	Event  int32 // lifecycle: virDomainEventType
	Detail int32 // lifecycle: the event's detail
	Action int32 // I/O error, watchdog
	Reason string
	Device string
}

// RawType is the libvirt event a Raw came from.
type RawType int

// The libvirt events the monitor subscribes to.
const (
	RawLifecycle RawType = iota + 1
	RawIOError
	RawWatchdog
	RawControlError
)

// DomainState is one domain of a listing.
type DomainState struct {
	UUID, Name    string
	State, Reason int32 // virDomainGetState's
}

// Conn is one connection to the host's hypervisor.
type Conn interface {
	// Events are the domains' events, in order; the channel is closed when the connection
	// is lost or closed.
	Events() <-chan Raw
	// Domains lists every domain with its state.
	Domains(ctx context.Context) ([]DomainState, error)
	// Ping makes one round trip; an error, or none within ctx, means the connection does
	// not work.
	Ping(ctx context.Context) error
	Close() error
}

// Dialer makes a new connection (subscribed to the events Raw names).
type Dialer func(ctx context.Context) (Conn, error)

// Monitor watches one host's domains and puts their failures into a Queue.
type Monitor struct {
	Host  string
	Dial  Dialer
	Queue *Queue
	Clock clock.Clock
	Log   *slog.Logger
	// PingInterval: how often the connection is checked; PingTimeout: how long a check
	// may take before the connection is taken for hung and made again.
	PingInterval, PingTimeout time.Duration
	// RetryBackoff is the first wait between connection attempts, doubled up to
	// MaxRetryBackoff.
	RetryBackoff, MaxRetryBackoff time.Duration
	// OnConnect, if set, is called after each successful connection and listing, and
	// OnDisconnect when that connection is lost (the health answer).
	OnConnect    func(listed int)
	OnDisconnect func()

	known map[string]DomainState // the last state seen of each domain, across connections
}

// Run watches until ctx ends.
func (m *Monitor) Run(ctx context.Context) error {
	clk := clock.Or(m.Clock)
	log := m.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	backoff := m.RetryBackoff
	if backoff <= 0 {
		backoff = time.Second
	}
	maxBackoff := max(m.MaxRetryBackoff, backoff)
	wait := backoff
	first := true
	for ctx.Err() == nil {
		c, err := m.Dial(ctx)
		if err != nil {
			log.Warn("cannot connect to the hypervisor: retrying", "retry_in", wait.String(), "error", err)
			if clk.Sleep(ctx, wait) != nil {
				break
			}
			wait = min(2*wait, maxBackoff)
			continue
		}
		wait = backoff
		err = m.serve(ctx, clk, log, c, first)
		first = false
		_ = c.Close()
		if m.OnDisconnect != nil {
			m.OnDisconnect()
		}
		if ctx.Err() != nil {
			break
		}
		log.Warn("lost the hypervisor connection: connecting again", "error", err)
	}
	return nil
}

// serve reconciles, then handles the connection's events until it breaks.
func (m *Monitor) serve(ctx context.Context, clk clock.Clock, log *slog.Logger, c Conn, first bool) error {
	lctx, cancel := context.WithTimeout(ctx, max(m.PingTimeout, 5*time.Second))
	doms, err := c.Domains(lctx)
	cancel()
	if err != nil {
		return fmt.Errorf("listing the domains: %w", err)
	}
	m.reconcile(clk.Now(), log, doms, first)
	log.Info("connected to the hypervisor", "domains", len(doms), "first", first)
	if m.OnConnect != nil {
		m.OnConnect(len(doms))
	}
	interval := m.PingInterval
	if interval <= 0 {
		interval = 5 * time.Second
	}
	timeout := m.PingTimeout
	if timeout <= 0 {
		timeout = 5 * time.Second
	}
	pings := make(chan error, 1)
	pctx, stopPings := context.WithCancel(ctx)
	defer stopPings()
	go func() {
		for clk.Sleep(pctx, interval) == nil {
			tctx, cancel := context.WithTimeout(pctx, timeout)
			err := c.Ping(tctx)
			cancel()
			if err != nil {
				select {
				case pings <- err:
				default:
				}
				return
			}
		}
	}()
	events := c.Events()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case err := <-pings:
			return fmt.Errorf("the hypervisor does not answer: %w", err)
		case r, ok := <-events:
			if !ok {
				return errors.New("the event stream ended")
			}
			m.handle(clk.Now(), log, r)
		}
	}
}

// handle classifies one event, queues it if it is a failure, and keeps the domain's state.
func (m *Monitor) handle(now time.Time, log *slog.Logger, r Raw) {
	e := Event{Server: r.UUID, Domain: r.Name, Host: m.Host, Time: now, Source: FromEvent, Count: 1}
	switch r.Type {
	case RawLifecycle:
		m.track(r)
		kind, reason, ok := Lifecycle(r.Event, r.Detail)
		if !ok {
			log.Debug("domain event", "domain", r.Name, "server", r.UUID, "event", r.Event, "detail", r.Detail)
			return
		}
		e.Kind, e.Reason = kind, reason
	case RawIOError:
		e.Kind, e.Reason, e.Action, e.Device = IOError, r.Reason, IOErrorAction(r.Action), r.Device
	case RawWatchdog:
		e.Kind, e.Action = Watchdog, WatchdogAction(r.Action)
	case RawControlError:
		e.Kind = ControlError
	default:
		return
	}
	log.Warn("guest failure", "server", e.Server, "domain", e.Domain, "event", string(e.Kind), "reason", e.Reason,
		"action", e.Action, "device", e.Device)
	m.Queue.Put(e)
}

// track keeps what a lifecycle event says of the domain's state, for the next reconcile.
func (m *Monitor) track(r Raw) {
	if m.known == nil {
		m.known = map[string]DomainState{}
	}
	if r.Event == int32(libvirt.DomainEventUndefined) {
		// Deleted (or moved away): nothing to compare on the next listing.
		delete(m.known, r.UUID)
		return
	}
	d := m.known[r.UUID]
	d.UUID, d.Name = r.UUID, r.Name
	if st, ok := lifecycleState(r.Event); ok {
		d.State = st
	}
	m.known[r.UUID] = d
}

// reconcile compares a fresh listing with what the monitor knew. A domain that ran and is
// now shut off after a crash, or crashed, or paused by an error, failed while the monitor
// was not listening: reported. On the first listing (the monitor just started) only the
// domains paused or crashed by an error are: a domain shut off before the monitor ran is
// not news.
func (m *Monitor) reconcile(now time.Time, log *slog.Logger, doms []DomainState, first bool) {
	prev := m.known
	m.known = make(map[string]DomainState, len(doms))
	for _, d := range doms {
		m.known[d.UUID] = d
		kind, why, ok := State(d.State, d.Reason)
		if !ok {
			continue
		}
		before, seen := prev[d.UUID]
		switch {
		case first || !seen:
			// Paused or crashed it still is: it needs someone to act.
			if kind == Stopped || kind == Crashed && d.State != int32(libvirt.DomainCrashed) {
				continue
			}
		case !Running(before.State):
			// It was not running when the connection broke: nothing new.
			continue
		}
		e := Event{
			Server: d.UUID, Domain: d.Name, Host: m.Host, Kind: kind, Reason: why, Time: now,
			Source: FromReconcile, Count: 1,
		}
		log.Warn("guest failure found on reconnecting", "server", e.Server, "domain", e.Domain,
			"event", string(e.Kind), "reason", e.Reason)
		m.Queue.Put(e)
	}
}
