package hostcheck

import (
	"context"
	"encoding/binary"
	"errors"
	"net/netip"
	"testing"
	"time"
)

func TestEchoRequestsCarryAValidChecksumAndTheirIdentity(t *testing.T) {
	b := echoRequest(false, 0x1234, 0xabcd)
	if b[0] != icmpv4EchoRequest || b[1] != 0 {
		t.Errorf("type/code = %d/%d", b[0], b[1])
	}
	// A packet with its checksum in place sums to zero.
	if c := checksum(b); c != 0 {
		t.Errorf("checksum over the packet = %#x, want 0", c)
	}
	if id, seq := binary.BigEndian.Uint16(b[4:6]), binary.BigEndian.Uint16(b[6:8]); id != 0x1234 || seq != 0xabcd {
		t.Errorf("id/seq = %#x/%#x", id, seq)
	}
	v6 := echoRequest(true, 1, 2)
	if v6[0] != icmpv6EchoRequest || v6[2] != 0 || v6[3] != 0 {
		t.Errorf("ICMPv6 request type %d checksum %x%x: the kernel fills it in", v6[0], v6[2], v6[3])
	}
}

func TestOnlyEchoRepliesAreTakenForAnswers(t *testing.T) {
	reply := echoRequest(false, 7, 9)
	reply[0] = icmpv4EchoReply
	cases := []struct {
		name   string
		pkt    []byte
		v6     bool
		ok     bool
		id, sq uint16
	}{
		{"an echo reply gives its identifier and sequence", reply, false, true, 7, 9},
		{"an echo request (our own, looped back) is not an answer", echoRequest(false, 7, 9), false, false, 0, 0},
		{"a destination unreachable is not an answer", []byte{3, 1, 0, 0, 0, 0, 0, 0}, false, false, 0, 0},
		{"a truncated packet is ignored", []byte{0, 0, 0}, false, false, 0, 0},
		{"an ICMPv6 echo reply gives its identifier and sequence", []byte{icmpv6EchoReply, 0, 0, 0, 0, 3, 0, 4}, true, true, 3, 4},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			id, seq, ok := parseEchoReply(tc.pkt, tc.v6)
			if ok != tc.ok || id != tc.id || seq != tc.sq {
				t.Errorf("parseEchoReply = %d, %d, %v; want %d, %d, %v", id, seq, ok, tc.id, tc.sq, tc.ok)
			}
		})
	}
}

func TestAPeerThatAnsweredCountsEvenAfterASilentOneUsedUpTheRound(t *testing.T) {
	waits := map[netip.Addr]chan struct{}{}
	want := map[netip.Addr]error{}
	for i := range 32 {
		a := netip.AddrFrom4([4]byte{192, 0, 2, byte(i + 1)})
		ch := make(chan struct{})
		if i == 0 {
			want[a] = ErrNoReply // never answers
		} else {
			close(ch)
			want[a] = nil
		}
		waits[a] = ch
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	got := map[netip.Addr]error{}
	collect(ctx, waits, make(chan struct{}), got)
	for a, w := range want {
		if !errors.Is(got[a], w) || (w == nil && got[a] != nil) {
			t.Errorf("%s: got %v, want %v", a, got[a], w)
		}
	}
}
