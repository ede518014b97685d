package cli

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"

	ucli "github.com/urfave/cli/v3"

	"github.com/computeha/computeha/internal/config"
	"github.com/computeha/computeha/internal/haapi"
	"github.com/computeha/computeha/internal/instancemon"
	"github.com/computeha/computeha/internal/memtrim"
	"github.com/computeha/computeha/internal/openstack"
)

func instancemonCommand() *ucli.Command {
	return &ucli.Command{
		Name:  "instancemon",
		Usage: "watch this host's guests through libvirt and report their failures to the HA API (normally started by ocf:computeha:instancemon)",
		// First: what starting the multi-call binary paged in for the other subcommands goes
		// back (the monitor runs on every compute); what the monitor uses comes back as it runs.
		Before: func(ctx context.Context, _ *ucli.Command) (context.Context, error) {
			_, _ = memtrim.Release() // best effort: only memory is at stake
			return ctx, nil
		},
		Flags: []ucli.Flag{
			configFlag(),
			&ucli.StringFlag{Name: "node", Usage: "this host's name as Pacemaker and the daemon know it (default: the host name)"},
			&ucli.StringFlag{Name: "uri", Value: instancemon.DefaultURI, Usage: "libvirt URI of the host's hypervisor"},
			&ucli.StringFlag{Name: "socket", Value: instancemon.DefaultSocket, Usage: "health socket the OCF agent's monitor asks"},
			&ucli.BoolFlag{Name: "debug", Usage: "log debug messages (every domain event)"},
		},
		Action: func(ctx context.Context, c *ucli.Command) error {
			if c.Args().Len() > 0 {
				return fmt.Errorf("instancemon takes no arguments, got %q", c.Args().Slice())
			}
			cfg, err := config.Load(c.String("config"))
			if err != nil {
				return err
			}
			if cfg.API.URL == "" {
				return fmt.Errorf("%s: api.url is not set: the monitor has nowhere to report failures", c.String("config"))
			}
			node := c.String("node")
			if node == "" {
				if node, err = os.Hostname(); err != nil {
					return fmt.Errorf("this host's name: %w", err)
				}
			}
			dial, err := instancemon.LibvirtDialer(c.String("uri"))
			if err != nil {
				return err
			}
			level := slog.LevelInfo
			if c.Bool("debug") {
				level = slog.LevelDebug
			}
			log := slog.New(slog.NewTextHandler(c.Root().ErrWriter, &slog.HandlerOptions{Level: level}))
			login := openstack.NewLazySession(openstack.Options{
				Cloud: cfg.Cloud, CloudsFile: cfg.CloudsYAML, Logger: log, CallTimeout: 20 * time.Second,
			})
			api := &haapi.Client{URL: cfg.API.URL, Login: login}
			var procs []instancemon.GuardedProcess
			for _, p := range cfg.Instances.Processes {
				procs = append(procs, instancemon.GuardedProcess{Name: p.Name, RestartCommand: p.RestartCommand})
			}
			return instancemon.Run(ctx, instancemon.Options{
				Host: node, Dial: dial, Reporter: api, Socket: c.String("socket"), Log: log,
				Processes: procs, ProcessGiveUp: cfg.Instances.ProcessGiveUp, ReportHost: api.ReportHost,
			})
		},
	}
}

func signalCommand() *ucli.Command {
	return &ucli.Command{
		Name:      "signal",
		Usage:     "ask the HA API to recover a server of your project (an external health check found it failed)",
		ArgsUsage: "SERVER",
		Flags: []ucli.Flag{
			&ucli.StringFlag{Name: "reason", Usage: "why, kept in the history (255 bytes at most)"},
			&ucli.StringFlag{Name: "url", Sources: ucli.EnvVars("COMPUTEHA_API_URL"), Usage: "the HA API (default: api.url of --config)"},
			&ucli.StringFlag{Name: "config", Usage: "a computeha configuration file whose api.url, cloud and clouds_yaml to use"},
			&ucli.StringFlag{Name: "os-cloud", Sources: ucli.EnvVars("OS_CLOUD"), Usage: "the clouds.yaml entry to log in as"},
			&ucli.StringFlag{Name: "clouds-yaml", Sources: ucli.EnvVars("OS_CLIENT_CONFIG_FILE"), Usage: "the clouds.yaml file"},
		},
		Action: func(ctx context.Context, c *ucli.Command) error {
			if c.Args().Len() != 1 {
				return fmt.Errorf("signal takes one server ID, got %d arguments", c.Args().Len())
			}
			server := c.Args().First()
			url, cloud, clouds := c.String("url"), c.String("os-cloud"), c.String("clouds-yaml")
			if p := c.String("config"); p != "" {
				cfg, err := config.Load(p)
				if err != nil {
					return err
				}
				url, cloud, clouds = or(url, cfg.API.URL), or(cloud, cfg.Cloud), or(clouds, cfg.CloudsYAML)
			}
			if url == "" {
				return fmt.Errorf("no HA API: give --url, COMPUTEHA_API_URL or --config")
			}
			if cloud == "" {
				return fmt.Errorf("no cloud to log in as: give --os-cloud, OS_CLOUD or --config")
			}
			login := openstack.NewLazySession(openstack.Options{Cloud: cloud, CloudsFile: clouds, CallTimeout: 20 * time.Second})
			cl := &haapi.Client{URL: url, Login: login}
			ans, err := cl.Signal(ctx, server, c.String("reason"))
			if err != nil {
				return err
			}
			line := string(ans.Status)
			if ans.Reason != "" {
				line += ": " + ans.Reason
			}
			_, err = fmt.Fprintln(c.Root().Writer, strings.TrimSpace(line))
			return err
		},
	}
}

func or(a, b string) string {
	if a != "" {
		return a
	}
	return b
}
