package watchdog

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestOpenRefusesBadSpecs(t *testing.T) {
	for _, spec := range []string{"", "watchdog", "file:", "file:relative", "/etc/passwd", "/dev/"} {
		if err := CheckSpec(spec); err == nil {
			t.Errorf("CheckSpec(%q) accepted it", spec)
		}
	}
	if _, err := Open("/etc/passwd", 10*time.Second); !errors.Is(err, ErrSpec) {
		t.Errorf("Open(/etc/passwd): %v, want ErrSpec", err)
	}
	if _, err := Open("file:/tmp/x", 500*time.Millisecond); err == nil {
		t.Error("a sub-second timeout was accepted")
	}
	if _, err := Open("/dev/computeha-no-such-watchdog", 10*time.Second); err == nil {
		t.Error("a missing device opened")
	}
	for _, spec := range []string{"/dev/watchdog", "/dev/watchdog1", "file:/run/computeha/lab-watchdog"} {
		if err := CheckSpec(spec); err != nil {
			t.Errorf("CheckSpec(%q): %v", spec, err)
		}
	}
}

func read(t *testing.T, path string) FileState {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	s, err := ParseFileState(string(b))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestFileDevice(t *testing.T) {
	path := filepath.Join(t.TempDir(), "wd")
	d, err := Open(FilePrefix+path, 7*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if s := read(t, path); !s.Armed || s.Timeout != 7*time.Second || s.Seq != 1 {
		t.Fatalf("after open: %+v", s)
	}
	for range 3 {
		if err := d.Feed(); err != nil {
			t.Fatal(err)
		}
	}
	if s := read(t, path); !s.Armed || s.Seq != 4 {
		t.Fatalf("after three feeds: %+v, want seq 4", s)
	}
	// A crash leaves the countdown running: the last armed line stays.
	if err := d.Release(); err != nil {
		t.Fatal(err)
	}
	if s := read(t, path); !s.Armed || s.Seq != 4 {
		t.Fatalf("after release: %+v", s)
	}
	// A new holder starts over from seq 1, which is a change the supervisor sees as a feed.
	d2, err := OpenFile(path, 7*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if err := d2.Disarm(); err != nil {
		t.Fatal(err)
	}
	if s := read(t, path); s.Armed {
		t.Fatalf("after disarm: %+v", s)
	}
	if d2.Timeout() != 7*time.Second {
		t.Errorf("timeout %s", d2.Timeout())
	}
}

func TestParseFileStateRejectsGarbage(t *testing.T) {
	for _, line := range []string{"", "armed", "armed 10", "armed x 1", "armed 0 1", "armed -5 1", "armed 10 -1", "disarmed now", "on"} {
		if _, err := ParseFileState(line); err == nil {
			t.Errorf("%q parsed", line)
		}
	}
	for _, s := range []FileState{{}, {Armed: true, Timeout: 1500 * time.Millisecond, Seq: 9}} {
		got, err := ParseFileState(FormatFileState(s))
		if err != nil || got != s {
			t.Errorf("round trip of %+v: %+v, %v", s, got, err)
		}
	}
}

func TestFakeFiresWhenNotFed(t *testing.T) {
	now := time.Unix(1000, 0)
	f := NewFake(5*time.Second, func() time.Time { return now })
	now = now.Add(4 * time.Second)
	_ = f.Feed()
	now = now.Add(4 * time.Second)
	if f.Expired() {
		t.Fatal("fired 4s after a feed with a 5s timeout")
	}
	now = now.Add(time.Second)
	if !f.Expired() {
		t.Fatal("did not fire 5s after the last feed")
	}
	// Once fired, a late feed does not bring the host back.
	_ = f.Feed()
	if !f.Expired() {
		t.Fatal("a feed after the reset undid it")
	}
}
