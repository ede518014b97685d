package gossip

import (
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/memberlist"
)

var (
	key      = bytes.Repeat([]byte{7}, 32)
	loopback = netip.MustParseAddrPort("127.0.0.1:0")
)

// fast makes failures confirmed in well under a second on loopback.
func fast(c *memberlist.Config) {
	c.ProbeInterval, c.ProbeTimeout = 50*time.Millisecond, 25*time.Millisecond
	c.GossipInterval, c.SuspicionMult = 20*time.Millisecond, 2
	c.PushPullInterval, c.TCPTimeout = time.Second, time.Second
}

func start(t *testing.T, name, network string, k []byte) *Member {
	t.Helper()
	m, err := Start(Options{Name: name, Network: network, Bind: loopback, Key: k, Tune: fast})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.Shutdown() })
	return m
}

// eventually waits up to 10 s for ok.
func eventually(t *testing.T, what string, ok func() bool) {
	t.Helper()
	for end := time.Now().Add(10 * time.Second); time.Now().Before(end); time.Sleep(20 * time.Millisecond) {
		if ok() {
			return
		}
	}
	t.Fatalf("not within 10 s: %s", what)
}

func state(m *Member, name string) State {
	p, _ := m.Peer(name)
	return p.State
}

func TestMembersJoinedThroughASeedSeeEachOtherAndAFailureAndALeave(t *testing.T) {
	a, b, c := start(t, "cmp1", "mgmt", key), start(t, "cmp2", "mgmt", key), start(t, "cmp3", "mgmt", key)
	for _, m := range []*Member{b, c} {
		if n, err := m.Join([]string{a.Addr().String()}); n != 1 || err != nil {
			t.Fatalf("join through cmp1: %d, %v", n, err)
		}
	}
	eventually(t, "every member alive to every other", func() bool {
		return state(a, "cmp2") == Alive && state(a, "cmp3") == Alive && state(b, "cmp3") == Alive && state(c, "cmp2") == Alive
	})
	if p, _ := b.Peer("cmp3"); p.Addr != c.Addr() {
		t.Errorf("cmp3 at %s, want %s", p.Addr, c.Addr())
	}
	if got := a.Peers(); len(got) != 2 || got[0].Name != "cmp2" || got[1].Name != "cmp3" {
		t.Errorf("cmp1's peers %+v: want cmp2 and cmp3 (itself left out), by name", got)
	}
	_ = c.Shutdown() // fails, as a power loss looks
	eventually(t, "cmp3 dead to cmp1 and cmp2", func() bool { return state(a, "cmp3") == Dead && state(b, "cmp3") == Dead })
	if err := b.Leave(time.Second); err != nil {
		t.Fatal(err)
	}
	eventually(t, "cmp2 left to cmp1", func() bool { return state(a, "cmp2") == Left })
}

func TestAMemberWithAnotherKeyOrOfAnotherNetworkNeverMixes(t *testing.T) {
	a := start(t, "cmp1", "mgmt", key)
	other := start(t, "intruder", "mgmt", bytes.Repeat([]byte{9}, 32))
	if n, err := other.Join([]string{a.Addr().String()}); n != 0 || err == nil {
		t.Errorf("a member with another key joined: %d, %v", n, err)
	}
	tenant := start(t, "cmp2", "tenant", key)
	if n, err := tenant.Join([]string{a.Addr().String()}); n != 0 || err == nil {
		t.Errorf("a member of the tenant network joined the management one: %d, %v", n, err)
	}
	time.Sleep(200 * time.Millisecond)
	if p := a.Peers(); len(p) != 0 {
		t.Errorf("cmp1 knows %+v", p)
	}
}

func TestStartRefusesNoKeyABadKeyAndNoName(t *testing.T) {
	for _, tt := range []struct {
		o    Options
		want string
	}{
		{Options{Name: "cmp1", Network: "mgmt", Bind: loopback}, ErrNoKey.Error()},
		{Options{Name: "cmp1", Network: "mgmt", Bind: loopback, Key: []byte("short")}, "gossip key"},
		{Options{Network: "mgmt", Bind: loopback, Key: key}, ErrNoName.Error()},
	} {
		if m, err := Start(tt.o); err == nil || !strings.Contains(err.Error(), tt.want) {
			if m != nil {
				_ = m.Shutdown()
			}
			t.Errorf("Start(%+v): %v, want an error with %q", tt.o, err, tt.want)
		}
	}
}

func TestReadKeyTakesOnlyAPrivateFileOfOneKey(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string, mode os.FileMode) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil {
			t.Fatal(err)
		}
		return p
	}
	good := write("good", "BwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc=\n", 0o600)
	if k, err := ReadKey(good); err != nil || !bytes.Equal(k, key) {
		t.Fatalf("a good key: %x, %v", k, err)
	}
	link := filepath.Join(dir, "link")
	if err := os.Symlink(good, link); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct{ path, want string }{
		{write("open", "BwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc=\n", 0o644), "is readable by others (mode 0644)"},
		{write("short", "BwcHBwcHBwc=\n", 0o600), "8 bytes, want 16, 24 or 32"},
		{write("garbage", "not a key!\n", 0o400), "not base64"},
		{write("two", "BwcHBwcHBwcHBwcHBwcHBw==\nBwcHBwcHBwcHBwcHBwcHBw==\n", 0o600), "more than one line"},
		{link, "symbolic link"},
		{dir, "not a regular file"},
		{filepath.Join(dir, "missing"), "no such file"},
	} {
		if k, err := ReadKey(tt.path); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: %x, %v; want an error with %q", filepath.Base(tt.path), k, err, tt.want)
		}
	}
}

