// Command recovery measures computeha's main job on real parts: a compute host with N HA VMs
// is powered off through its BMC, and the time to fencing, to the first evacuation request
// and to every HA VM ACTIVE elsewhere is taken, over several runs, for each size asked. After
// each run it measures Nova's own limit on this machine (force another host down, send every
// evacuation at once: the reference path, with no detection or fencing), and prints the
// median evacuation phase (first request to all ACTIVE) as a fraction of the references'
// median: each reference runs right after a run, in the same cloud, on the host the next run
// fails (powered off and on after it, so that it is back for that run), so the machine's
// drift over the bench weighs on both sides alike. It also prints the time from the
// fencing confirmed to the first request (the first failure after the daemon started
// included), and the daemon's peak memory. Every figure is compared with its target, and a
// missed target is said so and makes the exit status 1.
//
//	go run ./test/bench/recovery -bin bin -sizes 10,50,100 -runs 3,2,1
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/computeha/computeha/internal/evacstate"
	"github.com/computeha/computeha/test/e2e"
)

func main() {
	bin := flag.String("bin", "bin", "directory of computeha and its agents (make build)")
	sizes := flag.String("sizes", "10,50,100", "HA VMs on the failing host, one size per comma")
	runs := flag.String("runs", "3,2,1", "power-loss runs per size, one per size (or one for all)")
	ratio := flag.Float64("ratio", 0.8, "largest acceptable evacuation phase (first request to all ACTIVE), as a fraction of Nova alone")
	confirm := flag.Duration("confirm", 500*time.Millisecond, "largest acceptable time from the fencing confirmed to the first request, in any run")
	rssTarget := flag.Int("rss-mb", 30, "largest acceptable peak RSS of the evacuation daemon after the largest size, in MB")
	keep := flag.String("keep", "/tmp/computeha-bench-recovery-failed", "where a failed or missed run keeps the lab's, the daemon's and Nova's logs (a directory per run)")
	flag.Parse()
	ns, rs, err := parseSizes(*sizes, *runs)
	if err != nil {
		fmt.Fprintln(os.Stderr, "recovery:", err)
		os.Exit(2)
	}
	if err := run(*bin, ns, rs, *ratio, *confirm, *rssTarget, *keep); err != nil {
		fmt.Fprintln(os.Stderr, "recovery:", err)
		os.Exit(1)
	}
}

func parseSizes(sizes, runs string) ([]int, []int, error) {
	var ns, rs []int
	for f := range strings.SplitSeq(sizes, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 {
			return nil, nil, fmt.Errorf("-sizes: %q is not a positive number of VMs", f)
		}
		ns = append(ns, n)
	}
	for f := range strings.SplitSeq(runs, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 {
			return nil, nil, fmt.Errorf("-runs: %q is not a positive number of runs", f)
		}
		rs = append(rs, n)
	}
	if len(rs) == 1 {
		for len(rs) < len(ns) {
			rs = append(rs, rs[0])
		}
	}
	if len(rs) != len(ns) {
		return nil, nil, fmt.Errorf("-runs has %d counts for %d sizes", len(rs), len(ns))
	}
	return ns, rs, nil
}

