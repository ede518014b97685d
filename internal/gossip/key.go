package gossip

import (
	"encoding/base64"
	"fmt"
	"strings"

	"github.com/computeha/computeha/internal/secretfile"
)

// ReadKey reads the gossip key from path: one line of standard base64 holding 16, 24 or 32
// bytes (AES-128, -192 or -256), in a secret file (secretfile: a regular file of this
// process's user that no one else may read or write). The key is never taken from the command
// line or the CIB.
func ReadKey(path string) ([]byte, error) {
	b, err := secretfile.Read(path, 4096)
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
