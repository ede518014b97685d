package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"text/tabwriter"
	"time"

	ucli "github.com/urfave/cli/v3"

	"github.com/computeha/computeha/crm"
	"github.com/computeha/computeha/internal/config"
	"github.com/computeha/computeha/internal/openstack"
	"github.com/computeha/computeha/internal/reserve"
)

// novaClient is the Nova a command reaches through the daemon's configuration (its
// clouds.yaml entry), logging in at the first call.
func novaClient(cfg *config.Config) *openstack.Lazy {
	return openstack.NewLazy(openstack.Options{Cloud: cfg.Cloud, CloudsFile: cfg.CloudsYAML, Logger: slog.New(slog.DiscardHandler)})
}

// reservePool builds the pool the reserved commands act on from the daemon's configuration:
// Nova through its clouds.yaml entry, Pacemaker through its tools. Tests replace it.
var reservePool = func(cfg *config.Config) reserve.Pool {
	nova := novaClient(cfg)
	return reserve.Pool{Config: cfg, Nova: nova, Cluster: crm.NewClient(nil), Now: time.Now}
}

func reservedCommand() *ucli.Command {
	pool := func(c *ucli.Command) (reserve.Pool, error) {
		cfg, err := config.Load(c.String("config"))
		if err != nil {
			return reserve.Pool{}, err
		}
		return reservePool(cfg), nil
	}
	return &ucli.Command{
		Name:  "reserved",
		Usage: "the reserved hosts of the failover segments: list them, return an emptied one to the pool",
		Commands: []*ucli.Command{
			{
				Name: "list",
				Usage: "every reserved host with its state: in-reserve, in-use (taken by a recovery), withheld " +
					"(disabled for another reason), exposed (enabled though never taken), unknown",
				Flags: []ucli.Flag{configFlag(), &ucli.BoolFlag{Name: "json", Usage: "one JSON object per line"}},
				Action: func(ctx context.Context, c *ucli.Command) error {
					if c.Args().Len() > 0 {
						return argsError(c, "takes no arguments (got %q)", c.Args().First())
					}
					p, err := pool(c)
					if err != nil {
						return err
					}
					hosts, err := p.List(ctx)
					if err != nil {
						return err
					}
					return printReserved(c.Root().Writer, hosts, c.Bool("json"))
				},
			},
			{
				Name: "return",
				Usage: "give the reserved host HOST (node or Nova host name), which a recovery took into use and " +
					"which is empty again, back to the pool: it is disabled in Nova and held for the next failure",
				ArgsUsage: "HOST",
				Flags:     []ucli.Flag{configFlag()},
				Action: func(ctx context.Context, c *ucli.Command) error {
					name, err := oneArg(c)
					if err != nil {
						return err
					}
					p, err := pool(c)
					if err != nil {
						return err
					}
					h, err := p.Return(ctx, name)
					if err != nil {
						return err
					}
					note := ""
					if h.Note != "" {
						note = ": " + h.Note
					}
					_, err = fmt.Fprintf(c.Root().Writer, "%s returned to the pool of segment %s, %s%s\n", h.Node, h.Segment, h.State, note)
					return err
				},
			},
		},
	}
}

type reservedJSON struct {
	Segment   string `json:"segment"`
	Host      string `json:"host"`
	NovaHost  string `json:"nova_host"`
	State     string `json:"state"`
	UsedSince string `json:"used_since,omitempty"`
	Service   string `json:"service,omitempty"`
	Reason    string `json:"disabled_reason,omitempty"`
	Servers   int    `json:"servers"`
	Note      string `json:"note,omitempty"`
}

func reservedView(h reserve.Host) reservedJSON {
	v := reservedJSON{
		Segment: h.Segment, Host: h.Node, NovaHost: h.NovaHost, State: string(h.State), Service: h.Service.Status,
		Reason: h.Service.DisabledReason, Servers: h.Servers, Note: h.Note,
	}
	if !h.UsedSince.IsZero() {
		v.UsedSince = h.UsedSince.UTC().Format(time.RFC3339)
	}
	return v
}

func printReserved(w io.Writer, hosts []reserve.Host, asJSON bool) error {
	if asJSON {
		enc := json.NewEncoder(w)
		for _, h := range hosts {
			if err := enc.Encode(reservedView(h)); err != nil {
				return err
			}
		}
		return nil
	}
	if len(hosts) == 0 {
		_, err := fmt.Fprintln(w, "no segment has reserved hosts")
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SEGMENT\tHOST\tSTATE\tSINCE\tSERVICE\tSERVERS\tNOTE")
	for _, h := range hosts {
		v := reservedView(h)
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", v.Segment, v.Host, v.State, dash(v.UsedSince), dash(v.Service), strconv.Itoa(v.Servers), dash(v.Note))
	}
	return tw.Flush()
}
