package alert

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"
)

// recorder is a receiver that keeps what it is sent, and fails while down.
type recorder struct {
	kind string
	mu   sync.Mutex
	down bool
	// block, when set, makes Send wait until it is closed.
	block   chan struct{}
	batches [][]Alert
	tries   int
}

func (r *recorder) Kind() string { return r.kind }
func (r *recorder) Name() string { return "test" }
func (r *recorder) Check(context.Context) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.down {
		return errors.New("down")
	}
	return nil
}

func (r *recorder) Send(ctx context.Context, alerts []Alert) error {
	if r.block != nil {
		select {
		case <-r.block:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.tries++
	if r.down {
		return errors.New("connection refused")
	}
	r.batches = append(r.batches, append([]Alert(nil), alerts...))
	return nil
}

func (r *recorder) setDown(v bool) {
	r.mu.Lock()
	r.down = v
	r.mu.Unlock()
}

// seen lists "NAME HOST STATUS" of every alert delivered, batch by batch.
func (r *recorder) seen() [][]string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out [][]string
	for _, b := range r.batches {
		var s []string
		for _, a := range b {
			s = append(s, a.Name()+" "+a.Labels[LabelHost]+" "+a.Status())
		}
		out = append(out, s)
	}
	return out
}

// state is a snapshot the test changes.
type state struct {
	mu sync.Mutex
	s  Snapshot
}

func (s *state) set(health map[string]string) {
	s.mu.Lock()
	s.s = Snapshot{Health: health}
	s.mu.Unlock()
}

func (s *state) get() Snapshot {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.s
}

func TestEachChangeReachesTheReceiverOnceEvenAfterItWasDown(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		st := &state{}
		hook := &recorder{kind: "webhook", down: true}
		var attempts, failed int
		var mu sync.Mutex
		n := NewNotifier(Options{State: st.get, Receivers: []Receiver{hook}, Delivered: func(kind string, err error) {
			mu.Lock()
			defer mu.Unlock()
			attempts++
			if err != nil {
				failed++
			}
		}})
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan struct{})
		go func() { n.Run(ctx); close(done) }()

		st.set(map[string]string{"cmp1": "isolated"})
		time.Sleep(10 * time.Second)
		st.set(map[string]string{"cmp1": "running"})
		time.Sleep(20 * time.Second)
		if got := hook.seen(); len(got) != 0 {
			t.Fatalf("delivered while down: %v", got)
		}
		// Back: the firing and the resolution arrive together, once.
		hook.setDown(false)
		time.Sleep(2 * time.Minute)
		want := [][]string{{"ComputehaHostIsolated cmp1 resolved"}}
		if diff := cmp.Diff(want, hook.seen()); diff != "" {
			t.Errorf("delivered (-want +got):\n%s", diff)
		}
		// A new episode while up: firing, then resolved, each once.
		st.set(map[string]string{"cmp1": "dead"})
		time.Sleep(5 * time.Second)
		st.set(map[string]string{"cmp1": "running"})
		time.Sleep(5 * time.Minute)
		want = append(want, []string{"ComputehaHostDead cmp1 firing"}, []string{"ComputehaHostDead cmp1 resolved"})
		if diff := cmp.Diff(want, hook.seen()); diff != "" {
			t.Errorf("delivered (-want +got):\n%s", diff)
		}
		cancel()
		<-done
		mu.Lock()
		defer mu.Unlock()
		if failed == 0 || attempts != failed+3 {
			t.Errorf("delivery outcomes: %d attempts, %d failed; want the failures then three successes", attempts, failed)
		}
		// Retried with backoff, not hammered: within 30 s down, 1+2+4+8+16 s apart at most 6 tries.
		if failed > 6 {
			t.Errorf("%d failed attempts in 30 s: no backoff", failed)
		}
	})
}

func TestTheAlertmanagerGetsEveryFiringAlertAgainEachResend(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		st := &state{}
		am := &recorder{kind: "alertmanager"}
		n := NewNotifier(Options{State: st.get, Receivers: []Receiver{(*amRecorder)(am)}, Resend: time.Minute})
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		go n.Run(ctx)
		st.set(map[string]string{"cmp1": "isolated", "cmp2": "dead"})
		time.Sleep(30 * time.Second)
		st.set(map[string]string{"cmp1": "isolated", "cmp2": "running"})
		time.Sleep(90*time.Second + 500*time.Millisecond)
		both := []string{"ComputehaHostDead cmp2 firing", "ComputehaHostIsolated cmp1 firing"}
		want := [][]string{
			both, // at once
			{"ComputehaHostIsolated cmp1 firing", "ComputehaHostDead cmp2 resolved"}, // the change, with what fires
			{"ComputehaHostIsolated cmp1 firing"},                                    // a minute later
		}
		if diff := cmp.Diff(want, am.seen()); diff != "" {
			t.Errorf("sent (-want +got):\n%s", diff)
		}
		cancel()
	})
}

