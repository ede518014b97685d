package recovery

import (
	"context"
	"fmt"
	"slices"

	"github.com/computeha/computeha/internal/config"
	"github.com/computeha/computeha/internal/history"
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
	if m.stuck {
		// Nova accepted the last evacuation for a host that failed before rebuilding the VM:
		// the server stays "rebuilding" for good, and Nova refuses another evacuation until
		// its state is reset.
		if err := x.e.nova(ctx, "reset state", func(ctx context.Context) error { return nova.ResetState(ctx, m.id, "active") }); err != nil {
			return err
		}
		m.stuck = false
	}
	return x.e.request(ctx, "evacuate", func(ctx context.Context) error {
		err := nova.Evacuate(ctx, m.id, m.target)
		if err != nil && movedAlready(ctx, x, m) {
			// An earlier request (a daemon killed as it asked) moved the VM after this
			// recovery's listing of the servers: Nova refuses another. The server tells how
			// that one ends: its record may be unseen yet, or seen ended already (the reads
			// are made together, and under load the migrations' listing may be the newer).
			m.byServer = true
			return nil
		}
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

// movedAlready tells, after Nova refused to evacuate m, whether the VM already left the failed
// host: an evacuation the recovery's reads did not see (asked by a daemon killed as it asked)
// took it elsewhere. Nova says so only by refusing ("the target host can't be the same one",
// "compute service of HOST is still in use"), so the server itself is read, once: a read that
// fails leaves the refusal as it was (the move is retried as before).
func movedAlready(ctx context.Context, x *run, m *move) bool {
	s, err := x.e.o.Nova.Server(ctx, m.id)
	return err == nil && s.Host != "" && s.Host != x.job.Source.NovaHost
}

func (evacuate) Check(ctx context.Context, x *run, m *move, o observation) (bool, string, error) {
	if m.byServer {
		return checkMovedEarlier(ctx, x, m)
	}
	if m.report.LostOn.NovaHost != "" {
		return checkAskedAgain(ctx, x, m)
	}
	// Where it was asked to go; Nova's record may say more.
	dest := m.target
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
		if mg.DestCompute != "" {
			dest = mg.DestCompute
		}
		break // the newest, still under way
	}
	// Still under way, or not listed yet (Nova leaves a record never saved since its creation
	// out of listings of changes): unless its destination failed meanwhile.
	if dest == "" || !x.failingNow()[dest] {
		return false, "", nil
	}
	return false, "", targetFailed(ctx, x, m, dest)
}

// checkAskedAgain follows a VM asked again after its evacuation was lost with a failed host, by
// the server itself: Nova records the new rebuild on the instance's first migration still
// "accepted", the lost one, and leaves the new request's record untouched, so no migration
// record of the new request ever ends. Done when the server runs on another host than the
// source with no task; failed when it ended ERROR where it was.
func checkAskedAgain(ctx context.Context, x *run, m *move) (bool, string, error) {
	s, err := x.showServer(ctx, m.id)
	if err != nil {
		return false, "", err
	}
	source := x.job.Source.NovaHost
	switch {
	case s.TaskState != "":
		if s.Host == source && m.target != "" && x.failingNow()[m.target] {
			return false, "", targetFailed(ctx, x, m, m.target)
		}
		return false, "", nil
	case s.Host != source && s.Host != "" && s.Status != "ERROR":
		return true, s.Host, nil
	case s.Status == "ERROR":
		return false, "", fmt.Errorf("the evacuation of %s asked again ended ERROR on %s", m.id, x.names.ByNova(s.Host).Node)
	}
	return false, "", nil
}

// checkMovedEarlier follows, by the server itself, a VM an earlier request moved off the source
// (byServer): done once it is on another host with no task, whatever its status (Nova rebuilds
// an ERROR VM as ERROR, and the earlier request's record, which this recovery may have seen end,
// said done); left to the recovery of the host it went to if that host is failing.
func checkMovedEarlier(ctx context.Context, x *run, m *move) (bool, string, error) {
	s, err := x.showServer(ctx, m.id)
	if err != nil {
		return false, "", err
	}
	switch {
	case s.Host == "" || s.Host == x.job.Source.NovaHost:
		return false, "", nil
	case x.failingNow()[s.Host]:
		return false, "", fmt.Errorf("%s was moved to %s by an earlier request, and that host failed: %w", m.id, x.names.ByNova(s.Host).Node, ErrHandedOver)
	case s.TaskState != "":
		return false, "", nil
	}
	return true, s.Host, nil
}

// showServer reads a server, waiting out Nova's outages.
func (x *run) showServer(ctx context.Context, id string) (s openstack.Server, err error) {
	err = x.e.nova(ctx, "show server", func(ctx context.Context) (err error) {
		s, err = x.e.o.Nova.Server(ctx, id)
		return err
	})
	return s, err
}

// targetFailed is the error of m's evacuation whose destination failed before Nova had
// rebuilt the VM there. While the server is still the source's, the destination never began:
// the rebuild waits in the queue of a dead nova-compute, so the VM is asked again elsewhere,
// its "rebuilding" state reset first. Once the server is the destination's, that host's own
// recovery moves it.
func targetFailed(ctx context.Context, x *run, m *move, dest string) error {
	s, err := x.showServer(ctx, m.id)
	if err != nil {
		return err
	}
	var migs []openstack.Migration
	node := x.names.ByNova(dest).Node
	if s.Host != x.job.Source.NovaHost {
		return fmt.Errorf("%s was being rebuilt on %s, which failed: %w", m.id, node, ErrHandedOver)
	}
	// The lost request's record, never updated, is known from the VM's own migrations: the
	// next request's is told apart from it, and from its end when the dead host comes back.
	if err := x.e.nova(ctx, "list the VM's migrations", func(ctx context.Context) (err error) {
		migs, err = x.e.o.Nova.Migrations(ctx, openstack.MigrationFilter{ServerID: m.id, Type: "evacuation"})
		return err
	}); err != nil {
		return err
	}
	m.seen = max(m.seen, priorEvacuations(migs, m.id, false))
	m.stuck = s.TaskState != ""
	m.report.LostOn = x.names.ByNova(dest)
	x.record(ctx, history.KindDecision, fmt.Sprintf("%s: %s failed before rebuilding it; asked again elsewhere", m.label(), node),
		Reason{Code: CodeTargetFailed, Text: node + " is being recovered, and Nova's rebuild there never began"}, nil)
	return fmt.Errorf("the evacuation of %s to %s was lost with it: %s failed before rebuilding it", m.id, node, node)
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
