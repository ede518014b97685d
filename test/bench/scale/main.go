// Command scale runs computeha's main job on a lab the size of a small cloud: 3 controllers
// and (by default) 24 pacemaker-remote computes with fake-driver nova-computes under a real
// Nova, 1000 VMs in the cloud, and 2 computes carrying 100 HA VMs each powered off together
// through their BMCs. It prints the detection, fencing and recovery times, the evacuation
// daemon's memory and CPU, and the CPU of every other part (Pacemaker and Corosync on the
// controllers, pacemaker-remoted and nova-compute on the computes, Nova's control plane), idle
// and during the recovery, with how busy the machine was: what it shows is where this
// machine's limit is and which part reaches it first.
//
// The recovery must break no rule (every HA VM ACTIVE once elsewhere in its segment, no
// evacuation before its host's fencing) and end within -limit, and the daemon's peak RSS must
// stay within its target; a miss is said so and makes the exit status 1.
//
//	go run ./test/bench/scale -bin bin -computes 24 -vms 1000 -failed 2 -ha 100
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/computeha/computeha/test/e2e"
)

func main() {
	bin := flag.String("bin", "bin", "directory of computeha and its agents (make build)")
	computes := flag.Int("computes", 24, "compute nodes in the lab")
	vms := flag.Int("vms", 1000, "VMs in the cloud, the failing hosts' included")
	failed := flag.Int("failed", 2, "computes powered off together")
	ha := flag.Int("ha", 100, "HA VMs on each failing compute (its only VMs)")
	idle := flag.Duration("idle", time.Minute, "how long the idle load is measured before the fault")
	limit := flag.Duration("limit", 40*time.Minute, "longest acceptable time from the power-off to every HA VM ACTIVE")
	rssTarget := flag.Int("rss-mb", 30, "largest acceptable peak RSS of the evacuation daemon, in MB")
	keep := flag.String("keep", "/tmp/computeha-bench-scale-failed", "where a failed or missed run keeps the lab's, the daemon's and Nova's logs")
	flag.Parse()
	p := params{computes: *computes, vms: *vms, failed: *failed, ha: *ha, idle: *idle, limit: *limit, rssMB: *rssTarget, keep: *keep}
	if err := p.check(); err != nil {
		fmt.Fprintln(os.Stderr, "scale:", err)
		os.Exit(2)
	}
	if err := run(*bin, p); err != nil {
		fmt.Fprintln(os.Stderr, "scale:", err)
		os.Exit(1)
	}
}

type params struct {
	computes, vms, failed, ha int
	idle, limit               time.Duration
	rssMB                     int
	keep                      string
}

func (p params) check() error {
	switch {
	case p.computes < 3 || p.computes > 64:
		return fmt.Errorf("-computes %d: the lab runs 3 to 64 computes", p.computes)
	case p.failed < 1 || p.failed >= p.computes:
		return fmt.Errorf("-failed %d: between 1 and %d (some computes must survive)", p.failed, p.computes-1)
	case p.ha < 1:
		return fmt.Errorf("-ha %d: at least one HA VM per failing compute", p.ha)
	case p.vms < p.failed*p.ha:
		return fmt.Errorf("-vms %d: fewer than the %d HA VMs of the failing computes", p.vms, p.failed*p.ha)
	case p.idle < 10*time.Second:
		return fmt.Errorf("-idle %s: at least 10s", p.idle)
	}
	return nil
}

func r10(d time.Duration) time.Duration { return d.Round(10 * time.Millisecond) }