func TestMemberlistsLogLinesKeepTheirLevel(t *testing.T) {
	var b strings.Builder
	w := logWriter{log: newTextLogger(&b)}
	fmt.Fprintln(w, "[WARN] memberlist: Was able to connect to cmp2 over TCP but UDP probes failed")
	fmt.Fprintln(w, "[ERR] memberlist: Failed to send ping")
	out := b.String()
	if !strings.Contains(out, `level=WARN msg="Was able to connect to cmp2 over TCP but UDP probes failed"`) ||
		!strings.Contains(out, `level=ERROR msg="Failed to send ping"`) {
		t.Errorf("logged:\n%s", out)
	}
}

func newTextLogger(w io.Writer) *slog.Logger {
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

func TestSendReachesAMemberWithoutAJoinOnlyWithTheKeyAndTheNetwork(t *testing.T) {
	got := make(chan string, 4)
	receive := func(msg []byte) { got <- string(msg) }
	rx, err := Start(Options{Name: "cmp1", Network: "mgmt", Bind: loopback, Key: key, Tune: fast, OnMessage: receive})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = rx.Shutdown() })
	// A sender that never joined: a fence agent's member lives for one fencing.
	tx := start(t, "fencer", "mgmt", key)
	other := bytes.Repeat([]byte{8}, 32)
	foreign, stranger := start(t, "fencer2", "mgmt", other), start(t, "fencer3", "tenant", key)
	for _, s := range []struct {
		m   *Member
		msg string
	}{{foreign, "from another key"}, {stranger, "from another network"}, {tx, "fence cmp1"}} {
		if err := s.m.Send(rx.Addr(), []byte(s.msg)); err != nil {
			t.Fatal(err)
		}
	}
	select {
	case msg := <-got:
		if msg != "fence cmp1" {
			t.Fatalf("received %q: only the message sealed with the network's key and label may arrive", msg)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the message never arrived")
	}
	select {
	case msg := <-got:
		t.Fatalf("received %q as well", msg)
	case <-time.After(300 * time.Millisecond):
	}
	if len(rx.Peers()) != 0 {
		t.Errorf("a message made %v members of cmp1's network", rx.Peers())
	}
}

func TestExchangeEveryIsTheBaseUpTo32MembersThenGrowsInProportion(t *testing.T) {
	base := 30 * time.Second
	for _, c := range []struct {
		n    int
		want time.Duration
	}{{1, base}, {5, base}, {ExchangeScale, base}, {64, time.Minute}, {1000, 937500 * time.Millisecond}} {
		if got := ExchangeEvery(base, c.n); got != c.want {
			t.Errorf("ExchangeEvery(%s, %d) = %s, want %s", base, c.n, got, c.want)
		}
	}
	// The bytes a second of an exchange of every member's state stay the same from 32 on.
	perSecond := func(n int) float64 { return float64(n) / ExchangeEvery(base, n).Seconds() }
	if a, b := perSecond(ExchangeScale), perSecond(1000); a != b {
		t.Errorf("members exchanged a second: %.3f at %d, %.3f at 1000: want the same", a, ExchangeScale, b)
	}
}

// silent leaves a member no way to hear news but the exchanges: no probes (a probe's packets
// carry news too), no gossip, and memberlist's own exchanges off.
func silent(c *memberlist.Config) {
	c.ProbeInterval, c.GossipInterval, c.PushPullInterval, c.TCPTimeout = 0, 0, 0, time.Second
}

func TestAMemberMendsTheNewsItMissedByExchangesAfterItsJoinAndThenNowAndThen(t *testing.T) {
	quiet := func(name string) *Member {
		m, err := Start(Options{Name: name, Network: "mgmt", Bind: loopback, Key: key, Tune: silent})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = m.Shutdown() })
		return m
	}
	a, b, c, d := quiet("cmp1"), quiet("cmp2"), quiet("cmp3"), quiet("cmp4")
	seed := []string{a.Addr().String()}
	for _, m := range []*Member{b, c} {
		if n, err := m.Join(seed); n != 1 || err != nil {
			t.Fatalf("join through cmp1: %d, %v", n, err)
		}
	}
	// cmp2 joined before cmp3, through the same seed: nothing tells it of cmp3.
	time.Sleep(300 * time.Millisecond)
	if s := state(b, "cmp3"); s != 0 || state(c, "cmp2") != Alive {
		t.Fatalf("cmp2 holds cmp3 %v, cmp3 holds cmp2 %v: want never heard of, alive", s, state(c, "cmp2"))
	}
	// The exchange that follows cmp2's join (signalled before the loop ran) tells it.
	go b.exchanges(time.Hour, 100*time.Millisecond)
	eventually(t, "cmp3 alive to cmp2 after its follow-up exchange", func() bool { return state(b, "cmp3") == Alive })

	// Then now and then: cmp4 joins, and cmp3's periodic exchange (cmp2's next one is an hour
	// away) tells it of cmp4.
	if n, err := d.Join(seed); n != 1 || err != nil {
		t.Fatalf("join through cmp1: %d, %v", n, err)
	}
	time.Sleep(300 * time.Millisecond)
	if s := state(c, "cmp4"); s != 0 {
		t.Fatalf("cmp3 holds cmp4 %v before any exchange: want never heard of", s)
	}
	<-c.joined // no follow-up of cmp3's own join
	go c.exchanges(200*time.Millisecond, time.Hour)
	eventually(t, "cmp4 alive to cmp3 after its periodic exchanges", func() bool { return state(c, "cmp4") == Alive })
	if s := state(b, "cmp4"); s != 0 {
		t.Errorf("cmp2 holds cmp4 %v: want never heard of (its exchanges are an hour apart)", s)
	}
}
