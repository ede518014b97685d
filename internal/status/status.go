// Package status gathers the whole picture an operator looks at first (computeha status):
// the cluster's quorum, where the evacuation daemon runs and what it does, each failover
// segment with its hosts (Pacemaker's view, Nova's, the reserve, the recovery, the VMs and the
// HA VMs among them) and its capacity headroom, and the mass-failure guard. It only reads.
package status

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/computeha/computeha/crm"
	"github.com/computeha/computeha/internal/config"
	"github.com/computeha/computeha/internal/evacdsock"
	"github.com/computeha/computeha/internal/evacstate"
	"github.com/computeha/computeha/internal/maintenance"
	"github.com/computeha/computeha/internal/openstack"
	"github.com/computeha/computeha/internal/plan"
	"github.com/computeha/computeha/internal/policy"
	"github.com/computeha/computeha/internal/recovery"
	"github.com/computeha/computeha/internal/reserve"
)

// EvacuatorAgent is the resource agent of the evacuation daemon, by which it is found among
// the cluster's resources.
const EvacuatorAgent = "ocf:computeha:evacuator"

// Report is the picture.
type Report struct {
	At          time.Time  `json:"at"`
	Quorate     bool       `json:"quorate"`
	DC          string     `json:"dc"`
	Maintenance bool       `json:"maintenance_mode"`
	Daemon      Daemon     `json:"daemon"`
	Segments    []Segment  `json:"segments"`
	Recoveries  []Recovery `json:"recoveries"`
	Guard       Guard      `json:"guard"`
	// Problems are what could not be read; the rest of the report stands.
	Problems []string `json:"problems,omitempty"`
}

// Daemon is the evacuation daemon as the cluster and, when it runs here, its socket show it.
type Daemon struct {
	// Nodes are where Pacemaker runs it (one, normally).
	Nodes []string `json:"nodes"`
	// Steps are what each recovery in flight is doing, from the daemon's socket; nil when
	// the daemon does not run on this node.
	Steps map[string]string `json:"steps,omitempty"`
}

// Segment is one failover segment.
type Segment struct {
	Name           string                `json:"name"`
	RecoveryMethod config.RecoveryMethod `json:"recovery_method"`
	Hosts          []Host                `json:"hosts"`
	// Admission is the segment's admission-control policy (n+1, 25%, reserved).
	Admission string `json:"admission"`
	// Headroom is what the segment has left under it (plan.HeadroomFor): below zero in a
	// resource, the segment no longer meets its policy.
	Headroom plan.Resources `json:"headroom"`
}

// Host is one host of a segment.
type Host struct {
	Node     string `json:"node"`
	NovaHost string `json:"nova_host"`
	// Pacemaker is online, offline, unclean, standby, maintenance or unknown.
	Pacemaker string `json:"pacemaker"`
	// Nova is the service's status and state: "enabled up", "disabled down (forced)".
	Nova           string `json:"nova"`
	DisabledReason string `json:"disabled_reason,omitempty"`
	// Reserve is the reserved host's state (reserve.State); empty for an ordinary host.
	Reserve string `json:"reserve,omitempty"`
	// Maintenance describes the host's computeha maintenance window; empty when none.
	Maintenance string `json:"maintenance,omitempty"`
	// Recovery is the host's evacuation phase; empty when none.
	Recovery string `json:"recovery,omitempty"`
	VMs      int    `json:"vms"`
	HAVMs    int    `json:"ha_vms"`
}

// Recovery is a host with an evacuation state.
type Recovery struct {
	Host   string    `json:"host"`
	Phase  string    `json:"phase"`
	Since  time.Time `json:"since"`
	Reason string    `json:"reason,omitempty"`
	// Step is what the daemon does for it, when known.
	Step string `json:"step,omitempty"`
}

