// Package gossip is membership among computeha's hosts on one network: hashicorp/memberlist
// (SWIM with Lifeguard's refinements), its traffic encrypted with a key read from a root-only
// file, joined through seed addresses, so that the members are whoever joined rather than a
// list written by hand. Each member probes one other a probe interval, and confirms a failure
// through a few others before it tells the rest: the probes per member stay the same however
// many hosts there are, where an all-to-all mesh grows with their square.
//
// A member also exchanges its whole membership with one random peer now and then, which mends
// whatever news it missed. That exchange carries every member, so its interval grows in
// proportion to the membership here (memberlist's own grows with its logarithm): the bytes a
// second each member sends stay the same however many hosts there are.
//
// A Member tells each peer it has heard of as alive, dead (its failure confirmed) or left (it
// said goodbye). Members of different networks, or holding different keys, never mix: each
// network's packets carry its name as memberlist's label, and a packet that does not decrypt
// with the key is dropped.
package gossip

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log"
	"log/slog"
	"math/rand/v2"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/memberlist"
)

// State is what a member knows of a peer.
type State int

// The states of a peer.
const (
	Alive State = iota + 1
	// Dead: its failure is confirmed (it answered no probe, direct or indirect, and no
	// refutation came within the suspicion timeout).
	Dead
	// Left: it said it was leaving.
	Left
)

func (s State) String() string {
	switch s {
	case Alive:
		return "alive"
	case Dead:
		return "dead"
	case Left:
		return "left"
	}
	return fmt.Sprintf("State(%d)", int(s))
}

// Peer is one other member as this one knows it.
type Peer struct {
	Name  string
	Addr  netip.AddrPort
	State State
	// Since is when this member learned the state.
	Since time.Time
}

// Options configure one member on one network.
type Options struct {
	// Name is the member's name, unique on the network: the host's Pacemaker node name.
	Name string
	// Network names the network. Members of different networks ignore each other.
	Network string
	// Bind is where the member listens, UDP and TCP; port 0 takes one the system gives.
	Bind netip.AddrPort
	// Key encrypts the gossip (AES-GCM): 16, 24 or 32 bytes, as [ReadKey] returns them. Every
	// member of the network holds the same.
	Key []byte
	// Transport replaces memberlist's UDP and TCP transport on Bind (the benchmark wraps it
	// to drop and count packets).
	Transport memberlist.Transport
	// Tune adjusts memberlist's configuration, which starts as its LAN defaults (a probe a
	// second, a failure confirmed within a suspicion timeout growing with log N). Its
	// PushPullInterval is the interval of the full-state exchange up to [ExchangeScale]
	// members, which the Member schedules itself (see [ExchangeEvery]).
	Tune func(*memberlist.Config)
	Log  *slog.Logger
	// Now is the clock of Peer.Since (nil: time.Now).
	Now func() time.Time
	// OnChange, when set, is told each change of a peer's state. It runs on memberlist's own
	// goroutines, holding memberlist's lock of its members: it must return at once and call
	// neither the Member nor memberlist.
	OnChange func(Peer)
	// OnMessage, when set, is given each message another member (or a sender that holds the
	// key, see [Member.Send]) sent this one. It runs on memberlist's goroutine that delivers
	// messages: it must return at once, and keep no reference to msg.
	OnMessage func(msg []byte)
}

// Errors of [Start].
var (
	ErrNoKey  = errors.New("gossip needs a key: its traffic is never sent in clear")
	ErrNoName = errors.New("a member needs a name")
)

// Member is this host on one network.
type Member struct {
	ml        *memberlist.Memberlist
	now       func() time.Time
	onChange  func(Peer)
	onMessage func([]byte)

	// ready is closed once Start has set ml.
	ready chan struct{}
	// joined tells the exchanges a Join succeeded; stop ends them, once.
	joined   chan struct{}
	stop     chan struct{}
	stopOnce sync.Once
	log      *slog.Logger

	mu    sync.Mutex
	peers map[string]Peer
	self  string
	meta  []byte // this member's metadata, as its peers see it
}

// leaving is the metadata of a member that leaves on purpose: memberlist's events do not tell
// a peer that left from one that failed, so a member announces it in its metadata before it
// says goodbye. A peer that hears the goodbye before the metadata (a lost packet) takes it
// for dead.
const leaving = "leaving"

