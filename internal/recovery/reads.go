package recovery

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/computeha/computeha/crm"
	"github.com/computeha/computeha/internal/config"
	"github.com/computeha/computeha/internal/maintenance"
	"github.com/computeha/computeha/internal/openstack"
	"github.com/computeha/computeha/internal/reserve"
)

// Reads is what a recovery reads before it plans. The reads are made together: on a loaded
// control plane they cost the slowest of them, not their sum. A caller that can read before
// the recovery may begin (the daemon reads while a host's fencing is being confirmed) passes
// them in [Job.Reads]; they only read, so nothing is acted on before the recovery runs.
type Reads struct {
	// At is when the reads began.
	At time.Time
	// Service is the source host's nova-compute service.
	Service openstack.Service
	// Servers are every server Nova places on the source host.
	Servers []openstack.Server
	// Migrations are those from or to the source host, newest first: they tell which VMs
	// Nova already moves.
	Migrations  []openstack.Migration
	Hypervisors []openstack.Hypervisor
	Aggregates  []openstack.Aggregate
	Groups      []openstack.ServerGroup
	// SegmentName and Segment are the source host's failover segment, aggregates resolved.
	SegmentName string
	Segment     config.Segment
	// Nodes are the cluster's node names; Used the reserved hosts (Nova names) already
	// taken into use. Both from the CIB, empty when it could not be read.
	Nodes []string
	Used  map[string]bool
	// Maintenance are the Nova hosts in computeha maintenance (from the CIB): no targets.
	Maintenance map[string]bool
	// MemberHosts are where the other members of the server groups of the source's VMs run
	// (server id → Nova host).
	MemberHosts map[string]string
}

// ErrNoSegment is wrapped by the error of a recovery whose host is in no failover segment.
var ErrNoSegment = errors.New("in no failover segment")

// Read makes the reads of a recovery of source. Nova being unreachable or failing with 5xx is
// waited out (the control plane coming back only delays the recovery); any other failure is
// returned. The hypervisors' capacity and the aggregates come from the last [Engine.Refresh]
// while it is fresh (evacuation.refresh), and are read with the rest otherwise; the compute
// services' state and status, and the server groups, are always read with the rest (an
// operator disables a host at any time; members change with every boot).
func (e *Engine) Read(ctx context.Context, source Host) (*Reads, error) {
	r := &Reads{At: e.clock.Now()}
	var (
		wg   sync.WaitGroup
		errs [5]error
		took readTimes
	)
	// timed runs a read of the set in wg, and keeps how long it took under name.
	timed := func(name string, read func()) {
		wg.Go(func() {
			began := e.clock.Now()
			read()
			took.add(name, e.clock.Now().Sub(began))
		})
	}
	nova := e.o.Nova
	timed("service", func() {
		errs[0] = e.nova(ctx, "find service", func(ctx context.Context) (err error) {
			r.Service, err = nova.FindComputeService(ctx, source.NovaHost)
			return err
		})
	})
	timed("servers", func() {
		errs[1] = e.nova(ctx, "list servers", func(ctx context.Context) (err error) {
			r.Servers, err = nova.ServersOnHost(ctx, source.NovaHost)
			return err
		})
	})
	timed("migrations", func() {
		errs[2] = e.nova(ctx, "list migrations", func(ctx context.Context) (err error) {
			r.Migrations, err = nova.Migrations(ctx, openstack.MigrationFilter{Host: source.NovaHost})
			return err
		})
	})
	if c, ok := e.sharedFresh(); ok {
		r.Aggregates = c.aggregates
		// The capacity may be a refresh old; whether a host is up and enabled may not: an
		// operator who just disabled a host must not see a recovery send VMs there. One
		// listing of the services, beside the other reads, gives the state of now.
		timed("compute_services", func() {
			errs[3] = e.nova(ctx, "list compute services", func(ctx context.Context) error {
				svcs, err := nova.ComputeServices(ctx)
				if err == nil {
					r.Hypervisors = withServices(c.hypervisors, svcs)
				}
				return err
			})
		})
		// The server groups are read by every recovery: a member booted since the last
		// refresh must count, or the plan breaks its group's policy and Nova refuses the move.
		timed("server_groups", func() {
			errs[4] = e.nova(ctx, "list server groups", func(ctx context.Context) (err error) {
				r.Groups, err = nova.ServerGroups(ctx)
				return err
			})
		})
	} else {
		timed("hypervisors_aggregates_groups", func() {
			var c *shared
			if c, errs[3] = e.readShared(ctx); c != nil {
				r.Hypervisors, r.Aggregates, r.Groups = c.hypervisors, c.aggregates, c.groups
			}
		})
	}
	timed("cib", func() { r.Used, r.Nodes, r.Maintenance = e.clusterNodes(ctx) })
	wg.Wait()
	if err := errors.Join(errs[:]...); err != nil {
		return nil, err
	}
	name, seg, err := e.segmentOf(source, r.Aggregates)
	if err != nil {
		return nil, err
	}
	r.SegmentName, r.Segment = name, seg
	began := e.clock.Now()
	if r.MemberHosts, err = e.memberHosts(ctx, r); err != nil {
		return nil, err
	}
	took.add("group_members", e.clock.Now().Sub(began))
	if all := e.clock.Now().Sub(r.At); all >= slowReads {
		// Every second here delays the first request of a recovery: say where it went.
		e.log.Info("slow reads for a recovery", append([]any{"host", source.Node, "took", all.Round(time.Millisecond)}, took.attrs()...)...)
	}
	return r, nil
}

