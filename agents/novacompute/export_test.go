package novacompute

import "syscall"

// killGroup ends what a test started, by the recorded pid's group.
func killGroup(pid int) error { return syscall.Kill(-pid, syscall.SIGKILL) }
