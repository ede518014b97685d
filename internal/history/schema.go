package history

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/go-sql-driver/mysql"
)

// migration is one forward step of the schema. Statements are written per
// backend because their DDL differs (AUTOINCREMENT vs AUTO_INCREMENT, TEXT
// keys vs VARCHAR); the resulting tables have the same columns and meaning.
type migration struct {
	version int
	name    string
	sqlite  []string
	mysql   []string
}

// mysqlTable is the suffix of every MySQL table: utf8mb4 with a binary
// collation so that host names compare exactly as they do in SQLite.
const mysqlTable = ` ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin`

// migrations lists every schema version in order; the last is current.
// Never edit a released step: add a new one.
var migrations = []migration{
	{
		version: 1,
		name:    "events and moves",
		sqlite: []string{
			`CREATE TABLE events (
				id          INTEGER PRIMARY KEY AUTOINCREMENT,
				time_us     INTEGER NOT NULL,
				host        TEXT    NOT NULL DEFAULT '',
				kind        TEXT    NOT NULL,
				summary     TEXT    NOT NULL,
				reason_code TEXT    NOT NULL DEFAULT '',
				reason_text TEXT    NOT NULL DEFAULT '',
				actor       TEXT    NOT NULL DEFAULT '',
				incident    TEXT    NOT NULL DEFAULT '',
				details     TEXT    NOT NULL DEFAULT ''
			)`,
			`CREATE INDEX events_time ON events (time_us, id)`,
			`CREATE INDEX events_host_time ON events (host, time_us, id)`,
			`CREATE TABLE moves (
				id        INTEGER PRIMARY KEY AUTOINCREMENT,
				incident  TEXT    NOT NULL DEFAULT '',
				vm_id     TEXT    NOT NULL,
				vm_name   TEXT    NOT NULL DEFAULT '',
				project   TEXT    NOT NULL DEFAULT '',
				from_host TEXT    NOT NULL,
				to_host   TEXT    NOT NULL DEFAULT '',
				start_us  INTEGER NOT NULL,
				end_us    INTEGER,
				result    TEXT    NOT NULL,
				attempts  INTEGER NOT NULL DEFAULT 1,
				error     TEXT    NOT NULL DEFAULT '',
				actor     TEXT    NOT NULL DEFAULT ''
			)`,
			`CREATE INDEX moves_start ON moves (start_us, id)`,
			`CREATE INDEX moves_from ON moves (from_host, start_us)`,
			`CREATE INDEX moves_to ON moves (to_host, start_us)`,
		},
		mysql: []string{
			`CREATE TABLE IF NOT EXISTS events (
				id          BIGINT       NOT NULL AUTO_INCREMENT PRIMARY KEY,
				time_us     BIGINT       NOT NULL,
				host        VARCHAR(255) NOT NULL DEFAULT '',
				kind        VARCHAR(64)  NOT NULL,
				summary     TEXT         NOT NULL,
				reason_code VARCHAR(64)  NOT NULL DEFAULT '',
				reason_text TEXT         NOT NULL,
				actor       VARCHAR(255) NOT NULL DEFAULT '',
				incident    VARCHAR(64)  NOT NULL DEFAULT '',
				details     MEDIUMTEXT   NOT NULL,
				KEY events_time (time_us, id),
				KEY events_host_time (host, time_us, id)
			)` + mysqlTable,
			`CREATE TABLE IF NOT EXISTS moves (
				id        BIGINT       NOT NULL AUTO_INCREMENT PRIMARY KEY,
				incident  VARCHAR(64)  NOT NULL DEFAULT '',
				vm_id     VARCHAR(255) NOT NULL,
				vm_name   VARCHAR(255) NOT NULL DEFAULT '',
				project   VARCHAR(255) NOT NULL DEFAULT '',
				from_host VARCHAR(255) NOT NULL,
				to_host   VARCHAR(255) NOT NULL DEFAULT '',
				start_us  BIGINT       NOT NULL,
				end_us    BIGINT       NULL,
				result    VARCHAR(64)  NOT NULL,
				attempts  INT          NOT NULL DEFAULT 1,
				error     TEXT         NOT NULL,
				actor     VARCHAR(255) NOT NULL DEFAULT '',
				KEY moves_start (start_us, id),
				KEY moves_from (from_host, start_us),
				KEY moves_to (to_host, start_us)
			)` + mysqlTable,
		},
	},
	{
		version: 2,
		name:    "incidents",
		sqlite: []string{
			`CREATE TABLE incidents (
				id        TEXT    PRIMARY KEY,
				host      TEXT    NOT NULL,
				opened_us INTEGER NOT NULL,
				closed_us INTEGER,
				outcome   TEXT    NOT NULL DEFAULT '',
				summary   TEXT    NOT NULL DEFAULT '',
				actor     TEXT    NOT NULL DEFAULT ''
			)`,
			`CREATE INDEX incidents_host ON incidents (host, opened_us)`,
			`CREATE INDEX incidents_opened ON incidents (opened_us)`,
			`CREATE INDEX events_incident ON events (incident, time_us, id)`,
			`CREATE INDEX moves_incident ON moves (incident, start_us, id)`,
		},
		mysql: []string{
			`CREATE TABLE IF NOT EXISTS incidents (
				id        VARCHAR(64)  NOT NULL PRIMARY KEY,
				host      VARCHAR(255) NOT NULL,
				opened_us BIGINT       NOT NULL,
				closed_us BIGINT       NULL,
				outcome   VARCHAR(64)  NOT NULL DEFAULT '',
				summary   TEXT         NOT NULL,
				actor     VARCHAR(255) NOT NULL DEFAULT '',
				KEY incidents_host (host, opened_us),
				KEY incidents_opened (opened_us)
			)` + mysqlTable,
			`ALTER TABLE events ADD INDEX events_incident (incident, time_us, id)`,
			`ALTER TABLE moves ADD INDEX moves_incident (incident, start_us, id)`,
		},
	},
	{
		version: 3,
		name:    "the method of each move",
		sqlite:  []string{`ALTER TABLE moves ADD COLUMN method TEXT NOT NULL DEFAULT ''`},
		mysql:   []string{`ALTER TABLE moves ADD COLUMN method VARCHAR(64) NOT NULL DEFAULT ''`},
	},
}

