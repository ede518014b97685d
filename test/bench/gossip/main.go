// Command gossip measures computeha's gossip membership (internal/gossip: memberlist,
// encrypted) at several sizes, every member in this one process on loopback, each with its
// own UDP and TCP sockets, joining through three seeds in waves (-wave members at a time, each
// wave converged, but for 1 % of the members, before the next, as hosts come up over time).
// For each size it measures:
//
//   - the join: from the first member started to all but 1 % of the members knowing every
//     other alive, and to every member knowing every other;
//   - the traffic: bytes sent per second per member over a quiet minute, once the join's
//     gossip has died down (the traffic no longer falling from one window to the next), in
//     packets and on streams, which must stay flat as the size grows (each member probes
//     one other an interval, whatever the size, and exchanges the whole membership, which
//     grows with the size, at an interval growing in proportion);
//   - the detection of a killed member (shut down without a word, as a power loss looks): from
//     the kill to the first member that confirms it dead, and to every member knowing it,
//     median and p99 over the kills;
//   - false positives: with a given share of every member's UDP packets dropped for a while,
//     how many times a member that runs was declared dead by another.
//
// Every figure is printed; a missed target (traffic per member at the largest size more than
// -flat times the smallest size's, or any false positive) is said so and makes the exit
// status 1.
//
//	go run ./test/bench/gossip -sizes 100,500,1000 -kills 10 -loss 0.05 -lossy 10m
package main

import (
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	_ "net/http/pprof"
	"net/netip"
	"os"
	"runtime/debug"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/memberlist"

	"github.com/computeha/computeha/internal/config"
	"github.com/computeha/computeha/internal/gossip"
)

func main() {
	sizes := flag.String("sizes", "100,500,1000", "members, one size per comma")
	kills := flag.Int("kills", 10, "members killed one after the other, per size")
	wave := flag.Int("wave", 50, "members started and joined together, each wave waited for before the next")
	loss := flag.Float64("loss", 0.05, "share of UDP packets dropped during the false-positive watch")
	lossy := flag.Duration("lossy", 10*time.Minute, "how long the false-positive watch lasts, per size")
	quiet := flag.Duration("quiet", time.Minute, "how long the traffic is measured, per size")
	flat := flag.Float64("flat", 1.5, "largest acceptable traffic per member at the largest size, as a multiple of the smallest size's")
	interval := flag.Duration("interval", time.Second, "the health interval whose gossip timing the members take (hostcheck's: a probe every interval, gossip five times as often)")
	cpuprofile := flag.String("cpuprofile", "", "write a CPU profile of the whole run to this file")
	pprofAddr := flag.String("pprof", "", "serve net/http/pprof at this host:port while running")
	gogc := flag.Int("gogc", 400, "the garbage collector's target percentage (GOGC) for this process")
	flag.Parse()
	// Every member's state is in this one heap, where a host holds one member in a small
	// one: at 1000 members it is gigabytes, and the collector's marking of it at GOGC=100
	// took most of the 2 cores (a host's collector marks kilobytes). Collecting less often
	// trades memory, which is ample, for the CPU the members need; the limit keeps a run
	// whose queues grow from taking the machine's memory (the collector works harder then).
	debug.SetGCPercent(*gogc)
	debug.SetMemoryLimit(6 << 30)
	if *pprofAddr != "" {
		go func() { fmt.Fprintln(os.Stderr, "gossip: -pprof:", http.ListenAndServe(*pprofAddr, nil)) }()
	}
	if *cpuprofile != "" {
		f, err := os.Create(*cpuprofile)
		if err == nil {
			err = pprof.StartCPUProfile(f)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "gossip: -cpuprofile:", err)
			os.Exit(2)
		}
		defer pprof.StopCPUProfile()
	}
	var ns []int
	for f := range strings.SplitSeq(*sizes, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 3 {
			fmt.Fprintf(os.Stderr, "gossip: -sizes: %q is not a number of members of 3 or more\n", f)
			os.Exit(2)
		}
		ns = append(ns, n)
	}
	if *loss < 0 || *loss >= 1 || *kills < 1 || *wave < 1 {
		fmt.Fprintln(os.Stderr, "gossip: -loss must be in [0, 1), -kills and -wave at least 1")
		os.Exit(2)
	}
	if *interval < 100*time.Millisecond {
		fmt.Fprintln(os.Stderr, "gossip: -interval must be 100ms or more")
		os.Exit(2)
	}
	if err := run(ns, *interval, *wave, *kills, *loss, *lossy, *quiet, *flat); err != nil {
		fmt.Fprintln(os.Stderr, "gossip:", err)
		pprof.StopCPUProfile()
		os.Exit(1)
	}
}

