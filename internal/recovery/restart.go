package recovery

import (
	"context"
	"fmt"
)

// restart runs a VM again where it is, through Nova, so that Nova's view stays true: a hard
// reboot (the instance is destroyed and started from its definition, which also brings back
// one whose process died), or a start for one Nova found stopped.
type restart struct{}

func (restart) Name() MethodName   { return Restart }
func (restart) ByMigrations() bool { return false }
func (restart) Placed() bool       { return false }

func (restart) Start(ctx context.Context, x *run, m *move, _ int) error {
	nova := x.e.o.Nova
	return x.e.request(ctx, "restart", func(ctx context.Context) error {
		s, err := nova.Server(ctx, m.id)
		if err != nil {
			return err
		}
		if s.Status == "SHUTOFF" {
			return nova.StartServer(ctx, m.id)
		}
		return nova.Reboot(ctx, m.id, true)
	})
}

func (restart) Check(_ context.Context, _ *run, m *move, o observation) (bool, string, error) {
	s := o.server
	switch {
	case s.TaskState == "" && s.Status == "ACTIVE":
		return true, s.Host, nil
	case s.TaskState == "" && s.Status == "ERROR":
		return false, "", fmt.Errorf("%s is in ERROR after its restart", m.id)
	}
	return false, "", nil
}
