package instancemon

import (
	"context"
	"fmt"
	"net/url"
	"sync"
	"time"

	golibvirt "github.com/digitalocean/go-libvirt"

	"github.com/computeha/computeha/internal/within"
)

// DefaultURI is the host's system libvirtd, where Nova's libvirt driver runs guests.
const DefaultURI = "qemu:///system"

// closeTimeout bounds the goodbye to a libvirtd that may be hung.
const closeTimeout = 3 * time.Second

// LibvirtDialer connects to libvirtd at uri (qemu:///system; qemu+unix:///system?socket=PATH)
// with go-libvirt and subscribes to the lifecycle, I/O error, watchdog and control error
// events of every domain.
func LibvirtDialer(uri string) (Dialer, error) {
	u, err := url.Parse(uri)
	if err != nil {
		return nil, fmt.Errorf("libvirt URI %q: %w", uri, err)
	}
	return func(ctx context.Context) (Conn, error) {
		lv, err := within.Within(ctx, func() (*golibvirt.Libvirt, error) { return golibvirt.ConnectToURI(u) })
		if err != nil {
			return nil, err
		}
		c := &libvirtConn{lv: lv, events: make(chan Raw, 256)}
		if err := c.subscribe(ctx); err != nil {
			_ = lv.Disconnect()
			return nil, err
		}
		return c, nil
	}, nil
}

type libvirtConn struct {
	lv     *golibvirt.Libvirt
	events chan Raw
	cancel context.CancelFunc
	wg     sync.WaitGroup
	once   sync.Once
}

var _ Conn = (*libvirtConn)(nil)

func uuidString(u golibvirt.UUID) string {
	return fmt.Sprintf("%x-%x-%x-%x-%x", u[0:4], u[4:6], u[6:8], u[8:10], u[10:16])
}

func (c *libvirtConn) subscribe(ctx context.Context) error {
	sctx, cancel := context.WithCancel(context.Background())
	c.cancel = cancel
	ids := []golibvirt.DomainEventID{
		golibvirt.DomainEventIDLifecycle, golibvirt.DomainEventIDIoErrorReason,
		golibvirt.DomainEventIDWatchdog, golibvirt.DomainEventIDControlError,
	}
	var chans []<-chan any
	for _, id := range ids {
		ch, err := within.Within(ctx, func() (<-chan any, error) { return c.lv.SubscribeEvents(sctx, id, nil) })
		if err != nil {
			cancel()
			return fmt.Errorf("subscribing to libvirt's domain events (%d): %w", id, err)
		}
		chans = append(chans, ch)
	}
	// One reader per subscription, each handing its events on at once; Events is closed
	// when every subscription has ended (the connection is gone).
	for _, ch := range chans {
		c.wg.Go(func() {
			for ev := range ch {
				r, ok := toRaw(ev)
				if !ok {
					continue
				}
				select {
				case c.events <- r:
				case <-sctx.Done():
				}
			}
		})
	}
	go func() {
		c.wg.Wait()
		close(c.events)
	}()
	// A lost connection ends the subscriptions.
	go func() {
		select {
		case <-c.lv.Disconnected():
			cancel()
		case <-sctx.Done():
		}
	}()
	return nil
}

// toRaw turns go-libvirt's event messages into Raw.
func toRaw(ev any) (Raw, bool) {
	switch m := ev.(type) {
	case *golibvirt.DomainEventCallbackLifecycleMsg:
		return Raw{Type: RawLifecycle, UUID: uuidString(m.Msg.Dom.UUID), Name: m.Msg.Dom.Name, Event: m.Msg.Event, Detail: m.Msg.Detail}, true
	case *golibvirt.DomainEventCallbackIOErrorReasonMsg:
		return Raw{
			Type: RawIOError, UUID: uuidString(m.Msg.Dom.UUID), Name: m.Msg.Dom.Name, Action: m.Msg.Action,
			Reason: m.Msg.Reason, Device: firstNonEmpty(m.Msg.SrcPath, m.Msg.DevAlias),
		}, true
	case *golibvirt.DomainEventCallbackWatchdogMsg:
		return Raw{Type: RawWatchdog, UUID: uuidString(m.Msg.Dom.UUID), Name: m.Msg.Dom.Name, Action: m.Msg.Action}, true
	case *golibvirt.DomainEventCallbackControlErrorMsg:
		return Raw{Type: RawControlError, UUID: uuidString(m.Msg.Dom.UUID), Name: m.Msg.Dom.Name}, true
	}
	return Raw{}, false
}

func firstNonEmpty(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

func (c *libvirtConn) Events() <-chan Raw { return c.events }

func (c *libvirtConn) Domains(ctx context.Context) ([]DomainState, error) {
	type listing struct{ doms []DomainState }
	l, err := within.Within(ctx, func() (listing, error) {
		doms, _, err := c.lv.ConnectListAllDomains(1, golibvirt.ConnectListDomainsActive|golibvirt.ConnectListDomainsInactive)
		if err != nil {
			return listing{}, err
		}
		out := make([]DomainState, 0, len(doms))
		for _, d := range doms {
			st, reason, err := c.lv.DomainGetState(d, 0)
			if err != nil {
				// Gone between the list and the question: not ours to report.
				continue
			}
			out = append(out, DomainState{UUID: uuidString(d.UUID), Name: d.Name, State: st, Reason: reason})
		}
		return listing{out}, nil
	})
	return l.doms, err
}

func (c *libvirtConn) Ping(ctx context.Context) error {
	_, err := within.Within(ctx, func() (uint64, error) { return c.lv.ConnectGetLibVersion() })
	return err
}

func (c *libvirtConn) Close() error {
	var err error
	c.once.Do(func() {
		if c.cancel != nil {
			c.cancel()
		}
		// A hung libvirtd may never answer the goodbye: not waited for beyond closeTimeout.
		ctx, cancel := context.WithTimeout(context.Background(), closeTimeout)
		defer cancel()
		_, err = within.Within(ctx, func() (struct{}, error) { return struct{}{}, c.lv.Disconnect() })
	})
	return err
}
