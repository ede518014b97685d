package history

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// backend is a database the suite runs against.
type backend struct {
	name string
	// fresh returns the driver and DSN of a new, empty database.
	fresh func(t *testing.T) (driver, dsn string)
}

func sqliteBackend() backend {
	return backend{
		name: "sqlite",
		fresh: func(t *testing.T) (string, string) {
			return "sqlite", filepath.Join(t.TempDir(), "history.db")
		},
	}
}

// withSchema stops migrations at an older version, to build the databases
// an older computeha left behind.
func withSchema(v int) Option { return func(o *options) { o.target = v } }

// t0 is the suite's reference time; nothing depends on the real clock.
var t0 = time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)

// stepClock returns a clock that starts at start and advances by step on
// every reading, so that stamped records get distinct, predictable times.
func stepClock(start time.Time, step time.Duration) func() time.Time {
	var mu sync.Mutex
	t := start
	return func() time.Time {
		mu.Lock()
		defer mu.Unlock()
		now := t
		t = t.Add(step)
		return now
	}
}

func open(t *testing.T, driver, dsn string, opts ...Option) *Store {
	t.Helper()
	opts = append([]Option{
		WithActor("test-actor"), WithClock(stepClock(t0, time.Millisecond)),
		WithLogger(slog.New(slog.DiscardHandler)),
	}, opts...)
	s, err := Open(context.Background(), driver, dsn, opts...)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func mustRecord(t *testing.T, s *Store, events ...Event) {
	t.Helper()
	for _, e := range events {
		if err := s.Record(context.Background(), e); err != nil {
			t.Fatalf("Record(%q): %v", e.Summary, err)
		}
	}
}

func mustQuery(t *testing.T, s *Store, f Filter) []Event {
	t.Helper()
	es, err := s.Query(context.Background(), f)
	if err != nil {
		t.Fatalf("Query(%+v): %v", f, err)
	}
	return es
}

func mustMoves(t *testing.T, s *Store, f Filter) []Move {
	t.Helper()
	ms, err := s.Moves(context.Background(), f)
	if err != nil {
		t.Fatalf("Moves(%+v): %v", f, err)
	}
	return ms
}

func summaries(es []Event) []string {
	out := []string{}
	for _, e := range es {
		out = append(out, e.Summary)
	}
	return out
}

func vmIDs(ms []Move) []string {
	out := []string{}
	for _, m := range ms {
		out = append(out, m.VMID)
	}
	return out
}

func countRows(t *testing.T, s *Store, table string) int {
	t.Helper()
	var n int
	if err := s.db.QueryRowContext(context.Background(), "SELECT COUNT(*) FROM "+table).Scan(&n); err != nil {
		t.Fatalf("count %s: %v", table, err)
	}
	return n
}

// runSuite is every store test; each backend runs all of it.
func runSuite(t *testing.T, b backend) {
	ctx := context.Background()

	t.Run("an empty database is migrated to the latest schema and reads as empty", func(t *testing.T) {
		driver, dsn := b.fresh(t)
		s := open(t, driver, dsn)
		v, err := s.SchemaVersion(ctx)
		if err != nil || v != LatestSchema() {
			t.Fatalf("SchemaVersion = %d, %v; want %d", v, err, LatestSchema())
		}
		if n := countRows(t, s, "schema_version"); n != len(migrations) {
			t.Errorf("schema_version has %d rows, want one per migration (%d)", n, len(migrations))
		}
		for _, table := range []string{"events", "moves", "incidents"} {
			if n := countRows(t, s, table); n != 0 {
				t.Errorf("%s has %d rows, want 0", table, n)
			}
		}
		if es := mustQuery(t, s, Filter{}); len(es) != 0 {
			t.Errorf("Query = %v, want nothing", es)
		}
	})

	t.Run("a database at the previous schema version is migrated forward and keeps its records", func(t *testing.T) {
		driver, dsn := b.fresh(t)
		old := open(t, driver, dsn, withSchema(LatestSchema()-1))
		mustRecord(t, old, Event{Host: "compute1", Kind: KindFailure, Summary: "written by the previous version"})
		// A move as the previous version wrote it: without a method.
		if _, err := old.db.ExecContext(ctx, `INSERT INTO moves
			(incident, vm_id, vm_name, project, from_host, to_host, start_us, end_us, result, attempts, error, actor)
			VALUES ('', 'vm-old', '', '', 'compute1', '', 1, NULL, 'running', 1, '', 'old')`); err != nil {
			t.Fatalf("a move of the previous schema: %v", err)
		}
		if _, err := old.StartMove(ctx, Move{VMID: "vm-new", From: "compute1", Method: "recreate"}); err == nil {
			t.Fatal("a move with a method was recorded on the previous schema, so the test does not exercise the migration")
		}
		before := mustQuery(t, old, Filter{})
		if err := old.Close(); err != nil {
			t.Fatal(err)
		}

		s := open(t, driver, dsn)
		if v, err := s.SchemaVersion(ctx); err != nil || v != LatestSchema() {
			t.Fatalf("SchemaVersion = %d, %v; want %d", v, err, LatestSchema())
		}
		if diff := cmp.Diff(before, mustQuery(t, s, Filter{})); diff != "" {
			t.Errorf("events after migration (-want +got):\n%s", diff)
		}
		if _, err := s.OpenIncident(ctx, "compute1", Event{Summary: "after migration"}); err != nil {
			t.Errorf("OpenIncident after migration: %v", err)
		}
		if _, err := s.StartMove(ctx, Move{VMID: "vm-new", From: "compute1", Method: "recreate"}); err != nil {
			t.Fatalf("a move with a method after migration: %v", err)
		}
		if ms := mustMoves(t, s, Filter{}); len(ms) != 2 || ms[0].VMID != "vm-old" || ms[0].Actor != "old" || ms[0].Method != "" || ms[1].Method != "recreate" {
			t.Errorf("moves after migration: %+v, want the old one without a method and the new one recreate", ms)
		}
	})

	t.Run("reopening a migrated database applies nothing again", func(t *testing.T) {
		driver, dsn := b.fresh(t)
		for range 3 {
			s := open(t, driver, dsn)
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
		}
		s := open(t, driver, dsn)
		if n := countRows(t, s, "schema_version"); n != len(migrations) {
			t.Errorf("schema_version has %d rows after reopening, want %d", n, len(migrations))
		}
	})

	t.Run("a database written by a newer computeha is refused", func(t *testing.T) {
		driver, dsn := b.fresh(t)
		s := open(t, driver, dsn)
		if _, err := s.db.ExecContext(ctx, `INSERT INTO schema_version (version, name, applied_us) VALUES (?, 'future', 0)`,
			LatestSchema()+1); err != nil {
			t.Fatal(err)
		}
		_ = s.Close()
		_, err := Open(ctx, driver, dsn, WithLogger(slog.New(slog.DiscardHandler)))
		if !errors.Is(err, ErrSchemaTooNew) {
			t.Fatalf("Open = %v, want ErrSchemaTooNew", err)
		}
	})

	t.Run("several stores opening one empty database at once all succeed and migrate it once", func(t *testing.T) {
		driver, dsn := b.fresh(t)
		const n = 4
		errs := make([]error, n)
		stores := make([]*Store, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() {
				stores[i], errs[i] = Open(ctx, driver, dsn, WithActor(fmt.Sprintf("opener-%d", i)),
					WithLogger(slog.New(slog.DiscardHandler)))
			})
		}
		wg.Wait()
		for i, err := range errs {
			if err != nil {
				t.Errorf("Open #%d: %v", i, err)
				continue
			}
			t.Cleanup(func() { _ = stores[i].Close() })
		}
		if t.Failed() {
			return
		}
		if got := countRows(t, stores[0], "schema_version"); got != len(migrations) {
			t.Errorf("schema_version has %d rows, want %d", got, len(migrations))
		}
	})

	t.Run("two stores writing to one database at the same time lose no record", func(t *testing.T) {
		driver, dsn := b.fresh(t)
		a := open(t, driver, dsn, WithActor("controller-a"))
		bb := open(t, driver, dsn, WithActor("controller-b"))
		const writers, each = 3, 60
		var wg sync.WaitGroup
		errs := make(chan error, 2*writers*each)
		for _, s := range []*Store{a, bb} {
			for w := range writers {
				wg.Go(func() {
					for i := range each {
						if err := s.Record(ctx, Event{
							Host: fmt.Sprintf("compute%d", w), Kind: KindDecision,
							Summary: fmt.Sprintf("%s writer %d event %d", s.actor, w, i),
						}); err != nil {
							errs <- err
						}
					}
				})
			}
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Errorf("Record: %v", err)
		}
		got := mustQuery(t, a, Filter{})
		if len(got) != 2*writers*each {
			t.Fatalf("read %d events, want %d", len(got), 2*writers*each)
		}
		seen := map[string]bool{}
		ids := map[int64]bool{}
		for _, e := range got {
			seen[e.Summary], ids[e.ID] = true, true
		}
		if len(seen) != 2*writers*each || len(ids) != 2*writers*each {
			t.Errorf("%d distinct summaries and %d distinct ids, want %d of each", len(seen), len(ids), 2*writers*each)
		}
	})

	t.Run("records survive closing and reopening the store", func(t *testing.T) {
		driver, dsn := b.fresh(t)
		s := open(t, driver, dsn)
		in, err := s.OpenIncident(ctx, "compute1", Event{
			Summary: "compute1 stopped answering", Reason: Reason{Code: "host-unreachable", Text: "no heartbeat for 3s"},
			Details: json.RawMessage(`{"vms": 2}`),
		})
		if err != nil {
			t.Fatal(err)
		}
		if err := in.Record(ctx, Event{Kind: KindFencing, Summary: "fenced through ipmi-compute1"}); err != nil {
			t.Fatal(err)
		}
		id, err := in.StartMove(ctx, Move{VMID: "6f1c", VMName: "web-1", Project: "demo"})
		if err != nil {
			t.Fatal(err)
		}
		if err := in.FinishMove(ctx, id, MoveOutcome{Result: MoveSucceeded, To: "compute2"}); err != nil {
			t.Fatal(err)
		}
		if _, err := in.StartMove(ctx, Move{VMID: "7a2d", VMName: "db-1"}); err != nil {
			t.Fatal(err)
		}
		if err := in.Close(ctx, OutcomePartial, "one VM still moving", Reason{}); err != nil {
			t.Fatal(err)
		}
		events, moves := mustQuery(t, s, Filter{}), mustMoves(t, s, Filter{})
		incidents, err := s.Incidents(ctx, Filter{})
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}

		r := open(t, driver, dsn)
		if diff := cmp.Diff(events, mustQuery(t, r, Filter{})); diff != "" {
			t.Errorf("events after reopening (-want +got):\n%s", diff)
		}
		if diff := cmp.Diff(moves, mustMoves(t, r, Filter{})); diff != "" {
			t.Errorf("moves after reopening (-want +got):\n%s", diff)
		}
		gotInc, err := r.Incidents(ctx, Filter{})
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(incidents, gotInc); diff != "" {
			t.Errorf("incidents after reopening (-want +got):\n%s", diff)
		}
		if len(events) != 6 || len(moves) != 2 || len(incidents) != 1 {
			t.Errorf("got %d events, %d moves, %d incidents; want 6, 2, 1", len(events), len(moves), len(incidents))
		}
	})

	t.Run("times keep their microseconds and come back in UTC", func(t *testing.T) {
		driver, dsn := b.fresh(t)
		s := open(t, driver, dsn)
		zone := time.FixedZone("IST", 5*3600+1800)
		at := time.Date(2026, 3, 1, 15, 30, 0, 123456789, zone)
		mustRecord(t, s, Event{Time: at, Kind: KindAlert, Summary: "precise"})
		id, err := s.StartMove(ctx, Move{VMID: "vm", From: "compute1", Start: at})
		if err != nil {
			t.Fatal(err)
		}
		if err := s.FinishMove(ctx, id, MoveOutcome{Result: MoveFailed, End: at.Add(1500 * time.Microsecond)}); err != nil {
			t.Fatal(err)
		}
		want := time.Date(2026, 3, 1, 10, 0, 0, 123456000, time.UTC)
		e := mustQuery(t, s, Filter{})[0]
		if !e.Time.Equal(want) || e.Time.Location() != time.UTC {
			t.Errorf("event time = %v, want %v", e.Time, want)
		}
		m := mustMoves(t, s, Filter{})[0]
		if !m.Start.Equal(want) || m.Start.Location() != time.UTC {
			t.Errorf("move start = %v, want %v", m.Start, want)
		}
		if d, ok := m.Duration(); !ok || d != 1500*time.Microsecond {
			t.Errorf("move duration = %v, %v; want 1.5ms", d, ok)
		}
	})

	t.Run("events come back in time order with ties in recording order", func(t *testing.T) {
		driver, dsn := b.fresh(t)
		s := open(t, driver, dsn)
		mustRecord(t, s,
			Event{Time: t0.Add(3 * time.Second), Kind: KindDecision, Summary: "third"},
			Event{Time: t0.Add(1 * time.Second), Kind: KindDecision, Summary: "first (recorded first)"},
			Event{Time: t0.Add(2 * time.Second), Kind: KindDecision, Summary: "second"},
			Event{Time: t0.Add(1 * time.Second), Kind: KindDecision, Summary: "first (recorded later)"},
		)
		want := []string{"first (recorded first)", "first (recorded later)", "second", "third"}
		if diff := cmp.Diff(want, summaries(mustQuery(t, s, Filter{}))); diff != "" {
			t.Errorf("order (-want +got):\n%s", diff)
		}
		if diff := cmp.Diff(want[2:], summaries(mustQuery(t, s, Filter{Limit: 2}))); diff != "" {
			t.Errorf("order with a limit (-want +got):\n%s", diff)
		}
	})

	t.Run("filters select events and moves by host, time, kind and incident", func(t *testing.T) {
		driver, dsn := b.fresh(t)
		s := open(t, driver, dsn)
		at := func(sec int) time.Time { return t0.Add(time.Duration(sec) * time.Second) }
		mustRecord(t, s,
			Event{Time: at(0), Host: "compute1", Kind: KindFailure, Summary: "c1 failed", Incident: "inc-1"},
			Event{Time: at(1), Host: "compute1", Kind: KindFencing, Summary: "c1 fenced", Incident: "inc-1"},
			Event{Time: at(2), Host: "compute2", Kind: KindFailure, Summary: "c2 failed", Incident: "inc-2"},
			Event{Time: at(3), Host: "compute1", Kind: KindDecision, Summary: "c1 evacuate", Incident: "inc-1"},
			Event{Time: at(4), Kind: KindConfig, Summary: "config reloaded"},
			Event{Time: at(5), Host: "compute2", Kind: KindGuard, Summary: "c2 held: no quorum", Incident: "inc-2"},
		)
		for _, m := range []Move{
			{VMID: "vm-a", From: "compute1", To: "compute3", Start: at(3), Incident: "inc-1"},
			{VMID: "vm-b", From: "compute1", To: "compute2", Start: at(4), Incident: "inc-1"},
			{VMID: "vm-c", From: "compute2", To: "compute3", Start: at(6), Incident: "inc-2"},
		} {
			if _, err := s.StartMove(ctx, m); err != nil {
				t.Fatal(err)
			}
		}
		tests := []struct {
			name       string
			f          Filter
			wantEvents []string
			wantMoves  []string
		}{
			{
				name:       "an empty filter selects everything in time order",
				f:          Filter{},
				wantEvents: []string{"c1 failed", "c1 fenced", "c2 failed", "c1 evacuate", "config reloaded", "c2 held: no quorum"},
				wantMoves:  []string{"vm-a", "vm-b", "vm-c"},
			},
			{
				name:       "a host selects its events and the moves from or to it",
				f:          Filter{Host: "compute2"},
				wantEvents: []string{"c2 failed", "c2 held: no quorum"},
				wantMoves:  []string{"vm-b", "vm-c"},
			},
			{
				name:       "since is inclusive and until exclusive",
				f:          Filter{Since: at(1), Until: at(4)},
				wantEvents: []string{"c1 fenced", "c2 failed", "c1 evacuate"},
				wantMoves:  []string{"vm-a"},
			},
			{
				name:       "a kind selects only its events and no moves",
				f:          Filter{Kind: KindFailure},
				wantEvents: []string{"c1 failed", "c2 failed"},
				wantMoves:  []string{},
			},
			{
				name:       "kind move selects moves",
				f:          Filter{Kind: KindMove},
				wantEvents: []string{},
				wantMoves:  []string{"vm-a", "vm-b", "vm-c"},
			},
			{
				name:       "an incident selects its events and moves",
				f:          Filter{Incident: "inc-2"},
				wantEvents: []string{"c2 failed", "c2 held: no quorum"},
				wantMoves:  []string{"vm-c"},
			},
			{
				name:       "a limit keeps the most recent records, oldest first",
				f:          Filter{Limit: 2},
				wantEvents: []string{"config reloaded", "c2 held: no quorum"},
				wantMoves:  []string{"vm-b", "vm-c"},
			},
			{
				name:       "filters combine",
				f:          Filter{Host: "compute1", Since: at(1), Kind: KindDecision, Incident: "inc-1"},
				wantEvents: []string{"c1 evacuate"},
				wantMoves:  []string{},
			},
			{
				name:       "an unknown host selects nothing",
				f:          Filter{Host: "compute9"},
				wantEvents: []string{},
				wantMoves:  []string{},
			},
			{
				name:       "a time with more than microsecond precision is truncated, not rounded",
				f:          Filter{Since: at(5).Add(-time.Nanosecond)},
				wantEvents: []string{"c2 held: no quorum"},
				wantMoves:  []string{"vm-c"},
			},
		}
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				if diff := cmp.Diff(tc.wantEvents, summaries(mustQuery(t, s, tc.f))); diff != "" {
					t.Errorf("events (-want +got):\n%s", diff)
				}
				if diff := cmp.Diff(tc.wantMoves, vmIDs(mustMoves(t, s, tc.f))); diff != "" {
					t.Errorf("moves (-want +got):\n%s", diff)
				}
			})
		}
	})

	t.Run("a move is started, retried and finished exactly once", func(t *testing.T) {
		driver, dsn := b.fresh(t)
		s := open(t, driver, dsn)
		id, err := s.StartMove(ctx, Move{VMID: "6f1c", VMName: "web-1", Project: "demo", From: "compute1", Start: t0})
		if err != nil {
			t.Fatal(err)
		}
		running := mustMoves(t, s, Filter{})[0]
		if running.Result != MoveRunning || !running.End.IsZero() || running.Attempts != 1 {
			t.Errorf("after StartMove: %+v, want running, no end, 1 attempt", running)
		}
		if err := s.RetryMove(ctx, id, "compute3"); err != nil {
			t.Fatal(err)
		}
		if err := s.RetryMove(ctx, id, ""); err != nil {
			t.Fatal(err)
		}
		if err := s.FinishMove(ctx, id, MoveOutcome{Result: MoveSucceeded, End: t0.Add(2 * time.Second)}); err != nil {
			t.Fatal(err)
		}
		want := Move{
			ID: id, VMID: "6f1c", VMName: "web-1", Project: "demo", From: "compute1", To: "compute3",
			Start: t0, End: t0.Add(2 * time.Second), Result: MoveSucceeded, Attempts: 3, Actor: "test-actor",
		}
		if diff := cmp.Diff([]Move{want}, mustMoves(t, s, Filter{})); diff != "" {
			t.Errorf("finished move (-want +got):\n%s", diff)
		}
		if err := s.FinishMove(ctx, id, MoveOutcome{Result: MoveFailed}); !errors.Is(err, ErrFinished) {
			t.Errorf("second FinishMove = %v, want ErrFinished", err)
		}
		if err := s.RetryMove(ctx, id, ""); !errors.Is(err, ErrFinished) {
			t.Errorf("RetryMove after finishing = %v, want ErrFinished", err)
		}
		if err := s.FinishMove(ctx, id+100, MoveOutcome{Result: MoveFailed}); !errors.Is(err, ErrNotFound) {
			t.Errorf("FinishMove of an unknown move = %v, want ErrNotFound", err)
		}
		if err := s.FinishMove(ctx, id, MoveOutcome{Result: MoveRunning}); !errors.Is(err, ErrInvalid) {
			t.Errorf("FinishMove with result running = %v, want ErrInvalid", err)
		}
	})

	t.Run("a host's open incident is resumed, and one opened when it has none", func(t *testing.T) {
		driver, dsn := b.fresh(t)
		s := open(t, driver, dsn, WithClock(stepClock(t0, time.Second)))
		failure := Event{Kind: KindFailure, Summary: "compute1 marked for evacuation", Details: DetailsOf(map[string]string{"nova_host": "c1"})}
		first, err := s.ResumeOrOpenIncident(ctx, "compute1", failure)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.OpenIncident(ctx, "compute2", failure); err != nil {
			t.Fatal(err)
		}
		again, err := s.ResumeOrOpenIncident(ctx, "compute1", failure)
		if err != nil || again.ID != first.ID {
			t.Fatalf("with compute1's incident open: got %v (%v), want it resumed (%s)", again, err, first.ID)
		}
		if err := again.Close(ctx, OutcomeRecovered, "done", Reason{}); err != nil {
			t.Fatal(err)
		}
		next, err := s.ResumeOrOpenIncident(ctx, "compute1", failure)
		if err != nil || next.ID == first.ID {
			t.Fatalf("with compute1's incident closed: got %v (%v), want a new one", next, err)
		}
		if evs := mustQuery(t, s, Filter{Host: "compute1", Kind: KindFailure}); len(evs) != 3 || string(evs[0].Details) != `{"nova_host":"c1"}` {
			t.Errorf("compute1's failure events %+v: want two openings with their details and a close", evs)
		}
		if DetailsOf(nil) != nil || DetailsOf(func() {}) != nil {
			t.Errorf("details of nothing, or of what JSON cannot encode, are not nil")
		}
	})

	t.Run("an incident ties its steps together, can be resumed, and closes once", func(t *testing.T) {
		driver, dsn := b.fresh(t)
		// The clock stamps Close, which comes after every explicit time.
		s := open(t, driver, dsn, WithClock(stepClock(t0.Add(time.Hour), time.Millisecond)))
		in, err := s.OpenIncident(ctx, "compute1", Event{
			Time: t0, Summary: "compute1 stopped answering", Reason: Reason{Code: "host-unreachable"},
		})
		if err != nil {
			t.Fatal(err)
		}
		resumed, err := s.ResumeIncident(ctx, in.ID)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(in, resumed, cmp.AllowUnexported(Incident{}), cmp.Comparer(func(a, b *Store) bool { return a == b })); diff != "" {
			t.Errorf("resumed incident (-want +got):\n%s", diff)
		}
		if err := resumed.Record(ctx, Event{Time: t0.Add(time.Second), Kind: KindFencing, Summary: "fenced"}); err != nil {
			t.Fatal(err)
		}
		id, err := in.StartMove(ctx, Move{VMID: "6f1c", VMName: "web-1", To: "compute2", Start: t0.Add(2 * time.Second)})
		if err != nil {
			t.Fatal(err)
		}
		if err := in.FinishMove(ctx, id, MoveOutcome{Result: MoveFailed, Error: "no valid host", End: t0.Add(3 * time.Second)}); err != nil {
			t.Fatal(err)
		}
		if err := in.Close(ctx, OutcomeFailed, "no VM could be moved", Reason{Code: "no-capacity", Text: "no valid host"}); err != nil {
			t.Fatal(err)
		}
		if err := in.Close(ctx, OutcomeRecovered, "again", Reason{}); !errors.Is(err, ErrFinished) {
			t.Errorf("second Close = %v, want ErrFinished", err)
		}
		if _, err := s.ResumeIncident(ctx, in.ID); !errors.Is(err, ErrFinished) {
			t.Errorf("ResumeIncident of a closed incident = %v, want ErrFinished", err)
		}
		if _, err := s.ResumeIncident(ctx, "nope"); !errors.Is(err, ErrNotFound) {
			t.Errorf("ResumeIncident of an unknown incident = %v, want ErrNotFound", err)
		}
		mustRecord(t, s, Event{Host: "compute1", Kind: KindAlert, Summary: "not part of the incident"})

		type row struct{ Host, Kind, Summary, Reason string }
		var got []row
		for _, e := range mustQuery(t, s, Filter{Incident: in.ID}) {
			got = append(got, row{e.Host, string(e.Kind), e.Summary, e.Reason.String()})
		}
		want := []row{
			{"compute1", "failure", "compute1 stopped answering", "host-unreachable"},
			{"compute1", "fencing", "fenced", ""},
			{"compute1", "move", "evacuating VM web-1 (6f1c) to compute2", ""},
			{"compute1", "move", "VM web-1 (6f1c) failed in 1s", "move-failed: no valid host"},
			{"compute1", "failure", "incident closed (failed): no VM could be moved", "no-capacity: no valid host"},
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("incident events (-want +got):\n%s", diff)
		}
		infos, err := s.Incidents(ctx, Filter{Host: "compute1"})
		if err != nil {
			t.Fatal(err)
		}
		if len(infos) != 1 || infos[0].Outcome != OutcomeFailed || infos[0].Closed.IsZero() ||
			!infos[0].Opened.Equal(t0) || infos[0].Summary != "no VM could be moved" {
			t.Errorf("Incidents = %+v, want one failed, closed incident opened at %v", infos, t0)
		}
		if ms := mustMoves(t, s, Filter{Incident: in.ID}); len(ms) != 1 || ms[0].From != "compute1" {
			t.Errorf("incident moves = %+v, want one from compute1", ms)
		}
	})

	t.Run("events recorded together are all kept in time order, or none when one is bad", func(t *testing.T) {
		driver, dsn := b.fresh(t)
		s := open(t, driver, dsn)
		in, err := s.OpenIncident(ctx, "compute1", Event{Time: t0, Summary: "compute1 lost"})
		if err != nil {
			t.Fatal(err)
		}
		// Written after a later move event, as a recovery writes its held decisions.
		id, err := in.StartMove(ctx, Move{VMID: "a1", To: "compute2", Start: t0.Add(3 * time.Second)})
		if err != nil {
			t.Fatal(err)
		}
		if err := in.RecordAll(ctx, []Event{
			{Time: t0.Add(time.Second), Kind: KindDecision, Summary: "a1 goes to compute2"},
			{Time: t0.Add(2 * time.Second), Host: "compute2", Kind: KindDecision, Summary: "reserved host compute2 taken into use"},
		}); err != nil {
			t.Fatal(err)
		}
		if err := in.FinishMove(ctx, id, MoveOutcome{Result: MoveSucceeded, End: t0.Add(5 * time.Second)}); err != nil {
			t.Fatal(err)
		}
		bad := []Event{
			{Time: t0.Add(6 * time.Second), Kind: KindDecision, Summary: "kept only with the next"},
			{Time: t0.Add(7 * time.Second), Kind: KindDecision, Summary: "  "},
		}
		if err := in.RecordAll(ctx, bad); !errors.Is(err, ErrInvalid) {
			t.Errorf("RecordAll with an event without a summary = %v, want ErrInvalid", err)
		}
		if err := s.RecordAll(ctx, nil); err != nil {
			t.Errorf("RecordAll of nothing = %v", err)
		}
		type row struct{ Host, Summary string }
		var got []row
		for _, e := range mustQuery(t, s, Filter{Incident: in.ID}) {
			got = append(got, row{e.Host, e.Summary})
		}
		want := []row{
			{"compute1", "compute1 lost"},
			{"compute1", "a1 goes to compute2"},
			{"compute2", "reserved host compute2 taken into use"},
			{"compute1", "evacuating VM a1 to compute2"},
			{"compute1", "VM a1 moved to compute2 in 2s"},
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("incident events (-want +got):\n%s", diff)
		}
	})

	t.Run("a move that cannot be recorded leaves neither its row nor its event", func(t *testing.T) {
		driver, dsn := b.fresh(t)
		s := open(t, driver, dsn)
		in, err := s.OpenIncident(ctx, "compute1", Event{Time: t0, Summary: "compute1 lost"})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := in.StartMove(ctx, Move{VMID: "a1", To: strings.Repeat("h", 256)}); !errors.Is(err, ErrInvalid) {
			t.Errorf("StartMove to a host longer than the schema allows = %v, want ErrInvalid", err)
		}
		if err := in.FinishMove(ctx, 12345, MoveOutcome{Result: MoveSucceeded}); !errors.Is(err, ErrNotFound) {
			t.Errorf("FinishMove of an unknown move = %v, want ErrNotFound", err)
		}
		if n := countRows(t, s, "moves"); n != 0 {
			t.Errorf("moves has %d rows, want 0", n)
		}
		if n := countRows(t, s, "events"); n != 1 {
			t.Errorf("events has %d rows, want only the incident's opening", n)
		}
	})

	t.Run("a record without time or actor gets the store's clock and actor", func(t *testing.T) {
		driver, dsn := b.fresh(t)
		s := open(t, driver, dsn, WithClock(func() time.Time { return t0.Add(42 * time.Microsecond) }), WithActor("ctl-7/123"))
		e, err := s.RecordEvent(ctx, Event{Kind: KindConfig, Summary: "  started  ", Details: json.RawMessage("{ \"a\" : [1, 2] }")})
		if err != nil {
			t.Fatal(err)
		}
		want := Event{
			ID: e.ID, Time: t0.Add(42 * time.Microsecond), Kind: KindConfig, Summary: "started",
			Actor: "ctl-7/123", Details: json.RawMessage(`{"a":[1,2]}`),
		}
		if diff := cmp.Diff([]Event{want}, mustQuery(t, s, Filter{})); diff != "" {
			t.Errorf("stored event (-want +got):\n%s", diff)
		}
	})

	t.Run("bad input is refused with ErrInvalid and writes nothing", func(t *testing.T) {
		driver, dsn := b.fresh(t)
		s := open(t, driver, dsn)
		tooLong := strings.Repeat("h", 256)
		events := []struct {
			name string
			e    Event
		}{
			{"an event without a kind", Event{Summary: "x"}},
			{"an event of an unknown kind", Event{Kind: "reboot", Summary: "x"}},
			{"an event without a summary", Event{Kind: KindAlert, Summary: "   "}},
			{"an event whose details are not JSON", Event{Kind: KindAlert, Summary: "x", Details: json.RawMessage("{oops")}},
			{"an event whose host is longer than the schema allows", Event{Kind: KindAlert, Summary: "x", Host: tooLong}},
		}
		for _, tc := range events {
			if err := s.Record(ctx, tc.e); !errors.Is(err, ErrInvalid) {
				t.Errorf("Record(%s) = %v, want ErrInvalid", tc.name, err)
			}
		}
		if _, err := s.StartMove(ctx, Move{VMID: "vm"}); !errors.Is(err, ErrInvalid) {
			t.Errorf("StartMove without a source host = %v, want ErrInvalid", err)
		}
		if _, err := s.OpenIncident(ctx, " ", Event{Summary: "x"}); !errors.Is(err, ErrInvalid) {
			t.Errorf("OpenIncident without a host = %v, want ErrInvalid", err)
		}
		for _, f := range []Filter{{Limit: -1}, {Kind: "bogus"}, {Since: t0, Until: t0.Add(-time.Second)}} {
			if _, err := s.Query(ctx, f); !errors.Is(err, ErrInvalid) {
				t.Errorf("Query(%+v) = %v, want ErrInvalid", f, err)
			}
		}
		for _, table := range []string{"events", "moves", "incidents"} {
			if n := countRows(t, s, table); n != 0 {
				t.Errorf("%s has %d rows after refused writes, want 0", table, n)
			}
		}
	})
}

