package selffence

import (
	"bytes"
	"context"
	"encoding/base64"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/computeha/computeha/fence"
	"github.com/computeha/computeha/internal/evidence"
	"github.com/computeha/computeha/internal/gossip"
	"github.com/computeha/computeha/internal/health"
)

var queryKey = bytes.Repeat([]byte{5}, 32)

// gossipDoc is cfgDoc with the hosts on loopback addresses, gossiping on port.
func gossipDoc(t *testing.T, port int) string {
	t.Helper()
	keyFile := filepath.Join(t.TempDir(), "gossip.key")
	if err := os.WriteFile(keyFile, []byte(base64.StdEncoding.EncodeToString(queryKey)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	doc := strings.NewReplacer("192.0.2.1}", "127.0.0.1}", "192.0.2.11", "127.0.0.2", "192.0.2.12", "127.0.0.3").Replace(cfgDoc)
	return doc + "  gossip: {key_file: " + keyFile + ", port: " + strconv.Itoa(port) + "}\n"
}

func freeUDPPort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.2:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// host is cmp1's side of the query, as its hostcheck answers it: it acknowledges every
// fresh query for itself once acking is set.
type host struct {
	m      *gossip.Member
	mu     sync.Mutex
	acking bool
	got    []health.FenceQuery
}

func newHost(t *testing.T, port int, acking bool) *host {
	t.Helper()
	h := &host{acking: acking}
	m, err := gossip.Start(gossip.Options{
		Name: "cmp1", Network: "mgmt", Bind: netip.AddrPortFrom(netip.MustParseAddr("127.0.0.2"), uint16(port)), Key: queryKey,
		OnMessage: func(msg []byte) {
			q, err := health.ParseQuery(msg)
			if err != nil {
				return
			}
			h.mu.Lock()
			h.got = append(h.got, q)
			acking, m := h.acking, h.m
			h.mu.Unlock()
			if !acking || q.Host != "cmp1" || m == nil {
				return
			}
			b, _ := health.MarshalAck(health.FenceAck{Host: "cmp1", ID: q.ID, Since: q.Time, Watchdog: health.RecordWatchdog{TimeoutMS: 6000, SelfFenceAfterMS: 5000}})
			go func() { _ = m.Send(q.ReplyTo, b) }()
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	h.mu.Lock()
	h.m = m
	h.mu.Unlock()
	t.Cleanup(func() { _ = m.Shutdown() })
	return h
}

func (h *host) queries() []health.FenceQuery {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]health.FenceQuery(nil), h.got...)
}

// runReal is run with every fake second taking a few real milliseconds, so that packets on
// loopback arrive while the agent waits.
func runReal(t *testing.T, w *world, args ...string) result {
	t.Helper()
	var out, errb bytes.Buffer
	start := w.clk.now()
	deps := Deps{Cluster: w, Storage: &evidence.Storage{FS: w}, Pills: w.pills, Now: w.clk.now, Node: "ctl1"}
	sleep := func(ctx context.Context, d time.Duration) error {
		time.Sleep(d / 50)
		return w.clk.sleep(ctx, d)
	}
	code := fence.Main(context.Background(), NewAgent(deps), fence.Env{
		Args: args, Stdin: strings.NewReader(""), Stdout: &out, Stderr: &errb, Now: w.clk.now, Sleep: sleep,
	})
	return result{code, out.String(), errb.String(), w.clk.now().Sub(start)}
}

func TestAHostThatLostItsStorageIsOffOnceItAcknowledgedTheFenceQueryByGossip(t *testing.T) {
	port := freeUDPPort(t)
	cmp1 := newHost(t, port, true)
	w := newWorld()
	// Its storage is gone: its last heartbeat is a minute old and never acknowledges the
	// pill. The observer still reaches it on mgmt, so no silence can be proven either.
	w.record = func(time.Time, *health.Pill) *health.Record { return armed(t0.Add(-time.Minute)) }
	w.view = func(time.Time) string { return "cmp1=ok cmp2=ok" }
	r := runReal(t, w, "-o", "off", "-n", "cmp1", "--config", writeConfig(t, gossipDoc(t, port)))
	if r.code != 0 || r.stdout != "Success: Powered OFF\n" {
		t.Fatalf("off: code %d, stdout %q, stderr %s", r.code, r.stdout, r.stderr)
	}
	qs := cmp1.queries()
	if len(qs) == 0 {
		t.Fatal("no fence query reached the host")
	}
	if q := qs[0]; q.Host != "cmp1" || q.By != "ctl1" || q.ID == "" {
		t.Errorf("query %+v", q)
	}
	// The countdown the host announced (6s, above the configuration's 5s) and the 2s margin,
	// from when the acknowledgement was seen.
	if r.took < 8*time.Second || r.took > 12*time.Second {
		t.Errorf("off took %s, want the announced 6s countdown + 2s margin after the acknowledgement", r.took)
	}
}

func TestAFenceQueryNotAcknowledgedFencesNobody(t *testing.T) {
	port := freeUDPPort(t)
	cmp1 := newHost(t, port, false)
	w := newWorld()
	w.record = func(time.Time, *health.Pill) *health.Record { return armed(t0.Add(-time.Minute)) }
	w.view = func(time.Time) string { return "cmp1=ok cmp2=ok" }
	r := runReal(t, w, "-o", "off", "-n", "cmp1", "--config", writeConfig(t, gossipDoc(t, port)))
	if r.code == 0 {
		t.Fatalf("off succeeded: %s", r.stdout)
	}
	if !strings.Contains(r.stderr, "nor the fence query by gossip") {
		t.Errorf("stderr does not name the unanswered query:\n%s", r.stderr)
	}
	if len(cmp1.queries()) < 10 {
		t.Errorf("the query was sent %d times over the wait, want it repeated every round", len(cmp1.queries()))
	}
}

func TestAHostThatJoinedByGossipIsSentTheQueryWhereItsRecordSaysItIs(t *testing.T) {
	port := freeUDPPort(t)
	cmp1 := newHost(t, port, true)
	w := newWorld()
	// cmp1 is not listed: its record, first read two seconds into the wait, says where it is.
	w.record = func(now time.Time, _ *health.Pill) *health.Record {
		if now.Before(t0.Add(2 * time.Second)) {
			return nil
		}
		r := armed(t0.Add(-time.Minute))
		r.Addresses = map[string]string{"mgmt": "127.0.0.2"}
		return r
	}
	w.view = func(time.Time) string { return "cmp1=ok cmp2=ok" }
	doc := strings.NewReplacer("    cmp1: {mgmt: 127.0.0.2}\n", "", "{name: mgmt, management: true}", "{name: mgmt, management: true, subnet: 127.0.0.0/24}").Replace(gossipDoc(t, port))
	if strings.Contains(doc, "cmp1: {") {
		t.Fatalf("cmp1 is still listed:\n%s", doc)
	}
	r := runReal(t, w, "-o", "off", "-n", "cmp1", "--config", writeConfig(t, doc))
	if r.code != 0 || r.stdout != "Success: Powered OFF\n" {
		t.Fatalf("off: code %d, stdout %q, stderr %s", r.code, r.stdout, r.stderr)
	}
	if len(cmp1.queries()) == 0 {
		t.Fatal("no fence query reached the host")
	}
	if !strings.Contains(r.stderr, "its heartbeat record, which gives its addresses, was not read") {
		t.Errorf("the first try, without its record, is not said:\n%s", r.stderr)
	}
}
