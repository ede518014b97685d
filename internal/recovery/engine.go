package recovery

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/computeha/computeha/internal/clock"
	"github.com/computeha/computeha/internal/config"
	"github.com/computeha/computeha/internal/history"
	"github.com/computeha/computeha/internal/openstack"
	"github.com/computeha/computeha/internal/policy"
)

// Options configure an [Engine].
type Options struct {
	Config *config.Config
	Nova   openstack.Client
	// Cluster gives the cluster's node names and records reserved hosts taken into use (nil:
	// node names follow the configuration's rule alone, and nothing is recorded).
	Cluster Cluster
	// Policy decides HA and recovery classes (nil: one from Config).
	Policy *policy.Engine
	// Limits bound the moves per target host (nil: new ones from Config), shared by every
	// recovery of one daemon.
	Limits *Limits
	// Failing names the Nova hosts being recovered right now: whatever Nova says of them, no
	// VM goes there (nil: none).
	Failing func() map[string]bool
	// Clock paces every wait (nil: the real one).
	Clock clock.Clock
	// Poll is how often a move's progress is looked at; default 1 s.
	Poll time.Duration
	Log  *slog.Logger
	// OnNovaError hears of each transient Nova failure as it is waited out (nil: only
	// logged), and of nil when a call succeeds again.
	OnNovaError func(error)
}

// Engine runs recoveries. Safe for concurrent use: one engine serves every recovery of a
// daemon.
type Engine struct {
	o      Options
	clock  clock.Clock
	log    *slog.Logger
	policy *policy.Engine
	limits *Limits
	// reqs bounds the requests to Nova in flight across recoveries (evacuation.concurrency):
	// Nova's API accepts a few moves a second, and more only queue there.
	reqs    chan struct{}
	methods map[MethodName]Method

	cacheMu sync.Mutex
	cache   *shared // the last shared reads

	aheadMu sync.Mutex
	ahead   map[string]*ahead // reads made ahead of a recovery, by the source's node
}

// New returns an engine.
func New(o Options) *Engine {
	if o.Poll <= 0 {
		o.Poll = time.Second
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	e := &Engine{o: o, clock: clock.Or(o.Clock), log: o.Log.With("component", "recovery"), policy: o.Policy, limits: o.Limits}
	if e.policy == nil {
		e.policy = policy.New(o.Config.Policy, o.Config.Evacuation.RestartPriority)
	}
	if e.limits == nil {
		e.limits = NewLimits(o.Config.Evacuation.PerHostConcurrency)
	}
	e.reqs = make(chan struct{}, max(1, o.Config.Evacuation.Concurrency))
	e.ahead = map[string]*ahead{}
	e.methods = map[MethodName]Method{}
	for _, m := range []Method{evacuate{}, liveMigrate{}, coldMigrate{}, restart{}, resume{}, recreate{}, none{}} {
		e.methods[m.Name()] = m
	}
	return e
}

// request runs call (one request to Nova that starts something) within the bound on requests
// in flight.
func (e *Engine) request(ctx context.Context, what string, call func(ctx context.Context) error) error {
	select {
	case e.reqs <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	defer func() { <-e.reqs }()
	return e.nova(ctx, what, call)
}

// nova repeats call while Nova is unreachable or failing with 5xx, so that a control-plane
// outage during a recovery delays it instead of failing it. Any other error is returned.
func (e *Engine) nova(ctx context.Context, what string, call func(ctx context.Context) error) error {
	wait := e.o.Poll
	for {
		err := call(ctx)
		if err == nil || !Transient(err) || ctx.Err() != nil {
			if err == nil && e.o.OnNovaError != nil {
				e.o.OnNovaError(nil)
			}
			return err
		}
		e.log.Warn("Nova unavailable; retrying", "call", what, "error", err)
		if e.o.OnNovaError != nil {
			e.o.OnNovaError(fmt.Errorf("%s: %w", what, err))
		}
		if err := e.clock.Sleep(ctx, wait); err != nil {
			return err
		}
		wait = min(2*wait, 10*time.Second)
	}
}

// Transient tells errors worth waiting out: Nova or Keystone down, a connection refused or
// reset, a timeout.
func Transient(err error) bool {
	if openstack.IsUnavailable(err) || errors.Is(err, context.DeadlineExceeded) {
		return true
	}
	s := err.Error()
	for _, frag := range []string{"connection refused", "connection reset", "EOF", "timeout", "no such host", "i/o timeout"} {
		if strings.Contains(s, frag) {
			return true
		}
	}
	return false
}

// Job is one recovery: the VMs of Source must run again.
type Job struct {
	Source    Host
	Situation Situation
	// Reads, when set, were read ahead of the recovery ([Engine.Read]); they are used if no
	// older than MaxAge, and read again otherwise.
	Reads  *Reads
	MaxAge time.Duration
	// Recorder keeps decisions and moves (nil: nothing is recorded).
	Recorder Recorder
	// Step hears what the recovery is doing, for the daemon's health (nil: only logged).
	Step func(string)
	// VMs, when set, are the only VMs of Source the recovery is about (by server ID); the
	// others are neither moved nor reported.
	VMs map[string]bool
}

// DefaultMaxAge is how old reads made ahead may be by default.
const DefaultMaxAge = 30 * time.Second

// Run recovers the VMs of job.Source and reports what became of each. Its error is non-nil
// only when the recovery could not run at all (no segment, an inconsistent plan input, Nova
// refusing a read, ctx ending); VMs that could not be recovered are in the report.
func (e *Engine) Run(ctx context.Context, job Job) (Report, error) {
	if job.Recorder == nil {
		job.Recorder = nopRecorder{}
	}
	if job.MaxAge <= 0 {
		job.MaxAge = DefaultMaxAge
	}
	r := job.Reads
	if r == nil || e.clock.Now().Sub(r.At) > job.MaxAge {
		x := &run{e: e, job: job}
		x.step("reading servers, migrations and capacity")
		var err error
		if r, err = e.Read(ctx, job.Source); err != nil {
			return Report{}, err
		}
	}
	x := &run{e: e, job: job, r: r, names: NewNames(e.o.Config, r.Nodes), holding: true}
	return x.run(ctx)
}

// run is one recovery in progress.
type run struct {
	e     *Engine
	job   Job
	r     *Reads
	names Names
	watch *serverWatch
	// segHosts are the segment's hosts as planned (their capacity then): retries are placed
	// from them. Read-only once the moves start.
	segHosts []hostState
	// failing are Nova hosts a simulation takes for failed with the source (no targets).
	failing map[string]bool

	mu    sync.Mutex
	moves []*move
	// holding: records wait in held and heldMoves until the first moves are sent.
	holding   bool
	held      []history.Event
	heldMoves []func(context.Context)
}

// step says what the recovery is doing: to job.Step, which logs it, or to the log.
func (x *run) step(s string) {
	if x.job.Step != nil {
		x.job.Step(s)
		return
	}
	x.e.log.Info(s, "host", x.job.Source.Node)
}

func (x *run) cfg() *config.Config { return x.e.o.Config }
