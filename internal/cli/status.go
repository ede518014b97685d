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
	"github.com/computeha/computeha/internal/evacdsock"
	"github.com/computeha/computeha/internal/status"
)

// statusSources builds what computeha status reads from the daemon's configuration. Tests
// replace it.
var statusSources = func(cfg *config.Config, socket string) status.Sources {
	return status.Sources{
		Config:  cfg,
		Cluster: crm.NewClient(nil),
		Nova:    novaClient(cfg),
		Daemon: func(ctx context.Context) (evacdsock.Health, error) {
			ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
			defer cancel()
			return evacdsock.Ask(ctx, socket)
		},
		Now: time.Now,
	}
}

func statusCommand() *ucli.Command {
	return &ucli.Command{
		Name: "status",
		Usage: "the whole picture: quorum and where the evacuation daemon runs; each segment's hosts (Pacemaker, " +
			"Nova, reserve, recovery, VMs and HA VMs) and headroom; the recoveries; the guard",
		Flags: []ucli.Flag{
			configFlag(),
			&ucli.StringFlag{Name: "socket", Value: evacdsock.DefaultSocket, Usage: "the evacuation daemon's socket, for what its recoveries do (when it runs here)"},
			&ucli.BoolFlag{Name: "json", Usage: "the report as one JSON object"},
		},
		Action: func(ctx context.Context, c *ucli.Command) error {
			if c.Args().Len() > 0 {
				return argsError(c, "takes no arguments (got %q)", c.Args().First())
			}
			cfg, err := config.Load(c.String("config"))
			if err != nil {
				return err
			}
			r, err := status.Gather(ctx, statusSources(cfg, c.String("socket")))
			if err != nil {
				return err
			}
			if c.Bool("json") {
				return json.NewEncoder(c.Root().Writer).Encode(r)
			}
			return printStatus(c.Root().Writer, r)
		},
	}
}

func printStatus(w io.Writer, r *status.Report) error {
	quorum := "quorate"
	if !r.Quorate {
		quorum = "NOT quorate"
	}
	daemon := "runs nowhere"
	if len(r.Daemon.Nodes) > 0 {
		daemon = "runs on " + strings.Join(r.Daemon.Nodes, ", ")
	}
	fmt.Fprintf(w, "cluster: %s, DC %s; the evacuation daemon %s", quorum, dash(r.DC), daemon)
	if r.Maintenance {
		fmt.Fprint(w, "; maintenance-mode on")
	}
	fmt.Fprintln(w)
	for _, s := range r.Segments {
		fmt.Fprintf(w, "\nsegment %s (%s): headroom after losing its costliest host %d vCPUs, %d MiB, %d GB\n",
			s.Name, s.RecoveryMethod, s.Headroom.VCPUs, s.Headroom.RAMMB, s.Headroom.DiskGB)
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "  HOST\tPACEMAKER\tNOVA\tRESERVE\tMAINTENANCE\tRECOVERY\tVMS\tHA VMS")
		for _, h := range s.Hosts {
			nova := h.Nova
			if h.DisabledReason != "" {
				nova += " (" + h.DisabledReason + ")"
			}
			maint := "-"
			if h.Maintenance != "" {
				maint = "yes"
			}
			fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\t%s\t%d\t%d\n", h.Node, h.Pacemaker, nova, dash(h.Reserve), maint, dash(h.Recovery), h.VMs, h.HAVMs)
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	fmt.Fprintln(w)
	if len(r.Recoveries) == 0 {
		fmt.Fprintln(w, "recoveries: none")
	} else {
		fmt.Fprintln(w, "recoveries:")
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "  HOST\tPHASE\tSINCE\tSTEP\tREASON")
		for _, rec := range r.Recoveries {
			since := ""
			if !rec.Since.IsZero() {
				since = rec.Since.UTC().Format(time.RFC3339)
			}
			fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\n", rec.Host, rec.Phase, dash(since), dash(rec.Step), dash(rec.Reason))
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	g := r.Guard
	fmt.Fprintf(w, "guard: %d host(s) under recovery (%s); pauses beyond %d hosts within %s or %.0f%% of a segment\n",
		len(g.Failing), dash(strings.Join(g.Failing, ", ")), g.MaxHosts, g.Window, g.MaxSegmentFraction*100)
	_, err := fmt.Fprintf(w, "status: %s\n", r.Summary())
	return err
}
