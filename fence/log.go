package fence

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"time"
)

// redactor is the one writer every agent message passes through: it masks
// each secret (passwords, keys) before the bytes leave the process, so a
// library error that quotes its input cannot leak one.
type redactor struct {
	mu      sync.Mutex
	w       io.Writer
	secrets []string
}

// minSecretLen keeps masking from garbling messages when a secret is a
// single common character.
const minSecretLen = 3

func (r *redactor) addSecret(s string) {
	if len(s) < minSecretLen {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.secrets = append(r.secrets, s)
}

func (r *redactor) mask(p []byte) []byte {
	for _, s := range r.secrets {
		p = bytes.ReplaceAll(p, []byte(s), []byte("****"))
	}
	return p
}

func (r *redactor) Write(p []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, err := r.w.Write(r.mask(p)); err != nil {
		return 0, err
	}
	return len(p), nil
}

// lineHandler writes one line per record, "LEVEL: message key=value ...",
// the shape fence-agents print on stderr and Pacemaker copies into its log.
// With stamp set, lines start with a timestamp (for debug files).
type lineHandler struct {
	w     io.Writer
	level slog.Leveler
	stamp bool
	attrs []slog.Attr
	now   func() time.Time
}

func (h *lineHandler) Enabled(_ context.Context, l slog.Level) bool { return l >= h.level.Level() }

func (h *lineHandler) Handle(_ context.Context, rec slog.Record) error {
	var b strings.Builder
	if h.stamp {
		b.WriteString(h.now().Format("2006-01-02 15:04:05.000 "))
	}
	lvl := rec.Level.String()
	if rec.Level == slog.LevelWarn {
		lvl = "WARNING"
	}
	b.WriteString(lvl)
	b.WriteString(": ")
	b.WriteString(oneLine(rec.Message))
	write := func(a slog.Attr) bool {
		fmt.Fprintf(&b, " %s=%s", a.Key, oneLine(a.Value.String()))
		return true
	}
	for _, a := range h.attrs {
		write(a)
	}
	rec.Attrs(write)
	b.WriteString("\n")
	_, err := io.WriteString(h.w, b.String())
	return err
}

func (h *lineHandler) WithAttrs(as []slog.Attr) slog.Handler {
	c := *h
	c.attrs = append(append([]slog.Attr(nil), h.attrs...), as...)
	return &c
}

func (h *lineHandler) WithGroup(string) slog.Handler { return h }

// oneLine folds multi-line library errors so each record stays one line.
func oneLine(s string) string {
	s = strings.TrimSpace(s)
	return strings.Join(strings.Fields(strings.ReplaceAll(s, "\n", " ")), " ")
}

// fanout sends each record to every handler that wants it.
type fanout []slog.Handler

func (f fanout) Enabled(ctx context.Context, l slog.Level) bool {
	for _, h := range f {
		if h.Enabled(ctx, l) {
			return true
		}
	}
	return false
}

func (f fanout) Handle(ctx context.Context, r slog.Record) error {
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

func (f fanout) WithAttrs(as []slog.Attr) slog.Handler {
	out := make(fanout, len(f))
	for i, h := range f {
		out[i] = h.WithAttrs(as)
	}
	return out
}

func (f fanout) WithGroup(n string) slog.Handler {
	out := make(fanout, len(f))
	for i, h := range f {
		out[i] = h.WithGroup(n)
	}
	return out
}
