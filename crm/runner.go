package crm

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strings"
	"time"
)

// ExitCode is a Pacemaker tool's exit status (crm_exit_t).
type ExitCode int

// Exit codes of Pacemaker tools that computeha tells apart.
const (
	ExitOK           ExitCode = 0
	ExitError        ExitCode = 1
	ExitInvalidParam ExitCode = 2
	ExitInsuffPriv   ExitCode = 4
	ExitUsage        ExitCode = 64
	ExitNoPerm       ExitCode = 77
	ExitConfig       ExitCode = 78
	ExitDisconnect   ExitCode = 102
	ExitNoSuch       ExitCode = 105
	ExitQuorum       ExitCode = 106
	ExitTimeout      ExitCode = 124
)

// Errors a ToolError matches with errors.Is.
var (
	// ErrNotConnected: the tool could not reach the cluster daemons.
	ErrNotConnected = errors.New("not connected to the cluster")
	// ErrNoSuchObject: the node, attribute or resource does not exist.
	ErrNoSuchObject = errors.New("no such object")
	// ErrNoQuorum: the request needs quorum this partition lacks.
	ErrNoQuorum = errors.New("no quorum")
	// ErrTimeout: the tool or the cluster timed out.
	ErrTimeout = errors.New("timed out")
	// ErrPermission: the caller may not do this.
	ErrPermission = errors.New("permission denied")
	// ErrUsage: the tool refused its arguments.
	ErrUsage = errors.New("invalid arguments")
	// ErrNotInstalled: the tool is missing.
	ErrNotInstalled = errors.New("Pacemaker tool not installed")
)

// ToolError is a Pacemaker tool that failed.
type ToolError struct {
	Tool    string
	Code    ExitCode
	Message string
}

func (e *ToolError) Error() string {
	if e.Message == "" {
		return fmt.Sprintf("%s: exit status %d", e.Tool, e.Code)
	}
	return fmt.Sprintf("%s: %s (exit status %d)", e.Tool, e.Message, e.Code)
}

// Is maps exit codes to the package's errors.
func (e *ToolError) Is(target error) bool {
	switch target {
	case ErrNotConnected:
		return e.Code == ExitDisconnect
	case ErrNoSuchObject:
		// attrd_updater reports a missing attribute as a configuration
		// error; crm_attribute and others as 105.
		return e.Code == ExitNoSuch || (e.Code == ExitConfig && strings.Contains(e.Message, "does not exist"))
	case ErrNoQuorum:
		return e.Code == ExitQuorum
	case ErrTimeout:
		return e.Code == ExitTimeout
	case ErrPermission:
		return e.Code == ExitInsuffPriv || e.Code == ExitNoPerm
	case ErrUsage:
		return e.Code == ExitInvalidParam || e.Code == ExitUsage
	}
	return false
}

// Runner runs Pacemaker's command-line tools.
type Runner struct {
	// Prefix is put before every command, e.g. nsenter into a lab node.
	Prefix []string
	// Env is added to the tools' environment, e.g. CIB_file=... to work
	// on a file instead of the live cluster.
	Env []string
	// Paths overrides where a tool is found, by tool name.
	Paths map[string]string
	// Timeout bounds each call (default 30 s).
	Timeout time.Duration
}

// Tools are the Pacemaker tools the Client uses.
var Tools = []string{"crm_mon", "cibadmin", "crm_attribute", "attrd_updater", "stonith_admin", "crm_resource"}

func (r *Runner) path(tool string) string {
	if p, ok := r.Paths[tool]; ok {
		return p
	}
	return tool
}

// Check verifies every tool exists, so a missing Pacemaker is reported at
// start-up (as ErrNotInstalled) rather than at the first failover. With a
// Prefix the tools live elsewhere and are checked by running them.
func (r *Runner) Check() error {
	if len(r.Prefix) > 0 {
		return nil
	}
	var missing []string
	for _, t := range Tools {
		if _, err := exec.LookPath(r.path(t)); err != nil {
			missing = append(missing, t)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("%w: %s", ErrNotInstalled, strings.Join(missing, ", "))
	}
	return nil
}

// Run executes tool with args and returns its standard output. A non-zero
// exit is a *ToolError carrying the code and Pacemaker's message (taken
// from the XML result when the tool printed one).
func (r *Runner) Run(ctx context.Context, tool string, args ...string) ([]byte, error) {
	timeout := r.Timeout
	if timeout <= 0 {
		timeout = 30 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	argv := append(append(append([]string(nil), r.Prefix...), r.path(tool)), args...)
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	if len(r.Env) > 0 {
		cmd.Env = append(cmd.Environ(), r.Env...)
	}
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	if err == nil {
		return out.Bytes(), nil
	}
	if ctx.Err() != nil {
		return nil, &ToolError{Tool: tool, Code: ExitTimeout, Message: "no answer within " + timeout.String()}
	}
	if errors.Is(err, exec.ErrNotFound) {
		return nil, fmt.Errorf("%s: %w", tool, ErrNotInstalled)
	}
	var ee *exec.ExitError
	if !errors.As(err, &ee) {
		return nil, fmt.Errorf("%s: %w", tool, err)
	}
	te := &ToolError{Tool: tool, Code: ExitCode(ee.ExitCode())}
	// Prefer the XML result's message; fall back to stderr.
	if _, derr := decodeResult(bytes.NewReader(out.Bytes()), tool); derr != nil {
		var inner *ToolError
		if errors.As(derr, &inner) {
			te.Message = inner.Message
		}
	}
	if te.Message == "" {
		te.Message = strings.TrimSpace(oneLine(errb.String()))
	}
	// Pacemaker's tools start their own messages with their name, which
	// ToolError.Error already puts first.
	te.Message = strings.ReplaceAll(te.Message, tool+": ", "")
	if len(r.Prefix) > 0 && te.Code == 127 {
		return nil, fmt.Errorf("%s: %w", tool, ErrNotInstalled)
	}
	return out.Bytes(), te
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }
