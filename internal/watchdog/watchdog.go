// Package watchdog holds a host's watchdog timer: a countdown that resets (or powers off) the
// host unless it is fed in time. hostcheck holds it while the host may live and stops feeding
// it when the host must die: it read a poison pill addressed to itself, or it has lost every
// way of learning whether it was condemned (see internal/hostcheck).
//
// Two devices implement [Device]: the Linux watchdog (/dev/watchdog and its kin), and a file
// that a supervisor outside the host watches (a test lab's nodes share one kernel, so none of
// them may hold the machine's watchdog; the lab powers the node off through its BMC instead).
// Both keep counting down when the process holding them dies without a deliberate stop: a
// dead hostcheck must be restarted within the timeout or the host resets.
package watchdog

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

// Device is an armed watchdog.
type Device interface {
	// Feed restarts the countdown.
	Feed() error
	// Timeout is the countdown the device runs: what it was asked for, or what the hardware
	// gave instead.
	Timeout() time.Duration
	// Disarm stops the countdown and releases the device: only on a deliberate stop of the
	// process that holds it.
	Disarm() error
	// Release lets go of the device without stopping it, as a crash would: the host resets
	// at the end of the countdown unless the device is opened and fed again.
	Release() error
}

// FilePrefix starts the spec of a file-backed device: "file:/run/computeha/lab-watchdog".
const FilePrefix = "file:"

// ErrSpec is a device spec that names no device.
var ErrSpec = errors.New("not a watchdog device")

// Open arms the device that spec names with timeout: a path under /dev is a Linux watchdog,
// "file:PATH" a file-backed one.
func Open(spec string, timeout time.Duration) (Device, error) {
	if err := CheckSpec(spec); err != nil {
		return nil, err
	}
	if timeout < time.Second {
		return nil, fmt.Errorf("watchdog %s: timeout %s is below one second", spec, timeout)
	}
	if path, ok := strings.CutPrefix(spec, FilePrefix); ok {
		return OpenFile(path, timeout)
	}
	return OpenLinux(spec, timeout)
}

// CheckSpec tells whether spec names a device Open knows, without opening it.
func CheckSpec(spec string) error {
	if (strings.HasPrefix(spec, FilePrefix) && strings.HasPrefix(spec[len(FilePrefix):], "/")) ||
		(strings.HasPrefix(spec, "/dev/") && len(spec) > len("/dev/")) {
		return nil
	}
	return fmt.Errorf("watchdog %q: %w (an absolute path under /dev, or file:/PATH)", spec, ErrSpec)
}
