// Command demo is computeha's one-command demonstration on real parts: it
// brings up a Pacemaker lab (3 controllers, 3 computes as pacemaker-remote
// nodes with BMCs, each with a libvirtd), a real Nova with a libvirt-driver
// nova-compute per compute running real qemu guests, fencing by fence_ipmi +
// fence_nova, the evacuator with its HA API and an instance monitor per
// compute; boots 10 HA VMs and 2 others on cmp1; powers cmp1 off through its
// BMC and prints the timeline of its recovery; powers it on again; kills the
// qemu process of one HA VM and prints how it runs again; and prints the
// history. -fake runs the fake virt driver instead (no guests, no VM act).
//
//	go run ./test/e2e/demo -bin bin [-keep] [-fake]
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/computeha/computeha/internal/history"
	"github.com/computeha/computeha/test/e2e"
)

func main() {
	bin := flag.String("bin", "bin", "directory of computeha and its agents (make build)")
	keep := flag.Bool("keep", false, "leave everything running (make demo-down stops it)")
	ha := flag.Int("ha", 10, "HA VMs on the failing host")
	plain := flag.Int("plain", 2, "VMs without HA on the failing host")
	fake := flag.Bool("fake", false, "the fake virt driver: no real guests, no VM failure act")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, *bin, *keep, *ha, *plain, !*fake); err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, bin string, keep bool, ha, plain int, guests bool) error {
	if os.Geteuid() != 0 {
		return fmt.Errorf("run as root: the demo creates namespaces and runs Pacemaker and Nova")
	}
	abs, err := filepath.Abs(bin)
	if err != nil {
		return err
	}
	fmt.Println("Setting up: Pacemaker lab, Nova, fencing (fence_ipmi + fence_nova), nova-compute clone, evacuator ...")
	start := time.Now()
	env, err := e2e.Up(ctx, e2e.Options{Dir: "/tmp/computeha-demo", Bin: abs, Log: os.Stdout, Guests: guests})
	if err != nil {
		return err
	}
	if !keep {
		defer env.Down(context.Background())
	}
	fmt.Printf("Ready after %s.\n\n", time.Since(start).Round(time.Second))

	if guests {
		fmt.Printf("Booting %d HA VMs (flavor m1.guest-evacuable: evacuable=true) and %d others on cmp1: real qemu guests ...\n", ha, plain)
	} else {
		fmt.Printf("Booting %d HA VMs (flavor m1.evacuable: evacuable=true) and %d others on cmp1 ...\n", ha, plain)
	}
	vms, err := env.Boot(ctx, "cmp1", ha, plain)
	if err != nil {
		return err
	}
	if guests {
		// ACTIVE is when qemu started: each guest boots after that, all of them at once on
		// the machine's cores. Waited for, so that the power loss meets running guests.
		fmt.Println("Waiting for the guests to boot ...")
		for _, v := range vms {
			if _, err := env.WaitConsole(ctx, v.ID, "up ", 5*time.Minute); err != nil {
				return err
			}
		}
	}
	fmt.Printf("\nPowering cmp1 off. Timeline:\n")
	tl, err := env.PowerLoss(ctx, "cmp1", vms, 5*time.Minute, os.Stdout)
	if err != nil {
		return err
	}
	fmt.Printf("\n%s\n", tl.Summary())
	fmt.Println("Powering cmp1 back on:")
	if _, err := env.PowerOn(ctx, "cmp1", 5*time.Minute, os.Stdout); err != nil {
		return err
	}
	if guests {
		if err := vmFailureAct(ctx, env, vms[0]); err != nil {
			return err
		}
	}
	fmt.Println("\nHistory (computeha history):")
	store, err := history.Open(ctx, "sqlite", env.HistoryDB())
	if err != nil {
		return err
	}
	defer store.Close()
	// This run's records only: the store keeps earlier demos' too.
	if err := store.Show(ctx, os.Stdout, history.Filter{Since: start}, history.FormatTable); err != nil {
		return err
	}
	fmt.Printf("\nTimings: %s", tl.Summary())
	if len(tl.Violations) > 0 {
		return fmt.Errorf("%d checks failed", len(tl.Violations))
	}
	if keep {
		fmt.Println("\nEverything is still running; make demo-down stops it.")
	}
	return nil
}

// vmFailureAct kills the qemu process of an HA VM and prints how it runs again: the host's
// instance monitor sees it in libvirt's events, reports it to the daemon's HA API, and the
// daemon restarts the VM where it is through Nova.
func vmFailureAct(ctx context.Context, env *e2e.Env, vm e2e.VM) error {
	s, err := env.Nova.Server(ctx, vm.ID)
	if err != nil {
		return err
	}
	host := s.Host
	fmt.Printf("\nKilling the qemu process of %s on %s with SIGKILL. Timeline:\n", vm.Name, host)
	killed := time.Now()
	if err := env.KillQemu(ctx, host, vm.ID); err != nil {
		return err
	}
	fmt.Printf("  %7.2fs  qemu of %s killed on %s\n", 0.0, vm.Name, host)
	at, err := env.WaitRunning(ctx, host, vm.ID, 2*time.Minute)
	if err != nil {
		return err
	}
	fmt.Printf("  %7.2fs  %s runs again on %s, ACTIVE in Nova (instancemon -> HA API -> evacd -> Nova hard reboot)\n",
		at.Sub(killed).Seconds(), vm.Name, host)
	line, err := env.WaitConsole(ctx, vm.ID, "up ", 2*time.Minute)
	if err != nil {
		return err
	}
	fmt.Printf("  %7.2fs  its console: %s\n", time.Since(killed).Seconds(), line)
	return nil
}
