package health

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"time"
)

// Record is a host's heartbeat on the shared storage: one small file per host, named
// RecordFile(host) in the shared directory, rewritten and synced every interval.
type Record struct {
	Host string `json:"host"`
	// Seq increases by one with every write; a reader that sees it move knows the writer is
	// alive whatever the clocks say.
	Seq uint64 `json:"seq"`
	// Time is the writer's clock at the write.
	Time time.Time `json:"time"`
	// Service is the host's cluster service as the host sees it: "ok" or "down".
	Service string `json:"service"`
	// ServiceDownSince is when the host first saw its service down (zero when ok).
	ServiceDownSince time.Time `json:"service_down_since,omitzero"`
	// Networks is the host's own view of each network: "ok" when it reaches at least one peer
	// there, "lost" when it reaches none.
	Networks map[string]string `json:"networks,omitempty"`
	// Watchdog is the watchdog the host holds and feeds; absent when it holds none.
	Watchdog *RecordWatchdog `json:"watchdog,omitempty"`
	// Condemned is the poison pill the host obeyed: it stopped feeding its watchdog then,
	// and will not feed it again.
	Condemned *Condemned `json:"condemned,omitempty"`
	// Addresses is the host's address on each network, by network, when health.hosts does
	// not list it (it joined by gossip): where fence_gossip sends it the fence query, and
	// which networks its silence is proven on. Absent for a listed host, whose addresses the
	// configuration gives (so readers from before the field read its record still).
	Addresses map[string]string `json:"addresses,omitempty"`
}

// RecordWatchdog is the self-fencing a host's record announces: its watchdog's countdown as
// the device runs it (a driver may round what was asked for), and how long the host lives
// on without its storage and its observers.
type RecordWatchdog struct {
	TimeoutMS        int64 `json:"timeout_ms"`
	SelfFenceAfterMS int64 `json:"self_fence_after_ms"`
}

// Timeout is the watchdog's countdown.
func (w RecordWatchdog) Timeout() time.Duration { return time.Duration(w.TimeoutMS) * time.Millisecond }

// SelfFenceAfter is how long the host lives on alone.
func (w RecordWatchdog) SelfFenceAfter() time.Duration {
	return time.Duration(w.SelfFenceAfterMS) * time.Millisecond
}

// Condemned is a host's acknowledgement of a poison pill.
type Condemned struct {
	// Pill is the pill's ID.
	Pill string `json:"pill"`
	// Since is when the host stopped feeding its watchdog, on its clock.
	Since time.Time `json:"since"`
}

// Service values in a Record.
const (
	ServiceOK   = "ok"
	ServiceDown = "down"
)

// RecordSuffix ends the name of every heartbeat file in the shared directory.
const RecordSuffix = ".heartbeat"

// RecordFile is the name of host's heartbeat file in the shared directory.
func RecordFile(host string) string { return host + RecordSuffix }

// MarshalRecord encodes r as one JSON line.
func MarshalRecord(r Record) ([]byte, error) {
	b, err := json.Marshal(r)
	if err != nil {
		return nil, fmt.Errorf("heartbeat record: %w", err)
	}
	return append(b, '\n'), nil
}

// ParseRecord decodes a heartbeat file. A torn, empty or foreign file is an error, never a
// record with zero values.
func ParseRecord(data []byte) (Record, error) {
	var r Record
	if err := decodeLine(data, &r); err != nil {
		return Record{}, fmt.Errorf("heartbeat record: %w", err)
	}
	if r.Host == "" || r.Seq == 0 || r.Time.IsZero() {
		return Record{}, errors.New("heartbeat record: host, seq and time are required")
	}
	if r.Service != ServiceOK && r.Service != ServiceDown {
		return Record{}, fmt.Errorf("heartbeat record: service %q is neither %q nor %q", r.Service, ServiceOK, ServiceDown)
	}
	if w := r.Watchdog; w != nil && (w.TimeoutMS <= 0 || w.SelfFenceAfterMS <= 0) {
		return Record{}, errors.New("heartbeat record: a watchdog needs a positive timeout and self-fence time")
	}
	if c := r.Condemned; c != nil && (c.Pill == "" || c.Since.IsZero()) {
		return Record{}, errors.New("heartbeat record: a condemnation needs its pill and since when")
	}
	for network, a := range r.Addresses {
		if _, err := netip.ParseAddr(a); err != nil || network == "" {
			return Record{}, fmt.Errorf("heartbeat record: address %q on network %q is not an IP address on a named network", a, network)
		}
	}
	return r, nil
}

// decodeLine decodes data, one JSON object (as the shared directory's files hold), into v:
// a field v does not know, or anything after the object, is an error (not ours, or two
// writes mixed).
func decodeLine(data []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if rest := bytes.TrimSpace(data[dec.InputOffset():]); len(rest) > 0 {
		return fmt.Errorf("%d bytes of trailing data", len(rest))
	}
	return nil
}
