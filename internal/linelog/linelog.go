// Package linelog is the log format of computeha's agents: one line per
// record, "LEVEL: message key=value ...", the shape fence-agents and
// ocf_log print on stderr and Pacemaker copies into its own log.
package linelog

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"time"
)

// Handler writes records as lines to W.
type Handler struct {
	w     io.Writer
	level slog.Leveler
	now   func() time.Time // non-nil: each line starts with a timestamp
	mu    *sync.Mutex
	attrs []slog.Attr
}

// New returns a handler writing records at level or above to w. With now
// set, lines start with its time (for debug files).
func New(w io.Writer, level slog.Leveler, now func() time.Time) *Handler {
	return &Handler{w: w, level: level, now: now, mu: new(sync.Mutex)}
}

// Enabled implements slog.Handler.
func (h *Handler) Enabled(_ context.Context, l slog.Level) bool { return l >= h.level.Level() }

// Handle implements slog.Handler.
func (h *Handler) Handle(_ context.Context, rec slog.Record) error {
	var b strings.Builder
	if h.now != nil {
		b.WriteString(h.now().Format("2006-01-02 15:04:05.000 "))
	}
	b.WriteString(LevelName(rec.Level))
	b.WriteString(": ")
	b.WriteString(Format(rec, h.attrs))
	b.WriteString("\n")
	h.mu.Lock()
	defer h.mu.Unlock()
	_, err := io.WriteString(h.w, b.String())
	return err
}

// WithAttrs implements slog.Handler.
func (h *Handler) WithAttrs(as []slog.Attr) slog.Handler {
	c := *h
	c.attrs = append(append([]slog.Attr(nil), h.attrs...), as...)
	return &c
}

// WithGroup implements slog.Handler; groups are flattened.
func (h *Handler) WithGroup(string) slog.Handler { return h }

// LevelName is the level as the cluster tools spell it.
func LevelName(l slog.Level) string {
	switch {
	case l >= slog.LevelError:
		return "ERROR"
	case l >= slog.LevelWarn:
		return "WARNING"
	case l >= slog.LevelInfo:
		return "INFO"
	}
	return "DEBUG"
}

// Format renders a record's message and attributes on one line.
func Format(rec slog.Record, attrs []slog.Attr) string {
	var b strings.Builder
	b.WriteString(OneLine(rec.Message))
	write := func(a slog.Attr) bool {
		fmt.Fprintf(&b, " %s=%s", a.Key, OneLine(a.Value.String()))
		return true
	}
	for _, a := range attrs {
		write(a)
	}
	rec.Attrs(write)
	return b.String()
}

// OneLine folds multi-line text (library errors) so a record stays one line.
func OneLine(s string) string {
	return strings.Join(strings.Fields(strings.ReplaceAll(strings.TrimSpace(s), "\n", " ")), " ")
}

// Fanout sends each record to every handler that wants it.
type Fanout []slog.Handler

// Enabled implements slog.Handler.
func (f Fanout) Enabled(ctx context.Context, l slog.Level) bool {
	for _, h := range f {
		if h.Enabled(ctx, l) {
			return true
		}
	}
	return false
}

// Handle implements slog.Handler; the first error is returned.
func (f Fanout) Handle(ctx context.Context, r slog.Record) error {
	var first error
	for _, h := range f {
		if h.Enabled(ctx, r.Level) {
			if err := h.Handle(ctx, r.Clone()); err != nil && first == nil {
				first = err
			}
		}
	}
	return first
}

// WithAttrs implements slog.Handler.
func (f Fanout) WithAttrs(as []slog.Attr) slog.Handler {
	out := make(Fanout, len(f))
	for i, h := range f {
		out[i] = h.WithAttrs(as)
	}
	return out
}

// WithGroup implements slog.Handler.
func (f Fanout) WithGroup(n string) slog.Handler {
	out := make(Fanout, len(f))
	for i, h := range f {
		out[i] = h.WithGroup(n)
	}
	return out
}

// NewLocked is New sharing mu with other writers of w (an agent that also
// prints its exit reason there).
func NewLocked(w io.Writer, level slog.Leveler, mu *sync.Mutex) *Handler {
	return &Handler{w: w, level: level, mu: mu}
}