func TestSQLite(t *testing.T) {
	runSuite(t, sqliteBackend())
}

func TestSQLiteWritesFromManyGoroutinesAllLandAndAClosedStoreRefusesThem(t *testing.T) {
	ctx := context.Background()
	s, err := Open(ctx, "sqlite", filepath.Join(t.TempDir(), "h.db"))
	if err != nil {
		t.Fatal(err)
	}
	in, err := s.OpenIncident(ctx, "cmp1", Event{Kind: KindFailure, Summary: "cmp1 marked for evacuation"})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for i := range 50 {
		wg.Go(func() {
			id, err := in.StartMove(ctx, Move{VMID: fmt.Sprintf("vm-%02d", i), To: "cmp2"})
			if err == nil {
				err = in.RetryMove(ctx, id, "cmp3")
			}
			if err == nil {
				err = in.FinishMove(ctx, id, MoveOutcome{Result: MoveSucceeded})
			}
			if err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	moves := mustMoves(t, s, Filter{Incident: in.ID})
	if len(moves) != 50 {
		t.Fatalf("%d moves, want 50", len(moves))
	}
	for _, m := range moves {
		if m.Result != MoveSucceeded || m.Attempts != 2 || m.To != "cmp3" {
			t.Errorf("%+v: want succeeded on cmp3 after 2 attempts", m)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Record(ctx, Event{Kind: KindAlert, Summary: "after close"}); err == nil {
		t.Errorf("a closed store took a write")
	}
}
