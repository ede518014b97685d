package crm

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"sync"
	"time"
)

// Fake is Pacemaker in memory, for unit tests of the logic that reads and drives it: nodes
// with their crm_mon state, permanent and transient node attributes, a fencing history,
// quorum and maintenance mode. It answers the same methods as [Client], with the same
// errors where a caller depends on them ([ErrNoSuchObject] for an attribute never set). It
// is not a model of Pacemaker's scheduler: a fencing asked of it only records the request and
// runs [Fake.OnFence], which a test uses to act as the fencing topology would.
type Fake struct {
	mu          sync.Mutex
	nodes       map[string]*fakeNode
	fencing     []FenceEvent // oldest first
	quorate     bool
	maintenance bool
	properties  map[string]string
	dc          string
	fences      []string // "node action", in the order asked
	confirms    []string
	remotes     map[string]bool // remote nodes whose connection Pacemaker holds
	now         func() time.Time

	// FenceErr, when set, is what Fence returns (after recording the request).
	FenceErr error
	// OnFence, when set, runs for every Fence request before it returns; its error is
	// Fence's. A test makes it mark the host and add a successful fencing, as the topology
	// (power device, then fence_nova) would.
	OnFence func(node string, action FenceAction) error
}

type fakeNode struct {
	node      Node
	permanent map[string]string
	transient map[string]string
}

// NewFake returns a quorate cluster of the named nodes, each online and clean. now stamps
// the fencings the fake records itself (nil: time.Now).
func NewFake(now func() time.Time, nodes ...string) *Fake {
	if now == nil {
		now = time.Now
	}
	f := &Fake{nodes: map[string]*fakeNode{}, quorate: true, now: now}
	for _, n := range nodes {
		f.AddNode(n, Node{Online: true})
	}
	return f
}

// AddNode adds (or replaces) a node with crm_mon state n (its Name is set from name).
func (f *Fake) AddNode(name string, n Node) {
	f.mu.Lock()
	defer f.mu.Unlock()
	n.Name = name
	f.nodes[name] = &fakeNode{node: n, permanent: map[string]string{}, transient: map[string]string{}}
}

// SetNode edits a node's crm_mon state; an unknown node is added first.
func (f *Fake) SetNode(name string, edit func(n *Node)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fn := f.node(name)
	edit(&fn.node)
	fn.node.Name = name
}

func (f *Fake) node(name string) *fakeNode {
	fn := f.nodes[name]
	if fn == nil {
		fn = &fakeNode{node: Node{Name: name}, permanent: map[string]string{}, transient: map[string]string{}}
		f.nodes[name] = fn
	}
	return fn
}

// SetQuorate sets whether the partition has quorum.
func (f *Fake) SetQuorate(q bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.quorate = q
}

// SetMaintenanceMode sets the cluster-wide maintenance-mode option.
func (f *Fake) SetMaintenanceMode(on bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.maintenance = on
}

// SetProperty sets a cluster option (crm_config), as the CIB shows it.
func (f *Fake) SetProperty(name, value string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.properties == nil {
		f.properties = map[string]string{}
	}
	f.properties[name] = value
}

// AddFencing appends an operation to the fencing history.
func (f *Fake) AddFencing(e FenceEvent) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.fencing = append(f.fencing, e)
}

// Fenced appends a successful fencing (reboot, by ctl1) of node completed at.
func (f *Fake) Fenced(node string, at time.Time) {
	f.AddFencing(FenceEvent{Action: "reboot", Target: node, Status: "success", Delegate: "ctl1", Completed: at})
}

// Status is crm_mon's view: the nodes in name order, quorum, maintenance mode, the fencing
// history newest first, and every node's attributes (permanent and transient merged).
func (f *Fake) Status(context.Context) (*Status, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	st := &Status{
		DC: f.dc, Quorate: f.quorate, StonithEnabled: true, MaintenanceMode: f.maintenance,
		Attributes: map[string]map[string]string{},
	}
	for _, name := range slices.Sorted(maps.Keys(f.nodes)) {
		fn := f.nodes[name]
		st.Nodes = append(st.Nodes, fn.node)
		if !fn.node.Online {
			// crm_mon shows no attributes of a node that is not online, its permanent ones
			// included: what must be known of an offline node is read from the CIB.
			continue
		}
		a := maps.Clone(fn.permanent)
		maps.Copy(a, fn.transient)
		st.Attributes[name] = a
	}
	for i := len(f.fencing) - 1; i >= 0; i-- {
		st.Fencing = append(st.Fencing, f.fencing[i])
	}
	return st, nil
}

