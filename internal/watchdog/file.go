package watchdog

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// The file-backed device is a one-line file that its holder rewrites on every feed, and a
// supervisor outside the host watches (in the test lab, beside the node's BMC):
//
//	armed TIMEOUT_MS SEQ    the countdown runs; SEQ grows by one at every feed
//	disarmed                the holder stopped it deliberately
//
// The supervisor restarts its own countdown whenever the line changes, and cuts the host's
// power when an armed line stays the same for TIMEOUT_MS, as a hardware watchdog does; it
// disarms the device when the host's power goes off (a device restarts stopped). A host that
// hangs (its processes stopped) stops feeding, like a hung kernel.

// FileState is the state a file-backed device's line says.
type FileState struct {
	Armed   bool
	Timeout time.Duration
	Seq     uint64
}

// FormatFileState is the device file's line for s.
func FormatFileState(s FileState) string {
	if !s.Armed {
		return "disarmed\n"
	}
	return fmt.Sprintf("armed %d %d\n", s.Timeout.Milliseconds(), s.Seq)
}

// ParseFileState reads a device file's line.
func ParseFileState(line string) (FileState, error) {
	f := strings.Fields(line)
	switch {
	case len(f) == 1 && f[0] == "disarmed":
		return FileState{}, nil
	case len(f) == 3 && f[0] == "armed":
		ms, err1 := strconv.ParseInt(f[1], 10, 64)
		seq, err2 := strconv.ParseUint(f[2], 10, 64)
		if err1 != nil || err2 != nil || ms <= 0 {
			break
		}
		return FileState{Armed: true, Timeout: time.Duration(ms) * time.Millisecond, Seq: seq}, nil
	}
	return FileState{}, fmt.Errorf("watchdog file: %q is neither \"armed TIMEOUT_MS SEQ\" nor \"disarmed\"", strings.TrimSpace(line))
}

// fileDevice is the file-backed device.
type fileDevice struct {
	path    string
	timeout time.Duration
	seq     uint64
}

// OpenFile arms a file-backed device at path.
func OpenFile(path string, timeout time.Duration) (Device, error) {
	if !filepath.IsAbs(path) {
		return nil, fmt.Errorf("watchdog file %q: not an absolute path", path)
	}
	d := &fileDevice{path: path, timeout: timeout}
	if err := d.Feed(); err != nil {
		return nil, err
	}
	return d, nil
}

func (d *fileDevice) write(s FileState) error {
	tmp := d.path + ".tmp"
	if err := os.WriteFile(tmp, []byte(FormatFileState(s)), 0o644); err != nil {
		return fmt.Errorf("watchdog file: %w", err)
	}
	if err := os.Rename(tmp, d.path); err != nil {
		return fmt.Errorf("watchdog file: %w", err)
	}
	return nil
}

func (d *fileDevice) Feed() error {
	d.seq++
	return d.write(FileState{Armed: true, Timeout: d.timeout, Seq: d.seq})
}

func (d *fileDevice) Timeout() time.Duration { return d.timeout }

func (d *fileDevice) Disarm() error { return d.write(FileState{}) }

// Release leaves the last armed line in place: the supervisor's countdown goes on.
func (d *fileDevice) Release() error { return nil }
