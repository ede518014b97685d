package history

import (
	"cmp"
	"context"
	"database/sql"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

// ReportFilter selects what an availability report covers.
type ReportFilter struct {
	Since, Until time.Time // the window; Until zero means now, Since zero means Until less 30 days
	Project      string    // only VMs of this project
	Host         string    // only failures of this host (the host that failed, not a target)
}

// DefaultReportWindow is the window of a report without Since.
const DefaultReportWindow = 30 * 24 * time.Hour

// Outage is one VM's unavailability caused by one host failure: from the
// failure's detection (the incident's opening) until the VM ran again
// (its move's end), as far as it falls in the report's window.
type Outage struct {
	Incident string
	Host     string    // the host that failed
	Detected time.Time // the incident's opening
	// Recovered is when the VM was ACTIVE again (its move succeeded); zero
	// while it was not by the end of the window.
	Recovered time.Time
	// Closed is when the incident was closed; zero while open. A VM whose
	// recovery failed counts as down until then (an operator's clear or a
	// later recovery closes it), or until the window's end while it is open.
	Closed time.Time
	Method string     // how it was recovered (evacuate, restart, recreate, ...)
	Result MoveResult // succeeded, failed, running, or skipped (not protected)
	To     string
	// Downtime is the part of [Detected, Recovered, else Closed, else the window's end) in
	// the window. A skipped VM was not protected by computeha: how long it
	// stayed down is unknown here, and its downtime is zero and not counted.
	Downtime time.Duration
}

// Protected reports whether computeha tried to recover the VM.
func (o Outage) Protected() bool { return o.Result != MoveSkipped }

// VMAvailability is one VM's availability over the window.
type VMAvailability struct {
	VMID, Name, Project string
	Outages             []Outage
	Downtime            time.Duration // of the protected outages
	// Availability is the share of the window the VM was not down in a
	// protected outage, in percent.
	Availability float64
	// Unrecovered is true when computeha did not run the VM again after one
	// of its outages (its recovery failed, or had not ended by the window's end).
	Unrecovered bool
	// Incidents, Recovered and Skipped count the VM's host failures, its protected outages
	// that ended running again, and those it was not protected in.
	Incidents, Recovered, Skipped int
}

// Totals sum the outages of a project or of a failed host.
type Totals struct {
	Key       string // project id or host name
	VMs       int    // distinct VMs with an outage
	Incidents int    // distinct host failures
	Outages   int    // protected outages
	Recovered int    // protected outages that ended within the window
	Skipped   int    // VMs of those failures computeha did not protect
	Downtime  time.Duration
	// MTTR is the mean time from detection to running again of the
	// recovered outages (whole, not clipped to the window); zero without any.
	MTTR time.Duration
}

// Report is the availability report over a window.
type Report struct {
	Since, Until time.Time
	Project      string
	Host         string
	VMs          []VMAvailability // by VM id
	Projects     []Totals         // by project id
	Hosts        []Totals         // by host name
}

// Report computes the availability of every VM that one of the host
// failures recorded in the history made unavailable during the window. It
// reads only the database, so it is the same whichever daemon recorded the
// failures and however often they restarted. now ends an open window and
// the outages still running.
func (s *Store) Report(ctx context.Context, f ReportFilter, now time.Time) (Report, error) {
	now = now.UTC().Truncate(time.Microsecond)
	r := Report{Since: f.Since.UTC(), Until: f.Until.UTC(), Project: f.Project, Host: f.Host}
	if r.Until.IsZero() || r.Until.After(now) {
		r.Until = now
	}
	if r.Since.IsZero() {
		r.Since = r.Until.Add(-DefaultReportWindow)
	}
	if !r.Since.Before(r.Until) {
		return Report{}, fmt.Errorf("%w: the report's window is empty (since %s, until %s)", ErrInvalid,
			r.Since.Format(time.RFC3339), r.Until.Format(time.RFC3339))
	}
	outages, err := s.outages(ctx, r)
	if err != nil {
		return Report{}, err
	}
	r.build(outages)
	return r, nil
}

// reportMove is a move with its incident's host and opening.
type reportMove struct {
	Move
	host           string
	opened, closed time.Time
}

// outages reads the moves of the incidents that overlap the window (opened
// before its end, not closed before its start), one per VM and incident.
func (s *Store) outages(ctx context.Context, r Report) ([]reportMove, error) {
	// Only what the report shows: a year of a large cloud's moves is many rows.
	q := `SELECT m.incident, m.vm_id, m.vm_name, m.project, m.to_host,
		m.start_us, m.end_us, m.result, m.method, i.host, i.opened_us, i.closed_us
		FROM moves m JOIN incidents i ON m.incident = i.id
		WHERE i.opened_us < ? AND (i.closed_us IS NULL OR i.closed_us >= ?)`
	args := []any{micro(r.Until), micro(r.Since)}
	if r.Host != "" {
		q += " AND i.host = ?"
		args = append(args, r.Host)
	}
	if r.Project != "" {
		q += " AND m.project = ?"
		args = append(args, r.Project)
	}
	q += " ORDER BY i.opened_us, m.incident, m.vm_id, m.start_us, m.id"
	ctx, cancel := s.bound(ctx)
	defer cancel()
	rows, err := s.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("report: %w", err)
	}
	defer func() { _ = rows.Close() }()
	var out []reportMove
	for rows.Next() {
		var (
			m      reportMove
			start  int64
			end    sql.NullInt64
			result string
			opened int64
			closed sql.NullInt64
		)
		if err := rows.Scan(&m.Incident, &m.VMID, &m.VMName, &m.Project, &m.To,
			&start, &end, &result, &m.Method, &m.host, &opened, &closed); err != nil {
			return nil, fmt.Errorf("report: %w", err)
		}
		m.Start, m.Result, m.opened = fromMicro(start), MoveResult(result), fromMicro(opened)
		if end.Valid {
			m.End = fromMicro(end.Int64)
		}
		if closed.Valid {
			m.closed = fromMicro(closed.Int64)
		}
		// One outage per VM and incident: a VM asked for again in the same
		// incident has several rows; a success ends the outage, else the last.
		if n := len(out); n > 0 && out[n-1].Incident == m.Incident && out[n-1].VMID == m.VMID {
			if out[n-1].Result != MoveSucceeded {
				out[n-1] = m
			}
			continue
		}
		out = append(out, m)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("report: %w", err)
	}
	return out, nil
}

