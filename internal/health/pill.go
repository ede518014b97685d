package health

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// Pill is a poison pill: fence_gossip's order, written on the shared storage, that a host
// fence itself. The host's hostcheck reads it, stops feeding its watchdog and acknowledges
// it in its heartbeat record ([Condemned]).
type Pill struct {
	// Host is the host that must die.
	Host string `json:"host"`
	// ID tells this pill from an earlier one for the same host.
	ID string `json:"id"`
	// By is the node that wrote it, Time when, on its clock.
	By   string    `json:"by"`
	Time time.Time `json:"time"`
}

// PillFile is the name of host's poison pill in the shared directory.
func PillFile(host string) string { return host + ".pill" }

// NewPillID returns a fresh pill ID.
func NewPillID() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// MarshalPill encodes p as one JSON line.
func MarshalPill(p Pill) ([]byte, error) {
	b, err := json.Marshal(p)
	if err != nil {
		return nil, fmt.Errorf("poison pill: %w", err)
	}
	return append(b, '\n'), nil
}

// ParsePill decodes a pill file. A torn or foreign file is an error.
func ParsePill(data []byte) (Pill, error) {
	var p Pill
	if err := decodeLine(data, &p); err != nil {
		return Pill{}, fmt.Errorf("poison pill: %w", err)
	}
	if p.Host == "" || p.ID == "" || p.Time.IsZero() {
		return Pill{}, errors.New("poison pill: host, id and time are required")
	}
	return p, nil
}

// SelfFencedBy is the latest time a host that holds a watchdog of countdown timeout, and
// fences itself once it has been alone (no storage, no observer) for selfFenceAfter, can
// still be running, if its last contact was lastContact: it notices on its next round (one
// interval later at most), stops feeding, and the countdown runs from its last feed, which
// came before. Callers add their margin.
func SelfFencedBy(lastContact time.Time, interval, timeout, selfFenceAfter time.Duration) time.Time {
	return lastContact.Add(selfFenceAfter + interval + timeout)
}
