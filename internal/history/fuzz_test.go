package history

import (
	"errors"
	"strings"
	"testing"
	"time"
)

// FuzzParseTime checks that no --since/--until value panics, that a failed parse returns the
// zero time and an ErrInvalid, that every time comes back in UTC, that an age never lies
// after now, and that a time printed the way the table and the JSON report print it parses
// back to itself (to the microsecond they keep).
func FuzzParseTime(f *testing.F) {
	for _, s := range []string{
		// The forms the doc comment and TestParseTime name.
		"", "2h", "1h30m", "7d", "90s", "15m", "2h30m",
		"2026-03-01T11:00:00+01:00", "2026-03-01T10:00:00.000007Z", "2026-03-01T10:00:00Z",
		"2026-03-01 10:00:00.000007", "2026-03-01 10:00:00.123456", "2026-03-01 10:00", "2026-03-01",
		// What TestParseTimeRefusesWhatItCannotRead refuses.
		"yesterday", "-2h", "2026-13-01", "10:00", "7 d",
		// Edges: huge ages, signs, zero, odd zones and years.
		"0", "0d", "-0d", "+3d", "9223372036854775807d", "106751d", "2562047h", "9999999999h", "1e3s",
		// 0001-01-01 is the zero time, which callers read as no bound: refused.
		"0001-01-01", "0000-01-01T00:00:00+01:00", "9999-12-31T23:59:59-23:59", "2026-03-01T10:00", " 2h ", "2026-03-01\x00",
	} {
		f.Add(s)
	}
	now := time.Date(2026, 3, 8, 12, 0, 0, 0, time.FixedZone("CET", 3600))
	f.Fuzz(func(t *testing.T, s string) {
		got, err := ParseTime(s, now)
		if err != nil {
			if !got.IsZero() {
				t.Fatalf("ParseTime(%q) failed (%v) but returned %v", s, err, got)
			}
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("ParseTime(%q) = %v, not an ErrInvalid", s, err)
			}
			return
		}
		if strings.TrimSpace(s) == "" {
			if !got.IsZero() {
				t.Fatalf("ParseTime(%q) = %v, want the zero time (no bound)", s, got)
			}
			return
		}
		if got.Location() != time.UTC {
			t.Fatalf("ParseTime(%q) = %v, not in UTC", s, got)
		}
		if readsAsAge(s) && got.After(now) {
			t.Fatalf("ParseTime(%q), an age, = %v: after now (%v)", s, got, now)
		}
		if got.Year() < 0 || got.Year() > 9999 {
			return // the table and the report print 4-digit years only
		}
		want := got.Truncate(time.Microsecond)
		for _, layout := range []string{tableTime, jsonTime} {
			printed := got.Format(layout)
			again, err := ParseTime(printed, now)
			if err != nil || !again.Equal(want) {
				t.Fatalf("ParseTime(%q) = %v; printed as %q it reads %v, %v", s, got, printed, again, err)
			}
		}
	})
}

// readsAsAge tells whether s reads as an age before now rather than a date: a whole number
// of days, or a Go duration.
func readsAsAge(s string) bool {
	s = strings.TrimSpace(s)
	if days, ok := strings.CutSuffix(s, "d"); ok && days != "" && strings.Trim(days, "+-0123456789") == "" {
		return true
	}
	_, err := time.ParseDuration(s)
	return err == nil
}

// FuzzParseKind checks that no value panics, that a failed parse returns no kind and an
// ErrInvalid naming every kind accepted, and that what parses is a valid kind which is the
// value itself, trimmed and in lower case.
func FuzzParseKind(f *testing.F) {
	for _, k := range Kinds() {
		f.Add(string(k))
	}
	for _, s := range []string{" Fencing ", "reboot", "", "FAILURE", "move\x00", "ſence", "decision decision"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		k, err := ParseKind(s)
		if err != nil {
			if k != "" {
				t.Fatalf("ParseKind(%q) failed (%v) but returned %q", s, err, k)
			}
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("ParseKind(%q) = %v, not an ErrInvalid", s, err)
			}
			for _, v := range Kinds() {
				if !strings.Contains(err.Error(), string(v)) {
					t.Fatalf("ParseKind(%q) = %v, which does not name %s", s, err, v)
				}
			}
			return
		}
		if !k.Valid() || string(k) != strings.ToLower(strings.TrimSpace(s)) {
			t.Fatalf("ParseKind(%q) = %q", s, k)
		}
		if again, err := ParseKind(string(k)); err != nil || again != k {
			t.Fatalf("ParseKind(%q) = %q, %v; want %q", k, again, err, k)
		}
	})
}

// FuzzParseReportFormat checks that no --format value panics, that a failed parse returns no
// format and an ErrInvalid, and that what parses is one RenderReport writes (an empty value
// is the table) and parses back to itself.
func FuzzParseReportFormat(f *testing.F) {
	for _, s := range []string{"", "table", "csv", "json", " JSON ", "xml", "Csv\x00", "tablé"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, err := ParseReportFormat(s)
		if err != nil {
			if got != "" {
				t.Fatalf("ParseReportFormat(%q) failed (%v) but returned %q", s, err, got)
			}
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("ParseReportFormat(%q) = %v, not an ErrInvalid", s, err)
			}
			return
		}
		switch {
		case got != FormatTable && got != FormatCSV && got != FormatJSON:
			t.Fatalf("ParseReportFormat(%q) = %q, which RenderReport does not write", s, got)
		case strings.TrimSpace(s) == "" && got != FormatTable:
			t.Fatalf("ParseReportFormat(%q) = %q, want the table", s, got)
		case strings.TrimSpace(s) != "" && string(got) != strings.ToLower(strings.TrimSpace(s)):
			t.Fatalf("ParseReportFormat(%q) = %q", s, got)
		}
		if again, err := ParseReportFormat(string(got)); err != nil || again != got {
			t.Fatalf("ParseReportFormat(%q) = %q, %v; want %q", got, again, err, got)
		}
	})
}
