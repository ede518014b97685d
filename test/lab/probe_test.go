//go:build lab

package lab

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"runtime"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/computeha/computeha/internal/hostcheck"
)

// proberIn opens hostcheck's ICMP prober inside the network namespace of the process pid (a
// lab node's holder): a socket belongs to the namespace it was created in, so the probes go
// out on that node's links whatever thread sends them.
func proberIn(t *testing.T, pid int, local netip.Addr) hostcheck.Prober {
	t.Helper()
	runtime.LockOSThread()
	orig, err := os.Open("/proc/thread-self/ns/net")
	if err != nil {
		runtime.UnlockOSThread()
		t.Fatal(err)
	}
	defer orig.Close()
	target, err := os.Open(fmt.Sprintf("/proc/%d/ns/net", pid))
	if err != nil {
		runtime.UnlockOSThread()
		t.Fatal(err)
	}
	defer target.Close()
	if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
		runtime.UnlockOSThread()
		t.Fatalf("setns: %v", err)
	}
	p, perr := hostcheck.NewICMPProber(local)
	if err := unix.Setns(int(orig.Fd()), unix.CLONE_NEWNET); err != nil {
		// The thread stays locked, so it ends with this goroutine instead of serving others
		// from the wrong namespace.
		t.Fatalf("setns back: %v", err)
	}
	runtime.UnlockOSThread()
	if perr != nil {
		t.Fatal(perr)
	}
	t.Cleanup(func() { _ = p.Close() })
	return p
}

// probeRounds probes targets rounds times, one round every interval with a timeout of most
// of it, and counts the rounds each target did not answer.
func probeRounds(ctx context.Context, t *testing.T, p hostcheck.Prober, targets []netip.Addr, rounds int) map[netip.Addr]int {
	t.Helper()
	const interval = 500 * time.Millisecond
	missed := map[netip.Addr]int{}
	for range rounds {
		start := time.Now()
		rctx, cancel := context.WithTimeout(ctx, 400*time.Millisecond)
		res, err := p.Probe(rctx, targets)
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		for _, a := range targets {
			if res[a] != nil {
				missed[a]++
			}
		}
		time.Sleep(interval - time.Since(start))
	}
	return missed
}

// checkProberOnTheLab cuts one compute's tenant link and probes every node's tenant address
// from a controller with hostcheck's prober: the cut node misses every round, and every other
// node answers every round. A silent peer uses up a whole round; the answers of the others
// must still count.
func checkProberOnTheLab(ctx context.Context, t *testing.T, l *Lab, from, cut string) {
	nodes, err := l.Nodes(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var (
		local   netip.Addr
		pid     int
		targets []netip.Addr
		cutAddr netip.Addr
	)
	for _, n := range nodes {
		a, err := netip.ParseAddr(n.Tenant)
		if err != nil {
			t.Fatalf("node %s tenant address %q: %v", n.Name, n.Tenant, err)
		}
		switch n.Name {
		case from:
			local, pid = a, n.HolderPID
			continue
		case cut:
			cutAddr = a
		}
		targets = append(targets, a)
	}
	p := proberIn(t, pid, local)
	if err := l.Cut(ctx, cut, "tenant"); err != nil {
		t.Fatal(err)
	}
	const rounds = 20
	missed := probeRounds(ctx, t, p, targets, rounds)
	if err := l.Heal(ctx, cut, "tenant"); err != nil {
		t.Fatal(err)
	}
	for _, a := range targets {
		want := 0
		if a == cutAddr {
			want = rounds
		}
		if missed[a] != want {
			t.Errorf("%s missed %d of %d rounds while %s's tenant link was cut, want %d", a, missed[a], rounds, cut, want)
		}
	}
	// Healed: everyone answers again (after a round or two for the neighbour to resolve).
	time.Sleep(time.Second)
	if missed := probeRounds(ctx, t, p, targets, 4); len(missed) != 0 {
		t.Errorf("after the heal, rounds missed: %v", missed)
	}
}
