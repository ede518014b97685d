package evacd

import (
	"context"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/computeha/computeha/internal/config"
	"github.com/computeha/computeha/internal/history"
)

func TestUnreachableReceiversAtStartAreSaidAndTheDaemonGoesOn(t *testing.T) {
	w := newWorld(t, "auto", "")
	// A port nobody listens on.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := "http://" + ln.Addr().String()
	_ = ln.Close()
	token := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(token, []byte("s3cr3t\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	w.cfg.Alerts = config.Alerts{
		Resend:       time.Minute,
		Alertmanager: &config.Alertmanager{URLs: []string{dead}, Timeout: time.Second},
		Webhook:      &config.Webhook{URL: dead + "/hook", TokenFile: token, Timeout: time.Second},
		Command:      &config.AlertCommand{Argv: []string{"/nonexistent/page"}, Timeout: time.Second},
	}
	d := New(Options{Config: w.cfg, Cluster: w.cluster, Nova: w.nova, History: w.store, Metrics: w.metrics, Owner: "ctl1"})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	startAlerts(ctx, w.cfg, d, w.metrics, slog.New(slog.DiscardHandler))

	var got []string
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		got = nil
		for _, e := range w.events(t, history.KindAlert) {
			if e.Reason.Code == "alert-receiver-unreachable" {
				got = append(got, e.Summary+" / "+e.Reason.Text)
			}
		}
		if len(got) == 4 {
			break
		}
	}
	all := strings.Join(got, "\n")
	for _, want := range []string{
		"the webhook's token cannot be read",
		"alertmanager receiver " + dead + " cannot be reached at start",
		"webhook receiver " + dead + "/hook cannot be reached at start",
		"command receiver /nonexistent/page cannot be reached at start",
	} {
		if !strings.Contains(all, want) {
			t.Errorf("no history alert saying %q; got:\n%s", want, all)
		}
	}
	if strings.Contains(all, "s3cr3t") {
		t.Errorf("the token is in the history:\n%s", all)
	}
}
