package config

import "time"

// IOErrorAction is what is done about an HA VM that qemu paused because a write to one of its
// disks failed (a full or failing storage: QEMU's default werror=enospc pauses on ENOSPC), as
// the policy gives it per VM (policy.io_error): a storage blip and a dead disk need different
// answers.
type IOErrorAction string

const (
	// IOErrorResume resumes the VM where it is once Instances.ResumeDelay has passed (the
	// storage came back: the failed writes are retried, the guest never saw them). A VM
	// resumed Instances.MaxRestarts times within Instances.RestartWindow is left paused, with
	// an alert: the error persists. The default.
	IOErrorResume IOErrorAction = "resume"
	// IOErrorRestart restarts the VM where it is (a hard reboot through Nova), as a crash is.
	IOErrorRestart IOErrorAction = "restart"
	// IOErrorMove moves the VM to another host of its segment (a cold migration) and starts it
	// there: for storage that failed on this host only. Nova first asks the guest to shut
	// down, which a paused one cannot: the move takes Nova's shutdown timeout longer.
	IOErrorMove IOErrorAction = "move"
	// IOErrorLeavePaused leaves the VM paused, with an alert, for someone to look at.
	IOErrorLeavePaused IOErrorAction = "leave-paused"
)

// IOErrorActions lists the actions, in the order messages name them.
var IOErrorActions = []IOErrorAction{IOErrorResume, IOErrorRestart, IOErrorMove, IOErrorLeavePaused}

// IOErrorPolicy gives each HA VM what is done when an I/O error pauses it (policy.io_error).
type IOErrorPolicy = Choices[IOErrorAction]

// Defaults of the I/O-error policy.
const (
	DefaultIOErrorAction    = IOErrorResume
	DefaultIOErrorFlavorKey = "computeha:io_error"
	DefaultIOErrorPolicyKey = "computeha_io_error"
	DefaultResumeDelay      = 10 * time.Second
)

// IOErrorSection is policy.io_error.
var IOErrorSection = Section[IOErrorAction]{
	Field: "io_error", Noun: "I/O-error action", Short: "action", Values: IOErrorActions, Default: DefaultIOErrorAction,
	FlavorKey: DefaultIOErrorFlavorKey, Key: DefaultIOErrorPolicyKey,
}

// DefaultIOErrorPolicy is the I/O-error policy's defaults.
func DefaultIOErrorPolicy() IOErrorPolicy { return IOErrorSection.Defaults() }

// String is the action's name.
func (a IOErrorAction) String() string { return string(a) }
