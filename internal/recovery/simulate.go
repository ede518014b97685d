package recovery

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/computeha/computeha/internal/plan"
)

// Simulation is what the recovery of a host would do if it were fenced now: read live, decided
// and planned as a recovery does, and nothing changed or recorded.
type Simulation struct {
	Source  Host
	Segment string
	Method  string // the segment's recovery method
	VMs     []SimulatedVM
	// ReservedHostsUsed are the reserved hosts it would take into use (node names).
	ReservedHostsUsed []string
	// Excluded are the segment's hosts that would take nothing, and why.
	Excluded []plan.Excluded
	// Warnings are the capacity check's lines: what would not fit.
	Warnings []string
}

// SimulatedVM is what would become of one VM.
type SimulatedVM struct {
	ID, Name string
	// Outcome: "move" (Method to Target; no Target: Nova's scheduler picks, inside its rules),
	// "left" (no HA, class none, ...), or "unrecoverable" (a hard server group policy no host
	// of the segment can follow).
	Outcome string
	Method  MethodName
	// Target is the node it would go to; "" for Nova's choice or none.
	Target string
	Why    Reason
}

// Simulate tells what a failure of sources, together, would do now. Each host is planned as
// its recovery would be, the others taken for down: as the daemon runs simultaneous
// recoveries, each plans on what Nova shows, not on the others' plans.
func (e *Engine) Simulate(ctx context.Context, sources []Host) ([]Simulation, error) {
	failing := map[string]bool{}
	for _, s := range sources {
		failing[s.NovaHost] = true
	}
	var out []Simulation
	for _, src := range sources {
		r, err := e.Read(ctx, src)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", src.Node, err)
		}
		x := &run{
			e: e, job: Job{Source: src, Situation: HostFenced, Recorder: nopRecorder{}, Step: func(string) {}}, r: r,
			names: NewNames(e.o.Config, r.Nodes), failing: failing,
		}
		moves := x.classify(ctx)
		p, byID, err := x.makePlan(moves)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", src.Node, err)
		}
		sim := Simulation{Source: src, Segment: r.SegmentName, Method: string(r.Segment.RecoveryMethod)}
		targets := map[string]plan.Move{}
		unplaced := map[string]plan.Unplaced{}
		if p != nil {
			for _, m := range p.Moves {
				targets[m.VM.ID] = m
			}
			for _, u := range p.Unplaced {
				unplaced[u.VM.ID] = u
			}
			for _, h := range p.ReservedHostsUsed {
				sim.ReservedHostsUsed = append(sim.ReservedHostsUsed, x.names.ByNova(h).Node)
			}
			sim.Excluded, sim.Warnings = p.Excluded, p.Preflight.Warnings
		}
		for _, m := range moves {
			v := SimulatedVM{ID: m.srv.ID, Name: m.srv.Name}
			if m.method != nil {
				v.Method = m.method.Name()
			}
			switch {
			case m.report.Result == Left:
				v.Outcome, v.Why = "left", m.report.Reason
			case byID[m.srv.ID] == nil:
				// Not placed by the plan: where Nova moves it already, or where its scheduler
				// will say ("").
				v.Outcome = "move"
				if m.target != "" {
					v.Target = x.names.ByNova(m.target).Node
				}
			default:
				if pm, ok := targets[m.srv.ID]; ok {
					v.Outcome, v.Target, v.Why = "move", x.names.ByNova(pm.Target).Node, Reason{Code: codeOf(pm.Reason), Text: pm.Detail}
				} else if u, ok := unplaced[m.srv.ID]; ok {
					v.Outcome, v.Why = "move", Reason{Code: codeOf(u.Reason), Text: u.Detail}
					if u.Reason != plan.ReasonNoRoom {
						v.Outcome = "unrecoverable"
					}
				}
			}
			sim.VMs = append(sim.VMs, v)
		}
		slices.SortStableFunc(sim.VMs, func(a, b SimulatedVM) int { return strings.Compare(a.Name, b.Name) })
		out = append(out, sim)
	}
	return out, nil
}
