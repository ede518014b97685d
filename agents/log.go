package agents

import (
	"context"
	"log/slog"
	"log/syslog"

	"github.com/computeha/computeha/internal/linelog"
)

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
	m := linelog.Format(rec, h.attrs)
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
