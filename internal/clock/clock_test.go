package clock

import (
	"context"
	"errors"
	"testing"
	"testing/synctest"
	"time"
)

func TestSleepWaitsItsDurationInTheBubbleAndNoMore(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		start := time.Now()
		if err := (Real{}).Sleep(context.Background(), time.Hour); err != nil {
			t.Fatal(err)
		}
		if got := time.Since(start); got != time.Hour {
			t.Errorf("slept %s, want 1h", got)
		}
	})
}

func TestOrIsTheRealClockWhenNoneIsGiven(t *testing.T) {
	if _, ok := Or(nil).(Real); !ok {
		t.Error("Or(nil) is not the real clock")
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
