package history

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"math"
	"strings"
	"sync"
	"testing"
	"time"
)

// settable is a clock the test sets before each write.
type settable struct {
	mu sync.Mutex
	t  time.Time
}

func (c *settable) set(t time.Time) { c.mu.Lock(); c.t = t; c.mu.Unlock() }

func (c *settable) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }

// reportFixture writes six host failures around the window [t0, t0+10h):
//
//	D compute1 t0-2h   vm5 evacuated at t0-1h, closed t0-1h   (before the window)
//	E compute1 t0-30m  vm6 (p1) evacuated at t0+10m           (clipped to 10m; MTTR 40m)
//	A compute1 t0+1h   vm1 (p1) evacuated after 60s; vm2 (p2) failed, asked again,
//	                   evacuated after 120s; vm3 (p1) not protected; closed +130s
//	B compute2 t0+5h   vm1 failed after 30s; closed t0+6h     (down 1h, unrecovered)
//	C compute3 t0+9h   vm4 (p2) still running                 (down to the window's end)
func reportFixture(t *testing.T, b backend) *Store {
	t.Helper()
	ctx := context.Background()
	clk := &settable{}
	driver, dsn := b.fresh(t)
	s := open(t, driver, dsn, WithClock(clk.now))
	incident := func(host string, at time.Time) *Incident {
		t.Helper()
		in, err := s.OpenIncident(ctx, host, Event{Time: at, Summary: host + " lost"})
		if err != nil {
			t.Fatal(err)
		}
		return in
	}
	move := func(in *Incident, vm, project, method string, start, end time.Time, res MoveResult) {
		t.Helper()
		id, err := in.StartMove(ctx, Move{VMID: vm, VMName: "n-" + vm, Project: project, Method: method, Start: start})
		if err != nil {
			t.Fatal(err)
		}
		if res == MoveRunning {
			return
		}
		if err := in.FinishMove(ctx, id, MoveOutcome{Result: res, To: "target", End: end}); err != nil {
			t.Fatal(err)
		}
	}
	closeAt := func(in *Incident, at time.Time) {
		t.Helper()
		clk.set(at)
		if err := in.Close(ctx, OutcomeRecovered, "", Reason{}); err != nil {
			t.Fatal(err)
		}
	}
	h, m, sec := time.Hour, time.Minute, time.Second

	d := incident("compute1", t0.Add(-2*h))
	move(d, "vm5", "p1", "evacuate", t0.Add(-2*h+sec), t0.Add(-h), MoveSucceeded)
	closeAt(d, t0.Add(-h))

	e := incident("compute1", t0.Add(-30*m))
	move(e, "vm6", "p1", "", t0.Add(-29*m), t0.Add(10*m), MoveSucceeded)
	closeAt(e, t0.Add(11*m))

	a := incident("compute1", t0.Add(h))
	move(a, "vm1", "p1", "evacuate", t0.Add(h+sec), t0.Add(h+60*sec), MoveSucceeded)
	move(a, "vm2", "p2", "evacuate", t0.Add(h+sec), t0.Add(h+30*sec), MoveFailed)
	move(a, "vm2", "p2", "evacuate", t0.Add(h+40*sec), t0.Add(h+120*sec), MoveSucceeded)
	move(a, "vm3", "p1", "none", t0.Add(h+sec), t0.Add(h+sec), MoveSkipped)
	closeAt(a, t0.Add(h+130*sec))

	bb := incident("compute2", t0.Add(5*h))
	move(bb, "vm1", "p1", "evacuate", t0.Add(5*h+sec), t0.Add(5*h+30*sec), MoveFailed)
	closeAt(bb, t0.Add(6*h))

	c := incident("compute3", t0.Add(9*h))
	move(c, "vm4", "p2", "restart", t0.Add(9*h+sec), time.Time{}, MoveRunning)
	return s
}

func vmByID(r Report, id string) (VMAvailability, bool) {
	for _, v := range r.VMs {
		if v.VMID == id {
			return v, true
		}
	}
	return VMAvailability{}, false
}

func totalsByKey(ts []Totals, key string) Totals {
	for _, t := range ts {
		if t.Key == key {
			return t
		}
	}
	return Totals{}
}

func near(a, b float64) bool { return math.Abs(a-b) < 1e-6 }

