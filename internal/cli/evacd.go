package cli

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	ucli "github.com/urfave/cli/v3"

	"github.com/computeha/computeha/crm"
	"github.com/computeha/computeha/internal/config"
	"github.com/computeha/computeha/internal/evacd"
	"github.com/computeha/computeha/internal/history"
)

// daemonCommands are the commands of the evacuation daemon and around it.
func daemonCommands() []*ucli.Command {
	return []*ucli.Command{evacdCommand(), historyCommand(), reportCommand(), configCommand(), guardCommand(), maintenanceCommand(), recoveryCommand(), reservedCommand(), simulateCommand(), statusCommand(), watchCommand()}
}

func configFlag() *ucli.StringFlag {
	return &ucli.StringFlag{Name: "config", Value: evacd.DefaultConfig, Usage: "evacuation daemon configuration file"}
}

func evacdCommand() *ucli.Command {
	return &ucli.Command{
		Name:  "evacd",
		Usage: "run the evacuation daemon (normally started by ocf:computeha:evacuator)",
		Flags: []ucli.Flag{
			configFlag(),
			&ucli.StringFlag{Name: "socket", Value: evacd.DefaultSocket, Usage: "health socket the OCF agent's monitor asks"},
			&ucli.StringFlag{Name: "alert-socket", Value: crm.DefaultAlertSocket, Usage: "socket the alert agent delivers to"},
			&ucli.StringFlag{Name: "alert-agent", Value: evacd.DefaultAlertAgent, Usage: "alert agent path registered in the CIB"},
			&ucli.StringFlag{Name: "state-dir", Value: evacd.DefaultStateDir, Usage: "directory of the watcher's saved state"},
			&ucli.StringFlag{Name: "owner", Usage: "name of this instance in the evacuation state (default: host name)"},
			&ucli.BoolFlag{Name: "debug", Usage: "log debug messages"},
		},
		Action: func(ctx context.Context, c *ucli.Command) error {
			level := slog.LevelInfo
			if c.Bool("debug") {
				level = slog.LevelDebug
			}
			log := slog.New(slog.NewTextHandler(c.Root().ErrWriter, &slog.HandlerOptions{Level: level}))
			return evacd.Serve(ctx, evacd.ServiceOptions{
				ConfigPath: c.String("config"), Socket: c.String("socket"), AlertSocket: c.String("alert-socket"),
				AlertAgent: c.String("alert-agent"), StateDir: c.String("state-dir"), Owner: c.String("owner"), Log: log,
			})
		},
	}
}

func historyCommand() *ucli.Command {
	return &ucli.Command{
		Name:  "history",
		Usage: "show what computeha saw and did: failures, fencing, decisions and VM moves",
		Flags: []ucli.Flag{
			configFlag(),
			&ucli.StringFlag{Name: "host", Usage: "only this compute host (its Pacemaker node name)"},
			&ucli.StringFlag{Name: "since", Usage: "from this time (2h, 7d, RFC 3339 or YYYY-MM-DD[ HH:MM])"},
			&ucli.StringFlag{Name: "until", Usage: "before this time"},
			&ucli.StringFlag{Name: "kind", Usage: "only events of this kind (failure, fencing, decision, move, alert, guard, ...)"},
			&ucli.StringFlag{Name: "incident", Usage: "only this incident"},
			&ucli.IntFlag{Name: "limit", Usage: "only the most recent N records"},
			&ucli.BoolFlag{Name: "json", Usage: "one JSON object per line"},
		},
		Action: func(ctx context.Context, c *ucli.Command) error {
			var err error
			now := time.Now()
			f := history.Filter{Host: c.String("host"), Incident: c.String("incident"), Limit: int(c.Int("limit"))}
			if f.Since, err = history.ParseTime(c.String("since"), now); err != nil {
				return err
			}
			if f.Until, err = history.ParseTime(c.String("until"), now); err != nil {
				return err
			}
			if k := c.String("kind"); k != "" {
				if f.Kind, err = history.ParseKind(k); err != nil {
					return err
				}
			}
			store, err := openHistory(ctx, c)
			if err != nil {
				return err
			}
			defer store.Close()
			format := history.FormatTable
			if c.Bool("json") {
				format = history.FormatJSON
			}
			return store.Show(ctx, c.Root().Writer, f, format)
		},
	}
}

// openHistory opens the history the --config file names.
func openHistory(ctx context.Context, c *ucli.Command) (*history.Store, error) {
	cfg, err := config.Load(c.String("config"))
	if err != nil {
		return nil, err
	}
	dsn, err := cfg.History.ReadDSN()
	if err != nil {
		return nil, err
	}
	return history.Open(ctx, string(cfg.History.Driver), dsn)
}

