package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	ucli "github.com/urfave/cli/v3"

	"github.com/computeha/computeha/crm"
	"github.com/computeha/computeha/internal/evacstate"
)

// recoveryCluster is the Pacemaker the recovery commands act on: the real one, or a fake in
// tests.
var recoveryCluster = func() evacstate.Cluster { return crm.NewClient(nil) }

func recoveryCommand() *ucli.Command {
	return &ucli.Command{
		Name:  "recovery",
		Usage: "the recoveries of failed hosts: list them, retry or clear one that failed",
		Commands: []*ucli.Command{
			{
				Name:  "list",
				Usage: "every host under recovery, with its phase (pending, running, done, failed)",
				Flags: []ucli.Flag{&ucli.BoolFlag{Name: "json", Usage: "one JSON object per line"}},
				Action: func(ctx context.Context, c *ucli.Command) error {
					if c.Args().Len() > 0 {
						return argsError(c, "takes no arguments (got %q)", c.Args().First())
					}
					cib, err := recoveryCluster().CIB(ctx)
					if err != nil {
						return err
					}
					return printRecoveries(c.Root().Writer, evacstate.Entries(cib), c.Bool("json"))
				},
			},
			{
				Name: "retry",
				Usage: "start the failed recovery of HOST (a Pacemaker node name) again: it is fenced again first, " +
					"and the evacuation daemon recovers it once that fencing is confirmed",
				ArgsUsage: "HOST",
				Flags: []ucli.Flag{
					&ucli.DurationFlag{Name: "timeout", Value: 2 * time.Minute, Usage: "how long the fencing may take"},
				},
				Action: func(ctx context.Context, c *ucli.Command) error {
					host, err := oneArg(c)
					if err != nil {
						return err
					}
					if c.Duration("timeout") <= 0 {
						return fmt.Errorf("%s: --timeout must be positive", c.FullName())
					}
					op := evacstate.Operator{Cluster: recoveryCluster(), Now: time.Now, FenceTimeout: c.Duration("timeout")}
					st, err := op.Retry(ctx, host)
					if err != nil {
						return err
					}
					_, err = fmt.Fprintf(c.Root().Writer, "%s fenced again and marked %s (%s): the evacuation daemon recovers it now\n",
						host, st.Phase, st.Since.Format(time.RFC3339))
					return err
				},
			},
			{
				Name: "clear",
				Usage: "give up the failed recovery of HOST: the host may be let back, and the VMs left on it " +
					"are the operator's",
				ArgsUsage: "HOST",
				Action: func(ctx context.Context, c *ucli.Command) error {
					host, err := oneArg(c)
					if err != nil {
						return err
					}
					op := evacstate.Operator{Cluster: recoveryCluster(), Now: time.Now}
					st, err := op.Clear(ctx, host)
					if err != nil {
						return err
					}
					_, err = fmt.Fprintf(c.Root().Writer, "cleared the failed recovery of %s (failed since %s: %s)\n",
						host, st.Since.Format(time.RFC3339), st.Reason)
					return err
				},
			},
		},
	}
}

type recoveryJSON struct {
	Host   string `json:"host"`
	Phase  string `json:"phase"`
	Since  string `json:"since,omitempty"`
	Owner  string `json:"owner,omitempty"`
	By     string `json:"by,omitempty"`
	Reason string `json:"reason,omitempty"`
	Error  string `json:"error,omitempty"`
}

func recoveryView(e evacstate.Entry) recoveryJSON {
	v := recoveryJSON{Host: e.Node, Phase: string(e.State.Phase), Owner: e.State.Owner, By: e.State.By, Reason: e.State.Reason}
	if !e.State.Since.IsZero() {
		v.Since = e.State.Since.UTC().Format(time.RFC3339)
	}
	if e.Err != nil {
		v.Phase, v.Error = "unreadable", fmt.Sprintf("%v (value %q)", e.Err, e.Raw)
	}
	return v
}

func printRecoveries(w io.Writer, entries []evacstate.Entry, asJSON bool) error {
	if asJSON {
		enc := json.NewEncoder(w)
		for _, e := range entries {
			if err := enc.Encode(recoveryView(e)); err != nil {
				return err
			}
		}
		return nil
	}
	if len(entries) == 0 {
		_, err := fmt.Fprintln(w, "no host is under recovery")
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "HOST\tPHASE\tSINCE\tBY\tREASON")
	for _, e := range entries {
		v := recoveryView(e)
		by := v.By
		if v.Owner != "" {
			by = v.Owner
		}
		reason := v.Reason
		if v.Error != "" {
			reason = v.Error
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", v.Host, v.Phase, dash(v.Since), dash(by), dash(reason))
	}
	return tw.Flush()
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