// LatestSchema is the schema version this code writes.
func LatestSchema() int { return migrations[len(migrations)-1].version }

// dialect is what differs between the backends.
type dialect struct {
	name string
	// statements of a migration for this backend.
	statements func(migration) []string
	// migrate applies migrations up to version target, safely against
	// another process doing the same.
	migrate func(ctx context.Context, db *sql.DB, target int, now time.Time) (from int, err error)
}

var (
	sqliteDialect = dialect{
		name:       "sqlite",
		statements: func(m migration) []string { return m.sqlite },
		migrate:    migrateSQLite,
	}
	mysqlDialect = dialect{
		name:       "mysql",
		statements: func(m migration) []string { return m.mysql },
		migrate:    migrateMySQL,
	}
)

const createVersionTable = `CREATE TABLE IF NOT EXISTS schema_version (
	version    INTEGER NOT NULL PRIMARY KEY,
	name       VARCHAR(255) NOT NULL,
	applied_us BIGINT  NOT NULL
)`

// pending returns the migrations after version cur up to target, or
// ErrSchemaTooNew when cur is beyond what this code knows.
func pending(cur, target int) ([]migration, error) {
	if cur > LatestSchema() {
		return nil, fmt.Errorf("%w: database is at version %d, this computeha knows up to %d",
			ErrSchemaTooNew, cur, LatestSchema())
	}
	var out []migration
	for _, m := range migrations {
		if m.version > cur && m.version <= target {
			out = append(out, m)
		}
	}
	return out, nil
}

