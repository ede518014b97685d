package e2e

import (
	"context"
	"fmt"
	"os"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/computeha/computeha/internal/openstack"
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

// DomainName is the libvirt domain name of server id's guest on host.
func (e *Env) DomainName(ctx context.Context, host, id string) (string, error) {
	out, errOut, code, err := e.Lab.Exec(ctx, host, "virsh", "-c", "qemu:///system", "domname", id)
	if err != nil || code != 0 {
		return "", fmt.Errorf("virsh domname %s on %s: exit %d, %v: %s", id, host, code, err, errOut)
	}
	return strings.TrimSpace(out), nil
}

// KillQemu kills the qemu process of server id's guest on host with SIGKILL, as a crash of
// qemu itself would end it.
func (e *Env) KillQemu(ctx context.Context, host, id string) error {
	name, err := e.DomainName(ctx, host, id)
	if err != nil {
		return err
	}
	return e.KillDomainQemu(ctx, host, name)
}

// KillDomainQemu kills the qemu process of the domain called name on host with SIGKILL, found
// by the pid file libvirt keeps in the host's /run (so it works with libvirtd down, and never
// touches a process of another host: the lab's nodes share the machine's pid namespace).
func (e *Env) KillDomainQemu(ctx context.Context, host, name string) error {
	if !domainNameRE.MatchString(name) {
		return fmt.Errorf("%q is not a domain name", name)
	}
	_, errOut, code, err := e.Lab.Exec(ctx, host, "sh", "-c", `kill -KILL "$(cat /run/libvirt/qemu/$1.pid)"`, "sh", name)
	if err != nil || code != 0 {
		return fmt.Errorf("killing qemu of %s on %s: exit %d, %v: %s", name, host, code, err, errOut)
	}
	return nil
}

// KillAllQemu kills every qemu process of host's libvirtd with SIGKILL, together.
func (e *Env) KillAllQemu(ctx context.Context, host string) error {
	// libvirt's pid files end without a newline: read each on its own, then one kill for all.
	_, errOut, code, err := e.Lab.Exec(ctx, host, "sh", "-c", `p=; for f in /run/libvirt/qemu/*.pid; do p="$p $(cat "$f")"; done; kill -KILL $p`)
	if err != nil || code != 0 {
		return fmt.Errorf("killing every qemu on %s: exit %d, %v: %s", host, code, err, errOut)
	}
	return nil
}

var domainNameRE = regexp.MustCompile(`^[A-Za-z0-9_.-]+$`)

// WaitRunning waits until server id is ACTIVE in Nova with no task, on host, and host's
// libvirtd runs its domain; it returns when that was first seen.
func (e *Env) WaitRunning(ctx context.Context, host, id string, limit time.Duration) (time.Time, error) {
	deadline := time.Now().Add(limit)
	var why string
	for time.Now().Before(deadline) {
		s, err := e.Nova.Server(ctx, id)
		runs, rerr := e.Runs(ctx, host, id)
		switch {
		case err != nil:
			why = err.Error()
		case rerr != nil:
			why = rerr.Error()
		case s.Host != host || s.Status != "ACTIVE" || s.TaskState != "":
			why = fmt.Sprintf("Nova: %s on %s, task %q", s.Status, s.Host, s.TaskState)
		case !runs:
			why = "ACTIVE in Nova, but " + host + "'s libvirtd does not run it"
		default:
			return time.Now(), nil
		}
		time.Sleep(200 * time.Millisecond)
	}
	return time.Time{}, fmt.Errorf("%s not running on %s within %s: %s", id, host, limit, why)
}

// VMFailures are the history's failures of guests (reason vm-*) on host, oldest first.
func (e *Env) VMFailures(ctx context.Context, host string) ([]HistoryEvent, error) {
	evs, err := e.History(ctx, host, "failure")
	if err != nil {
		return nil, err
	}
	var out []HistoryEvent
	for _, ev := range evs {
		if strings.HasPrefix(ev.ReasonCode, "vm-") {
			out = append(out, ev)
		}
	}
	return out, nil
}

// InstancemonPID is the pid of host's instance monitor (computeha instancemon --node host), read
// from /proc: the lab's nodes share the machine's pid namespace.
func InstancemonPID(host string) (int, error) {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return 0, err
	}
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/cmdline")
		if err != nil {
			continue
		}
		args := strings.Split(strings.TrimRight(string(b), "\x00"), "\x00")
		if len(args) < 2 || args[1] != "instancemon" {
			continue
		}
		for i, a := range args {
			if a == "--node" && i+1 < len(args) && args[i+1] == host {
				return pid, nil
			}
		}
	}
	return 0, fmt.Errorf("no instancemon runs for %s", host)
}

