// Package nova drives the test Nova control plane of test/nova/nova (a real
// OpenStack Zed from Debian 12: Keystone, Placement, Glance, neutron-server,
// nova-api, nova-conductor, nova-scheduler, and nova-compute processes with
// the fake virt driver, or with the libvirt driver and real qemu guests inside
// lab nodes that run a libvirtd) from Go tests, and lets the test process talk
// to it.
//
// The control plane listens only inside its own network namespace. Clients
// in the test process reach it through [NetNSDialer], whose connections are
// created inside that namespace, so no address of the machine's root
// namespace is ever used.
package nova

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"time"
)

// DefaultDir is the state directory the script uses when none is given.
const DefaultDir = "/tmp/computeha-nova"

// Cloud names in the clouds.yaml that Up writes.
const (
	CloudAdmin = "computeha-admin"
	CloudDemo  = "computeha-demo"
)

// Virt drivers of nova-compute (the script's --driver).
const (
	DriverFake    = "fake"
	DriverLibvirt = "libvirt"
)

// The test guest (test/guest) in Glance and the flavor it fits, made by
// GuestImage and Up. The guest feeds its watchdog; GuestHangImage's stops
// feeding it 5 s after boot. Both set hw_watchdog_action=pause.
// GuestIdleImage's guest halts its CPU at once, in its boot sector: a real
// qemu guest that costs next to nothing, for tests that need many.
const (
	GuestImage     = "guest"
	GuestHangImage = "guest-hang"
	GuestIdleImage = "guest-idle"
	GuestFlavor    = "m1.guest"
)

// Plane is one control plane: its state directory, and the namespace and
// address it listens on (taken from the environment of Up, or from what a
// previous Up recorded).
type Plane struct {
	// Dir is the state directory (configuration, data, logs, clouds.yaml).
	Dir string
	// NetNS is the network namespace of every control-plane daemon. Empty
	// means the script's default (chanova) or what Dir records.
	NetNS string
	// Addr is the address the APIs listen on inside NetNS. Empty means the
	// default (127.0.0.1) or what Dir records.
	Addr string
	// NetNSCreated tells whether Up created NetNS (and Down removes it).
	NetNSCreated bool
	// Output receives the script's progress messages; nil discards them
	// (they are still part of the error on failure).
	Output *os.File
	// Driver is the virt driver of the computes ComputeStart and
	// ComputeLaunch start: DriverFake (the default) or DriverLibvirt.
	Driver string
}

// Script is the path of the test/nova/nova script, found next to this
// source file: the package is only used from a checkout of the repository.
func Script() string {
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		return "test/nova/nova"
	}
	return filepath.Join(filepath.Dir(file), "nova")
}

func (p *Plane) dir() string {
	if p.Dir == "" {
		return DefaultDir
	}
	return p.Dir
}

// CloudsYAML is the path of the clouds.yaml (mode 600) written by Up, with
// the clouds CloudAdmin and CloudDemo.
func (p *Plane) CloudsYAML() string { return filepath.Join(p.dir(), "clouds.yaml") }

// run executes the script with the given arguments and the plane's --dir.
func (p *Plane) run(ctx context.Context, args ...string) error {
	args = append(args, "--dir", p.dir())
	cmd := exec.CommandContext(ctx, Script(), args...)
	// The script reads NOVA_NETNS and NOVA_ADDR on "up"; everything else
	// comes from the caller's environment.
	env := os.Environ()
	if p.NetNS != "" {
		env = append(env, "NOVA_NETNS="+p.NetNS)
	}
	if p.Addr != "" {
		env = append(env, "NOVA_ADDR="+p.Addr)
	}
	cmd.Env = env
	var out bytes.Buffer
	if p.Output != nil {
		cmd.Stdout = p.Output
		cmd.Stderr = p.Output
	} else {
		cmd.Stdout = &out
		cmd.Stderr = &out
	}
	// A cancelled context kills the script; its own daemons are detached
	// and left to Down.
	cmd.WaitDelay = 10 * time.Second
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("nova %s: %w: %s", args[0], err, strings.TrimSpace(out.String()))
	}
	return nil
}

