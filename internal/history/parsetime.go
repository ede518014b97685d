package history

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// maxAgeDays is the longest age in days ParseTime reads: the longest a time.Duration holds
// (about 292 years), as for an age in hours.
const maxAgeDays = int(math.MaxInt64 / int64(24*time.Hour))

// ParseTime reads a --since/--until value, so that every command accepts
// the same forms:
//
//   - an age before now: "90s", "15m", "2h30m", or whole days "7d";
//   - RFC 3339 with a zone: "2026-03-01T10:00:00Z", "2026-03-01T11:00:00+01:00";
//   - a UTC date and time without zone, as the table prints them:
//     "2026-03-01 10:00:00.123456", "2026-03-01 10:00", "2026-03-01".
//
// An empty value gives the zero time (no bound). Errors wrap ErrInvalid.
func ParseTime(s string, now time.Time) (time.Time, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return time.Time{}, nil
	}
	if days, ok := strings.CutSuffix(s, "d"); ok {
		if n, err := strconv.Atoi(days); err == nil && n >= 0 {
			if n > maxAgeDays {
				// AddDate would overflow and land anywhere, the future included.
				return time.Time{}, fmt.Errorf("%w: time %q: an age must not exceed %dd", ErrInvalid, s, maxAgeDays)
			}
			return now.AddDate(0, 0, -n).UTC(), nil
		}
	}
	if d, err := time.ParseDuration(s); err == nil {
		if d < 0 {
			return time.Time{}, fmt.Errorf("%w: time %q: an age must not be negative", ErrInvalid, s)
		}
		return now.Add(-d).UTC(), nil
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return afterZero(s, t.UTC())
	}
	for _, layout := range []string{
		"2006-01-02 15:04:05.999999999", "2006-01-02T15:04:05.999999999",
		"2006-01-02 15:04", "2006-01-02T15:04", "2006-01-02",
	} {
		if t, err := time.ParseInLocation(layout, s, time.UTC); err == nil {
			return afterZero(s, t)
		}
	}
	return time.Time{}, fmt.Errorf("%w: time %q: want an age (2h, 7d), RFC 3339, or a UTC \"YYYY-MM-DD[ HH:MM[:SS]]\"", ErrInvalid, s)
}

// afterZero refuses a time at or before 0001-01-01 00:00 UTC: that is the zero time, which
// means no bound, so "--until 0001-01-01" would select everything; an empty value is the way
// to say no bound.
func afterZero(s string, t time.Time) (time.Time, error) {
	if !t.After(time.Time{}) {
		return time.Time{}, fmt.Errorf("%w: time %q: at or before 0001-01-01 00:00 UTC, which reads as no bound (leave it empty for that)", ErrInvalid, s)
	}
	return t, nil
}