func TestTheAlertmanagerIsNotSentTheEndOfAnEarlierEpisodeOfAnAlertFiringAgain(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		st := &state{}
		am := &recorder{kind: "alertmanager", down: true}
		n := NewNotifier(Options{State: st.get, Receivers: []Receiver{(*amRecorder)(am)}, Resend: time.Minute})
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		go n.Run(ctx)
		for _, s := range []string{"isolated", "running", "isolated"} {
			st.set(map[string]string{"cmp1": s})
			time.Sleep(5 * time.Second)
		}
		am.setDown(false)
		time.Sleep(30 * time.Second) // the next try, 16 s after the one at 15 s
		// The new episode alone, not the end of the first one with the same labels.
		want := [][]string{{"ComputehaHostIsolated cmp1 firing"}}
		if diff := cmp.Diff(want, am.seen()); diff != "" {
			t.Errorf("sent (-want +got):\n%s", diff)
		}
		cancel()
	})
}

// amRecorder is a recorder the notifier takes for an Alertmanager (all firing alerts each time).
type amRecorder recorder

func (r *amRecorder) Kind() string                              { return (*recorder)(r).Kind() }
func (r *amRecorder) Name() string                              { return "am" }
func (r *amRecorder) Check(ctx context.Context) error           { return (*recorder)(r).Check(ctx) }
func (r *amRecorder) Send(ctx context.Context, a []Alert) error { return (*recorder)(r).Send(ctx, a) }
func (r *amRecorder) TakesAll() bool                            { return true }

func TestAReceiverThatHangsDelaysNeitherTheRulesNorAnotherReceiver(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		st := &state{}
		stuck := &recorder{kind: "command", block: make(chan struct{})}
		ok := &recorder{kind: "webhook"}
		n := NewNotifier(Options{State: st.get, Receivers: []Receiver{stuck, ok}})
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		go n.Run(ctx)
		for i, s := range []string{"isolated", "running", "dead", "running"} {
			st.set(map[string]string{"cmp1": s})
			time.Sleep(3 * time.Second)
			if got := len(ok.seen()); got != i+1 {
				t.Fatalf("after change %d the working receiver has %d deliveries", i+1, got)
			}
		}
		close(stuck.block)
		time.Sleep(time.Second)
		synctest.Wait()
		// The stuck one gets what it missed: its first batch, then the rest coalesced.
		var all []string
		for _, b := range stuck.seen() {
			all = append(all, b...)
		}
		want := []string{"ComputehaHostIsolated cmp1 firing", "ComputehaHostIsolated cmp1 resolved", "ComputehaHostDead cmp1 resolved"}
		if diff := cmp.Diff(want, all); diff != "" {
			t.Errorf("the stuck receiver got (-want +got):\n%s", diff)
		}
	})
}

func TestAlertmanagerReceiverSpeaksTheV2API(t *testing.T) {
	var got []map[string]any
	var path, ctype string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		path, ctype = r.URL.Path, r.Header.Get("Content-Type")
		if err := json.NewDecoder(r.Body).Decode(&got); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
		}
	}))
	defer srv.Close()
	now := time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC)
	am := &Alertmanager{Base: srv.URL + "/", Client: srv.Client(), Valid: 4 * time.Minute, Clock: fixed(now)}
	firing := Alert{Labels: map[string]string{"alertname": "A", "host": "h"}, Annotations: map[string]string{"summary": "s"}, StartsAt: now.Add(-time.Minute)}
	resolved := Alert{Labels: map[string]string{"alertname": "B"}, StartsAt: now.Add(-time.Hour), EndsAt: now.Add(-time.Second)}
	if err := am.Send(t.Context(), []Alert{firing, resolved}); err != nil {
		t.Fatal(err)
	}
	if path != "/api/v2/alerts" || ctype != "application/json" {
		t.Errorf("POST %s (%s)", path, ctype)
	}
	want := []map[string]any{
		{
			"labels": map[string]any{"alertname": "A", "host": "h"}, "annotations": map[string]any{"summary": "s"},
			"startsAt": "2026-12-03T09:59:00Z", "endsAt": "2026-12-03T10:04:00Z",
		},
		{"labels": map[string]any{"alertname": "B"}, "startsAt": "2026-12-03T09:00:00Z", "endsAt": "2026-12-03T09:59:59Z"},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("body (-want +got):\n%s", diff)
	}
}

