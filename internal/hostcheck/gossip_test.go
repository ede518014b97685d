package hostcheck

import (
	"bytes"
	"context"
	"encoding/base64"
	"io"
	"log/slog"
	"maps"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/memberlist"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/computeha/computeha/internal/config"
	"github.com/computeha/computeha/internal/gossip"
	"github.com/computeha/computeha/internal/health"
	"github.com/computeha/computeha/internal/watchdog"
)

var gossipKey = bytes.Repeat([]byte{3}, 32)

// fastGossip confirms a failure within a second or so on loopback.
func fastGossip(c *memberlist.Config) {
	c.ProbeInterval, c.ProbeTimeout = 50*time.Millisecond, 25*time.Millisecond
	c.GossipInterval, c.SuspicionMult = 20*time.Millisecond, 2
	c.PushPullInterval, c.TCPTimeout = time.Second, time.Second
}

// freePort is a port free on 127.0.0.1 for TCP and UDP, for every host of a test to gossip
// on, each at its own loopback address.
func freePort(t *testing.T) int {
	t.Helper()
	for range 20 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		_ = l.Close()
		u, err := net.ListenPacket("udp", l.Addr().String())
		if err == nil {
			_ = u.Close()
			return port
		}
	}
	t.Fatal("no free port")
	return 0
}

