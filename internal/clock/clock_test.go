package clock

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"
)

func TestAManualFakeSleepReturnsOnlyOnceTheTimeIsAdvancedPastItsEnd(t *testing.T) {
	f := NewFake(time.Time{})
	done := make(chan error, 1)
	go func() { done <- f.Sleep(context.Background(), 10*time.Second) }()
	if err := f.WaitForSleepers(context.Background(), 1); err != nil {
		t.Fatal(err)
	}
	f.Advance(9 * time.Second)
	select {
	case <-done:
		t.Fatal("the sleep returned 1 s before its end")
	case <-time.After(20 * time.Millisecond):
	}
	f.Advance(time.Second)
	if err := <-done; err != nil {
		t.Fatalf("sleep: %v", err)
	}
	if got, want := f.Now(), Epoch.Add(10*time.Second); !got.Equal(want) {
		t.Errorf("now %s, want %s", got, want)
	}
}

func TestAManualFakeSleepEndsWithTheContext(t *testing.T) {
	f := NewFake(time.Time{})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- f.Sleep(ctx, time.Hour) }()
	if err := f.WaitForSleepers(context.Background(), 1); err != nil {
		t.Fatal(err)
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("sleep: %v, want context.Canceled", err)
	}
	if n := f.Waiting(); n != 0 {
		t.Errorf("%d sleeps still waiting after their context ended", n)
	}
}

func TestAdvanceToNextWakesTheEarliestSleepFirst(t *testing.T) {
	f := NewFake(time.Time{})
	var mu sync.Mutex
	var order []time.Duration
	var wg sync.WaitGroup
	for _, d := range []time.Duration{3 * time.Second, time.Second, 2 * time.Second} {
		wg.Go(func() {
			_ = f.Sleep(context.Background(), d)
			mu.Lock()
			order = append(order, d)
			mu.Unlock()
		})
	}
	if err := f.WaitForSleepers(context.Background(), 3); err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= 3; i++ {
		if !f.AdvanceToNext() {
			t.Fatal("no sleeper waiting")
		}
		if err := f.WaitForSleepers(context.Background(), 3-i); err != nil {
			t.Fatal(err)
		}
		for {
			mu.Lock()
			n := len(order)
			mu.Unlock()
			if n == i {
				break
			}
			time.Sleep(time.Millisecond)
		}
	}
	wg.Wait()
	want := []time.Duration{time.Second, 2 * time.Second, 3 * time.Second}
	for i := range want {
		if order[i] != want[i] {
			t.Fatalf("woken in order %v, want %v", order, want)
		}
	}
}

func TestAnAutoFakeReadsAsIfEverySleepWasWaitedOutAndNeverGoesBack(t *testing.T) {
	f := NewAutoFake(time.Time{})
	start := f.Now()
	if err := f.Sleep(context.Background(), 5*time.Second); err != nil {
		t.Fatal(err)
	}
	if got := f.Now().Sub(start); got != 5*time.Second {
		t.Fatalf("after a 5 s sleep the clock moved %s", got)
	}
	if err := f.Sleep(context.Background(), time.Second); err != nil {
		t.Fatal(err)
	}
	if got := f.Now().Sub(start); got != 6*time.Second {
		t.Fatalf("after a further 1 s sleep the clock moved %s in all", got)
	}
	n, sum := f.Sleeps()
	if n != 2 || sum != 6*time.Second {
		t.Errorf("Sleeps() = %d, %s; want 2, 6s", n, sum)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := f.Sleep(ctx, time.Second); !errors.Is(err, context.Canceled) {
		t.Errorf("sleep with an ended context: %v", err)
	}
}

func TestRealSleepReturnsTheContextErrorOnceItEnds(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := (Real{}).Sleep(ctx, time.Hour); !errors.Is(err, context.Canceled) {
		t.Errorf("Sleep: %v, want context.Canceled", err)
	}
	if err := Sleep(context.Background(), 0); err != nil {
		t.Errorf("Sleep(0): %v", err)
	}
}
