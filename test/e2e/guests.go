//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"strings"
	"time"
)

// GuestPrefix starts every line the test guest (test/guest) writes to its console.
const GuestPrefix = "computeha-guest: "

// Domains lists the UUIDs of the libvirt domains running on host, as its own libvirtd says
// (a compute of a lab up with Options.Guests). Nova names a guest's domain by its server ID.
func (e *Env) Domains(ctx context.Context, host string) ([]string, error) {
	out, errOut, code, err := e.Lab.Exec(ctx, host, "virsh", "-c", "qemu:///system", "list", "--uuid")
	if err != nil {
		return nil, err
	}
	if code != 0 {
		return nil, fmt.Errorf("virsh list on %s: exit %d: %s", host, code, strings.TrimSpace(errOut))
	}
	return strings.Fields(out), nil
}

// Runs reports whether host's libvirtd runs the guest of server id.
func (e *Env) Runs(ctx context.Context, host, id string) (bool, error) {
	doms, err := e.Domains(ctx, host)
	if err != nil {
		return false, err
	}
	for _, d := range doms {
		if d == id {
			return true, nil
		}
	}
	return false, nil
}

// WaitConsole waits up to limit for a line of the guest's console log (through Nova's API)
// that starts with GuestPrefix+want, and returns it.
func (e *Env) WaitConsole(ctx context.Context, id, want string, limit time.Duration) (string, error) {
	deadline := time.Now().Add(limit)
	var last string
	for {
		log, err := e.Admin.ConsoleLog(ctx, id)
		if err == nil {
			last = log
			for line := range strings.Lines(log) {
				line = strings.TrimSpace(line)
				if strings.HasPrefix(line, GuestPrefix+want) {
					return line, nil
				}
			}
		}
		if time.Now().After(deadline) {
			return "", fmt.Errorf("no console line %q from %s within %s (last error %v); the guest's lines: %s",
				GuestPrefix+want, id, limit, err, guestLines(last))
		}
		select {
		case <-ctx.Done():
			return "", ctx.Err()
		case <-time.After(time.Second):
		}
	}
}

// guestLines is what the guest itself wrote in a console log, for a failure message.
func guestLines(log string) string {
	var out []string
	for line := range strings.Lines(log) {
		if strings.HasPrefix(strings.TrimSpace(line), GuestPrefix) {
			out = append(out, strings.TrimSpace(line))
		}
	}
	if len(out) == 0 {
		return "(none)"
	}
	return strings.Join(out, " | ")
}
