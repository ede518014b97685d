package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	ucli "github.com/urfave/cli/v3"

	"github.com/computeha/computeha/crm"
	"github.com/computeha/computeha/internal/config"
	"github.com/computeha/computeha/internal/history"
	"github.com/computeha/computeha/internal/maintenance"
	"github.com/computeha/computeha/internal/openstack"
	"github.com/computeha/computeha/internal/recovery"
)

// maintenanceEnv is what the maintenance commands act on: Pacemaker through its tools, Nova
// through the configuration's clouds.yaml entry. Tests replace it.
var maintenanceEnv = func(cfg *config.Config) (maintenance.Cluster, openstack.Client, recovery.Cluster) {
	cl := crm.NewClient(nil)
	return cl, novaClient(cfg), cl
}

func maintenanceCommand() *ucli.Command {
	hosts := func(c *ucli.Command) (*config.Config, maintenance.Hosts, openstack.Client, recovery.Cluster, error) {
		cfg, err := config.Load(c.String("config"))
		if err != nil {
			return nil, maintenance.Hosts{}, nil, nil, err
		}
		cl, nova, rc := maintenanceEnv(cfg)
		return cfg, maintenance.Hosts{Cluster: cl, Nova: nova, NovaHost: cfg.NovaHost}, nova, rc, nil
	}
	return &ucli.Command{
		Name: "maintenance",
		Usage: "a host's maintenance: HA off for it (health alerts ignored, a failure recovers nothing, never a target), " +
			"its nova-compute disabled",
		Commands: []*ucli.Command{
			{
				Name:      "enter",
				Usage:     "put HOST (a Pacemaker node name) into maintenance",
				ArgsUsage: "HOST",
				Flags: []ucli.Flag{
					configFlag(),
					&ucli.StringFlag{Name: "reason", Usage: "why, for the history and Nova's disabled reason"},
					&ucli.StringFlag{Name: "until", Usage: "when it ends by itself: a duration from now (2h, 1d) or a time (RFC 3339, YYYY-MM-DD HH:MM UTC)"},
					&ucli.StringFlag{Name: "by", Usage: "who (default: $SUDO_USER, else $USER)"},
					&ucli.BoolFlag{Name: "drain", Usage: "then move its HA VMs to the other hosts of its segment (live, or cold for stopped ones), reporting each"},
				},
				Action: func(ctx context.Context, c *ucli.Command) error {
					node, err := oneArg(c)
					if err != nil {
						return err
					}
					now := time.Now().UTC()
					until, err := parseUntil(c.String("until"), now)
					if err != nil {
						return usageError{fmt.Errorf("%s: --until: %w (see %s --help)", c.FullName(), err, c.FullName())}
					}
					cfg, h, nova, rc, err := hosts(c)
					if err != nil {
						return err
					}
					w := maintenance.Window{Since: now.Truncate(time.Second), Until: until, By: c.String("by"), Reason: c.String("reason")}
					if w.By == "" {
						w.By = firstNonEmpty(os.Getenv("SUDO_USER"), os.Getenv("USER"), "operator")
					}
					res, err := h.Enter(ctx, node, w)
					if err != nil {
						return err
					}
					out := c.Root().Writer
					fmt.Fprintf(out, "%s is %s\n", node, res.Window.Describe())
					if res.Kept {
						fmt.Fprintf(out, "its nova-compute was disabled already (%s): left so\n", res.Service.DisabledReason)
					} else {
						fmt.Fprintf(out, "its nova-compute is disabled: %s\n", res.Service.DisabledReason)
					}
					if !c.Bool("drain") {
						return nil
					}
					return drain(ctx, out, cfg, nova, rc, node)
				},
			},
			{
				Name:      "exit",
				Usage:     "end HOST's maintenance: its nova-compute is enabled again if maintenance disabled it",
				ArgsUsage: "HOST",
				Flags:     []ucli.Flag{configFlag()},
				Action: func(ctx context.Context, c *ucli.Command) error {
					node, err := oneArg(c)
					if err != nil {
						return err
					}
					_, h, _, _, err := hosts(c)
					if err != nil {
						return err
					}
					res, err := h.Exit(ctx, node)
					if err != nil {
						return err
					}
					if res.Kept {
						_, err = fmt.Fprintf(c.Root().Writer, "%s left maintenance; its nova-compute stays as it is (%s %s)\n", node, res.Service.Status, res.Service.DisabledReason)
					} else {
						_, err = fmt.Fprintf(c.Root().Writer, "%s left maintenance; its nova-compute is enabled\n", node)
					}
					return err
				},
			},
			{
				Name:  "list",
				Usage: "the hosts in maintenance",
				Flags: []ucli.Flag{configFlag(), &ucli.BoolFlag{Name: "json", Usage: "one JSON object per line"}},
				Action: func(ctx context.Context, c *ucli.Command) error {
					if c.Args().Len() > 0 {
						return argsError(c, "takes no arguments (got %q)", c.Args().First())
					}
					_, h, _, _, err := hosts(c)
					if err != nil {
						return err
					}
					windows, err := h.List(ctx)
					if err != nil {
						return err
					}
					return printMaintenance(c.Root().Writer, windows, c.Bool("json"))
				},
			},
		},
	}
}

