package cli

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/computeha/computeha/internal/history"
)

// reportConfig writes a configuration whose history is a fresh SQLite file
// holding one recovered host failure, and returns the configuration's path.
func reportConfig(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	db := filepath.Join(dir, "history.db")
	cfg := filepath.Join(dir, "evacd.yaml")
	if err := os.WriteFile(cfg, []byte("cloud: x\nsegments: {s: {hosts: [a, b]}}\nhistory: {driver: sqlite, dsn: "+db+"}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	s, err := history.Open(ctx, "sqlite", db)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	at := time.Now().Add(-time.Hour).UTC()
	in, err := s.OpenIncident(ctx, "a", history.Event{Time: at, Summary: "a lost"})
	if err != nil {
		t.Fatal(err)
	}
	id, err := in.StartMove(ctx, history.Move{VMID: "vm-1", VMName: "web", Project: "p1", Start: at.Add(time.Second)})
	if err != nil {
		t.Fatal(err)
	}
	if err := in.FinishMove(ctx, id, history.MoveOutcome{Result: history.MoveSucceeded, To: "b", End: at.Add(42 * time.Second)}); err != nil {
		t.Fatal(err)
	}
	return cfg
}

func TestReportReadsTheHistoryTheConfigurationNames(t *testing.T) {
	cfg := reportConfig(t)
	code, out, errOut := runMain(t, []string{"computeha", "report", "--config", cfg, "--since", "2h", "--format", "json"}, "")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	var r struct {
		VMs []struct {
			ID        string  `json:"id"`
			DowntimeS float64 `json:"downtime_s"`
		} `json:"vms"`
	}
	if err := json.Unmarshal([]byte(out), &r); err != nil || len(r.VMs) != 1 || r.VMs[0].ID != "vm-1" || r.VMs[0].DowntimeS != 42 {
		t.Errorf("report: %v\n%s", err, out)
	}
	code, out, _ = runMain(t, []string{"computeha", "report", "--config", cfg, "--project", "p2"}, "")
	if code != 0 || !strings.Contains(out, "0 VM(s) had an outage") {
		t.Errorf("another project: exit %d\n%s", code, out)
	}
}

func TestReportRefusesBadInput(t *testing.T) {
	cfg := reportConfig(t)
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--format", "xml"}, `unknown report format "xml"`},
		{[]string{"--since", "yesterday-ish"}, "yesterday-ish"},
		{[]string{"--since", "1h", "--until", "2h"}, "window is empty"},
		{[]string{"extra"}, "takes no arguments"},
	} {
		args := append([]string{"computeha", "report", "--config", cfg}, c.args...)
		code, out, errOut := runMain(t, args, "")
		if code == 0 || !strings.Contains(errOut, c.want) || out != "" {
			t.Errorf("%q: exit %d, stderr %q, stdout %q; want non-zero and %q", c.args, code, errOut, out, c.want)
		}
	}
	for _, args := range [][]string{
		{"computeha", "report", "--config", cfg, "--bogus"},
		{"computeha", "config", "validate", "--bogus"},
		{"computeha", "--bogus"},
		{"computeha", "report", "--since"},
	} {
		// A usage error: exit 2, one line on stderr, no help on stdout.
		code, out, errOut := runMain(t, args, "")
		if code != 2 || out != "" || strings.Count(errOut, "\n") != 1 || !strings.Contains(errOut, "--help") {
			t.Errorf("%q: exit %d, stdout %q, stderr %q; want 2, nothing, one line", args, code, out, errOut)
		}
	}
}

func TestConfigValidateReadsTheFileItIsGiven(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.yaml")
	bad := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(good, []byte("cloud: x\nsegments: {s: {hosts: [a, b]}}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bad, []byte("cloud: x\nsegments: {s: {hosts: [a, b]}}\nno_such_key: 1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if code, out, errOut := runMain(t, []string{"computeha", "config", "validate", good}, ""); code != 0 || out != good+": valid\n" {
		t.Errorf("valid file: exit %d, %q, %q", code, out, errOut)
	}
	if code, _, errOut := runMain(t, []string{"computeha", "config", "validate", bad}, ""); code == 0 || !strings.Contains(errOut, "no_such_key") {
		t.Errorf("invalid file: exit %d, %q", code, errOut)
	}
	// The files the alerts section names are checked too, and named.
	token := filepath.Join(dir, "token")
	if err := os.WriteFile(token, []byte("s3cr3t\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	alerts := filepath.Join(dir, "alerts.yaml")
	if err := os.WriteFile(alerts, []byte("cloud: x\nsegments: {s: {hosts: [a, b]}}\nalerts:\n  webhook: {url: 'http://h/', token_file: "+token+
		"}\n  command: {argv: ["+filepath.Join(dir, "missing")+"]}\n  alertmanager: {urls: ['ftp://x']}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := runMain(t, []string{"computeha", "config", "validate", alerts}, "")
	if code == 0 || out != "" || !strings.Contains(errOut, "alerts.alertmanager.urls[0]") {
		t.Errorf("bad alerts section: exit %d, %q, %q", code, out, errOut)
	}
	if err := os.WriteFile(alerts, []byte("cloud: x\nsegments: {s: {hosts: [a, b]}}\nalerts:\n  webhook: {url: 'http://h/', token_file: "+token+
		"}\n  command: {argv: ["+filepath.Join(dir, "missing")+"]}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	code, out, errOut = runMain(t, []string{"computeha", "config", "validate", alerts}, "")
	if code == 0 || out != "" || !strings.Contains(errOut, "alerts.webhook.token_file: "+token+" is readable by others") ||
		!strings.Contains(errOut, "alerts.command.argv[0]:") || strings.Contains(errOut, "s3cr3t") {
		t.Errorf("alerts' files: exit %d, %q, %q", code, out, errOut)
	}
	for _, args := range [][]string{
		{"computeha", "config", "validate", good, bad},
		{"computeha", "config", "validate", "--config", bad, good},
	} {
		if code, out, errOut := runMain(t, args, ""); code == 0 || out != "" {
			t.Errorf("%q: exit %d, %q, %q; want refused", args, code, out, errOut)
		}
	}
}
