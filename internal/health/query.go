package health

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"time"
)

// FenceQuery is fence_gossip's order, sent by gossip on every network, that a host fence
// itself: it reaches a host that lost only its storage, which reads no pill. The host stops
// feeding its watchdog, then answers with a [FenceAck] at ReplyTo. It is sent again every
// round until acknowledged: a packet may be lost.
type FenceQuery struct {
	// Host is the host that must die; ID is the pill's (the same order, written on the
	// storage too).
	Host string `json:"host"`
	ID   string `json:"id"`
	By   string `json:"by"`
	// Time is when it was sent, on the sender's clock: a host takes only a fresh query, so
	// a copy captured and sent again later condemns nobody. Since is when the fencing
	// attempt began: a host that started after it (it was reset since) ignores the query,
	// as it ignores a pill written before it started.
	Time  time.Time `json:"time"`
	Since time.Time `json:"since"`
	// ReplyTo is where the sender listens for the acknowledgement.
	ReplyTo netip.AddrPort `json:"reply_to"`
}

// FenceAck is a host's answer to a [FenceQuery]: it no longer feeds its watchdog, whose
// countdown is Watchdog, since Since.
type FenceAck struct {
	Host     string         `json:"host"`
	ID       string         `json:"id"`
	Since    time.Time      `json:"since"`
	Watchdog RecordWatchdog `json:"watchdog"`
}

// The messages' kinds, the first byte of each.
const (
	queryKind byte = 'Q'
	ackKind   byte = 'A'
)

// MarshalQuery encodes q as a gossip message.
func MarshalQuery(q FenceQuery) ([]byte, error) { return marshalKind(queryKind, q) }

// MarshalAck encodes a as a gossip message.
func MarshalAck(a FenceAck) ([]byte, error) { return marshalKind(ackKind, a) }

func marshalKind(kind byte, v any) ([]byte, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("gossip message: %w", err)
	}
	return append([]byte{kind}, b...), nil
}

// ErrNotQuery and ErrNotAck are a message of another kind.
var (
	ErrNotQuery = errors.New("not a fence query")
	ErrNotAck   = errors.New("not a fence acknowledgement")
)

// ParseQuery decodes a fence query; anything else, or one lacking a field, is an error.
func ParseQuery(msg []byte) (FenceQuery, error) {
	q, err := parseKind[FenceQuery](msg, queryKind, ErrNotQuery, "fence query")
	if err == nil && (q.Host == "" || q.ID == "" || q.Time.IsZero() || q.Since.IsZero() || !q.ReplyTo.IsValid()) {
		return FenceQuery{}, errors.New("fence query: host, id, time, since and reply_to are required")
	}
	return q, err
}

// ParseAck decodes a fence acknowledgement; anything else, or one lacking a field, is an
// error.
func ParseAck(msg []byte) (FenceAck, error) {
	a, err := parseKind[FenceAck](msg, ackKind, ErrNotAck, "fence acknowledgement")
	if err == nil && (a.Host == "" || a.ID == "" || a.Since.IsZero() || a.Watchdog.TimeoutMS <= 0) {
		return FenceAck{}, errors.New("fence acknowledgement: host, id, since and the watchdog's timeout are required")
	}
	return a, err
}

// parseKind decodes msg as a message of kind: its first byte, then one JSON object.
func parseKind[T any](msg []byte, kind byte, notKind error, what string) (T, error) {
	var v T
	if len(msg) == 0 || msg[0] != kind {
		return v, notKind
	}
	if err := decodeLine(msg[1:], &v); err != nil {
		var zero T
		return zero, fmt.Errorf("%s: %w", what, err)
	}
	return v, nil
}

// Fresh tells whether q, sent at q.Time on its sender's clock, may be obeyed at now: sent
// within the last window, give or take skew.
func (q FenceQuery) Fresh(now time.Time, window, skew time.Duration) bool {
	age := now.Sub(q.Time)
	return age >= -skew && age <= window+skew
}