func reportSuite(t *testing.T, b backend) {
	ctx := context.Background()
	s := reportFixture(t, b)
	window := ReportFilter{Since: t0, Until: t0.Add(10 * time.Hour)}
	now := t0.Add(24 * time.Hour)

	t.Run("each VM's downtime runs from detection to running again, clipped to the window", func(t *testing.T) {
		r, err := s.Report(ctx, window, now)
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := vmByID(r, "vm5"); ok {
			t.Errorf("vm5's outage ended before the window and is reported")
		}
		want := map[string]struct {
			downtime    time.Duration
			outages     int
			unrecovered bool
		}{
			"vm1": {time.Minute + time.Hour, 2, true}, // 60s in A; B's failure counts until B was closed
			"vm2": {2 * time.Minute, 1, false},        // two rows, one outage, ended by the success
			"vm3": {0, 1, false},                      // not protected: not counted
			"vm4": {time.Hour, 1, true},               // still running at the window's end
			"vm6": {10 * time.Minute, 1, false},       // detected before the window
		}
		if len(r.VMs) != len(want) {
			t.Errorf("%d VMs reported, want %d: %+v", len(r.VMs), len(want), r.VMs)
		}
		for id, w := range want {
			v, ok := vmByID(r, id)
			if !ok {
				t.Errorf("%s missing", id)
				continue
			}
			wantAvail := 100 * (1 - w.downtime.Seconds()/(10*time.Hour).Seconds())
			if v.Downtime != w.downtime || len(v.Outages) != w.outages || v.Unrecovered != w.unrecovered || !near(v.Availability, wantAvail) {
				t.Errorf("%s: downtime %s, %d outages, unrecovered %v, %.4f%%; want %s, %d, %v, %.4f%%",
					id, v.Downtime, len(v.Outages), v.Unrecovered, v.Availability, w.downtime, w.outages, w.unrecovered, wantAvail)
			}
		}
		if v, _ := vmByID(r, "vm3"); v.Outages[0].Protected() || v.Outages[0].Method != "none" {
			t.Errorf("vm3's outage: %+v", v.Outages[0])
		}
		if v, _ := vmByID(r, "vm6"); v.Outages[0].Method != "evacuate" || v.Outages[0].Recovered != t0.Add(10*time.Minute) {
			t.Errorf("vm6's outage (a move without method is an evacuation): %+v", v.Outages[0])
		}
	})

	t.Run("per project and per failed host the totals add up and MTTR is the whole repair time", func(t *testing.T) {
		r, err := s.Report(ctx, window, now)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range []struct {
			got, want Totals
		}{
			{totalsByKey(r.Projects, "p1"), Totals{
				Key: "p1", VMs: 3, Incidents: 3, Outages: 3, Recovered: 2, Skipped: 1,
				Downtime: time.Minute + time.Hour + 10*time.Minute, MTTR: (time.Minute + 40*time.Minute) / 2,
			}},
			{totalsByKey(r.Projects, "p2"), Totals{
				Key: "p2", VMs: 2, Incidents: 2, Outages: 2, Recovered: 1,
				Downtime: 2*time.Minute + time.Hour, MTTR: 2 * time.Minute,
			}},
			{totalsByKey(r.Hosts, "compute1"), Totals{
				Key: "compute1", VMs: 4, Incidents: 2, Outages: 3, Recovered: 3, Skipped: 1,
				Downtime: time.Minute + 2*time.Minute + 10*time.Minute, MTTR: (time.Minute + 2*time.Minute + 40*time.Minute) / 3,
			}},
			{totalsByKey(r.Hosts, "compute2"), Totals{Key: "compute2", VMs: 1, Incidents: 1, Outages: 1, Downtime: time.Hour}},
			{totalsByKey(r.Hosts, "compute3"), Totals{Key: "compute3", VMs: 1, Incidents: 1, Outages: 1, Downtime: time.Hour}},
		} {
			if c.got != c.want {
				t.Errorf("totals:\n got %+v\nwant %+v", c.got, c.want)
			}
		}
		var byVM, byProject, byHost time.Duration
		for _, v := range r.VMs {
			byVM += v.Downtime
		}
		for _, p := range r.Projects {
			byProject += p.Downtime
		}
		for _, h := range r.Hosts {
			byHost += h.Downtime
		}
		if byVM != byProject || byVM != byHost {
			t.Errorf("downtime by VM %s, by project %s, by host %s: they must add up alike", byVM, byProject, byHost)
		}
	})

	t.Run("a project or a failed host narrows the report", func(t *testing.T) {
		r, err := s.Report(ctx, ReportFilter{Since: window.Since, Until: window.Until, Project: "p2"}, now)
		if err != nil {
			t.Fatal(err)
		}
		if len(r.VMs) != 2 || r.VMs[0].VMID != "vm2" || r.VMs[1].VMID != "vm4" || len(r.Projects) != 1 {
			t.Errorf("project p2: %+v", r.VMs)
		}
		r, err = s.Report(ctx, ReportFilter{Since: window.Since, Until: window.Until, Host: "compute2"}, now)
		if err != nil {
			t.Fatal(err)
		}
		if len(r.VMs) != 1 || r.VMs[0].VMID != "vm1" || len(r.VMs[0].Outages) != 1 || r.VMs[0].Downtime != time.Hour {
			t.Errorf("failures of compute2: %+v", r.VMs)
		}
	})

	t.Run("without until the window ends now, and an outage still running counts until now", func(t *testing.T) {
		r, err := s.Report(ctx, ReportFilter{Since: t0}, t0.Add(9*time.Hour+30*time.Minute))
		if err != nil {
			t.Fatal(err)
		}
		if v, _ := vmByID(r, "vm4"); v.Downtime != 30*time.Minute || !r.Until.Equal(t0.Add(9*time.Hour+30*time.Minute)) {
			t.Errorf("vm4 down %s until %s", v.Downtime, r.Until)
		}
		r, err = s.Report(ctx, ReportFilter{}, t0.Add(time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		if !r.Since.Equal(t0.Add(time.Hour - DefaultReportWindow)) {
			t.Errorf("default since: %s", r.Since)
		}
	})

	t.Run("an empty or reversed window is refused", func(t *testing.T) {
		for _, f := range []ReportFilter{{Since: t0, Until: t0}, {Since: t0.Add(time.Hour), Until: t0}} {
			if _, err := s.Report(ctx, f, now); !errors.Is(err, ErrInvalid) {
				t.Errorf("%+v: %v, want ErrInvalid", f, err)
			}
		}
	})

	t.Run("table, CSV and JSON say the same", func(t *testing.T) {
		r, err := s.Report(ctx, window, now)
		if err != nil {
			t.Fatal(err)
		}
		var tab, cs, js bytes.Buffer
		for _, c := range []struct {
			buf *bytes.Buffer
			f   Format
		}{{&tab, FormatTable}, {&cs, FormatCSV}, {&js, FormatJSON}} {
			if err := RenderReport(c.buf, r, c.f); err != nil {
				t.Fatal(err)
			}
		}
		for _, want := range []string{
			"5 VM(s) had an outage", "vm1", "89.8333%", "not protected (none)", "restart running",
			"evacuate failed", "FAILED HOST", "compute3", "20m30s",
		} {
			if !strings.Contains(tab.String(), want) {
				t.Errorf("table lacks %q:\n%s", want, tab.String())
			}
		}
		rows, err := csv.NewReader(&cs).ReadAll()
		if err != nil || len(rows) != 1+5+2+3 {
			t.Fatalf("csv: %d rows, %v:\n%s", len(rows), err, cs.String())
		}
		if got := strings.Join(rows[1], ","); got != "vm,vm1,n-vm1,p1,2,2,1,0,3660.000,89.8333," {
			t.Errorf("csv row of vm1: %s", got)
		}
		var j struct {
			VMs []struct {
				ID        string  `json:"id"`
				DowntimeS float64 `json:"downtime_s"`
				Outages   []struct {
					Protected bool `json:"protected"`
				} `json:"outages"`
			} `json:"vms"`
			Projects []struct {
				Key   string  `json:"key"`
				MTTRS float64 `json:"mttr_s"`
			} `json:"projects"`
		}
		if err := json.Unmarshal(js.Bytes(), &j); err != nil {
			t.Fatalf("json: %v\n%s", err, js.String())
		}
		if len(j.VMs) != 5 || j.VMs[0].ID != "vm1" || j.VMs[0].DowntimeS != 3660 || j.Projects[0].MTTRS != 1230 {
			t.Errorf("json: %+v", j)
		}
		if _, err := ParseReportFormat("xml"); !errors.Is(err, ErrInvalid) {
			t.Errorf("format xml: %v", err)
		}
	})
}

func TestReportSQLite(t *testing.T) { reportSuite(t, sqliteBackend()) }
