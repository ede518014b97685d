package agents

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"log/syslog"
	"strings"
	"sync"
)

// lineHandler writes one line per record, "LEVEL: message key=value ...",
// the shape ocf_log prints on stderr and Pacemaker's executor copies into
// its log.
type lineHandler struct {
	mu    *sync.Mutex
	w     io.Writer
	level slog.Leveler
	attrs []slog.Attr
}

func (h *lineHandler) Enabled(_ context.Context, l slog.Level) bool { return l >= h.level.Level() }

func (h *lineHandler) Handle(_ context.Context, rec slog.Record) error {
	line := levelName(rec.Level) + ": " + format(rec, h.attrs) + "\n"
	h.mu.Lock()
	defer h.mu.Unlock()
	_, err := io.WriteString(h.w, line)
	return err
}

func (h *lineHandler) WithAttrs(as []slog.Attr) slog.Handler {
	c := *h
	c.attrs = append(append([]slog.Attr(nil), h.attrs...), as...)
	return &c
}

func (h *lineHandler) WithGroup(string) slog.Handler { return h }

func levelName(l slog.Level) string {
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

func format(rec slog.Record, attrs []slog.Attr) string {
	var b strings.Builder
	b.WriteString(oneLine(rec.Message))
	write := func(a slog.Attr) bool {
		fmt.Fprintf(&b, " %s=%s", a.Key, oneLine(a.Value.String()))
		return true
	}
	for _, a := range attrs {
		write(a)
	}
	rec.Attrs(write)
	return b.String()
}

// oneLine folds multi-line texts so each record and reason stays one line.
func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}

// Syslogger is the part of *syslog.Writer the runtime uses.
type Syslogger interface {
	Debug(m string) error
	Info(m string) error
	Warning(m string) error
	Err(m string) error
	Close() error
}

var _ Syslogger = (*syslog.Writer)(nil)

// DialSyslog connects to the local syslog socket with the tag
// resource-agents use, "agent(instance)". Without a local syslog it fails
// fast, and the runtime then logs to stderr only.
func DialSyslog(tag string) (Syslogger, error) {
	return syslog.Dial("", "", syslog.LOG_DAEMON|syslog.LOG_INFO, tag)
}

// syslogHandler sends records to syslog with their priority. Write errors
// are ignored: an agent never fails because logging does.
type syslogHandler struct {
	w     Syslogger
	level slog.Leveler
	attrs []slog.Attr
}

func (h *syslogHandler) Enabled(_ context.Context, l slog.Level) bool {
	return l >= h.level.Level()
}

func (h *syslogHandler) Handle(_ context.Context, rec slog.Record) error {
	m := format(rec, h.attrs)
	switch {
	case rec.Level >= slog.LevelError:
		_ = h.w.Err(m)
	case rec.Level >= slog.LevelWarn:
		_ = h.w.Warning(m)
	case rec.Level >= slog.LevelInfo:
		_ = h.w.Info(m)
	default:
		_ = h.w.Debug(m)
	}
	return nil
}

func (h *syslogHandler) WithAttrs(as []slog.Attr) slog.Handler {
	c := *h
	c.attrs = append(append([]slog.Attr(nil), h.attrs...), as...)
	return &c
}

func (h *syslogHandler) WithGroup(string) slog.Handler { return h }

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
