package hostcheck

import (
	"errors"
	"fmt"
	"net/netip"
	"time"

	"github.com/hashicorp/memberlist"

	"github.com/computeha/computeha/internal/config"
	"github.com/computeha/computeha/internal/gossip"
	"github.com/computeha/computeha/internal/health"
)

// ErrGossipLost is a peer the network's gossip holds dead: its failure was confirmed.
var ErrGossipLost = errors.New("dead in the gossip")

// errGossipNoSay is a peer of which the gossip proves nothing now: alive (a member is alive
// in the others' tables until its death is confirmed, which is no sign that it answers now),
// never heard of (not joined yet), or left on purpose (its hostcheck stopped). It is neither
// reachable nor lost: only a probe says a peer answers.
var errGossipNoSay = errors.New("no say from the gossip")

// queryFresh is how old a fence query may be when it is obeyed (fence_gossip sends it again
// every half second); older, it is a copy sent again, and condemns nobody.
const queryFresh = 2 * time.Second

// rejoinEvery is how many intervals pass between two joins through the seeds while some
// seed is not alive: memberlist stops reaching for members it holds dead, so a partition
// that healed is merged by joining again.
const rejoinEvery = 10

// fenceQuery is a query for this host, and the member it came through (which answers it).
type fenceQuery struct {
	q      health.FenceQuery
	member *gossip.Member
}

// gossipOf is one network's gossip state. Only that network's probe goroutine starts the
// member and joins; the watchdog loop sends through it.
type gossipOf struct {
	member   *gossip.Member
	startErr string
	seeds    []string
	// joining is set while a join runs; lastJoin is when the last one started.
	joining  bool
	lastJoin time.Time
	joinErr  string
}

// startGossip starts n's member, bound to this host's address on n at the gossip port; nil
// when it is already running. Called by n's probe goroutine.
func (c *checker) startGossip(n *network) error {
	if n.gossip.member != nil {
		return nil
	}
	net := n.name
	m, err := gossip.Start(gossip.Options{
		Name: c.o.Node, Network: net, Bind: netip.AddrPortFrom(n.local, uint16(c.h.Gossip.Port)), Key: c.gossipKey,
		Log: c.log, Now: c.o.Now, Tune: c.tuneGossip,
		OnMessage: func(msg []byte) { c.onGossipMessage(net, msg) },
	})
	c.mu.Lock()
	defer c.mu.Unlock()
	if err != nil {
		if n.gossip.startErr != err.Error() {
			c.log.Error("cannot start the gossip", "network", n.name, "error", err)
		}
		n.gossip.startErr = err.Error()
		return err
	}
	n.gossip.member, n.gossip.startErr = m, ""
	c.log.Info("gossip started", "network", n.name, "address", m.Addr(), "seeds", n.gossip.seeds)
	return nil
}

// tuneGossip sets memberlist's timing from the health interval, then the caller's.
func (c *checker) tuneGossip(cfg *memberlist.Config) {
	t := c.h.GossipTiming()
	cfg.ProbeInterval, cfg.ProbeTimeout, cfg.GossipInterval = t.ProbeInterval, t.ProbeTimeout, t.GossipInterval
	if c.o.GossipTune != nil {
		c.o.GossipTune(cfg)
	}
}

// gossipSeeds are the seeds' addresses on network, this host left out.
func (c *checker) gossipSeeds(network string) []string {
	var out []string
	for _, s := range c.h.Gossip.Seeds {
		if s == c.o.Node {
			continue
		}
		if a, ok := c.h.Address(s, network); ok {
			out = append(out, netip.AddrPortFrom(a, uint16(c.h.Gossip.Port)).String())
		}
	}
	return out
}

