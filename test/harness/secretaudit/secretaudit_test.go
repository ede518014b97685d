package secretaudit

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

var testSecrets = []Secret{{"BMC_PASSWORD", "0123456789abcdef"}, {"DB_PASSWORD", "Zq9dbPasswordXy"}}

func names(fs []Finding) []string {
	var out []string
	for _, f := range fs {
		out = append(out, f.String())
	}
	return out
}

func TestNewRefusesWeakSecrets(t *testing.T) {
	for _, ss := range [][]Secret{nil, {{"", "0123456789"}}, {{"SHORT", "abc"}}} {
		if _, err := New(ss); err == nil {
			t.Errorf("New(%v) accepted", ss)
		}
	}
}

func TestScanTreeFindsSecretsInLogsOnly(t *testing.T) {
	dir := t.TempDir()
	files := map[string]string{
		"nodes/ctl1/log/pacemaker/pacemaker.log": "fence_ipmi: password 0123456789abcdef\n",
		"nodes/ctl1/run/evacd.out":               "nothing here\n",
		"history.db-wal":                         "\x00\x01mysql://openstack:Zq9dbPasswordXy@localhost\x00",
		"bmc-password":                           "0123456789abcdef\n", // a key file, not a log
		"etc/clouds.yaml":                        "password: Zq9dbPasswordXy\n",
	}
	for name, body := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	a, err := New(testSecrets)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.ScanTree(dir, LogLike); err != nil {
		t.Fatal(err)
	}
	got := names(a.Findings())
	slices.Sort(got)
	want := []string{
		"BMC_PASSWORD in " + filepath.Join(dir, "nodes/ctl1/log/pacemaker/pacemaker.log"),
		"DB_PASSWORD in " + filepath.Join(dir, "history.db-wal"),
	}
	if !slices.Equal(got, want) {
		t.Errorf("findings %q, want %q", got, want)
	}
	if _, _, files := a.Coverage(); files != 3 {
		t.Errorf("%d files scanned, want the 3 log-like ones", files)
	}
	for _, f := range a.Findings() {
		for _, s := range testSecrets {
			if strings.Contains(f.String(), s.Value) {
				t.Errorf("a finding shows the secret itself: %s", f)
			}
		}
	}
}

func TestSampleProcessesFindsASecretInAnArgv(t *testing.T) {
	a, err := New(testSecrets)
	if err != nil {
		t.Fatal(err)
	}
	// sh -c '...' NAME ARG: the secret is an argument of a live process.
	cmd := exec.Command("sh", "-c", "sleep 5; :", "sh", "--password=0123456789abcdef")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	a.Watch(ctx, "/proc", 50*time.Millisecond)
	// The shell and, for a moment, the child it forks for sleep carry the argument.
	got := a.Findings()
	if len(got) == 0 {
		t.Error("nothing found, want BMC_PASSWORD in the argv of the sh process")
	}
	for _, f := range got {
		if f.Secret != "BMC_PASSWORD" || !strings.Contains(f.Where, "(sh)") {
			t.Errorf("found %s, want only BMC_PASSWORD in the argv of a sh process", f)
		}
	}
	if samples, cmdlines, _ := a.Coverage(); samples < 2 || cmdlines < samples {
		t.Errorf("%d samples, %d command lines read", samples, cmdlines)
	}
}

func TestReadEnvFile(t *testing.T) {
	p := filepath.Join(t.TempDir(), "secrets.env")
	if err := os.WriteFile(p, []byte("# secrets\nDB_PASSWORD='Zq9dbPasswordXy'\n\nADMIN_PASSWORD=plainValue12\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	got, err := ReadEnvFile(p)
	if err != nil {
		t.Fatal(err)
	}
	want := []Secret{{"DB_PASSWORD", "Zq9dbPasswordXy"}, {"ADMIN_PASSWORD", "plainValue12"}}
	if !slices.Equal(got, want) {
		t.Errorf("ReadEnvFile = %v, want %v", got, want)
	}
	if err := os.WriteFile(p, []byte("not a line\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadEnvFile(p); err == nil || !strings.Contains(err.Error(), ":1:") {
		t.Errorf("a malformed line: err = %v, want its line named", err)
	}
}
