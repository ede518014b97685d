package config

import (
	"slices"
	"time"

	"github.com/computeha/computeha/internal/watchdog"
)

// Watchdog is how hosts fence themselves when nothing else can: hostcheck holds the host's
// watchdog and stops feeding it when it reads a poison pill for itself on the shared storage,
// or when it has lost its storage and every observer on every network for SelfFenceAfter.
// fence_gossip relies on it to fence a host whose power fence (its BMC) cannot be reached.
type Watchdog struct {
	// Device is the watchdog: a Linux watchdog device (/dev/watchdog), or file:/PATH for a
	// file that a supervisor outside the host watches (test labs). Empty: no watchdog, and
	// fence_gossip refuses to fence.
	Device string `yaml:"device"`
	// Timeout is the watchdog's countdown. Default 10s.
	Timeout time.Duration `yaml:"timeout"`
	// SelfFenceAfter is how long a host that can neither write its storage heartbeat nor
	// reach any observer on any network keeps feeding its watchdog: past it the host cannot
	// learn whether it has been condemned, so it fences itself. Default 10s.
	SelfFenceAfter time.Duration `yaml:"self_fence_after"`
	// Observers are the hosts whose contact keeps a host without storage alive, and whose
	// view of it fence_gossip reads: the controllers. A host that still reaches one of them
	// may have been asked to die and could not hear it, so it must not be fenced by silence.
	Observers []string `yaml:"observers"`
	// Margin is what fence_gossip adds to every bound it waits for. Default 2s.
	Margin time.Duration `yaml:"margin"`
}

// Defaults of the watchdog section.
const (
	DefaultWatchdogTimeout = 10 * time.Second
	DefaultSelfFenceAfter  = 10 * time.Second
	DefaultWatchdogMargin  = 2 * time.Second
	// MinWatchdogTimeout is the shortest countdown: it must outlast a few feeds.
	MinWatchdogTimeout = 2 * time.Second
)

// Enabled tells whether the hosts hold a watchdog.
func (w *Watchdog) Enabled() bool { return w.Device != "" }

// FeedEvery is how often hostcheck feeds a watchdog of countdown timeout: four times per
// countdown, so that one late feed never lets it fire.
func FeedEvery(timeout time.Duration) time.Duration { return timeout / 4 }

func (w *Watchdog) applyDefaults() {
	if w.Timeout == 0 {
		w.Timeout = DefaultWatchdogTimeout
	}
	if w.SelfFenceAfter == 0 {
		w.SelfFenceAfter = DefaultSelfFenceAfter
	}
	if w.Margin == 0 {
		w.Margin = DefaultWatchdogMargin
	}
}

func (w *Watchdog) validate(p *problems, h *Health) {
	if !w.Enabled() {
		return
	}
	if err := watchdog.CheckSpec(w.Device); err != nil {
		p.add("health.watchdog.device: %v", err)
	}
	if w.Timeout < MinWatchdogTimeout {
		p.add("health.watchdog.timeout: %s is below %s", w.Timeout, MinWatchdogTimeout)
	}
	// A host decides to fence itself on its own loop, every interval: a self-fence timeout
	// shorter than a few of them would take one slow round for an isolation.
	if w.SelfFenceAfter < 3*h.Interval {
		p.add("health.watchdog.self_fence_after: %s is shorter than three intervals (%s)", w.SelfFenceAfter, 3*h.Interval)
	}
	// The loss of the observers is known only after probe_failures missed probes.
	if lost := time.Duration(h.ProbeFailures+1) * h.Interval; w.SelfFenceAfter <= lost {
		p.add("health.watchdog.self_fence_after: %s is not longer than it takes to find a peer lost (%d probes: %s)", w.SelfFenceAfter, h.ProbeFailures+1, lost)
	}
	// fence_gossip bounds the host's last contact by the observers' last answers from it.
	// The host's own last answer from an observer comes later by up to an interval and a
	// probe's timeout (its probes and theirs are not in step): the margin must cover that.
	if w.Margin < 2*h.Interval {
		p.add("health.watchdog.margin: %s is shorter than two intervals (%s): a host could still be running when fence_gossip calls it off", w.Margin, 2*h.Interval)
	}
	if len(w.Observers) == 0 {
		p.add("health.watchdog.observers: required: the hosts (the controllers) whose contact keeps a host without storage alive")
	}
	for i, o := range w.Observers {
		if _, ok := h.Hosts[o]; !ok {
			p.add("health.watchdog.observers[%d]: %q is not one of health.hosts", i, o)
		}
		if slices.Index(w.Observers, o) != i {
			p.add("health.watchdog.observers[%d]: %q is listed twice", i, o)
		}
	}
}

// IsObserver tells whether host is one of the watchdog's observers.
func (w *Watchdog) IsObserver(host string) bool { return slices.Contains(w.Observers, host) }
