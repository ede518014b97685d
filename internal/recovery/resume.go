package recovery

import (
	"context"
	"fmt"
)

// resume lets a VM that qemu paused on an I/O error run again where it is, through Nova, so
// that its view stays true and the request is in its records: Nova still has such a VM ACTIVE
// (it ignores a pause it did not ask for), so it is paused in Nova first, which changes
// nothing in libvirt but Nova's record, then unpaused: libvirt resumes the domain and qemu
// retries the writes it held back. The guest never sees the error. A storage still failing
// pauses it again: a new failure, counted against the limits by the daemon.
type resume struct{}

func (resume) Name() MethodName   { return Resume }
func (resume) ByMigrations() bool { return false }
func (resume) Placed() bool       { return false }

func (resume) Start(ctx context.Context, x *run, m *move, _ int) error {
	nova := x.e.o.Nova
	m.unpausing = false
	return x.e.request(ctx, "resume", func(ctx context.Context) error {
		s, err := nova.Server(ctx, m.id)
		if err != nil {
			return err
		}
		if s.Status == "PAUSED" && s.TaskState == "" {
			// Paused in Nova already (an earlier attempt got that far).
			m.unpausing = true
			return nova.Unpause(ctx, m.id)
		}
		return nova.Pause(ctx, m.id)
	})
}

func (resume) Check(ctx context.Context, x *run, m *move, o observation) (bool, string, error) {
	s := o.server
	switch {
	case s.TaskState != "":
		return false, "", nil
	case s.Status == "PAUSED":
		if !m.unpausing {
			if err := x.e.request(ctx, "unpause", func(ctx context.Context) error {
				return x.e.o.Nova.Unpause(ctx, m.id)
			}); err != nil {
				return false, "", err
			}
			m.unpausing = true
		}
	case s.Status == "ACTIVE" && m.unpausing:
		return true, s.Host, nil
	case s.Status == "ACTIVE":
		// The pause was accepted (task pausing) and is gone without the VM paused in Nova:
		// its compute refused it.
		return false, "", fmt.Errorf("%s: Nova's pause did not take (ACTIVE, no task)", m.id)
	default:
		return false, "", fmt.Errorf("%s is %s while it was being resumed", m.id, s.Status)
	}
	return false, "", nil
}
