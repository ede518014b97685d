package agents

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/computeha/computeha/internal/linelog"
)

// Env is what Main needs from the process.
type Env struct {
	// Args are the arguments after the program name; the first is the action.
	Args []string
	// Environ is the environment as KEY=VALUE strings (os.Environ()).
	Environ        []string
	Stdout, Stderr io.Writer
	// Clock is nil for the real clock.
	Clock Clock
	// Syslog opens the syslog connection for a tag; nil means DialSyslog.
	// An error leaves logging to stderr only.
	Syslog func(tag string) (Syslogger, error)
	// LookPath finds programs; nil means exec.LookPath.
	LookPath func(string) (string, error)
}

// Environment variables of the OCF API.
const (
	envReskey     = "OCF_RESKEY_"
	envMeta       = "OCF_RESKEY_CRM_meta_"
	envInstance   = "OCF_RESOURCE_INSTANCE"
	envType       = "OCF_RESOURCE_TYPE"
	envRoot       = "OCF_ROOT"
	envCheckLevel = "OCF_CHECK_LEVEL"
	envStateDir   = "HA_RSCTMP"
	envDebug      = "HA_debug"
	// envFailBinary is how ocf-tester asks an agent to behave as if its
	// programs were missing (ocf-shellfuncs' have_binary honours it too).
	envFailBinary = "OCF_TESTER_FAIL_HAVE_BINARY"
)

// DefaultStateDir is HA_RSCTMP when Pacemaker does not set it.
const DefaultStateDir = "/run/resource-agents"

// ocfActions are the actions of the OCF 1.1 API. Those a resource does not
// implement answer OCF_ERR_UNIMPLEMENTED; anything else is a usage error.
var ocfActions = []string{
	"start", "stop", "monitor", "meta-data", "validate-all",
	"promote", "demote", "notify", "migrate_to", "migrate_from", "reload", "reload-agent",
}

// Main runs one invocation of agent a and returns the process exit code
// (the OCF codes of this package). It is the only place where an error
// becomes an exit code, and it prints the exit reason of every outcome
// other than success and "not running".
func Main(ctx context.Context, a *Agent, env Env) int {
	if env.Clock == nil {
		env.Clock = realClock{}
	}
	if env.Syslog == nil {
		env.Syslog = DialSyslog
	}
	if env.LookPath == nil {
		env.LookPath = exec.LookPath
	}
	vars := environMap(env.Environ)
	action := ""
	if len(env.Args) > 0 {
		action = env.Args[0]
	}

	level := new(slog.LevelVar)
	if b, _ := ParseBool(vars[envDebug]); b {
		level.Set(slog.LevelDebug)
	}
	mu := new(sync.Mutex)
	handlers := linelog.Fanout{linelog.NewLocked(env.Stderr, level, mu)}
	// meta-data and usage print documents; they never need syslog.
	if slices.Contains(ocfActions, action) && action != "meta-data" {
		tag := a.Name
		if inst := vars[envInstance]; inst != "" {
			tag += "(" + inst + ")"
		}
		if sl, err := env.Syslog(tag); err == nil {
			defer sl.Close()
			handlers = append(handlers, &syslogHandler{w: sl, level: level})
		}
	}
	log := slog.New(handlers)

	err := run(ctx, a, env, vars, action, log)
	code := CodeOf(err)
	switch code {
	case Success:
	case NotRunningCode:
		log.Info("not running: " + reason(err))
	default:
		why := reason(err)
		if code == DegradedCode || code == DegradedPromoted {
			log.Warn(why)
		} else {
			log.Error(why)
		}
		mu.Lock()
		fmt.Fprintf(env.Stderr, "ocf-exit-reason:%s\n", why)
		mu.Unlock()
	}
	return code
}

func environMap(environ []string) map[string]string {
	m := make(map[string]string, len(environ))
	for _, kv := range environ {
		if k, v, ok := strings.Cut(kv, "="); ok {
			m[k] = v
		}
	}
	return m
}

func run(ctx context.Context, a *Agent, env Env, vars map[string]string, action string, log *slog.Logger) error {
	switch {
	case action == "meta-data":
		if err := a.WriteMetadata(env.Stdout); err != nil {
			return Generic("writing meta-data: %w", err)
		}
		return nil
	case action == "usage" || action == "help" || action == "--help" || action == "-h":
		_, err := io.WriteString(env.Stdout, a.usage())
		return err
	case action == "":
		_, _ = io.WriteString(env.Stderr, a.usage())
		return Args("no action given")
	case !slices.Contains(ocfActions, action):
		_, _ = io.WriteString(env.Stderr, a.usage())
		return Args("unknown action %q", clip(action))
	}
	if !a.implements(action) {
		return Unimplemented("%s is not implemented", action)
	}
	if len(env.Args) > 1 {
		log.Warn("ignoring extra arguments", "args", strings.Join(env.Args[1:], " "))
	}

	req, err := newRequest(ctx, a, env, vars, action, log)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, req.Timeout)
	defer cancel()

	params := a.NewParams()
	req.Params = params
	values := map[string]string{}
	spec := a.Spec()
	for k, v := range vars {
		name, ok := strings.CutPrefix(k, envReskey)
		if !ok || strings.HasPrefix(name, "CRM_meta_") {
			continue
		}
		if _, known := spec.Lookup(name); !known {
			log.Debug("ignoring unknown parameter", "name", name)
			continue
		}
		values[name] = v
	}
	if err := Decode(spec, values, params); err != nil {
		if action != "stop" {
			return err
		}
		log.Warn("stopping despite a configuration problem", "problem", reason(err))
	}

	if err := checkBinaries(a, req, params); err != nil {
		switch {
		case req.Probe():
			// Not installed here means not running here.
			return NotRunning("%s", err.Error())
		case action == "stop":
			log.Warn("stopping despite a missing program", "problem", reason(err))
		default:
			return err
		}
	}

	res, err := a.Open(req)
	if err != nil {
		return err
	}
	return dispatch(ctx, res, action)
}

