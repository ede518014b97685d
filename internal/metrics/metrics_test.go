package metrics

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/computeha/computeha/internal/history"
)

func TestTheHistoryFeedsTheCounters(t *testing.T) {
	m := New()
	ctx := context.Background()
	s, err := history.Open(ctx, "sqlite", filepath.Join(t.TempDir(), "h.db"),
		history.WithObserver(m), history.WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	in, err := s.OpenIncident(ctx, "cmp1", history.Event{Summary: "cmp1 lost", Reason: history.Reason{Code: "node-lost"}})
	if err != nil {
		t.Fatal(err)
	}
	if err := in.Record(ctx, history.Event{Kind: history.KindFencing, Summary: "fenced", Reason: history.Reason{Code: "fencing-confirmed"}}); err != nil {
		t.Fatal(err)
	}
	start := time.Now().Add(-30 * time.Second)
	for i, res := range []history.MoveResult{history.MoveSucceeded, history.MoveSucceeded, history.MoveFailed} {
		id, err := in.StartMove(ctx, history.Move{VMID: "vm" + string(rune('a'+i)), Start: start})
		if err != nil {
			t.Fatal(err)
		}
		if err := in.FinishMove(ctx, id, history.MoveOutcome{Result: res, To: "cmp2", End: start.Add(12 * time.Second)}); err != nil {
			t.Fatal(err)
		}
	}
	// A move of no incident, through the store itself.
	id, err := s.StartMove(ctx, history.Move{VMID: "vmz", From: "cmp3", Method: "live-migrate", Start: start})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.FinishMove(ctx, id, history.MoveOutcome{Result: history.MoveSucceeded, End: start.Add(3 * time.Second)}); err != nil {
		t.Fatal(err)
	}
	// A refused write counts nothing.
	if err := s.Record(ctx, history.Event{Kind: "no-such-kind", Summary: "x"}); err == nil {
		t.Fatal("an unknown kind was recorded")
	}
	for _, c := range []struct {
		got  float64
		want float64
		what string
	}{
		{testutil.ToFloat64(m.events.WithLabelValues("failure", "node-lost")), 1, "failure events"},
		{testutil.ToFloat64(m.events.WithLabelValues("fencing", "fencing-confirmed")), 1, "fencing events"},
		{testutil.ToFloat64(m.events.WithLabelValues("move", "")), 6, "move events (3 starts, 3 ends)"},
		{testutil.ToFloat64(m.events.WithLabelValues("move", "move-failed")), 0, "failed move events without error text"},
		{testutil.ToFloat64(m.recoveries.WithLabelValues("evacuate", "succeeded")), 2, "evacuations succeeded"},
		{testutil.ToFloat64(m.recoveries.WithLabelValues("evacuate", "failed")), 1, "evacuations failed"},
		{testutil.ToFloat64(m.recoveries.WithLabelValues("live-migrate", "succeeded")), 1, "live migrations"},
	} {
		if c.got != c.want {
			t.Errorf("%s: %v, want %v", c.what, c.got, c.want)
		}
	}
	if n := testutil.CollectAndCount(m.recoveryDur); n != 2 {
		t.Errorf("%d duration series, want evacuate and live-migrate", n)
	}
	want := `
# HELP computeha_vm_recovery_duration_seconds Time from a VM's recovery request to its end, of the recoveries that succeeded, by method.
# TYPE computeha_vm_recovery_duration_seconds histogram
computeha_vm_recovery_duration_seconds_bucket{method="evacuate",le="1"} 0
computeha_vm_recovery_duration_seconds_bucket{method="evacuate",le="2"} 0
computeha_vm_recovery_duration_seconds_bucket{method="evacuate",le="5"} 0
computeha_vm_recovery_duration_seconds_bucket{method="evacuate",le="10"} 0
computeha_vm_recovery_duration_seconds_bucket{method="evacuate",le="20"} 2
computeha_vm_recovery_duration_seconds_bucket{method="evacuate",le="30"} 2
computeha_vm_recovery_duration_seconds_bucket{method="evacuate",le="60"} 2
computeha_vm_recovery_duration_seconds_bucket{method="evacuate",le="120"} 2
computeha_vm_recovery_duration_seconds_bucket{method="evacuate",le="300"} 2
computeha_vm_recovery_duration_seconds_bucket{method="evacuate",le="600"} 2
computeha_vm_recovery_duration_seconds_bucket{method="evacuate",le="1800"} 2
computeha_vm_recovery_duration_seconds_bucket{method="evacuate",le="+Inf"} 2
computeha_vm_recovery_duration_seconds_sum{method="evacuate"} 24
computeha_vm_recovery_duration_seconds_count{method="evacuate"} 2
`
	if err := testutil.CollectAndCompare(m.recoveryDur, strings.NewReader(want+liveMigrate)); err != nil {
		t.Error(err)
	}
}

const liveMigrate = `computeha_vm_recovery_duration_seconds_bucket{method="live-migrate",le="1"} 0
computeha_vm_recovery_duration_seconds_bucket{method="live-migrate",le="2"} 0
computeha_vm_recovery_duration_seconds_bucket{method="live-migrate",le="5"} 1
computeha_vm_recovery_duration_seconds_bucket{method="live-migrate",le="10"} 1
computeha_vm_recovery_duration_seconds_bucket{method="live-migrate",le="20"} 1
computeha_vm_recovery_duration_seconds_bucket{method="live-migrate",le="30"} 1
computeha_vm_recovery_duration_seconds_bucket{method="live-migrate",le="60"} 1
computeha_vm_recovery_duration_seconds_bucket{method="live-migrate",le="120"} 1
computeha_vm_recovery_duration_seconds_bucket{method="live-migrate",le="300"} 1
computeha_vm_recovery_duration_seconds_bucket{method="live-migrate",le="600"} 1
computeha_vm_recovery_duration_seconds_bucket{method="live-migrate",le="1800"} 1
computeha_vm_recovery_duration_seconds_bucket{method="live-migrate",le="+Inf"} 1
computeha_vm_recovery_duration_seconds_sum{method="live-migrate"} 3
computeha_vm_recovery_duration_seconds_count{method="live-migrate"} 1
`

func TestHostStateIsOneForTheCurrentStateOnly(t *testing.T) {
	m := New()
	states := []string{"running", "dead", "isolated"}
	m.SetHostState("cmp1", "dead", states)
	m.SetHostState("cmp1", "isolated", states)
	m.SetHostState("cmp2", "running", states)
	m.SetHostState("cmp3", "dead", states)
	m.SetHostState("cmp3", "", states) // not judged: in maintenance
	for _, c := range []struct {
		host, state string
		want        float64
	}{{"cmp1", "isolated", 1}, {"cmp1", "dead", 0}, {"cmp1", "running", 0}, {"cmp2", "running", 1}, {"cmp3", "dead", 0}} {
		if got := testutil.ToFloat64(m.hostState.WithLabelValues(c.host, c.state)); got != c.want {
			t.Errorf("%s %s: %v, want %v", c.host, c.state, got, c.want)
		}
	}
}

func TestAlertDeliveriesAreCountedByReceiverAndResult(t *testing.T) {
	m := New()
	m.AlertDelivered("webhook", nil)
	m.AlertDelivered("webhook", errors.New("refused"))
	m.AlertDelivered("webhook", errors.New("refused"))
	for _, c := range []struct {
		result string
		want   float64
	}{{"ok", 1}, {"error", 2}} {
		if got := testutil.ToFloat64(m.alertSends.WithLabelValues("webhook", c.result)); got != c.want {
			t.Errorf("webhook %s: %v, want %v", c.result, got, c.want)
		}
	}
}

func TestTheTransportCountsAndTimesEveryRequest(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/missing" {
			http.NotFound(w, r)
			return
		}
		_, _ = io.WriteString(w, "{}")
	}))
	defer srv.Close()
	m := New()
	c := &http.Client{Transport: m.Transport(http.DefaultTransport)}
	for _, path := range []string{"/", "/", "/missing"} {
		resp, err := c.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		_ = resp.Body.Close()
	}
	if _, err := c.Post("http://127.0.0.1:1/", "text/plain", nil); err == nil {
		t.Fatal("a request to a closed port succeeded")
	}
	for _, c := range []struct {
		method, code string
		want         float64
	}{{"GET", "200", 2}, {"GET", "404", 1}, {"POST", "0", 1}} {
		if got := testutil.ToFloat64(m.novaReqs.WithLabelValues(c.method, c.code)); got != c.want {
			t.Errorf("%s %s: %v, want %v", c.method, c.code, got, c.want)
		}
	}
	if n := testutil.CollectAndCount(m.novaDur); n != 2 {
		t.Errorf("%d duration series, want GET and POST", n)
	}
}

