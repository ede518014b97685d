package novacompute

import (
	"context"
	"errors"
	"os"

	"github.com/computeha/computeha/agents"
)

// Errors of the production wiring while the Nova client and the reader of
// Pacemaker's evacuation state are not part of the binary.
var (
	ErrNovaNotConfigured       = errors.New("Nova client not configured")
	ErrEvacuationNotConfigured = errors.New("evacuation state reader not configured")
)

// ProductionDeps are the dependencies of the agent the binary serves.
// The Nova client and the evacuation-state reader are not wired yet: start
// fails with "Nova client not configured" (or the evacuation error when
// evacuation_wait is on), monitor of a running nova-compute reports
// OCF_DEGRADED with that reason, and stop, probes, meta-data and
// validate-all work fully.
func ProductionDeps() Deps {
	return Deps{
		Nova: func(context.Context, *Params) (Nova, error) {
			return nil, ErrNovaNotConfigured
		},
		Evacuation: func(context.Context, *Params) (EvacuationState, error) {
			return nil, ErrEvacuationNotConfigured
		},
		Hostname: os.Hostname,
	}
}

// Agent is ocf:computeha:nova-compute as the binary serves it.
func Agent() *agents.Agent { return NewAgent(ProductionDeps()) }