func dispatch(ctx context.Context, res Resource, action string) error {
	switch action {
	case "validate-all":
		if v, ok := res.(Validator); ok {
			return v.Validate(ctx)
		}
		return nil
	case "start":
		if v, ok := res.(Validator); ok {
			if err := v.Validate(ctx); err != nil {
				return err
			}
		}
		return res.Start(ctx)
	case "stop":
		return res.Stop(ctx)
	case "monitor":
		return res.Monitor(ctx)
	case "promote", "demote":
		p, ok := res.(Promoter)
		if !ok {
			return Unimplemented("%s is not implemented", action)
		}
		if action == "promote" {
			return p.Promote(ctx)
		}
		return p.Demote(ctx)
	case "notify":
		if n, ok := res.(Notifier); ok {
			return n.Notify(ctx)
		}
	case "reload", "reload-agent":
		if r, ok := res.(Reloader); ok {
			return r.Reload(ctx)
		}
	case "migrate_to", "migrate_from":
		m, ok := res.(Migrator)
		if !ok {
			break
		}
		if action == "migrate_to" {
			return m.MigrateTo(ctx)
		}
		return m.MigrateFrom(ctx)
	}
	return Unimplemented("%s is not implemented", action)
}

// timeoutMargin is kept from the operation timeout so that the agent
// reports its own outcome, with a reason, before Pacemaker kills it.
func timeoutMargin(timeout time.Duration) time.Duration {
	return min(timeout/10, 5*time.Second)
}

func newRequest(_ context.Context, a *Agent, env Env, vars map[string]string, action string, log *slog.Logger) (*Request, error) {
	req := &Request{
		Action:   action,
		Meta:     map[string]string{},
		Instance: vars[envInstance],
		Type:     vars[envType],
		Root:     vars[envRoot],
		StateDir: vars[envStateDir],
		Log:      log,
		Clock:    env.Clock,
		Environ:  env.Environ,
	}
	if req.StateDir == "" {
		req.StateDir = DefaultStateDir
	}
	if req.Type == "" {
		req.Type = a.Name
	}
	if req.Instance == "" {
		req.Instance = a.Name
	}
	for k, v := range vars {
		if name, ok := strings.CutPrefix(k, envMeta); ok {
			req.Meta[name] = v
		}
	}
	ms := func(name string) (time.Duration, bool, error) {
		v, ok := req.Meta[name]
		if !ok || v == "" {
			return 0, false, nil
		}
		n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
		if err != nil || n < 0 {
			return 0, false, Args("%s%s=%q is not a number of milliseconds", envMeta, name, clip(v))
		}
		return time.Duration(n) * time.Millisecond, true, nil
	}
	var err error
	if req.Interval, _, err = ms("interval"); err != nil {
		return nil, err
	}
	timeout, given, err := ms("timeout")
	if err != nil {
		return nil, err
	}
	if !given || timeout == 0 {
		timeout = a.timeout(action)
	}
	req.Timeout = timeout
	req.deadline = env.Clock.Now().Add(timeout - timeoutMargin(timeout))
	if v := vars[envCheckLevel]; v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			return nil, Args("%s=%q is not a number", envCheckLevel, clip(v))
		}
		req.CheckLevel = n
	}
	failBinaries, _ := ParseBool(vars[envFailBinary])
	req.LookPath = func(name string) (string, error) {
		if failBinaries {
			return "", &exec.Error{Name: name, Err: exec.ErrNotFound}
		}
		return env.LookPath(name)
	}
	log.Debug("invocation", "action", action, "instance", req.Instance, "timeout", req.Timeout,
		"interval", req.Interval, "probe", req.Probe())
	return req, nil
}

// checkBinaries reports the first program the resource needs that is
// missing, as an Installed error.
func checkBinaries(a *Agent, req *Request, params any) error {
	if a.Binaries == nil {
		return nil
	}
	for _, b := range a.Binaries(params) {
		if _, err := req.LookPath(b); err != nil {
			if errors.Is(err, exec.ErrNotFound) || errors.Is(err, fs.ErrNotExist) {
				return Installed("required program %s is not installed", b)
			}
			return Installed("required program %s is not usable: %w", b, err)
		}
	}
	return nil
}

// implements tells whether the agent has action; reload-agent is served by
// a Reloader as reload is.
func (a *Agent) implements(action string) bool {
	if action == "reload-agent" {
		action = "reload"
	}
	return slices.Contains(a.actions(a.sample()), action)
}

func (a *Agent) usage() string {
	acts := append(a.actions(a.sample()), "usage")
	return fmt.Sprintf("usage: %s {%s}\n\n%s: %s\nParameters come from the environment as OCF_RESKEY_<name>; "+
		"\"%s meta-data\" describes them.\n", a.Name, strings.Join(acts, "|"), a.Name, a.ShortDesc, a.Name)
}

// StatePath is a file of this resource instance in HA_RSCTMP, which it
// creates: HA_RSCTMP/computeha-<agent>-<instance><suffix>.
func (r *Request) StatePath(agent, suffix string) (string, error) {
	if err := os.MkdirAll(r.StateDir, 0o755); err != nil {
		return "", Generic("creating the state directory: %w", err)
	}
	inst := strings.Map(func(c rune) rune {
		if c == '/' || c < 0x20 {
			return '_'
		}
		return c
	}, r.Instance)
	return r.StateDir + "/computeha-" + agent + "-" + inst + suffix, nil
}