// figures are one size's measurements.
type figures struct {
	n, wave  int
	interval time.Duration // the health interval the gossip's timing follows
	// joined: the first member started to every member knowing every other alive; waves:
	// each wave's start to the same.
	joined     time.Duration
	converged  time.Duration // the first member started to every member knowing every other
	waves      []time.Duration
	settled    time.Duration // from converged to the traffic no longer falling
	quietRate  rate          // sent per member, quiet
	first, all []time.Duration
	missed     int // kills no member confirmed within the limit
	notAll     int // kills some member did not know of within the limit
	// falseQuiet, falseLossy: running members declared dead (each counted once, however many
	// members held it dead) before the loss, and with it.
	falseQuiet, falseLossy int
	lossyRate              rate
}

func run(sizes []int, interval time.Duration, wave, kills int, loss float64, lossy, quiet time.Duration, flat float64) error {
	var all []figures
	for _, n := range sizes {
		f, err := measure(n, interval, wave, kills, loss, lossy, quiet)
		if err != nil {
			return fmt.Errorf("%d members: %w", n, err)
		}
		all = append(all, f)
		report(f, loss, lossy)
	}
	var missed []string
	small, large := all[0], all[len(all)-1]
	ratio := large.quietRate.total() / small.quietRate.total()
	verdict := "met"
	if len(all) > 1 && ratio > flat {
		verdict = "MISSED"
		missed = append(missed, fmt.Sprintf("traffic per member %.2f x from %d to %d members > %.2f", ratio, small.n, large.n, flat))
	}
	if len(all) > 1 {
		fmt.Printf("\ntarget: traffic per member flat: %d members %.0f B/s, %d members %.0f B/s: %.2f x (<= %.2f): %s\n",
			small.n, small.quietRate.total(), large.n, large.quietRate.total(), ratio, flat, verdict)
	}
	for _, f := range all {
		if f.falseQuiet+f.falseLossy > 0 {
			missed = append(missed, fmt.Sprintf("%d members: %d false positives", f.n, f.falseQuiet+f.falseLossy))
		}
		if f.missed > 0 {
			missed = append(missed, fmt.Sprintf("%d members: %d kills confirmed by no member in time", f.n, f.missed))
		}
	}
	if len(missed) > 0 {
		fmt.Printf("targets MISSED: %s\n", strings.Join(missed, "; "))
		return errors.New("targets missed")
	}
	fmt.Println("all targets met")
	return nil
}

func report(f figures, loss float64, lossy time.Duration) {
	fmt.Printf("\n%d members on loopback, one process (memberlist, AES-256-GCM, hostcheck's timing at a %s interval: a probe every interval, gossip every fifth of it):\n", f.n, f.interval)
	fmt.Printf("  joined through 3 seeds in %d waves of up to %d members: all but %d members knew every other %s after the first one started (a wave: median %s, longest %s); every member knew every other after %s\n",
		len(f.waves), f.wave, stragglers(f.n), r(f.joined), r(pct(f.waves, 50)), r(pct(f.waves, 100)), r(f.converged))
	per := f.interval.Seconds()
	fmt.Printf("  traffic: %s sent per member, quiet, once settled %s after the join; with %.0f %% of UDP packets lost: %s\n",
		f.quietRate.describe(per), r(f.settled), loss*100, f.lossyRate.describe(per))
	line := func(what string, d []time.Duration) {
		if len(d) == 0 {
			fmt.Printf("  %-44s  none\n", what)
			return
		}
		fmt.Printf("  %-44s  median %8s  p99 %8s  (%.1f and %.1f intervals; %d kills)\n", what, r(pct(d, 50)), r(pct(d, 99)),
			pct(d, 50).Seconds()/per, pct(d, 99).Seconds()/per, len(d))
	}
	line("kill -> first member confirms it dead", f.first)
	line("kill -> every member knows it dead", f.all)
	if f.notAll > 0 {
		fmt.Printf("  %d kills not known to every member within %s\n", f.notAll, killLimit)
	}
	fmt.Printf("  false positives (a running member declared dead, once however many held it so): %d while joining, quiet and killing; %d over %s with %.0f %% of UDP packets dropped (TCP streams, which retransmit, are not); target 0\n",
		f.falseQuiet, f.falseLossy, lossy, loss*100)
}

