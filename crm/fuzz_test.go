package crm

import (
	"bytes"
	"encoding/xml"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// fixtureSeeds adds every XML fixture under testdata/, each also cut in half (a tool killed
// mid-write), plus extra.
func fixtureSeeds(f *testing.F, extra ...string) {
	f.Helper()
	files, err := filepath.Glob(filepath.Join("testdata", "*.xml"))
	if err != nil || len(files) == 0 {
		f.Fatalf("no XML fixtures: %v", err)
	}
	for _, fn := range files {
		b, err := os.ReadFile(fn)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
		f.Add(b[:len(b)/2])
	}
	for _, s := range extra {
		f.Add([]byte(s))
	}
}

// failedDecode checks what a decoder returned with err: nothing (returned is false), a
// reason, and, for a tool's own error, a failure code.
func failedDecode(t *testing.T, err error, returned bool, got any) {
	t.Helper()
	if returned {
		t.Fatalf("a failed decode (%v) returned %+v", err, got)
	}
	if err.Error() == "" {
		t.Fatal("a failed decode has an empty error")
	}
	var te *ToolError
	if errors.As(err, &te) && te.Code == ExitOK {
		t.Fatalf("a tool error with exit status 0: %v", err)
	}
}

// notPacemakerXML is what a tool that is not Pacemaker's, or a broken pipe, may hand a decoder.
var notPacemakerXML = []string{
	"", " ", "\x00", "null", "{}", "<", "<>", "</cib>", "<?xml version=\"1.0\"?>",
	"<!-- only a comment -->", "<cib", `<cib epoch="1`, "<cib/><cib/>", "<a:cib xmlns:a=\"x\" epoch=\"1\"/>",
	"<pacemaker-result", "<pacemaker-result><status code=\"0\"/>",
	"error: Could not connect to the CIB: Transport endpoint is not connected\n",
}

// FuzzDecodeCIB checks that no input panics, that a failed decode returns no CIB and says
// why, that a decoded CIB has every map in place (callers index them without checking) and a
// type for every node, and that its version is the one DecodeVersion, the poll path's cheap
// check, reads from the same document (see plainVersion for where they part).
func FuzzDecodeCIB(f *testing.F) {
	fixtureSeeds(f, append(notPacemakerXML,
		`<cib epoch="3" num_updates="0" admin_epoch="0"><configuration><nodes/></configuration>
<status><node_state id="1" uname="c1" in_ccm="1700000000" crmd="1700000001" join="member" expected="member"/>
<node_state id="2" uname="c2" in_ccm="false" crmd="offline"/></status></cib>`,
		`<cib epoch="x"/>`, `<cib epoch=""/>`, `<cib epoch="1" epoch="2"/>`, `<cib epoch="99999999999999999999"/>`,
		`<cib><configuration><resources><clone id="c"><group id="g"><primitive id="p"/></group></clone></resources></configuration></cib>`,
		`<cib><configuration><alerts><alert id="a" path="/x"><select><select_attributes><attribute name="n"/></select_attributes></select></alert></alerts></configuration></cib>`,
	)...)
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := DecodeCIB(bytes.NewReader(b))
		if err != nil {
			failedDecode(t, err, c != nil, c)
			return
		}
		if c == nil {
			t.Fatal("a successful decode returned no CIB")
		}
		if c.Properties == nil {
			t.Error("nil Properties")
		}
		for _, n := range c.Nodes {
			if n.Type == "" || n.Attributes == nil {
				t.Errorf("node %q: type %q, attributes %v (want a type and a map)", n.Name, n.Type, n.Attributes)
			}
		}
		for _, r := range c.Resources {
			if r.Params == nil || r.Meta == nil {
				t.Errorf("resource %q: nil params or meta", r.ID)
			}
		}
		for _, a := range c.Alerts {
			if a.Meta == nil {
				t.Errorf("alert %q: nil meta", a.ID)
			}
		}
		for _, ns := range c.NodeStates {
			if ns.Transient == nil {
				t.Errorf("node state %q: nil transient attributes", ns.Name)
			}
		}
		v, err := DecodeVersion(bytes.NewReader(b))
		switch {
		case err == nil && v != c.Version:
			t.Fatalf("DecodeCIB read version %v, DecodeVersion %v", c.Version, v)
		case err != nil && plainVersion(b):
			t.Fatalf("DecodeCIB read version %v, DecodeVersion fails: %v", c.Version, err)
		}
	})
}