// Guard is the mass-failure guard's limits and the hosts that count against them now (marked
// and not done).
type Guard struct {
	MaxHosts           int      `json:"max_hosts"`
	Window             string   `json:"window"`
	MaxSegmentFraction float64  `json:"max_segment_fraction"`
	Failing            []string `json:"failing"`
}

// Sources are what Gather reads.
type Sources struct {
	Config  *config.Config
	Cluster interface {
		Status(ctx context.Context) (*crm.Status, error)
		CIB(ctx context.Context) (*crm.CIB, error)
		DeleteAttribute(ctx context.Context, node, name string, l crm.Lifetime) error
	}
	Nova interface {
		reserve.Nova
		Hypervisors(ctx context.Context) ([]openstack.Hypervisor, error)
	}
	// Daemon asks the evacuation daemon's socket; nil or an error leaves the steps out.
	Daemon func(ctx context.Context) (evacdsock.Health, error)
	Now    func() time.Time
}

// Gather reads the picture. It fails only when the cluster cannot be read at all; what Nova or
// the daemon did not answer is in Problems.
func Gather(ctx context.Context, src Sources) (*Report, error) {
	st, err := src.Cluster.Status(ctx)
	if err != nil {
		return nil, fmt.Errorf("cluster status: %w", err)
	}
	cib, err := src.Cluster.CIB(ctx)
	if err != nil {
		return nil, fmt.Errorf("reading the CIB: %w", err)
	}
	cfg := src.Config
	r := &Report{At: src.Now(), Quorate: st.Quorate, DC: st.DC, Maintenance: st.MaintenanceMode}
	for _, res := range st.Resources {
		if res.Agent == EvacuatorAgent && res.Active {
			r.Daemon.Nodes = append(r.Daemon.Nodes, res.Nodes...)
		}
	}
	if src.Daemon != nil {
		if h, err := src.Daemon(ctx); err == nil {
			r.Daemon.Steps = h.Jobs
		}
	}
	r.Guard = Guard{MaxHosts: cfg.Guard.MaxHosts, Window: cfg.Guard.Window.String(), MaxSegmentFraction: cfg.Guard.MaxSegmentFraction}
	phases := map[string]string{}
	for _, e := range evacstate.Entries(cib) {
		rec := Recovery{Host: e.Node, Phase: string(e.State.Phase), Since: e.State.Since, Reason: e.State.Reason, Step: r.Daemon.Steps[e.Node]}
		if e.Err != nil {
			rec.Phase, rec.Reason = "unreadable", e.Err.Error()
		}
		r.Recoveries = append(r.Recoveries, rec)
		phases[e.Node] = rec.Phase
		if e.State.Blocking() {
			r.Guard.Failing = append(r.Guard.Failing, e.Node)
		}
	}

	windows := maintenance.Of(cib)
	pool := reserve.Pool{Config: cfg, Nova: src.Nova, Cluster: src.Cluster, Now: src.Now}
	reserved := map[string]string{}
	if hosts, err := pool.List(ctx); err != nil {
		r.Problems = append(r.Problems, "reserved hosts: "+err.Error())
	} else {
		for _, h := range hosts {
			reserved[h.NovaHost] = string(h.State)
		}
	}
	var aggs []openstack.Aggregate
	if slices.ContainsFunc(slices.Collect(maps.Values(cfg.Segments)), func(s config.Segment) bool { return s.Aggregate != "" }) || len(cfg.Cells) > 0 || len(cfg.Policy.Aggregates) > 0 {
		if aggs, err = src.Nova.Aggregates(ctx); err != nil {
			r.Problems = append(r.Problems, "aggregates: "+err.Error())
		}
	}
	segs, err := cfg.ResolveSegments(openstack.HostsByAggregate(aggs))
	if err != nil {
		r.Problems = append(r.Problems, "segments: "+err.Error())
		segs, _ = cfg.ResolveSegments(nil)
	}
	hvs, err := src.Nova.Hypervisors(ctx)
	if err != nil {
		r.Problems = append(r.Problems, "hypervisors: "+err.Error())
	}
	pol := policy.New(cfg.Policy, cfg.Evacuation.RestartPriority)
	for _, name := range segs.Names() {
		seg := segs[name]
		out := Segment{Name: name, RecoveryMethod: seg.RecoveryMethod, Admission: seg.AdmissionPolicy().String()}
		for _, nh := range seg.Hosts {
			h := Host{Node: cfg.Node(nh), NovaHost: nh, Reserve: reserved[nh], Recovery: phases[cfg.Node(nh)], Pacemaker: "unknown"}
			if n, ok := st.Node(h.Node); ok {
				h.Pacemaker = pacemakerState(n)
			}
			if w, ok := windows[h.Node]; ok {
				h.Maintenance = w.Describe()
			}
			if err := hostFromNova(ctx, src.Nova, pol, cfg, aggs, &h); err != nil {
				r.Problems = append(r.Problems, h.Node+": "+err.Error())
			}
			out.Hosts = append(out.Hosts, h)
		}
		if hvs != nil {
			out.Headroom, _ = plan.HeadroomFor(seg.AdmissionPolicy(), recovery.SegmentCapacity(seg, hvs))
		}
		r.Segments = append(r.Segments, out)
	}
	return r, nil
}

