package recovery

import (
	"context"
	"fmt"
	"slices"

	"github.com/computeha/computeha/internal/openstack"
)

// liveMigrate moves a running VM off a host that still runs, without stopping it. Nova tells a
// migration that failed by its record; the VM then stays on the source.
type liveMigrate struct{}

func (liveMigrate) Name() MethodName   { return LiveMigrate }
func (liveMigrate) ByMigrations() bool { return false }
func (liveMigrate) Placed() bool       { return true }

func (liveMigrate) Start(ctx context.Context, x *run, m *move, attempt int) error {
	if err := latestMigration(ctx, x, m, "live-migration"); err != nil {
		return err
	}
	if m.inFlight && attempt == 0 {
		return nil
	}
	return x.e.request(ctx, "live-migrate", func(ctx context.Context) error {
		return x.e.o.Nova.LiveMigrate(ctx, m.id, m.target, false)
	})
}

func (liveMigrate) Check(ctx context.Context, x *run, m *move, o observation) (bool, string, error) {
	s := o.server
	source := x.job.Source.NovaHost
	switch {
	case s.Host != source && s.TaskState == "" && s.Status == m.want:
		return true, s.Host, nil
	case s.Status == "ERROR":
		return false, "", fmt.Errorf("%s is in ERROR after its live migration", m.id)
	case s.Host == source && s.TaskState == "":
		// Not started yet, or over and rolled back: Nova's migration record tells.
		return false, "", migrationFailed(ctx, x, m, "live-migration")
	}
	return false, "", nil
}

// latestMigration notes the newest migration of m's server of type typ, so that the one the
// coming request starts is told apart from earlier ones.
func latestMigration(ctx context.Context, x *run, m *move, typ string) error {
	return x.e.nova(ctx, "list migrations", func(ctx context.Context) error {
		migs, err := x.e.o.Nova.Migrations(ctx, openstack.MigrationFilter{ServerID: m.id, Type: typ})
		for _, mg := range migs {
			if m.inFlight && !slices.Contains(terminalMigration, mg.Status) {
				continue // the one in flight is this move's
			}
			m.seen = max(m.seen, mg.ID)
		}
		return err
	})
}

// migrationFailed returns an error when a migration of type typ newer than m.seen failed.
func migrationFailed(ctx context.Context, x *run, m *move, typ string) error {
	var migs []openstack.Migration
	if err := x.e.nova(ctx, "list migrations", func(ctx context.Context) (err error) {
		migs, err = x.e.o.Nova.Migrations(ctx, openstack.MigrationFilter{ServerID: m.id, Type: typ})
		return err
	}); err != nil {
		return err
	}
	for _, mg := range migs {
		if mg.ID > m.seen && slices.Contains([]string{"error", "failed", "cancelled"}, mg.Status) {
			return fmt.Errorf("%s: Nova's %s ended %s; the VM stays on %s", m.id, typ, mg.Status, x.job.Source.NovaHost)
		}
	}
	return nil
}
