package fence

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/computeha/computeha/internal/clock"
	"github.com/computeha/computeha/internal/linelog"
)

// Exit codes, as Pacemaker's fencer reads them.
const (
	ExitOK     = 0
	ExitFailed = 1
	// ExitOff is the status action's answer for a target that is off.
	ExitOff = 2
)

// pollInterval is how often the runtime asks the device for the power state
// while it waits for a change. Local BMCs answer in milliseconds, and every
// poll shortens the time to a confirmed fence.
const pollInterval = 200 * time.Millisecond

// Env is what Main needs from the process.
type Env struct {
	Args   []string // command-line arguments, without the program name
	Stdin  io.Reader
	Stdout io.Writer
	Stderr io.Writer
	// Version is printed for -V/--version.
	Version string
	// Now and Sleep are injected for tests; nil means the real clock.
	Now   func() time.Time
	Sleep func(ctx context.Context, d time.Duration) error
}

// Main runs one invocation of agent a and returns the process exit code:
// 0 on success, 1 on failure or bad input, and for status 0 (ON) or 2 (OFF).
// It is the only place where errors become exit codes.
func Main(ctx context.Context, a *Agent, env Env) int {
	if env.Now == nil {
		env.Now = time.Now
	}
	if env.Sleep == nil {
		env.Sleep = clock.Sleep
	}
	red := &redactor{w: env.Stderr}
	level := new(slog.LevelVar)
	level.Set(slog.LevelWarn)
	handlers := linelog.Fanout{linelog.New(red, level, nil)}
	r := &run{agent: a, env: env, red: red, level: level, log: slog.New(handlers)}
	r.handlers = handlers
	code, err := r.main(ctx)
	if r.closeDebug != nil {
		defer r.closeDebug()
	}
	if err != nil {
		r.log.Error(err.Error())
		if errors.As(err, new(*UsageError)) {
			r.log.Error("Please use '-h' for usage")
		}
		return ExitFailed
	}
	return code
}

type run struct {
	agent      *Agent
	env        Env
	red        *redactor
	level      *slog.LevelVar
	handlers   linelog.Fanout
	log        *slog.Logger
	closeDebug func()
	c          *Common
}

func (r *run) main(ctx context.Context) (int, error) {
	spec := r.agent.spec()
	var in *Input
	var err error
	if len(r.env.Args) > 0 {
		in, err = ParseArgs(spec, r.env.Args)
	} else {
		in, err = ParseStdin(spec, r.env.Stdin)
	}
	if err != nil {
		return ExitFailed, err
	}
	for _, w := range in.Warnings {
		r.log.Warn(w)
	}
	if in.Help {
		return ExitOK, r.usage(spec)
	}
	if in.Version {
		_, err := fmt.Fprintf(r.env.Stdout, "%s %s\n", r.agent.Name, r.env.Version)
		return ExitOK, err
	}
	params := r.agent.NewParams()
	if err := Decode(spec, in, params); err != nil {
		return ExitFailed, err
	}
	c := params.common()
	c.Nodename = in.Nodename
	r.c = c
	action, err := r.action(c.Action)
	if err != nil {
		return ExitFailed, err
	}
	c.Action = action
	switch action {
	case "metadata":
		return ExitOK, r.agent.WriteMetadata(r.env.Stdout)
	case "manpage":
		return ExitOK, r.agent.WriteManpage(r.env.Stdout)
	}
	for _, p := range spec {
		if p.Secret {
			r.red.addSecret(in.Values[p.Name])
		}
	}
	if err := r.setupLogging(in); err != nil {
		return ExitFailed, err
	}
	r.log.Debug("options", r.optionAttrs(spec, in)...)

	if err := r.validate(ctx, spec, in, params); err != nil {
		return ExitFailed, err
	}
	if action == "validate-all" {
		return ExitOK, nil
	}
	plug := in.Values["plug"]
	if (action == "list" || action == "list-status") && !r.agent.HasPlugs() {
		r.log.Warn("this device controls a single target; it has no plugs to list")
		return ExitOK, nil
	}
	if action == "off" || action == "reboot" {
		if c.Delay > 0 {
			r.log.Info("delaying fencing", "delay", c.Delay)
			if err := r.env.Sleep(ctx, c.Delay); err != nil {
				return ExitFailed, err
			}
		}
	}

	loginCtx, cancel := context.WithTimeout(ctx, c.LoginTimeout)
	dev, err := r.agent.Connect(loginCtx, params, r.log)
	cancel()
	if err != nil {
		return ExitFailed, fmt.Errorf("%w: %w", ErrLogin, err)
	}
	defer func() {
		if err := dev.Close(); err != nil {
			r.log.Debug("closing the device session failed", "error", err)
		}
	}()
	return r.act(ctx, dev, action, plug, params)
}

