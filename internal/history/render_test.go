package history

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// sampleHistory is one incident as the daemon would record it, with the
// awkward cases: a cluster-wide event without host, a reason with only a
// code, details, a tenant-chosen VM name with control characters, a move
// still running and one that failed.
func sampleHistory() ([]Event, []Move) {
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	inc := "20260301T100000Z-9f86d081"
	events := []Event{
		{
			ID: 1, Time: at(0).Add(7 * time.Microsecond), Host: "compute1", Kind: KindFailure, Summary: "compute1 stopped answering",
			Reason: Reason{Code: "host-unreachable", Text: "no corosync heartbeat for 3s"}, Actor: "ctl1/4242", Incident: inc,
			Details: json.RawMessage(`{"vms":3,"last_seen":"2026-03-01T09:59:57Z"}`),
		},
		{
			ID: 2, Time: at(1250), Host: "compute1", Kind: KindFencing, Summary: "fenced through ipmi-compute1 (off confirmed)",
			Reason: Reason{Code: "fence-ok"}, Actor: "ctl1/4242", Incident: inc,
		},
		{
			ID: 3, Time: at(1300), Host: "compute1", Kind: KindDecision, Summary: "evacuate 3 VMs",
			Reason: Reason{Code: "fenced-and-down", Text: "host fenced & nova service <down>"}, Actor: "ctl1/4242", Incident: inc,
		},
		{ID: 4, Time: at(1400), Kind: KindConfig, Summary: "configuration reloaded", Actor: "ctl2/77"},
	}
	moves := []Move{
		{
			ID: 1, Incident: inc, VMID: "6f1c0e2a-0000-4000-8000-000000000001", VMName: "web-1", Project: "demo",
			From: "compute1", To: "compute2", Start: at(1310), End: at(2544), Result: MoveSucceeded, Attempts: 1, Actor: "ctl1/4242",
		},
		{
			ID: 2, Incident: inc, VMID: "6f1c0e2a-0000-4000-8000-000000000002", VMName: "evil\x1b[31m\tname", Project: "demo",
			From: "compute1", Start: at(1320), End: at(4320), Result: MoveFailed, Attempts: 3,
			Error: "No valid host was found.", Actor: "ctl1/4242",
		},
		{
			ID: 3, Incident: inc, VMID: "6f1c0e2a-0000-4000-8000-000000000003", From: "compute1", To: "compute3",
			Start: at(1330), Result: MoveRunning, Attempts: 1, Actor: "ctl1/4242",
		},
	}
	return events, moves
}

func TestRender(t *testing.T) {
	events, moves := sampleHistory()
	tests := []struct {
		name   string
		golden string
		events []Event
		moves  []Move
		format Format
	}{
		{"a table shows events then moves with durations", "table.golden", events, moves, FormatTable},
		{"an empty format means a table", "table.golden", events, moves, ""},
		{"json writes one object per line with every field", "json.golden", events, moves, FormatJSON},
		{"an empty table says there are no events", "table-empty.golden", nil, nil, FormatTable},
		{"an empty json output is empty", "json-empty.golden", nil, nil, FormatJSON},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var buf bytes.Buffer
			if err := Render(&buf, tc.events, tc.moves, tc.format); err != nil {
				t.Fatalf("Render: %v", err)
			}
			path := filepath.Join("testdata", tc.golden)
			if *update && tc.format != "" {
				if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run go test -update to create it)", err)
			}
			if diff := cmp.Diff(string(want), buf.String()); diff != "" {
				t.Errorf("Render output (-want +got):\n%s", diff)
			}
		})
	}
}

func TestRenderJSONLinesAreSelfContainedObjectsWithStableFields(t *testing.T) {
	events, moves := sampleHistory()
	var buf bytes.Buffer
	if err := Render(&buf, events, moves, FormatJSON); err != nil {
		t.Fatal(err)
	}
	lines := bytes.Split(bytes.TrimSuffix(buf.Bytes(), []byte("\n")), []byte("\n"))
	if len(lines) != len(events)+len(moves) {
		t.Fatalf("%d lines, want %d", len(lines), len(events)+len(moves))
	}
	wantKeys := map[string][]string{
		"event": {"actor", "details", "host", "id", "incident", "kind", "reason_code", "reason_text", "summary", "time", "type"},
		"move": {
			"actor", "attempts", "duration_us", "end", "error", "from", "id", "incident", "method", "project", "result",
			"start", "to", "type", "vm_id", "vm_name",
		},
	}
	for i, line := range lines {
		var obj map[string]any
		if err := json.Unmarshal(line, &obj); err != nil {
			t.Fatalf("line %d is not a JSON object: %v", i+1, err)
		}
		typ, _ := obj["type"].(string)
		var keys []string
		for k := range obj {
			keys = append(keys, k)
		}
		if diff := cmp.Diff(wantKeys[typ], keys, cmpSorted); diff != "" {
			t.Errorf("line %d (%s) keys (-want +got):\n%s", i+1, typ, diff)
		}
	}
}

var cmpSorted = cmpopts.SortSlices(func(a, b string) bool { return a < b })

func TestRenderRefusesAnUnknownFormat(t *testing.T) {
	if err := Render(&bytes.Buffer{}, nil, nil, "yaml"); !errors.Is(err, ErrInvalid) {
		t.Errorf("Render(yaml) = %v, want ErrInvalid", err)
	}
}

func TestShowQueriesAndRendersWhatTheFilterSelects(t *testing.T) {
	s := open(t, "sqlite", filepath.Join(t.TempDir(), "history.db"))
	ctx := context.Background()
	events, moves := sampleHistory()
	for _, e := range events {
		mustRecord(t, s, e)
	}
	for _, m := range moves {
		id, err := s.StartMove(ctx, m)
		if err != nil {
			t.Fatal(err)
		}
		if m.Result != MoveRunning {
			if err := s.FinishMove(ctx, id, MoveOutcome{Result: m.Result, To: m.To, Error: m.Error, End: m.End}); err != nil {
				t.Fatal(err)
			}
		}
	}
	// The sample's ids match the order it is recorded in, so the stored
	// history renders exactly as the golden file of the sample.
	var buf bytes.Buffer
	if err := s.Show(ctx, &buf, Filter{}, FormatJSON); err != nil {
		t.Fatal(err)
	}
	want, err := os.ReadFile(filepath.Join("testdata", "json.golden"))
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(string(want), buf.String()); diff != "" {
		t.Errorf("Show output (-want +got):\n%s", diff)
	}

	buf.Reset()
	if err := s.Show(ctx, &buf, Filter{Kind: KindConfig}, FormatTable); err != nil {
		t.Fatal(err)
	}
	wantTable := "TIME (UTC)                  HOST  KIND    SUMMARY                 REASON\n" +
		"2026-03-01 10:00:01.400000  -     config  configuration reloaded  -\n"
	if diff := cmp.Diff(wantTable, buf.String()); diff != "" {
		t.Errorf("Show --kind config (-want +got):\n%s", diff)
	}
}
