package lab

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
)

// GossipKey is the lab's gossip key file in its directory, which every node sees: written
// (32 random bytes, base64, root-only) the first time it is asked for.
func (l *Lab) GossipKey() (string, error) { return WriteGossipKey(l.dir) }

// WriteGossipKey writes dir/gossip.key unless it exists, and returns its path.
func WriteGossipKey(dir string) (string, error) {
	path := filepath.Join(dir, "gossip.key")
	if _, err := os.Stat(path); err == nil {
		return path, nil
	} else if !errors.Is(err, fs.ErrNotExist) {
		return "", err
	}
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return "", err
	}
	return path, os.WriteFile(path, []byte(base64.StdEncoding.EncodeToString(key)+"\n"), 0o600)
}
