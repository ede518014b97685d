package history

import (
	"errors"
	"testing"
	"time"
)

func TestParseTime(t *testing.T) {
	now := time.Date(2026, 3, 8, 12, 0, 0, 0, time.FixedZone("CET", 3600))
	tests := []struct {
		name string
		in   string
		want time.Time
	}{
		{"an empty value means no bound", "", time.Time{}},
		{"an age in hours counts back from now", "2h", time.Date(2026, 3, 8, 9, 0, 0, 0, time.UTC)},
		{"a compound age counts back from now", "1h30m", time.Date(2026, 3, 8, 9, 30, 0, 0, time.UTC)},
		{"an age in days counts back whole days", "7d", time.Date(2026, 3, 1, 11, 0, 0, 0, time.UTC)},
		{"RFC 3339 keeps its zone and comes back in UTC", "2026-03-01T11:00:00+01:00", time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)},
		{"RFC 3339 keeps microseconds", "2026-03-01T10:00:00.000007Z", time.Date(2026, 3, 1, 10, 0, 0, 7000, time.UTC)},
		{"a table time without zone is UTC", "2026-03-01 10:00:00.000007", time.Date(2026, 3, 1, 10, 0, 0, 7000, time.UTC)},
		{"a date and minute without zone is UTC", "2026-03-01 10:00", time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)},
		{"a date alone is midnight UTC", "2026-03-01", time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseTime(tc.in, now)
			if err != nil {
				t.Fatalf("ParseTime(%q): %v", tc.in, err)
			}
			if !got.Equal(tc.want) || (!got.IsZero() && got.Location() != time.UTC) {
				t.Errorf("ParseTime(%q) = %v, want %v", tc.in, got, tc.want)
			}
		})
	}
}

func TestParseTimeRefusesWhatItCannotRead(t *testing.T) {
	for _, in := range []string{"yesterday", "-2h", "2026-13-01", "10:00", "7 d", "0001-01-01", "0000-12-31T23:00:00-01:00", "0001-01-01T00:30:00+01:00", "0000-06-01T00:00:00Z"} {
		if _, err := ParseTime(in, time.Now()); !errors.Is(err, ErrInvalid) {
			t.Errorf("ParseTime(%q) = %v, want ErrInvalid", in, err)
		}
	}
}

func TestParseKindNamesTheAcceptedValues(t *testing.T) {
	if k, err := ParseKind(" Fencing "); err != nil || k != KindFencing {
		t.Errorf("ParseKind(Fencing) = %q, %v; want fencing", k, err)
	}
	_, err := ParseKind("reboot")
	if !errors.Is(err, ErrInvalid) || err.Error() != `invalid history input: unknown kind "reboot" (want one of failure, fencing, decision, move, alert, guard, maintenance, config)` {
		t.Errorf("ParseKind(reboot) = %v", err)
	}
}
