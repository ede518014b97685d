package plan

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/computeha/computeha/internal/config"
)

func TestGuardAllow(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	ago := func(d time.Duration) time.Time { return now.Add(-d) }
	cfg := config.Guard{MaxHosts: 3, Window: 10 * time.Minute, MaxSegmentFraction: 0.5}
	sizes := map[string]int{"a": 10, "b": 4, "solo": 1}
	tests := []struct {
		name     string
		host     string
		failures []Failure
		quorate  bool
		sizes    map[string]int
		want     Decision
	}{
		{
			"a single failure within limits proceeds",
			"a1",
			[]Failure{{"a1", "a", ago(time.Minute)}},
			true, nil,
			Decision{
				Action: ActionProceed, Reason: ReasonWithinLimits, FailedHosts: []string{"a1"},
				Message: "recovering a1: 1 host failed within 10m0s (max 3), 1 of 10 in segment a (max fraction 0.5)",
			},
		},
		{
			"without quorum nothing is recovered, whatever else is true",
			"a1",
			[]Failure{{"a1", "a", ago(time.Minute)}},
			false, nil,
			Decision{
				Action: ActionPause, Reason: ReasonNoQuorum,
				Message: "not recovering a1: this partition has no quorum, so the host may still be running",
			},
		},
		{
			"exactly max_hosts failures within the window still proceed",
			"a3",
			[]Failure{{"a1", "a", ago(9 * time.Minute)}, {"b1", "b", ago(5 * time.Minute)}, {"a3", "a", now}},
			true, nil,
			Decision{
				Action: ActionProceed, Reason: ReasonWithinLimits, FailedHosts: []string{"a1", "a3", "b1"},
				Message: "recovering a3: 3 hosts failed within 10m0s (max 3), 2 of 10 in segment a (max fraction 0.5)",
			},
		},
		{
			"one more than max_hosts within the window pauses recovery",
			"a4",
			[]Failure{{"a1", "a", ago(9 * time.Minute)}, {"b1", "b", ago(5 * time.Minute)}, {"a3", "a", ago(time.Second)}, {"a4", "a", now}},
			true, nil,
			Decision{
				Action: ActionPause, Reason: ReasonTooManyHosts, FailedHosts: []string{"a1", "a3", "a4", "b1"},
				Message: "not recovering a4: 4 hosts failed within 10m0s ([a1 a3 a4 b1]), more than guard.max_hosts 3; pausing recovery",
			},
		},
		{
			"failures older than the window do not count",
			"a4",
			[]Failure{{"a1", "a", ago(10 * time.Minute)}, {"b1", "b", ago(time.Hour)}, {"a3", "a", ago(time.Second)}, {"a4", "a", now}},
			true, nil,
			Decision{
				Action: ActionProceed, Reason: ReasonWithinLimits, FailedHosts: []string{"a3", "a4"},
				Message: "recovering a4: 2 hosts failed within 10m0s (max 3), 2 of 10 in segment a (max fraction 0.5)",
			},
		},
		{
			"a host failing twice counts once",
			"a1",
			[]Failure{{"a1", "a", ago(5 * time.Minute)}, {"a1", "a", ago(time.Minute)}},
			true, nil,
			Decision{
				Action: ActionProceed, Reason: ReasonWithinLimits, FailedHosts: []string{"a1"},
				Message: "recovering a1: 1 host failed within 10m0s (max 3), 1 of 10 in segment a (max fraction 0.5)",
			},
		},
		{
			"half of a segment failing is the limit, not beyond it",
			"b2",
			[]Failure{{"b1", "b", ago(time.Minute)}, {"b2", "b", now}},
			true, nil,
			Decision{
				Action: ActionProceed, Reason: ReasonWithinLimits, FailedHosts: []string{"b1", "b2"},
				Message: "recovering b2: 2 hosts failed within 10m0s (max 3), 2 of 4 in segment b (max fraction 0.5)",
			},
		},
		{
			"more than max_segment_fraction of a segment failing pauses recovery",
			"b3",
			[]Failure{{"b1", "b", ago(time.Minute)}, {"b2", "b", ago(time.Minute)}, {"b3", "b", now}},
			true, nil,
			Decision{
				Action: ActionPause, Reason: ReasonSegmentFraction, FailedHosts: []string{"b1", "b2", "b3"},
				Message: "not recovering b3: 3 of the 4 hosts of segment b failed within 10m0s ([b1 b2 b3]), more than guard.max_segment_fraction 0.5; pausing recovery",
			},
		},
		{
			"a host whose own failure is older than the window still counts itself",
			"a1",
			[]Failure{{"a1", "a", ago(time.Hour)}},
			true, nil,
			Decision{
				Action: ActionProceed, Reason: ReasonWithinLimits, FailedHosts: []string{"a1"},
				Message: "recovering a1: 1 host failed within 10m0s (max 3), 1 of 10 in segment a (max fraction 0.5)",
			},
		},
		{
			"failures stamped slightly in the future (clock skew) count",
			"a1",
			[]Failure{{"a1", "a", now}, {"a2", "a", now.Add(2 * time.Second)}, {"b1", "b", now.Add(time.Second)}, {"b2", "b", now.Add(time.Second)}},
			true, nil,
			Decision{
				Action: ActionPause, Reason: ReasonTooManyHosts, FailedHosts: []string{"a1", "a2", "b1", "b2"},
				Message: "not recovering a1: 4 hosts failed within 10m0s ([a1 a2 b1 b2]), more than guard.max_hosts 3; pausing recovery",
			},
		},
		{
			"a host with no recorded failure is not recovered",
			"a9",
			[]Failure{{"a1", "a", now}},
			true, nil,
			Decision{Action: ActionPause, Reason: ReasonNoFailureRecorded, Message: "not recovering a9: no failure of it is recorded"},
		},
		{
			"a segment of unknown size is not recovered",
			"x1",
			[]Failure{{"x1", "x", now}},
			true, nil,
			Decision{
				Action: ActionPause, Reason: ReasonUnknownSegment, FailedHosts: []string{"x1"},
				Message: `not recovering x1: the size of its segment "x" is unknown`,
			},
		},
		{
			"the latest failure of a host gives its segment",
			"m1",
			[]Failure{{"m1", "solo", ago(2 * time.Hour)}, {"m1", "a", ago(time.Minute)}},
			true, nil,
			Decision{
				Action: ActionProceed, Reason: ReasonWithinLimits, FailedHosts: []string{"m1"},
				Message: "recovering m1: 1 host failed within 10m0s (max 3), 1 of 10 in segment a (max fraction 0.5)",
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := sizes
			if tt.sizes != nil {
				s = tt.sizes
			}
			g := Guard{Config: cfg, SegmentSizes: s, Failures: tt.failures, Quorate: tt.quorate}
			if diff := cmp.Diff(tt.want, g.Allow(tt.host, now)); diff != "" {
				t.Errorf("Allow (-want +got):\n%s", diff)
			}
		})
	}
}

func TestGuardRecentDropsFailuresOutsideTheWindow(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	g := Guard{Config: config.Guard{Window: time.Minute}, Failures: []Failure{
		{"old", "a", now.Add(-time.Minute)}, {"new", "a", now.Add(-59 * time.Second)}, {"future", "a", now.Add(time.Second)},
	}}
	want := []Failure{{"new", "a", now.Add(-59 * time.Second)}, {"future", "a", now.Add(time.Second)}}
	if diff := cmp.Diff(want, g.Recent(now)); diff != "" {
		t.Errorf("Recent (-want +got):\n%s", diff)
	}
}
