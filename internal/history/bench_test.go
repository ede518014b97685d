package history

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"testing"
	"time"
)

// benchStore opens a fresh SQLite history with the given DSN parameters.
func benchStore(b *testing.B, params string) *Store {
	b.Helper()
	dsn := filepath.Join(b.TempDir(), "history.db") + params
	s, err := Open(context.Background(), "sqlite", dsn, WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = s.Close() })
	return s
}

func benchEvent(i int) Event {
	return Event{
		Host: fmt.Sprintf("compute%d", i%100), Kind: KindDecision, Summary: fmt.Sprintf("decision %d", i),
		Reason: Reason{Code: "fenced-and-down", Text: "host fenced and nova service down"}, Incident: "20260301T100000Z-9f86d081",
	}
}

// BenchmarkRecord measures durable appends, one committed transaction per
// event, with the default synchronous=FULL and with NORMAL for comparison.
func BenchmarkRecord(b *testing.B) {
	for _, tc := range []struct{ name, params string }{
		{"synchronous=FULL(default)", ""},
		{"synchronous=NORMAL", "?_pragma=synchronous(NORMAL)"},
	} {
		b.Run(tc.name, func(b *testing.B) {
			s := benchStore(b, tc.params)
			ctx := context.Background()
			i := 0
			start := time.Now()
			for b.Loop() {
				if err := s.Record(ctx, benchEvent(i)); err != nil {
					b.Fatal(err)
				}
				i++
			}
			b.ReportMetric(float64(i)/time.Since(start).Seconds(), "events/s")
		})
	}
}

// BenchmarkQueryByHost records 10,000 events over 100 hosts (reporting how
// long that took), then measures queries for one host's 100 events.
func BenchmarkQueryByHost(b *testing.B) {
	s := benchStore(b, "")
	ctx := context.Background()
	const n = 10_000
	start := time.Now()
	for i := range n {
		if err := s.Record(ctx, benchEvent(i)); err != nil {
			b.Fatal(err)
		}
	}
	fill := time.Since(start)

	i := 0
	start = time.Now()
	for b.Loop() {
		es, err := s.Query(ctx, Filter{Host: fmt.Sprintf("compute%d", i%100)})
		if err != nil {
			b.Fatal(err)
		}
		if len(es) != n/100 {
			b.Fatalf("query returned %d events, want %d", len(es), n/100)
		}
		i++
	}
	b.ReportMetric(float64(i)/time.Since(start).Seconds(), "queries/s")
	// Reported after the loop: b.Loop resets metrics reported before it.
	b.ReportMetric(n/fill.Seconds(), "fill-events/s")
}
