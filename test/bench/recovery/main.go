// Command recovery measures computeha's main job on real parts: a compute
// host with N HA VMs is powered off through its BMC, and the time to
// fencing, to the first evacuation and to every HA VM ACTIVE elsewhere is
// taken, over several runs, for each size asked. In the same run it
// measures Nova's own limit on this machine (force the source down, send
// every evacuation at once: the reference path, with no detection or
// fencing) and prints the ratio, where the daemon's time went (from its
// log), and the daemon's peak memory. Every figure is compared with its
// target, and a missed target is said so and makes the exit status 1.
//
//	go run ./test/bench/recovery -bin bin -sizes 10,100 -targets 20s,60s -runs 2
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

	"github.com/computeha/computeha/test/e2e"
)

func main() {
	bin := flag.String("bin", "bin", "directory of computeha and its agents (make build)")
	sizes := flag.String("sizes", "10,100", "HA VMs on the failing host, one size per comma")
	targets := flag.String("targets", "20s,60s", "largest acceptable median, power off to all HA VMs ACTIVE, one per size")
	runs := flag.Int("runs", 2, "power-loss runs per size")
	rssTarget := flag.Int("rss-mb", 40, "largest acceptable peak RSS of the evacuation daemon, in MB")
	flag.Parse()
	ns, ts, err := parseSizes(*sizes, *targets)
	if err == nil && *runs < 1 {
		err = errors.New("-runs must be at least 1")
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "recovery:", err)
		os.Exit(2)
	}
	if err := run(*bin, ns, ts, *runs, *rssTarget); err != nil {
		fmt.Fprintln(os.Stderr, "recovery:", err)
		os.Exit(1)
	}
}

func parseSizes(sizes, targets string) ([]int, []time.Duration, error) {
	var ns []int
	for f := range strings.SplitSeq(sizes, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 {
			return nil, nil, fmt.Errorf("-sizes: %q is not a positive number of VMs", f)
		}
		ns = append(ns, n)
	}
	var ts []time.Duration
	for f := range strings.SplitSeq(targets, ",") {
		d, err := time.ParseDuration(strings.TrimSpace(f))
		if err != nil || d <= 0 {
			return nil, nil, fmt.Errorf("-targets: %q is not a positive duration", f)
		}
		ts = append(ts, d)
	}
	if len(ts) != len(ns) {
		return nil, nil, fmt.Errorf("-targets has %d durations for %d sizes", len(ts), len(ns))
	}
	return ns, ts, nil
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
	n                       int
	target                  time.Duration
	fenced, started, active []time.Duration
	// From the daemon's log, as offsets from the power-off: when its job
	// began (the mark seen), when it sent the evacuations, when it was done.
	jobStart, evacuating, done []time.Duration
	ref                        time.Duration
}

