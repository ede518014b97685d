package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	ucli "github.com/urfave/cli/v3"

	"github.com/computeha/computeha/crm"
	"github.com/computeha/computeha/internal/config"
	"github.com/computeha/computeha/internal/evidence"
	"github.com/computeha/computeha/internal/health"
)

// healthCommand shows how computeha judges each host right now, from the same evidence and
// decision function fence_hostcheck and the evacuation daemon use.
func healthCommand() *ucli.Command {
	return &ucli.Command{
		Name:  "health",
		Usage: "judge each host from its membership, per-network reachability and storage heartbeat",
		Description: "Prints each configured host's state (running, degraded, dead, isolated, management-lost,\n" +
			"service-unreachable, unknown), the response computeha takes and why. With --watch it keeps\n" +
			"judging every health.interval and prints a line whenever a host's confirmed state changes\n" +
			"(the state has held for health.confirm), as the evacuation daemon would act on it.",
		Flags: []ucli.Flag{
			configFlag(),
			&ucli.StringSliceFlag{Name: "host", Usage: "only this host (repeatable)"},
			&ucli.BoolFlag{Name: "json", Usage: "one JSON object per line"},
			&ucli.BoolFlag{Name: "watch", Usage: "keep judging and print confirmed changes"},
		},
		Action: func(ctx context.Context, c *ucli.Command) error {
			cfg, err := config.Load(c.String("config"))
			if err != nil {
				return err
			}
			if !cfg.Health.Enabled() {
				return errors.New("the configuration has no health section (health.networks is empty)")
			}
			// The hosts are those listed and those that joined by gossip, as the evidence
			// names them (only is empty without --host).
			only := c.StringSlice("host")
			for _, h := range only {
				if why := cfg.Health.NotAHost(h); why != "" {
					return fmt.Errorf("host %q is not in health.hosts, and %s", h, why)
				}
			}
			src := evidence.Sources{Cluster: crm.NewClient(nil), Storage: &evidence.Storage{}}
			out := &healthPrinter{w: c.Root().Writer, json: c.Bool("json")}
			if !c.Bool("watch") {
				obs, err := evidence.Gather(ctx, src, &cfg.Health)
				if err != nil {
					return err
				}
				hosts, err := judgedHosts(&cfg.Health, obs, only)
				if err != nil {
					return err
				}
				var ds []health.Decision
				for _, h := range hosts {
					ds = append(ds, health.Decide(&cfg.Health, health.Collect(&cfg.Health, obs, h)))
				}
				return out.table(obs.Now, ds)
			}
			return watchHealth(ctx, &cfg.Health, src, only, out)
		},
	}
}

// judgedHosts are the hosts `computeha health` judges: only (--host), each of which the
// evidence must name, or, when only is empty, every host it names.
func judgedHosts(cfg *config.Health, obs health.Observations, only []string) ([]string, error) {
	known := obs.Hosts(cfg)
	if len(only) == 0 {
		return known, nil
	}
	for _, h := range only {
		if !slices.Contains(known, h) {
			return nil, fmt.Errorf("host %q is not in health.hosts and never joined: it has no heartbeat record and no host's view names it", h)
		}
	}
	return only, nil
}

// watchHealth judges the hosts every interval and prints each confirmed change, until ctx
// ends: only, or (empty) every host the evidence has named since it began. A cluster that does
// not answer is reported once per outage, not every interval.
func watchHealth(ctx context.Context, cfg *config.Health, src evidence.Sources, only []string, out *healthPrinter) error {
	seen := map[string]bool{}
	tr := health.NewTracker(cfg)
	tick := time.NewTicker(cfg.Interval)
	defer tick.Stop()
	failing := false
	for {
		obs, err := evidence.Gather(ctx, src, cfg)
		switch {
		case ctx.Err() != nil:
			return nil
		case err != nil:
			if !failing {
				fmt.Fprintf(out.w, "%s cluster state unreadable: %v\n", time.Now().Format(time.RFC3339Nano), err)
			}
			failing = true
		default:
			failing = false
			hosts := only
			if len(hosts) == 0 {
				for _, h := range obs.Hosts(cfg) {
					seen[h] = true
				}
				hosts = slices.Sorted(maps.Keys(seen))
			}
			for _, h := range hosts {
				d, changed := tr.Observe(obs.Now, health.Decide(cfg, health.Collect(cfg, obs, h)))
				if changed {
					if err := out.line(obs.Now, d); err != nil {
						return err
					}
				}
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
	}
}

type healthPrinter struct {
	w    io.Writer
	json bool
}

type healthJSON struct {
	Time     time.Time `json:"time"`
	Host     string    `json:"host"`
	State    string    `json:"state"`
	Response string    `json:"response"`
	Networks []string  `json:"networks,omitempty"`
	Code     string    `json:"code"`
	Reason   string    `json:"reason"`
}

func toJSON(at time.Time, d health.Decision) healthJSON {
	return healthJSON{
		Time: at, Host: d.Host, State: string(d.State), Response: string(d.Response),
		Networks: d.Networks, Code: string(d.Reason.Code), Reason: d.Reason.Text,
	}
}

func (p *healthPrinter) line(at time.Time, d health.Decision) error {
	if p.json {
		return json.NewEncoder(p.w).Encode(toJSON(at, d))
	}
	_, err := fmt.Fprintf(p.w, "%s %s %s response=%s: %s\n", at.Format(time.RFC3339Nano), d.Host, d.State, d.Response, d.Reason.Text)
	return err
}

func (p *healthPrinter) table(at time.Time, ds []health.Decision) error {
	if p.json {
		for _, d := range ds {
			if err := p.line(at, d); err != nil {
				return err
			}
		}
		return nil
	}
	tw := tabwriter.NewWriter(p.w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "HOST\tSTATE\tRESPONSE\tLOST\tREASON")
	for _, d := range ds {
		lost := strings.Join(d.Networks, ",")
		if lost == "" {
			lost = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", d.Host, d.State, d.Response, lost, d.Reason.Text)
	}
	return tw.Flush()
}
