package evacstate

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/computeha/computeha/crm"
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

func TestAMarkIsConfirmedOnlyByASuccessfulFencingOfItsHostSinceIt(t *testing.T) {
	mark := time.Date(2026, 12, 6, 10, 0, 0, 0, time.UTC)
	ev := func(target, status string, at time.Time) crm.FenceEvent {
		return crm.FenceEvent{Action: "off", Target: target, Status: status, Completed: at}
	}
	const skew = 30 * time.Second
	for _, c := range []struct {
		name string
		st   State
		evs  []crm.FenceEvent
		want bool
	}{
		{"after the mark", State{Phase: Pending, Since: mark}, []crm.FenceEvent{ev("cmp1", "success", mark.Add(time.Second))}, true},
		{"within the skew before it", State{Phase: Pending, Since: mark}, []crm.FenceEvent{ev("cmp1", "success", mark.Add(-skew))}, true},
		{"before the skew", State{Phase: Pending, Since: mark}, []crm.FenceEvent{ev("cmp1", "success", mark.Add(-skew-time.Second))}, false},
		{"a retry's, just before it", State{Phase: Pending, By: ByRetry, Since: mark}, []crm.FenceEvent{ev("cmp1", "success", mark.Add(-time.Second))}, false},
		{"a retry's, at it", State{Phase: Pending, By: ByRetry, Since: mark}, []crm.FenceEvent{ev("cmp1", "success", mark)}, true},
		{"a failed fencing", State{Phase: Pending, Since: mark}, []crm.FenceEvent{ev("cmp1", "failed", mark.Add(time.Second))}, false},
		{"another host's", State{Phase: Pending, Since: mark}, []crm.FenceEvent{ev("cmp2", "success", mark.Add(time.Second))}, false},
		{"a mark with no time", State{Phase: Pending}, []crm.FenceEvent{ev("cmp1", "success", mark.Add(-time.Hour))}, true},
		{"the second of several", State{Phase: Pending, Since: mark}, []crm.FenceEvent{ev("cmp1", "success", mark.Add(-time.Hour)), ev("cmp1", "success", mark.Add(time.Minute))}, true},
	} {
		e, ok := c.st.ConfirmedBy(c.evs, "cmp1", skew)
		if ok != c.want || ok && e.Target != "cmp1" {
			t.Errorf("%s: confirmed %v by %+v, want %v", c.name, ok, e, c.want)
		}
	}
}
