package health

import (
	"time"

	"github.com/computeha/computeha/internal/config"
)

// Collect turns observations into the evidence about host, under the configured tolerances.
func Collect(cfg *config.Health, obs Observations, host string) Evidence {
	panic("not implemented")
}

// Decide judges a host from its evidence. It is pure: same input, same decision.
func Decide(cfg *config.Health, ev Evidence) Decision {
	panic("not implemented")
}

// Tracker adds hysteresis: a host's decided state changes only once a new state has held for
// cfg.Confirm.
type Tracker struct{}

// NewTracker returns a tracker for the configured hysteresis.
func NewTracker(cfg *config.Health) *Tracker { panic("not implemented") }

// Observe feeds the latest raw decision for d.Host at now and returns the confirmed decision,
// and whether it changed with this observation.
func (t *Tracker) Observe(now time.Time, d Decision) (Decision, bool) {
	panic("not implemented")
}
