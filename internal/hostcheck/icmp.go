package hostcheck

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
)

// Prober probes peers on one network.
type Prober interface {
	// Probe sends one probe to each target and waits for the answers until ctx ends. The
	// result maps every target to nil (it answered) or why not. The error is for the prober
	// itself (its socket is broken): the caller closes it and opens a new one.
	Probe(ctx context.Context, targets []netip.Addr) (map[netip.Addr]error, error)
	Close() error
}

// ErrNoReply is a probe that got no answer in time.
var ErrNoReply = errors.New("no echo reply")

// ICMP message types and the protocol numbers their parsers need.
const (
	icmpv4EchoRequest = 8
	icmpv4EchoReply   = 0
	icmpv6EchoRequest = 128
	icmpv6EchoReply   = 129
)

// icmpProber sends ICMP echo requests from one raw socket bound to this host's address on a
// network, so the probes leave (and the replies come back) over that network alone. Replies
// are matched by identifier, sequence number and source: a raw socket also sees the echo
// traffic of every other pinger on the host.
type icmpProber struct {
	conn *net.IPConn
	v6   bool
	id   uint16

	mu      sync.Mutex
	seq     uint16
	waiting map[uint16]pending
	readErr error
	done    chan struct{}
}

type pending struct {
	from netip.Addr
	ch   chan struct{}
}

// NewICMPProber opens a raw ICMP socket (root or CAP_NET_RAW) bound to local.
func NewICMPProber(local netip.Addr) (Prober, error) {
	network := "ip4:icmp"
	if local.Is6() && !local.Is4In6() {
		network = "ip6:ipv6-icmp"
	}
	la := &net.IPAddr{IP: local.Unmap().AsSlice(), Zone: local.Zone()}
	conn, err := net.ListenIP(network, la)
	if err != nil {
		return nil, fmt.Errorf("opening an ICMP socket on %s: %w", local, err)
	}
	var idb [2]byte
	_, _ = rand.Read(idb[:])
	p := &icmpProber{
		conn: conn, v6: network == "ip6:ipv6-icmp", id: binary.BigEndian.Uint16(idb[:]),
		waiting: map[uint16]pending{}, done: make(chan struct{}),
	}
	go p.read()
	return p, nil
}

func (p *icmpProber) read() {
	defer close(p.done)
	buf := make([]byte, 1500)
	for {
		n, from, err := p.conn.ReadFromIP(buf)
		if err != nil {
			p.mu.Lock()
			p.readErr = err
			p.mu.Unlock()
			return
		}
		id, seq, ok := parseEchoReply(buf[:n], p.v6)
		if !ok || id != p.id {
			continue
		}
		src, ok := netip.AddrFromSlice(from.IP)
		if !ok {
			continue
		}
		p.mu.Lock()
		w, found := p.waiting[seq]
		if found && w.from == src.Unmap() {
			delete(p.waiting, seq)
			close(w.ch)
		}
		p.mu.Unlock()
	}
}

// parseEchoReply reads the identifier and sequence number of an echo reply (the kernel has
// already removed the IP header).
func parseEchoReply(b []byte, v6 bool) (id, seq uint16, ok bool) {
	want := byte(icmpv4EchoReply)
	if v6 {
		want = icmpv6EchoReply
	}
	if len(b) < 8 || b[0] != want || b[1] != 0 {
		return 0, 0, false
	}
	return binary.BigEndian.Uint16(b[4:6]), binary.BigEndian.Uint16(b[6:8]), true
}

// echoRequest builds an echo request. The kernel fills in the ICMPv6 checksum itself (it
// covers a pseudo-header only it knows); the ICMPv4 one is ours.
func echoRequest(v6 bool, id, seq uint16) []byte {
	b := make([]byte, 8, 8+len(echoPayload))
	b[0] = icmpv4EchoRequest
	if v6 {
		b[0] = icmpv6EchoRequest
	}
	binary.BigEndian.PutUint16(b[4:6], id)
	binary.BigEndian.PutUint16(b[6:8], seq)
	b = append(b, echoPayload...)
	if !v6 {
		binary.BigEndian.PutUint16(b[2:4], checksum(b))
	}
	return b
}

// echoPayload lets a packet capture tell whose probes these are.
var echoPayload = []byte("computeha hostcheck")

// checksum is the Internet checksum (RFC 1071).
func checksum(b []byte) uint16 {
	var s uint32
	for i := 0; i+1 < len(b); i += 2 {
		s += uint32(b[i])<<8 | uint32(b[i+1])
	}
	if len(b)%2 == 1 {
		s += uint32(b[len(b)-1]) << 8
	}
	for s>>16 != 0 {
		s = s&0xffff + s>>16
	}
	return ^uint16(s)
}

func (p *icmpProber) Probe(ctx context.Context, targets []netip.Addr) (map[netip.Addr]error, error) {
	res := make(map[netip.Addr]error, len(targets))
	waits := make(map[netip.Addr]chan struct{}, len(targets))
	var seqs []uint16
	defer func() {
		p.mu.Lock()
		for _, s := range seqs {
			delete(p.waiting, s)
		}
		p.mu.Unlock()
	}()
	for _, t := range targets {
		t = t.Unmap()
		p.mu.Lock()
		if p.readErr != nil {
			err := p.readErr
			p.mu.Unlock()
			return nil, fmt.Errorf("ICMP socket: %w", err)
		}
		p.seq++
		seq := p.seq
		ch := make(chan struct{})
		p.waiting[seq] = pending{from: t, ch: ch}
		p.mu.Unlock()
		seqs = append(seqs, seq)
		dst := &net.IPAddr{IP: t.AsSlice(), Zone: t.Zone()}
		if dl, ok := ctx.Deadline(); ok {
			_ = p.conn.SetWriteDeadline(dl)
		}
		if _, err := p.conn.WriteToIP(echoRequest(p.v6, p.id, seq), dst); err != nil {
			// No route, the link down, a neighbour that does not resolve: this peer failed,
			// the socket did not.
			res[t] = fmt.Errorf("sending an echo request: %w", err)
			continue
		}
		waits[t] = ch
	}
	collect(ctx, waits, p.done, res)
	return res, nil
}

// collect waits for the replies of waits until ctx ends or the reader stops, and sets each
// peer's result in res. A reply that arrived counts even when the wait is already over: once a
// silent peer has used up the round, a select between a closed reply channel and a done
// context picks either at random, and would report half the peers that answered as silent.
func collect(ctx context.Context, waits map[netip.Addr]chan struct{}, stopped <-chan struct{}, res map[netip.Addr]error) {
	for t, ch := range waits {
		select {
		case <-ch:
			res[t] = nil
			continue
		default:
		}
		select {
		case <-ch:
		case <-ctx.Done():
		case <-stopped:
		}
		select {
		case <-ch:
			res[t] = nil
		default:
			res[t] = ErrNoReply
		}
	}
}

func (p *icmpProber) Close() error {
	err := p.conn.Close()
	<-p.done
	return err
}
