package health

import (
	"fmt"
	"sort"
	"strings"
)

// ReachAttributePrefix starts the name of the private attrd attribute (held by Pacemaker's
// attrd, never written to the CIB) in which each host's hostcheck publishes what it sees on
// one network: computeha-reach-NETWORK on the observing node, valued "peer=ok peer2=lost ..."
// (see [FormatReach]).
const ReachAttributePrefix = "computeha-reach-"

// ReachAttribute is the attribute name for network.
func ReachAttribute(network string) string { return ReachAttributePrefix + network }

// FormatReach encodes an observer's view of its peers on one network, sorted by peer.
func FormatReach(view map[string]Signal) string {
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
	}
	return b.String()
}

// ParseReach decodes [FormatReach]'s output. Unknown words and repeated peers are an error.
func ParseReach(s string) (map[string]Signal, error) {
	view := map[string]Signal{}
	for _, f := range strings.Fields(s) {
		peer, v, ok := strings.Cut(f, "=")
		if !ok || peer == "" {
			return nil, fmt.Errorf("reachability %q: %q is not peer=state", s, f)
		}
		if _, dup := view[peer]; dup {
			// FormatReach never repeats a peer: the value is corrupt, and either state could be
			// the stale one.
			return nil, fmt.Errorf("reachability %q: peer %s is listed twice", s, peer)
		}
		switch v {
		case "ok":
			view[peer] = OK
		case "lost":
			view[peer] = Lost
		case "unknown":
			view[peer] = Unknown
		default:
			return nil, fmt.Errorf("reachability %q: state %q of %s is not ok, lost or unknown", s, v, peer)
		}
	}
	return view, nil
}
