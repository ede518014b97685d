// Command guests measures VM-level HA on real parts: a real qemu guest of an HA VM, under
// Nova's libvirt driver on a lab compute, has its qemu killed with SIGKILL, again and again;
// each time it takes the time until the same VM runs again on the same host (its libvirt
// domain running, ACTIVE in Nova with no task) — the recovery — and, apart from it, the
// guest's own boot after that (the kernel's uptime when the guest's init says it is up), and
// the daemon's decision: from the kill to the failure the daemon records as it starts the
// restart (detection by the instance monitor, its report, the daemon's checks against Nova,
// half a second of gathering the host's failures, the read of the host). It also samples the
// instance monitor's memory: its peak RSS, with its anonymous part (its own) and its
// file-backed part (the pages of the computeha binary, shared by every computeha process of
// the host). Every figure is compared with its target; a missed
// target is said so and makes the exit status 1.
//
//	go run ./test/bench/guests -bin bin -kills 5
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"time"

	"github.com/computeha/computeha/internal/config"
	"github.com/computeha/computeha/test/e2e"
	"github.com/computeha/computeha/test/nova"
)

func main() {
	bin := flag.String("bin", "bin", "directory of computeha and its agents (make build)")
	kills := flag.Int("kills", 5, "how many times the guest's qemu is killed")
	target := flag.Duration("target", 10*time.Second, "largest acceptable median time from the kill to the VM running again, ACTIVE")
	decision := flag.Duration("decision", 3*time.Second, "largest acceptable median time from the kill to the daemon starting the restart")
	rssTarget := flag.Int("rss-mb", 20, "largest acceptable peak RSS of the instance monitor, in MB")
	burst := flag.Int("burst", 20, "HA VMs booted on the other host and crashed together at the end (0: none)")
	burstRatio := flag.Float64("burst-ratio", 1.25, "largest acceptable ratio of the burst's time (kill to every VM of it running again, ACTIVE) to Nova's alone (the same VMs hard-rebooted through Nova at once, measured in the same run)")
	flag.Parse()
	if *kills < 1 {
		fmt.Fprintln(os.Stderr, "guests: -kills must be at least 1")
		os.Exit(2)
	}
	abs, err := filepath.Abs(*bin)
	if err != nil {
		fmt.Fprintln(os.Stderr, "guests:", err)
		os.Exit(2)
	}
	if err := run(abs, *kills, *target, *decision, *rssTarget, *burst, *burstRatio); err != nil {
		fmt.Fprintln(os.Stderr, "guests:", err)
		os.Exit(1)
	}
}

var uptimeRE = regexp.MustCompile(`uptime=([0-9.]+)`)

func run(bin string, kills int, target, decisionTarget time.Duration, rssTarget, burst int, burstRatio float64) (err error) {
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Minute)
	defer cancel()
	dir, err := os.MkdirTemp("", "computeha-bench-guests-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	// Killed again and again, the guest must be restarted where it is each time: no move.
	env, err := e2e.Up(ctx, e2e.Options{Dir: dir, Bin: bin, Guests: true, Computes: 2, Controllers: 2, Log: os.Stderr, MaxRestarts: 1000})
	if err != nil {
		return err
	}
	defer env.Down(context.Background())
	// Runs before Down: a failed run keeps the nodes' logs.
	defer func() {
		if err != nil {
			if kept, kerr := env.KeepLogs(filepath.Join(os.TempDir(), "computeha-bench-guests-failed-"+time.Now().Format("20060102-150405"))); kerr == nil {
				fmt.Fprintln(os.Stderr, "guests: logs kept in", kept)
			}
		}
	}()
	image, err := env.Admin.ImageID(ctx, nova.GuestImage)
	if err != nil {
		return err
	}
	id, err := env.Admin.BootWith(ctx, nova.BootOpts{
		Name: "bench-guest", Host: "cmp1", Flavor: nova.FlavorGuest, Image: image,
		Metadata: map[string]string{config.DefaultMetadataKey: "true"},
	})
	if err != nil {
		return err
	}
	if _, err := env.Admin.Wait(ctx, id); err != nil {
		return err
	}
	if _, err := env.WaitConsole(ctx, id, "up boot=1 ", 2*time.Minute); err != nil {
		return err
	}
	pid, err := e2e.InstancemonPID("cmp1")
	if err != nil {
		return err
	}
	sctx, stop := context.WithCancel(ctx)
	defer stop()
	mem := e2e.SampleMemory(sctx, pid, 200*time.Millisecond)
	var back, boots, decided []time.Duration
	for i := 1; i <= kills; i++ {
		killed := time.Now()
		if err := env.KillQemu(ctx, "cmp1", id); err != nil {
			return err
		}
		at, err := env.WaitRunning(ctx, "cmp1", id, 2*time.Minute)
		if err != nil {
			return err
		}
		back = append(back, at.Sub(killed))
		line, err := env.WaitConsole(ctx, id, fmt.Sprintf("up boot=%d ", i+1), 2*time.Minute)
		if err != nil {
			return err
		}
		if m := uptimeRE.FindStringSubmatch(line); m != nil {
			if s, err := strconv.ParseFloat(m[1], 64); err == nil {
				boots = append(boots, time.Duration(s*float64(time.Second)))
			}
		}
		// The incident's failure is recorded when the daemon starts the restart.
		evs, err := env.VMFailures(ctx, "cmp1")
		if err != nil {
			return err
		}
		for _, ev := range evs {
			at, err := time.Parse(time.RFC3339Nano, ev.Time)
			if err == nil && !at.Before(killed) {
				decided = append(decided, at.Sub(killed))
				break
			}
		}
		fmt.Printf("kill %d: running again and ACTIVE after %s; guest up %s into its kernel's boot\n",
			i, back[len(back)-1].Round(10*time.Millisecond), lastOr(boots))
		time.Sleep(3 * time.Second)
	}
	var burstTook, novaAlone time.Duration
	if burst > 0 {
		if burstTook, novaAlone, err = crashTogether(ctx, env, image, burst); err != nil {
			return err
		}
	}
	peak, err := mem.Peaks()
	if err != nil {
		return fmt.Errorf("the instance monitor's memory: %w", err)
	}
	ok := true
	check := func(name string, got, want time.Duration) {
		verdict := "met"
		if got > want {
			verdict, ok = "MISSED", false
		}
		fmt.Printf("  %-58s %8s  target <= %s  %s\n", name, got.Round(10*time.Millisecond), want, verdict)
	}
	fmt.Printf("\nqemu of an HA VM killed %d times (TCG or KVM as the lab runs it):\n", kills)
	check("killed -> same VM running again, ACTIVE (median)", median(back), target)
	fmt.Printf("  %-58s %8s\n", "killed -> same VM running again, ACTIVE (worst)", slices.Max(back).Round(10*time.Millisecond))
	if len(decided) == len(back) {
		check("killed -> the daemon starts the restart (median)", median(decided), decisionTarget)
		fmt.Printf("  %-58s %8s\n", "killed -> the daemon starts the restart (worst)", slices.Max(decided).Round(10*time.Millisecond))
	} else {
		fmt.Printf("  the history has %d restarts for %d kills\n", len(decided), len(back))
		ok = false
	}
	if len(boots) > 0 {
		fmt.Printf("  %-58s %8s  (not counted above: after ACTIVE)\n", "then the guest's own boot to its init (median)", median(boots).Round(10*time.Millisecond))
	}
	if burst > 0 {
		verdict := "met"
		ratio := burstTook.Seconds() / novaAlone.Seconds()
		if ratio > burstRatio {
			verdict, ok = "MISSED", false
		}
		fmt.Printf("  %-58s %8s\n", fmt.Sprintf("%d HA VMs' qemu killed together -> all running again, ACTIVE", burst), burstTook.Round(10*time.Millisecond))
		fmt.Printf("  %-58s %8s  ratio %.2f, target <= %.2f  %s\n", "the same VMs hard-rebooted through Nova alone, at once", novaAlone.Round(10*time.Millisecond), ratio, burstRatio, verdict)
	}
	verdict := "met"
	if peak.HWM > int64(rssTarget)*1024 {
		verdict, ok = "MISSED", false
	}
	fmt.Printf("  %-58s %6.1f MB  target <= %d MB  %s (anon %.1f, file %.1f)\n", "instance monitor peak RSS",
		float64(peak.HWM)/1024, rssTarget, verdict, float64(peak.Anon)/1024, float64(peak.File)/1024)
	if !ok {
		return fmt.Errorf("a target was missed")
	}
	return nil
}