// gossipHealth: one network, ctrl1 the observer and seed, three computes, each on its own
// loopback address, gossiping with a key from a file.
func gossipHealth(t *testing.T) config.Health {
	t.Helper()
	keyFile := filepath.Join(t.TempDir(), "gossip.key")
	if err := os.WriteFile(keyFile, []byte(base64.StdEncoding.EncodeToString(gossipKey)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	h := config.DefaultHealth()
	h.SharedDir, h.RestartCommand = "/shared", "restart-the-service"
	h.Interval, h.ProbeFailures = 100*time.Millisecond, 2
	h.Networks = []config.Network{{Name: "mgmt", Management: true}}
	h.Hosts = map[string]map[string]string{
		"ctrl1": {"mgmt": "127.0.0.1"}, "cmp1": {"mgmt": "127.0.0.2"},
		"cmp2": {"mgmt": "127.0.0.3"}, "cmp3": {"mgmt": "127.0.0.4"},
	}
	h.Watchdog = config.Watchdog{Device: "file:/run/wd", Timeout: 8 * time.Second, SelfFenceAfter: 6 * time.Second, Observers: []string{"ctrl1"}, Margin: time.Second}
	h.Gossip = config.Gossip{KeyFile: keyFile, Port: freePort(t), Seeds: []string{"ctrl1"}}
	return h
}

// gossipHost is one host's checker on the real clock, its ICMP faked (every probe answered),
// its watchdog a fake.
type gossipHost struct {
	c      *checker
	prober *FakeProber
	dev    *watchdog.Fake
}

func newGossipHost(t *testing.T, h config.Health, node string) *gossipHost {
	t.Helper()
	return newGossipHostAt(t, h, node, nil)
}

// newGossipHostAt is newGossipHost on a machine whose interfaces have ifaddrs.
func newGossipHostAt(t *testing.T, h config.Health, node string, ifaddrs []netip.Addr) *gossipHost {
	t.Helper()
	g := &gossipHost{prober: NewFakeProber()}
	for name := range h.Hosts {
		a, _ := h.Address(name, "mgmt")
		g.prober.Set(a, true)
	}
	c, err := newChecker(Options{
		Health: h, Node: node, Service: &FakeService{}, Publisher: &FakePublisher{}, Store: NewFakeStore(),
		NewProber: func(string, netip.Addr) (Prober, error) { return g.prober, nil },
		OpenWatchdog: func(_ string, timeout time.Duration) (watchdog.Device, error) {
			g.dev = watchdog.NewFake(timeout, time.Now)
			return g.dev, nil
		},
		CondemnedMark: filepath.Join(t.TempDir(), "condemned"), BootTime: time.Now().Add(-time.Hour),
		GossipTune: fastGossip, Log: slog.New(slog.NewTextHandler(io.Discard, nil)),
		InterfaceAddrs: func() ([]netip.Addr, error) { return ifaddrs, nil },
	})
	if err != nil {
		t.Fatal(err)
	}
	g.c = c
	t.Cleanup(func() { c.stopGossip(false) })
	return g
}

// state is what host's checker holds of peer on mgmt.
func (g *gossipHost) state(peer string) health.Signal {
	g.c.mu.Lock()
	defer g.c.mu.Unlock()
	for _, p := range g.c.nets[0].peers {
		if p.name == peer {
			return p.state
		}
	}
	return health.Unknown
}

// until runs probe rounds of every host until ok, for up to 10 s.
func until(t *testing.T, what string, hosts []*gossipHost, ok func() bool) {
	t.Helper()
	for end := time.Now().Add(10 * time.Second); time.Now().Before(end); time.Sleep(50 * time.Millisecond) {
		for _, g := range hosts {
			g.c.probeStep(context.Background())
		}
		if ok() {
			return
		}
	}
	t.Fatalf("not within 10 s: %s", what)
}

func TestWithGossipAComputeProbesOnlyTheObserversAndLearnsTheOthersDeathsFromTheGossip(t *testing.T) {
	h := gossipHealth(t)
	var hosts []*gossipHost
	for _, n := range []string{"ctrl1", "cmp1", "cmp2", "cmp3"} {
		hosts = append(hosts, newGossipHost(t, h, n))
	}
	ctrl1, cmp1, cmp3 := hosts[0], hosts[1], hosts[3]
	until(t, "cmp1 reaches the observer, which reaches everyone, and every member knows every other", hosts, func() bool {
		for _, g := range hosts {
			if len(g.c.nets[0].gossip.member.Peers()) != 3 {
				return false
			}
		}
		return cmp1.state("ctrl1") == health.OK && ctrl1.state("cmp2") == health.OK && ctrl1.state("cmp3") == health.OK
	})
	if want := []netip.Addr{netip.MustParseAddr("127.0.0.1")}; !slices.Equal(cmp1.prober.Targets, want) {
		t.Errorf("cmp1 probed %v, want only the observer %v: the other computes are the gossip's", cmp1.prober.Targets, want)
	}
	if len(ctrl1.prober.Targets) != 3 {
		t.Errorf("the observer probed %v, want every host: its answers bound a silence", ctrl1.prober.Targets)
	}
	// Alive in the gossip proves nothing of now: only a probe says a peer answers.
	if s := cmp1.state("cmp2"); s != health.Unknown {
		t.Errorf("cmp1 holds cmp2 %s, want unknown: the gossip has it alive, which is no answer", s)
	}
	if v := cmp1.c.ownView(); v["mgmt"] != "ok" {
		t.Errorf("cmp1's own view %v: want mgmt ok", v)
	}
	// cmp3 fails without a word, as a power loss looks; the observer's probes of it fail too.
	cmp3.c.stopGossip(false)
	ctrl1.prober.Set(netip.MustParseAddr("127.0.0.4"), false)
	until(t, "cmp1 and the observer hold cmp3 lost", hosts[:3], func() bool {
		return cmp1.state("cmp3") == health.Lost && ctrl1.state("cmp3") == health.Lost
	})
	if cmp1.state("cmp2") != health.Unknown || cmp1.state("ctrl1") != health.OK {
		t.Errorf("cmp1 holds cmp2 %s and ctrl1 %s: only cmp3 failed", cmp1.state("cmp2"), cmp1.state("ctrl1"))
	}
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(newCollector(cmp1.c))
	want := `
# HELP computeha_hostcheck_gossip_members Other hosts this host's gossip membership on the network holds in the state (alive, dead: its failure confirmed, left: its hostcheck stopped on purpose); absent while the network's gossip is not running. 0 alive: this host joined nobody.
# TYPE computeha_hostcheck_gossip_members gauge
computeha_hostcheck_gossip_members{network="mgmt",state="alive"} 2
computeha_hostcheck_gossip_members{network="mgmt",state="dead"} 1
computeha_hostcheck_gossip_members{network="mgmt",state="left"} 0
`
	if err := testutil.CollectAndCompare(reg, strings.NewReader(want), "computeha_hostcheck_gossip_members"); err != nil {
		t.Errorf("cmp1's gossip membership metric: %v", err)
	}
	// cmp3's hostcheck starts again: it joins through the seed, and is no longer lost.
	hosts[3] = newGossipHost(t, h, "cmp3")
	until(t, "cmp1 no longer holds cmp3 lost", hosts, func() bool { return cmp1.state("cmp3") == health.Unknown })
}

// querier is a fence agent's member: it never joins, sends queries and takes in the
// acknowledgements.
type querier struct {
	m    *gossip.Member
	mu   sync.Mutex
	acks []health.FenceAck
}

func newQuerier(t *testing.T) *querier {
	t.Helper()
	q := &querier{}
	m, err := gossip.Start(gossip.Options{
		Name: "fencer", Network: "mgmt", Bind: netip.MustParseAddrPort("127.0.0.1:0"), Key: gossipKey, Tune: fastGossip,
		OnMessage: func(msg []byte) {
			if a, err := health.ParseAck(msg); err == nil {
				q.mu.Lock()
				q.acks = append(q.acks, a)
				q.mu.Unlock()
			}
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.Shutdown() })
	q.m = m
	return q
}

func (q *querier) send(t *testing.T, host string, at time.Time, to string) {
	t.Helper()
	q.sendSince(t, host, at, at.Add(-time.Second), to)
}

// sendSince sends a query of an attempt begun at since.
func (q *querier) sendSince(t *testing.T, host string, at, since time.Time, to string) {
	t.Helper()
	b, err := health.MarshalQuery(health.FenceQuery{Host: host, ID: "q1", By: "ctrl1", Time: at, Since: since, ReplyTo: q.m.Addr()})
	if err != nil {
		t.Fatal(err)
	}
	if err := q.m.Send(netip.MustParseAddrPort(to), b); err != nil {
		t.Fatal(err)
	}
}

func (q *querier) got() []health.FenceAck {
	q.mu.Lock()
	defer q.mu.Unlock()
	return slices.Clone(q.acks)
}

func TestAFenceQueryByGossipStopsTheWatchdogThenIsAcknowledged(t *testing.T) {
	h := gossipHealth(t)
	cmp1 := newGossipHost(t, h, "cmp1")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan struct{})
	go func() { defer close(done); cmp1.c.watchdogLoop(ctx) }()
	cmp1.c.probeStep(ctx) // starts the gossip
	to := netip.AddrPortFrom(netip.MustParseAddr("127.0.0.2"), uint16(h.Gossip.Port)).String()
	q := newQuerier(t)

	// Neither a stale copy, nor a query for another host, nor one of an attempt begun before
	// cmp1 started (an hour ago) condemns cmp1.
	q.send(t, "cmp1", time.Now().Add(-time.Minute), to)
	q.send(t, "cmp2", time.Now(), to)
	q.sendSince(t, "cmp1", time.Now(), time.Now().Add(-2*time.Hour), to)
	time.Sleep(500 * time.Millisecond)
	if a := q.got(); len(a) > 0 {
		t.Fatalf("acknowledged %+v", a)
	}
	cmp1.c.mu.Lock()
	condemned := cmp1.c.sf.condemned
	cmp1.c.mu.Unlock()
	if condemned != nil || cmp1.dev == nil {
		t.Fatalf("condemned %+v by a stale or foreign query (device %v)", condemned, cmp1.dev)
	}

	for end := time.Now().Add(10 * time.Second); len(q.got()) == 0 && time.Now().Before(end); time.Sleep(100 * time.Millisecond) {
		q.send(t, "cmp1", time.Now(), to)
	}
	acks := q.got()
	if len(acks) == 0 {
		t.Fatal("no acknowledgement within 10 s")
	}
	a := acks[0]
	if a.Host != "cmp1" || a.ID != "q1" || a.Watchdog.Timeout() != 8*time.Second {
		t.Errorf("acknowledgement %+v: want cmp1, q1 and its 8s countdown", a)
	}
	// Fed no more from the acknowledgement on: the countdown runs from before it.
	feeds, _, _ := cmp1.dev.State()
	time.Sleep(3 * cmp1.c.sf.every)
	if got, _, _ := cmp1.dev.State(); got != feeds {
		t.Errorf("fed %d more times after acknowledging the fence query", got-feeds)
	}
	if last := cmp1.dev.LastFeed(); last.After(a.Since) {
		t.Errorf("last fed at %s, after the condemnation at %s that the acknowledgement announced", last, a.Since)
	}
	if rec := cmp1.c.record(time.Now()); rec.Condemned == nil || rec.Condemned.Pill != "q1" {
		t.Errorf("the heartbeat record says %+v: want the query's condemnation", rec.Condemned)
	}
	if _, err := os.Stat(cmp1.c.o.CondemnedMark); err != nil {
		t.Errorf("the condemnation is not kept across a restart: %v", err)
	}
	cancel()
	<-done
}

func TestAHostNotListedFindsItsAddressJoinsByGossipAndIsProbedByTheObserver(t *testing.T) {
	h := gossipHealth(t)
	delete(h.Hosts, "cmp3")
	h.Networks[0].Subnet = "127.0.0.0/24"
	ctrl1, cmp1 := newGossipHost(t, h, "ctrl1"), newGossipHost(t, h, "cmp1")
	// cmp3's machine has an address elsewhere first: the one in the subnet is its own.
	cmp3 := newGossipHostAt(t, h, "cmp3", []netip.Addr{netip.MustParseAddr("10.9.9.9"), netip.MustParseAddr("127.0.0.4")})
	ctrl1.prober.Set(netip.MustParseAddr("127.0.0.4"), true)
	if got := cmp3.c.nets[0].local; got != netip.MustParseAddr("127.0.0.4") {
		t.Fatalf("cmp3 is at %s on mgmt, want 127.0.0.4, its address in the subnet", got)
	}
	if rec := cmp3.c.record(time.Now()); rec.Addresses["mgmt"] != "127.0.0.4" {
		t.Errorf("cmp3's record announces %v, want its mgmt address", rec.Addresses)
	}
	if rec := cmp1.c.record(time.Now()); rec.Addresses != nil {
		t.Errorf("cmp1, listed, announces %v in its record: its addresses are the configuration's", rec.Addresses)
	}
	hosts := []*gossipHost{ctrl1, cmp1, cmp3}
	for _, g := range hosts {
		g.c.probeStep(context.Background()) // starts the gossip
	}
	// Members that are not hosts: a name that is no node name, an address out of the subnet.
	for name, at := range map[string]string{"bad=name": "127.0.0.9", "elsewhere": "127.0.1.5"} {
		m, err := gossip.Start(gossip.Options{
			Name: name, Network: "mgmt", Bind: netip.AddrPortFrom(netip.MustParseAddr(at), uint16(h.Gossip.Port)), Key: gossipKey, Tune: fastGossip,
		})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = m.Shutdown() })
		if _, err := m.Join([]string{netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(h.Gossip.Port)).String()}); err != nil {
			t.Fatal(err)
		}
	}
	until(t, "the observer probes cmp3, which it learned of by gossip, and reaches it; cmp3 reaches the observer", hosts, func() bool {
		return ctrl1.state("cmp3") == health.OK && cmp3.state("ctrl1") == health.OK
	})
	if !slices.Contains(ctrl1.prober.Targets, netip.MustParseAddr("127.0.0.4")) {
		t.Errorf("the observer probed %v: want cmp3's address among them", ctrl1.prober.Targets)
	}
	until(t, "the gossip has the strangers alive at the observer", hosts, func() bool {
		_, bad := ctrl1.c.nets[0].gossip.member.Peer("bad=name")
		_, out := ctrl1.c.nets[0].gossip.member.Peer("elsewhere")
		return bad && out
	})
	ctrl1.c.probeStep(context.Background())
	ctrl1.c.mu.Lock()
	var peers []string
	for _, p := range ctrl1.c.nets[0].peers {
		peers = append(peers, p.name)
	}
	ignored := maps.Clone(ctrl1.c.nets[0].ignored)
	ctrl1.c.mu.Unlock()
	slices.Sort(peers)
	if want := []string{"cmp1", "cmp2", "cmp3"}; !slices.Equal(peers, want) {
		t.Errorf("the observer's peers are %v, want %v: the listed hosts and cmp3, not the strangers", peers, want)
	}
	if len(ignored) != 2 {
		t.Errorf("the observer ignored %v, want both strangers", ignored)
	}
	// Its view names cmp3 for the evidence.
	var last string
	for _, p := range ctrl1.c.o.Publisher.(*FakePublisher).Take() {
		if p.Node == "ctrl1" && p.Name == health.ReachAttribute("mgmt") {
			last = p.Value
		}
	}
	if !strings.Contains(last, "cmp3=ok") {
		t.Errorf("the observer published %q last: want cmp3 reachable", last)
	}
	// cmp3 fails without a word: the observer's probes of it fail, and cmp1 learns it from the
	// gossip.
	cmp3.c.stopGossip(false)
	ctrl1.prober.Set(netip.MustParseAddr("127.0.0.4"), false)
	until(t, "the observer and cmp1 hold cmp3 lost", hosts[:2], func() bool {
		return ctrl1.state("cmp3") == health.Lost && cmp1.state("cmp3") == health.Lost
	})
}

