package fence

import (
	"bytes"
	"io"
	"sync"
)

// redactor is the one writer every agent message passes through: it masks
// each secret (passwords, keys) before the bytes leave the process, so a
// library error that quotes its input cannot leak one.
type redactor struct {
	mu      sync.Mutex
	w       io.Writer
	secrets []string
}

// minSecretLen keeps masking from garbling messages when a secret is a
// single common character.
const minSecretLen = 3

func (r *redactor) addSecret(s string) {
	if len(s) < minSecretLen {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.secrets = append(r.secrets, s)
}

func (r *redactor) mask(p []byte) []byte {
	for _, s := range r.secrets {
		p = bytes.ReplaceAll(p, []byte(s), []byte("****"))
	}
	return p
}

func (r *redactor) Write(p []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, err := r.w.Write(r.mask(p)); err != nil {
		return 0, err
	}
	return len(p), nil
}