// build turns the outages into the per-VM, per-project and per-host views.
func (r *Report) build(moves []reportMove) {
	window := r.Until.Sub(r.Since)
	vms := map[string]*VMAvailability{}
	type acc struct {
		t         Totals
		vms       map[string]bool
		incidents map[string]bool
		repaired  time.Duration
	}
	projects, hosts := map[string]*acc{}, map[string]*acc{}
	get := func(m map[string]*acc, k string) *acc {
		if a, ok := m[k]; ok {
			return a
		}
		a := &acc{t: Totals{Key: k}, vms: map[string]bool{}, incidents: map[string]bool{}}
		m[k] = a
		return a
	}
	for _, m := range moves {
		o := Outage{
			Incident: m.Incident, Host: m.host, Detected: m.opened, Closed: m.closed,
			Method: m.Method, Result: m.Result, To: m.To,
		}
		if o.Method == "" {
			o.Method = "evacuate"
		}
		end := r.Until
		switch {
		case m.Result == MoveSucceeded && !m.End.IsZero() && m.End.Before(r.Until):
			o.Recovered, end = m.End, m.End
		case m.Result != MoveSucceeded && !m.closed.IsZero() && m.closed.Before(r.Until):
			end = m.closed
		}
		if !end.After(r.Since) {
			continue // over before the window began
		}
		if o.Protected() {
			o.Downtime = max(0, end.Sub(maxTime(o.Detected, r.Since)))
		}
		vm := vms[m.VMID]
		if vm == nil {
			vm = &VMAvailability{VMID: m.VMID, Name: m.VMName, Project: m.Project}
			vms[m.VMID] = vm
		}
		if len(vm.Outages) == 0 || vm.Outages[len(vm.Outages)-1].Incident != o.Incident {
			vm.Incidents++
		}
		switch {
		case !o.Protected():
			vm.Skipped++
		case !o.Recovered.IsZero():
			vm.Recovered++
		}
		vm.Outages = append(vm.Outages, o)
		vm.Downtime += o.Downtime
		if o.Protected() && o.Recovered.IsZero() {
			vm.Unrecovered = true
		}
		for _, a := range []*acc{get(projects, m.Project), get(hosts, m.host)} {
			a.vms[m.VMID], a.incidents[m.Incident] = true, true
			if !o.Protected() {
				a.t.Skipped++
				continue
			}
			a.t.Outages++
			a.t.Downtime += o.Downtime
			if !o.Recovered.IsZero() {
				a.t.Recovered++
				a.repaired += o.Recovered.Sub(o.Detected)
			}
		}
	}
	for _, vm := range vms {
		vm.Availability = 100 * (1 - float64(min(vm.Downtime, window))/float64(window))
		r.VMs = append(r.VMs, *vm)
	}
	slices.SortFunc(r.VMs, func(a, b VMAvailability) int { return cmp.Compare(a.VMID, b.VMID) })
	totals := func(m map[string]*acc) []Totals {
		out := make([]Totals, 0, len(m))
		for _, a := range m {
			a.t.VMs, a.t.Incidents = len(a.vms), len(a.incidents)
			if a.t.Recovered > 0 {
				a.t.MTTR = a.repaired / time.Duration(a.t.Recovered)
			}
			out = append(out, a.t)
		}
		slices.SortFunc(out, func(a, b Totals) int { return strings.Compare(a.Key, b.Key) })
		return out
	}
	r.Projects, r.Hosts = totals(projects), totals(hosts)
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// FormatCSV is comma-separated values with a header, for spreadsheets (reports only).
const FormatCSV Format = "csv"

// ParseReportFormat checks a report's --format value.
func ParseReportFormat(s string) (Format, error) {
	switch f := Format(strings.ToLower(strings.TrimSpace(s))); f {
	case "", FormatTable:
		return FormatTable, nil
	case FormatCSV, FormatJSON:
		return f, nil
	}
	return "", fmt.Errorf("%w: unknown report format %q (want table, csv or json)", ErrInvalid, s)
}

// RenderReport writes r in format.
func RenderReport(w io.Writer, r Report, format Format) error {
	switch format {
	case FormatTable, "":
		return reportTable(w, r)
	case FormatCSV:
		return reportCSV(w, r)
	case FormatJSON:
		return reportJSON(w, r)
	}
	return fmt.Errorf("%w: unknown report format %q (want table, csv or json)", ErrInvalid, format)
}

// how says how the VM's last outage ended.
func (v VMAvailability) how() string {
	o := v.Outages[len(v.Outages)-1]
	switch {
	case !o.Protected():
		return "not protected (" + o.Method + ")"
	case !o.Recovered.IsZero():
		return o.Method + " to " + dash(o.To)
	case o.Result == MoveRunning:
		return o.Method + " running"
	}
	return o.Method + " " + string(o.Result)
}

func seconds(d time.Duration) string { return strconv.FormatFloat(d.Seconds(), 'f', 3, 64) }

func percent(p float64) string { return strconv.FormatFloat(p, 'f', 4, 64) }

func reportTable(w io.Writer, r Report) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "Availability from %s to %s UTC (%s)", r.Since.Format(time.DateTime), r.Until.Format(time.DateTime),
		r.Until.Sub(r.Since).Round(time.Second))
	if r.Project != "" {
		fmt.Fprintf(tw, ", project %s", cell(r.Project))
	}
	if r.Host != "" {
		fmt.Fprintf(tw, ", failures of %s", cell(r.Host))
	}
	fmt.Fprintf(tw, ": %d VM(s) had an outage\n", len(r.VMs))
	if len(r.VMs) == 0 {
		return tw.Flush()
	}
	fmt.Fprintln(tw, "\nVM\tNAME\tPROJECT\tOUTAGES\tDOWNTIME\tAVAILABILITY\tLAST RECOVERY")
	for _, v := range r.VMs {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%s%%\t%s\n", cell(v.VMID), dash(cell(v.Name)), dash(cell(v.Project)),
			len(v.Outages), v.Downtime.Round(time.Millisecond), percent(v.Availability), cell(v.how()))
	}
	for _, sec := range []struct {
		title string
		rows  []Totals
	}{{"PROJECT", r.Projects}, {"FAILED HOST", r.Hosts}} {
		fmt.Fprintf(tw, "\n%s\tVMS\tINCIDENTS\tOUTAGES\tRECOVERED\tNOT PROTECTED\tDOWNTIME\tMTTR\n", sec.title)
		for _, t := range sec.rows {
			mttr := "-"
			if t.Recovered > 0 {
				mttr = t.MTTR.Round(time.Millisecond).String()
			}
			fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%d\t%s\t%s\n", dash(cell(t.Key)), t.VMs, t.Incidents, t.Outages,
				t.Recovered, t.Skipped, t.Downtime.Round(time.Millisecond), mttr)
		}
	}
	return tw.Flush()
}

