package crm

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

var update = flag.Bool("update", false, "rewrite the golden decodings under testdata/")

// golden compares v, as indented JSON, with testdata/<name>.golden.json.
func golden(t *testing.T, name string, v any) {
	t.Helper()
	got, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	got = append(got, '\n')
	path := filepath.Join("testdata", name+".golden.json")
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./crm -update to create it)", err)
	}
	if diff := cmp.Diff(string(want), string(got)); diff != "" {
		t.Errorf("decoding of %s differs from its golden file (-want +got):\n%s", name, diff)
	}
}

func open(t *testing.T, name string) *os.File {
	t.Helper()
	f, err := os.Open(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

func TestDecodeStatusFixtures(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "crm_mon-*.xml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no crm_mon fixtures: %v", err)
	}
	for _, f := range files {
		name := strings.TrimSuffix(filepath.Base(f), ".xml")
		t.Run(name, func(t *testing.T) {
			st, err := DecodeStatus(open(t, filepath.Base(f)))
			if err != nil {
				t.Fatal(err)
			}
			golden(t, name, st)
		})
	}
}

// TestDecodeStatusStates checks, beyond the goldens, the facts each fixture
// was captured for.
func TestDecodeStatusStates(t *testing.T) {
	tests := []struct {
		fixture string
		check   func(t *testing.T, st *Status)
	}{
		{"crm_mon-single-online.xml", func(t *testing.T, st *Status) {
			n, ok := st.Node("node1")
			if !ok || !n.Online || n.Standby || n.Maintenance || n.Unclean || !n.IsDC || n.Type != NodeMember {
				t.Errorf("node1 should be an online member and DC: %+v", n)
			}
			if st.DC != "node1" || !st.Quorate || !st.StonithEnabled {
				t.Errorf("DC %q quorate %v stonith %v", st.DC, st.Quorate, st.StonithEnabled)
			}
		}},
		{"crm_mon-single-standby.xml", func(t *testing.T, st *Status) {
			if n, _ := st.Node("node1"); !n.Standby || !n.Online {
				t.Errorf("node1 should be online in standby: %+v", n)
			}
		}},
		{"crm_mon-single-maintenance.xml", func(t *testing.T, st *Status) {
			if n, _ := st.Node("node1"); !n.Maintenance {
				t.Errorf("node1 should be in maintenance: %+v", n)
			}
		}},
		{"crm_mon-single-attributes-fencing.xml", func(t *testing.T, st *Status) {
			if got := st.Attributes["node1"]["computeha-evacuate"]; got != "pending" {
				t.Errorf("attribute computeha-evacuate = %q", got)
			}
			want := []FenceEvent{
				{
					Action: "off", Target: "compute9", Client: "stonith_admin.16874", Origin: "node1", Status: "failed",
					Completed: time.Date(2026, 11, 21, 10, 42, 8, 0, time.UTC),
				},
				{
					Action: "reboot", Target: "compute1", Client: "stonith_admin.16403", Origin: "node1", Delegate: "node1",
					Status: "success", Completed: time.Date(2026, 11, 21, 10, 42, 7, 0, time.UTC),
				},
			}
			if diff := cmp.Diff(want, st.Fencing); diff != "" {
				t.Errorf("fencing (-want +got):\n%s", diff)
			}
			if len(st.Resources) != 1 || st.Resources[0].Agent != "stonith:fence_ipmi" || !st.Resources[0].Active {
				t.Errorf("resources: %+v", st.Resources)
			}
		}},
	}
	labNode := func(name string, check func(n Node) bool) func(t *testing.T, st *Status) {
		return func(t *testing.T, st *Status) {
			n, ok := st.Node(name)
			if !ok || !check(n) {
				t.Errorf("%s: %+v", name, n)
			}
		}
	}
	tests = append(tests, []struct {
		fixture string
		check   func(t *testing.T, st *Status)
	}{
		{"crm_mon-lab-settled.xml", func(t *testing.T, st *Status) {
			if len(st.Nodes) != 5 || !st.Quorate {
				t.Errorf("%d nodes, quorate %v", len(st.Nodes), st.Quorate)
			}
			for _, n := range st.Nodes {
				remote := strings.HasPrefix(n.Name, "cmp")
				if !n.Online || n.Unclean || (n.Type == NodeRemote) != remote {
					t.Errorf("%+v", n)
				}
			}
		}},
		{"crm_mon-lab-remote-standby.xml", labNode("cmp1", func(n Node) bool { return n.Standby && n.Online && n.Type == NodeRemote })},
		{"crm_mon-lab-remote-maintenance.xml", labNode("cmp1", func(n Node) bool { return n.Maintenance && n.Online })},
		{"crm_mon-lab-remote-unclean.xml", func(t *testing.T, st *Status) {
			labNode("cmp2", func(n Node) bool { return !n.Online && n.Unclean && n.Type == NodeRemote })(t, st)
			want := []Failure{{
				OpKey: "cmp2_monitor_1000", Resource: "cmp2", Task: "monitor", Interval: "1000", Node: "ctl2",
				ExitStatus: "error", Status: "Timed Out", ExitReason: "Remote executor did not respond",
			}}
			if diff := cmp.Diff(want, st.Failures); diff != "" {
				t.Errorf("failures (-want +got):\n%s", diff)
			}
		}},
		{"crm_mon-lab-remote-fenced.xml", func(t *testing.T, st *Status) {
			labNode("cmp2", func(n Node) bool { return !n.Unclean })(t, st)
			ok := false
			for _, f := range st.Fencing {
				ok = ok || (f.Target == "cmp2" && f.Succeeded() && !f.Completed.IsZero())
			}
			if !ok {
				t.Errorf("no successful fencing of cmp2 in %+v", st.Fencing)
			}
		}},
		{"crm_mon-lab-remote-reconnecting.xml", func(t *testing.T, st *Status) {
			// cmp2, fenced and off, its connection being started again: crm_mon says online.
			labNode("cmp2", func(n Node) bool { return !n.Online && n.Connecting && n.Type == NodeRemote })(t, st)
			labNode("cmp1", func(n Node) bool { return n.Online && !n.Connecting })(t, st)
			if i := slices.IndexFunc(st.Resources, func(r Resource) bool { return r.ID == "cmp2" }); i < 0 || st.Resources[i].Role != "Starting" {
				t.Errorf("cmp2's connection: %+v, want Starting", st.Resources)
			}
		}},
		{"crm_mon-lab-controller-partitioned.xml", func(t *testing.T, st *Status) {
			labNode("ctl3", func(n Node) bool { return !n.Online && n.Type == NodeMember })(t, st)
			if !st.Quorate {
				t.Errorf("the majority partition should have quorum")
			}
		}},
		{"crm_mon-lab-controller-partitioned-minority.xml", func(t *testing.T, st *Status) {
			if st.Quorate {
				t.Errorf("the cut-off controller should have no quorum")
			}
		}},
	}...)
	for _, tt := range tests {
		t.Run(tt.fixture, func(t *testing.T) {
			st, err := DecodeStatus(open(t, tt.fixture))
			if err != nil {
				t.Fatal(err)
			}
			tt.check(t, st)
		})
	}
}

