// Package procs sizes the Go scheduler for what the binary runs.
//
// Most starts of the computeha binary are agents: Pacemaker runs a fence or
// OCF agent for every monitor, status and fencing operation, and each is a
// short process that waits on a socket or a child most of its life. A
// second scheduler P gives such a process nothing to run in parallel, but
// it costs the start: a second per-P allocation cache (its own spans, so
// more fresh pages to fault in while the packages initialise), and threads
// woken to look for work. Measured on a fence_ipmi status call, one P is
// about 9 % less wall time.
//
// So, unless GOMAXPROCS is set in the environment (the operator's word,
// which the runtime applies itself), the process starts with one P, set
// while the packages initialise: Go initialises them in import-path order
// as soon as their imports are done, and this one needs only runtime and
// syscall, so it runs before any package that allocates much. A
// long-running command (the daemon, hostcheck, the command-line tools)
// calls Default first thing, which hands the sizing back to the runtime:
// the CPUs and CPU quota it may use, updated as they change.
//
// Import it from the main package only: a test binary importing it would
// run its tests on one P.
package procs

import (
	"runtime"
	"syscall"
)

// fromEnv tells whether GOMAXPROCS is set in the environment.
var fromEnv bool

func init() {
	_, fromEnv = syscall.Getenv("GOMAXPROCS")
	if !fromEnv {
		runtime.GOMAXPROCS(1)
	}
}

// Default gives the process the runtime's own GOMAXPROCS, unless the
// environment sets it.
func Default() {
	if !fromEnv {
		runtime.SetDefaultGOMAXPROCS()
	}
}
