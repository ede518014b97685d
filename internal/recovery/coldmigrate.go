package recovery

import (
	"context"
	"fmt"

	"github.com/computeha/computeha/internal/openstack"
)

// coldMigrate moves a VM off a host that still runs by stopping it and starting it on another
// (Nova's migrate, then confirmResize): for a VM that is stopped, or that cannot be
// live-migrated. A running VM is down meanwhile; a stopped one stays stopped.
type coldMigrate struct{}

func (coldMigrate) Name() MethodName   { return ColdMigrate }
func (coldMigrate) ByMigrations() bool { return false }
func (coldMigrate) Placed() bool       { return true }

func (coldMigrate) Start(ctx context.Context, x *run, m *move, attempt int) error {
	if err := latestMigration(ctx, x, m, "migration"); err != nil {
		return err
	}
	m.confirming, m.starting = false, false
	if m.inFlight && attempt == 0 {
		return nil
	}
	if attempt > 0 && m.want == "ACTIVE" {
		// Landed already, stopped (its start failed or was slow): started again, not moved
		// to a third host.
		s, err := x.e.o.Nova.Server(ctx, m.id)
		if err == nil && s.Host != x.job.Source.NovaHost && s.TaskState == "" && s.Status == "SHUTOFF" {
			return nil
		}
	}
	return x.e.request(ctx, "cold-migrate", func(ctx context.Context) error {
		return x.e.o.Nova.ColdMigrate(ctx, m.id, m.target)
	})
}

func (coldMigrate) Check(ctx context.Context, x *run, m *move, o observation) (bool, string, error) {
	s := o.server
	source := x.job.Source.NovaHost
	switch {
	case s.Status == "VERIFY_RESIZE" && s.Host != source && s.TaskState == "":
		if !m.confirming {
			if err := x.e.request(ctx, "confirm resize", func(ctx context.Context) error {
				return x.e.o.Nova.ConfirmResize(ctx, m.id)
			}); err != nil && !openstack.IsConflict(err) {
				return false, "", err
			}
			m.confirming = true
		}
	case s.Host != source && s.TaskState == "" && s.Status == m.want:
		return true, s.Host, nil
	case s.Host != source && s.TaskState == "" && s.Status == "SHUTOFF" && m.want == "ACTIVE":
		// Moved stopped (Nova stopped it after its crash): started where it landed.
		if !m.starting {
			if err := x.e.request(ctx, "start", func(ctx context.Context) error {
				return x.e.o.Nova.StartServer(ctx, m.id)
			}); err != nil && !openstack.IsConflict(err) {
				return false, "", err
			}
			m.starting = true
		}
	case s.Status == "ERROR":
		return false, "", fmt.Errorf("%s is in ERROR after its cold migration", m.id)
	case s.Host == source && s.TaskState == "":
		return false, "", migrationFailed(ctx, x, m, "migration")
	}
	return false, "", nil
}