func TestDecodeCIB(t *testing.T) {
	c, err := DecodeCIB(open(t, "cib-single.xml"))
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "cib-single", c)
	if want := (Version{0, 13, 1}); c.Version != want {
		t.Errorf("version %v, want %v", c.Version, want)
	}
	n, _ := c.Node("node1")
	if n.Attributes["computeha-segment"] != "seg-a" {
		t.Errorf("permanent attributes: %v", n.Attributes)
	}
	ns, _ := c.NodeState("node1")
	if !ns.InCCM || !ns.Crmd || ns.Transient["computeha-evacuate"] != "pending" {
		t.Errorf("node state: %+v", ns)
	}
	if len(c.Resources) != 1 || c.Resources[0].Params["pcmk_host_list"] != "compute1" {
		t.Errorf("resources: %+v", c.Resources)
	}
}

func TestDecodeVersionReadsOnlyTheRoot(t *testing.T) {
	v, err := DecodeVersion(strings.NewReader(`<?xml version="1.0"?><cib admin_epoch="1" epoch="22" num_updates="7" other="x"><broken`))
	if err != nil || v != (Version{1, 22, 7}) {
		t.Errorf("got %v, %v", v, err)
	}
	if _, err := DecodeVersion(strings.NewReader(`<pacemaker-result/>`)); err == nil {
		t.Error("a document that is not a CIB was accepted")
	}
	if !(Version{0, 5, 9}).Less(Version{0, 6, 0}) || (Version{1, 0, 0}).Less(Version{0, 9, 9}) {
		t.Error("version order is wrong")
	}
}

