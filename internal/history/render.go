package history

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
	"unicode"
)

// Format selects how Render writes records.
type Format string

// Output formats.
const (
	FormatTable Format = "table" // aligned columns for people
	FormatJSON  Format = "json"  // one JSON object per line (see the package comment)
)

// tableTime is the table's time format; the header says it is UTC.
const tableTime = "2006-01-02 15:04:05.000000"

// jsonTime is RFC 3339 with a fixed six-digit fraction, so that every
// record's time has the same width and sorts as text.
const jsonTime = "2006-01-02T15:04:05.000000Z07:00"

// Show queries the events and moves f selects and renders them: the whole
// of `computeha history`. Incident, Host, Since, Until, Kind and Limit apply
// to both lists (Limit to each separately).
func (s *Store) Show(ctx context.Context, w io.Writer, f Filter, format Format) error {
	if format != FormatTable && format != FormatJSON && format != "" {
		return fmt.Errorf("%w: unknown output format %q (want table or json)", ErrInvalid, format)
	}
	events, err := s.Query(ctx, f)
	if err != nil {
		return err
	}
	moves, err := s.Moves(ctx, f)
	if err != nil {
		return err
	}
	return Render(w, events, moves, format)
}

// Render writes events and then moves in format. It only formats what it is
// given (callers query with a Filter first), so its output depends on
// nothing else, the clock included: a running move shows no duration.
func Render(w io.Writer, events []Event, moves []Move, format Format) error {
	switch format {
	case FormatTable, "":
		return renderTable(w, events, moves)
	case FormatJSON:
		return renderJSON(w, events, moves)
	default:
		return fmt.Errorf("%w: unknown output format %q (want table or json)", ErrInvalid, format)
	}
}

func renderTable(w io.Writer, events []Event, moves []Move) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	row := func(cols ...string) {
		for i, c := range cols {
			cols[i] = cell(c)
		}
		fmt.Fprintln(tw, strings.Join(cols, "\t"))
	}
	if len(events) == 0 {
		fmt.Fprintln(tw, "No events.")
	} else {
		row("TIME (UTC)", "HOST", "KIND", "SUMMARY", "REASON")
		for _, e := range events {
			row(e.Time.UTC().Format(tableTime), dash(e.Host), string(e.Kind), e.Summary, dash(e.Reason.String()))
		}
	}
	if len(moves) > 0 {
		// A separate block: tabwriter aligns columns up to an empty line.
		fmt.Fprintln(tw)
		row("MOVE START (UTC)", "VM", "VM ID", "PROJECT", "FROM", "TO", "RESULT", "DURATION", "ATTEMPTS", "ERROR")
		for _, m := range moves {
			dur := "-"
			if d, ok := m.Duration(); ok {
				dur = d.Round(time.Millisecond).String()
			}
			row(m.Start.UTC().Format(tableTime), dash(m.VMName), m.VMID, dash(m.Project), m.From, dash(m.To),
				string(m.Result), dur, strconv.Itoa(m.Attempts), dash(m.Error))
		}
	}
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("write history: %w", err)
	}
	return nil
}

// cell makes one table cell safe to print: VM and project names come from
// tenants, so control characters (terminal escapes, tabs and newlines that
// would break the columns) are replaced.
func cell(s string) string {
	return strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return ' '
		}
		return r
	}, s)
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// jsonEvent and jsonMove fix the JSON lines' field names and order. Changing
// a name breaks operators' scripts: add fields, never rename.
type jsonEvent struct {
	Type       string          `json:"type"`
	ID         int64           `json:"id"`
	Time       string          `json:"time"`
	Host       string          `json:"host"`
	Kind       string          `json:"kind"`
	Summary    string          `json:"summary"`
	ReasonCode string          `json:"reason_code"`
	ReasonText string          `json:"reason_text"`
	Actor      string          `json:"actor"`
	Incident   string          `json:"incident"`
	Details    json.RawMessage `json:"details"`
}

type jsonMove struct {
	Type       string  `json:"type"`
	ID         int64   `json:"id"`
	Incident   string  `json:"incident"`
	VMID       string  `json:"vm_id"`
	VMName     string  `json:"vm_name"`
	Project    string  `json:"project"`
	From       string  `json:"from"`
	To         string  `json:"to"`
	Start      string  `json:"start"`
	End        *string `json:"end"`
	DurationUS *int64  `json:"duration_us"`
	Result     string  `json:"result"`
	Attempts   int     `json:"attempts"`
	Error      string  `json:"error"`
	Actor      string  `json:"actor"`
	Method     string  `json:"method"`
}

func renderJSON(w io.Writer, events []Event, moves []Move) error {
	enc := json.NewEncoder(w)
	// Summaries quote shell commands and XML; keep <, > and & readable.
	enc.SetEscapeHTML(false)
	for _, e := range events {
		details := e.Details
		if len(details) == 0 {
			details = json.RawMessage("null")
		}
		if err := enc.Encode(jsonEvent{
			Type: "event", ID: e.ID, Time: e.Time.UTC().Format(jsonTime), Host: e.Host, Kind: string(e.Kind),
			Summary: e.Summary, ReasonCode: string(e.Reason.Code), ReasonText: e.Reason.Text,
			Actor: e.Actor, Incident: e.Incident, Details: details,
		}); err != nil {
			return fmt.Errorf("write history: %w", err)
		}
	}
	for _, m := range moves {
		jm := jsonMove{
			Type: "move", ID: m.ID, Incident: m.Incident, VMID: m.VMID, VMName: m.VMName, Project: m.Project,
			From: m.From, To: m.To, Start: m.Start.UTC().Format(jsonTime), Result: string(m.Result),
			Attempts: m.Attempts, Error: m.Error, Actor: m.Actor, Method: m.Method,
		}
		if d, ok := m.Duration(); ok {
			end, us := m.End.UTC().Format(jsonTime), d.Microseconds()
			jm.End, jm.DurationUS = &end, &us
		}
		if err := enc.Encode(jm); err != nil {
			return fmt.Errorf("write history: %w", err)
		}
	}
	return nil
}