// CIB is the configuration's view: quorum, the cluster options and every node with its
// permanent attributes.
func (f *Fake) CIB(context.Context) (*CIB, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	cib := &CIB{HaveQuorum: f.quorate, Properties: maps.Clone(f.properties)}
	if cib.Properties == nil {
		cib.Properties = map[string]string{}
	}
	for _, name := range slices.Sorted(maps.Keys(f.nodes)) {
		fn := f.nodes[name]
		cib.Nodes = append(cib.Nodes, CIBNode{ID: name, Name: name, Type: fn.node.Type, Attributes: maps.Clone(fn.permanent)})
	}
	return cib, nil
}

func (fn *fakeNode) attrs(l Lifetime) map[string]string {
	if l == Permanent {
		return fn.permanent
	}
	return fn.transient
}

// Attribute reads one attribute; [ErrNoSuchObject] when it is not set.
func (f *Fake) Attribute(_ context.Context, node, name string, l Lifetime) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fn := f.nodes[node]
	if fn == nil {
		return "", ErrNoSuchObject
	}
	v, ok := fn.attrs(l)[name]
	if !ok {
		return "", ErrNoSuchObject
	}
	return v, nil
}

// SetAttribute sets one attribute; an unknown node is added.
func (f *Fake) SetAttribute(_ context.Context, node, name, value string, l Lifetime) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.node(node).attrs(l)[name] = value
	return nil
}

// DeleteAttribute removes one attribute; removing one that is not set is no error.
func (f *Fake) DeleteAttribute(_ context.Context, node, name string, l Lifetime) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if fn := f.nodes[node]; fn != nil {
		delete(fn.attrs(l), name)
	}
	return nil
}

// AttributeAllNodes reads a transient (attrd) attribute of every node that has a non-empty
// value, as [Client.AttributeAllNodes] does.
func (f *Fake) AttributeAllNodes(_ context.Context, name string) (map[string]string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := map[string]string{}
	for n, fn := range f.nodes {
		if v := fn.transient[name]; v != "" {
			out[n] = v
		}
	}
	return out, nil
}

// FencingHistory lists the fencings of node, oldest first.
func (f *Fake) FencingHistory(_ context.Context, node string) ([]FenceEvent, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []FenceEvent
	for _, e := range f.fencing {
		if e.Target == node {
			out = append(out, e)
		}
	}
	return out, nil
}

// Fence records the request, then runs OnFence; it returns OnFence's error, or FenceErr.
func (f *Fake) Fence(_ context.Context, node string, action FenceAction, _ time.Duration) error {
	f.mu.Lock()
	f.fences = append(f.fences, node+" "+string(action))
	hook, err := f.OnFence, f.FenceErr
	f.mu.Unlock()
	if hook != nil {
		if herr := hook(node, action); herr != nil {
			return herr
		}
	}
	return err
}

// SetRemoteConnection says whether node is a remote node whose connection Pacemaker holds,
// for RemoteConnection.
func (f *Fake) SetRemoteConnection(node string, on bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.remotes == nil {
		f.remotes = map[string]bool{}
	}
	f.remotes[node] = on
}

// RemoteConnection is "ctl1" for a node SetRemoteConnection named, "" otherwise.
func (f *Fake) RemoteConnection(_ context.Context, node string) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.remotes[node] {
		return "ctl1", nil
	}
	return "", nil
}

// FenceRemote records the request as "node connection" and runs OnFence with the action
// "connection"; FenceErr is its error too.
func (f *Fake) FenceRemote(_ context.Context, node, where string, _ time.Duration) error {
	if where == "" {
		return fmt.Errorf("fence %s through its connection: %w", node, ErrNoConnection)
	}
	f.mu.Lock()
	f.fences = append(f.fences, node+" connection")
	hook, err := f.OnFence, f.FenceErr
	f.mu.Unlock()
	if hook != nil {
		if herr := hook(node, "connection"); herr != nil {
			return herr
		}
	}
	return err
}

// ConfirmFenced records the confirmation and adds a successful manual fencing (delegate
// ManualDelegate) to the history, as stonith_admin --confirm does.
func (f *Fake) ConfirmFenced(_ context.Context, node string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.confirms = append(f.confirms, node)
	f.fencing = append(f.fencing, FenceEvent{Action: "off", Target: node, Status: "success", Client: "stonith_admin", Delegate: ManualDelegate, Completed: f.now()})
	return nil
}

// Fences lists the fencing requests, "node action" each, in the order asked.
func (f *Fake) Fences() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.fences)
}

// Confirms lists the nodes confirmed fenced, in order.
func (f *Fake) Confirms() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.confirms)
}