func hostFromNova(ctx context.Context, nova reserve.Nova, pol *policy.Engine, cfg *config.Config, aggs []openstack.Aggregate, h *Host) error {
	svc, err := nova.FindComputeService(ctx, h.NovaHost)
	if openstack.IsNotFound(err) {
		h.Nova = "unknown"
		return nil
	}
	if err != nil {
		return err
	}
	h.Nova = svc.Status + " " + svc.State
	if svc.ForcedDown {
		h.Nova += " (forced)"
	}
	h.DisabledReason = svc.DisabledReason
	servers, err := nova.ServersOnHost(ctx, h.NovaHost)
	if err != nil {
		return err
	}
	var hostAggs []string
	az := svc.Zone
	for _, a := range aggs {
		if slices.Contains(a.Hosts, h.NovaHost) {
			hostAggs = append(hostAggs, a.Name)
		}
	}
	cells := cfg.Cells.Of(h.NovaHost, openstack.HostsByAggregate(aggs))
	h.VMs = len(servers)
	for _, s := range servers {
		if pol.Decide(recovery.PolicyVM(s, hostAggs, az, cells)).HA {
			h.HAVMs++
		}
	}
	return nil
}

func pacemakerState(n crm.Node) string {
	switch {
	case n.Unclean:
		return "unclean"
	case !n.Online:
		return "offline"
	case n.Maintenance:
		return "maintenance"
	case n.Standby:
		return "standby"
	}
	return "online"
}

// Summary is one line about the report: what needs an operator, or that nothing does.
func (r *Report) Summary() string {
	var needs []string
	if !r.Quorate {
		needs = append(needs, "no quorum")
	}
	if len(r.Daemon.Nodes) == 0 {
		needs = append(needs, "the evacuation daemon runs nowhere")
	}
	for _, rec := range r.Recoveries {
		if rec.Phase == string(evacstate.Failed) || rec.Phase == "unreadable" {
			needs = append(needs, "recovery of "+rec.Host+" "+rec.Phase)
		}
	}
	for _, s := range r.Segments {
		if s.Headroom.VCPUs < 0 || s.Headroom.RAMMB < 0 || s.Headroom.DiskGB < 0 {
			needs = append(needs, "segment "+s.Name+" no longer meets its admission policy "+s.Admission)
		}
		for _, h := range s.Hosts {
			if h.Reserve == string(reserve.Exposed) || h.Reserve == string(reserve.Withheld) {
				needs = append(needs, "reserved host "+h.Node+" "+h.Reserve)
			}
		}
	}
	needs = append(needs, r.Problems...)
	if len(needs) == 0 {
		return "ok"
	}
	return "attention: " + strings.Join(needs, "; ")
}