// maybeJoin joins through the seeds at start, and again every rejoinEvery intervals while a
// seed is not alive. The join runs on its own: a seed that does not answer holds it for
// memberlist's TCP timeout. Called by n's probe goroutine.
func (c *checker) maybeJoin(n *network, now time.Time) {
	g := &n.gossip
	if len(g.seeds) == 0 {
		return
	}
	c.mu.Lock()
	due := !g.joining && (g.lastJoin.IsZero() || now.Sub(g.lastJoin) >= rejoinEvery*c.h.Interval)
	c.mu.Unlock()
	if !due {
		return
	}
	missing := g.lastJoin.IsZero()
	for _, s := range c.h.Gossip.Seeds {
		if s == c.o.Node {
			continue
		}
		if p, ok := g.member.Peer(s); !ok || p.State != gossip.Alive {
			missing = true
		}
	}
	if !missing {
		return
	}
	c.mu.Lock()
	first := g.lastJoin.IsZero()
	g.joining, g.lastJoin = true, now
	c.mu.Unlock()
	c.joins.Add(1)
	go func() {
		defer c.joins.Done()
		joined, err := g.member.Join(g.seeds)
		c.mu.Lock()
		defer c.mu.Unlock()
		g.joining = false
		msg := ""
		if err != nil {
			msg = err.Error()
		}
		if msg != g.joinErr || first {
			if err != nil {
				c.log.Warn("cannot join the gossip through its seeds", "network", n.name, "seeds", g.seeds, "error", err)
			} else {
				c.log.Info("joined the gossip", "network", n.name, "seeds_answering", joined)
			}
		}
		g.joinErr = msg
	}()
}

// learnPeers takes as n's peers the members of its gossip that health.hosts does not list:
// the hosts are whoever joined. A member's name must be a node name and its address must lie
// in the network's subnet (anything else is not one of the hosts, and is ignored, said once);
// a member that comes back at another address is probed there. Called by n's probe
// goroutine, the only one that changes n.peers.
func (c *checker) learnPeers(n *network, now time.Time) {
	known := make(map[string]*peer, len(n.peers))
	for _, p := range n.peers {
		known[p.name] = p
	}
	for _, gp := range n.gossip.member.Peers() {
		if gp.Name == c.o.Node || c.h.Listed(gp.Name) {
			continue
		}
		a := gp.Addr.Addr().Unmap()
		p, ok := known[gp.Name]
		var why string
		switch {
		case !config.ValidNodeName(gp.Name):
			why = "its name is not a node name"
		case !c.h.InSubnet(n.name, a):
			why = "its address is not in the network's subnet"
		}
		if why != "" {
			if n.ignored[gp.Name] != why {
				c.log.Warn("ignoring a gossip member", "network", n.name, "member", gp.Name, "address", a, "why", why)
				if n.ignored == nil {
					n.ignored = map[string]string{}
				}
				n.ignored[gp.Name] = why
			}
			continue
		}
		c.mu.Lock()
		switch {
		case !ok:
			p = c.newPeer(gp.Name, a, now)
			n.peers = append(n.peers, p)
			c.log.Info("a host joined the gossip", "network", n.name, "peer", p.name, "address", a, "probed", p.direct)
		case p.addr != a:
			c.log.Info("a host's address changed", "network", n.name, "peer", p.name, "from", p.addr, "to", a)
			p.addr = a
		}
		c.mu.Unlock()
	}
}

// gossipResults is what the gossip says of n's peers that are not probed directly: lost
// (ErrGossipLost) or nothing (errGossipNoSay).
func (c *checker) gossipResults(n *network) map[string]error {
	res := map[string]error{}
	for _, p := range n.peers {
		if p.direct {
			continue
		}
		gp, ok := n.gossip.member.Peer(p.name)
		switch {
		case !ok:
			res[p.name] = fmt.Errorf("%w: never heard of", errGossipNoSay)
		case gp.State == gossip.Alive:
			res[p.name] = fmt.Errorf("%w: alive since %s", errGossipNoSay, gp.Since.UTC().Format(time.RFC3339Nano))
		case gp.State == gossip.Left:
			res[p.name] = fmt.Errorf("%w: left since %s", errGossipNoSay, gp.Since.UTC().Format(time.RFC3339Nano))
		default:
			res[p.name] = fmt.Errorf("%w since %s", ErrGossipLost, gp.Since.UTC().Format(time.RFC3339Nano))
		}
	}
	return res
}

