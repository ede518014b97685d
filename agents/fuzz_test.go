package agents

import (
	"strconv"
	"strings"
	"testing"
	"time"
)

// FuzzParseTime checks that no OCF time value panics, that a failed parse returns 0 and says
// why, that a time is never negative (as one past time.Duration's range used to be), that case
// and surrounding blanks do not matter, and that a whole number of seconds written back as a
// bare number reads the same.
func FuzzParseTime(f *testing.F) {
	for _, s := range []string{
		// TestParseTimeAndBool's values, good and bad.
		"30", "30s", "500ms", "5min", "2m", "1h", "1.5s", " 10 sec", "", "s", "-1", "5 fortnights", "1e3",
		// Pacemaker's other spellings and the edges of the number.
		"20msec", "1hr", "10000000", "10000000h", "10000001", "0.0000000001ms", ".5", "5.", ".", "1..2s",
		"+1s", "0x10", "NaN", "Inf", "1_000", "5 m s", "5MS", "\u00a05s", "5ſ",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, err := ParseTime(s)
		if err != nil {
			if d != 0 {
				t.Fatalf("ParseTime(%q) failed (%v) but returned %s", s, err, d)
			}
			if err.Error() == "" {
				t.Fatalf("ParseTime(%q) failed with an empty error", s)
			}
			return
		}
		if d < 0 {
			t.Fatalf("ParseTime(%q) = %s, a negative time", s, d)
		}
		if again, err := ParseTime(" " + strings.ToUpper(s) + "\t"); err != nil || again != d {
			t.Fatalf("ParseTime(%q) = %s, but in upper case with blanks around %s, %v", s, d, again, err)
		}
		if d%time.Second == 0 && d <= 1e7*time.Second {
			bare := strconv.FormatInt(int64(d/time.Second), 10)
			if again, err := ParseTime(bare); err != nil || again != d {
				t.Fatalf("ParseTime(%q) = %s, but ParseTime(%q) = %s, %v", s, d, bare, again, err)
			}
		}
	})
}

// FuzzParseBool checks that no OCF boolean value panics, that a failed parse returns false
// and says why, and that what parses is one of ocf_is_true's spellings (or of their opposite),
// whatever its case and surrounding blanks.
func FuzzParseBool(f *testing.F) {
	for _, s := range []string{"1", "yes", "TRUE", "on", "0", "no", "off", "False", "maybe", "", " y ", "N", "tru", "yes\x00", "ＹＥＳ"} {
		f.Add(s)
	}
	spellings := map[string]bool{
		"1": true, "yes": true, "y": true, "on": true, "true": true,
		"0": false, "no": false, "n": false, "off": false, "false": false,
	}
	f.Fuzz(func(t *testing.T, s string) {
		b, err := ParseBool(s)
		if err != nil {
			if b {
				t.Fatalf("ParseBool(%q) failed (%v) but returned true", s, err)
			}
			if err.Error() == "" {
				t.Fatalf("ParseBool(%q) failed with an empty error", s)
			}
			return
		}
		want, known := spellings[strings.ToLower(strings.TrimSpace(s))]
		if !known || b != want {
			t.Fatalf("ParseBool(%q) = %v, want it refused or %v", s, b, want)
		}
	})
}

// FuzzDecode checks that no set of OCF_RESKEY_ values makes Decode panic; that a failure is a
// one-line Configured error (it becomes Pacemaker's exit reason); that every field holds
// either the value given (the default when none was) or, when that value is unusable, the
// default, as a stop that goes on despite the problem needs; and that success means a name
// was given and every value was usable.
func FuzzDecode(f *testing.F) {
	spec := SpecOf(new(testParams))
	f.Add("x", "", "", "")
	f.Add("web", "7", "no", "1.5s")
	f.Add("", "3", "true", "5s")
	f.Add("x", "many", "maybe", "5 fortnights")
	f.Add("x\nERROR: injected", " 12 ", "YES", "10000000h")
	f.Add("x", "99999999999999999999", "\x00", "-1")
	f.Add("x", strings.Repeat("9", 100)+"\n"+strings.Repeat("x", 100), "on", "500 ms")
	f.Fuzz(func(t *testing.T, name, count, enabled, wait string) {
		values := map[string]string{"name": name, "count": count, "enabled": enabled, "wait": wait}
		var p testParams
		err := Decode(spec, values, &p)

		// What each field must hold: the value given, else the default; an unusable value
		// leaves the default.
		usable := true
		wantCount := 3
		if count != "" {
			if n, perr := strconv.Atoi(strings.TrimSpace(count)); perr == nil {
				wantCount = n
			} else {
				usable = false
			}
		}
		wantEnabled := true
		if enabled != "" {
			if b, perr := ParseBool(enabled); perr == nil {
				wantEnabled = b
			} else {
				usable = false
			}
		}
		wantWait := 5 * time.Second
		if wait != "" {
			if d, perr := ParseTime(wait); perr == nil {
				wantWait = d
			} else {
				usable = false
			}
		}
		got := testParams{Name: name, Count: wantCount, Enabled: wantEnabled, Wait: wantWait}
		if p != got {
			t.Fatalf("Decode(%q) filled %+v, want %+v", values, p, got)
		}
		if err == nil {
			if name == "" || !usable {
				t.Fatalf("Decode(%q) accepted a missing name or an unusable value", values)
			}
			return
		}
		if name != "" && usable {
			t.Fatalf("Decode(%q) refused usable values: %v", values, err)
		}
		if CodeOf(err) != ErrConfigured {
			t.Fatalf("Decode(%q) = %v, exit code %d, want %d (OCF_ERR_CONFIGURED)", values, err, CodeOf(err), ErrConfigured)
		}
		if msg := err.Error(); msg == "" || strings.ContainsAny(msg, "\r\n") {
			t.Fatalf("Decode(%q) = %q, want a one-line reason", values, msg)
		}
	})
}
