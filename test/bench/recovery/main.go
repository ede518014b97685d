// Command recovery measures computeha's main job on real parts: a compute
// host with N HA VMs is powered off through its BMC, and the time to
// fencing, to the first evacuation and to every HA VM ACTIVE elsewhere is
// taken, over several runs. In the same run it measures Nova's own limit
// on this machine (force the source down, send every evacuation at once:
// the reference path, with no detection or fencing) and prints the ratio,
// and it prints the evacuation daemon's peak memory.
//
//	go run ./test/bench/recovery -bin bin -vms 10 -runs 2
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
	vms := flag.Int("vms", 10, "HA VMs on the failing host")
	runs := flag.Int("runs", 2, "power-loss runs")
	target := flag.Duration("target", 20*time.Second, "largest acceptable median, power off to all HA VMs ACTIVE")
	rssTarget := flag.Int("rss-mb", 40, "largest acceptable peak RSS of the evacuation daemon, in MB")
	flag.Parse()
	if err := run(*bin, *vms, *runs, *target, *rssTarget); err != nil {
		fmt.Fprintln(os.Stderr, "recovery:", err)
		os.Exit(1)
	}
}

func median(d []time.Duration) time.Duration {
	s := slices.Sorted(slices.Values(d))
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func run(bin string, n, runs int, target time.Duration, rssTarget int) error {
	abs, err := filepath.Abs(bin)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Minute)
	defer cancel()
	env, err := e2e.Up(ctx, e2e.Options{Bin: abs})
	if err != nil {
		return err
	}
	defer env.Down(context.Background())
	hosts := env.Computes()

	var fenced, started, active []time.Duration
	for i := range runs {
		host := hosts[i%len(hosts)]
		vms, err := env.Boot(ctx, host, n, 0)
		if err != nil {
			return err
		}
		tl, err := env.PowerLoss(ctx, host, vms, 10*time.Minute, nil)
		if err != nil {
			return err
		}
		if len(tl.Violations) > 0 || tl.AllActive == 0 {
			return fmt.Errorf("run %d on %s: %s", i+1, host, tl.Summary())
		}
		fmt.Printf("run %d (%s): %s", i+1, host, tl.Summary())
		fenced, started, active = append(fenced, tl.Fenced), append(started, tl.EvacStart), append(active, tl.AllActive)
		if _, err := env.PowerOn(ctx, host, 10*time.Minute, nil); err != nil {
			return err
		}
		if err := env.Admin.DeleteAll(ctx); err != nil {
			return err
		}
	}
	ref, err := reference(ctx, env, hosts[0], n)
	if err != nil {
		return fmt.Errorf("reference path: %w", err)
	}
	rss, err := evacdPeakRSS(ctx, env)
	if err != nil {
		return err
	}

	worst := func(d []time.Duration) time.Duration { return slices.Max(d) }
	fmt.Printf("\nRecovery of %d HA VMs after a power loss, %d runs (lab: 3 controllers, %d computes; real Nova, fake driver):\n", n, runs, len(hosts))
	fmt.Printf("  power off -> fenced              median %8s  worst %8s\n", median(fenced).Round(10*time.Millisecond), worst(fenced).Round(10*time.Millisecond))
	fmt.Printf("  power off -> evacuation started  median %8s  worst %8s\n", median(started).Round(10*time.Millisecond), worst(started).Round(10*time.Millisecond))
	fmt.Printf("  power off -> all HA VMs ACTIVE   median %8s  worst %8s\n", median(active).Round(10*time.Millisecond), worst(active).Round(10*time.Millisecond))
	fmt.Printf("  reference (force down + %d evacuations at once, no detection): %s; ratio of the evacuation phase to it: %.2f\n",
		n, ref.Round(10*time.Millisecond), float64(median(active)-median(started))/float64(ref))
	fmt.Printf("  evacuation daemon peak RSS: %.1f MB\n", float64(rss)/1024)
	var missed []string
	if median(active) > target {
		missed = append(missed, fmt.Sprintf("all ACTIVE median %s > %s", median(active).Round(10*time.Millisecond), target))
	}
	if rss > int64(rssTarget)*1024 {
		missed = append(missed, fmt.Sprintf("RSS %d kB > %d MB", rss, rssTarget))
	}
	fmt.Printf("  targets: all ACTIVE <= %s, RSS <= %d MB: ", target, rssTarget)
	if len(missed) > 0 {
		fmt.Println("MISSED")
		return errors.New(strings.Join(missed, "; "))
	}
	fmt.Println("met")
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
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := env.Nova.Evacuate(ctx, v.ID, ""); err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return 0, err
	}
	for {
		states, err := env.Admin.States(ctx)
		if err == nil {
			done := 0
			for _, v := range vms {
				if s := states[v.ID]; s.Host != host && s.Status == "ACTIVE" && s.TaskState == "" {
					done++
				}
			}
			if done == len(vms) {
				break
			}
		}
		if ctx.Err() != nil {
			return 0, ctx.Err()
		}
		time.Sleep(250 * time.Millisecond)
	}
	return time.Since(start), nil
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
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmHWM:" {
			return strconv.ParseInt(f[1], 10, 64)
		}
	}
	return 0, errors.New("no VmHWM")
}