// parseUntil reads --until: a duration or whole days from now, or a time, which must be ahead.
func parseUntil(s string, now time.Time) (time.Time, error) {
	if strings.TrimSpace(s) == "" {
		return time.Time{}, nil
	}
	var t time.Time
	if days, ok := strings.CutSuffix(s, "d"); ok {
		if n, err := strconv.Atoi(days); err == nil && n > 0 {
			t = now.AddDate(0, 0, n)
		}
	}
	if d, err := time.ParseDuration(s); t.IsZero() && err == nil {
		t = now.Add(d)
	}
	if t.IsZero() {
		var err error
		if t, err = history.ParseTime(s, now); err != nil {
			return time.Time{}, err
		}
	}
	if !t.After(now) {
		return time.Time{}, fmt.Errorf("%q is not in the future", s)
	}
	return t.UTC().Truncate(time.Second), nil
}

// drain moves node's HA VMs off it as the daemon moves those of a degraded host, reporting
// each VM.
func drain(ctx context.Context, out io.Writer, cfg *config.Config, nova openstack.Client, cl recovery.Cluster, node string) error {
	eng := recovery.New(recovery.Options{Config: cfg, Nova: nova, Cluster: cl})
	host := recovery.NewNames(cfg, nil).ByNode(node)
	fmt.Fprintf(out, "draining %s: moving its HA VMs to the other hosts of its segment\n", node)
	rep, err := eng.Run(ctx, recovery.Job{Source: host, Situation: recovery.HostDegraded, Step: func(s string) { fmt.Fprintf(out, "  %s\n", s) }})
	if err != nil {
		return fmt.Errorf("draining %s: %w", node, err)
	}
	for _, v := range rep.VMs {
		line := fmt.Sprintf("  %s (%s): %s", v.Server.Name, v.Server.ID, v.Result)
		if v.Method != "" {
			line += " by " + string(v.Method)
		}
		if v.To.Node != "" {
			line += " to " + v.To.Node
		}
		if v.Reason.Text != "" {
			line += ": " + v.Reason.Text
		}
		fmt.Fprintln(out, line)
	}
	if n := rep.Count(recovery.Failed) + rep.Count(recovery.Unrecoverable); n > 0 {
		return fmt.Errorf("%s is in maintenance, but %d of its HA VMs could not be moved", node, n)
	}
	return nil
}

type maintenanceJSON struct {
	Host   string `json:"host"`
	Since  string `json:"since,omitempty"`
	Until  string `json:"until,omitempty"`
	By     string `json:"by,omitempty"`
	Reason string `json:"reason,omitempty"`
}

func printMaintenance(w io.Writer, windows map[string]maintenance.Window, asJSON bool) error {
	stamp := func(t time.Time) string {
		if t.IsZero() {
			return ""
		}
		return t.UTC().Format(time.RFC3339)
	}
	nodes := slices.Sorted(maps.Keys(windows))
	if asJSON {
		enc := json.NewEncoder(w)
		for _, n := range nodes {
			m := windows[n]
			if err := enc.Encode(maintenanceJSON{Host: n, Since: stamp(m.Since), Until: stamp(m.Until), By: m.By, Reason: m.Reason}); err != nil {
				return err
			}
		}
		return nil
	}
	if len(nodes) == 0 {
		_, err := fmt.Fprintln(w, "no host is in maintenance")
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "HOST\tSINCE\tUNTIL\tBY\tREASON")
	for _, n := range nodes {
		m := windows[n]
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", n, dash(stamp(m.Since)), dash(stamp(m.Until)), dash(m.By), dash(m.Reason))
	}
	return tw.Flush()
}

func firstNonEmpty(s ...string) string {
	for _, v := range s {
		if v != "" {
			return v
		}
	}
	return ""
}
