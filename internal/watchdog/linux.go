package watchdog

import (
	"fmt"
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// The ioctls of linux/watchdog.h.
const (
	wdiocKeepalive  = 0x80045705 // _IOR('W', 5, int)
	wdiocSetTimeout = 0xc0045706 // _IOWR('W', 6, int)
	wdiocGetTimeout = 0x80045707 // _IOR('W', 7, int)
)

// linuxDevice is a Linux watchdog device (the kernel's watchdog API).
type linuxDevice struct {
	f       *os.File
	timeout time.Duration
}

// OpenLinux opens a Linux watchdog device (which starts its countdown) and sets its timeout.
// A driver that cannot take the timeout keeps its own, which Timeout reports.
func OpenLinux(path string, timeout time.Duration) (Device, error) {
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		return nil, fmt.Errorf("watchdog: %w", err)
	}
	fd := int(f.Fd())
	secs := int((timeout + time.Second - 1) / time.Second)
	if err := unix.IoctlSetPointerInt(fd, wdiocSetTimeout, secs); err != nil {
		// Not every driver can change its timeout: keep going with the one it has.
		secs = 0
	}
	got, err := unix.IoctlGetInt(fd, wdiocGetTimeout)
	if err != nil || got <= 0 {
		if secs == 0 {
			// Neither set nor read: the countdown is unknown, so nothing built on it is safe.
			_, _ = f.Write([]byte("V"))
			_ = f.Close()
			return nil, fmt.Errorf("watchdog %s: the device's timeout can be neither set nor read", path)
		}
		got = secs
	}
	d := &linuxDevice{f: f, timeout: time.Duration(got) * time.Second}
	if err := d.Feed(); err != nil {
		_ = d.Disarm()
		return nil, err
	}
	return d, nil
}

func (d *linuxDevice) Feed() error {
	if err := unix.IoctlSetInt(int(d.f.Fd()), wdiocKeepalive, 0); err != nil {
		// Writing any byte but 'V' feeds the device too.
		if _, werr := d.f.Write([]byte{0}); werr != nil {
			return fmt.Errorf("watchdog %s: feed: %w", d.f.Name(), werr)
		}
	}
	return nil
}

func (d *linuxDevice) Timeout() time.Duration { return d.timeout }

// Disarm writes the magic character before closing, which stops drivers that allow it
// (not those built with nowayout).
func (d *linuxDevice) Disarm() error {
	_, err := d.f.Write([]byte("V"))
	if cerr := d.f.Close(); err == nil {
		err = cerr
	}
	return err
}

// Release closes without the magic character: the driver keeps counting down.
func (d *linuxDevice) Release() error { return d.f.Close() }