// slowReads is how long the reads of a recovery may take before each read's time is logged.
const slowReads = time.Second

// readTimes are how long each read of [Engine.Read] took.
type readTimes struct {
	mu    sync.Mutex
	names []string
	took  []time.Duration
}

func (t *readTimes) add(name string, d time.Duration) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.names, t.took = append(t.names, name), append(t.took, d)
}

// attrs are the times as log attributes, in the order the reads ended.
func (t *readTimes) attrs() []any {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make([]any, 0, 2*len(t.names))
	for i, n := range t.names {
		out = append(out, n, t.took[i].Round(time.Millisecond))
	}
	return out
}

// shared is what every recovery reads alike, whichever host failed.
type shared struct {
	at          time.Time
	hypervisors []openstack.Hypervisor
	aggregates  []openstack.Aggregate
	groups      []openstack.ServerGroup
}

// Refresh rereads what every recovery reads alike (hypervisors, aggregates, server groups)
// for the recoveries that begin while it is fresh. A daemon calls it every
// evacuation.refresh: a failure then finds them read, and Nova's API and the token warm.
func (e *Engine) Refresh(ctx context.Context) error {
	_, err := e.readShared(ctx)
	return err
}

// KeepFresh calls Refresh every interval until ctx ends, from the daemon's start: the first
// failure after a start finds the shared reads made and Nova's API and token warm, as later
// ones do. Nova being unreachable is waited out inside a refresh, as in a recovery (and said
// by [Options.OnNovaError]); any other failure is logged when it begins and when it ends.
func (e *Engine) KeepFresh(ctx context.Context, every time.Duration) {
	failing := false
	for {
		err := e.Refresh(ctx)
		switch {
		case ctx.Err() != nil:
			return
		case err != nil && !failing:
			e.log.Warn("rereading Nova's hypervisors, aggregates and server groups failed; recoveries read them when they begin", "error", err)
		case err == nil && failing:
			e.log.Info("rereading Nova's hypervisors, aggregates and server groups works again")
		}
		failing = err != nil
		if e.clock.Sleep(ctx, every) != nil {
			return
		}
	}
}

// readShared reads the shared reads, together, and keeps them for the recoveries that begin
// while they are fresh (none when evacuation.refresh is 0).
func (e *Engine) readShared(ctx context.Context) (*shared, error) {
	c := &shared{at: e.clock.Now()}
	var (
		wg   sync.WaitGroup
		errs [3]error
	)
	nova := e.o.Nova
	wg.Go(func() {
		errs[0] = e.nova(ctx, "hypervisors", func(ctx context.Context) (err error) {
			c.hypervisors, err = nova.Hypervisors(ctx)
			return err
		})
	})
	wg.Go(func() {
		errs[1] = e.nova(ctx, "list aggregates", func(ctx context.Context) (err error) {
			c.aggregates, err = nova.Aggregates(ctx)
			return err
		})
	})
	wg.Go(func() {
		errs[2] = e.nova(ctx, "list server groups", func(ctx context.Context) (err error) {
			c.groups, err = nova.ServerGroups(ctx)
			return err
		})
	})
	wg.Wait()
	if err := errors.Join(errs[:]...); err != nil {
		return nil, err
	}
	e.cacheMu.Lock()
	if e.cache == nil || !c.at.Before(e.cache.at) {
		e.cache = c
	}
	e.cacheMu.Unlock()
	return c, nil
}