// TestBothDecodersReadTheVersionAlike: an absent attribute is 0, an empty or
// non-numeric one is refused, by the full decoder as by the cheap one.
func TestBothDecodersReadTheVersionAlike(t *testing.T) {
	for _, tc := range []struct {
		root string
		want Version
		bad  string
	}{
		{root: `<cib admin_epoch="1" epoch="22" num_updates="7">`, want: Version{1, 22, 7}},
		{root: `<cib epoch="4">`, want: Version{0, 4, 0}},
		{root: `<cib admin_epoch="0" epoch="" num_updates="1">`, bad: `epoch=""`},
		{root: `<cib admin_epoch="0" epoch="5" num_updates="x1">`, bad: `num_updates="x1"`},
	} {
		doc := tc.root + `<configuration><nodes/></configuration><status/></cib>`
		v, err := DecodeVersion(strings.NewReader(doc))
		c, cerr := DecodeCIB(strings.NewReader(doc))
		if tc.bad != "" {
			if err == nil || !strings.Contains(err.Error(), tc.bad) || cerr == nil || !strings.Contains(cerr.Error(), tc.bad) {
				t.Errorf("%s: DecodeVersion: %v; DecodeCIB: %v; want both to name %s", tc.root, err, cerr, tc.bad)
			}
			continue
		}
		if err != nil || cerr != nil || v != tc.want || c.Version != tc.want {
			t.Errorf("%s: DecodeVersion %v, %v; DecodeCIB %v; want %v", tc.root, v, err, cerr, tc.want)
		}
	}
}

// TestDecodersTolerateWhatNewerPacemakerAdds: unknown elements and
// attributes, and the timestamps newer releases put in in_ccm/crmd.
func TestDecodersTolerateWhatNewerPacemakerAdds(t *testing.T) {
	st, err := DecodeStatus(strings.NewReader(`<pacemaker-result api-version="9.9" request="crm_mon">
  <future_section><thing a="b"/></future_section>
  <summary><current_dc present="true" name="c1" with_quorum="true" new_attr="x"/></summary>
  <nodes><node name="c1" id="1" online="true" type="member" brand_new="1"><child/></node>
         <node name="cmp1" id="cmp1" online="false" unclean="true" type="remote"/></nodes>
  <status code="0" message="OK"/>
</pacemaker-result>`))
	if err != nil {
		t.Fatal(err)
	}
	if n, _ := st.Node("cmp1"); n.Type != NodeRemote || !n.Unclean || n.Online {
		t.Errorf("cmp1: %+v", n)
	}
	c, err := DecodeCIB(strings.NewReader(`<cib epoch="3" num_updates="0" admin_epoch="0"><configuration><nodes/></configuration>
<status><node_state id="1" uname="c1" in_ccm="1700000000" crmd="1700000001" join="member" expected="member"/>
<node_state id="2" uname="c2" in_ccm="false" crmd="offline"/></status></cib>`))
	if err != nil {
		t.Fatal(err)
	}
	if a, _ := c.NodeState("c1"); !a.InCCM || !a.Crmd {
		t.Errorf("timestamps mean present: %+v", a)
	}
	if b, _ := c.NodeState("c2"); b.InCCM || b.Crmd {
		t.Errorf("false/offline mean absent: %+v", b)
	}
}

func TestDecodersFailClearly(t *testing.T) {
	for name, doc := range map[string]string{
		"broken XML":            `<pacemaker-result><nodes><node name="a"`,
		"empty input":           ``,
		"an error status":       `<pacemaker-result><status code="102" message="Not connected"><errors><error>crm_mon: Connection refused</error></errors></status></pacemaker-result>`,
		"a nameless node":       `<pacemaker-result><nodes><node id="1"/></nodes></pacemaker-result>`,
		"a bad completion time": `<pacemaker-result><fence_history><fence_event target="x" completed="yesterday"/></fence_history></pacemaker-result>`,
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := DecodeStatus(strings.NewReader(doc)); err == nil {
				t.Errorf("accepted %q", doc)
			}
		})
	}
	_, err := DecodeStatus(strings.NewReader(`<pacemaker-result><status code="102" message="Not connected"/></pacemaker-result>`))
	if !errors.Is(err, ErrNotConnected) {
		t.Errorf("status 102 should be ErrNotConnected, got %v", err)
	}
}

