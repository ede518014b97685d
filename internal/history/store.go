package history

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/go-sql-driver/mysql"
	_ "modernc.org/sqlite" // registers driver "sqlite"
)

// Store is an open history database. It is safe for concurrent use, and
// several Stores (in one process or many) may share one database.
type Store struct {
	db       *sql.DB
	d        dialect
	now      func() time.Time
	actor    string
	timeout  time.Duration
	log      *slog.Logger
	observer Observer
	// writes carries the writes to the writer goroutine (SQLite only; nil: each write runs on
	// its caller's goroutine); closed ends it.
	writes chan func()
	closed chan struct{}
	once   sync.Once
}

// Option adjusts a Store at Open.
type Option func(*options)

type options struct {
	now      func() time.Time
	actor    string
	timeout  time.Duration
	log      *slog.Logger
	observer Observer
	target   int // schema version to migrate to; tests use older ones
}

// Observer learns of every record once it is committed: the metrics follow
// the history through it, so both count the same things. Its methods must
// be quick and must not fail.
type Observer interface {
	// Recorded is called for each event written.
	Recorded(Event)
	// MoveFinished is called when a move has ended, with the move as stored.
	MoveFinished(Move)
}

// WithObserver sets the store's Observer.
func WithObserver(o Observer) Option { return func(opt *options) { opt.observer = o } }

// recorded tells the observer of committed events.
func (s *Store) recorded(events ...Event) {
	if s.observer == nil {
		return
	}
	for _, e := range events {
		s.observer.Recorded(e)
	}
}

// moveFinished tells the observer of a committed move's end.
func (s *Store) moveFinished(m Move) {
	if s.observer != nil {
		s.observer.MoveFinished(m)
	}
}

// WithClock sets the clock that stamps records given without a time.
func WithClock(now func() time.Time) Option { return func(o *options) { o.now = now } }

// WithActor names this daemon instance in every record that does not name
// one itself. The default is "HOSTNAME/PID".
func WithActor(actor string) Option { return func(o *options) { o.actor = actor } }

// WithTimeout bounds every call (default 10 s). A caller's context deadline
// that is shorter still applies.
func WithTimeout(d time.Duration) Option { return func(o *options) { o.timeout = d } }

// WithLogger sets the logger (default slog.Default()).
func WithLogger(l *slog.Logger) Option { return func(o *options) { o.log = l } }

// DefaultSQLitePath is where a single controller keeps its history unless
// configured otherwise. The directory must exist (packages create it).
const DefaultSQLitePath = "/var/lib/computeha/history.db"

// DefaultTimeout bounds each Store call unless WithTimeout says otherwise.
const DefaultTimeout = 10 * time.Second

// openTimeout bounds Open, which may wait for another daemon's migration.
const openTimeout = 90 * time.Second

// Open connects to the history database and brings its schema up to date.
// driver is "sqlite" (dsn is a file path, created if missing, with optional
// "?param=value" driver parameters) or "mysql"/"mariadb" (dsn in
// go-sql-driver/mysql form). Errors wrap ErrInvalid for a bad driver or DSN
// and ErrSchemaTooNew for a database from a newer computeha; the DSN itself
// is never part of an error, since it may hold a password.
func Open(ctx context.Context, driver, dsn string, opts ...Option) (*Store, error) {
	o := options{now: time.Now, timeout: DefaultTimeout, log: slog.Default(), target: LatestSchema()}
	for _, opt := range opts {
		opt(&o)
	}
	if o.actor == "" {
		o.actor = defaultActor()
	}
	if err := checkLen("actor", o.actor, maxName); err != nil {
		return nil, err
	}
	if o.timeout <= 0 {
		return nil, fmt.Errorf("%w: timeout must be positive", ErrInvalid)
	}

	var (
		d   dialect
		db  *sql.DB
		err error
	)
	switch strings.ToLower(driver) {
	case "sqlite", "sqlite3":
		d = sqliteDialect
		db, err = openSQLite(dsn)
	case "mysql", "mariadb":
		d = mysqlDialect
		db, err = openMySQL(dsn)
	default:
		return nil, fmt.Errorf("%w: unknown history driver %q (want sqlite or mysql)", ErrInvalid, driver)
	}
	if err != nil {
		return nil, err
	}
	s := &Store{db: db, d: d, now: o.now, actor: o.actor, timeout: o.timeout, log: o.log.With("component", "history"), observer: o.observer, closed: make(chan struct{})}

	ctx, cancel := context.WithTimeout(ctx, openTimeout)
	defer cancel()
	from, err := d.migrate(ctx, db, o.target, s.now())
	if err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("open %s history: %w", d.name, err)
	}
	if from < o.target {
		s.log.Info("history schema migrated", "backend", d.name, "from", from, "to", o.target)
	}
	if d.name == mysqlDialect.name {
		s.warnIfNotDurable(ctx)
	}
	if d.name == sqliteDialect.name {
		s.writes = make(chan func())
		go s.writer()
	}
	return s, nil
}

