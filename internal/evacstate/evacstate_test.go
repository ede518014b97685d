package evacstate

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// roundTripStates are a state of every phase; the round-trip test and the fuzz seeds use them.
var roundTripStates = func() []State {
	since := time.Date(2026, 11, 21, 10, 42, 7, 0, time.UTC)
	return []State{
		{},
		{Phase: Pending, By: "fence_nova", Since: since},
		{Phase: Running, Owner: "ctl2", Since: since},
		{Phase: Done, Since: since},
		{Phase: Failed, Since: since, Reason: "3 VMs not recovered; see history; a=b"},
	}
}()

func TestRoundTrip(t *testing.T) {
	for _, s := range roundTripStates {
		got, err := Parse(s.String())
		if err != nil {
			t.Fatalf("%q: %v", s.String(), err)
		}
		if diff := cmp.Diff(s, got); diff != "" {
			t.Errorf("%q (-want +got):\n%s", s.String(), diff)
		}
	}
}

func TestParse(t *testing.T) {
	tests := []struct {
		in      string
		want    State
		wantErr bool
	}{
		{in: "pending", want: State{Phase: Pending}},
		{in: " done ;since=2026-11-21T10:42:07Z;future=x", want: State{Phase: Done, Since: time.Date(2026, 11, 21, 10, 42, 7, 0, time.UTC)}},
		{in: "evacuating", wantErr: true},
		{in: "running;owner", wantErr: true},
		{in: "running;since=yesterday", wantErr: true},
	}
	for _, tt := range tests {
		got, err := Parse(tt.in)
		if (err != nil) != tt.wantErr {
			t.Errorf("%q: err = %v, want error %v", tt.in, err, tt.wantErr)
			continue
		}
		if diff := cmp.Diff(tt.want, got); !tt.wantErr && diff != "" {
			t.Errorf("%q (-want +got):\n%s", tt.in, diff)
		}
	}
}

func TestOnlyDoneAndNoneLetAHostBack(t *testing.T) {
	for p, blocking := range map[Phase]bool{None: false, Pending: true, Running: true, Done: false, Failed: true} {
		if got := (State{Phase: p}).Blocking(); got != blocking {
			t.Errorf("%q: blocking = %v, want %v", p, got, blocking)
		}
	}
}

func TestHealthDisablesAreNotFencingDisables(t *testing.T) {
	tests := []struct {
		reason          string
		byUs, forHealth bool
	}{
		{"computeha: fenced by fence_nova at 2026-11-21T10:00:00Z", true, false},
		{"computeha: evacuated by computeha at 2026-11-21T10:00:00Z", true, false},
		{"computeha: health: isolated", false, true},
		{"computeha: health: tenant network lost", false, true},
		{"maintenance by ops", false, false},
		{"", false, false},
	}
	for _, tt := range tests {
		if got := DisabledByUs(tt.reason); got != tt.byUs {
			t.Errorf("DisabledByUs(%q) = %v, want %v", tt.reason, got, tt.byUs)
		}
		if got := DisabledForHealth(tt.reason); got != tt.forHealth {
			t.Errorf("DisabledForHealth(%q) = %v, want %v", tt.reason, got, tt.forHealth)
		}
	}
}

func TestWhichDisabledReasonsHoldAReservedHostInReserve(t *testing.T) {
	for reason, want := range map[string]bool{
		"":                                       true,
		"computeha: reserved: back in the pool":  true,
		"reserved for failover":                  true,
		"Masakari RESERVE host":                  true,
		"RAM replacement, ticket 4521":           false,
		"computeha: health: tenant network lost": false,
		"computeha: fenced by fence_nova at 2026-12-04T10:00:00Z": false,
		"computeha: health: reserved host isolated":               false,
	} {
		if got := HeldInReserve(reason); got != want {
			t.Errorf("HeldInReserve(%q) = %v, want %v", reason, got, want)
		}
	}
	if DisabledByUs("computeha: reserved: back in the pool") {
		t.Error("a reserved host held in reserve counts as disabled by its fencing: unfencing would enable it")
	}
}
