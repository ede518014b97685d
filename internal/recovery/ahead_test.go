package recovery

import (
	"context"
	"errors"
	"testing"
	"time"
)

// cmp1World is a world with n HA VMs on cmp1, the host whose recovery is read ahead.
func cmp1World(t *testing.T, n int) (*world, Host) {
	w := newWorld(t, "auto", "")
	w.boot("cmp1", ha(n)...)
	return w, Host{Node: "cmp1", NovaHost: "cmp1"}
}

func TestReadsMadeAheadAreMadeAgainUntilTakenAndTheFreshestServe(t *testing.T) {
	bubble(t, func(t *testing.T) {
		w, src := cmp1World(t, 2)
		ctx := context.Background()
		start := time.Now()
		w.eng.ReadAhead(ctx, src)
		w.eng.ReadAhead(ctx, src) // under way already: nothing more
		time.Sleep(40 * time.Second)
		if n := w.count("ServersOnHost"); n != 3 {
			t.Errorf("%d listings in 40 s, want 3 (at 0, 15 and 30 s)", n)
		}
		r := w.eng.TakeAhead(ctx, src, DefaultMaxAge)
		if r == nil || r.At.Sub(start) != 2*AheadRefresh || len(r.Servers) != 2 {
			t.Fatalf("took %+v, want the reads begun at %s with 2 servers", r, 2*AheadRefresh)
		}
		if again := w.eng.TakeAhead(ctx, src, DefaultMaxAge); again != nil {
			t.Errorf("the reads were taken twice")
		}
		time.Sleep(time.Minute)
		if n := w.count("ServersOnHost"); n != 3 {
			t.Errorf("%d listings, want no more once taken", n)
		}
	})
}

func TestReadsMadeAheadUnderWayAreWaitedFor(t *testing.T) {
	bubble(t, func(t *testing.T) {
		w, src := cmp1World(t, 1)
		ctx := context.Background()
		w.nova.FailNext("ServersOnHost", errors.New("503 service unavailable: connection refused"))
		w.eng.ReadAhead(ctx, src)
		if r := w.eng.TakeAhead(ctx, src, DefaultMaxAge); r == nil || len(r.Servers) != 1 {
			t.Errorf("took %+v, want the reads under way once done", r)
		}
	})
}

func TestReadsMadeAheadAreForgottenWhenTheHostJoins(t *testing.T) {
	bubble(t, func(t *testing.T) {
		w, src := cmp1World(t, 1)
		ctx := context.Background()
		w.eng.ReadAhead(ctx, src)
		time.Sleep(time.Second)
		w.eng.ForgetAhead("cmp1")
		time.Sleep(time.Minute)
		if n := w.count("ServersOnHost"); n != 1 {
			t.Errorf("%d listings, want none after the host joined", n)
		}
		if r := w.eng.TakeAhead(ctx, src, DefaultMaxAge); r != nil {
			t.Errorf("reads from before the host joined were handed out")
		}
	})
}

func TestReadsAheadOfAHostInNoSegmentEndAtOnce(t *testing.T) {
	bubble(t, func(t *testing.T) {
		w := newWorld(t, "auto", "")
		ctx := context.Background()
		w.eng.ReadAhead(ctx, Host{Node: "ctl1", NovaHost: "ctl1"})
		time.Sleep(time.Minute)
		if n := w.count("ServersOnHost"); n != 1 {
			t.Errorf("%d listings of a controller's servers, want the one that found it in no segment", n)
		}
	})
}

func TestReadsAheadOfAHostLostForLongEndAfterAheadFor(t *testing.T) {
	bubble(t, func(t *testing.T) {
		w, src := cmp1World(t, 1)
		ctx := context.Background()
		w.eng.ReadAhead(ctx, src)
		time.Sleep(AheadFor + time.Minute)
		// At 0, 15 s, ... before AheadFor; the one due at AheadFor itself begins or not as the
		// deadline falls at the same instant (and a real read would then fail at once).
		want := int(AheadFor / AheadRefresh)
		if n := w.count("ServersOnHost"); n != want && n != want+1 {
			t.Errorf("%d listings, want %d: one every %s for %s, then none", n, want, AheadRefresh, AheadFor)
		}
		time.Sleep(time.Hour)
		if n := w.count("ServersOnHost"); n > want+1 {
			t.Errorf("%d listings an hour after %s", n, AheadFor)
		}
		if r := w.eng.TakeAhead(ctx, src, DefaultMaxAge); r != nil {
			t.Errorf("reads from %s ago were handed out", time.Since(r.At))
		}
	})
}