// plainVersion tells whether the root element of a document carries each version attribute
// at most once and never empty. DecodeCIB reads an empty one as 0 and the last of repeated
// ones, DecodeVersion refuses both; Pacemaker writes neither.
func plainVersion(b []byte) bool {
	dec := xml.NewDecoder(bytes.NewReader(b))
	for {
		tok, err := dec.Token()
		if err != nil {
			return false
		}
		se, ok := tok.(xml.StartElement)
		if !ok {
			continue
		}
		seen := map[string]bool{}
		for _, a := range se.Attr {
			switch a.Name.Local {
			case "admin_epoch", "epoch", "num_updates":
				if a.Value == "" || seen[a.Name.Local] {
					return false
				}
				seen[a.Name.Local] = true
			}
		}
		return true
	}
}

// FuzzDecodeVersion checks that no input panics, that a failed decode returns the zero
// version and says why, that a version written back as a root element reads the same, and
// that only the root element is read: what follows it cannot change the answer.
func FuzzDecodeVersion(f *testing.F) {
	fixtureSeeds(f, append(notPacemakerXML,
		`<?xml version="1.0"?><cib admin_epoch="1" epoch="22" num_updates="7" other="x"><broken`,
		`<cib admin_epoch="-1" epoch="+2" num_updates="007"/>`, `<cib epoch=" 1"/>`, `<pacemaker-result/>`,
	)...)
	f.Fuzz(func(t *testing.T, b []byte) {
		v, err := DecodeVersion(bytes.NewReader(b))
		if err != nil {
			failedDecode(t, err, v != (Version{}), v)
			return
		}
		root := `<cib admin_epoch="` + strconv.Itoa(v.AdminEpoch) + `" epoch="` + strconv.Itoa(v.Epoch) +
			`" num_updates="` + strconv.Itoa(v.NumUpdates) + `"/>`
		if again, err := DecodeVersion(bytes.NewReader([]byte(root))); err != nil || again != v {
			t.Fatalf("version %v written back as %s reads %v, %v", v, root, again, err)
		}
		more := append(bytes.Clone(b), "<</cib>\x00"...)
		if again, err := DecodeVersion(bytes.NewReader(more)); err != nil || again != v {
			t.Fatalf("bytes after the document changed version %v into %v, %v", v, again, err)
		}
	})
}

// xmlFenceOut writes a FenceEvent back in the shape stonith_admin --history prints.
type xmlFenceOut struct {
	Action     string `xml:"action,attr,omitempty"`
	Target     string `xml:"target,attr,omitempty"`
	Client     string `xml:"client,attr,omitempty"`
	Origin     string `xml:"origin,attr,omitempty"`
	Delegate   string `xml:"delegate,attr,omitempty"`
	Status     string `xml:"status,attr,omitempty"`
	ExitReason string `xml:"exit-reason,attr,omitempty"`
	Completed  string `xml:"completed,attr,omitempty"`
}

// fourDigitYear tells whether t formats as a 4-digit year, the only years the decoders read.
func fourDigitYear(t time.Time) bool { return t.IsZero() || (t.Year() >= 0 && t.Year() <= 9999) }

