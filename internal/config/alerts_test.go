package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

const alertsBase = "cloud: x\nsegments:\n  s:\n    hosts: [c1, c2]\n"

func TestAlertsSection(t *testing.T) {
	tests := []struct {
		name   string
		alerts string
		want   []string // the problems, in order; nil means valid
	}{
		{"no section: no receiver", "", nil},
		{
			"every receiver",
			"alerts:\n  labels: {cluster: east}\n  resend: 30s\n  alertmanager:\n    urls: [http://a:9093, https://b:9093/]\n" +
				"  webhook:\n    url: https://hooks.example/x\n    token_file: /etc/computeha/t\n  command:\n    argv: [/bin/true, -x]\n",
			nil,
		},
		{
			"bad labels",
			"alerts:\n  labels: {host: a, 1x: b, __y: c, ok: \" \"}\n",
			[]string{
				`alerts.labels: "1x" is not a label name (letters, digits and _, not starting with a digit or __)`,
				`alerts.labels: "__y" is not a label name (letters, digits and _, not starting with a digit or __)`,
				"alerts.labels.host: set by the daemon itself (alertname, severity, host, state, phase, segment are)",
				"alerts.labels.ok: empty value",
			},
		},
		{
			"resend out of bounds", "alerts:\n  resend: 5s\n",
			[]string{"alerts.resend: 5s is not from 10s to 5m0s"},
		},
		{
			"alertmanager without URLs, and bad ones",
			"alerts:\n  alertmanager:\n    urls: []\n    timeout: -1s\n",
			[]string{
				"alerts.alertmanager.urls: at least one URL is required (e.g. http://10.0.0.5:9093)",
				"alerts.alertmanager.timeout: must be positive, got -1s",
			},
		},
		{
			"URLs that are not http, hold credentials, repeat or have no host",
			"alerts:\n  alertmanager:\n    urls: [ftp://a, 'http://u:secret@a:9093', http://b, http://b/, 'http://', 'http://c?x=1']\n",
			[]string{
				`alerts.alertmanager.urls[0]: "ftp://a": the scheme must be http or https`,
				`alerts.alertmanager.urls[1]: "http://REDACTED@a:9093" holds credentials: they would be in clear text here`,
				`alerts.alertmanager.urls[3]: http://b/ is listed twice`,
				`alerts.alertmanager.urls[4]: "http://" has no host`,
				`alerts.alertmanager.urls[5]: "http://c?x=1": a query or fragment is not allowed`,
			},
		},
		{
			"webhook and command incomplete",
			"alerts:\n  webhook:\n    token_file: t\n  command:\n    argv: [notify]\n",
			[]string{
				"alerts.webhook.url: required",
				`alerts.webhook.token_file: "t" is not an absolute path`,
				`alerts.command.argv[0]: "notify" is not an absolute path`,
			},
		},
		{
			"a command without a program", "alerts:\n  command: {}\n",
			[]string{"alerts.command.argv: the program to run is required (an absolute path, then its arguments)"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(alertsBase + tt.alerts))
			var got []string
			if err != nil {
				var ce *Error
				if !errors.As(err, &ce) {
					t.Fatalf("error %v is not a *config.Error", err)
				}
				got = ce.Problems
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("problems (-want +got):\n%s", diff)
			}
			if strings.Contains(strings.Join(got, "\n"), "secret") {
				t.Errorf("a problem echoes the password: %q", got)
			}
		})
	}
}

func TestAlertsDefaults(t *testing.T) {
	c, err := Parse([]byte(alertsBase + "alerts:\n  alertmanager:\n    urls: [http://a:9093]\n  webhook:\n    url: http://b/\n  command:\n    argv: [/bin/true]\n"))
	if err != nil {
		t.Fatal(err)
	}
	want := Alerts{
		Resend:       DefaultAlertResend,
		Alertmanager: &Alertmanager{URLs: []string{"http://a:9093"}, Timeout: DefaultAlertHTTPTimeout},
		Webhook:      &Webhook{URL: "http://b/", Timeout: DefaultAlertHTTPTimeout},
		Command:      &AlertCommand{Argv: []string{"/bin/true"}, Timeout: DefaultAlertCommandTimeout},
	}
	if diff := cmp.Diff(want, c.Alerts); diff != "" {
		t.Errorf("alerts (-want +got):\n%s", diff)
	}
	if !c.Alerts.Any() || Default().Alerts.Any() {
		t.Error("Any: want true with receivers, false by default")
	}
}

func TestWebhookReadToken(t *testing.T) {
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
	tests := []struct {
		name, file string
		want       string
		err        string
	}{
		{"no file, no token", "", "", ""},
		{"a root-only file", write("ok", "s3cr3t\n", 0o600), "s3cr3t", ""},
		{"read-only for its owner", write("ro", "s3cr3t", 0o400), "s3cr3t", ""},
		{"readable by its group", write("grp", "s3cr3t\n", 0o640), "", "is readable by others (mode 0640): make it 0600"},
		{"empty", write("empty", "\n", 0o600), "", "is empty"},
		{"two lines", write("two", "a\nb\n", 0o600), "", "holds more than one line"},
		{"missing", filepath.Join(dir, "none"), "", "no such file or directory"},
		{"a directory", dir, "", "is not a regular file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Webhook{TokenFile: tt.file}.ReadToken()
			if got != tt.want {
				t.Errorf("token = %q, want %q", got, tt.want)
			}
			switch {
			case tt.err == "" && err != nil:
				t.Errorf("unexpected error: %v", err)
			case tt.err != "" && (err == nil || !strings.Contains(err.Error(), tt.err)):
				t.Errorf("error %v, want one containing %q", err, tt.err)
			case err != nil && strings.Contains(err.Error(), "s3cr3t"):
				t.Errorf("the error echoes the token: %v", err)
			}
		})
	}
}

func TestAlertsCheckFiles(t *testing.T) {
	dir := t.TempDir()
	plain := filepath.Join(dir, "plain")
	if err := os.WriteFile(plain, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	a := Alerts{
		Webhook: &Webhook{URL: "http://x/", TokenFile: plain, Timeout: time.Second},
		Command: &AlertCommand{Argv: []string{plain}},
	}
	errs := a.CheckFiles()
	if len(errs) != 2 || !strings.Contains(errs[0].Error(), "readable by others") || !strings.Contains(errs[1].Error(), "is not an executable file") {
		t.Errorf("CheckFiles = %v, want the token's mode and the program's", errs)
	}
	ok := Alerts{Command: &AlertCommand{Argv: []string{"/bin/sh"}}}
	if errs := ok.CheckFiles(); len(errs) != 0 {
		t.Errorf("CheckFiles of /bin/sh = %v, want none", errs)
	}
}
