//go:build e2e

package e2e

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/computeha/computeha/test/harness/secretaudit"
)

// auditSecrets looks, for as long as t runs, for the lab's BMC password and Nova's passwords
// (Keystone's users, the database's, so every DSN, and the message queue's) where they must
// never be: every process's command line, sampled every 200 ms; and, when t ends, every log
// and output file of the lab and of Nova, the history, the alerts delivered and the CIB.
func (e *Env) auditSecrets(t *testing.T) {
	t.Helper()
	secrets, err := secretaudit.ReadEnvFile(filepath.Join(e.Plane.Dir, "secrets.env"))
	if err != nil {
		t.Fatal(err)
	}
	bmc, err := os.ReadFile(filepath.Join(e.Lab.Dir(), "bmc-password"))
	if err != nil {
		t.Fatal(err)
	}
	secrets = append(secrets, secretaudit.Secret{Name: "BMC password", Value: strings.TrimSpace(string(bmc))})
	a, err := secretaudit.New(secrets)
	if err != nil {
		t.Fatal(err)
	}
	ctx, stop := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { a.Watch(ctx, "/proc", 200*time.Millisecond) })
	// Registered after the lab's own cleanups, so it runs before them, on a lab still up.
	t.Cleanup(func() {
		stop()
		wg.Wait()
		cctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if cib, err := e.CRM.Runner.Run(cctx, "cibadmin", "--query"); err != nil {
			t.Errorf("secrets audit: dumping the CIB: %v", err)
		} else {
			a.ScanBytes("the CIB", cib)
		}
		for _, root := range []string{e.Dir, filepath.Join(e.Plane.Dir, "log")} {
			if err := a.ScanTree(root, secretaudit.LogLike); err != nil {
				t.Errorf("secrets audit: %v", err)
			}
		}
		samples, cmdlines, files := a.Coverage()
		for _, f := range a.Findings() {
			t.Errorf("secrets audit: %s", f)
		}
		t.Logf("secrets audit: %d secrets looked for in %d samples of every process's command line (%d read), %d log files, the history and the CIB: %d found",
			len(secrets), samples, cmdlines, files, len(a.Findings()))
	})
}