func r(d time.Duration) time.Duration { return d.Round(10 * time.Millisecond) }

// progress says where a long run is.
func progress(format string, args ...any) {
	fmt.Printf("  %s ... %s\n", time.Now().Format(time.TimeOnly), fmt.Sprintf(format, args...))
}

// pct is the p-th percentile of d (nearest rank).
func pct(d []time.Duration, p int) time.Duration {
	s := slices.Sorted(slices.Values(d))
	i := (p*len(s)+99)/100 - 1
	return s[max(0, min(i, len(s)-1))]
}

// cluster is n members in this process.
type cluster struct {
	members []*gossip.Member
	trans   []*lossy
	names   []string
	live    []bool
	mu      sync.Mutex
	// view[i*n+j] is what member i holds of member j (0: not heard of), kept from each
	// member's notifications rather than by asking every member for its peers: at 1000
	// members that is a million peers copied and sorted at each look, and the garbage's
	// collection alone took most of the 2 cores. alive[i] counts the members i holds alive;
	// dead[j] the members that hold j dead, deadAt[j] when that count last left 0.
	view   []gossip.State
	alive  []int
	dead   []int
	deadAt []time.Time
	// falseDead counts the times a running member went from held dead by none to by one.
	falseDead int
	index     map[string]int
}

// waveLimit bounds the wait for a wave of members to know every other alive; convergeLimit
// the wait, after the last wave, for every member to: a straggler may wait for an exchange
// with a member that knows what it missed, whose interval averages 15 minutes at 1000
// members.
const (
	waveLimit     = 5 * time.Minute
	convergeLimit = 20 * time.Minute
)

// stragglers is how many members may still miss another when the next wave starts: 1 %.
func stragglers(n int) int { return (n + 99) / 100 }

