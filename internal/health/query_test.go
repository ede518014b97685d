package health

import (
	"errors"
	"net/netip"
	"strings"
	"testing"
	"time"
)

func TestFenceQueryAndAckRoundTripAndRefuseOtherMessages(t *testing.T) {
	at := time.Date(2026, 12, 6, 13, 0, 0, 0, time.UTC)
	q := FenceQuery{Host: "cmp1", ID: "ab12", By: "ctl1", Time: at, Since: at.Add(-time.Second), ReplyTo: netip.MustParseAddrPort("10.0.0.1:40000")}
	b, err := MarshalQuery(q)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := ParseQuery(b); err != nil || got != q {
		t.Fatalf("ParseQuery = %+v, %v; want %+v", got, err, q)
	}
	if _, err := ParseAck(b); !errors.Is(err, ErrNotAck) {
		t.Errorf("a query read as an acknowledgement: %v", err)
	}
	a := FenceAck{Host: "cmp1", ID: "ab12", Since: at, Watchdog: RecordWatchdog{TimeoutMS: 5000, SelfFenceAfterMS: 5000}}
	b, err = MarshalAck(a)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := ParseAck(b); err != nil || got != a {
		t.Fatalf("ParseAck = %+v, %v; want %+v", got, err, a)
	}
	if _, err := ParseQuery(b); !errors.Is(err, ErrNotQuery) {
		t.Errorf("an acknowledgement read as a query: %v", err)
	}
	for _, bad := range []string{
		"", "Q", "Q{}", `Q{"host":"cmp1","id":"x","time":"2026-12-06T13:00:00Z"}`, `Q{"host":"cmp1","extra":1}`, `Q{"host":"cmp1"} trailing`,
		`A{"host":"cmp1","id":"x","since":"2026-12-06T13:00:00Z","watchdog":{"timeout_ms":0,"self_fence_after_ms":0}}`,
	} {
		_, qerr := ParseQuery([]byte(bad))
		_, aerr := ParseAck([]byte(bad))
		if qerr == nil || aerr == nil {
			t.Errorf("%q accepted (query: %v, ack: %v)", bad, qerr, aerr)
		}
	}
	if _, err := ParseQuery([]byte(`Q{"host":"cmp1","id":"x","time":"2026-12-06T13:00:00Z"}`)); err == nil || !strings.Contains(err.Error(), "reply_to") {
		t.Errorf("a query without reply_to: %v, want it named", err)
	}
}

func TestFenceQueryIsObeyedOnlyFresh(t *testing.T) {
	at := time.Date(2026, 12, 6, 13, 0, 0, 0, time.UTC)
	q := FenceQuery{Time: at}
	for _, c := range []struct {
		now  time.Time
		want bool
	}{
		{at, true},
		{at.Add(-500 * time.Millisecond), true},  // the sender's clock ahead, within the skew
		{at.Add(-600 * time.Millisecond), false}, // beyond it
		{at.Add(2500 * time.Millisecond), true},  // window + skew
		{at.Add(2600 * time.Millisecond), false}, // a copy sent again later
	} {
		if got := q.Fresh(c.now, 2*time.Second, 500*time.Millisecond); got != c.want {
			t.Errorf("Fresh at %s = %v, want %v", c.now.Sub(at), got, c.want)
		}
	}
}