// action normalises the requested action and checks the agent has it.
func (r *run) action(s string) (string, error) {
	s = strings.ToLower(strings.TrimSpace(s))
	switch s {
	case "":
		return r.agent.defaultAction(), nil
	case "meta-data":
		return "metadata", nil
	case "reboot":
		if r.agent.Fabric {
			return "off", nil
		}
	}
	acts := r.agent.actions()
	if slices.Contains(acts, s) || s == "list" || s == "list-status" {
		return s, nil
	}
	return "", usagef("Failed: Unrecognised action '%s' (valid: %s)", sanitizeKey(s), strings.Join(acts, ", "))
}

func (r *run) setupLogging(in *Input) error {
	if in.VerboseLevel > 0 || r.c.Verbose {
		r.level.Set(slog.LevelDebug)
	}
	if r.c.DebugFile == "" {
		return nil
	}
	f, err := os.OpenFile(r.c.DebugFile, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("Failed: cannot open debug file: %w", err)
	}
	r.closeDebug = func() { _ = f.Close() }
	fileRed := &redactor{w: f, secrets: r.red.secrets}
	r.handlers = append(r.handlers, linelog.New(fileRed, slog.LevelDebug, r.env.Now))
	r.log = slog.New(r.handlers)
	return nil
}

// optionAttrs lists the options given, with secrets masked, for debugging.
func (r *run) optionAttrs(spec Spec, in *Input) []any {
	var attrs []any
	for _, p := range spec {
		v, ok := in.Values[p.Name]
		if !ok {
			continue
		}
		if p.Secret {
			v = "****"
		}
		attrs = append(attrs, slog.String(p.Name, v))
	}
	return attrs
}

// validate checks required options, resolves the password and runs the
// agent's own checks, as fence-agents do before every action.
func (r *run) validate(ctx context.Context, spec Spec, in *Input, params Params) error {
	for _, p := range spec {
		if !p.Required || p.Default != "" || p.Name == "action" {
			continue
		}
		if p.Name == "plug" && (r.c.Action == "list" || r.c.Action == "list-status" || r.c.Action == "monitor") {
			continue
		}
		if strings.TrimSpace(in.Values[p.Name]) == "" {
			return usagef("Failed: You have to enter a value for --%s (%s on standard input)", p.LongOpt(), p.Name)
		}
	}
	if cr, ok := params.(hasCredentials); ok {
		optional := false
		if o, ok := params.(CredentialsOptional); ok {
			optional = o.CredentialsOptional()
		}
		if err := cr.credentials().resolvePassword(ctx, r.c.LoginTimeout+r.c.ShellTimeout, !optional); err != nil {
			return err
		}
		r.red.addSecret(cr.credentials().Password)
	}
	if v, ok := params.(Validator); ok {
		if err := v.Validate(); err != nil {
			return &UsageError{Msg: "Failed: " + err.Error()}
		}
	}
	return nil
}

// cycleMethod is a parameter struct that can ask for a one-step power cycle.
type cycleMethod interface{ UseCycle() bool }

func (r *run) act(ctx context.Context, dev Device, action, plug string, params Params) (int, error) {
	out := r.env.Stdout
	switch action {
	case "list", "list-status":
		lister, ok := dev.(Lister)
		if !ok {
			return ExitFailed, fmt.Errorf("Failed: the %s action is not supported by this device", action)
		}
		outlets, err := r.call(ctx, func(ctx context.Context) ([]Outlet, error) { return lister.List(ctx) })
		if err != nil {
			return ExitFailed, fmt.Errorf("%w: %w", ErrStatus, err)
		}
		for _, o := range outlets {
			if action == "list" {
				fmt.Fprintf(out, "%s,%s\n", o.ID, o.Alias)
			} else {
				fmt.Fprintf(out, "%s,%s,%s\n", o.ID, o.Alias, o.State)
			}
		}
		return ExitOK, nil
	case "monitor":
		if lister, ok := dev.(Lister); ok {
			if _, err := r.call(ctx, func(ctx context.Context) ([]Outlet, error) { return lister.List(ctx) }); err != nil {
				return ExitFailed, fmt.Errorf("%w: %w", ErrStatus, err)
			}
			return ExitOK, nil
		}
	}

	state, err := r.status(ctx, dev, plug)
	if err != nil {
		return ExitFailed, err
	}
	switch action {
	case "monitor":
		return ExitOK, nil
	case "status":
		fmt.Fprintf(out, "Status: %s\n", state)
		if state == Off {
			return ExitOff, nil
		}
		return ExitOK, nil
	case "on", "off":
		on := action == "on"
		if (on && state == On) || (!on && state == Off) {
			fmt.Fprintf(out, "Success: Already %s\n", state)
			return ExitOK, nil
		}
		attempts := 1
		if on {
			attempts += r.c.RetryOn
		}
		if err := r.setPower(ctx, dev, plug, on, attempts); err != nil {
			return ExitFailed, err
		}
		fmt.Fprintf(out, "Success: Powered %s\n", map[bool]string{true: "ON", false: "OFF"}[on])
		return ExitOK, nil
	case "reboot":
		if cm, ok := params.(cycleMethod); ok && cm.UseCycle() {
			if err := r.cycle(ctx, dev, plug); err != nil {
				return ExitFailed, err
			}
			fmt.Fprintln(out, "Success: Rebooted")
			return ExitOK, nil
		}
		if state != Off {
			if err := r.setPower(ctx, dev, plug, false, 1); err != nil {
				return ExitFailed, err
			}
		}
		// The target is confirmed off: fencing has succeeded whatever
		// happens to the power-on that follows.
		if err := r.setPower(ctx, dev, plug, true, max(1, r.c.RetryOn)); err != nil {
			r.log.Error("Timed out waiting to power ON", "error", err)
		}
		fmt.Fprintln(out, "Success: Rebooted")
		return ExitOK, nil
	}
	return ExitFailed, fmt.Errorf("Failed: action %s is not implemented", action)
}