func measure(n int, interval time.Duration, wave, kills int, loss float64, lossy, quiet time.Duration) (figures, error) {
	f := figures{n: n, wave: wave, interval: interval}
	timing := (&config.Health{Interval: interval}).GossipTiming()
	tune := func(c *memberlist.Config) {
		c.ProbeInterval, c.ProbeTimeout, c.GossipInterval = timing.ProbeInterval, timing.ProbeTimeout, timing.GossipInterval
	}
	c := &cluster{
		index: map[string]int{}, live: make([]bool, n),
		view: make([]gossip.State, n*n), alive: make([]int, n), dead: make([]int, n), deadAt: make([]time.Time, n),
	}
	key := make([]byte, 32)
	for i := range key {
		key[i] = byte(rand.IntN(256))
	}
	defer c.stop()
	for i := range n {
		name := fmt.Sprintf("host%04d", i)
		c.names = append(c.names, name)
		c.index[name] = i
	}
	// Members come up in waves, as hosts do when a cloud is built or a rack is added, each
	// wave joining through the seeds and waited for until every member knows every other
	// alive. Joined all in one burst, every member re-broadcasts every member it learns of:
	// spread over as many hosts, that is nothing, but in this one process of 2 cores it is N²
	// encrypted packets at once, which starves the probes (500 members had not converged
	// after 15 minutes).
	started := time.Now()
	var seeds []string
	for lo := 0; lo < n; lo += wave {
		hi := min(lo+wave, n)
		began := time.Now()
		for i := lo; i < hi; i++ {
			t, err := newLossy()
			if err != nil {
				return f, err
			}
			m, err := gossip.Start(gossip.Options{
				Name: c.names[i], Network: "mgmt", Bind: netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), 0), Key: key,
				Transport: t, OnChange: c.observer(i), Tune: tune,
			})
			if err != nil {
				return f, err
			}
			c.mu.Lock()
			c.members, c.trans, c.live[i] = append(c.members, m), append(c.trans, t), true
			c.mu.Unlock()
		}
		if seeds == nil {
			for _, m := range c.members[:min(3, len(c.members))] {
				seeds = append(seeds, m.Addr().String())
			}
		}
		for i := max(lo, 1); i < hi; i++ {
			// Through one seed, the others if it does not answer (a busy seed can let one
			// time out), as a host keeps trying until one answers.
			k := i % len(seeds)
			var err error
			for try := range 5 {
				if _, err = c.members[i].Join(append(seeds[k:], seeds[:k]...)); err == nil {
					break
				}
				time.Sleep(time.Duration(try+1) * time.Second)
			}
			if err != nil {
				return f, fmt.Errorf("%s joining: %w", c.names[i], err)
			}
		}
		// The next wave starts once all but a few members know every other: a member that
		// joined while another of its wave was joining learns of it from the gossip, unless
		// that news was retransmitted for the last time before the others knew the member
		// itself; it then learns it at the full-state exchange that follows its join, or
		// failing that at a later one, whose interval grows with the size (15 minutes on
		// average at 1000). Waiting on each such straggler would measure that interval,
		// wave after wave.
		if err := c.waitAllAlive(waveLimit, stragglers(n)); err != nil {
			return f, fmt.Errorf("the wave of members %d-%d: %w", lo, hi-1, err)
		}
		f.waves = append(f.waves, time.Since(began))
		progress("%d members joined (the wave in %s)", hi, r(time.Since(began)))
	}
	f.joined = time.Since(started)
	if err := c.waitAllAlive(convergeLimit, 0); err != nil {
		return f, fmt.Errorf("after the last wave: %w", err)
	}
	f.converged = time.Since(started)
	progress("every member knows every other, %s after the first started", r(f.converged))

	// Converged is not quiet: every member still gossips the members it learned of, a dozen
	// times each (memberlist's retransmit limit grows with log N), for a minute or so at 1000
	// members. Measured then, the figure would be the join's tail, not the steady traffic.
	f.settled = c.settle(settleWindow, settleLimit)
	progress("settled after %s; measuring the quiet traffic for %s", r(f.settled), quiet)
	f.quietRate = c.traffic(quiet)
	progress("%s per member; killing %d members one after the other", f.quietRate.describe(interval.Seconds()), kills)

	// Kills: one after the other, each waited for until every member knows it, at most
	// killLimit.
	for k := range kills {
		victim := 3 + k // never a seed
		if victim >= n {
			break
		}
		first, all := c.kill(victim, killLimit)
		switch {
		case first == 0:
			f.missed++
		case all == 0:
			f.notAll++
			f.first = append(f.first, first)
		default:
			f.first, f.all = append(f.first, first), append(f.all, all)
		}
	}

	// False positives: loss on every member's packets, for the watch.
	c.mu.Lock()
	f.falseQuiet, c.falseDead = c.falseDead, 0
	c.mu.Unlock()
	progress("killed; %.0f %% of UDP packets dropped for %s", loss*100, lossy)
	for _, t := range c.trans {
		t.setLoss(loss)
	}
	f.lossyRate = c.traffic(lossy)
	for _, t := range c.trans {
		t.setLoss(0)
	}
	c.mu.Lock()
	f.falseLossy = c.falseDead
	c.mu.Unlock()
	return f, nil
}

// observer follows member i's view of the others.
func (c *cluster) observer(i int) func(gossip.Peer) {
	return func(p gossip.Peer) {
		j, ok := c.index[p.Name]
		if !ok {
			return
		}
		c.mu.Lock()
		defer c.mu.Unlock()
		k := i*len(c.names) + j
		was := c.view[k]
		if was == p.State {
			return
		}
		c.view[k] = p.State
		switch was {
		case gossip.Alive:
			c.alive[i]--
		case gossip.Dead:
			c.dead[j]--
		}
		switch p.State {
		case gossip.Alive:
			c.alive[i]++
		case gossip.Dead:
			if c.dead[j] == 0 {
				c.deadAt[j] = time.Now()
				if c.live[j] {
					c.falseDead++
				}
			}
			c.dead[j]++
		}
	}
}

