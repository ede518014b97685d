package health

import (
	"testing"

	"github.com/computeha/computeha/internal/evacstate"
)

func TestOnlyTheDisableResponsesReasonsAreUndoneWhenTheHostRunsAgain(t *testing.T) {
	for _, d := range []Decision{
		{State: Isolated},
		{State: ManagementLost, Networks: []string{"management"}},
		{State: Degraded, Networks: []string{"storage", "tenant"}},
		{State: Degraded},
	} {
		r := d.DisableReason()
		if !UndoneWhenRunning(r) || !evacstate.DisabledForHealth(r) || evacstate.DisabledByUs(r) {
			t.Errorf("%s: disable reason %q: undone %v, health %v, fencing's %v; want a health disable undone when running",
				d.State, r, UndoneWhenRunning(r), evacstate.DisabledForHealth(r), evacstate.DisabledByUs(r))
		}
	}
	if r := (Decision{State: Degraded, Networks: []string{"storage", "tenant"}}).DisableReason(); r != "computeha: health: degraded: storage, tenant lost" {
		t.Errorf("disable reason %q", r)
	}
	m := Decision{State: Degraded, Networks: []string{"tenant"}}.MigrateReason()
	if m != "computeha: health: tenant network lost" || UndoneWhenRunning(m) || !evacstate.DisabledForHealth(m) {
		t.Errorf("migrate reason %q (undone %v): want a health disable an operator undoes", m, UndoneWhenRunning(m))
	}
	for _, r := range []string{"", "operator: repair", evacstate.DisabledReasonPrefix + " fenced", evacstate.HealthReasonPrefix + " isolated later"} {
		if UndoneWhenRunning(r) {
			t.Errorf("%q is undone when the host runs: only the disable response's are", r)
		}
	}
}