func TestDecodeFencingHistoryAndAttributes(t *testing.T) {
	evs, err := DecodeFencingHistory(strings.NewReader(`<pacemaker-result api-version="2.25" request="stonith_admin --history * --output-as=xml">
  <list name="fencing history" count="1">
    <fence_event action="reboot" target="compute1" client="stonith_admin.16403" origin="node1" status="success" delegate="node1" completed="2026-11-21 10:42:07Z"/>
  </list>
  <status code="0" message="OK"/>
</pacemaker-result>`))
	if err != nil || len(evs) != 1 || !evs[0].Succeeded() || evs[0].Target != "compute1" {
		t.Errorf("history: %+v, %v", evs, err)
	}
	vals, err := DecodeAttributes(strings.NewReader(`<pacemaker-result><attribute name="computeha-evacuate" value="pending" host="node1"/><status code="0" message="OK"/></pacemaker-result>`))
	if err != nil || len(vals) != 1 || vals[0] != (AttributeValue{Name: "computeha-evacuate", Value: "pending", Node: "node1"}) {
		t.Errorf("attributes: %+v, %v", vals, err)
	}
	_, err = DecodeAttributes(strings.NewReader(`<pacemaker-result><status code="78" message="Invalid configuration"><errors><error>attrd_updater: Could not query value of nosuch: attribute does not exist</error></errors></status></pacemaker-result>`))
	if !errors.Is(err, ErrNoSuchObject) {
		t.Errorf("a missing transient attribute should be ErrNoSuchObject, got %v", err)
	}
}

// FuzzDecodeStatus: no input makes the decoders panic.
func FuzzDecodeStatus(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("testdata", "*.xml"))
	for _, fn := range files {
		b, err := os.ReadFile(fn)
		if err == nil {
			f.Add(b)
		}
	}
	f.Add([]byte(`<pacemaker-result><status code="x"/></pacemaker-result>`))
	f.Fuzz(func(t *testing.T, b []byte) {
		_, _ = DecodeStatus(bytes.NewReader(b))
		_, _ = DecodeCIB(bytes.NewReader(b))
		_, _ = DecodeVersion(bytes.NewReader(b))
		_, _ = DecodeFencingHistory(bytes.NewReader(b))
		_, _ = DecodeAttributes(bytes.NewReader(b))
	})
}

func TestTheClustersFenceAction(t *testing.T) {
	c, err := DecodeCIB(open(t, "cib-single.xml"))
	if err != nil {
		t.Fatal(err)
	}
	if got := c.FenceAction(); got != FenceReboot {
		t.Errorf("stonith-action unset: %s, want Pacemaker's default reboot", got)
	}
	for value, want := range map[string]FenceAction{"reboot": FenceReboot, "off": FenceOff, "poweroff": FenceOff, "sideways": FenceReboot} {
		c.Properties["stonith-action"] = value
		if got := c.FenceAction(); got != want {
			t.Errorf("stonith-action=%s: %s, want %s", value, got, want)
		}
	}
}

// TestFailuresNameTheirResource: crm_mon names a failure only by its operation key
// (RESOURCE_TASK_INTERVAL, or RESOURCE_pre|post_notify_TASK_INTERVAL); a resource with
// underscores in its name keeps them, and a key of another form names no resource but its
// failure is kept.
func TestFailuresNameTheirResource(t *testing.T) {
	st, err := DecodeStatus(strings.NewReader(`<pacemaker-result api-version="2.25" request="crm_mon"><failures>
<failure op_key="nova_compute:1_start_0" node="cmp1" exitstatus="not running" exitreason="gone" status="Done" interval="0" task="start"/>
<failure op_key="db_post_notify_start_0" node="c1" interval="0" task="notify"/>
<failure op_key="cmp2_monitor_1000" node="ctl2" interval="0" task="monitor"/>
<failure op_key="odd" node="ctl2"/>
</failures></pacemaker-result>`))
	if err != nil {
		t.Fatal(err)
	}
	want := []Failure{
		{OpKey: "nova_compute:1_start_0", Resource: "nova_compute:1", Task: "start", Interval: "0", Node: "cmp1", ExitStatus: "not running", Status: "Done", ExitReason: "gone"},
		{OpKey: "db_post_notify_start_0", Resource: "db", Task: "notify", Interval: "0", Node: "c1"},
		{OpKey: "cmp2_monitor_1000", Task: "monitor", Interval: "0", Node: "ctl2"},
		{OpKey: "odd", Node: "ctl2"},
	}
	if diff := cmp.Diff(want, st.Failures); diff != "" {
		t.Errorf("failures (-want +got):\n%s", diff)
	}
}