func TestAHostNotListedMustBeAllowedToJoinAndHaveAManagementAddress(t *testing.T) {
	h := gossipHealth(t)
	delete(h.Hosts, "cmp3")
	if err := CheckConfig(&h, "cmp3"); err == nil || !strings.Contains(err.Error(), "no subnet") {
		t.Errorf("no subnet on mgmt: %v", err)
	}
	h.Networks[0].Subnet = "127.0.0.0/24"
	if err := CheckConfig(&h, "cmp3"); err != nil {
		t.Errorf("with a subnet: %v", err)
	}
	_, err := newChecker(Options{
		Health: h, Node: "cmp3", Service: &FakeService{}, Publisher: &FakePublisher{}, Store: NewFakeStore(),
		InterfaceAddrs: func() ([]netip.Addr, error) { return []netip.Addr{netip.MustParseAddr("10.9.9.9")}, nil },
		Log:            slog.New(slog.DiscardHandler),
	})
	if err == nil || !strings.Contains(err.Error(), "management network's subnet 127.0.0.0/24") {
		t.Errorf("no address in the subnet: %v", err)
	}
	h.Gossip = config.Gossip{}
	if err := CheckConfig(&h, "cmp3"); err == nil || !strings.Contains(err.Error(), "without gossip") {
		t.Errorf("without gossip: %v", err)
	}
}
