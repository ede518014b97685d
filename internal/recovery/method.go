package recovery

import (
	"context"
	"time"

	"github.com/computeha/computeha/internal/config"
	"github.com/computeha/computeha/internal/openstack"
	"github.com/computeha/computeha/internal/plan"
)

// Method is one way of making a VM run again. The engine drives it: Start asks Nova for the
// move toward the VM's target, then Check is given what each round of the watch taken after
// Start returned shows of it, until it says the move is done or has failed. A failed attempt is
// retried (Start again, with attempt > 0), possibly toward another target.
type Method interface {
	Name() MethodName
	// Placed tells whether the plan gives the VM a target host (a restart stays where it is).
	Placed() bool
	// ByMigrations tells whether the move is followed by Nova's migration records of the source
	// host alone; otherwise by the server itself.
	ByMigrations() bool
	// Start asks Nova to begin the move of m toward m.target ("" lets Nova's scheduler
	// choose). It returns once Nova accepted the request.
	Start(ctx context.Context, x *run, m *move, attempt int) error
	// Check reads how far the move got from what a round shows: done, on host; or an error
	// when this attempt failed; or neither while it goes on.
	Check(ctx context.Context, x *run, m *move, o observation) (done bool, host string, err error)
}

// observation is what a round of the watch shows of a move's VM.
type observation struct {
	// server is the VM as listed, or read on its own; zero for a move followed by migrations.
	server openstack.Server
	// migrations are the VM's migrations from or to the source host, newest first; only for a
	// move followed by migrations.
	migrations []openstack.Migration
}

// move is one VM's recovery.
type move struct {
	srv    openstack.Server // as found on the source host
	method Method
	class  config.Class
	// pv is what the plan placed (zero when the VM is not placed), target the Nova host it
	// goes to ("" lets Nova's scheduler choose), failedOn the targets it failed on so far.
	pv       plan.VM
	target   string
	failedOn []string
	// inFlight: Nova already moves it (a daemon before this one asked); the first attempt
	// only waits for it.
	inFlight bool
	// want is the status the VM ends in: ACTIVE, or SHUTOFF for one that was stopped.
	want string
	// tier is the index of its restart tier.
	tier int

	// Set while it runs.
	id         string                // the server's id now: a recreation gives a new one
	seen       int                   // the newest migration of the server before the request
	spec       *openstack.ServerSpec // what a recreation creates again
	confirming bool                  // a cold migration's ConfirmResize was sent
	starting   bool                  // a relocated VM's start was sent (it arrived stopped)
	unpausing  bool                  // a resumed VM's unpause was sent
	// stuck: Nova's last evacuation of it went to a host that failed before rebuilding it;
	// the server is left "rebuilding", so its state is reset before it is asked again.
	stuck bool
	// byServer: the move is followed by the server itself, not by a migration record: an
	// earlier request moved it, whose record the reads may already have seen end.
	byServer bool
	recID    int64 // its move in the history

	report  VMReport
	endedAt time.Time
	ended   chan struct{}
}

func (m *move) label() string { return m.srv.Name + " (" + m.srv.ID + ")" }
