// Package healthsock is the local health socket of computeha's daemons: the daemon answers
// each connection with one JSON line, and its OCF agent's monitor asks it.
package healthsock

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"time"

	"github.com/computeha/computeha/crm"
)

// Listen opens the socket at path, root only: it tells nothing secret, but nobody else has
// any business asking. A socket left by a previous process is replaced.
//
// A missing directory of the socket is created, as runtimeDir describes; an existing one is
// left as it is.
func Listen(path string) (net.Listener, error) {
	return listen(path, crm.HaclientGID)
}

func listen(path string, sharedGroup func() (int, bool)) (net.Listener, error) {
	if err := runtimeDir(filepath.Dir(path), sharedGroup); err != nil {
		return nil, fmt.Errorf("health socket directory: %w", err)
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

// runtimeDir makes dir when it is missing. The health sockets share their directory,
// /run/computeha, with the alert socket and the alert spool, which Pacemaker's alert agent
// (user hacluster, group haclient) must reach: the package's tmpfiles.d snippet and the alert
// watcher make it root:haclient, crm.SharedDirMode (3770). A directory made root-only here,
// by a daemon that happened to start first, would shut the alert agent out until the next
// boot, so a directory made here is made the same way; without the group (no Pacemaker on the host) it is 0750,
// root's. An existing directory keeps its mode and group: the snippet and the watcher set
// them, and changing them here would only fight those. The sockets stay 0600 either way.
// Missing parents are made 0750.
func runtimeDir(dir string, sharedGroup func() (int, bool)) error {
	if err := os.MkdirAll(filepath.Dir(dir), 0o750); err != nil {
		return err
	}
	// Mkdir, not a check before it: whoever creates the directory first sets it up, and a
	// directory made by anyone else in between is left alone.
	err := os.Mkdir(dir, 0o750)
	if errors.Is(err, fs.ErrExist) {
		return nil
	}
	if err != nil {
		return err
	}
	gid, ok := sharedGroup()
	if !ok {
		return nil
	}
	if err := os.Chown(dir, -1, gid); err != nil {
		return err
	}
	return os.Chmod(dir, crm.SharedDirMode)
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
