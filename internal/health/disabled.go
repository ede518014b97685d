package health

import (
	"strings"

	"github.com/computeha/computeha/internal/evacstate"
)

// The disabled reasons the evacuation daemon gives Nova for a decision. Those of the disable
// response are undone when the host is running again ([UndoneWhenRunning]); the migrate
// response's is not (the host's VMs were moved away because one of its networks failed: an
// operator looks at it before it takes VMs again).
const (
	disabledIsolated = evacstate.HealthReasonPrefix + " " + string(Isolated)
	disabledMgmtLost = evacstate.HealthReasonPrefix + " " + string(ManagementLost)
	disabledDegraded = evacstate.HealthReasonPrefix + " " + string(Degraded) + ": "
)

// DisableReason is the reason the disable response gives Nova, e.g. "computeha: health:
// isolated" or "computeha: health: degraded: storage lost".
func (d Decision) DisableReason() string {
	switch d.State {
	case Isolated:
		return disabledIsolated
	case ManagementLost:
		return disabledMgmtLost
	default:
		return disabledDegraded + d.LostNetworks() + " lost"
	}
}

// MigrateReason is the reason the migrate response gives Nova, e.g. "computeha: health:
// tenant network lost".
func (d Decision) MigrateReason() string {
	return evacstate.HealthReasonPrefix + " " + d.LostNetworks() + " network lost"
}

// LostNetworks names the lost networks behind the decision ("network" when none is named).
func (d Decision) LostNetworks() string {
	if len(d.Networks) == 0 {
		return "network"
	}
	return strings.Join(d.Networks, ", ")
}

// UndoneWhenRunning tells whether a service disabled with reason was disabled by the disable
// response: the only health disable undone when the host is running again.
func UndoneWhenRunning(reason string) bool {
	return reason == disabledIsolated || reason == disabledMgmtLost || strings.HasPrefix(reason, disabledDegraded)
}
