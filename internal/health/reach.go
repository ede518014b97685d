package health

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"
)

// ReachAttributePrefix starts the name of the private attrd attribute (held by Pacemaker's
// attrd, never written to the CIB) in which each host's hostcheck publishes what it sees on
// one network: computeha-reach-NETWORK on the observing node, valued "peer=ok peer2=lost ..."
// (see [FormatReach]).
const ReachAttributePrefix = "computeha-reach-"

// ReachAttribute is the attribute name for network.
func ReachAttribute(network string) string { return ReachAttributePrefix + network }

// FormatReach encodes an observer's view of its peers on one network, sorted by peer. A lost
// peer whose last answer is in lastOK carries it, in milliseconds since the epoch on the
// observer's clock: "cmp2=lost@1733480000123". The value changes only when a peer's state
// does, so publishing it costs nothing while nothing changes.
func FormatReach(view map[string]Signal, lastOK map[string]time.Time) string {
	peers := make([]string, 0, len(view))
	for p := range view {
		peers = append(peers, p)
	}
	sort.Strings(peers)
	var b strings.Builder
	for i, p := range peers {
		if i > 0 {
			b.WriteByte(' ')
		}
		fmt.Fprintf(&b, "%s=%s", p, view[p])
		if t := lastOK[p]; view[p] == Lost && !t.IsZero() {
			fmt.Fprintf(&b, "@%d", t.UnixMilli())
		}
	}
	return b.String()
}

// ParseReach decodes [FormatReach]'s output. Unknown words and repeated peers are an error.
func ParseReach(s string) (map[string]Signal, error) {
	view, _, err := ParseReachTimes(s)
	return view, err
}

// ParseReachTimes decodes [FormatReach]'s output with the last answers of the lost peers
// that carry one.
func ParseReachTimes(s string) (map[string]Signal, map[string]time.Time, error) {
	view := map[string]Signal{}
	var lastOK map[string]time.Time
	for _, f := range strings.Fields(s) {
		peer, v, ok := strings.Cut(f, "=")
		if !ok || peer == "" {
			return nil, nil, fmt.Errorf("reachability %q: %q is not peer=state", s, f)
		}
		if _, dup := view[peer]; dup {
			// FormatReach never repeats a peer: the value is corrupt, and either state could be
			// the stale one.
			return nil, nil, fmt.Errorf("reachability %q: peer %s is listed twice", s, peer)
		}
		if state, at, timed := strings.Cut(v, "@"); timed {
			ms, err := strconv.ParseInt(at, 10, 64)
			if state != "lost" || err != nil || ms <= 0 {
				return nil, nil, fmt.Errorf("reachability %q: %q of %s is not lost@MILLISECONDS", s, v, peer)
			}
			if lastOK == nil {
				lastOK = map[string]time.Time{}
			}
			lastOK[peer] = time.UnixMilli(ms)
			v = state
		}
		switch v {
		case "ok":
			view[peer] = OK
		case "lost":
			view[peer] = Lost
		case "unknown":
			view[peer] = Unknown
		default:
			return nil, nil, fmt.Errorf("reachability %q: state %q of %s is not ok, lost or unknown", s, v, peer)
		}
	}
	return view, lastOK, nil
}