// beginSQLite begins a transaction, trying again while the database is busy. The busy
// timeout does not cover every case: a connection that opens a new, empty file while another
// switches it to WAL can get SQLITE_BUSY at once, without the busy handler being called.
func beginSQLite(ctx context.Context, db *sql.DB) (*sql.Tx, error) {
	deadline := time.Now().Add(10 * time.Second)
	for {
		tx, err := db.BeginTx(ctx, nil)
		if err == nil || !strings.Contains(err.Error(), "SQLITE_BUSY") || time.Now().After(deadline) {
			return tx, err
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// migrateSQLite runs every step in one transaction. Transactions begin
// IMMEDIATE (DSN _txlock), so a second process opening the same file waits
// on the write lock (busy_timeout) and then finds the work done. SQLite DDL
// is transactional, so a crash leaves the previous version intact.
func migrateSQLite(ctx context.Context, db *sql.DB, target int, now time.Time) (int, error) {
	tx, err := beginSQLite(ctx, db)
	if err != nil {
		return 0, fmt.Errorf("begin migration: %w", err)
	}
	defer func() { _ = tx.Rollback() }()
	if _, err := tx.ExecContext(ctx, createVersionTable); err != nil {
		return 0, fmt.Errorf("create schema_version: %w", err)
	}
	var cur int
	if err := tx.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_version`).Scan(&cur); err != nil {
		return 0, fmt.Errorf("read schema version: %w", err)
	}
	todo, err := pending(cur, target)
	if err != nil {
		return cur, err
	}
	for _, m := range todo {
		for _, stmt := range m.sqlite {
			if _, err := tx.ExecContext(ctx, stmt); err != nil {
				return cur, fmt.Errorf("migration %d (%s): %w", m.version, m.name, err)
			}
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO schema_version (version, name, applied_us) VALUES (?, ?, ?)`,
			m.version, m.name, micro(now)); err != nil {
			return cur, fmt.Errorf("migration %d (%s): record version: %w", m.version, m.name, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return cur, fmt.Errorf("commit migration: %w", err)
	}
	return cur, nil
}

// migrationLockWait bounds how long Open waits for another daemon's migration.
const migrationLockWait = 60 // seconds

// migrateMySQL serialises migrations with a named server lock, because
// MySQL DDL commits implicitly and a transaction cannot cover it. The lock
// name includes the database name so that unrelated databases on one server
// do not wait for each other. Each step tolerates having partly run before
// (CREATE TABLE IF NOT EXISTS; duplicate index or column errors ignored), so
// a migration interrupted by a crash completes on the next Open.
func migrateMySQL(ctx context.Context, db *sql.DB, target int, now time.Time) (int, error) {
	conn, err := db.Conn(ctx)
	if err != nil {
		return 0, fmt.Errorf("connect: %w", err)
	}
	defer func() { _ = conn.Close() }()

	const lockName = `CONCAT('computeha-history:', LEFT(COALESCE(DATABASE(), ''), 40))`
	var got sql.NullInt64
	if err := conn.QueryRowContext(ctx, `SELECT GET_LOCK(`+lockName+`, ?)`, migrationLockWait).Scan(&got); err != nil {
		return 0, fmt.Errorf("take migration lock: %w", err)
	}
	if !got.Valid || got.Int64 != 1 {
		return 0, fmt.Errorf("take migration lock: another process held it for %d s", migrationLockWait)
	}
	defer func() {
		// A fresh context: the lock must go even when ctx has expired, or
		// it stays until this connection closes (which the deferred Close
		// does anyway, so this is belt and braces).
		rctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_, _ = conn.ExecContext(rctx, `DO RELEASE_LOCK(`+lockName+`)`)
	}()

	if _, err := conn.ExecContext(ctx, createVersionTable+mysqlTable); err != nil {
		return 0, fmt.Errorf("create schema_version: %w", err)
	}
	var cur int
	if err := conn.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_version`).Scan(&cur); err != nil {
		return 0, fmt.Errorf("read schema version: %w", err)
	}
	todo, err := pending(cur, target)
	if err != nil {
		return cur, err
	}
	for _, m := range todo {
		for _, stmt := range m.mysql {
			if _, err := conn.ExecContext(ctx, stmt); err != nil && !alreadyApplied(err) {
				return cur, fmt.Errorf("migration %d (%s): %w", m.version, m.name, err)
			}
		}
		if _, err := conn.ExecContext(ctx, `INSERT INTO schema_version (version, name, applied_us) VALUES (?, ?, ?)`,
			m.version, m.name, micro(now)); err != nil {
			return cur, fmt.Errorf("migration %d (%s): record version: %w", m.version, m.name, err)
		}
	}
	return cur, nil
}

// alreadyApplied recognises the MySQL errors a re-run DDL statement gives:
// table exists (1050), duplicate column (1060), duplicate key name (1061).
func alreadyApplied(err error) bool {
	var me *mysql.MySQLError
	if !errors.As(err, &me) {
		return false
	}
	switch me.Number {
	case 1050, 1060, 1061:
		return true
	}
	return false
}