func defaultActor() string {
	h, err := os.Hostname()
	if err != nil || h == "" {
		h = "unknown"
	}
	return h + "/" + strconv.Itoa(os.Getpid())
}

// sqliteDefaults are the connection parameters (see the package comment for
// why); a DSN that sets the same parameter keeps its own value.
var sqliteDefaults = []struct{ key, value, pragma string }{
	{"_pragma", "busy_timeout(10000)", "busy_timeout"},
	{"_pragma", "journal_mode(WAL)", "journal_mode"},
	{"_pragma", "synchronous(FULL)", "synchronous"},
	{"_txlock", "immediate", ""},
}

func openSQLite(dsn string) (*sql.DB, error) {
	path, query, _ := strings.Cut(dsn, "?")
	path = strings.TrimPrefix(path, "file:")
	if path == "" || path == ":memory:" {
		return nil, fmt.Errorf("%w: the sqlite history needs a file path", ErrInvalid)
	}
	q, err := url.ParseQuery(query)
	if err != nil {
		return nil, fmt.Errorf("%w: sqlite parameters: %v", ErrInvalid, err)
	}
	for _, def := range sqliteDefaults {
		if def.pragma == "" {
			if q.Get(def.key) == "" {
				q.Set(def.key, def.value)
			}
			continue
		}
		if !slices.ContainsFunc(q[def.key], func(v string) bool {
			return strings.HasPrefix(strings.ToLower(strings.TrimSpace(v)), def.pragma)
		}) {
			q.Add(def.key, def.value)
		}
	}
	// Create the file ourselves so it is not world-readable: the history
	// names hosts, VMs and projects.
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o640)
	if err != nil {
		return nil, fmt.Errorf("open history file: %w", err)
	}
	_ = f.Close()
	db, err := sql.Open("sqlite", "file:"+path+"?"+q.Encode())
	if err != nil {
		return nil, fmt.Errorf("open history file: %w", err)
	}
	return db, nil
}

func openMySQL(dsn string) (*sql.DB, error) {
	cfg, err := mysql.ParseDSN(dsn)
	if err != nil {
		// The parser's message may quote the DSN; do not pass it on.
		return nil, fmt.Errorf("%w: malformed mysql DSN", ErrInvalid)
	}
	if cfg.DBName == "" {
		return nil, fmt.Errorf("%w: the mysql DSN names no database", ErrInvalid)
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = 5 * time.Second
	}
	conn, err := mysql.NewConnector(cfg)
	if err != nil {
		return nil, fmt.Errorf("%w: mysql DSN: %v", ErrInvalid, redact(err, cfg.Passwd))
	}
	db := sql.OpenDB(conn)
	// Servers drop idle connections after wait_timeout; recycle ours first.
	db.SetConnMaxLifetime(5 * time.Minute)
	db.SetMaxIdleConns(2)
	return db, nil
}

// redact removes a password from an error's text.
func redact(err error, secret string) string {
	if secret == "" {
		return err.Error()
	}
	return strings.ReplaceAll(err.Error(), secret, "***")
}

