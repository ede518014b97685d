package cli

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"strings"

	ucli "github.com/urfave/cli/v3"

	"github.com/computeha/computeha/internal/config"
	"github.com/computeha/computeha/internal/hostcheck"
)

func hostcheckCommand() *ucli.Command {
	return &ucli.Command{
		Name:  "hostcheck",
		Usage: "run this host's health process: storage heartbeat, peer probes, cluster service watch (normally started by ocf:computeha:hostcheck)",
		Flags: []ucli.Flag{
			configFlag(),
			&ucli.StringFlag{Name: "node", Usage: "this host's name in health.hosts and in Pacemaker (default: the host name)"},
			&ucli.StringFlag{Name: "socket", Value: hostcheck.DefaultSocket, Usage: "health socket the OCF agent's monitor asks"},
			&ucli.StringFlag{
				Name: "service", Value: strings.Join(hostcheck.DefaultServices, " "),
				Usage: "process names of the cluster service, space-separated: it runs when any of them does",
			},
			&ucli.StringFlag{Name: "pidfile", Usage: "pid file of the cluster service (instead of --service)"},
			&ucli.BoolFlag{Name: "debug", Usage: "log debug messages"},
		},
		Action: func(ctx context.Context, c *ucli.Command) error {
			if c.Args().Len() > 0 {
				return fmt.Errorf("hostcheck takes no arguments, got %q", c.Args().Slice())
			}
			cfg, err := config.Load(c.String("config"))
			if err != nil {
				return err
			}
			node := c.String("node")
			if node == "" {
				if node, err = os.Hostname(); err != nil {
					return fmt.Errorf("this host's name: %w", err)
				}
			}
			if err := hostcheck.CheckConfig(&cfg.Health, node); err != nil {
				return fmt.Errorf("%s: %w", c.String("config"), err)
			}
			var svc hostcheck.ServiceCheck
			if p := c.String("pidfile"); p != "" {
				svc = &hostcheck.PidFileCheck{Path: p}
			} else {
				names := strings.Fields(c.String("service"))
				if len(names) == 0 {
					return fmt.Errorf("--service: no process name given")
				}
				svc = &hostcheck.ProcessCheck{Names: names}
			}
			level := slog.LevelInfo
			if c.Bool("debug") {
				level = slog.LevelDebug
			}
			log := slog.New(slog.NewTextHandler(c.Root().ErrWriter, &slog.HandlerOptions{Level: level}))
			return hostcheck.Run(ctx, hostcheck.Options{
				Health: cfg.Health, Node: node, Socket: c.String("socket"), Service: svc, Log: log,
				MetricsListen: cfg.Metrics.HostcheckListen,
			})
		},
	}
}