// FuzzDecodeFencingHistory checks that no input panics, that a failed decode returns no
// events and says why (a tool error carrying a failure code), that completion times come back
// in UTC, and that the events written back as a history document decode to the same events.
func FuzzDecodeFencingHistory(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("testdata", "crm_mon-*.xml"))
	for _, fn := range files {
		// crm_mon's fence_history holds the same events stonith_admin lists.
		if b, err := os.ReadFile(fn); err == nil {
			f.Add(bytes.ReplaceAll(b, []byte("fence_history"), []byte("list")))
		}
	}
	fixtureSeeds(f, append(notPacemakerXML,
		`<pacemaker-result api-version="2.25" request="stonith_admin --history * --output-as=xml">
  <list name="fencing history" count="1">
    <fence_event action="reboot" target="compute1" client="stonith_admin.16403" origin="node1" status="success" delegate="node1" completed="2026-11-21 10:42:07Z"/>
  </list>
  <status code="0" message="OK"/>
</pacemaker-result>`,
		`<pacemaker-result><list><fence_event target="x" completed="2026-11-21T10:42:07.5+01:00" exit-reason="a&#xA;b"/></list></pacemaker-result>`,
		`<pacemaker-result><list><fence_event target="x" completed="yesterday"/></list></pacemaker-result>`,
		`<pacemaker-result><list><fence_event completed="0000-01-01 00:00:00+01:00"/></list></pacemaker-result>`,
		`<pacemaker-result><status code="102" message="Not connected"/></pacemaker-result>`,
	)...)
	f.Fuzz(func(t *testing.T, b []byte) {
		evs, err := DecodeFencingHistory(bytes.NewReader(b))
		if err != nil {
			failedDecode(t, err, evs != nil, evs)
			return
		}
		var doc struct {
			XMLName xml.Name      `xml:"pacemaker-result"`
			Events  []xmlFenceOut `xml:"list>fence_event"`
		}
		for _, e := range evs {
			if !e.Completed.IsZero() && e.Completed.Location() != time.UTC {
				t.Fatalf("completion time %v is not UTC", e.Completed)
			}
			if !fourDigitYear(e.Completed) {
				return // a time no Pacemaker writes; nothing to write back
			}
		}
		for _, e := range evs {
			out := xmlFenceOut{
				Action: e.Action, Target: e.Target, Client: e.Client, Origin: e.Origin,
				Delegate: e.Delegate, Status: e.Status, ExitReason: e.ExitReason,
			}
			if !e.Completed.IsZero() {
				out.Completed = e.Completed.Format(time.RFC3339Nano)
			}
			doc.Events = append(doc.Events, out)
		}
		written, err := xml.Marshal(doc)
		if err != nil {
			t.Fatal(err)
		}
		again, err := DecodeFencingHistory(bytes.NewReader(written))
		if err != nil {
			t.Fatalf("events written back as %s do not decode: %v", written, err)
		}
		if diff := cmp.Diff(evs, again); diff != "" {
			t.Fatalf("events written back as %s (-first +second):\n%s", written, diff)
		}
	})
}

// FuzzDecodeAttributes checks that no input panics, that a failed decode returns no values
// and says why (a tool error carrying a failure code), and that the values written back as an
// attribute query's answer decode to the same values.
func FuzzDecodeAttributes(f *testing.F) {
	fixtureSeeds(f, append(notPacemakerXML,
		`<pacemaker-result><attribute name="computeha-evacuate" value="pending" host="node1"/><status code="0" message="OK"/></pacemaker-result>`,
		`<pacemaker-result><status code="78" message="Invalid configuration"><errors><error>attrd_updater: Could not query value of nosuch: attribute does not exist</error></errors></status></pacemaker-result>`,
		`<pacemaker-result><attribute name="a" value="x&#xD;&#x9;y &amp; &lt;z&gt;" scope="status"/><status code="x"/></pacemaker-result>`,
	)...)
	f.Fuzz(func(t *testing.T, b []byte) {
		vals, err := DecodeAttributes(bytes.NewReader(b))
		if err != nil {
			failedDecode(t, err, vals != nil, vals)
			return
		}
		type attr struct {
			Name  string `xml:"name,attr"`
			Value string `xml:"value,attr"`
			Host  string `xml:"host,attr,omitempty"`
		}
		var doc struct {
			XMLName xml.Name `xml:"pacemaker-result"`
			Attrs   []attr   `xml:"attribute"`
		}
		for _, v := range vals {
			doc.Attrs = append(doc.Attrs, attr{Name: v.Name, Value: v.Value, Host: v.Node})
		}
		written, err := xml.Marshal(doc)
		if err != nil {
			t.Fatal(err)
		}
		again, err := DecodeAttributes(bytes.NewReader(written))
		if err != nil {
			t.Fatalf("values written back as %s do not decode: %v", written, err)
		}
		if diff := cmp.Diff(vals, again); diff != "" {
			t.Fatalf("values written back as %s (-first +second):\n%s", written, diff)
		}
	})
}
