// Package reserve is the pool of reserved hosts of the failover segments, as an operator sees
// and tends it. A reserved host is held in reserve (disabled in Nova, empty) until a recovery
// takes it into use: the recovery enables it and records the use in the permanent node
// attribute [UsedAttribute]; from then on it is an ordinary host of its segment. [Pool.Return]
// gives an emptied one back to the pool, by an operator's command or, where a segment says
// reserved_return: auto, by the evacuation daemon.
//
// A reserved host disabled for another reason than being held in reserve (a repair, a health
// problem; see [evacstate.HeldInReserve]) is withheld: no recovery takes it, since taking it
// enables it. One enabled while never taken into use is exposed: the scheduler may fill it,
// and it is no reserve any more.
package reserve

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/computeha/computeha/crm"
	"github.com/computeha/computeha/internal/config"
	"github.com/computeha/computeha/internal/evacstate"
	"github.com/computeha/computeha/internal/openstack"
)

// UsedAttribute records, on a reserved host's node, when a recovery took it into use.
const UsedAttribute = "computeha-reserved-used"

// State is where a reserved host stands.
type State string

// States.
const (
	// InReserve: disabled for being held in reserve, never taken into use since.
	InReserve State = "in-reserve"
	// InUse: a recovery took it into use; it is an ordinary host until returned.
	InUse State = "in-use"
	// Withheld: disabled for another reason; no recovery takes it.
	Withheld State = "withheld"
	// Exposed: enabled in Nova although no recovery took it: the scheduler may fill it.
	Exposed State = "exposed"
	// Unknown: Nova has no nova-compute service of that name.
	Unknown State = "unknown"
)

// Host is one reserved host of a segment.
type Host struct {
	Segment  string
	NovaHost string
	Node     string
	State    State
	// UsedSince is when a recovery took it into use (InUse).
	UsedSince time.Time
	Service   openstack.Service
	// Servers counts the servers Nova places on it.
	Servers int
	// Note says, in a line, what an operator should know: why it is withheld or exposed, what
	// keeps it from being returned.
	Note string
}

// Nova is what the pool reads and changes in Nova ([openstack.Client] has it).
type Nova interface {
	Aggregates(ctx context.Context) ([]openstack.Aggregate, error)
	FindComputeService(ctx context.Context, host string) (openstack.Service, error)
	ServersOnHost(ctx context.Context, host string) ([]openstack.Server, error)
	DisableService(ctx context.Context, serviceID, reason string) (openstack.Service, error)
	EnableService(ctx context.Context, serviceID string) (openstack.Service, error)
}

// Cluster is what the pool reads and changes in Pacemaker ([crm.Client] and [crm.Fake] have
// it).
type Cluster interface {
	CIB(ctx context.Context) (*crm.CIB, error)
	DeleteAttribute(ctx context.Context, node, name string, l crm.Lifetime) error
}

// Pool is the reserved hosts of every segment of Config.
type Pool struct {
	Config  *config.Config
	Nova    Nova
	Cluster Cluster
	Now     func() time.Time
}

// Errors of [Pool.Return]. Nothing was changed when one is returned.
var (
	ErrNotReserved = errors.New("not a reserved host of any segment")
	ErrNotInUse    = errors.New("not in use")
	ErrNotEmpty    = errors.New("not empty")
)

// List reads every reserved host of every segment, in the segments' order. An aggregate-
// defined segment is resolved through Nova; a reserved host whose service Nova does not know
// is listed as Unknown.
func (p Pool) List(ctx context.Context) ([]Host, error) {
	segs, err := p.segments(ctx)
	if err != nil {
		return nil, err
	}
	cib, err := p.Cluster.CIB(ctx)
	if err != nil {
		return nil, fmt.Errorf("reading the CIB: %w", err)
	}
	var out []Host
	for _, name := range segs.Names() {
		for _, nh := range segs[name].ReservedHosts {
			h, err := p.read(ctx, cib, name, nh)
			if err != nil {
				return nil, err
			}
			out = append(out, h)
		}
	}
	return out, nil
}

// Find reads one reserved host, named by its Pacemaker node or Nova host name.
func (p Pool) Find(ctx context.Context, name string) (Host, error) {
	segs, err := p.segments(ctx)
	if err != nil {
		return Host{}, err
	}
	for _, seg := range segs.Names() {
		for _, nh := range segs[seg].ReservedHosts {
			if nh == name || p.Config.Node(nh) == name {
				cib, err := p.Cluster.CIB(ctx)
				if err != nil {
					return Host{}, fmt.Errorf("reading the CIB: %w", err)
				}
				return p.read(ctx, cib, seg, nh)
			}
		}
	}
	return Host{}, fmt.Errorf("%s: %w", name, ErrNotReserved)
}