func run(bin string, p params) (err error) {
	abs, err := filepath.Abs(bin)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Hour)
	defer cancel()
	t0 := time.Now()
	env, err := e2e.Up(ctx, e2e.Options{Bin: abs, Computes: p.computes, Log: os.Stderr})
	if err != nil {
		return err
	}
	defer env.Down(context.Background())
	defer func() { env.KeepFailedRun("scale", p.keep, err) }()
	fmt.Printf("lab (3 controllers, %d computes) and Nova up and settled in %s\n", p.computes, r10(time.Since(t0)))

	hosts := env.Computes()
	failing, others := hosts[:p.failed], hosts[p.failed:]
	t := time.Now()
	onFailing, total, err := boot(ctx, env, failing, others, p)
	if err != nil {
		return fmt.Errorf("booting: %w", err)
	}
	fmt.Printf("%d VMs booted in %s (%d HA VMs on %s; the others on %d computes, half of them HA)\n",
		total, r10(time.Since(t)), len(onFailing), strings.Join(failing, ", "), len(others))

	cl, err := newClassifier(ctx, env)
	if err != nil {
		return err
	}
	smp := &sampler{c: cl}
	sctx, stopSampling := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() { smp.run(sctx, 2*time.Second) })
	defer func() { stopSampling(); wg.Wait() }()

	fmt.Printf("measuring the idle load for %s\n", p.idle)
	time.Sleep(p.idle)
	fmt.Printf("powering off %s:\n", strings.Join(failing, ", "))
	tl, err := env.PowerLossHosts(ctx, failing, onFailing, p.limit, os.Stdout)
	if err != nil {
		return err
	}
	stopSampling()
	wg.Wait()
	idleFrom, idleTo := smp.around(tl.Fault.Add(-p.idle)), smp.around(tl.Fault)
	end := tl.Fault.Add(p.limit)
	if tl.AllActive > 0 {
		end = tl.Fault.Add(tl.AllActive)
	}
	recTo := smp.around(end)

	var missed []string
	fmt.Printf("\nTwo computes of %d, %d HA VMs, powered off together in a cloud of %d VMs (real Nova, fake driver; 2 cores):\n",
		p.computes, len(onFailing), total)
	fmt.Printf("  %-52s %s\n", "power off -> lost (Pacemaker, both hosts)", r10(tl.Lost))
	fmt.Printf("  %-52s %s\n", "power off -> fenced (Pacemaker, both hosts)", r10(tl.Fenced))
	for _, h := range failing {
		confirmed, first, err := env.ConfirmToRequest(ctx, h, tl.Fault)
		if err != nil {
			missed = append(missed, err.Error())
			continue
		}
		fmt.Printf("  %-52s %s (fencing confirmed %s, first request %s after it)\n", h+": power off -> first evacuation request",
			r10(first.Sub(tl.Fault)), r10(confirmed.Sub(tl.Fault)), r10(first.Sub(confirmed)))
	}
	fmt.Printf("  %-52s %s\n", "power off -> every HA VM ACTIVE elsewhere", r10(tl.AllActive))
	if tl.Failed > 0 {
		fmt.Printf("  evacuations Nova failed and the daemon retried: %d\n", tl.Failed)
	}
	switch {
	case len(tl.Violations) > 0:
		missed = append(missed, fmt.Sprintf("%d rules broken:\n  %s", len(tl.Violations), strings.Join(tl.Violations, "\n  ")))
	case tl.AllActive == 0:
		missed = append(missed, fmt.Sprintf("not every HA VM ACTIVE within %s", p.limit))
	default:
		fmt.Printf("  every HA VM ACTIVE once on a surviving compute; nothing evacuated before its host's fencing: met\n")
	}

	fmt.Printf("\nCPU (%% of one core; the machine has %d) idle for %s, then from the power-off to every HA VM ACTIVE:\n", cores(), r10(idleTo.at.Sub(idleFrom.at)))
	idleUse, recUse := idleFrom.use(idleTo), idleTo.use(recTo)
	for _, g := range groups {
		fmt.Printf("  %-52s idle %6.1f%%  recovery %6.1f%%\n", g, idleUse[g], recUse[g])
	}
	fmt.Printf("  %-52s idle %6.1f%%  recovery %6.1f%%\n", "the whole machine", idleUse[machine], recUse[machine])
	if g, busiest := smp.busiest(tl.Fault, end, 10*time.Second); g > 0 {
		fmt.Printf("  busiest 10 s of the recovery: the machine %.0f%% busy, from %s after the power-off\n", g*100, r10(busiest))
	}
	top := ""
	best := 0.0
	for _, g := range groups {
		if recUse[g] > best {
			top, best = g, recUse[g]
		}
	}
	fmt.Printf("  the largest share during the recovery: %s (%.1f%% of one core)\n", top, best)

	rss, hwm, anon, file, err := smp.evacdMemory()
	if err != nil {
		return err
	}
	verdict := "met"
	if hwm > int64(p.rssMB)*1024 {
		verdict = "MISSED"
		missed = append(missed, fmt.Sprintf("daemon peak RSS %.1f MB > %d MB", float64(hwm)/1024, p.rssMB))
	}
	fmt.Printf("\nevacuation daemon RSS %.1f MB, peak (VmHWM) %.1f MB (sampled every 2 s: at most %.1f MB anonymous, %.1f MB of files); target <= %d MB: %s\n",
		float64(rss)/1024, float64(hwm)/1024, float64(anon)/1024, float64(file)/1024, p.rssMB, verdict)
	if len(missed) > 0 {
		fmt.Printf("targets MISSED: %s\n", strings.Join(missed, "; "))
		return errors.New("targets missed")
	}
	fmt.Println("all targets met")
	return nil
}

// boot fills the cloud: p.ha HA VMs on each failing host, and the rest of p.vms spread over
// the others, half HA. It returns the failing hosts' VMs and how many VMs it booted.
func boot(ctx context.Context, env *e2e.Env, failing, others []string, p params) ([]e2e.VM, int, error) {
	type job struct {
		host string
		n, m int
	}
	var jobs []job
	for _, h := range failing {
		jobs = append(jobs, job{h, p.ha, 0})
	}
	rest := p.vms - len(failing)*p.ha
	for i, h := range others {
		k := rest / len(others)
		if i < rest%len(others) {
			k++
		}
		jobs = append(jobs, job{h, k / 2, k - k/2})
	}
	var (
		mu    sync.Mutex
		out   []e2e.VM
		total int
		errs  []error
		wg    sync.WaitGroup
		slots = make(chan struct{}, 4) // hosts booting at once: Nova on 2 cores builds some 10 VMs a second
	)
	for _, j := range jobs {
		wg.Go(func() {
			slots <- struct{}{}
			defer func() { <-slots }()
			vms, err := env.BootMany(ctx, j.host, j.n, j.m, 15*time.Minute)
			mu.Lock()
			defer mu.Unlock()
			total += len(vms)
			if err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", j.host, err))
				return
			}
			if slices.Contains(failing, j.host) {
				out = append(out, vms...)
			}
		})
	}
	wg.Wait()
	sort.Slice(out, func(a, b int) bool { return out[a].Name < out[b].Name })
	return out, total, errors.Join(errs...)
}
