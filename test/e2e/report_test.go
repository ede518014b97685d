//go:build e2e

package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// reportJSON is what this suite reads of `computeha report --format json`.
type reportJSON struct {
	VMs []struct {
		ID        string  `json:"id"`
		Project   string  `json:"project"`
		DowntimeS float64 `json:"downtime_s"`
		Outages   []struct {
			Incident  string    `json:"incident"`
			Host      string    `json:"host"`
			Detected  time.Time `json:"detected"`
			Recovered time.Time `json:"recovered"`
			Protected bool      `json:"protected"`
			DowntimeS float64   `json:"downtime_s"`
		} `json:"outages"`
	} `json:"vms"`
	Projects []struct {
		Key       string  `json:"key"`
		Outages   int     `json:"outages"`
		Recovered int     `json:"recovered"`
		DowntimeS float64 `json:"downtime_s"`
	} `json:"projects"`
	Hosts []struct {
		Key       string  `json:"key"`
		Recovered int     `json:"recovered"`
		DowntimeS float64 `json:"downtime_s"`
	} `json:"hosts"`
}

// Report runs `computeha report --format json` as an operator would.
func (e *Env) Report(ctx context.Context, args ...string) (reportJSON, error) {
	args = append([]string{"report", "--config", e.EvacdConfig(), "--format", "json"}, args...)
	out, err := exec.CommandContext(ctx, filepath.Join(e.Bin, "computeha"), args...).Output()
	if err != nil {
		if ee, ok := err.(*exec.ExitError); ok {
			return reportJSON{}, fmt.Errorf("computeha report: %w: %s", err, ee.Stderr)
		}
		return reportJSON{}, fmt.Errorf("computeha report: %w", err)
	}
	var r reportJSON
	if err := json.Unmarshal(out, &r); err != nil {
		return reportJSON{}, fmt.Errorf("computeha report: %w: %s", err, out)
	}
	return r, nil
}

// reportMatchesHistory checks `computeha report` after host's failure since
// since: every VM the daemon moved off host has one outage of that incident,
// from the incident's failure event to its move's end, with that downtime;
// the per-project and per-host totals add up to the VMs' downtimes.
func reportMatchesHistory(ctx context.Context, t *testing.T, env *Env, host string, since time.Time) {
	t.Helper()
	moves, err := env.HistoryMoves(ctx, host)
	if err != nil {
		t.Fatal(err)
	}
	events, err := env.History(ctx, host, "failure")
	if err != nil {
		t.Fatal(err)
	}
	opened := map[string]time.Time{}
	for _, ev := range events {
		at, err := time.Parse(time.RFC3339Nano, ev.Time)
		if err != nil {
			t.Fatalf("event time %q: %v", ev.Time, err)
		}
		if o, ok := opened[ev.Incident]; ev.Incident != "" && (!ok || at.Before(o)) {
			opened[ev.Incident] = at
		}
	}
	r, err := env.Report(ctx, "--host", host, "--since", since.UTC().Format(time.RFC3339))
	if err != nil {
		t.Fatal(err)
	}
	checked := 0
	for _, m := range moves {
		if m.From != host || m.Result != "succeeded" || m.Start.Before(since) {
			continue
		}
		checked++
		o, ok := opened[m.Incident]
		if !ok {
			t.Errorf("move of %s: no failure event of its incident %q", m.VMName, m.Incident)
			continue
		}
		found := false
		for _, v := range r.VMs {
			for _, out := range v.Outages {
				if v.ID != m.VMID || out.Incident != m.Incident {
					continue
				}
				found = true
				want := m.End.Sub(o).Seconds()
				if !out.Protected || !out.Detected.Equal(o) || !out.Recovered.Equal(m.End) || math.Abs(out.DowntimeS-want) > 1e-3 {
					t.Errorf("%s in the report: detected %s, recovered %s, down %.3fs, protected %v; the history says %s, %s, %.3fs",
						m.VMName, out.Detected, out.Recovered, out.DowntimeS, out.Protected, o, m.End, want)
				}
			}
		}
		if !found {
			t.Errorf("%s (moved in incident %s) is not in the report", m.VMName, m.Incident)
		}
	}
	if checked == 0 {
		t.Fatalf("no recovered move of %s since %s in the history", host, since)
	}
	var byVM, byProject, byHost float64
	for _, v := range r.VMs {
		byVM += v.DowntimeS
	}
	for _, p := range r.Projects {
		byProject += p.DowntimeS
	}
	recovered := 0
	for _, h := range r.Hosts {
		byHost += h.DowntimeS
		recovered += h.Recovered
	}
	if math.Abs(byVM-byProject) > 1e-3 || math.Abs(byVM-byHost) > 1e-3 || recovered < checked {
		t.Errorf("report totals: VMs %.3fs, projects %.3fs, hosts %.3fs, %d recovered (history: %d)", byVM, byProject, byHost, recovered, checked)
	}
	t.Logf("computeha report: %d VMs of %s, %.1f s of downtime in all, as the history's moves say", len(r.VMs), host, byVM)
}