// Up starts the control plane (cold: ~2 min, warm: less) and reads back the
// namespace and address it uses.
func (p *Plane) Up(ctx context.Context) error {
	if err := p.run(ctx, "up"); err != nil {
		return err
	}
	return p.load()
}

// Down stops every daemon of the control plane and every compute started
// through it, and removes the namespace if Up created it. It succeeds when
// nothing is running, also after a failed Up.
func (p *Plane) Down(ctx context.Context) error { return p.run(ctx, "down") }

// ComputeStart starts a nova-compute with the plane's Driver for host and
// waits until Nova sees it up and mapped to the cell. With execPrefix (for
// example "nsenter", "-t", "PID", "-m", "-n", "-u") it runs inside another
// node's namespaces, from where it must be able to reach Addr; the prefix
// must exec the command (not fork), as the pid is tracked.
func (p *Plane) ComputeStart(ctx context.Context, host string, execPrefix ...string) error {
	args := []string{"compute-start", host, "--driver", p.driver()}
	if len(execPrefix) > 0 {
		args = append(args, "--exec-prefix", strings.Join(execPrefix, " "))
	}
	return p.run(ctx, args...)
}

// ComputeLaunch starts host's nova-compute like ComputeStart but returns
// at once: a host whose service is forced down never reports up.
func (p *Plane) ComputeLaunch(ctx context.Context, host string, execPrefix ...string) error {
	args := []string{"compute-start", host, "--no-wait", "--driver", p.driver()}
	if len(execPrefix) > 0 {
		args = append(args, "--exec-prefix", strings.Join(execPrefix, " "))
	}
	return p.run(ctx, args...)
}

func (p *Plane) driver() string {
	if p.Driver == "" {
		return DriverFake
	}
	return p.Driver
}

// UploadGuest builds the test guest (test/guest) and uploads it to Glance as
// the images GuestImage, GuestHangImage and GuestIdleImage, unless they are there already.
func (p *Plane) UploadGuest(ctx context.Context) error { return p.run(ctx, "guest-image") }

// ComputeStop stops host's nova-compute (SIGTERM, then SIGKILL).
func (p *Plane) ComputeStop(ctx context.Context, host string) error {
	return p.run(ctx, "compute-stop", host)
}

// ComputeKill kills host's nova-compute with SIGKILL, as a dead host would
// leave it: no goodbye to the conductor, the service times out.
func (p *Plane) ComputeKill(ctx context.Context, host string) error {
	return p.run(ctx, "compute-kill", host)
}

// Running reports whether every daemon of the control plane runs and every
// API answers (false, nil: nothing runs; an error: partly running or the
// check failed).
func (p *Plane) Running(ctx context.Context) (bool, error) {
	err := p.run(ctx, "status")
	if err == nil {
		return true, nil
	}
	var exitErr *exec.ExitError
	if errors.As(err, &exitErr) && exitErr.ExitCode() == 3 {
		return false, nil
	}
	return false, err
}

// Transport is an HTTP transport whose connections are made inside the
// plane's network namespace. Keep-alives are off: the uwsgi servers close
// every connection anyway.
func (p *Plane) Transport() (*http.Transport, error) {
	if p.NetNS == "" {
		if err := p.load(); err != nil {
			return nil, err
		}
	}
	return NetNSTransport(p.NetNS), nil
}

// load reads the namespace and address recorded by Up in DIR/state.env.
func (p *Plane) load() error {
	f, err := os.Open(filepath.Join(p.dir(), "state.env"))
	if err != nil {
		return fmt.Errorf("control plane state: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), "=")
		if !ok {
			continue
		}
		v = strings.Trim(v, "'")
		switch k {
		case "NETNS":
			p.NetNS = v
		case "ADDR":
			p.Addr = v
		case "NETNS_CREATED":
			p.NetNSCreated = v == "1"
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("control plane state: %w", err)
	}
	if p.NetNS == "" || p.Addr == "" {
		return errors.New("control plane state: namespace or address missing")
	}
	return nil
}