// Start starts a member. It joins nobody: [Member.Join] does.
func Start(o Options) (*Member, error) {
	if o.Name == "" {
		return nil, ErrNoName
	}
	if len(o.Key) == 0 {
		return nil, ErrNoKey
	}
	if err := memberlist.ValidateKey(o.Key); err != nil {
		return nil, fmt.Errorf("gossip key: %w", err)
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	m := &Member{
		now: o.Now, onChange: o.OnChange, onMessage: o.OnMessage, peers: map[string]Peer{}, self: o.Name,
		ready: make(chan struct{}), joined: make(chan struct{}, 1), stop: make(chan struct{}),
		log: o.Log.With("component", "gossip", "network", o.Network),
	}
	cfg := memberlist.DefaultLANConfig()
	cfg.Name = o.Name
	cfg.Label = "computeha/" + o.Network
	cfg.SecretKey = slices.Clone(o.Key)
	cfg.BindAddr, cfg.BindPort = o.Bind.Addr().String(), int(o.Bind.Port())
	cfg.AdvertisePort = int(o.Bind.Port())
	// No compression: memberlist compresses every packet with LZW, whose tables cost some
	// 80 KB of allocation per packet sent and again per packet received. It saves about a
	// fifth of a few hundred bytes a second per member, and was the largest single part of
	// the gossip's CPU in bench-gossip (a fifth of all of it at 650 members, the collection
	// of its garbage counted in). Members that compress are still understood.
	cfg.EnableCompression = false
	cfg.Events = events{m}
	cfg.Delegate = delegate{m}
	cfg.Logger = log.New(logWriter{m.log}, "", 0)
	cfg.Transport = o.Transport
	if o.Tune != nil {
		o.Tune(cfg)
	}
	base, followUp := cfg.PushPullInterval, exchangeFollowUp*cfg.ProbeInterval
	cfg.PushPullInterval = 0 // the Member schedules the exchanges
	ml, err := memberlist.Create(cfg)
	if err != nil {
		return nil, fmt.Errorf("gossip on %s at %s: %w", o.Network, o.Bind, err)
	}
	m.ml = ml
	close(m.ready)
	if base > 0 {
		go m.exchanges(base, followUp)
	}
	return m, nil
}

// ExchangeScale is the membership up to which a member exchanges its whole membership with a
// random peer every PushPullInterval (memberlist's threshold, from which its own interval
// starts to grow).
const ExchangeScale = 32

// exchangeFollowUp is how many probe intervals after a successful Join a member exchanges
// its membership once more, with a random peer: the seed it joined through could not tell it
// of the members that joined at the same time, and their news may have been spread before
// the others knew this member to send it to.
const exchangeFollowUp = 5

// ExchangeEvery is the interval between a member's exchanges of its whole membership when it
// knows n members, itself included: base up to [ExchangeScale] members, then growing in
// proportion to n. Each exchange sends every member's state both ways (some 70 bytes
// each), and each member takes part in two an interval on average (its own, and one
// another member starts with it): in proportion, the bytes a second stay the same however
// large the membership, where memberlist's interval, growing with log n, lets them grow
// almost with n. The price: news a member missed altogether (every retransmission of it
// lost) waits for the member's next exchange either way, half the interval on average:
// some 8 minutes at 1000 members with a 30 s base. The probes, which find failures, do not
// depend on it.
func ExchangeEvery(base time.Duration, n int) time.Duration {
	if n <= ExchangeScale {
		return base
	}
	return time.Duration(float64(base) * float64(n) / ExchangeScale)
}

// exchanges runs the member's full-state exchanges until stop: one every ExchangeEvery on
// average, and one followUp after each Join. The waits are drawn from an exponential
// distribution (the exchanges are a Poisson process): members that started together do not
// exchange together, and the rate is the same at any moment, however recently they started.
func (m *Member) exchanges(base, followUp time.Duration) {
	t := time.NewTimer(expWait(base))
	defer t.Stop()
	for {
		select {
		case <-m.stop:
			return
		case <-m.joined:
			t.Reset(followUp)
		case <-t.C:
			m.exchange()
			t.Reset(expWait(ExchangeEvery(base, m.ml.NumMembers())))
		}
	}
}

// expWait is a wait drawn from the exponential distribution of mean d.
func expWait(d time.Duration) time.Duration {
	return time.Duration(rand.ExpFloat64() * float64(d))
}

// exchange exchanges the whole membership with one peer this member holds alive, chosen at
// random.
func (m *Member) exchange() {
	m.mu.Lock()
	var alive []Peer
	for _, p := range m.peers {
		if p.State == Alive {
			alive = append(alive, p)
		}
	}
	m.mu.Unlock()
	if len(alive) == 0 {
		return
	}
	p := alive[rand.N(len(alive))]
	if _, err := m.ml.Join([]string{p.Addr.String()}); err != nil {
		m.log.Debug("membership exchange failed", "peer", p.Name, "err", err)
	}
}

// Addr is where the member listens (the port the system gave when Bind's was 0).
func (m *Member) Addr() netip.AddrPort {
	n := m.ml.LocalNode()
	a, _ := netip.AddrFromSlice(n.Addr)
	return netip.AddrPortFrom(a.Unmap(), n.Port)
}

// Join contacts seeds (host:port) and exchanges the members each knows; it returns how many
// answered. An error says none did.
func (m *Member) Join(seeds []string) (int, error) {
	n, err := m.ml.Join(seeds)
	if n == 0 && err == nil && len(seeds) > 0 {
		err = errors.New("no seed answered")
	}
	if n > 0 {
		select {
		case m.joined <- struct{}{}:
		default: // a follow-up is due already
		}
	}
	return n, err
}

// Send sends msg to the member listening at to, in one UDP packet, encrypted and labelled
// as the network's gossip is: best effort, so callers repeat it until they hear back. The
// receiver need not know this member: a sender that holds the key needs no join.
func (m *Member) Send(to netip.AddrPort, msg []byte) error {
	return m.ml.SendToAddress(memberlist.Address{Addr: to.String()}, msg)
}

// Peers is every other member this one has heard of, by name.
func (m *Member) Peers() []Peer {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]Peer, 0, len(m.peers))
	for _, p := range m.peers {
		out = append(out, p)
	}
	slices.SortFunc(out, func(a, b Peer) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// Peer is what this member knows of name.
func (m *Member) Peer(name string) (Peer, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	p, ok := m.peers[name]
	return p, ok
}

// Leave tells the others this member leaves, waiting up to timeout for it to spread, then
// stops it: to the others it is left, not dead.
func (m *Member) Leave(timeout time.Duration) error {
	m.mu.Lock()
	m.meta = []byte(leaving)
	m.mu.Unlock()
	err := m.ml.UpdateNode(timeout / 2)
	err = errors.Join(err, m.ml.Leave(timeout/2))
	return errors.Join(err, m.Shutdown())
}

// Shutdown stops the member without a word: to the others it fails.
func (m *Member) Shutdown() error {
	m.stopOnce.Do(func() { close(m.stop) })
	return m.ml.Shutdown()
}

func (m *Member) set(n *memberlist.Node, s State) {
	if n.Name == m.self {
		return
	}
	a, _ := netip.AddrFromSlice(n.Addr)
	m.mu.Lock()
	p, ok := m.peers[n.Name]
	changed := !ok || p.State != s
	if changed {
		p.Since = m.now()
	}
	p.Name, p.Addr, p.State = n.Name, netip.AddrPortFrom(a.Unmap(), n.Port), s
	m.peers[n.Name] = p
	m.mu.Unlock()
	if changed && m.onChange != nil {
		m.onChange(p)
	}
}

// events keeps memberlist's notifications; it never blocks memberlist.
type events struct{ m *Member }

func (e events) NotifyJoin(n *memberlist.Node)   { e.m.set(n, Alive) }
func (e events) NotifyUpdate(n *memberlist.Node) { e.m.set(n, Alive) }

func (e events) NotifyLeave(n *memberlist.Node) {
	if string(n.Meta) == leaving {
		e.m.set(n, Left)
		return
	}
	e.m.set(n, Dead)
}

// delegate gives memberlist this member's metadata, and hands over the messages sent to it.
type delegate struct{ m *Member }

func (d delegate) NodeMeta(limit int) []byte {
	d.m.mu.Lock()
	defer d.m.mu.Unlock()
	if len(d.m.meta) > limit {
		return nil
	}
	return slices.Clone(d.m.meta)
}

// NotifyMsg hands msg over once Start has returned: a message can arrive while memberlist is
// being created, and whoever takes it may answer through the member.
func (d delegate) NotifyMsg(msg []byte) {
	if d.m.onMessage != nil {
		<-d.m.ready
		d.m.onMessage(msg)
	}
}

func (delegate) GetBroadcasts(overhead, limit int) [][]byte { return nil }
func (delegate) LocalState(join bool) []byte                { return nil }
func (delegate) MergeRemoteState(buf []byte, join bool)     {}

// logWriter turns memberlist's log lines ("[WARN] memberlist: ...") into slog records at
// their level.
type logWriter struct{ log *slog.Logger }

func (w logWriter) Write(b []byte) (int, error) {
	line := string(bytes.TrimSpace(b))
	level := slog.LevelInfo
	for prefix, l := range map[string]slog.Level{"[DEBUG]": slog.LevelDebug, "[INFO]": slog.LevelInfo, "[WARN]": slog.LevelWarn, "[ERR]": slog.LevelError} {
		if rest, ok := strings.CutPrefix(line, prefix); ok {
			line, level = strings.TrimSpace(rest), l
			break
		}
	}
	w.log.Log(context.Background(), level, strings.TrimPrefix(line, "memberlist: "))
	return len(b), nil
}

var (
	_ memberlist.EventDelegate = events{}
	_ memberlist.Delegate      = delegate{}
)