func TestTheEndpointServesMetricsAndRefusesTheRest(t *testing.T) {
	m := New()
	phase := map[[2]string]float64{{"cmp1", "recovering"}: 1}
	m.GaugeFunc("recovery_phase", "test", []string{"host", "phase"}, func() map[[2]string]float64 { return phase })
	m.Recorded(history.Event{Kind: history.KindAlert, Reason: history.Reason{Code: "isolated"}})
	ln, err := Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- m.Serve(ctx, ln, slog.New(slog.DiscardHandler)) }()
	base := "http://" + ln.Addr().String()
	get := func(method, path string) (int, string) {
		req, _ := http.NewRequest(method, base+path, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	code, body := get("GET", "/metrics")
	for _, want := range []string{
		`computeha_history_events_total{kind="alert",reason="isolated"} 1`,
		`computeha_recovery_phase{host="cmp1",phase="recovering"} 1`,
		"process_resident_memory_bytes", "go_goroutines",
	} {
		if code != 200 || !strings.Contains(body, want) {
			t.Errorf("GET /metrics: %d, lacks %q", code, want)
		}
	}
	phase = map[[2]string]float64{}
	if _, body := get("GET", "/metrics"); strings.Contains(body, "computeha_recovery_phase{") {
		t.Errorf("a phase no longer read is still served")
	}
	if code, body := get("POST", "/metrics"); code != http.StatusMethodNotAllowed {
		t.Errorf("POST /metrics: %d %q", code, body)
	}
	if code, body := get("GET", "/other"); code != http.StatusNotFound || !strings.Contains(body, "/metrics") {
		t.Errorf("GET /other: %d %q", code, body)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Serve after cancel: %v", err)
	}
	if _, err := Listen(ln.Addr().String() + "x"); err == nil {
		t.Errorf("a bad address was accepted")
	}
}
