package evacd

import (
	"context"
	"time"

	"github.com/computeha/computeha/internal/history"
	"github.com/computeha/computeha/internal/plan"
)

// ReasonQuorumRegained is the history's reason code when this daemon's partition has quorum
// again after it had none.
const ReasonQuorumRegained history.ReasonCode = "quorum-regained"

// quorumAtStopTimeout bounds the last look at the quorum when the daemon stops.
const quorumAtStopTimeout = 3 * time.Second

// noteQuorum says, once per change, that this daemon's partition lost quorum or has it again.
// Without quorum nothing is fenced or recovered from here (each fencing wait also says so for
// its host): the history and the log tell the operator why this side did nothing. A daemon that
// starts in a quorate partition says nothing. It is told at every reconciliation (the CIB's
// have-quorum, which the partition's DC writes once elected) and as the daemon stops.
func (d *Daemon) noteQuorum(ctx context.Context, quorate bool) {
	d.mu.Lock()
	was, known := d.quorate, d.quorumKnown
	d.quorate, d.quorumKnown = quorate, true
	d.mu.Unlock()
	if (known && was == quorate) || (!known && quorate) {
		return
	}
	if !quorate {
		d.o.Log.Warn("this partition has no quorum: nothing is fenced or recovered from here until it has", "owner", d.o.Owner)
		d.record(ctx, history.Event{
			Time: d.clock.Now(), Kind: history.KindGuard,
			Summary: "this partition (daemon on " + d.owner() + ") has no quorum: nothing is fenced or recovered from here until it has",
			Reason:  history.Reason{Code: history.ReasonCode(plan.ReasonNoQuorum), Text: "Pacemaker reports the partition without quorum"},
		})
		return
	}
	d.o.Log.Info("this partition has quorum again", "owner", d.o.Owner)
	d.record(ctx, history.Event{
		Time: d.clock.Now(), Kind: history.KindGuard,
		Summary: "this partition (daemon on " + d.owner() + ") has quorum again: recoveries may proceed",
		Reason:  history.Reason{Code: ReasonQuorumRegained, Text: "Pacemaker reports the partition with quorum"},
	})
}

// quorumAtStop takes a last look at the quorum as the daemon stops, ctx being over: Pacemaker
// stops every resource of a partition that lost quorum, often before the daemon's next look.
func (d *Daemon) quorumAtStop() {
	read, cancel := context.WithTimeout(context.Background(), quorumAtStopTimeout)
	defer cancel()
	cib, err := d.o.Cluster.CIB(read)
	if err != nil {
		return
	}
	// Its own time to be recorded, however long the read took.
	rec, cancelRec := context.WithTimeout(context.Background(), quorumAtStopTimeout)
	defer cancelRec()
	d.noteQuorum(rec, cib.HaveQuorum)
}

// owner names this daemon for people: its node, or "this node" when unnamed.
func (d *Daemon) owner() string {
	if d.o.Owner == "" {
		return "this node"
	}
	return d.o.Owner
}