func lastOr(d []time.Duration) string {
	if len(d) == 0 {
		return "?"
	}
	return d[len(d)-1].Round(10 * time.Millisecond).String()
}

func median(d []time.Duration) time.Duration {
	s := slices.Sorted(slices.Values(d))
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// crashTogether boots n HA guests on cmp2, kills all their qemu processes at once, and returns
// how long it took until every one of them ran again there, ACTIVE: the monitor must report
// them all (none lost in the burst) and the daemon restart them all. The reference, measured
// first, is Nova alone doing the same work: the n guests hard-rebooted through its API at once.
func crashTogether(ctx context.Context, env *e2e.Env, image string, n int) (took, novaAlone time.Duration, err error) {
	var ids []string
	for i := range n {
		id, err := env.Admin.BootWith(ctx, nova.BootOpts{
			Name: fmt.Sprintf("burst-%02d", i), Host: "cmp2", Flavor: nova.FlavorGuest, Image: image,
			Metadata: map[string]string{config.DefaultMetadataKey: "true"},
		})
		if err != nil {
			return 0, 0, err
		}
		ids = append(ids, id)
	}
	for _, id := range ids {
		if _, err := env.WaitRunning(ctx, "cmp2", id, 5*time.Minute); err != nil {
			return 0, 0, err
		}
	}
	fmt.Printf("%d guests running on cmp2; hard-rebooting them all through Nova at once (the reference)\n", n)
	asked := time.Now()
	errs := make(chan error, n)
	for _, id := range ids {
		go func() { errs <- env.Nova.Reboot(ctx, id, true) }()
	}
	for range ids {
		if err := <-errs; err != nil {
			return 0, 0, fmt.Errorf("hard reboot through Nova: %w", err)
		}
	}
	for _, id := range ids {
		if _, err := env.WaitRunning(ctx, "cmp2", id, 5*time.Minute); err != nil {
			return 0, 0, err
		}
	}
	novaAlone = time.Since(asked)
	fmt.Printf("all %d running again, ACTIVE, %s after Nova was asked\n", n, novaAlone.Round(10*time.Millisecond))
	// The guests boot again after the reboot: let them settle as before the kill.
	time.Sleep(10 * time.Second)
	fmt.Printf("killing every qemu of the %d guests at once\n", n)
	killed := time.Now()
	if err := env.KillAllQemu(ctx, "cmp2"); err != nil {
		return 0, 0, err
	}
	for _, id := range ids {
		if _, err := env.WaitRunning(ctx, "cmp2", id, 5*time.Minute); err != nil {
			return 0, 0, err
		}
	}
	took = time.Since(killed)
	fmt.Printf("all %d running again, ACTIVE, %s after the kill\n", n, took.Round(10*time.Millisecond))
	return took, novaAlone, nil
}
