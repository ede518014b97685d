package selffence

import (
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"sync"
	"time"

	"github.com/computeha/computeha/internal/config"
	"github.com/computeha/computeha/internal/gossip"
	"github.com/computeha/computeha/internal/health"
)

// querier sends the fence query to the host by gossip on every network they share, from a
// member of each network's gossip that never joins (the key is its credential; the host's
// hostcheck takes a message from anyone who holds it), and takes in the acknowledgement.
type querier struct {
	host  string
	id    string
	by    string
	since time.Time // when the attempt began
	log   *slog.Logger
	to    []queryRoute

	mu  sync.Mutex
	ack *health.FenceAck
}

// queryRoute is one network's member and the host's address on it.
type queryRoute struct {
	network string
	member  *gossip.Member
	to      netip.AddrPort
}

// startQuerier starts a member on every network on which both this node (node) and host
// have an address: health.hosts' for a host they list, else (it joined by gossip) the one its
// heartbeat record rec announces, and for this node the one among its interfaces' (ifaddrs)
// in the network's subnet. It fails when none can be started: no network, or no key.
func startQuerier(cfg *config.Health, node, host string, rec *health.Record, ifaddrs func() ([]netip.Addr, error), id string, since time.Time, log *slog.Logger) (*querier, error) {
	key, err := gossip.ReadKey(cfg.Gossip.KeyFile)
	if err != nil {
		return nil, err
	}
	local, err := health.LocalAddresses(cfg, node, ifaddrs)
	if err != nil {
		return nil, fmt.Errorf("this node: %w", err)
	}
	q := &querier{host: host, id: id, by: node, since: since.UTC(), log: log}
	var errs []error
	for _, n := range cfg.Networks {
		target, ok := health.HostAddress(cfg, host, n.Name, rec)
		if !ok {
			continue
		}
		local, ok := local[n.Name]
		if !ok {
			errs = append(errs, fmt.Errorf("%s: this node (%s) has no address there", n.Name, node))
			continue
		}
		m, err := gossip.Start(gossip.Options{
			Name: fmt.Sprintf("fence_gossip/%s/%s", node, id), Network: n.Name, Bind: netip.AddrPortFrom(local, 0),
			Key: key, Log: log, OnMessage: q.receive,
		})
		if err != nil {
			errs = append(errs, err)
			continue
		}
		q.to = append(q.to, queryRoute{network: n.Name, member: m, to: netip.AddrPortFrom(target, uint16(cfg.Gossip.Port))})
	}
	if len(q.to) == 0 {
		if !cfg.Listed(host) && rec == nil {
			errs = append(errs, fmt.Errorf("%s is not listed in health.hosts and its heartbeat record, which gives its addresses, was not read", host))
		}
		errs = append(errs, errors.New("no network to send it on"))
		return nil, errors.Join(errs...)
	}
	if len(errs) > 0 {
		log.Warn("the fence query goes out on some networks only", "host", host, "error", errors.Join(errs...))
	}
	return q, nil
}

// send sends the query on every network, stamped now, until the host acknowledged it.
func (q *querier) send(now time.Time) {
	if _, ok := q.acked(); ok {
		return
	}
	for _, r := range q.to {
		b, err := health.MarshalQuery(health.FenceQuery{Host: q.host, ID: q.id, By: q.by, Time: now.UTC(), Since: q.since, ReplyTo: r.member.Addr()})
		if err == nil {
			err = r.member.Send(r.to, b)
		}
		if err != nil {
			q.log.Debug("cannot send the fence query", "network", r.network, "to", r.to, "error", err)
		}
	}
}

// receive keeps the first acknowledgement of this query by the host. It runs on memberlist's
// goroutine.
func (q *querier) receive(msg []byte) {
	a, err := health.ParseAck(msg)
	if err != nil || a.Host != q.host || a.ID != q.id {
		return
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.ack == nil {
		q.ack = &a
	}
}

// acked is the host's acknowledgement, if it came.
func (q *querier) acked() (health.FenceAck, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.ack == nil {
		return health.FenceAck{}, false
	}
	return *q.ack, true
}

func (q *querier) close() {
	for _, r := range q.to {
		_ = r.member.Shutdown()
	}
}
