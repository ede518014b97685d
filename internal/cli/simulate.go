package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	ucli "github.com/urfave/cli/v3"

	"github.com/computeha/computeha/crm"
	"github.com/computeha/computeha/internal/config"
	"github.com/computeha/computeha/internal/evacstate"
	"github.com/computeha/computeha/internal/maintenance"
	"github.com/computeha/computeha/internal/openstack"
	"github.com/computeha/computeha/internal/plan"
	"github.com/computeha/computeha/internal/recovery"
)

// simulateCluster is what computeha simulate reads of Pacemaker. Tests replace it.
type simulateCluster interface {
	recovery.Cluster
	Status(ctx context.Context) (*crm.Status, error)
}

// simulateSources builds the engine and cluster computeha simulate reads. Tests replace it.
var simulateSources = func(cfg *config.Config) (openstack.Client, simulateCluster) {
	return novaClient(cfg), crm.NewClient(nil)
}

func simulateCommand() *ucli.Command {
	return &ucli.Command{
		Name: "simulate",
		Usage: "what a failure of HOST (and the other HOSTs with it) would do now, changing nothing: which VMs are " +
			"recovered and how, where each goes, what does not fit, and whether the guard would pause it",
		ArgsUsage: "HOST [HOST...]",
		Flags: []ucli.Flag{
			configFlag(),
			&ucli.BoolFlag{Name: "json", Usage: "one JSON object per host"},
			&ucli.DurationFlag{Name: "timeout", Value: time.Minute, Usage: "how long Nova may take to answer"},
		},
		Action: func(ctx context.Context, c *ucli.Command) error {
			if c.Args().Len() == 0 {
				return argsError(c, "needs at least one argument: %s", c.ArgsUsage)
			}
			cfg, err := config.Load(c.String("config"))
			if err != nil {
				return err
			}
			nova, cluster := simulateSources(cfg)
			st, err := cluster.Status(ctx)
			if err != nil {
				return fmt.Errorf("cluster status: %w", err)
			}
			names := recovery.NewNames(cfg, nil)
			var hosts []recovery.Host
			for _, name := range c.Args().Slice() {
				if _, ok := st.Node(name); !ok {
					return fmt.Errorf("%s: no such Pacemaker node", name)
				}
				hosts = append(hosts, names.ByNode(name))
			}
			ctx, cancel := context.WithTimeout(ctx, c.Duration("timeout"))
			defer cancel()
			eng := recovery.New(recovery.Options{Config: cfg, Nova: nova, Cluster: cluster})
			sims, err := eng.Simulate(ctx, hosts)
			if err != nil {
				return err
			}
			cib, err := cluster.CIB(ctx)
			if err != nil {
				return fmt.Errorf("reading the CIB: %w", err)
			}
			guards := simulatedGuard(cfg, st.Quorate, evacstate.Entries(cib), sims, time.Now())
			return printSimulations(c.Root().Writer, sims, guards, maintenance.Of(cib), c.Bool("json"))
		},
	}
}

// simulatedGuard is what the guard would decide for each simulated host, failing now beside
// the hosts already marked.
func simulatedGuard(cfg *config.Config, quorate bool, marked []evacstate.Entry, sims []recovery.Simulation, now time.Time) []plan.Decision {
	segs, _ := cfg.ResolveSegments(nil)
	g := plan.Guard{Config: cfg.Guard, SegmentSizes: map[string]int{}, Quorate: quorate}
	for name, s := range segs {
		g.SegmentSizes[name] = len(s.Hosts)
	}
	for _, e := range marked {
		if e.State.Blocking() {
			seg, _ := segs.Of(cfg.NovaHost(e.Node))
			g.Failures = append(g.Failures, plan.Failure{Host: e.Node, Segment: seg, At: e.State.Since})
		}
	}
	for _, s := range sims {
		g.Failures = append(g.Failures, plan.Failure{Host: s.Source.Node, Segment: s.Segment, At: now})
	}
	var out []plan.Decision
	for _, s := range sims {
		out = append(out, g.Allow(s.Source.Node, now))
	}
	return out
}

type simulationJSON struct {
	Host    string `json:"host"`
	Segment string `json:"segment"`
	Method  string `json:"recovery_method"`
	Guard   string `json:"guard"`
	// Maintenance, when set, says the host is in maintenance: none of the plan would run.
	Maintenance string          `json:"maintenance,omitempty"`
	GuardWhy    string          `json:"guard_reason,omitempty"`
	Reserved    []string        `json:"reserved_hosts_used,omitempty"`
	Warnings    []string        `json:"warnings,omitempty"`
	VMs         []simulatedVM   `json:"vms"`
	Excluded    []plan.Excluded `json:"excluded,omitempty"`
}

type simulatedVM struct {
	ID      string `json:"id"`
	Name    string `json:"name"`
	Outcome string `json:"outcome"`
	Method  string `json:"method,omitempty"`
	Target  string `json:"target,omitempty"`
	Reason  string `json:"reason,omitempty"`
	Detail  string `json:"detail,omitempty"`
}

func printSimulations(w io.Writer, sims []recovery.Simulation, guards []plan.Decision, windows map[string]maintenance.Window, asJSON bool) error {
	for i, s := range sims {
		v := simulationJSON{
			Host: s.Source.Node, Segment: s.Segment, Method: s.Method, Guard: string(guards[i].Action), Reserved: s.ReservedHostsUsed,
			Warnings: s.Warnings, Excluded: s.Excluded,
		}
		if win, ok := windows[s.Source.Node]; ok {
			// The recovery would stop at its confirmed fencing: nothing of the plan would run.
			v.Maintenance = win.Describe() + ": a failure recovers nothing"
		}
		if guards[i].Action != plan.ActionProceed {
			v.GuardWhy = guards[i].Message
		}
		for _, vm := range s.VMs {
			v.VMs = append(v.VMs, simulatedVM{ID: vm.ID, Name: vm.Name, Outcome: vm.Outcome, Method: string(vm.Method), Target: vm.Target, Reason: string(vm.Why.Code), Detail: vm.Why.Text})
		}
		if asJSON {
			if err := json.NewEncoder(w).Encode(v); err != nil {
				return err
			}
			continue
		}
		fmt.Fprintf(w, "if %s failed now (segment %s, %s):\n", v.Host, v.Segment, v.Method)
		if v.Maintenance != "" {
			fmt.Fprintf(w, "  it is %s; were it not, its recovery would be:\n", v.Maintenance)
		}
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "  VM\tOUTCOME\tMETHOD\tTARGET\tWHY")
		for _, vm := range v.VMs {
			target := vm.Target
			if vm.Outcome == "move" && target == "" {
				target = "(Nova's scheduler)"
			}
			fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\n", vm.Name, vm.Outcome, dash(vm.Method), dash(target), dash(vm.Reason))
		}
		if err := tw.Flush(); err != nil {
			return err
		}
		if len(v.Reserved) > 0 {
			fmt.Fprintf(w, "  reserved hosts taken into use: %s\n", strings.Join(v.Reserved, ", "))
		}
		for _, warn := range v.Warnings {
			fmt.Fprintf(w, "  capacity: %s\n", warn)
		}
		guard := "the guard lets it proceed"
		if v.GuardWhy != "" {
			guard = "the guard would " + v.Guard + " it: " + v.GuardWhy
		}
		fmt.Fprintf(w, "  %s\n", guard)
	}
	return nil
}
