package recovery

import (
	"errors"

	"github.com/computeha/computeha/internal/history"
	"github.com/computeha/computeha/internal/openstack"
	"github.com/computeha/computeha/internal/plan"
)

// Situation is why VMs must run again; it decides which methods apply.
type Situation string

// Situations.
const (
	// HostFenced: the source host is fenced (off): its VMs can only be rebuilt elsewhere.
	HostFenced Situation = "host-fenced"
	// HostDegraded: the source host runs, but must give its VMs up (a network it lost).
	HostDegraded Situation = "host-degraded"
	// VMFailed: the source host runs; the VMs of Job.VMs failed on it (their qemu died, a
	// watchdog fired, a disk failed under them): each is restarted where it is.
	VMFailed Situation = "vm-failed"
	// VMRelocate: the VMs of Job.VMs failed on the source host once too often: each is moved
	// to another host of its segment (a cold migration) and runs there, even one Nova had
	// stopped after its crash.
	VMRelocate Situation = "vm-relocate"
	// VMResume: the VMs of Job.VMs were paused by qemu on an I/O error on the source host:
	// each is resumed where it is.
	VMResume Situation = "vm-resume"
)

// MethodName names a method.
type MethodName string

// The methods.
const (
	Evacuate    MethodName = "evacuate"
	LiveMigrate MethodName = "live-migrate"
	ColdMigrate MethodName = "cold-migrate"
	Restart     MethodName = "restart"
	Resume      MethodName = "resume"
	Recreate    MethodName = "recreate"
	None        MethodName = "none"
)

// Result is what became of one VM.
type Result string

// Results.
const (
	// Recovered: the VM runs again (or stays stopped, as it was) where the method put it.
	Recovered Result = "recovered"
	// Left: the VM was deliberately not touched (no HA, class none, not in a state its
	// method can move); the reason says which.
	Left Result = "left"
	// Unrecoverable: the VM could not be given a target without breaking a hard rule (its
	// server group's policy); nothing was asked of Nova.
	Unrecoverable Result = "unrecoverable"
	// Failed: the method was tried, with its retries, and the VM does not run again.
	Failed Result = "failed"
)

// Code is the machine-readable reason of a decision; the history stores it.
type Code = history.ReasonCode

// Reason codes of the engine's decisions. The plan's reasons (plan.Reason) are codes too.
const (
	CodeNoHA             Code = "no-ha"              // the HA policy says off
	CodeClassNone        Code = "class-none"         // the recovery class is none
	CodeNotMovable       Code = "not-movable"        // a running host's VM in a state no method moves
	CodeErrorVMSkipped   Code = "error-vm-skipped"   // evacuation.error_vms is skip
	CodeLocalDataKept    Code = "local-data-kept"    // recreate would lose local disks: evacuated
	CodeResumed          Code = "resumed-in-flight"  // Nova already moves it (a daemon before this one asked)
	CodeGroupDegraded    Code = "group-policy-soft"  // a soft server group policy could not be followed
	CodeRetryElsewhere   Code = "retry-elsewhere"    // a failed move is tried on another host
	CodeTierReady        Code = "tier-ready"         // every VM of a tier runs: the next begins
	CodeTierTimeout      Code = "tier-timeout"       // a tier's timeout passed: the next begins anyway
	CodePreflight        Code = "preflight"          // the segment cannot take every VM
	CodeReservedHostUsed Code = "reserved-host-used" // a reserved host was taken into use
	CodeOutsideSegment   Code = "outside-segment"    // Nova's scheduler put a VM outside the segment
	CodeRecreated        Code = "recreated"          // a VM was recreated under a new id
	CodeMoveFailed       Code = "move-failed"        // a VM's method failed, retries included
	CodeStillMoving      Code = "still-moving"       // Nova still moves a VM past the confirmation timeout: waited for, never asked again
	CodeTargetFailed     Code = "target-failed"      // the host a VM was being rebuilt on failed before the rebuild began: asked again elsewhere
	CodeHandedOver       Code = "handed-over"        // the host a VM was being rebuilt on failed after the rebuild began there: that host's recovery takes it
)

// ErrStillMoving is wrapped by the error of a move Nova still carries out when the wait for it
// ends: asking Nova again could start a second copy of the VM, so it is not retried.
var ErrStillMoving = errors.New("still being moved by Nova")

// ErrHandedOver is wrapped by the error of a move whose target failed once Nova had begun to
// rebuild the VM there: the VM is the target's now, and the target's own recovery moves it.
// Asking again from here would start a second copy, so it is not retried.
var ErrHandedOver = errors.New("left to the recovery of the host it was being rebuilt on")

// Reason is a decision's code and its sentence.
type Reason = history.Reason

// codeOf turns a plan reason into a code.
func codeOf(r plan.Reason) Code { return Code(r) }

// VMReport is what became of one VM.
type VMReport struct {
	// Server is the VM as the recovery found it on the source host.
	Server openstack.Server
	// ID is its id at the end: another one when it was recreated.
	ID     string
	Method MethodName
	Result Result
	// To is where it runs at the end, when it was moved.
	To     Host
	Reason Reason
	// LostOn is the host an evacuation of it was sent to that failed before rebuilding it: the
	// request waits in that host's queue, and runs when it comes back.
	LostOn Host
}

// Report is what became of every VM of a recovery, in the order they were found.
type Report struct {
	VMs []VMReport
}

// Count is how many VMs ended with r.
func (rep Report) Count(r Result) int {
	n := 0
	for _, v := range rep.VMs {
		if v.Result == r {
			n++
		}
	}
	return n
}