// waitAllAlive waits until at most behind live members miss another alive, at most limit.
// Its progress lines name a member that is behind and one it misses.
func (c *cluster) waitAllAlive(limit time.Duration, tolerate int) error {
	began := time.Now()
	deadline, lastSaid := began.Add(limit), began
	for {
		behind, live, example := 0, 0, ""
		c.mu.Lock()
		n := len(c.names)
		for i := range c.members {
			if !c.live[i] {
				continue
			}
			live++
			if c.alive[i] < len(c.members)-1 {
				behind++
				if example != "" {
					continue
				}
				for j := range c.members {
					if j != i && c.live[j] && c.view[i*n+j] != gossip.Alive {
						example = fmt.Sprintf("%s holds %s %s", c.names[i], c.names[j], seen(c.view[i*n+j]))
						break
					}
				}
			}
		}
		c.mu.Unlock()
		if behind <= tolerate {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%d members still do not know every other alive after %s (%s)", behind, limit, example)
		}
		if time.Since(lastSaid) >= 30*time.Second {
			fmt.Printf("  ... %d of %d members do not know every other alive yet (%s; %s)\n", behind, live, time.Since(began).Round(time.Second), example)
			lastSaid = time.Now()
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// seen says what a member holds of another: a state, or never heard of.
func seen(s gossip.State) string {
	if s == 0 {
		return "never heard of"
	}
	return s.String()
}

// rate is bytes sent per second per member: in UDP packets (probes, acks, gossip) and on TCP
// streams (the exchanges of the whole membership, and the fallback probes).
type rate struct{ packets, streams float64 }

func (r rate) total() float64 { return r.packets + r.streams }

// describe gives the rate and the bytes an interval of per seconds.
func (r rate) describe(per float64) string {
	return fmt.Sprintf("%.0f bytes/s (%.0f an interval): %.0f in packets, %.0f on streams", r.total(), r.total()*per, r.packets, r.streams)
}

// traffic is the bytes sent per second per live member over d.
func (c *cluster) traffic(d time.Duration) rate {
	p0, s0 := c.sent()
	time.Sleep(d)
	live := 0
	for _, l := range c.live {
		if l {
			live++
		}
	}
	p1, s1 := c.sent()
	per := d.Seconds() * float64(live)
	return rate{packets: float64(p1-p0) / per, streams: float64(s1-s0) / per}
}

func (c *cluster) sent() (packets, streams int64) {
	for _, t := range c.trans {
		packets += t.packetBytes.Load()
		streams += t.streamBytes.Load()
	}
	return packets, streams
}

// settleWindow is the window the traffic is compared over while it settles; settleLimit bounds
// the wait.
const (
	settleWindow = 15 * time.Second
	settleLimit  = 5 * time.Minute
)

// settle waits until the traffic per member stops falling: a window within 10 % of the one
// before. It returns how long that took.
func (c *cluster) settle(window, limit time.Duration) time.Duration {
	start := time.Now()
	last := c.traffic(window).total()
	for time.Since(start) < limit {
		now := c.traffic(window).total()
		if now >= last*0.9 {
			break
		}
		last = now
	}
	return time.Since(start)
}

// killLimit bounds the wait for a kill to be known to every member.
const killLimit = 3 * time.Minute

// kill shuts member v down without a word and waits until every live member holds it dead, at
// most limit: first is when the first member confirmed it, all when the last did (0: not
// within limit).
func (c *cluster) kill(v int, limit time.Duration) (first, all time.Duration) {
	c.mu.Lock()
	c.live[v] = false
	c.mu.Unlock()
	start := time.Now()
	_ = c.members[v].Shutdown()
	for time.Since(start) < limit {
		time.Sleep(50 * time.Millisecond)
		c.mu.Lock()
		live := 0
		for _, l := range c.live {
			if l {
				live++
			}
		}
		n, at := c.dead[v], c.deadAt[v]
		c.mu.Unlock()
		if n > 0 && first == 0 {
			first = max(at.Sub(start), 0)
		}
		if n >= live {
			return first, time.Since(start)
		}
	}
	return first, 0
}

func (c *cluster) stop() {
	var wg sync.WaitGroup
	for i, m := range c.members {
		if c.live[i] {
			wg.Go(func() { _ = m.Shutdown() })
		}
	}
	wg.Wait()
}

// lossy is a UDP and TCP transport for memberlist on one loopback port that counts the
// bytes sent, on packets and on streams either way, and drops a share of the packets sent.
// It does what memberlist's NetTransport does, but for one thing: NetTransport reads every
// packet into a fresh 64 KB buffer, which the packet keeps until memberlist has handled it.
// A host receives a few packets a second; 1000 members in one process receive thousands,
// and their 64 KB buffers were the bulk of this process's garbage, and of its heap while the
// members' queues were long (14 GB at 800 members). This transport reads into one buffer and
// hands each packet on in a copy of its own size.
type lossy struct {
	udp  *net.UDPConn
	tcp  *net.TCPListener
	port int
	// packetBytes and streamBytes count the bytes sent, in packets and on streams either way.
	packetBytes, streamBytes atomic.Int64
	loss                     atomic.Uint64 // the share of packets dropped, in billionths
	packets                  chan *memberlist.Packet
	streams                  chan net.Conn
	// stopping is closed by Shutdown; the listeners end then, and wg waits for them.
	stopping chan struct{}
	wg       sync.WaitGroup
}

func newLossy() (*lossy, error) {
	for range 20 {
		tcp, err := net.ListenTCP("tcp", &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if err != nil {
			return nil, err
		}
		port := tcp.Addr().(*net.TCPAddr).Port
		udp, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: port})
		if err != nil {
			_ = tcp.Close() // the port is taken for UDP: another one
			continue
		}
		t := &lossy{udp: udp, tcp: tcp, port: port, packets: make(chan *memberlist.Packet), streams: make(chan net.Conn), stopping: make(chan struct{})}
		t.wg.Add(2)
		go t.readPackets()
		go t.accept()
		return t, nil
	}
	return nil, errors.New("no loopback port free for both UDP and TCP")
}

func (t *lossy) readPackets() {
	defer t.wg.Done()
	buf := make([]byte, 65536)
	for {
		n, from, err := t.udp.ReadFromUDP(buf)
		ts := time.Now()
		if err != nil {
			select {
			case <-t.stopping:
				return
			default:
				continue
			}
		}
		select {
		case t.packets <- &memberlist.Packet{Buf: slices.Clone(buf[:n]), From: from, Timestamp: ts}:
		case <-t.stopping:
			return
		}
	}
}

func (t *lossy) accept() {
	defer t.wg.Done()
	for {
		c, err := t.tcp.AcceptTCP()
		if err != nil {
			select {
			case <-t.stopping:
				return
			default:
				time.Sleep(10 * time.Millisecond)
				continue
			}
		}
		select {
		case t.streams <- counted{Conn: c, n: &t.streamBytes}:
		case <-t.stopping:
			_ = c.Close() // memberlist takes no more
			return
		}
	}
}

// FinalAdvertiseAddr is the loopback address and the port bound.
func (t *lossy) FinalAdvertiseAddr(string, int) (net.IP, int, error) {
	return net.IPv4(127, 0, 0, 1).To4(), t.port, nil
}

// PacketCh hands out the packets received.
func (t *lossy) PacketCh() <-chan *memberlist.Packet { return t.packets }

// StreamCh hands out the streams accepted, counting what is written on them.
func (t *lossy) StreamCh() <-chan net.Conn { return t.streams }

// Shutdown closes the sockets and waits for the listeners to end.
func (t *lossy) Shutdown() error {
	close(t.stopping)
	err := errors.Join(t.udp.Close(), t.tcp.Close())
	t.wg.Wait()
	return err
}

func (t *lossy) setLoss(p float64) { t.loss.Store(uint64(p * 1e9)) }

// WriteTo counts the packet and drops it with the loss's probability (as if sent and lost).
func (t *lossy) WriteTo(b []byte, addr string) (time.Time, error) {
	t.packetBytes.Add(int64(len(b)))
	if p := float64(t.loss.Load()) / 1e9; p > 0 && rand.Float64() < p {
		return time.Now(), nil
	}
	to, err := netip.ParseAddrPort(addr)
	if err != nil {
		return time.Time{}, err
	}
	_, err = t.udp.WriteToUDPAddrPort(b, to)
	return time.Now(), err
}

// WriteToAddress is WriteTo (memberlist sends through it).
func (t *lossy) WriteToAddress(b []byte, a memberlist.Address) (time.Time, error) {
	return t.WriteTo(b, a.Addr)
}

// DialTimeout counts what is written on the stream.
func (t *lossy) DialTimeout(addr string, timeout time.Duration) (net.Conn, error) {
	c, err := net.DialTimeout("tcp", addr, timeout)
	if err != nil {
		return nil, err
	}
	return counted{Conn: c, n: &t.streamBytes}, nil
}

// DialAddressTimeout is DialTimeout (memberlist dials through it).
func (t *lossy) DialAddressTimeout(a memberlist.Address, timeout time.Duration) (net.Conn, error) {
	return t.DialTimeout(a.Addr, timeout)
}

var _ memberlist.NodeAwareTransport = (*lossy)(nil)

type counted struct {
	net.Conn
	n *atomic.Int64
}

func (c counted) Write(b []byte) (int, error) {
	n, err := c.Conn.Write(b)
	c.n.Add(int64(n))
	return n, err
}
