package evacstate

import (
	"strings"
	"testing"
	"time"
)

// FuzzParse checks that no attribute value panics, that a failed parse returns None (the
// caller must not read a phase into an error) and says why, that only an empty value is None,
// and that a parsed state written back with String parses to the same state, its time cut to
// the second String keeps.
func FuzzParse(f *testing.F) {
	for _, s := range roundTripStates {
		f.Add(s.String())
	}
	for _, s := range []string{
		// The package doc's examples and the table tests' inputs.
		"pending;by=fence_nova;since=2026-11-21T10:42:07Z",
		"running;owner=ctl2;since=2026-11-21T10:42:08Z",
		"done;since=2026-11-21T10:42:19Z",
		"failed;since=2026-11-21T10:42:19Z;reason=3 VMs not recovered",
		"pending", " done ;since=2026-11-21T10:42:07Z;future=x", "evacuating", "running;owner", "running;since=yesterday",
		// Edges: empty and repeated fields, escapes, fractions and zones, years past the edge.
		"", " ", ";", "done;", "done;=", "done;owner=a;owner=b", "failed;reason=%", "failed;reason=a%3Bb+c",
		"done;since=2026-11-21T10:42:07.123456789+01:00", "done;since=0000-01-01T00:00:00+01:00",
		"done;since=9999-12-31T23:59:59-01:00", "PENDING", "pending\x00", "done;since=2026-11-21T10:42:07Z;since=x",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		s, err := Parse(v)
		if err != nil {
			if s != (State{}) {
				t.Fatalf("Parse(%q) failed (%v) but returned %+v", v, err, s)
			}
			if err.Error() == "" {
				t.Fatalf("Parse(%q) failed with an empty error", v)
			}
			return
		}
		if (s.Phase == None) != (strings.TrimSpace(v) == "") {
			t.Fatalf("Parse(%q) = phase %q", v, s.Phase)
		}
		if y := s.Since.UTC().Year(); !s.Since.IsZero() && (y < 0 || y > 9999) {
			return // RFC 3339 has no such year: String cannot write it
		}
		w := s.String()
		again, err := Parse(w)
		if err != nil {
			t.Fatalf("Parse(%q) = %+v, whose String %q does not parse: %v", v, s, w, err)
		}
		want := s
		want.Since = s.Since.Truncate(time.Second)
		if again.Phase != want.Phase || again.Owner != want.Owner || again.By != want.By ||
			again.Reason != want.Reason || !again.Since.Equal(want.Since) {
			t.Fatalf("Parse(%q) = %+v; written back as %q it parses to %+v", v, s, w, again)
		}
		if w2 := again.String(); w2 != w {
			t.Fatalf("String is not stable: %q, then %q", w, w2)
		}
	})
}
