package health

import (
	"fmt"
	"time"

	"github.com/computeha/computeha/internal/config"
)

// SilenceEvidence is what tells whether a host has been silent long enough to be off: its
// newest heartbeat record, and the observers' reachability views.
type SilenceEvidence struct {
	// Record is the host's newest heartbeat record; nil when it has none.
	Record *Record
	// StorageErr is why the shared directory could not be read (nil: it was).
	StorageErr error
	// Views are the reachability attributes' raw values, by network then observing node.
	Views map[string]map[string]string
	// Online tells which nodes Pacemaker has online. An observer it has not may be in
	// another partition with the host, still answering it: no silence is proven then.
	Online map[string]bool
}

// SilentUntil tells by when host, silent as the evidence shows, is surely off: it holds a
// watchdog (its last record says so), and it fences itself once it has had neither its
// storage nor any observer for self_fence_after, so it is off by the self-fence bound after
// its last contact with either (see [SelfFencedBy]), plus the margin. The last contact is
// its newest heartbeat record's time, and the newest last answer any observer saw from it on
// any network, each plus the clock skew allowed between hosts.
//
// Every observer with an address on a network the host has must be online and see the host
// lost there, with its last answer: the host lives on while it reaches any observer, and an
// observer out of this partition (or whose Pacemaker stopped) may still answer it. When the
// evidence cannot bound it (no record, no watchdog, an observer offline, reaching the host,
// unable to tell, or that never timed its loss; storage unreadable), SilentUntil returns the
// zero time and says what is missing.
func SilentUntil(cfg *config.Health, host string, ev SilenceEvidence) (time.Time, string) {
	if ev.StorageErr != nil {
		return time.Time{}, fmt.Sprintf("the shared storage cannot be read, so %s's heartbeat is unknown: %v", host, ev.StorageErr)
	}
	rec := ev.Record
	if rec == nil {
		return time.Time{}, fmt.Sprintf("%s has no heartbeat record in %s: it is not known to hold a watchdog", host, cfg.SharedDir)
	}
	if rec.Watchdog == nil {
		return time.Time{}, fmt.Sprintf("%s's last heartbeat (%s) announces no watchdog: it may not fence itself",
			host, rec.Time.UTC().Format(time.RFC3339))
	}
	w := cfg.Watchdog
	timeout := max(w.Timeout, rec.Watchdog.Timeout())
	selfFence := max(w.SelfFenceAfter, rec.Watchdog.SelfFenceAfter())
	contact := rec.Time.Add(cfg.ClockSkew)
	seen := 0
	for _, n := range cfg.Networks {
		// A host that joined by gossip is on the networks its record announces.
		if _, ok := HostAddress(cfg, host, n.Name, rec); !ok {
			continue
		}
		for _, o := range w.Observers {
			if o == host {
				continue
			}
			if _, ok := cfg.Address(o, n.Name); !ok {
				continue
			}
			if !ev.Online[o] {
				return time.Time{}, fmt.Sprintf("observer %s is not online in this partition: it may still reach %s", o, host)
			}
			value := ev.Views[n.Name][o]
			if value == "" {
				return time.Time{}, fmt.Sprintf("observer %s publishes no view of network %s", o, n.Name)
			}
			view, lastOK, err := ParseReachTimes(value)
			if err != nil {
				return time.Time{}, fmt.Sprintf("observer %s's view of network %s cannot be read: %v", o, n.Name, err)
			}
			switch view[host] {
			case Lost:
			case OK:
				return time.Time{}, fmt.Sprintf("observer %s still reaches %s on network %s", o, host, n.Name)
			default:
				return time.Time{}, fmt.Sprintf("observer %s cannot tell whether it reaches %s on network %s", o, host, n.Name)
			}
			t := lastOK[host]
			if t.IsZero() {
				return time.Time{}, fmt.Sprintf("observer %s sees %s lost on network %s but does not say since when", o, host, n.Name)
			}
			seen++
			if t.Add(cfg.ClockSkew).After(contact) {
				contact = t.Add(cfg.ClockSkew)
			}
		}
	}
	if seen == 0 {
		return time.Time{}, fmt.Sprintf("no observer (%v) has a view of %s on any network", w.Observers, host)
	}
	return SelfFencedBy(contact, cfg.Interval, timeout, selfFence).Add(w.Margin), ""
}