type fixed time.Time

func (f fixed) Now() time.Time                                   { return time.Time(f) }
func (f fixed) Sleep(ctx context.Context, _ time.Duration) error { return ctx.Err() }

func TestReceiversReportWhatTheOtherEndSaid(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "bad alert", http.StatusBadRequest)
	}))
	defer srv.Close()
	am := &Alertmanager{Base: srv.URL, Client: srv.Client()}
	if err := am.Send(t.Context(), nil); err == nil || !strings.Contains(err.Error(), "400 Bad Request: bad alert") {
		t.Errorf("Send error = %v", err)
	}
	if err := am.Check(t.Context()); err == nil {
		t.Error("Check of a server that is not ready succeeded")
	}
	srv.Close()
	if err := (&Webhook{URL: srv.URL, Client: srv.Client()}).Check(t.Context()); err == nil {
		t.Error("Check of a closed port succeeded")
	}
}

func TestWebhookSendsTheMessageWithItsToken(t *testing.T) {
	var body Message
	var auth string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		auth = r.Header.Get("Authorization")
		if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
		}
	}))
	defer srv.Close()
	start := time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC)
	a := Alert{Labels: map[string]string{"alertname": "A"}, StartsAt: start, EndsAt: start.Add(time.Minute)}
	w := &Webhook{URL: srv.URL, Client: srv.Client(), Token: func() (string, error) { return "t0k", nil }}
	if err := w.Send(t.Context(), []Alert{a}); err != nil {
		t.Fatal(err)
	}
	want := Message{Version: "1", Receiver: "webhook", Alerts: []MessageAlert{{Status: Resolved, Alert: a}}}
	if diff := cmp.Diff(want, body); diff != "" {
		t.Errorf("body (-want +got):\n%s", diff)
	}
	if auth != "Bearer t0k" {
		t.Errorf("Authorization = %q", auth)
	}
	if err := (&Webhook{URL: srv.URL, Client: srv.Client(), Token: func() (string, error) { return "", errors.New("token file gone") }}).Send(t.Context(), []Alert{a}); err == nil || !strings.Contains(err.Error(), "token file gone") {
		t.Errorf("Send without its token: %v", err)
	}
}

func TestCommandGetsTheMessageOnStdin(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "out.json")
	script := filepath.Join(dir, "notify")
	if err := os.WriteFile(script, []byte("#!/bin/sh\ncat > \"$1\"\n[ \"$2\" = fail ] && { echo 'gateway refused' >&2; exit 3; }\n[ \"$2\" = hang ] && sleep 5\nexit 0\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	a := Alert{Labels: map[string]string{"alertname": "A", "host": "cmp1"}, StartsAt: time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC)}
	if err := (&Command{Argv: []string{script, out}, Timeout: 5 * time.Second}).Send(t.Context(), []Alert{a}); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b, _ := io.ReadAll(f)
	var m Message
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("stdin %q: %v", b, err)
	}
	if m.Receiver != "command" || len(m.Alerts) != 1 || m.Alerts[0].Status != Firing || m.Alerts[0].Labels["host"] != "cmp1" {
		t.Errorf("message %+v", m)
	}
	if strings.Contains(string(b), "endsAt") {
		t.Errorf("a firing alert carries an endsAt: %s", b)
	}
	err = (&Command{Argv: []string{script, out, "fail"}, Timeout: 5 * time.Second}).Send(t.Context(), []Alert{a})
	if err == nil || !strings.Contains(err.Error(), "exit status 3: gateway refused") {
		t.Errorf("failing command: %v", err)
	}
	err = (&Command{Argv: []string{script, out, "hang"}, Timeout: 200 * time.Millisecond}).Send(t.Context(), []Alert{a})
	if err == nil || !strings.Contains(err.Error(), "did not finish within 200ms") {
		t.Errorf("hanging command: %v", err)
	}
}
