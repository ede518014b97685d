package e2e

import (
	"context"
	"os"
	"testing"
	"time"
)

func TestAProcesssMemoryIsReadInItsParts(t *testing.T) {
	m, err := ReadMemory(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if m.RSS <= 0 || m.HWM < m.RSS || m.Anon <= 0 || m.File <= 0 || m.Anon+m.File > m.RSS {
		t.Errorf("%+v: want RSS > 0, HWM >= RSS, and anonymous and file-backed parts within RSS", m)
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := SampleMemory(ctx, os.Getpid(), time.Millisecond)
	time.Sleep(20 * time.Millisecond)
	cancel()
	p, err := s.Peaks()
	if err != nil || p.Anon < m.Anon/2 || p.File <= 0 {
		t.Errorf("peaks %+v (%v) after %+v", p, err, m)
	}
	if _, err := ReadMemory(-1); err == nil {
		t.Errorf("a process that does not exist was read")
	}
}
