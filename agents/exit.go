package agents

import (
	"context"
	"errors"
	"fmt"

	"github.com/computeha/computeha/internal/linelog"
)

// OCF exit codes (OCF 1.1 resource agent API).
const (
	Success          = 0
	ErrGeneric       = 1
	ErrArgs          = 2
	ErrUnimplemented = 3
	ErrPerm          = 4
	ErrInstalled     = 5
	ErrConfigured    = 6
	NotRunningCode   = 7
	RunningPromoted  = 8
	FailedPromoted   = 9
	DegradedCode     = 190
	DegradedPromoted = 191
)

// Error is an outcome with its OCF exit code. Its message is the exit
// reason Pacemaker shows, so it must not carry secrets.
type Error struct {
	Code int
	Msg  string
	Err  error // the cause, if any
}

// Error is Msg, which already includes the cause's text when the error was
// made by one of the helpers with %w.
func (e *Error) Error() string {
	if e.Msg == "" && e.Err != nil {
		return e.Err.Error()
	}
	return e.Msg
}

func (e *Error) Unwrap() error { return e.Err }

// newError formats like fmt.Errorf, keeping a %w operand as the cause.
func newError(code int, format string, a ...any) error {
	err := fmt.Errorf(format, a...)
	return &Error{Code: code, Msg: err.Error(), Err: errors.Unwrap(err)}
}

// Generic is a failure of the action (OCF_ERR_GENERIC, 1).
func Generic(format string, a ...any) error { return newError(ErrGeneric, format, a...) }

// Configured is a configuration that cannot work anywhere, such as a
// required parameter left out (OCF_ERR_CONFIGURED, 6): Pacemaker stops the
// resource on every node.
func Configured(format string, a ...any) error { return newError(ErrConfigured, format, a...) }

// Args is a parameter value that cannot work on this node, such as a file
// that is not here (OCF_ERR_ARGS, 2): Pacemaker avoids this node only.
func Args(format string, a ...any) error { return newError(ErrArgs, format, a...) }

// Installed is a program or file the agent needs that is missing on this
// node (OCF_ERR_INSTALLED, 5).
func Installed(format string, a ...any) error { return newError(ErrInstalled, format, a...) }

// Perm is a lack of permission (OCF_ERR_PERM, 4).
func Perm(format string, a ...any) error { return newError(ErrPerm, format, a...) }

// NotRunning is the monitor's answer for a resource that is cleanly
// stopped (OCF_NOT_RUNNING, 7).
func NotRunning(format string, a ...any) error { return newError(NotRunningCode, format, a...) }

// Degraded is the monitor's answer for a resource that runs but cannot be
// checked fully or works below its capacity (OCF_DEGRADED, 190). Pacemaker
// counts it as running and records the reason.
func Degraded(format string, a ...any) error { return newError(DegradedCode, format, a...) }

// Unimplemented is an action the agent does not have (OCF_ERR_UNIMPLEMENTED, 3).
func Unimplemented(format string, a ...any) error {
	return newError(ErrUnimplemented, format, a...)
}

// CodeOf maps an action's result to its exit code: nil is 0, an *Error
// anywhere in the chain gives its code, an expired operation timeout and
// everything else are OCF_ERR_GENERIC.
func CodeOf(err error) int {
	if err == nil {
		return Success
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return ErrGeneric
}

// IsNotRunning tells whether err is the NotRunning answer.
func IsNotRunning(err error) bool { return CodeOf(err) == NotRunningCode }

// reason turns err into the one-line exit reason.
func reason(err error) string {
	if errors.Is(err, context.DeadlineExceeded) {
		var e *Error
		if !errors.As(err, &e) {
			return "operation timed out: " + linelog.OneLine(err.Error())
		}
	}
	return linelog.OneLine(err.Error())
}
