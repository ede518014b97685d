package recovery

import (
	"context"
	"errors"
	"testing"
	"testing/synctest"
	"time"
)

func TestAHostTakesItsBoundOfMovesAndTheNextWaitsForASlot(t *testing.T) {
	bubble(t, testBound)
}

func testBound(t *testing.T) {
	l := NewLimits(2)
	ctx := context.Background()
	r1, _ := l.Acquire(ctx, "h1")
	r2, _ := l.Acquire(ctx, "h1")
	if _, err := l.Acquire(ctx, "h2"); err != nil {
		t.Fatalf("another host's bound is its own: %v", err)
	}
	got := make(chan struct{})
	go func() {
		r3, err := l.Acquire(ctx, "h1")
		if err == nil {
			r3(true)
		}
		close(got)
	}()
	synctest.Wait()
	select {
	case <-got:
		t.Fatal("a third move got a slot on a host bound to two")
	default:
	}
	r1(true)
	<-got
	r2(true)
}

func TestSuccessesRaiseTheBoundToTwiceTheStartAndAFailureHalvesIt(t *testing.T) {
	l := NewLimits(4)
	for range 10 {
		r, err := l.Acquire(context.Background(), "h1")
		if err != nil {
			t.Fatal(err)
		}
		r(true)
	}
	if got := l.Limit("h1"); got != 8 {
		t.Errorf("bound after 10 successes: %d, want 8 (twice the start)", got)
	}
	for _, want := range []int{4, 2, 1, 1} {
		r, _ := l.Acquire(context.Background(), "h1")
		r(false)
		if got := l.Limit("h1"); got != want {
			t.Errorf("bound after a failure: %d, want %d", got, want)
		}
	}
}

func TestAWaitForASlotEndsWithItsContext(t *testing.T) {
	bubble(t, testSlotContext)
}

func testSlotContext(t *testing.T) {
	l := NewLimits(1)
	r, _ := l.Acquire(context.Background(), "h1")
	defer r(true)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	if _, err := l.Acquire(ctx, "h1"); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Acquire = %v, want the context's error", err)
	}
}