func reportCommand() *ucli.Command {
	return &ucli.Command{
		Name: "report",
		Usage: "availability of the VMs that host failures took down: per VM its outages, downtime (failure " +
			"detected until running again) and availability; per project and per failed host the totals and MTTR",
		Flags: []ucli.Flag{
			configFlag(),
			&ucli.StringFlag{Name: "since", Usage: "the window's start (2h, 7d, RFC 3339 or YYYY-MM-DD[ HH:MM]; default: 30 days before until)"},
			&ucli.StringFlag{Name: "until", Usage: "the window's end (default: now)"},
			&ucli.StringFlag{Name: "project", Usage: "only VMs of this project (its id)"},
			&ucli.StringFlag{Name: "host", Usage: "only failures of this compute host (its Pacemaker node name)"},
			&ucli.StringFlag{Name: "format", Value: "table", Usage: "table, csv or json"},
		},
		Action: func(ctx context.Context, c *ucli.Command) error {
			if c.Args().Len() != 0 {
				return argsError(c, "takes no arguments (got %q)", c.Args().First())
			}
			format, err := history.ParseReportFormat(c.String("format"))
			if err != nil {
				return err
			}
			now := time.Now()
			f := history.ReportFilter{Project: c.String("project"), Host: c.String("host")}
			if f.Since, err = history.ParseTime(c.String("since"), now); err != nil {
				return err
			}
			if f.Until, err = history.ParseTime(c.String("until"), now); err != nil {
				return err
			}
			store, err := openHistory(ctx, c)
			if err != nil {
				return err
			}
			defer store.Close()
			r, err := store.Report(ctx, f, now)
			if err != nil {
				return err
			}
			return history.RenderReport(c.Root().Writer, r, format)
		},
	}
}

func configCommand() *ucli.Command {
	return &ucli.Command{
		Name:  "config",
		Usage: "the evacuation daemon's configuration",
		Commands: []*ucli.Command{{
			Name:      "validate",
			Usage:     "check the configuration file (FILE, else --config) and list every problem",
			ArgsUsage: "[FILE]",
			Flags:     []ucli.Flag{configFlag()},
			Action: func(_ context.Context, c *ucli.Command) error {
				path := c.String("config")
				switch c.Args().Len() {
				case 0:
				case 1:
					if c.IsSet("config") && c.Args().First() != path {
						return fmt.Errorf("%s: give the file once, as FILE or as --config, not both", c.FullName())
					}
					path = c.Args().First()
				default:
					return argsError(c, "takes at most one FILE (got %d arguments)", c.Args().Len())
				}
				cfg, err := config.Load(path)
				if err != nil {
					return err
				}
				// The files the configuration names on this host: the daemon would start
				// without them, saying so, but a check is where to learn it first.
				if errs := cfg.Alerts.CheckFiles(); len(errs) > 0 {
					return fmt.Errorf("config %s: %w", path, errors.Join(errs...))
				}
				_, err = fmt.Fprintf(c.Root().Writer, "%s: valid\n", path)
				return err
			},
		}},
	}
}

func guardCommand() *ucli.Command {
	return &ucli.Command{
		Name:  "guard",
		Usage: "the mass-failure guard",
		Commands: []*ucli.Command{{
			Name:      "release",
			Usage:     "let the paused recovery of HOST (a Pacemaker node name) go on",
			ArgsUsage: "HOST",
			Action: func(ctx context.Context, c *ucli.Command) error {
				host, err := oneArg(c)
				if err != nil {
					return err
				}
				cl := crm.NewClient(nil)
				now := time.Now().UTC().Format(time.RFC3339)
				if err := cl.SetAttribute(ctx, host, evacd.ReleaseAttribute, now, crm.Permanent); err != nil {
					return err
				}
				_, err = fmt.Fprintf(c.Root().Writer, "released the recovery of %s (%s)\n", host, now)
				return err
			},
		}},
	}
}

func watchCommand() *ucli.Command {
	return &ucli.Command{
		Name:  "watch",
		Usage: "print cluster events (node lost/joined/unclean/fenced, attribute changes) as they happen",
		Flags: []ucli.Flag{
			&ucli.StringFlag{Name: "alert-socket", Usage: "also listen for the alert agent on this socket (default: poll only)"},
			&ucli.DurationFlag{Name: "poll", Value: 2 * time.Second, Usage: "poll interval"},
		},
		Action: func(ctx context.Context, c *ucli.Command) error {
			w := crm.NewWatcher(crm.NewClient(nil), crm.WatchOptions{Socket: c.String("alert-socket"), PollInterval: c.Duration("poll")})
			events := make(chan crm.Event, 64)
			errc := make(chan error, 1)
			go func() { errc <- w.Run(ctx, events) }()
			for {
				select {
				case e := <-events:
					fmt.Fprintf(c.Root().Writer, "%s %s\n", e.Time.Format(time.RFC3339Nano), e)
				case err := <-errc:
					if errors.Is(err, context.Canceled) {
						return nil
					}
					return err
				}
			}
		},
	}
}