func median(d []time.Duration) time.Duration {
	s := slices.Sorted(slices.Values(d))
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func r10(d time.Duration) time.Duration { return d.Round(10 * time.Millisecond) }

// figures are one size's measurements.
type figures struct {
	n int
	// From the power-off: fenced, first request, all HA VMs ACTIVE.
	fenced, started, active []time.Duration
	// phase is the evacuation phase, first request to all ACTIVE; toRequest the time from the
	// fencing confirmed (the daemon's record) to its first request.
	phase, toRequest []time.Duration
	// refs are Nova alone's times, one after each run.
	refs []time.Duration
}

func run(bin string, sizes, runs []int, ratioTarget float64, confirmTarget time.Duration, rssTarget int, keep string) (err error) {
	abs, err := filepath.Abs(bin)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 150*time.Minute)
	defer cancel()
	env, err := e2e.Up(ctx, e2e.Options{Bin: abs})
	if err != nil {
		return err
	}
	defer env.Down(context.Background())
	defer func() { env.KeepFailedRun("recovery", keep, err) }()
	hosts := env.Computes()
	// Nova's first evacuations after it starts are several times slower than later ones (its
	// services load code and caches on first use): one untimed recovery warms it, for the
	// measured runs and the reference alike. The daemon is restarted after it, so that its
	// own first failure after a start is measured, warmed by nothing but itself.
	if err := warmNova(ctx, env, hosts[len(hosts)-1]); err != nil {
		return fmt.Errorf("warming Nova: %w", err)
	}
	if err := env.RestartEvacuator(ctx); err != nil {
		return err
	}
	mem, err := sampleEvacd(ctx, env)
	if err != nil {
		return err
	}

	var all []*figures
	k := 0
	for si, n := range sizes {
		f := &figures{n: n}
		all = append(all, f)
		for i := range runs[si] {
			host := hosts[k%len(hosts)]
			k++
			tl, err := powerLoss(ctx, env, host, n, 15*time.Minute)
			if err != nil {
				return fmt.Errorf("%d VMs, run %d on %s: %w", n, i+1, host, err)
			}
			confirmed, first, err := env.ConfirmToRequest(ctx, host, tl.Fault)
			if err != nil {
				return err
			}
			started := first.Sub(tl.Fault)
			f.fenced, f.started, f.active = append(f.fenced, tl.Fenced), append(f.started, started), append(f.active, tl.AllActive)
			f.phase, f.toRequest = append(f.phase, tl.AllActive-started), append(f.toRequest, first.Sub(confirmed))
			fmt.Printf("%d VMs, run %d (%s): fenced %s, confirmed %s, first request %s, all ACTIVE %s\n", n, i+1, host,
				r10(tl.Fenced), r10(confirmed.Sub(tl.Fault)), r10(started), r10(tl.AllActive))
			if _, err := env.PowerOn(ctx, host, 10*time.Minute, nil); err != nil {
				return err
			}
			// The reference, on the host the next run fails (so that it is back by then).
			ref := hosts[k%len(hosts)]
			d, err := reference(ctx, env, ref, n)
			if err != nil {
				return fmt.Errorf("%d VMs, reference %d on %s: %w", n, i+1, ref, err)
			}
			f.refs = append(f.refs, d)
			fmt.Printf("%d VMs, reference %d (%s): Nova alone %s\n", n, i+1, ref, r10(d))
		}
	}
	peaks, err := mem.Peaks()
	if err != nil {
		return fmt.Errorf("the evacuation daemon's memory: %w", err)
	}

	var missed []string
	for _, f := range all {
		fmt.Printf("\nRecovery of %d HA VMs after a power loss, %d runs (lab: 3 controllers, %d computes; real Nova, fake driver):\n", f.n, len(f.active), len(hosts))
		line := func(what string, d []time.Duration) {
			fmt.Printf("  %-46s  median %8s  worst %8s\n", what, r10(median(d)), r10(slices.Max(d)))
		}
		line("power off -> fenced", f.fenced)
		line("power off -> first request", f.started)
		line("power off -> all HA VMs ACTIVE", f.active)
		line("fencing confirmed -> first request", f.toRequest)
		line("evacuation phase (first request -> all ACTIVE)", f.phase)
		r := float64(median(f.phase)) / float64(median(f.refs))
		verdict := "met"
		if r > ratioTarget {
			verdict = "MISSED"
			missed = append(missed, fmt.Sprintf("%d VMs: evacuation phase %.2f x Nova alone > %.2f", f.n, r, ratioTarget))
		}
		line(fmt.Sprintf("Nova alone (force down, %d evacuations at once)", f.n), f.refs)
		fmt.Printf("  target: median evacuation phase <= %.2f x Nova alone's median: %.2f, %s\n", ratioTarget, r, verdict)
		verdict = "met"
		if w := slices.Max(f.toRequest); w > confirmTarget {
			verdict = "MISSED"
			missed = append(missed, fmt.Sprintf("%d VMs: fencing confirmed -> first request %s > %s", f.n, r10(w), confirmTarget))
		}
		fmt.Printf("  target: fencing confirmed -> first request <= %s in every run: %s\n", confirmTarget, verdict)
	}
	verdict := "met"
	if peaks.HWM > int64(rssTarget)*1024 {
		verdict = "MISSED"
		missed = append(missed, fmt.Sprintf("daemon peak RSS %.1f MB > %d MB", float64(peaks.HWM)/1024, rssTarget))
	}
	fmt.Printf("\nevacuation daemon peak RSS (VmHWM) after %d VMs: %.1f MB (sampled every 2 s: at most %.1f MB anonymous, %.1f MB of files: the binary's pages, shared with every computeha process); target <= %d MB: %s\n",
		slices.Max(sizes), float64(peaks.HWM)/1024, float64(peaks.Anon)/1024, float64(peaks.File)/1024, rssTarget, verdict)
	if len(missed) > 0 {
		fmt.Printf("targets MISSED: %s\n", strings.Join(missed, "; "))
		return errors.New("targets missed")
	}
	fmt.Println("all targets met")
	return nil
}

