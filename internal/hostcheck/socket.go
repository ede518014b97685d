package hostcheck

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

// listenHealth opens the health socket, root only: it tells nothing secret, but nobody else
// has any business asking.
func listenHealth(path string) (net.Listener, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		return nil, fmt.Errorf("health socket: %w", err)
	}
	// A socket left by a previous process would make Listen fail.
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

// serveHealth answers each connection with one JSON line of Health, until ctx ends.
func serveHealth(ctx context.Context, ln net.Listener, health func() Health) error {
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
			_ = json.NewEncoder(conn).Encode(health())
		}()
	}
}

// AskHealth reads a hostcheck process's health from its socket. An error means the process
// did not answer (not running, or hung).
func AskHealth(ctx context.Context, path string) (Health, error) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "unix", path)
	if err != nil {
		return Health{}, err
	}
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	}
	line, err := bufio.NewReader(conn).ReadBytes('\n')
	if err != nil {
		return Health{}, fmt.Errorf("health answer: %w", err)
	}
	var h Health
	if err := json.Unmarshal(line, &h); err != nil {
		return Health{}, fmt.Errorf("health answer: %w", err)
	}
	return h, nil
}
