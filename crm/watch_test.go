package crm

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

var t0 = time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC)

// status builds a snapshot: nodes "name:online[:unclean]".
func status(nodes map[string][2]bool, attrs map[string]map[string]string, fencing ...FenceEvent) *Status {
	st := &Status{Attributes: attrs, Fencing: fencing}
	if st.Attributes == nil {
		st.Attributes = map[string]map[string]string{}
	}
	for name, f := range nodes {
		st.Nodes = append(st.Nodes, Node{Name: name, Online: f[0], Unclean: f[1]})
	}
	return st
}

// kinds summarises events as "kind node" strings for compact assertions.
func kinds(evs []Event) []string {
	var out []string
	for _, e := range evs {
		s := string(e.Kind) + " " + e.Node
		if e.Kind == NodeFenced && !e.OK {
			s += " failed"
		}
		if e.Kind == AttributeChanged {
			s += " " + e.Name + "=" + e.Value
		}
		out = append(out, s)
	}
	return out
}

func seeded(t *testing.T, st *Status) *Watcher {
	t.Helper()
	w := NewWatcher(nil, WatchOptions{})
	w.seed(st)
	return w
}

func TestPollReportsALostNodeThenItsFencingThenItsReturn(t *testing.T) {
	w := seeded(t, status(map[string][2]bool{"c1": {true, false}, "cmp1": {true, false}}, nil))
	steps := []struct {
		name string
		st   *Status
		want []string
	}{
		{"nothing changed", status(map[string][2]bool{"c1": {true, false}, "cmp1": {true, false}}, nil), nil},
		{
			"the compute is lost and unclean", status(map[string][2]bool{"c1": {true, false}, "cmp1": {false, true}}, nil),
			[]string{"node-lost cmp1", "node-unclean cmp1"},
		},
		{"the same snapshot again reports nothing", status(map[string][2]bool{"c1": {true, false}, "cmp1": {false, true}}, nil), nil},
		{
			"fencing succeeded", status(map[string][2]bool{"c1": {true, false}, "cmp1": {false, false}}, nil,
				FenceEvent{Action: "reboot", Target: "cmp1", Status: "success", Completed: t0.Add(5 * time.Second)}),
			[]string{"node-fenced cmp1"},
		},
		{
			"the compute is back", status(map[string][2]bool{"c1": {true, false}, "cmp1": {true, false}}, nil,
				FenceEvent{Action: "reboot", Target: "cmp1", Status: "success", Completed: t0.Add(5 * time.Second)}),
			[]string{"node-joined cmp1"},
		},
	}
	for _, s := range steps {
		got := kinds(w.diff(s.st, t0, SourcePoll))
		if diff := cmp.Diff(s.want, got); diff != "" {
			t.Errorf("%s (-want +got):\n%s", s.name, diff)
		}
	}
}

func TestAFencedRemoteNodeReconnectedToWhileOffIsNeitherJoinedNorLostAgain(t *testing.T) {
	decode := func(name string) *Status {
		st, err := DecodeStatus(open(t, name))
		if err != nil {
			t.Fatal(err)
		}
		return st
	}
	w := seeded(t, decode("crm_mon-lab-settled.xml"))
	fenced := kinds(w.diff(decode("crm_mon-lab-remote-fenced.xml"), t0, SourcePoll))
	if !slices.Contains(fenced, "node-lost cmp2") {
		t.Fatalf("cmp2 fenced: %v, want it lost", fenced)
	}
	// Every 30 s Pacemaker starts cmp2's connection again, and crm_mon reads it online while
	// the start tries to reach a host that is off.
	for range 2 {
		if got := kinds(w.diff(decode("crm_mon-lab-remote-reconnecting.xml"), t0, SourcePoll)); slices.Contains(got, "node-joined cmp2") {
			t.Errorf("cmp2 reconnected to while off: %v, want no join", got)
		}
		if got := kinds(w.diff(decode("crm_mon-lab-remote-fenced.xml"), t0, SourcePoll)); slices.Contains(got, "node-lost cmp2") {
			t.Errorf("cmp2's reconnection failed: %v, want no second loss", got)
		}
	}
	if got := kinds(w.diff(decode("crm_mon-lab-settled.xml"), t0, SourcePoll)); !slices.Contains(got, "node-joined cmp2") {
		t.Errorf("cmp2 connected: %v, want it joined", got)
	}
}

