package linelog

import (
	"bytes"
	"errors"
	"log/slog"
	"testing"
	"time"
)

func TestLinesCarryLevelMessageAndAttributesOnOneLine(t *testing.T) {
	var a, b bytes.Buffer
	now := func() time.Time { return time.Date(2026, 1, 2, 3, 4, 5, 6e6, time.UTC) }
	log := slog.New(Fanout{New(&a, slog.LevelWarn, nil), New(&b, slog.LevelDebug, now)}).With("host", "cmp1")
	log.Debug("probing")
	log.Warn("power request failed", "error", errors.New("line one\nline two"))
	if got, want := a.String(), "WARNING: power request failed host=cmp1 error=line one line two\n"; got != want {
		t.Errorf("stderr handler: %q, want %q", got, want)
	}
	if got, want := b.String(), "2026-01-02 03:04:05.006 DEBUG: probing host=cmp1\n"+
		"2026-01-02 03:04:05.006 WARNING: power request failed host=cmp1 error=line one line two\n"; got != want {
		t.Errorf("debug file handler: %q, want %q", got, want)
	}
}
