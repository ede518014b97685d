package recovery

import (
	"context"
	"fmt"

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
		if openstack.IsSourceServiceUp(err) {
			// Nova still sees the source up: force it down again, then retry.
			if svc, ferr := nova.FindComputeService(ctx, x.job.Source.NovaHost); ferr == nil {
				_, _ = nova.ForceDown(ctx, svc.ID)
			}
		}
		return err
	})
}

func (evacuate) Check(_ context.Context, x *run, m *move, s openstack.Server) (bool, string, error) {
	source := x.job.Source.NovaHost
	switch {
	case s.Host == source && s.TaskState == "" && s.Status == "ERROR":
		// Seen after Nova accepted the request, so not the VM's state before it: the rebuild
		// failed where it was (no valid host: the target full, or seen down under load).
		return false, "", fmt.Errorf("the evacuation of %s failed in Nova: ERROR on %s", m.id, s.Host)
	case s.Host != source && s.TaskState == "" && s.Status == m.want:
		return true, s.Host, nil
	case s.Host != source && s.TaskState == "" && s.Status == "ERROR":
		return false, "", fmt.Errorf("%s is in ERROR after its evacuation to %s", m.id, s.Host)
	}
	return false, "", nil
}