// waitService waits up to limit until host's compute service in Nova satisfies ok.
func (e *Env) waitService(ctx context.Context, host string, limit time.Duration, ok func(openstack.Service) bool) (openstack.Service, error) {
	deadline := time.Now().Add(limit)
	var last openstack.Service
	var err error
	for time.Now().Before(deadline) {
		if last, err = e.Nova.FindComputeService(ctx, host); err == nil && ok(last) {
			return last, nil
		}
		time.Sleep(500 * time.Millisecond)
	}
	return last, fmt.Errorf("%s's compute service not as wanted within %s: %s, %s, %q (%v)", host, limit, last.Status, last.State, last.DisabledReason, err)
}

// DomainState is the state of server id's domain on host with its reason, as virsh domstate
// --reason says it: "running (booted)", "paused (I/O error)".
func (e *Env) DomainState(ctx context.Context, host, id string) (string, error) {
	out, errOut, code, err := e.Lab.Exec(ctx, host, "virsh", "-c", "qemu:///system", "domstate", "--reason", id)
	if err != nil || code != 0 {
		return "", fmt.Errorf("virsh domstate %s on %s: exit %d, %v: %s", id, host, code, err, strings.TrimSpace(errOut))
	}
	return strings.TrimSpace(out), nil
}

// WaitDomainState waits up to limit until DomainState starts with want, and returns it.
func (e *Env) WaitDomainState(ctx context.Context, host, id, want string, limit time.Duration) (string, error) {
	deadline := time.Now().Add(limit)
	for {
		st, err := e.DomainState(ctx, host, id)
		if err == nil && strings.HasPrefix(st, want) {
			return st, nil
		}
		if time.Now().After(deadline) {
			return "", fmt.Errorf("%s's domain on %s not %q within %s: %q, %v", id, host, want, limit, st, err)
		}
		select {
		case <-ctx.Done():
			return "", ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// SmallVolume is where MoveDiskToSmallVolume puts a guest's disk: a host's own small
// filesystem (a tmpfs in the host's mount namespace), which FillVolume fills.
const SmallVolume = "/var/lib/computeha/small-volume"

// onSmallVolume runs script (sh -c, $1 SmallVolume, then args) on host; what says what it does.
func (e *Env) onSmallVolume(ctx context.Context, host, what, script string, args ...string) error {
	_, errOut, code, err := e.Lab.Exec(ctx, host, append([]string{"sh", "-c", script, "sh", SmallVolume}, args...)...)
	if err != nil || code != 0 {
		return fmt.Errorf("%s on %s: exit %d, %v: %s", what, host, code, err, strings.TrimSpace(errOut))
	}
	return nil
}

// MoveDiskToSmallVolume moves the root disk of server id's guest on host, live, onto a new
// filesystem of sizeMB at SmallVolume, as a storage migration would: libvirt copies its top
// image there (a qcow2 file on the same base) and pivots to it. The guest runs on; Nova's
// definition still names its disk on the shared storage, which a restart goes back to.
func (e *Env) MoveDiskToSmallVolume(ctx context.Context, host, id string, sizeMB int) error {
	name, err := e.DomainName(ctx, host, id)
	if err != nil {
		return err
	}
	return e.onSmallVolume(ctx, host, "moving "+id+"'s disk to a small volume", `set -e
mkdir -p "$1"
mountpoint -q "$1" || mount -t tmpfs -o size="$2"m small-volume "$1"
virsh -c qemu:///system blockcopy "$3" vda "$1/disk" --format qcow2 --shallow --transient-job --pivot --wait`,
		strconv.Itoa(sizeMB), name)
}

// FillVolume fills SmallVolume on host to its last byte, as data of something else on the
// same storage would: the guest's next write to a block it never wrote fails with ENOSPC.
func (e *Env) FillVolume(ctx context.Context, host string) error {
	return e.onSmallVolume(ctx, host, "filling "+SmallVolume, `dd if=/dev/zero of="$1/fill" bs=64k 2>/dev/null; dd if=/dev/zero of="$1/fill-last" bs=4k 2>/dev/null
[ "$(df --output=avail -k "$1" | tail -n 1 | tr -d ' ')" = 0 ]`)
}

// FreeVolume removes what FillVolume wrote: the storage has room again.
func (e *Env) FreeVolume(ctx context.Context, host string) error {
	return e.onSmallVolume(ctx, host, "freeing "+SmallVolume, `rm -f "$1/fill" "$1/fill-last"`)
}

// DropSmallVolume unmounts SmallVolume on host (no guest may use it any more).
func (e *Env) DropSmallVolume(ctx context.Context, host string) error {
	return e.onSmallVolume(ctx, host, "unmounting "+SmallVolume, `! mountpoint -q "$1" || umount "$1"`)
}
