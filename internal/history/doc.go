// Package history is computeha's durable event history: every host failure,
// fencing result, decision (with its reason) and VM move the evacuation
// daemon handles, written to an SQL database before the call that records it
// returns.
//
// Pacemaker keeps its fencing history in memory only, so it is gone after a
// full cluster restart; this store is the lasting record of what happened,
// when, where and why. Operators read it with `computeha history`, which
// calls [Render].
//
// # Backends
//
// One schema serves two backends, chosen by the driver name given to [Open]:
//
//   - "sqlite": an embedded SQLite file (pure Go, no cgo), the default for a
//     single controller. The DSN is a file path, optionally followed by
//     "?"-separated driver parameters that override the defaults below.
//   - "mysql" (alias "mariadb"): a MySQL or MariaDB server shared by several
//     controllers, with a github.com/go-sql-driver/mysql DSN such as
//     "user@unix(/run/mysqld/mysqld.sock)/computeha". The password, if any,
//     stays inside the DSN and is never echoed in errors or logs.
//
// # Durability
//
// A write returns only after its transaction is committed. For SQLite the
// store sets journal_mode=WAL and synchronous=FULL: in WAL mode NORMAL is
// crash-safe for the process but may lose the last commits on power loss,
// and power loss is precisely the situation this record documents (a
// controller may share a power domain with the hosts it fences). At the
// volume of an evacuation history (a few events per VM) the fsync per commit
// is cheap. busy_timeout=10000 makes a second process wait for the write lock
// instead of failing with SQLITE_BUSY, and transactions begin IMMEDIATE so
// two writers never deadlock on a read-to-write lock upgrade. For MySQL and
// MariaDB durability is the server's: InnoDB with
// innodb_flush_log_at_trx_commit=1 (the default); [Open] logs a warning when
// the server is configured otherwise.
//
// # Schema and migrations
//
// The schema is versioned in table schema_version (one row per applied
// version). [Open] applies the missing forward migrations: on SQLite inside
// one IMMEDIATE transaction, on MySQL/MariaDB under a named server lock
// (GET_LOCK) with statements that tolerate having already run, so two
// daemons opening the same database at once are safe. A database written by
// a newer computeha (a version this code does not know) is refused with
// [ErrSchemaTooNew] rather than written to.
//
// Times are stored as integer microseconds since the Unix epoch (UTC) in
// both backends, so they round-trip exactly and sort the same everywhere.
//
// Schema version 2:
//
//	events(id, time_us, host, kind, summary, reason_code, reason_text, actor,
//	       incident, details)                        -- append-only
//	moves(id, incident, vm_id, vm_name, project, from_host, to_host,
//	      start_us, end_us NULL while running, result, attempts, error, actor,
//	      method)                                    -- method added in version 3
//	incidents(id, host, opened_us, closed_us NULL while open, outcome,
//	          summary, actor)                        -- added in version 2
//
// # JSON lines
//
// [Render] with [FormatJSON] writes one JSON object per line, events first
// then moves, each in time order. Every field is always present (null where
// unknown), and these names are stable:
//
//	event: type ("event"), id, time, host, kind, summary, reason_code,
//	       reason_text, actor, incident, details (object or null)
//	move:  type ("move"), id, incident, vm_id, vm_name, project, from, to,
//	       start, end (null while running), duration_us (null while running),
//	       result, attempts, error, actor, method
//
// Times are RFC 3339 in UTC with exactly six fractional digits, e.g.
// "2026-03-01T10:00:00.000001Z".
//
// Details and summaries are stored verbatim: callers must never put secrets
// in them.
package history
