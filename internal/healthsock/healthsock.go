// Package healthsock is the local health socket of computeha's daemons: the daemon answers
// each connection with one JSON line, and its OCF agent's monitor asks it.
package healthsock

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"time"
)

// Listen opens the socket at path, root only: it tells nothing secret, but nobody else has
// any business asking. A socket left by a previous process is replaced.
func Listen(path string) (net.Listener, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		return nil, fmt.Errorf("health socket: %w", err)
	}
	_ = os.Remove(path)
	ln, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("health socket: %w", err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		ln.Close()
		return nil, fmt.Errorf("health socket: %w", err)
	}
	return ln, nil
}

// Serve answers each connection on ln with one JSON line of answer(), until ctx ends (then it
// returns nil).
func Serve[T any](ctx context.Context, ln net.Listener, answer func() T) error {
	go func() {
		<-ctx.Done()
		ln.Close()
	}()
	for {
		conn, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("health socket: %w", err)
		}
		go func() {
			defer conn.Close()
			_ = conn.SetDeadline(time.Now().Add(2 * time.Second))
			_ = json.NewEncoder(conn).Encode(answer())
		}()
	}
}

// Ask reads one answer from the socket at path. An error means the daemon did not answer
// (not running, or hung past ctx's deadline).
func Ask[T any](ctx context.Context, path string) (T, error) {
	var zero T
	var d net.Dialer
	conn, err := d.DialContext(ctx, "unix", path)
	if err != nil {
		return zero, err
	}
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	}
	line, err := bufio.NewReader(conn).ReadBytes('\n')
	if err != nil {
		return zero, fmt.Errorf("health answer: %w", err)
	}
	var v T
	if err := json.Unmarshal(line, &v); err != nil {
		return zero, fmt.Errorf("health answer: %w", err)
	}
	return v, nil
}
