package instancemon

import (
	"fmt"
	"time"

	libvirt "github.com/digitalocean/go-libvirt"
)

// Kind is what happened to a guest, in computeha's words.
type Kind string

// The kinds of failure the monitor reports.
const (
	// Crashed: the domain stopped because its qemu process failed or the guest crashed
	// (panicked): it no longer runs and nobody asked for it.
	Crashed Kind = "crashed"
	// Stopped: the domain shut off without a crash: the guest shut itself down, or someone
	// destroyed it through libvirt. A failure only if Nova did not ask for it.
	Stopped Kind = "stopped"
	// IOError: a disk of the guest failed under it; Reason names the error and Action what
	// qemu did (the guest paused, or the error reported to it).
	IOError Kind = "io-error"
	// Watchdog: the guest stopped feeding its watchdog device; Action is what qemu did.
	Watchdog Kind = "watchdog"
	// ControlError: libvirt lost control of the domain (its qemu monitor failed).
	ControlError Kind = "control-error"
)

// Known reports whether k is one of the kinds above.
func (k Kind) Known() bool {
	switch k {
	case Crashed, Stopped, IOError, Watchdog, ControlError:
		return true
	}
	return false
}

// Source says how the monitor learned of a failure.
type Source string

const (
	// FromEvent: a libvirt event, as it happened.
	FromEvent Source = "event"
	// FromReconcile: the listing made on a new connection to libvirtd differed from what
	// the monitor knew before (the event was missed while libvirtd was away), or showed a
	// domain still paused by an error when the monitor started.
	FromReconcile Source = "reconcile"
)

// Event is one failure of one guest.
type Event struct {
	// Server is the Nova instance's UUID (the domain's UUID).
	Server string `json:"server"`
	// Domain is the libvirt domain's name (instance-0000002a), for people reading logs.
	Domain string `json:"domain"`
	// Host is the compute host the domain ran on.
	Host string `json:"host"`
	Kind Kind   `json:"event"`
	// Reason is libvirt's detail: the lifecycle detail ("failed", "crashed", "panicked",
	// "shutdown", "destroyed"), or the I/O error's reason ("eio", "enospc", ...).
	Reason string `json:"reason,omitempty"`
	// Action is what qemu did about an I/O error or a watchdog ("pause", "report",
	// "reset", "none", ...).
	Action string `json:"action,omitempty"`
	// Device is the disk (its path or alias) of an I/O error.
	Device string `json:"device,omitempty"`
	// Time is when the monitor saw it.
	Time time.Time `json:"time"`
	// Source is how the monitor learned of it.
	Source Source `json:"source"`
	// Count is how many failures of this guest the report stands for (a burst coalesced
	// into its latest); at least 1.
	Count int `json:"count"`
}

func (e Event) String() string {
	s := fmt.Sprintf("%s %s (%s) on %s", e.Kind, e.Server, e.Domain, e.Host)
	if e.Reason != "" {
		s += " reason=" + e.Reason
	}
	if e.Action != "" {
		s += " action=" + e.Action
	}
	if e.Device != "" {
		s += " device=" + e.Device
	}
	return s + " source=" + string(e.Source)
}

// Lifecycle classifies a libvirt lifecycle event (event and detail, as
// virConnectDomainEventCallbackLifecycle gives them): the failure it is, with libvirt's
// detail as the reason, or ok false for what is no failure (a start, a resume, a pause or
// stop someone asked for, a migration, a save).
func Lifecycle(event, detail int32) (kind Kind, reason string, ok bool) {
	switch libvirt.DomainEventType(event) {
	case libvirt.DomainEventStopped:
		switch libvirt.DomainEventStoppedDetailType(detail) {
		case libvirt.DomainEventStoppedFailed:
			return Crashed, "failed", true
		case libvirt.DomainEventStoppedCrashed:
			return Crashed, "crashed", true
		case libvirt.DomainEventStoppedShutdown:
			return Stopped, "shutdown", true
		case libvirt.DomainEventStoppedDestroyed:
			return Stopped, "destroyed", true
		}
		// Migrated, saved, restored from a snapshot: done on purpose.
		return "", "", false
	case libvirt.DomainEventCrashed:
		switch libvirt.DomainEventCrashedDetailType(detail) {
		case libvirt.DomainEventCrashedCrashloaded:
			// The guest crashed and its crash kernel took over: it runs, and says so.
			return "", "", false
		}
		return Crashed, "panicked", true
	case libvirt.DomainEventSuspended:
		switch libvirt.DomainEventSuspendedDetailType(detail) {
		case libvirt.DomainEventSuspendedIoerror:
			return IOError, "paused", true
		case libvirt.DomainEventSuspendedWatchdog:
			return Watchdog, "paused", true
		case libvirt.DomainEventSuspendedAPIError:
			return ControlError, "paused after an API error", true
		}
		return "", "", false
	}
	return "", "", false
}

