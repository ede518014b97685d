package evacd

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"runtime/debug"
	"time"

	"github.com/computeha/computeha/crm"
	"github.com/computeha/computeha/internal/alert"
	"github.com/computeha/computeha/internal/clock"
	"github.com/computeha/computeha/internal/config"
	"github.com/computeha/computeha/internal/evacdsock"
	"github.com/computeha/computeha/internal/haapi"
	"github.com/computeha/computeha/internal/healthsock"
	"github.com/computeha/computeha/internal/history"
	"github.com/computeha/computeha/internal/httpserve"
	"github.com/computeha/computeha/internal/metrics"
	"github.com/computeha/computeha/internal/openstack"
)

// Defaults of the daemon's files.
const (
	DefaultConfig     = "/etc/computeha/evacd.yaml"
	DefaultSocket     = evacdsock.DefaultSocket
	DefaultStateDir   = "/var/lib/computeha"
	DefaultAlertAgent = "/usr/libexec/computeha/computeha_alert"
)

// MemoryLimit is the daemon's soft memory limit (Go's runtime/debug.SetMemoryLimit) when
// GOMEMLIMIT does not set one.
const MemoryLimit = 20 << 20

// ServiceOptions are the daemon's command-line settings.
type ServiceOptions struct {
	ConfigPath  string
	Socket      string // health socket for the OCF agent's monitor
	AlertSocket string // where the alert agent delivers (crm.DefaultAlertSocket)
	AlertAgent  string // the alert agent registered in the CIB
	StateDir    string // the watcher's saved state
	Owner       string // this instance's name (default: the host name)
	Runner      *crm.Runner
	Log         *slog.Logger
	// HTTP dial hook for tests reaching Nova in another network namespace.
	DialContext func(ctx context.Context, network, addr string) (net.Conn, error)
}

// Serve runs the evacuation daemon: it registers the alert agent, watches
// the cluster, serves its health on the socket, and recovers marked hosts,
// until ctx ends. Nova being unreachable at start is waited out, not fatal.
func Serve(ctx context.Context, o ServiceOptions) error {
	if o.Log == nil {
		o.Log = slog.Default()
	}
	// A small daemon on every controller: the garbage collector works harder rather than let
	// the heap grow past this, unless the operator set GOMEMLIMIT.
	if os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(MemoryLimit)
	}
	cfg, err := config.Load(o.ConfigPath)
	if err != nil {
		return err
	}
	if o.Owner == "" {
		o.Owner, _ = os.Hostname()
	}
	if err := os.MkdirAll(o.StateDir, 0o750); err != nil {
		return fmt.Errorf("state directory: %w", err)
	}
	dsn, err := cfg.History.ReadDSN()
	if err != nil {
		return err
	}
	if cfg.History.Driver == config.DriverSQLite {
		if err := os.MkdirAll(filepath.Dir(dsn), 0o750); err != nil {
			return fmt.Errorf("history directory: %w", err)
		}
	}
	m := metrics.New()
	store, err := history.Open(ctx, string(cfg.History.Driver), dsn, history.WithActor(o.Owner), history.WithLogger(o.Log),
		history.WithObserver(m))
	if err != nil {
		return err
	}
	defer store.Close()

	cl := crm.NewClient(o.Runner)
	if err := cl.Runner.Check(); err != nil {
		return err
	}
	if err := cl.EnsureAlert(ctx, crm.AlertConfig{ID: "computeha", Path: o.AlertAgent, Recipient: o.AlertSocket}); err != nil {
		return fmt.Errorf("registering the alert agent: %w", err)
	}
	// The poll backs the alerts up, and is the only path for permanent
	// attributes (the evacuation mark): reading the CIB's version costs
	// about 10 ms, so once a second.
	w := crm.NewWatcher(cl, crm.WatchOptions{
		Socket: o.AlertSocket, StateFile: filepath.Join(o.StateDir, "watch.json"),
		PollInterval: time.Second, Log: o.Log,
	})
	if err := w.Listen(); err != nil {
		return err
	}
	nova := openstack.NewLazy(openstack.Options{
		Cloud: cfg.Cloud, CloudsFile: cfg.CloudsYAML, Logger: o.Log, DialContext: o.DialContext,
		WrapTransport: m.Transport,
	})
	d := New(Options{Config: cfg, Cluster: cl, Nova: nova, History: store, Metrics: m, Owner: o.Owner, Log: o.Log})

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	// Log in now, not at the first failure: Keystone costs a second or
	// two, and that second belongs to the recovery.
	go func() {
		for ctx.Err() == nil {
			if err := nova.Ready(ctx); err == nil {
				return
			}
			_ = clock.Sleep(ctx, 2*time.Second)
		}
	}()
	events := make(chan crm.Event, 1024)
	errs := make(chan error, 3)
	ran := make(chan error, 1)
	go func() { errs <- w.Run(ctx, events) }()
	go func() { errs <- serveHealth(ctx, o.Socket, d) }()
	go func() { ran <- d.Run(ctx, events) }()
	m.ServeInBackground(ctx, cfg.Metrics.Listen, o.Log)
	if cfg.API.Listen != "" {
		ln, err := net.Listen("tcp", cfg.API.Listen)
		if err != nil {
			cancel()
			<-ran
			return fmt.Errorf("api.listen %s: %w", cfg.API.Listen, err)
		}
		h := haapi.NewHandler(haapi.Options{
			Tokens: nova, Servers: nova, Sink: d, MonitorRoles: cfg.API.MonitorRoles, SignalRoles: cfg.API.SignalRoles,
			SignalWindow: cfg.API.SignalWindow, SignalBurst: cfg.API.SignalBurst, Log: o.Log,
		})
		go func() { errs <- httpserve.Serve(ctx, ln, h, "HA API server", o.Log) }()
		o.Log.Info("HA API served", "listen", cfg.API.Listen)
	}
	startAlerts(ctx, cfg, d, m, o.Log)
	o.Log.Info("evacuation daemon started", "owner", o.Owner, "config", o.ConfigPath, "socket", o.Socket)
	select {
	case err = <-errs:
		cancel()
		// The daemon's last words (the quorum as it stops) are waited for, a while.
		select {
		case <-ran:
		case <-time.After(stopWait):
			o.Log.Warn("the daemon did not stop in time", "waited", stopWait)
		}
	case err = <-ran:
		cancel()
	}
	if errors.Is(err, context.Canceled) {
		return nil
	}
	return err
}

// stopWait bounds how long a stopping daemon waits for its loop to end: its jobs end with
// their context, and its last look at the quorum takes two bounded calls.
const stopWait = 2*quorumAtStopTimeout + 2*time.Second

// serveHealth answers each connection with one JSON line of Health.
func serveHealth(ctx context.Context, path string, d *Daemon) error {
	ln, err := healthsock.Listen(path)
	if err != nil {
		return err
	}
	return healthsock.Serve(ctx, ln, d.Health)
}

// startAlerts delivers the daemon's alerts (alert.Start). A receiver that cannot be reached is
// said so in the log and the history; the daemon runs.
func startAlerts(ctx context.Context, cfg *config.Config, d *Daemon, m *metrics.Metrics, log *slog.Logger) {
	alert.Start(ctx, cfg.Alerts, d.AlertState, m.AlertDelivered, func(summary string, err error) {
		log.Error(summary, "error", err)
		d.record(ctx, history.Event{Kind: history.KindAlert, Summary: summary, Reason: history.Reason{Code: "alert-receiver-unreachable", Text: err.Error()}})
	}, log)
}