// reference measures Nova alone: n VMs on host, the service forced down,
// every evacuation sent at once, until all are ACTIVE elsewhere. Then host is powered off
// and on again: its nova-compute must restart to finish the evacuations Nova began (and the
// daemon must find nothing left to move there), and it comes back up and enabled.
func reference(ctx context.Context, env *e2e.Env, host string, n int) (time.Duration, error) {
	d, err := novaAlone(ctx, env, host, n)
	if err != nil {
		return 0, err
	}
	off := time.Now()
	if _, err := env.Lab.Power(ctx, host, "off"); err != nil {
		return 0, err
	}
	if _, err := env.WaitPhase(ctx, host, evacstate.Done, off, 5*time.Minute); err != nil {
		return 0, fmt.Errorf("after the reference: %w", err)
	}
	if _, err := env.PowerOn(ctx, host, 10*time.Minute, nil); err != nil {
		return 0, fmt.Errorf("after the reference: %w", err)
	}
	return d, nil
}

// novaAlone times n evacuations from host sent to Nova at once after forcing host down.
func novaAlone(ctx context.Context, env *e2e.Env, host string, n int) (time.Duration, error) {
	if err := env.Admin.DeleteAll(ctx); err != nil {
		return 0, err
	}
	vms, err := env.Boot(ctx, host, n, 0)
	if err != nil {
		return 0, err
	}
	svc, err := env.Nova.FindComputeService(ctx, host)
	if err != nil {
		return 0, err
	}
	start := time.Now()
	if _, err := env.Nova.ForceDown(ctx, svc.ID); err != nil {
		return 0, err
	}
	var wg sync.WaitGroup
	errs := make(chan error, len(vms))
	for _, v := range vms {
		wg.Go(func() {
			if err := env.Nova.Evacuate(ctx, v.ID, ""); err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return 0, err
	}
	for {
		states, err := env.States(ctx)
		if err == nil {
			done := 0
			for _, v := range vms {
				if s := states[v.ID]; s.Host != host && s.Status == "ACTIVE" && s.TaskState == "" {
					done++
				}
			}
			if done == len(vms) {
				return time.Since(start), nil
			}
		}
		if ctx.Err() != nil {
			return 0, ctx.Err()
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// sampleEvacd samples the evacuation daemon's memory every 2 s until ctx ends.
func sampleEvacd(ctx context.Context, env *e2e.Env) (*e2e.MemorySampler, error) {
	_, pid, err := env.EvacuatorPID(ctx)
	if err != nil {
		return nil, err
	}
	n, err := strconv.Atoi(pid)
	if err != nil {
		return nil, fmt.Errorf("evacuator pid %q: %w", pid, err)
	}
	return e2e.SampleMemory(ctx, n, 2*time.Second), nil
}

// warmNova runs one untimed power-loss recovery of a few VMs on host.
func warmNova(ctx context.Context, env *e2e.Env, host string) error {
	const n = 4
	tl, err := powerLoss(ctx, env, host, n, 10*time.Minute)
	if err != nil {
		return err
	}
	fmt.Printf("Nova warmed by one untimed recovery of %d VMs on %s (all ACTIVE after %s)\n", n, host, r10(tl.AllActive))
	_, err = env.PowerOn(ctx, host, 10*time.Minute, nil)
	return err
}

// powerLoss boots n HA VMs on host alone, powers host off and waits up to limit for its
// recovery, which must have broken no rule and ended with every HA VM ACTIVE.
func powerLoss(ctx context.Context, env *e2e.Env, host string, n int, limit time.Duration) (*e2e.Timeline, error) {
	if err := env.Admin.DeleteAll(ctx); err != nil {
		return nil, err
	}
	vms, err := env.Boot(ctx, host, n, 0)
	if err != nil {
		return nil, err
	}
	tl, err := env.PowerLoss(ctx, host, vms, limit, nil)
	if err != nil {
		return nil, err
	}
	if len(tl.Violations) > 0 || tl.AllActive == 0 {
		return nil, errors.New(tl.Summary())
	}
	return tl, nil
}