// warnIfNotDurable logs when the server may lose committed records on a
// crash: the store's promise of "durable on return" rests on it.
func (s *Store) warnIfNotDurable(ctx context.Context) {
	var v sql.NullInt64
	if err := s.db.QueryRowContext(ctx, `SELECT @@innodb_flush_log_at_trx_commit`).Scan(&v); err != nil {
		s.log.Warn("cannot read innodb_flush_log_at_trx_commit", "err", err)
		return
	}
	if v.Valid && v.Int64 != 1 {
		s.log.Warn("history server may lose the last records on a crash: set innodb_flush_log_at_trx_commit=1",
			"innodb_flush_log_at_trx_commit", v.Int64)
	}
}

// Close releases the database. Every write already returned is on disk.
func (s *Store) Close() error {
	s.once.Do(func() { close(s.closed) })
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("close history: %w", err)
	}
	return nil
}

// Backend names the backend in use: "sqlite" or "mysql".
func (s *Store) Backend() string { return s.d.name }

// SchemaVersion reads the version the database is at.
func (s *Store) SchemaVersion(ctx context.Context) (int, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	var v int
	if err := s.db.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_version`).Scan(&v); err != nil {
		return 0, fmt.Errorf("read schema version: %w", err)
	}
	return v, nil
}

func (s *Store) bound(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, s.timeout)
}

// stamp returns t in UTC at microsecond precision, or now when t is zero.
func (s *Store) stamp(t time.Time) time.Time {
	if t.IsZero() {
		t = s.now()
	}
	return t.UTC().Truncate(time.Microsecond)
}

// execer is what both *sql.DB and *sql.Tx offer.
type execer interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

// prepareEvent validates e and fills its defaults.
func (s *Store) prepareEvent(e *Event) error {
	if !e.Kind.Valid() {
		_, err := ParseKind(string(e.Kind))
		return err
	}
	e.Summary = clean(strings.TrimSpace(e.Summary))
	if e.Summary == "" {
		return fmt.Errorf("%w: event has no summary", ErrInvalid)
	}
	if e.Actor == "" {
		e.Actor = s.actor
	}
	e.Host, e.Actor, e.Incident = clean(e.Host), clean(e.Actor), clean(e.Incident)
	e.Reason.Code, e.Reason.Text = ReasonCode(clean(string(e.Reason.Code))), clean(e.Reason.Text)
	for _, c := range []struct {
		field, v string
		max      int
	}{
		{"host", e.Host, maxName},
		{"actor", e.Actor, maxName},
		{"incident", e.Incident, maxIncident},
		{"reason code", string(e.Reason.Code), maxCode},
	} {
		if err := checkLen(c.field, c.v, c.max); err != nil {
			return err
		}
	}
	if len(bytes.TrimSpace(e.Details)) == 0 {
		e.Details = nil
	} else {
		var buf bytes.Buffer
		if err := json.Compact(&buf, e.Details); err != nil {
			return fmt.Errorf("%w: event details are not JSON: %v", ErrInvalid, err)
		}
		e.Details = buf.Bytes()
	}
	e.Time = s.stamp(e.Time)
	return nil
}

func insertEvent(ctx context.Context, x execer, e *Event) error {
	res, err := x.ExecContext(ctx, `INSERT INTO events
		(time_us, host, kind, summary, reason_code, reason_text, actor, incident, details)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		micro(e.Time), e.Host, string(e.Kind), e.Summary, string(e.Reason.Code), e.Reason.Text,
		e.Actor, e.Incident, string(e.Details))
	if err != nil {
		return fmt.Errorf("record %s event: %w", e.Kind, err)
	}
	if e.ID, err = res.LastInsertId(); err != nil {
		return fmt.Errorf("record %s event: read id: %w", e.Kind, err)
	}
	return nil
}

// ErrClosed is returned by a write to a closed Store.
var ErrClosed = errors.New("history closed")

// writer runs the writes of a SQLite store, one at a time, until the store is closed. SQLite's
// engine (translated from C) runs on the goroutine that calls it, in deep frames: each
// goroutine writing grows its stack to tens of kilobytes, and a recovery recording a hundred
// moves at once would hold megabytes of stacks. SQLite takes one write at a time anyway.
func (s *Store) writer() {
	for {
		select {
		case w := <-s.writes:
			w()
		case <-s.closed:
			return
		}
	}
}