// call runs one device request bounded by shell_timeout.
func (r *run) call(ctx context.Context, f func(context.Context) ([]Outlet, error)) ([]Outlet, error) {
	ctx, cancel := context.WithTimeout(ctx, r.c.ShellTimeout)
	defer cancel()
	return f(ctx)
}

func (r *run) status(ctx context.Context, dev Device, plug string) (State, error) {
	sctx, cancel := context.WithTimeout(ctx, r.c.ShellTimeout)
	defer cancel()
	st, err := dev.Status(sctx, plug)
	if err != nil {
		return Unknown, fmt.Errorf("%w: %w", ErrStatus, err)
	}
	if st != On && st != Off {
		return Unknown, ErrStatus
	}
	r.log.Debug("power state", "plug", plug, "state", st)
	return st, nil
}

// setPower asks for on or off up to attempts times, each confirmed by
// polling the power state until power_timeout.
func (r *run) setPower(ctx context.Context, dev Device, plug string, on bool, attempts int) error {
	want, timeoutErr := Off, ErrTimedOutOff
	if on {
		want, timeoutErr = On, ErrTimedOutOn
	}
	var last error
	for i := range attempts {
		r.log.Debug("setting power", "plug", plug, "on", on, "attempt", i+1)
		sctx, cancel := context.WithTimeout(ctx, r.c.ShellTimeout)
		err := dev.SetPower(sctx, plug, on)
		cancel()
		if err != nil {
			last = err
			r.log.Warn("power request failed", "on", on, "error", err)
			continue
		}
		if err := r.env.Sleep(ctx, r.c.PowerWait); err != nil {
			return err
		}
		if last = r.waitFor(ctx, dev, plug, want); last == nil {
			return nil
		}
	}
	if last != nil {
		return fmt.Errorf("%w: %w", timeoutErr, last)
	}
	return timeoutErr
}

// waitFor polls until the device reports want, or power_timeout passes.
func (r *run) waitFor(ctx context.Context, dev Device, plug string, want State) error {
	deadline := r.env.Now().Add(r.c.PowerTimeout)
	var last error
	for {
		st, err := r.status(ctx, dev, plug)
		if err == nil && st == want {
			return nil
		}
		if err != nil {
			last = err
		} else {
			last = fmt.Errorf("device reports %s", st)
		}
		if !r.env.Now().Before(deadline) {
			return last
		}
		if err := r.env.Sleep(ctx, pollInterval); err != nil {
			return err
		}
	}
}

func (r *run) cycle(ctx context.Context, dev Device, plug string) error {
	cy, ok := dev.(Cycler)
	if !ok {
		return errors.New("Failed: this device has no power cycle; use method onoff")
	}
	var last error
	for range 1 + r.c.RetryOn {
		sctx, cancel := context.WithTimeout(ctx, r.c.ShellTimeout)
		last = cy.Cycle(sctx, plug)
		cancel()
		if last == nil {
			return nil
		}
		r.log.Warn("power cycle failed", "error", last)
	}
	return fmt.Errorf("Connection timed out: %w", last)
}

func (r *run) usage(spec Spec) error {
	var b strings.Builder
	fmt.Fprintf(&b, "Usage:\n\t%s [options]\nOptions:\n", r.agent.Name)
	for _, p := range spec {
		fmt.Fprintf(&b, "   %-38s %s\n", p.getoptText(), p.Help)
	}
	fmt.Fprintf(&b, "   %-38s %s\n   %-38s %s\n", "-h, --help", "Display help and exit", "-V, --version", "Display version information and exit")
	fmt.Fprintf(&b, "\nActions: %s\n", strings.Join(r.agent.actions(), ", "))
	b.WriteString("With no command-line arguments, options are read from standard input as key=value lines.\n")
	_, err := io.WriteString(r.env.Stdout, b.String())
	return err
}