// withServices is a copy of hvs whose state, status and disabled reason are those of svcs,
// by service host; a hypervisor whose service is not listed keeps what it had.
func withServices(hvs []openstack.Hypervisor, svcs []openstack.Service) []openstack.Hypervisor {
	by := make(map[string]openstack.Service, len(svcs))
	for _, s := range svcs {
		by[s.Host] = s
	}
	out := slices.Clone(hvs)
	for i, hv := range out {
		if s, ok := by[hv.ServiceHost]; ok {
			out[i].State, out[i].Status, out[i].DisabledReason = s.State, s.Status, s.DisabledReason
		}
	}
	return out
}

// sharedFresh is the last shared reads if younger than evacuation.refresh plus the time one
// refresh may take (a slow Nova must not make every recovery read them again).
func (e *Engine) sharedFresh() (*shared, bool) {
	every := e.o.Config.Evacuation.Refresh
	if every <= 0 {
		return nil, false
	}
	e.cacheMu.Lock()
	defer e.cacheMu.Unlock()
	if e.cache == nil || e.clock.Now().Sub(e.cache.at) > every+sharedGrace {
		return nil, false
	}
	return e.cache, true
}

// sharedGrace is how long past evacuation.refresh the shared reads still serve.
const sharedGrace = 5 * time.Second

// memberHosts finds where the other members of the source's server groups run: a few reads,
// only for the VMs that are in a group.
func (e *Engine) memberHosts(ctx context.Context, r *Reads) (map[string]string, error) {
	onSource := map[string]bool{}
	for _, s := range r.Servers {
		onSource[s.ID] = true
	}
	var ids []string
	for _, g := range r.Groups {
		if !slices.ContainsFunc(g.Members, func(id string) bool { return onSource[id] }) {
			continue
		}
		for _, id := range g.Members {
			if !onSource[id] {
				ids = append(ids, id)
			}
		}
	}
	out := map[string]string{}
	var (
		mu   sync.Mutex
		wg   sync.WaitGroup
		sem  = make(chan struct{}, 4)
		errs = make([]error, len(ids))
	)
	for i, id := range ids {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			var s openstack.Server
			err := e.nova(ctx, "show server group member", func(ctx context.Context) (err error) {
				s, err = e.o.Nova.Server(ctx, id)
				return err
			})
			if openstack.IsNotFound(err) {
				return // deleted since the group was listed
			}
			errs[i] = err
			mu.Lock()
			out[id] = s.Host
			mu.Unlock()
		})
	}
	wg.Wait()
	return out, errors.Join(errs...)
}

// segmentOf resolves the segment of source.
func (e *Engine) segmentOf(source Host, aggs []openstack.Aggregate) (string, config.Segment, error) {
	segs, err := e.o.Config.ResolveSegments(openstack.HostsByAggregate(aggs))
	if err != nil {
		return "", config.Segment{}, err
	}
	name, ok := segs.Of(source.NovaHost)
	if !ok {
		return "", config.Segment{}, fmt.Errorf("host %s is %w of the configuration", source, ErrNoSegment)
	}
	return name, segs[name], nil
}

// clusterNodes reads the cluster's node names and, by their Nova host names, the reserved
// hosts already taken into use. An unreadable CIB gives neither: reserved hosts then count as
// still reserved, and Nova hosts map back to nodes by the configured rule alone.
func (e *Engine) clusterNodes(ctx context.Context) (used map[string]bool, nodes []string, inMaintenance map[string]bool) {
	used, inMaintenance = map[string]bool{}, map[string]bool{}
	if e.o.Cluster == nil {
		return used, nil, inMaintenance
	}
	cib, err := e.o.Cluster.CIB(ctx)
	if err != nil {
		e.log.Warn("reading the CIB failed; reserved hosts count as unused, and no host as in maintenance", "error", err)
		return used, nil, inMaintenance
	}
	for _, n := range cib.Nodes {
		nodes = append(nodes, n.Name)
		if n.Attributes[reserve.UsedAttribute] != "" {
			used[e.o.Config.NovaHost(n.Name)] = true
		}
	}
	for node := range maintenance.Of(cib) {
		inMaintenance[e.o.Config.NovaHost(node)] = true
	}
	return used, nodes, inMaintenance
}

// Cluster is what the engine needs of Pacemaker: the CIB's nodes, and a permanent node
// attribute to record a reserved host taken into use ([crm.Client] and [crm.Fake] have them).
type Cluster interface {
	CIB(ctx context.Context) (*crm.CIB, error)
	SetAttribute(ctx context.Context, node, name, value string, l crm.Lifetime) error
}
