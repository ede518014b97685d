package recovery

import (
	"context"
	"fmt"
	"slices"

	"github.com/computeha/computeha/internal/config"
	"github.com/computeha/computeha/internal/openstack"
)

// evacuate rebuilds a VM of a fenced host on another host (Nova's evacuate): Nova keeps its
// disks where the instance storage is shared or its root disk is a volume, and rebuilds it
// from its image otherwise. A VM in ERROR is reset to active first when evacuation.error_vms
// says so, since Nova rebuilds an ERROR VM as ERROR.
type evacuate struct{}

func (evacuate) Name() MethodName { return Evacuate }
func (evacuate) Placed() bool     { return true }

// ByMigrations: an evacuation's record turns "done" once Nova rebuilt the VM on its new host
// (running, or stopped as it was), and "error" or "failed" when it could not; one listing of the
// source host's migrations a round follows every evacuation of a recovery.
func (evacuate) ByMigrations() bool { return true }

func (evacuate) Start(ctx context.Context, x *run, m *move, attempt int) error {
	nova := x.e.o.Nova
	if attempt == 0 && m.srv.Status == "ERROR" && x.cfg().Evacuation.ErrorVMs == config.ErrorVMsResetState {
		if err := x.e.nova(ctx, "reset state", func(ctx context.Context) error { return nova.ResetState(ctx, m.id, "active") }); err != nil {
			return err
		}
		m.want = "ACTIVE"
	}
	if m.inFlight && attempt == 0 {
		return nil // Nova already rebuilds it: only wait.
	}
	return x.e.request(ctx, "evacuate", func(ctx context.Context) error {
		err := nova.Evacuate(ctx, m.id, m.target)
		if !openstack.IsSourceServiceUp(err) {
			return err
		}
		// Nova still sees the source up (the host was marked by something other than
		// fence_nova, and the recovery forces it down beside its first moves): force it
		// down, then ask again. Nothing is wrong with the target.
		svc, ferr := nova.FindComputeService(ctx, x.job.Source.NovaHost)
		if ferr != nil {
			return err
		}
		if _, ferr := nova.ForceDown(ctx, svc.ID); ferr != nil {
			return err
		}
		return nova.Evacuate(ctx, m.id, m.target)
	})
}

func (evacuate) Check(_ context.Context, x *run, m *move, o observation) (bool, string, error) {
	for _, mg := range o.migrations { // newest first
		if mg.Type != "evacuation" || mg.ID <= m.seen || mg.SourceCompute != x.job.Source.NovaHost {
			continue
		}
		switch mg.Status {
		case "done", "completed":
			return true, mg.DestCompute, nil
		case "error", "failed", "cancelled":
			// Nova found no valid host (the target full, or seen down under load), or the
			// rebuild failed there: a retry now, not at the confirmation timeout.
			m.seen = mg.ID
			return false, "", fmt.Errorf("the evacuation of %s to %q ended %s in Nova", m.id, mg.DestCompute, mg.Status)
		}
		return false, "", nil // the newest, still under way
	}
	return false, "", nil
}

// priorEvacuations is the newest evacuation record of server id among migs (all of them, or only
// finished ones when its evacuation in flight is to be waited for), so that the record of the
// coming request is told apart.
func priorEvacuations(migs []openstack.Migration, id string, inFlight bool) int {
	seen := 0
	for _, mg := range migs {
		if mg.ServerID != id || mg.Type != "evacuation" {
			continue
		}
		if inFlight && !slices.Contains(terminalMigration, mg.Status) {
			continue
		}
		seen = max(seen, mg.ID)
	}
	return seen
}