func reportCSV(w io.Writer, r Report) error {
	cw := csv.NewWriter(w)
	_ = cw.Write([]string{
		"section", "key", "name", "project", "incidents", "outages", "recovered",
		"not_protected", "downtime_s", "availability_pct", "mttr_s",
	})
	for _, v := range r.VMs {
		_ = cw.Write([]string{
			"vm", v.VMID, v.Name, v.Project, strconv.Itoa(v.Incidents),
			strconv.Itoa(len(v.Outages) - v.Skipped), strconv.Itoa(v.Recovered), strconv.Itoa(v.Skipped),
			seconds(v.Downtime), percent(v.Availability), "",
		})
	}
	for _, sec := range []struct {
		name string
		rows []Totals
	}{{"project", r.Projects}, {"host", r.Hosts}} {
		for _, t := range sec.rows {
			_ = cw.Write([]string{
				sec.name, t.Key, "", "", strconv.Itoa(t.Incidents), strconv.Itoa(t.Outages),
				strconv.Itoa(t.Recovered), strconv.Itoa(t.Skipped), seconds(t.Downtime), "", seconds(t.MTTR),
			})
		}
	}
	cw.Flush()
	return cw.Error()
}

// The JSON shapes: times in RFC 3339 (UTC), durations in seconds.
type (
	jsonReport struct {
		Since    string       `json:"since"`
		Until    string       `json:"until"`
		Project  string       `json:"project,omitempty"`
		Host     string       `json:"host,omitempty"`
		VMs      []jsonVM     `json:"vms"`
		Projects []jsonTotals `json:"projects"`
		Hosts    []jsonTotals `json:"hosts"`
	}
	jsonVM struct {
		ID           string       `json:"id"`
		Name         string       `json:"name"`
		Project      string       `json:"project"`
		DowntimeS    float64      `json:"downtime_s"`
		Availability float64      `json:"availability_pct"`
		Unrecovered  bool         `json:"unrecovered"`
		Outages      []jsonOutage `json:"outages"`
	}
	jsonOutage struct {
		Incident  string  `json:"incident"`
		Host      string  `json:"host"`
		Detected  string  `json:"detected"`
		Recovered string  `json:"recovered,omitempty"`
		Closed    string  `json:"incident_closed,omitempty"`
		Method    string  `json:"method"`
		Result    string  `json:"result"`
		To        string  `json:"to,omitempty"`
		Protected bool    `json:"protected"`
		DowntimeS float64 `json:"downtime_s"`
	}
	jsonTotals struct {
		Key          string  `json:"key"`
		VMs          int     `json:"vms"`
		Incidents    int     `json:"incidents"`
		Outages      int     `json:"outages"`
		Recovered    int     `json:"recovered"`
		NotProtected int     `json:"not_protected"`
		DowntimeS    float64 `json:"downtime_s"`
		MTTRS        float64 `json:"mttr_s"`
	}
)