func TestAFencingSeenOnlyInTheHistoryStillReportsTheLossFirst(t *testing.T) {
	// Between two polls the node was lost, fenced and came back.
	w := seeded(t, status(map[string][2]bool{"cmp1": {true, false}}, nil))
	got := kinds(w.diff(status(map[string][2]bool{"cmp1": {true, false}}, nil,
		FenceEvent{Action: "reboot", Target: "cmp1", Status: "success", Completed: t0}), t0, SourcePoll))
	want := []string{"node-lost cmp1", "node-fenced cmp1", "node-joined cmp1"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

func TestAlertAndPollOfTheSameChangeAreReportedOnce(t *testing.T) {
	w := seeded(t, status(map[string][2]bool{"cmp1": {true, false}}, nil))
	alertAt := t0.Add(1500 * time.Millisecond)
	got := kinds(w.applyAlert(AlertRecord{
		Kind: "fencing", Node: "cmp1", Task: "st_notify_fence", RC: "0", Time: alertAt,
		Desc: "Operation reboot of cmp1 by ctl2 for stonith_admin.1@ctl1: OK",
	}, SourceAlert))
	if diff := cmp.Diff([]string{"node-lost cmp1", "node-fenced cmp1"}, got); diff != "" {
		t.Errorf("alert (-want +got):\n%s", diff)
	}
	// The history has one-second resolution: 10:00:01 is the same fencing.
	got = kinds(w.diff(status(map[string][2]bool{"cmp1": {false, true}}, nil,
		FenceEvent{Action: "reboot", Target: "cmp1", Status: "success", Completed: t0.Add(time.Second)}), t0, SourcePoll))
	if diff := cmp.Diff([]string{"node-unclean cmp1"}, got); diff != "" {
		t.Errorf("poll after the alert (-want +got):\n%s", diff)
	}
	// A node alert for a loss already reported is not repeated either.
	if got := w.applyAlert(AlertRecord{Kind: "node", Node: "cmp1", Desc: "lost", Time: alertAt}, SourceAlert); len(got) != 0 {
		t.Errorf("duplicate loss: %v", kinds(got))
	}
	// A later fencing of the same node is a new event.
	got = kinds(w.applyAlert(AlertRecord{
		Kind: "fencing", Node: "cmp1", Task: "st_notify_fence", RC: "-62", Time: alertAt.Add(time.Minute),
		Desc: "Operation off of cmp1 by ctl2 for stonith_admin.2@ctl1: Timer expired",
	}, SourceAlert))
	if diff := cmp.Diff([]string{"node-fenced cmp1 failed"}, got); diff != "" {
		t.Errorf("second fencing (-want +got):\n%s", diff)
	}
	// An off right after a reboot of the same node is another fencing.
	got = kinds(w.applyAlert(AlertRecord{
		Kind: "fencing", Node: "cmp1", Task: "st_notify_fence", RC: "0", Time: alertAt.Add(time.Minute + time.Second),
		Desc: "Operation reboot of cmp1 by ctl2 for stonith_admin.3@ctl1: OK",
	}, SourceAlert))
	if diff := cmp.Diff([]string{"node-fenced cmp1"}, got); diff != "" {
		t.Errorf("third fencing (-want +got):\n%s", diff)
	}
}

func TestAttributesAreReportedOnChangeAndFiltered(t *testing.T) {
	w := seeded(t, status(nil, map[string]map[string]string{"cmp1": {"computeha-evacuate": "pending", "#feature-set": "3.16"}}))
	got := kinds(w.applyAlert(AlertRecord{Kind: "attribute", Node: "cmp1", AttrName: "computeha-evacuate", AttrValue: "pending"}, SourceAlert))
	if len(got) != 0 {
		t.Errorf("an unchanged value was reported: %v", got)
	}
	got = kinds(w.applyAlert(AlertRecord{Kind: "attribute", Node: "cmp1", AttrName: "computeha-evacuate", AttrValue: "running"}, SourceAlert))
	got = append(got, kinds(w.applyAlert(AlertRecord{Kind: "attribute", Node: "cmp1", AttrName: "fail-count-x#monitor_10000", AttrValue: "1"}, SourceAlert))...)
	got = append(got, kinds(w.diff(status(nil, map[string]map[string]string{"cmp1": {"computeha-evacuate": "running", "#feature-set": "3.17"}}), t0, SourcePoll))...)
	got = append(got, kinds(w.diff(status(nil, map[string]map[string]string{"cmp1": {}}), t0, SourcePoll))...)
	want := []string{"attribute-changed cmp1 computeha-evacuate=running", "attribute-changed cmp1 computeha-evacuate="}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

func TestStateSavedAtExitMakesTheNextRunReportWhatItMissed(t *testing.T) {
	file := filepath.Join(t.TempDir(), "watch.json")
	w := NewWatcher(nil, WatchOptions{StateFile: file})
	w.seed(status(map[string][2]bool{"cmp1": {true, false}}, map[string]map[string]string{"cmp1": {"computeha-evacuate": "done"}}))
	if err := w.saveState(); err != nil {
		t.Fatal(err)
	}
	next := NewWatcher(nil, WatchOptions{StateFile: file})
	if err := next.loadState(); err != nil {
		t.Fatal(err)
	}
	got := kinds(next.diff(status(map[string][2]bool{"cmp1": {false, true}}, map[string]map[string]string{"cmp1": {"computeha-evacuate": "pending"}},
		FenceEvent{Action: "reboot", Target: "cmp1", Status: "success", Completed: t0}), t0, SourceResync))
	want := []string{"node-lost cmp1", "node-fenced cmp1", "node-unclean cmp1", "attribute-changed cmp1 computeha-evacuate=pending"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	if err := os.WriteFile(file, []byte("{not json"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := NewWatcher(nil, WatchOptions{StateFile: file}).loadState(); err == nil {
		t.Errorf("a corrupt state file was accepted")
	}
}

func TestAlertRecordFromEnv(t *testing.T) {
	env := map[string]string{
		"CRM_alert_kind": "fencing", "CRM_alert_node": "cmp1", "CRM_alert_task": "reboot", "CRM_alert_rc": "0",
		"CRM_alert_desc": "Operation reboot of cmp1 by ctl2 for pacemaker-controld.1@ctl1: OK", "CRM_alert_node_sequence": "17",
		"CRM_alert_timestamp_epoch": "1795257736", "CRM_alert_timestamp_usec": "250000", "CRM_alert_recipient": "/run/x/alert.sock",
	}
	r, err := AlertRecordFromEnv(func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	want := AlertRecord{
		Kind: "fencing", Node: "cmp1", Task: "reboot", RC: "0", Desc: env["CRM_alert_desc"], Sequence: 17,
		Recipient: "/run/x/alert.sock", Time: time.Unix(1795257736, 250000000).UTC(),
	}
	if diff := cmp.Diff(want, r); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	if _, err := AlertRecordFromEnv(func(string) string { return "" }); err == nil {
		t.Errorf("no CRM_alert_kind was accepted")
	}
	env["CRM_alert_timestamp_epoch"] = "soon"
	if _, err := AlertRecordFromEnv(func(k string) string { return env[k] }); err == nil {
		t.Errorf("a bad timestamp was accepted")
	}
}

func TestForwardAlertDeliversOrSpools(t *testing.T) {
	dir := t.TempDir()
	sock := filepath.Join(dir, "alert.sock")
	if err := os.MkdirAll(SpoolDir(sock), 0o700); err != nil {
		t.Fatal(err)
	}
	rec := AlertRecord{Kind: "node", Node: "cmp1", Desc: "lost", Sequence: 3, Time: t0}

	// Nobody listens: the record goes to the spool.
	start := time.Now()
	spooled, err := ForwardAlert(rec, sock)
	if err != nil || !spooled {
		t.Fatalf("spooled=%v err=%v", spooled, err)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("forwarding to a missing watcher took %s", d)
	}
	recs, files, bad := readSpool(SpoolDir(sock))
	if len(bad) != 0 || len(files) != 1 {
		t.Fatalf("spool: %v %v", files, bad)
	}
	if diff := cmp.Diff([]AlertRecord{rec}, recs, cmpopts.EquateApproxTime(0)); diff != "" {
		t.Errorf("spooled record (-want +got):\n%s", diff)
	}

	// A listener gets it as a datagram.
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	spooled, err = ForwardAlert(rec, sock)
	if err != nil || spooled {
		t.Fatalf("spooled=%v err=%v", spooled, err)
	}
	buf := make([]byte, 4096)
	_ = conn.SetReadDeadline(time.Now().Add(time.Second))
	if n, err := conn.Read(buf); err != nil || n == 0 {
		t.Errorf("nothing received: %v", err)
	}

	// No spool directory and no listener: a clear error, quickly.
	if _, err := ForwardAlert(rec, filepath.Join(dir, "nowhere", "alert.sock")); err == nil {
		t.Errorf("an undeliverable alert was reported delivered")
	}
}

func TestTheSpoolKeepsOnlyTheNewestRecords(t *testing.T) {
	dir := t.TempDir()
	for i := range 12 {
		rec := AlertRecord{Kind: "node", Node: "n", Sequence: int64(i), Time: t0.Add(time.Duration(i) * time.Second)}
		if err := spool(dir, rec, []byte("{}")); err != nil {
			t.Fatal(err)
		}
	}
	trimSpool(dir, 5)
	entries, _ := os.ReadDir(dir)
	if len(entries) != 5 {
		t.Fatalf("%d records kept, want 5", len(entries))
	}
	if want := t0.Add(7 * time.Second).UnixNano(); !strings.HasPrefix(entries[0].Name(), fmt.Sprintf("%020d", want)) {
		t.Errorf("oldest kept is %s, want the record of t0+7s", entries[0].Name())
	}
}
