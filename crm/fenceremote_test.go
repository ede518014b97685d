package crm

import (
	"testing"
	"time"
)

func TestTheConnectionOfARemoteNodeIsFoundWhereItRuns(t *testing.T) {
	for _, tt := range []struct {
		fixture, node, want string
	}{
		{"crm_mon-lab-settled.xml", "cmp1", "ctl1"},
		{"crm_mon-lab-settled.xml", "cmp2", "ctl2"},
		{"crm_mon-lab-settled.xml", "ctl1", ""},       // a cluster node: no connection
		{"crm_mon-lab-settled.xml", "cmp9", ""},       // unknown
		{"crm_mon-lab-remote-fenced.xml", "cmp2", ""}, // offline: Pacemaker already lost it
		{"crm_mon-lab-remote-fenced.xml", "cmp1", "ctl1"},
	} {
		st, err := DecodeStatus(open(t, tt.fixture))
		if err != nil {
			t.Fatal(err)
		}
		if got := remoteConnection(st, tt.node); got != tt.want {
			t.Errorf("%s: connection of %s runs on %q, want %q", tt.fixture, tt.node, got, tt.want)
		}
	}
}

func TestOnlyWhatTheFencerDidSinceIsDescribed(t *testing.T) {
	t0 := time.Date(2026, 12, 4, 19, 0, 0, 0, time.UTC)
	before := []FenceEvent{{Action: "reboot", Status: "success", Completed: t0}}
	h := append([]FenceEvent{
		{Action: "off", Status: "failed", Completed: t0.Add(time.Minute), ExitReason: "timed out"},
		{Action: "reboot", Status: "pending"},
	}, before...)
	if got, want := describeNew(h, before), "off failed (timed out), reboot pending"; got != want {
		t.Errorf("described %q, want %q", got, want)
	}
	if got := describeNew(before, before); got != "none begun" {
		t.Errorf("nothing new described %q", got)
	}
}
