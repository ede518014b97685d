//go:build mariadb

package history

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
)

// TestMariaDB runs the whole store suite against a real MariaDB server that
// testdata/mariadb.sh starts in a private directory (needs root; installs
// mariadb-server if missing). Each case gets its own database.
func TestMariaDB(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("the MariaDB suite needs root to start mariadbd")
	}
	script, err := filepath.Abs(filepath.Join("testdata", "mariadb.sh"))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	began := time.Now()
	var stderr bytes.Buffer
	cmd := exec.Command(script, "start", dir)
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	t.Cleanup(func() {
		stop := exec.Command(script, "stop", dir)
		if msg, err := stop.CombinedOutput(); err != nil {
			t.Errorf("mariadb.sh stop: %v\n%s", err, msg)
		}
	})
	if err != nil {
		t.Fatalf("mariadb.sh start: %v\n%s", err, stderr.String())
	}
	sock := strings.TrimSpace(string(out))
	t.Logf("MariaDB ready in %s on %s", time.Since(began).Round(time.Millisecond), sock)

	base := mysql.NewConfig()
	base.User, base.Net, base.Addr = "computeha", "unix", sock
	admin, err := sql.Open("mysql", base.FormatDSN())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = admin.Close() })

	n := 0
	b := backend{
		name: "mariadb",
		fresh: func(t *testing.T) (string, string) {
			n++
			name := fmt.Sprintf("history_%d", n)
			if _, err := admin.Exec("CREATE DATABASE " + name); err != nil {
				t.Fatalf("create database: %v", err)
			}
			cfg := base.Clone()
			cfg.DBName = name
			return "mysql", cfg.FormatDSN()
		},
	}
	suite := time.Now()
	runSuite(t, b)
	t.Run("availability report", func(t *testing.T) { reportSuite(t, b) })
	t.Run("pruning", func(t *testing.T) { pruneSuite(t, b) })

	t.Run("a migration interrupted after some of its statements completes on the next open", func(t *testing.T) {
		driver, dsn := b.fresh(t)
		s := open(t, driver, dsn, withSchema(LatestSchema()-1))
		// The first statements of the last migration ran (all but one, or its only one),
		// then the process died before recording the version.
		last := migrations[len(migrations)-1]
		for _, stmt := range last.mysql[:max(1, len(last.mysql)-1)] {
			if _, err := s.db.Exec(stmt); err != nil {
				t.Fatal(err)
			}
		}
		_ = s.Close()
		r := open(t, driver, dsn)
		if v, err := r.SchemaVersion(context.Background()); err != nil || v != LatestSchema() {
			t.Fatalf("SchemaVersion = %d, %v; want %d", v, err, LatestSchema())
		}
	})

	t.Run("a DSN with a wrong password fails without showing the password", func(t *testing.T) {
		cfg := base.Clone()
		cfg.DBName, cfg.Passwd = "history_1", "s3cret-w0rd"
		_, err := Open(context.Background(), "mysql", cfg.FormatDSN(), WithLogger(slog.New(slog.DiscardHandler)))
		if err == nil {
			t.Fatal("Open with a wrong password succeeded")
		}
		if strings.Contains(err.Error(), "s3cret-w0rd") {
			t.Errorf("error shows the password: %v", err)
		}
	})
	t.Logf("suite ran in %s", time.Since(suite).Round(time.Millisecond))
}
