package haapi

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/computeha/computeha/internal/instancemon"
	"github.com/computeha/computeha/internal/openstack"
)

const (
	vmA = "6e1c3f0a-52d4-4c5e-9f59-1a2b3c4d5e6f" // project p1
	vmB = "0b8a2c66-1111-4a2b-8c9d-abcdefabcdef" // project p2
)

type fakeSink struct {
	mu      sync.Mutex
	events  []instancemon.Event
	signals []string
	hosts   []instancemon.HostEvent
	err     error
	panics  bool
}

func (s *fakeSink) InstanceFailed(_ context.Context, e instancemon.Event, _ Caller) (Answer, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.panics {
		panic("a bug of the daemon")
	}
	if s.err != nil {
		return Answer{}, s.err
	}
	s.events = append(s.events, e)
	return Answer{Status: Accepted}, nil
}

func (s *fakeSink) Signal(_ context.Context, srv openstack.Server, reason string, _ Caller) (Answer, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.signals = append(s.signals, srv.ID+" "+reason)
	return Answer{Status: Accepted}, nil
}

func (s *fakeSink) HostProcess(_ context.Context, e instancemon.HostEvent, _ Caller) (Answer, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.hosts = append(s.hosts, e)
	return Answer{Status: Accepted}, nil
}

func (s *fakeSink) calls() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.events) + len(s.signals) + len(s.hosts)
}

func newAPI(t *testing.T) (*httptest.Server, *fakeSink, *openstack.Fake) {
	t.Helper()
	nova := openstack.NewFake(nil)
	nova.AddCompute("cmp1", "nova")
	nova.AddServer(openstack.Server{ID: vmA, Name: "a", Host: "cmp1", Status: "ACTIVE", ProjectID: "p1"})
	nova.AddServer(openstack.Server{ID: vmB, Name: "b", Host: "cmp1", Status: "ACTIVE", ProjectID: "p2"})
	nova.SetToken("monitor", openstack.TokenInfo{UserID: "m", ProjectID: "service", Roles: []string{"admin"}})
	nova.SetToken("member1", openstack.TokenInfo{UserID: "u1", ProjectID: "p1", Roles: []string{"member"}})
	nova.SetToken("reader1", openstack.TokenInfo{UserID: "u2", ProjectID: "p1", Roles: []string{"reader"}})
	nova.SetToken("service", openstack.TokenInfo{UserID: "glance", ProjectID: "service", Roles: []string{"service"}})
	sink := &fakeSink{}
	srv := httptest.NewServer(NewHandler(Options{Tokens: nova, Servers: nova, Sink: sink}))
	t.Cleanup(srv.Close)
	return srv, sink, nova
}

