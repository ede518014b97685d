package evacstate

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/computeha/computeha/crm"
)

// ByRetry is the By of a pending state an operator's retry wrote: the daemon that takes it
// up says so in the history.
const ByRetry = "computeha recovery retry"

// Entry is a host's recovery as the cluster holds it.
type Entry struct {
	Node  string
	State State
	// Raw is the attribute's value when it could not be read (Err says why).
	Raw string
	Err error
}

// Entries lists the hosts of cib that have an evacuation state, by node name. An unreadable
// value is listed too, with its error: an operator must see it.
func Entries(cib *crm.CIB) []Entry {
	var out []Entry
	for _, n := range cib.Nodes {
		v := n.Attributes[Attribute]
		if strings.TrimSpace(v) == "" {
			continue
		}
		st, err := Parse(v)
		e := Entry{Node: n.Name, State: st}
		if err != nil {
			e.Raw, e.Err = v, err
		}
		out = append(out, e)
	}
	slices.SortFunc(out, func(a, b Entry) int { return strings.Compare(a.Node, b.Node) })
	return out
}

// Errors of [Operator]'s actions. Nothing was changed when one is returned.
var (
	ErrNoSuchNode = errors.New("no such Pacemaker node")
	ErrNotFailed  = errors.New("its recovery has not failed")
)

// Cluster is what an [Operator] asks of Pacemaker ([crm.Client] and [crm.Fake] have it).
type Cluster interface {
	Attributes
	Status(ctx context.Context) (*crm.Status, error)
	CIB(ctx context.Context) (*crm.CIB, error)
	Fence(ctx context.Context, node string, action crm.FenceAction, timeout time.Duration) error
}

// Operator is what an operator may do to a recovery that failed: retry it, or clear it and
// take the host over by hand.
type Operator struct {
	Cluster Cluster
	Now     func() time.Time
	// FenceTimeout bounds the fencing a retry asks for.
	FenceTimeout time.Duration
}

// Retry starts the failed recovery of node again. A recovery begins only once the host's
// fencing is confirmed, and whatever happened to the host since its recovery failed (powered
// on by hand, say) is not known: Retry marks it pending, as fence_nova does, and asks
// Pacemaker to fence it again with the cluster's fencing action. The evacuation daemon takes
// the mark up and recovers once that fencing is in Pacemaker's history. A pending host (its
// retry's fencing failed, or a fencing never confirmed) may be retried too: only its fencing
// is asked again.
//
// It returns the state written. ErrNoSuchNode and ErrNotFailed change nothing; an error of
// the fencing leaves the host pending, waiting for a fencing that succeeds.
func (o Operator) Retry(ctx context.Context, node string) (State, error) {
	cur, err := o.current(ctx, node)
	if err != nil {
		return State{}, err
	}
	var st State
	switch cur.Phase {
	case Failed:
		st = State{Phase: Pending, By: ByRetry, Since: o.Now().UTC()}
		if err := (Marks{o.Cluster}).Set(ctx, node, st); err != nil {
			return State{}, fmt.Errorf("mark %s pending: %w", node, err)
		}
	case Pending:
		st = cur
	default:
		return State{}, fmt.Errorf("%s: %w (it is %s)", node, ErrNotFailed, describe(cur))
	}
	action := crm.FenceReboot
	if cib, err := o.Cluster.CIB(ctx); err == nil {
		action = cib.FenceAction()
	}
	if err := o.Cluster.Fence(ctx, node, action, o.FenceTimeout); err != nil {
		return st, fmt.Errorf("%s is marked pending, but its fencing failed: its recovery waits for a fencing that succeeds: %w", node, err)
	}
	return st, nil
}

// Clear gives up the failed recovery of node: the mark is removed, so the host may be let back
// (unfenced, its nova-compute started) and the VMs left on it are the operator's to handle.
// It returns the state removed. ErrNoSuchNode and ErrNotFailed change nothing.
func (o Operator) Clear(ctx context.Context, node string) (State, error) {
	cur, err := o.current(ctx, node)
	if err != nil {
		return State{}, err
	}
	if cur.Phase != Failed {
		return State{}, fmt.Errorf("%s: %w (it is %s)", node, ErrNotFailed, describe(cur))
	}
	if err := (Marks{o.Cluster}).Set(ctx, node, State{}); err != nil {
		return State{}, fmt.Errorf("clear the evacuation state of %s: %w", node, err)
	}
	return cur, nil
}

// current reads node's state, after checking Pacemaker knows the node: crm_attribute would
// create an attribute for a name nobody uses.
func (o Operator) current(ctx context.Context, node string) (State, error) {
	st, err := o.Cluster.Status(ctx)
	if err != nil {
		return State{}, fmt.Errorf("cluster status: %w", err)
	}
	if _, ok := st.Node(node); !ok {
		return State{}, fmt.Errorf("%s: %w", node, ErrNoSuchNode)
	}
	return (Marks{o.Cluster}).Get(ctx, node)
}

func describe(s State) string {
	if s.Phase == None {
		return "not under recovery"
	}
	return string(s.Phase)
}