func jsonStamp(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(jsonTime)
}

func reportJSON(w io.Writer, r Report) error {
	out := jsonReport{
		Since: jsonStamp(r.Since), Until: jsonStamp(r.Until), Project: r.Project, Host: r.Host,
		VMs: []jsonVM{}, Projects: []jsonTotals{}, Hosts: []jsonTotals{},
	}
	for _, v := range r.VMs {
		jv := jsonVM{
			ID: v.VMID, Name: v.Name, Project: v.Project, DowntimeS: v.Downtime.Seconds(),
			Availability: v.Availability, Unrecovered: v.Unrecovered,
		}
		for _, o := range v.Outages {
			jv.Outages = append(jv.Outages, jsonOutage{
				Incident: o.Incident, Host: o.Host, Detected: jsonStamp(o.Detected),
				Recovered: jsonStamp(o.Recovered), Closed: jsonStamp(o.Closed), Method: o.Method, Result: string(o.Result),
				To: o.To, Protected: o.Protected(), DowntimeS: o.Downtime.Seconds(),
			})
		}
		out.VMs = append(out.VMs, jv)
	}
	conv := func(ts []Totals) []jsonTotals {
		out := make([]jsonTotals, 0, len(ts))
		for _, t := range ts {
			out = append(out, jsonTotals{
				Key: t.Key, VMs: t.VMs, Incidents: t.Incidents, Outages: t.Outages,
				Recovered: t.Recovered, NotProtected: t.Skipped, DowntimeS: t.Downtime.Seconds(), MTTRS: t.MTTR.Seconds(),
			})
		}
		return out
	}
	out.Projects, out.Hosts = conv(r.Projects), conv(r.Hosts)
	// Compact: a year of a large cloud's failures is tens of megabytes indented.
	return json.NewEncoder(w).Encode(out)
}