func run(bin string, sizes []int, targets []time.Duration, runs, rssTarget int) error {
	abs, err := filepath.Abs(bin)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Minute)
	defer cancel()
	env, err := e2e.Up(ctx, e2e.Options{Bin: abs})
	if err != nil {
		return err
	}
	defer env.Down(context.Background())
	hosts := env.Computes()

	var all []*figures
	k := 0
	for si, n := range sizes {
		f := &figures{n: n, target: targets[si]}
		all = append(all, f)
		for i := range runs {
			host := hosts[k%len(hosts)]
			k++
			if err := env.Admin.DeleteAll(ctx); err != nil {
				return err
			}
			vms, err := env.Boot(ctx, host, n, 0)
			if err != nil {
				return err
			}
			tl, err := env.PowerLoss(ctx, host, vms, 10*time.Minute, nil)
			if err != nil {
				return err
			}
			if len(tl.Violations) > 0 || tl.AllActive == 0 {
				return fmt.Errorf("%d VMs, run %d on %s: %s", n, i+1, host, tl.Summary())
			}
			fmt.Printf("%d VMs, run %d (%s): %s", n, i+1, host, tl.Summary())
			f.fenced, f.started, f.active = append(f.fenced, tl.Fenced), append(f.started, tl.EvacStart), append(f.active, tl.AllActive)
			if steps, err := env.DaemonSteps(ctx, host, tl.Fault); err == nil {
				var js, ev, dn time.Duration
				for _, s := range steps {
					d := s.Time.Sub(tl.Fault)
					switch {
					case js == 0 && s.Msg == "waiting for fencing to be confirmed":
						js = d
					case ev == 0 && strings.HasPrefix(s.Msg, "evacuating "):
						ev = d
					case dn == 0 && s.Msg == "done":
						dn = d
					}
				}
				fmt.Printf("  daemon: job began %s, evacuations sent from %s, done %s\n", r10(js), r10(ev), r10(dn))
				f.jobStart, f.evacuating, f.done = append(f.jobStart, js), append(f.evacuating, ev), append(f.done, dn)
			} else {
				fmt.Printf("  daemon's log unreadable: %v\n", err)
			}
			if _, err := env.PowerOn(ctx, host, 10*time.Minute, nil); err != nil {
				return err
			}
		}
	}
	// Last, each on its own host: the reference leaves its host forced
	// down with evacuations Nova completes only when that host's
	// nova-compute restarts.
	for i, f := range all {
		if err := env.Admin.DeleteAll(ctx); err != nil {
			return err
		}
		if f.ref, err = reference(ctx, env, hosts[i%len(hosts)], f.n); err != nil {
			return fmt.Errorf("reference path: %w", err)
		}
	}
	rss, err := evacdPeakRSS(ctx, env)
	if err != nil {
		return err
	}

	var missed []string
	for _, f := range all {
		fmt.Printf("\nRecovery of %d HA VMs after a power loss, %d runs (lab: 3 controllers, %d computes; real Nova, fake driver):\n", f.n, len(f.active), len(hosts))
		line := func(what string, d []time.Duration) {
			if len(d) == 0 || slices.Contains(d, 0) {
				fmt.Printf("  %-42s  not measured in every run\n", what)
				return
			}
			fmt.Printf("  %-42s  median %8s  worst %8s\n", what, r10(median(d)), r10(slices.Max(d)))
		}
		line("power off -> fenced", f.fenced)
		line("power off -> evacuation started", f.started)
		line("power off -> all HA VMs ACTIVE", f.active)
		line("daemon: power off -> job began", f.jobStart)
		line("daemon: power off -> evacuations sent", f.evacuating)
		line("daemon: power off -> done", f.done)
		fmt.Printf("  reference (force down + %d evacuations at once, no detection): %s; evacuation phase / reference: %.2f\n",
			f.n, r10(f.ref), float64(median(f.active)-median(f.started))/float64(f.ref))
		verdict := "met"
		if m := median(f.active); m > f.target {
			verdict = "MISSED"
			missed = append(missed, fmt.Sprintf("%d VMs: all ACTIVE median %s > %s", f.n, r10(m), f.target))
		}
		fmt.Printf("  target: all HA VMs ACTIVE <= %s (median): %s\n", f.target, verdict)
	}
	verdict := "met"
	if rss > int64(rssTarget)*1024 {
		verdict = "MISSED"
		missed = append(missed, fmt.Sprintf("daemon peak RSS %.1f MB > %d MB", float64(rss)/1024, rssTarget))
	}
	fmt.Printf("\nevacuation daemon peak RSS (VmHWM): %.1f MB; target <= %d MB: %s\n", float64(rss)/1024, rssTarget, verdict)
	if len(missed) > 0 {
		fmt.Printf("targets MISSED: %s\n", strings.Join(missed, "; "))
		return errors.New("targets missed")
	}
	fmt.Println("all targets met")
	return nil
}

// reference measures Nova alone: n VMs on host, the service forced down,
// every evacuation sent at once, until all are ACTIVE elsewhere.
func reference(ctx context.Context, env *e2e.Env, host string, n int) (time.Duration, error) {
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

// evacdPeakRSS reads VmHWM of the evacuation daemon.
func evacdPeakRSS(ctx context.Context, env *e2e.Env) (int64, error) {
	_, pid, err := env.EvacuatorPID(ctx)
	if err != nil {
		return 0, err
	}
	b, err := os.ReadFile("/proc/" + pid + "/status")
	if err != nil {
		return 0, err
	}
	for line := range strings.Lines(string(b)) {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmHWM:" {
			return strconv.ParseInt(f[1], 10, 64)
		}
	}
	return 0, errors.New("no VmHWM")
}