// State classifies a domain's state and reason as virDomainGetState gives them, for the
// listing made on every new connection: the failure a domain in that state stands for, or
// ok false. A domain shut off is a failure only if it crashed or failed; the caller reports
// it only when it ran before (a domain shut off long ago is old news).
func State(state, reason int32) (kind Kind, why string, ok bool) {
	switch libvirt.DomainState(state) {
	case libvirt.DomainShutoff:
		switch libvirt.DomainShutoffReason(reason) {
		case libvirt.DomainShutoffCrashed:
			return Crashed, "crashed", true
		case libvirt.DomainShutoffFailed:
			return Crashed, "failed", true
		case libvirt.DomainShutoffShutdown:
			return Stopped, "shutdown", true
		case libvirt.DomainShutoffDestroyed:
			return Stopped, "destroyed", true
		}
		return "", "", false
	case libvirt.DomainCrashed:
		return Crashed, "panicked", true
	case libvirt.DomainPaused:
		switch libvirt.DomainPausedReason(reason) {
		case libvirt.DomainPausedIoerror:
			return IOError, "paused", true
		case libvirt.DomainPausedWatchdog:
			return Watchdog, "paused", true
		case libvirt.DomainPausedAPIError:
			return ControlError, "paused after an API error", true
		}
	}
	return "", "", false
}

// Running reports whether a domain in state (virDomainGetState's) runs or is about to.
func Running(state int32) bool {
	switch libvirt.DomainState(state) {
	case libvirt.DomainRunning, libvirt.DomainBlocked, libvirt.DomainPmsuspended:
		return true
	}
	return false
}

// WatchdogAction names a watchdog event's action (virDomainEventWatchdogAction).
func WatchdogAction(a int32) string {
	switch libvirt.DomainEventWatchdogAction(a) {
	case libvirt.DomainEventWatchdogNone:
		return "none"
	case libvirt.DomainEventWatchdogPause:
		return "pause"
	case libvirt.DomainEventWatchdogReset:
		return "reset"
	case libvirt.DomainEventWatchdogPoweroff:
		return "poweroff"
	case libvirt.DomainEventWatchdogShutdown:
		return "shutdown"
	case libvirt.DomainEventWatchdogDebug:
		return "debug"
	case libvirt.DomainEventWatchdogInjectnmi:
		return "inject-nmi"
	}
	return fmt.Sprintf("action-%d", a)
}

// IOErrorAction names an I/O error event's action (virDomainEventIOErrorAction).
func IOErrorAction(a int32) string {
	switch libvirt.DomainEventIOErrorAction(a) {
	case libvirt.DomainEventIoErrorNone:
		return "none"
	case libvirt.DomainEventIoErrorPause:
		return "pause"
	case libvirt.DomainEventIoErrorReport:
		return "report"
	}
	return fmt.Sprintf("action-%d", a)
}

// lifecycleState is the domain state a lifecycle event leaves (virDomainState), or ok false
// for events that change no state (defined, undefined, shutting down).
func lifecycleState(event int32) (int32, bool) {
	switch libvirt.DomainEventType(event) {
	case libvirt.DomainEventStarted, libvirt.DomainEventResumed:
		return int32(libvirt.DomainRunning), true
	case libvirt.DomainEventSuspended:
		return int32(libvirt.DomainPaused), true
	case libvirt.DomainEventStopped:
		return int32(libvirt.DomainShutoff), true
	case libvirt.DomainEventCrashed:
		return int32(libvirt.DomainCrashed), true
	case libvirt.DomainEventPmsuspended:
		return int32(libvirt.DomainPmsuspended), true
	}
	return 0, false
}