// onGossipMessage takes a fence query for this host to the watchdog loop. It runs on
// memberlist's goroutine: it never blocks, and a query that finds the queue full is dropped
// (the sender sends it again).
func (c *checker) onGossipMessage(network string, msg []byte) {
	q, err := health.ParseQuery(msg)
	var why string
	switch {
	case err != nil:
		why = err.Error()
	case q.Host != c.o.Node:
		why = "a fence query addressed to another host, " + q.Host
	case !q.Fresh(c.o.Now(), queryFresh, c.h.ClockSkew):
		why = "a fence query that is not fresh (a copy sent again, or a clock off by more than clock_skew)"
	case q.Since.Add(c.h.ClockSkew).Before(c.o.BootTime):
		// An attempt begun before this host started: the life it condemned has ended.
		why = "a fence query of an attempt begun before this host started"
	case !c.sf.cfg.Enabled():
		why = "a fence query, but this host holds no watchdog (health.watchdog.device)"
	}
	if why != "" {
		// Queries come every half second on every network: said once per reason and query.
		key := why + "/" + q.ID
		c.mu.Lock()
		repeat := c.ignored == key
		c.ignored = key
		c.mu.Unlock()
		if !repeat {
			c.log.Warn("ignoring a gossip message", "network", network, "why", why, "query", q.ID, "by", q.By, "sent", q.Time)
		}
		return
	}
	var member *gossip.Member
	c.mu.Lock()
	for _, n := range c.nets {
		if n.name == network {
			member = n.gossip.member
		}
	}
	c.mu.Unlock()
	if member == nil {
		return
	}
	select {
	case c.queries <- fenceQuery{q: q, member: member}:
	default:
	}
}

// answerQuery obeys a fence query, then acknowledges it: the watchdog loop runs it, so the
// acknowledgement leaves after the last feed. A host that holds no watchdog never
// acknowledges: stopping a feed it does not give resets nothing.
func (c *checker) answerQuery(fq fenceQuery, now time.Time) {
	q := fq.q
	c.obey(health.Pill{Host: q.Host, ID: q.ID, By: q.By, Time: q.Time}, now, "a fence query by gossip")
	c.mu.Lock()
	armed, condemned := c.sf.armed, c.sf.condemned
	c.mu.Unlock()
	if armed == nil {
		c.log.Error("a fence query cannot be acknowledged: this host holds no watchdog", "query", q.ID, "by", q.By)
		return
	}
	b, err := health.MarshalAck(health.FenceAck{Host: c.o.Node, ID: q.ID, Since: condemned.Since, Watchdog: *armed})
	if err == nil {
		err = fq.member.Send(q.ReplyTo, b)
	}
	if err != nil {
		c.log.Warn("cannot acknowledge the fence query", "query", q.ID, "reply_to", q.ReplyTo, "error", err)
		return
	}
	c.log.Info("fence query acknowledged", "query", q.ID, "by", q.By, "reply_to", q.ReplyTo,
		"condemned_by", condemned.Pill, "timeout", armed.Timeout())
}

// stopGossip leaves every network's gossip on a deliberate stop (to the others this host
// left, it did not fail), and stops it without a word otherwise.
func (c *checker) stopGossip(deliberate bool) {
	// A join under way ends within memberlist's TCP timeout per seed.
	defer c.joins.Wait()
	for _, n := range c.nets {
		m := n.gossip.member
		if m == nil {
			continue
		}
		var err error
		if deliberate {
			err = m.Leave(2 * c.h.Interval)
		} else {
			err = m.Shutdown()
		}
		if err != nil {
			c.log.Debug("leaving the gossip", "network", n.name, "error", err)
		}
	}
}
