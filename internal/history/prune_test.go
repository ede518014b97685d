package history

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"
)

func pruneSuite(t *testing.T, b backend) {
	ctx := context.Background()

	t.Run("closed incidents and loose records older than the cutoff go; open incidents and running moves stay", func(t *testing.T) {
		s := reportFixture(t, b)
		// Loose records: an old event and an old finished move of no incident, an old event of
		// an incident never recorded, a move of no incident still running, and recent ones.
		clk := func(at time.Time, e Event) Event { e.Time = at; return e }
		mustRecord(t, s,
			clk(t0.Add(-3*time.Hour), Event{Kind: KindConfig, Summary: "old config"}),
			clk(t0.Add(-3*time.Hour), Event{Kind: KindDecision, Summary: "old, unknown incident", Incident: "19990101T000000Z-00000000"}),
			clk(t0.Add(3*time.Hour), Event{Kind: KindConfig, Summary: "recent config"}),
		)
		old, err := s.StartMove(ctx, Move{VMID: "loose-old", From: "compute9", Start: t0.Add(-3 * time.Hour)})
		if err != nil {
			t.Fatal(err)
		}
		if err := s.FinishMove(ctx, old, MoveOutcome{Result: MoveSucceeded, End: t0.Add(-170 * time.Minute)}); err != nil {
			t.Fatal(err)
		}
		if _, err := s.StartMove(ctx, Move{VMID: "loose-running", From: "compute9", Start: t0.Add(-3 * time.Hour)}); err != nil {
			t.Fatal(err)
		}
		before, err := s.Report(ctx, ReportFilter{Since: t0, Until: t0.Add(10 * time.Hour)}, t0.Add(24*time.Hour))
		if err != nil {
			t.Fatal(err)
		}

		// Cutoff t0: incident D (closed t0-1h) goes; E closed at t0+11m, A, B and C (open) stay.
		p, err := s.Prune(ctx, t0)
		if err != nil {
			t.Fatal(err)
		}
		if p.Incidents != 1 || p.Moves != 2 || p.Events < 5 {
			t.Errorf("pruned %+v; want incident D, its move and loose-old, D's events and two loose events", p)
		}
		ins, err := s.Incidents(ctx, Filter{})
		if err != nil {
			t.Fatal(err)
		}
		if len(ins) != 4 {
			t.Errorf("%d incidents left, want 4 (E, A, B, C)", len(ins))
		}
		for _, m := range mustMoves(t, s, Filter{}) {
			if m.VMID == "vm5" || m.VMID == "loose-old" {
				t.Errorf("move of %s survived", m.VMID)
			}
		}
		if !slices.Contains(vmIDs(mustMoves(t, s, Filter{})), "loose-running") {
			t.Errorf("a running move was pruned")
		}
		for _, e := range mustQuery(t, s, Filter{Until: t0}) {
			if e.Incident == "" || e.Incident == "19990101T000000Z-00000000" {
				t.Errorf("loose event %q before the cutoff survived", e.Summary)
			}
		}
		after, err := s.Report(ctx, ReportFilter{Since: t0, Until: t0.Add(10 * time.Hour)}, t0.Add(24*time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		if fmt.Sprint(after.VMs) != fmt.Sprint(before.VMs) {
			t.Errorf("pruning before the window changed the report:\nbefore %+v\nafter  %+v", before.VMs, after.VMs)
		}

		// A cutoff far ahead keeps the open incident C, its running move and its failure event.
		if _, err := s.Prune(ctx, t0.Add(100*24*time.Hour)); err != nil {
			t.Fatal(err)
		}
		ins, _ = s.Incidents(ctx, Filter{})
		if len(ins) != 1 || ins[0].Host != "compute3" || !ins[0].Closed.IsZero() {
			t.Errorf("left after a late cutoff: %+v; want the open incident of compute3", ins)
		}
		if ids := vmIDs(mustMoves(t, s, Filter{})); len(ids) != 2 || !slices.Contains(ids, "vm4") || !slices.Contains(ids, "loose-running") {
			t.Errorf("moves left: %v; want vm4 and loose-running", ids)
		}
		if es := mustQuery(t, s, Filter{Incident: ins[0].ID}); len(es) == 0 {
			t.Errorf("the open incident lost its events")
		}
	})

	t.Run("more than a batch is pruned in several transactions", func(t *testing.T) {
		driver, dsn := b.fresh(t)
		s := open(t, driver, dsn)
		for i := range pruneBatch + 20 {
			in, err := s.OpenIncident(ctx, "compute1", Event{Time: t0.Add(time.Duration(i) * time.Second), Summary: "lost"})
			if err != nil {
				t.Fatal(err)
			}
			if err := in.Close(ctx, OutcomeRecovered, "", Reason{}); err != nil {
				t.Fatal(err)
			}
		}
		p, err := s.Prune(ctx, t0.Add(100*24*time.Hour))
		if err != nil || p.Incidents != pruneBatch+20 || countRows(t, s, "incidents") != 0 || countRows(t, s, "events") != 0 {
			t.Errorf("pruned %+v, %v; %d incidents and %d events left", p, err, countRows(t, s, "incidents"), countRows(t, s, "events"))
		}
	})

	t.Run("loose records go even when no incident is old enough", func(t *testing.T) {
		driver, dsn := b.fresh(t)
		s := open(t, driver, dsn)
		clk := func(at time.Time, e Event) Event { e.Time = at; return e }
		mustRecord(t, s,
			clk(t0.Add(-3*time.Hour), Event{Kind: KindConfig, Summary: "old config"}),
			clk(t0.Add(time.Hour), Event{Kind: KindConfig, Summary: "recent config"}),
		)
		old, err := s.StartMove(ctx, Move{VMID: "loose-old", From: "compute9", Start: t0.Add(-3 * time.Hour)})
		if err != nil {
			t.Fatal(err)
		}
		if err := s.FinishMove(ctx, old, MoveOutcome{Result: MoveSucceeded, End: t0.Add(-170 * time.Minute)}); err != nil {
			t.Fatal(err)
		}
		if _, err := s.OpenIncident(ctx, "compute1", clk(t0.Add(-4*time.Hour), Event{Kind: KindFailure, Summary: "open, old"})); err != nil {
			t.Fatal(err)
		}
		p, err := s.Prune(ctx, t0)
		if err != nil {
			t.Fatal(err)
		}
		if p != (Pruned{Events: 1, Moves: 1}) {
			t.Errorf("pruned %+v, want the old loose event and move (the open incident stays)", p)
		}
	})

	t.Run("a zero cutoff is refused", func(t *testing.T) {
		driver, dsn := b.fresh(t)
		s := open(t, driver, dsn)
		if _, err := s.Prune(ctx, time.Time{}); !errors.Is(err, ErrInvalid) {
			t.Errorf("zero cutoff: %v", err)
		}
	})
}

func TestPruneSQLite(t *testing.T) { pruneSuite(t, sqliteBackend()) }