// serial runs fn on the writer goroutine when the store has one, else here. A caller whose
// ctx ends while it waits for its turn is not run.
func (s *Store) serial(ctx context.Context, fn func() error) error {
	if s.writes == nil {
		return fn()
	}
	done := make(chan error, 1)
	select {
	case s.writes <- func() { done <- fn() }:
		return <-done
	case <-s.closed:
		return ErrClosed
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Record appends one event; it is committed when Record returns. A zero
// Time is stamped with the store's clock, an empty Actor with the store's.
func (s *Store) Record(ctx context.Context, e Event) error {
	_, err := s.RecordEvent(ctx, e)
	return err
}

// RecordAll appends events in one transaction: all are committed when it
// returns, or none. It costs one durable write, not one per event.
func (s *Store) RecordAll(ctx context.Context, events []Event) error {
	if len(events) == 0 {
		return nil
	}
	for i := range events {
		if err := s.prepareEvent(&events[i]); err != nil {
			return err
		}
	}
	ctx, cancel := s.bound(ctx)
	defer cancel()
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		for i := range events {
			if err := insertEvent(ctx, tx, &events[i]); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	s.recorded(events...)
	return nil
}

// RecordEvent is Record returning the event as stored (ID, time, actor).
func (s *Store) RecordEvent(ctx context.Context, e Event) (Event, error) {
	if err := s.prepareEvent(&e); err != nil {
		return Event{}, err
	}
	ctx, cancel := s.bound(ctx)
	defer cancel()
	if err := s.serial(ctx, func() error { return insertEvent(ctx, s.db, &e) }); err != nil {
		return Event{}, err
	}
	s.recorded(e)
	return e, nil
}

// StartMove records a VM move as running and returns its id. A zero Start is
// stamped now; Attempts defaults to 1.
func (s *Store) StartMove(ctx context.Context, m Move) (int64, error) {
	if err := s.prepareMove(&m); err != nil {
		return 0, err
	}
	ctx, cancel := s.bound(ctx)
	defer cancel()
	var id int64
	err := s.serial(ctx, func() (err error) {
		id, err = insertMove(ctx, s.db, m)
		return err
	})
	return id, err
}

// prepareMove validates m and fills its defaults.
func (s *Store) prepareMove(m *Move) error {
	m.VMID, m.VMName, m.Project = clean(m.VMID), clean(m.VMName), clean(m.Project)
	m.From, m.To, m.Incident, m.Method = clean(m.From), clean(m.To), clean(m.Incident), clean(m.Method)
	if m.VMID == "" || m.From == "" {
		return fmt.Errorf("%w: a move needs a VM id and a source host", ErrInvalid)
	}
	if m.Actor == "" {
		m.Actor = s.actor
	}
	if m.Attempts <= 0 {
		m.Attempts = 1
	}
	m.Start = s.stamp(m.Start)
	for _, c := range []struct {
		field, v string
		max      int
	}{
		{"VM id", m.VMID, maxName},
		{"VM name", m.VMName, maxName},
		{"project", m.Project, maxName},
		{"source host", m.From, maxName},
		{"destination host", m.To, maxName},
		{"incident", m.Incident, maxIncident},
		{"actor", m.Actor, maxName},
		{"method", m.Method, maxCode},
	} {
		if err := checkLen(c.field, c.v, c.max); err != nil {
			return err
		}
	}
	return nil
}

func insertMove(ctx context.Context, x execer, m Move) (int64, error) {
	res, err := x.ExecContext(ctx, `INSERT INTO moves
		(incident, vm_id, vm_name, project, from_host, to_host, start_us, end_us, result, attempts, error, actor, method)
		VALUES (?, ?, ?, ?, ?, ?, ?, NULL, ?, ?, '', ?, ?)`,
		m.Incident, m.VMID, m.VMName, m.Project, m.From, m.To, micro(m.Start),
		string(MoveRunning), m.Attempts, m.Actor, m.Method)
	if err != nil {
		return 0, fmt.Errorf("record move of VM %s: %w", m.VMID, err)
	}
	id, err := res.LastInsertId()
	if err != nil {
		return 0, fmt.Errorf("record move of VM %s: read id: %w", m.VMID, err)
	}
	return id, nil
}

// RetryMove counts one more attempt of a running move, and records a new
// destination when to is not empty.
func (s *Store) RetryMove(ctx context.Context, id int64, to string) error {
	to = clean(to)
	if err := checkLen("destination host", to, maxName); err != nil {
		return err
	}
	ctx, cancel := s.bound(ctx)
	defer cancel()
	return s.serial(ctx, func() error {
		res, err := s.db.ExecContext(ctx, `UPDATE moves SET attempts = attempts + 1,
			to_host = CASE WHEN ? = '' THEN to_host ELSE ? END
			WHERE id = ? AND end_us IS NULL`, to, to, id)
		if err != nil {
			return fmt.Errorf("record retry of move %d: %w", id, err)
		}
		return checkMoveUpdated(ctx, s.db, res, id)
	})
}

// FinishMove records how a running move ended. Finishing a move twice fails
// with ErrFinished, an unknown id with ErrNotFound.
func (s *Store) FinishMove(ctx context.Context, id int64, out MoveOutcome) error {
	if err := s.prepareOutcome(&out); err != nil {
		return err
	}
	ctx, cancel := s.bound(ctx)
	defer cancel()
	var (
		m    Move
		read bool // read back, for the observer
	)
	err := s.serial(ctx, func() error {
		if err := finishMove(ctx, s.db, id, out); err != nil {
			return err
		}
		var err error
		m, err = moveByID(ctx, s.db, id)
		read = err == nil
		return nil
	})
	if err != nil {
		return err
	}
	if read {
		s.moveFinished(m)
	}
	return nil
}

// prepareOutcome validates out and stamps its end.
func (s *Store) prepareOutcome(out *MoveOutcome) error {
	if !out.Result.terminal() {
		return fmt.Errorf("%w: move result %q is not final (want succeeded, failed or skipped)", ErrInvalid, out.Result)
	}
	out.To, out.Error = clean(out.To), clean(out.Error)
	if err := checkLen("destination host", out.To, maxName); err != nil {
		return err
	}
	out.End = s.stamp(out.End)
	return nil
}

// querier is what both *sql.DB and *sql.Tx offer.
type querier interface {
	execer
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

func finishMove(ctx context.Context, x querier, id int64, out MoveOutcome) error {
	res, err := x.ExecContext(ctx, `UPDATE moves SET end_us = ?, result = ?, error = ?,
		to_host = CASE WHEN ? = '' THEN to_host ELSE ? END
		WHERE id = ? AND end_us IS NULL`,
		micro(out.End), string(out.Result), out.Error, out.To, out.To, id)
	if err != nil {
		return fmt.Errorf("record end of move %d: %w", id, err)
	}
	return checkMoveUpdated(ctx, x, res, id)
}

// checkMoveUpdated turns "no row changed" into ErrNotFound or ErrFinished.
func checkMoveUpdated(ctx context.Context, x querier, res sql.Result, id int64) error {
	n, err := res.RowsAffected()
	if err != nil {
		return fmt.Errorf("move %d: %w", id, err)
	}
	if n > 0 {
		return nil
	}
	var one int
	err = x.QueryRowContext(ctx, `SELECT 1 FROM moves WHERE id = ?`, id).Scan(&one)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return fmt.Errorf("move %d: %w", id, ErrNotFound)
	case err != nil:
		return fmt.Errorf("move %d: %w", id, err)
	}
	return fmt.Errorf("move %d: %w", id, ErrFinished)
}

// where builds the WHERE clause shared by the queries. timeCol is the time
// column the range applies to; hostCols are matched with OR.
func (f Filter) where(timeCol string, hostCols ...string) (string, []any) {
	var conds []string
	var args []any
	if f.Host != "" {
		var ors []string
		for _, c := range hostCols {
			ors = append(ors, c+" = ?")
			args = append(args, f.Host)
		}
		conds = append(conds, "("+strings.Join(ors, " OR ")+")")
	}
	if !f.Since.IsZero() {
		conds = append(conds, timeCol+" >= ?")
		args = append(args, micro(f.Since.Truncate(time.Microsecond)))
	}
	if !f.Until.IsZero() {
		conds = append(conds, timeCol+" < ?")
		args = append(args, micro(f.Until.Truncate(time.Microsecond)))
	}
	if f.Incident != "" {
		conds = append(conds, "incident = ?")
		args = append(args, f.Incident)
	}
	if len(conds) == 0 {
		return "", args
	}
	return " WHERE " + strings.Join(conds, " AND "), args
}

// order returns ORDER BY / LIMIT. With a limit the newest rows are selected
// (descending) and the caller reverses them, so callers always get time order.
func (f Filter) order(timeCol string) (string, []any) {
	if f.Limit > 0 {
		return " ORDER BY " + timeCol + " DESC, id DESC LIMIT ?", []any{f.Limit}
	}
	return " ORDER BY " + timeCol + ", id", nil
}

// Query returns the events f selects, oldest first (by time, then id).
func (s *Store) Query(ctx context.Context, f Filter) ([]Event, error) {
	if err := f.validate(); err != nil {
		return nil, err
	}
	where, args := f.where("time_us", "host")
	if f.Kind != "" {
		if where == "" {
			where = " WHERE kind = ?"
		} else {
			where += " AND kind = ?"
		}
		args = append(args, string(f.Kind))
	}
	order, oargs := f.order("time_us")
	ctx, cancel := s.bound(ctx)
	defer cancel()
	rows, err := s.db.QueryContext(ctx, `SELECT id, time_us, host, kind, summary, reason_code, reason_text,
		actor, incident, details FROM events`+where+order, append(args, oargs...)...)
	if err != nil {
		return nil, fmt.Errorf("query events: %w", err)
	}
	defer func() { _ = rows.Close() }()
	var out []Event
	for rows.Next() {
		var (
			e       Event
			us      int64
			kind    string
			code    string
			details string
		)
		if err := rows.Scan(&e.ID, &us, &e.Host, &kind, &e.Summary, &code, &e.Reason.Text,
			&e.Actor, &e.Incident, &details); err != nil {
			return nil, fmt.Errorf("query events: %w", err)
		}
		e.Time, e.Kind, e.Reason.Code = fromMicro(us), Kind(kind), ReasonCode(code)
		if details != "" {
			e.Details = json.RawMessage(details)
		}
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("query events: %w", err)
	}
	if f.Limit > 0 {
		slices.Reverse(out)
	}
	return out, nil
}

// Moves returns the moves f selects, by start time: Host matches the source
// or the destination, Since/Until the start. A Kind other than KindMove
// selects no moves.
func (s *Store) Moves(ctx context.Context, f Filter) ([]Move, error) {
	if err := f.validate(); err != nil {
		return nil, err
	}
	if f.Kind != "" && f.Kind != KindMove {
		return nil, nil
	}
	where, args := f.where("start_us", "from_host", "to_host")
	order, oargs := f.order("start_us")
	ctx, cancel := s.bound(ctx)
	defer cancel()
	rows, err := s.db.QueryContext(ctx, `SELECT `+moveColumns+` FROM moves`+where+order, append(args, oargs...)...)
	if err != nil {
		return nil, fmt.Errorf("query moves: %w", err)
	}
	defer func() { _ = rows.Close() }()
	var out []Move
	for rows.Next() {
		m, err := scanMove(rows)
		if err != nil {
			return nil, fmt.Errorf("query moves: %w", err)
		}
		out = append(out, m)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("query moves: %w", err)
	}
	if f.Limit > 0 {
		slices.Reverse(out)
	}
	return out, nil
}

const moveColumns = `id, incident, vm_id, vm_name, project, from_host, to_host,
	start_us, end_us, result, attempts, error, actor, method`

// scanMove reads a row of moveColumns.
func scanMove(row interface{ Scan(...any) error }) (Move, error) {
	var (
		m      Move
		start  int64
		end    sql.NullInt64
		result string
	)
	if err := row.Scan(&m.ID, &m.Incident, &m.VMID, &m.VMName, &m.Project, &m.From, &m.To,
		&start, &end, &result, &m.Attempts, &m.Error, &m.Actor, &m.Method); err != nil {
		return Move{}, err
	}
	m.Start, m.Result = fromMicro(start), MoveResult(result)
	if end.Valid {
		m.End = fromMicro(end.Int64)
	}
	return m, nil
}