// Return gives a reserved host a recovery took into use back to the pool: it must be empty.
// The service is disabled first (nothing new lands there while the servers are counted), with
// a reason starting with [evacstate.ReserveReasonPrefix]; a disable an operator made for
// another reason stays, and the host is then withheld. The use is forgotten last. It returns
// the host as it is left.
func (p Pool) Return(ctx context.Context, name string) (Host, error) {
	h, err := p.Find(ctx, name)
	if err != nil {
		return Host{}, err
	}
	if h.State != InUse {
		return h, fmt.Errorf("%s: %w (it is %s)", h.Node, ErrNotInUse, h.State)
	}
	disabledHere := false
	if h.Service.Enabled() {
		reason := fmt.Sprintf("%s returned to the pool of segment %s at %s", evacstate.ReserveReasonPrefix, h.Segment, p.Now().UTC().Format(time.RFC3339))
		svc, err := p.Nova.DisableService(ctx, h.Service.ID, reason)
		if err != nil {
			return h, fmt.Errorf("disable %s: %w", h.Node, err)
		}
		h.Service, disabledHere = svc, true
	}
	servers, err := p.Nova.ServersOnHost(ctx, h.NovaHost)
	if err == nil && len(servers) > 0 {
		err = fmt.Errorf("%s: %w: %d servers on it (first %s)", h.Node, ErrNotEmpty, len(servers), servers[0].Name)
	}
	if err != nil {
		if disabledHere {
			if _, rerr := p.Nova.EnableService(ctx, h.Service.ID); rerr != nil {
				err = errors.Join(err, fmt.Errorf("enabling %s again: %w", h.Node, rerr))
			}
		}
		return h, err
	}
	if err := p.Cluster.DeleteAttribute(ctx, h.Node, UsedAttribute, crm.Permanent); err != nil && !errors.Is(err, crm.ErrNoSuchObject) {
		return h, fmt.Errorf("forget the use of %s: %w", h.Node, err)
	}
	h.UsedSince, h.Servers = time.Time{}, 0
	h.State, h.Note = judge(h.Service, false)
	return h, nil
}

func (p Pool) segments(ctx context.Context) (config.Segments, error) {
	return p.Config.ReadSegments(ctx, openstack.AggregateHostsOf(p.Nova))
}

func (p Pool) read(ctx context.Context, cib *crm.CIB, seg, novaHost string) (Host, error) {
	h := Host{Segment: seg, NovaHost: novaHost, Node: p.Config.Node(novaHost)}
	if n, ok := cib.Node(h.Node); ok && n.Attributes[UsedAttribute] != "" {
		h.State = InUse
		h.UsedSince, _ = time.Parse(time.RFC3339, n.Attributes[UsedAttribute])
	}
	svc, err := p.Nova.FindComputeService(ctx, novaHost)
	if openstack.IsNotFound(err) {
		if h.State == "" {
			h.State = Unknown
		}
		h.Note = "Nova has no nova-compute service " + novaHost
		return h, nil
	}
	if err != nil {
		return h, fmt.Errorf("compute service of %s: %w", h.Node, err)
	}
	h.Service = svc
	servers, err := p.Nova.ServersOnHost(ctx, novaHost)
	if err != nil {
		return h, fmt.Errorf("servers on %s: %w", h.Node, err)
	}
	h.Servers = len(servers)
	if h.State == InUse {
		if h.Servers == 0 {
			h.Note = "empty: computeha reserved return " + h.Node + " gives it back to the pool"
		}
		return h, nil
	}
	h.State, h.Note = judge(svc, h.Servers > 0)
	return h, nil
}

// judge is the state of a reserved host not in use, from its service.
func judge(svc openstack.Service, holds bool) (State, string) {
	switch {
	case svc.Enabled():
		return Exposed, "enabled in Nova: the scheduler may place VMs on it; disable it to hold it in reserve"
	case !evacstate.HeldInReserve(svc.DisabledReason):
		return Withheld, "disabled for another reason (" + svc.DisabledReason + "): no recovery takes it"
	case holds:
		return InReserve, "holds servers although held in reserve: it has less room than its capacity"
	}
	return InReserve, ""
}
