package gossip

import (
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"syscall"
)

// ReadKey reads the gossip key from path: one line of standard base64 holding 16, 24 or 32
// bytes (AES-128, -192 or -256), in a regular file (not a symbolic link) of this process's
// user that no one else may read or write. The key is never taken from the command line or
// the CIB.
func ReadKey(path string) ([]byte, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NOFOLLOW, 0)
	if err != nil {
		if errors.Is(err, syscall.ELOOP) {
			return nil, fmt.Errorf("gossip key %s: a symbolic link, not a file", path)
		}
		return nil, fmt.Errorf("gossip key: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("gossip key: %w", err)
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("gossip key %s: not a regular file", path)
	}
	if perm := st.Mode().Perm(); perm&0o077 != 0 {
		return nil, fmt.Errorf("gossip key %s: others may read or write it (mode %04o): make it 0600 or 0400", path, perm)
	}
	if sys, ok := st.Sys().(*syscall.Stat_t); !ok || int(sys.Uid) != os.Geteuid() {
		return nil, fmt.Errorf("gossip key %s: not owned by this process's user (uid %d)", path, os.Geteuid())
	}
	b, err := io.ReadAll(io.LimitReader(f, 4096))
	if err != nil {
		return nil, fmt.Errorf("gossip key: %w", err)
	}
	text := strings.TrimRight(string(b), "\r\n")
	if strings.ContainsAny(text, "\r\n") {
		return nil, fmt.Errorf("gossip key %s: more than one line", path)
	}
	key, err := base64.StdEncoding.DecodeString(strings.TrimSpace(text))
	if err != nil {
		return nil, fmt.Errorf("gossip key %s: not base64: %w", path, err)
	}
	switch len(key) {
	case 16, 24, 32:
		return key, nil
	}
	return nil, fmt.Errorf("gossip key %s: %d bytes, want 16, 24 or 32", path, len(key))
}