// promBaseline is what the counters stood at before a recovery.
type promBaseline map[string]float64

// promCounters are the sums compared with the history.
var promCounters = []string{
	`sum(computeha_vm_recoveries_total{result="succeeded"})`,
	`sum(computeha_vm_recovery_duration_seconds_count)`,
	`sum(computeha_history_events_total{kind="decision",reason="fencing-confirmed"})`,
}

func (p *Prometheus) baseline(ctx context.Context, t *testing.T) promBaseline {
	t.Helper()
	b := promBaseline{}
	for _, q := range promCounters {
		v, err := p.Query(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		b[q] = v
	}
	return b
}

// prometheusMatchesHistory checks that a real Prometheus, scraping the daemon through the
// recovery of host since since, counted what the history recorded: the VMs recovered and timed,
// and one confirmed fencing; that no recovery is left in flight, and no recovery alert fires.
func prometheusMatchesHistory(ctx context.Context, t *testing.T, env *Env, p *Prometheus, before promBaseline, host string, since time.Time) {
	t.Helper()
	moves, err := env.HistoryMoves(ctx, host)
	if err != nil {
		t.Fatal(err)
	}
	succeeded := 0
	for _, m := range moves {
		if m.From == host && m.Result == "succeeded" && !m.Start.Before(since) {
			succeeded++
		}
	}
	events, err := env.History(ctx, host, "decision")
	if err != nil {
		t.Fatal(err)
	}
	confirmed := 0
	for _, ev := range events {
		if at, err := time.Parse(time.RFC3339Nano, ev.Time); err == nil && !at.Before(since) && ev.ReasonCode == "fencing-confirmed" {
			confirmed++
		}
	}
	want := map[string]float64{promCounters[0]: float64(succeeded), promCounters[1]: float64(succeeded), promCounters[2]: float64(confirmed)}
	got := map[string]float64{}
	// Scraped every second: give it a few to catch up with the end of the recovery.
	deadline := time.Now().Add(20 * time.Second)
	for {
		same := true
		for _, q := range promCounters {
			v, err := p.Query(ctx, q)
			if err != nil {
				t.Fatal(err)
			}
			got[q] = v - before[q]
			same = same && got[q] == want[q]
		}
		if same || time.Now().After(deadline) {
			break
		}
		time.Sleep(time.Second)
	}
	for _, q := range promCounters {
		if got[q] != want[q] {
			t.Errorf("Prometheus: %s rose by %v during the recovery; the history says %v", q, got[q], want[q])
		}
	}
	if succeeded == 0 || confirmed != 1 {
		t.Errorf("the history has %d recovered VMs and %d confirmed fencings of %s: the comparison proves nothing", succeeded, confirmed, host)
	}
	if v, err := p.Query(ctx, fmt.Sprintf(`count(computeha_recovery_phase{host=%q})`, host)); err != nil || v != 0 {
		t.Errorf("Prometheus still sees a recovery of %s in flight: %v, %v", host, v, err)
	}
	firing, err := p.Firing(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range firing {
		if strings.HasPrefix(a, "ComputehaRecovery") || strings.HasPrefix(a, "ComputehaFencing") || strings.HasPrefix(a, "ComputehaDaemonDown") {
			t.Errorf("alert %s fires after a recovery that succeeded", a)
		}
	}
	t.Logf("Prometheus counted %v recovered VMs and %v confirmed fencing, as the history says", got[promCounters[0]], got[promCounters[2]])
}
