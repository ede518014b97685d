// Package alert raises the evacuation daemon's alerts from its present state and delivers
// them to operators: an Alertmanager (its v2 API), a webhook, a command.
//
// The alerts are those of the shipped Prometheus rules that read the daemon's own state (a
// host's judged health, a recovery's phase), with the same names, labels, severities and
// texts, so that a site without Prometheus is paged alike. [Rules] holds them; a test keeps
// them and the rules file in step.
//
// Each alert fires once its condition has held for the rule's For, and is resolved when the
// condition ends. A [Notifier] evaluates the rules each interval ([Book] keeps what fires) and
// hands every change to each receiver's own worker: a receiver that is down is retried with
// backoff until it answers and never slows the daemon or another receiver. The Alertmanager
// is sent every firing alert again each resend period, as Prometheus does; the webhook and
// the command get each firing and each resolution once.
package alert

import (
	"maps"
	"slices"
	"strings"
	"time"
)

// Severities of the alerts.
const (
	Critical = "critical"
	Warning  = "warning"
)

// Status of an alert as delivered.
const (
	Firing   = "firing"
	Resolved = "resolved"
)

// Alert is one alert: its identity is its labels (alertname included).
type Alert struct {
	Labels      map[string]string `json:"labels"`
	Annotations map[string]string `json:"annotations"`
	// StartsAt is when its condition began (before its For, like Prometheus' active time).
	StartsAt time.Time `json:"startsAt"`
	// EndsAt is when it was resolved; zero while it fires.
	EndsAt time.Time `json:"endsAt,omitzero"`
}

// Name is the alert's name (its alertname label).
func (a Alert) Name() string { return a.Labels["alertname"] }

// Status is Firing or Resolved.
func (a Alert) Status() string {
	if a.EndsAt.IsZero() {
		return Firing
	}
	return Resolved
}

// Key identifies the alert: its labels, sorted.
func (a Alert) Key() string {
	var b strings.Builder
	for _, k := range slices.Sorted(maps.Keys(a.Labels)) {
		b.WriteString(k)
		b.WriteByte('=')
		b.WriteString(a.Labels[k])
		b.WriteByte(0)
	}
	return b.String()
}

// episode identifies one firing of the alert: a later firing of the same labels is another.
func (a Alert) episode() string { return a.Key() + a.StartsAt.UTC().Format(time.RFC3339Nano) }

// Message is what the webhook receives as its body and the command on its standard input.
type Message struct {
	// Version of this format: "1".
	Version string `json:"version"`
	// Receiver is "webhook" or "command".
	Receiver string         `json:"receiver"`
	Alerts   []MessageAlert `json:"alerts"`
}

// MessageAlert is an alert with its status spelled out.
type MessageAlert struct {
	Status string `json:"status"`
	Alert
}

// MessageVersion is Message.Version.
const MessageVersion = "1"

// NewMessage wraps alerts for receiver.
func NewMessage(receiver string, alerts []Alert) Message {
	m := Message{Version: MessageVersion, Receiver: receiver, Alerts: make([]MessageAlert, 0, len(alerts))}
	for _, a := range alerts {
		m.Alerts = append(m.Alerts, MessageAlert{Status: a.Status(), Alert: a})
	}
	return m
}