func do(t *testing.T, srv *httptest.Server, method, path, token, ctype, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, srv.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("X-Auth-Token", token)
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

const goodEvent = `{"server": "` + vmA + `", "host": "cmp1", "domain": "instance-00000001", "event": "crashed", "reason": "failed", "source": "event"}`

func TestBadRequestsGetTheirCodeAJSONErrorAndChangeNothing(t *testing.T) {
	srv, sink, _ := newAPI(t)
	j := "application/json"
	for _, c := range []struct {
		name                          string
		method, path, token, ct, body string
		code                          int
	}{
		{"no token", "POST", PathInstanceEvents, "", j, goodEvent, 401},
		{"a token Keystone does not know", "POST", PathInstanceEvents, "forged", j, goodEvent, 401},
		{"a member reporting instance events", "POST", PathInstanceEvents, "member1", j, goodEvent, 403},
		{"another service's user reporting instance events", "POST", PathInstanceEvents, "service", j, goodEvent, 403},
		{"a reader signalling its project's server", "POST", SignalPath(vmA), "reader1", j, `{}`, 403},
		{"not JSON", "POST", PathInstanceEvents, "monitor", j, `{"server": `, 400},
		{"an unknown field", "POST", PathInstanceEvents, "monitor", j, strings.Replace(goodEvent, `"host"`, `"hots": "x", "host"`, 1), 400},
		{"an unknown event", "POST", PathInstanceEvents, "monitor", j, strings.Replace(goodEvent, "crashed", "sad", 1), 400},
		{"a server that is no UUID", "POST", PathInstanceEvents, "monitor", j, strings.Replace(goodEvent, vmA, "../etc", 1), 400},
		{"no host", "POST", PathInstanceEvents, "monitor", j, strings.Replace(goodEvent, `"cmp1"`, `""`, 1), 400},
		{"two JSON values", "POST", PathInstanceEvents, "monitor", j, goodEvent + goodEvent, 400},
		{"not application/json", "POST", PathInstanceEvents, "monitor", "text/plain", goodEvent, 415},
		{"a body too large", "POST", PathInstanceEvents, "monitor", j, `{"server": "` + strings.Repeat("x", MaxBody) + `"}`, 413},
		{"another method", "GET", PathInstanceEvents, "monitor", "", "", 405},
		{"an unknown path", "POST", "/v1/nothing", "monitor", j, "{}", 404},
		{"another project's server", "POST", SignalPath(vmB), "member1", j, `{"reason": "x"}`, 404},
		{"a server that does not exist", "POST", SignalPath("11111111-2222-3333-4444-555555555555"), "member1", j, `{}`, 404},
		{"a signal's reason too long", "POST", SignalPath(vmA), "member1", j, `{"reason": "` + strings.Repeat("r", 300) + `"}`, 400},
		{"a signal with an unknown field", "POST", SignalPath(vmA), "member1", j, `{"reason": "x", "force": true}`, 400},
		{"a signal with GET", "GET", SignalPath(vmA), "member1", "", "", 405},
		{"a member reporting a host event", "POST", PathHostEvents, "member1", j, `{"host": "cmp1", "process": "libvirtd", "state": "failed"}`, 403},
		{"a host event of an unknown state", "POST", PathHostEvents, "monitor", j, `{"host": "cmp1", "process": "libvirtd", "state": "sad"}`, 400},
		{"a host event of no process", "POST", PathHostEvents, "monitor", j, `{"host": "cmp1", "process": "", "state": "failed"}`, 400},
	} {
		t.Run(c.name, func(t *testing.T) {
			code, body := do(t, srv, c.method, c.path, c.token, c.ct, c.body)
			if code != c.code {
				t.Errorf("code %d, want %d: %s", code, c.code, body)
			}
			var eb ErrorBody
			if err := json.Unmarshal([]byte(body), &eb); err != nil || eb.Error.Code != c.code || eb.Error.Message == "" {
				t.Errorf("body %q is not a JSON error with code %d", body, c.code)
			}
		})
	}
	if n := sink.calls(); n != 0 {
		t.Errorf("the daemon was handed %d refused requests", n)
	}
}

func TestAMonitorsReportAndAMembersSignalForItsOwnServerAreHandedOn(t *testing.T) {
	srv, sink, _ := newAPI(t)
	if code, body := do(t, srv, "POST", PathInstanceEvents, "monitor", "application/json", goodEvent); code != 202 || !strings.Contains(body, `"accepted"`) {
		t.Fatalf("report: %d %s", code, body)
	}
	if code, body := do(t, srv, "POST", SignalPath(vmA), "member1", "application/json", `{"reason": "app health check failed"}`); code != 202 {
		t.Fatalf("signal: %d %s", code, body)
	}
	if len(sink.events) != 1 || sink.events[0].Count != 1 || sink.events[0].Time.IsZero() || len(sink.signals) != 1 || sink.signals[0] != vmA+" app health check failed" {
		t.Errorf("handed on: %+v %q", sink.events, sink.signals)
	}
	if code, body := do(t, srv, "POST", PathHostEvents, "monitor", "application/json", `{"host": "cmp1", "process": "libvirtd", "state": "failed", "detail": "down 1m"}`); code != 202 || len(sink.hosts) != 1 {
		t.Errorf("host event: %d %s, %d handed on", code, body, len(sink.hosts))
	}
	if code, _ := do(t, srv, "GET", PathHealth, "", "", ""); code != 200 {
		t.Errorf("healthz: %d", code)
	}
}

func TestRepeatedSignalsCoalesceThenAreRefusedUntilTheWindowEnds(t *testing.T) {
	srv, sink, _ := newAPI(t)
	var codes []int
	for range 7 {
		code, _ := do(t, srv, "POST", SignalPath(vmA), "member1", "application/json", `{}`)
		codes = append(codes, code)
	}
	want := []int{202, 202, 202, 202, 202, 429, 429}
	for i := range want {
		if codes[i] != want[i] {
			t.Fatalf("codes %v, want %v", codes, want)
		}
	}
	if len(sink.signals) != 1 {
		t.Errorf("%d signals handed on, want 1 (the others coalesced)", len(sink.signals))
	}
}

func TestATokenIsAskedOfKeystoneOnceAWhileNotForEveryRequest(t *testing.T) {
	srv, _, nova := newAPI(t)
	for range 5 {
		if code, body := do(t, srv, "POST", PathInstanceEvents, "monitor", "application/json", goodEvent); code != 202 {
			t.Fatalf("%d %s", code, body)
		}
	}
	n := 0
	for _, c := range nova.Calls() {
		if c == "Token" {
			n++
		}
	}
	if n != 1 {
		t.Errorf("Keystone asked %d times, want 1", n)
	}
}

func TestADaemonThatCannotDecideAnswers503(t *testing.T) {
	srv, sink, _ := newAPI(t)
	sink.err = errors.Join(ErrUnavailable, errors.New("Nova unreachable"))
	if code, body := do(t, srv, "POST", PathInstanceEvents, "monitor", "application/json", goodEvent); code != 503 {
		t.Errorf("%d %s, want 503", code, body)
	}
}

func TestAHandlerThatPanicsAnswers500WithAJSONErrorAndTheServerServesOn(t *testing.T) {
	srv, sink, _ := newAPI(t)
	sink.panics = true
	code, body := do(t, srv, "POST", PathInstanceEvents, "monitor", "application/json", goodEvent)
	if code != 500 || !strings.Contains(body, `"error"`) {
		t.Errorf("%d %s, want 500 with a JSON error (the monitor retries)", code, body)
	}
	sink.mu.Lock()
	sink.panics = false
	sink.mu.Unlock()
	if code, body := do(t, srv, "POST", PathInstanceEvents, "monitor", "application/json", goodEvent); code != 202 && code != 200 {
		t.Errorf("the next report: %d %s, want it taken", code, body)
	}
}

type staticLogin struct {
	tokens   []string
	relogins int
	hc       *http.Client
}

func (l *staticLogin) Token(context.Context) (string, error) {
	return l.tokens[min(l.relogins, len(l.tokens)-1)], nil
}

func (l *staticLogin) Relogin(context.Context, string) error {
	l.relogins++
	return nil
}
func (l *staticLogin) Do(req *http.Request) (*http.Response, error) { return l.hc.Do(req) }

func TestTheClientLogsInAgainOnceOnA401AndTellsFinalRefusalsApart(t *testing.T) {
	srv, sink, _ := newAPI(t)
	login := &staticLogin{tokens: []string{"expired", "monitor"}, hc: srv.Client()}
	c := &Client{URL: srv.URL, Login: login}
	e := instancemon.Event{Server: vmA, Host: "cmp1", Kind: instancemon.Crashed, Time: time.Now()}
	if err := c.Report(t.Context(), e); err != nil {
		t.Fatal(err)
	}
	if login.relogins != 1 || len(sink.events) != 1 {
		t.Errorf("relogins %d, events %d; want 1 and 1", login.relogins, len(sink.events))
	}
	e.Kind = "sad"
	if err := c.Report(t.Context(), e); !errors.Is(err, instancemon.ErrRejected) {
		t.Errorf("a bad report: %v, want it rejected for good", err)
	}
	sink.err = ErrUnavailable
	e.Kind = instancemon.Crashed
	if err := c.Report(t.Context(), e); err == nil || errors.Is(err, instancemon.ErrRejected) {
		t.Errorf("a 503: %v, want a transient error", err)
	}
}
