// Command report measures `computeha report` over a large history: a SQLite
// history is filled with host failures (each with its VMs' moves, a few
// failed or not protected, the rest recovered), then the report of the
// whole window is run as an operator runs it, and timed against its target.
// For scale, `computeha history` listing the same moves is timed in the
// same run: the cost of reading those rows at all. It exits 1 on a miss.
//
//	go run ./test/bench/report -bin bin -incidents 10000
package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/computeha/computeha/internal/history"
)

func main() {
	bin := flag.String("bin", "bin", "directory of computeha (make build)")
	incidents := flag.Int("incidents", 10000, "host failures in the history")
	vms := flag.Int("vms", 3, "VMs moved per failure")
	runs := flag.Int("runs", 3, "timed runs of each command (the median counts)")
	target := flag.Duration("target", time.Second, "largest acceptable median of the report")
	flag.Parse()
	if err := run(*bin, *incidents, *vms, *runs, *target); err != nil {
		fmt.Fprintln(os.Stderr, "report:", err)
		os.Exit(1)
	}
}

func run(bin string, incidents, vms, runs int, target time.Duration) error {
	if incidents < 1 || vms < 1 || runs < 1 {
		return fmt.Errorf("-incidents, -vms and -runs must be at least 1")
	}
	dir, err := os.MkdirTemp("", "computeha-bench-report-")
	if err != nil {
		return err
	}
	if keep := os.Getenv("REPORT_BENCH_KEEP"); keep != "" {
		dir = keep
	} else {
		defer os.RemoveAll(dir)
	}
	db := filepath.Join(dir, "history.db")
	t0 := time.Now()
	end, err := seed(db, incidents, vms)
	if err != nil {
		return err
	}
	fmt.Printf("history: %d host failures, %d moves, written in %s\n", incidents, incidents*vms, time.Since(t0).Round(time.Millisecond))
	cfg := filepath.Join(dir, "evacd.yaml")
	if err := os.WriteFile(cfg, []byte("cloud: x\nsegments: {s: {hosts: [a, b]}}\nhistory: {driver: sqlite, dsn: "+db+"}\n"), 0o600); err != nil {
		return err
	}
	window := []string{"--since", end.Add(-60 * 24 * time.Hour).Format(time.RFC3339), "--until", end.Add(time.Hour).Format(time.RFC3339)}
	computeha := filepath.Join(bin, "computeha")
	report, out, err := median(runs, computeha, append([]string{"report", "--config", cfg, "--format", "json"}, window...))
	if err != nil {
		return err
	}
	if n := strings.Count(out, `"incident"`); n != incidents*vms {
		return fmt.Errorf("the report lists %d outages, want %d", n, incidents*vms)
	}
	reference, _, err := median(runs, computeha, append([]string{"history", "--config", cfg, "--kind", "move", "--json"}, window...))
	if err != nil {
		return err
	}
	verdict := "ok"
	if report > target {
		verdict = "MISSED"
	}
	fmt.Printf("report over %d failures: median %s (target ≤ %s) %s; reference, the history of the same moves: %s (report/reference %.2f)\n",
		incidents, report.Round(time.Millisecond), target, verdict, reference.Round(time.Millisecond), report.Seconds()/reference.Seconds())
	if report > target {
		return fmt.Errorf("the report took %s, over its target of %s", report.Round(time.Millisecond), target)
	}
	return nil
}

// seed writes the history and returns the time of its last failure.
func seed(db string, incidents, vms int) (time.Time, error) {
	ctx := context.Background()
	var now time.Time
	s, err := history.Open(ctx, "sqlite", db+"?_pragma=synchronous(OFF)",
		history.WithLogger(slog.New(slog.DiscardHandler)), history.WithClock(func() time.Time { return now }))
	if err != nil {
		return time.Time{}, err
	}
	defer s.Close()
	start := time.Now().Add(-30 * 24 * time.Hour).UTC().Truncate(time.Second)
	step := 30 * 24 * time.Hour / time.Duration(incidents)
	for i := range incidents {
		opened := start.Add(time.Duration(i) * step)
		now = opened
		in, err := s.OpenIncident(ctx, fmt.Sprintf("compute%d", i%100), history.Event{Summary: "lost"})
		if err != nil {
			return time.Time{}, err
		}
		for v := range vms {
			n := i*vms + v
			id, err := in.StartMove(ctx, history.Move{
				VMID: fmt.Sprintf("vm-%d", n%5000), VMName: fmt.Sprintf("vm%d", n%5000),
				Project: fmt.Sprintf("project%d", n%200), Start: opened.Add(2 * time.Second),
			})
			if err != nil {
				return time.Time{}, err
			}
			out := history.MoveOutcome{Result: history.MoveSucceeded, To: "compute-spare", End: opened.Add(time.Duration(20+n%40) * time.Second)}
			switch n % 100 {
			case 7:
				out = history.MoveOutcome{Result: history.MoveFailed, Error: "no valid host", End: out.End}
			case 13, 14:
				out = history.MoveOutcome{Result: history.MoveSkipped, End: opened.Add(2 * time.Second)}
			}
			if err := in.FinishMove(ctx, id, out); err != nil {
				return time.Time{}, err
			}
		}
		now = opened.Add(time.Minute)
		if err := in.Close(ctx, history.OutcomeRecovered, "", history.Reason{}); err != nil {
			return time.Time{}, err
		}
	}
	return now, nil
}

// median runs the command runs times and returns the median time and the
// output of the last run.
func median(runs int, name string, args []string) (time.Duration, string, error) {
	var times []time.Duration
	var out bytes.Buffer
	for range runs {
		out.Reset()
		var errb bytes.Buffer
		cmd := exec.Command(name, args...)
		cmd.Stdout, cmd.Stderr = &out, &errb
		t := time.Now()
		if err := cmd.Run(); err != nil {
			return 0, "", fmt.Errorf("%s %s: %w: %s", filepath.Base(name), args[0], err, errb.String())
		}
		times = append(times, time.Since(t))
	}
	slices.Sort(times)
	return times[len(times)/2], out.String(), nil
}
