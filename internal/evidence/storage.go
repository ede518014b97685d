package evidence

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/computeha/computeha/internal/config"
	"github.com/computeha/computeha/internal/health"
)

// Errors of the storage reader; Observations.StorageErr wraps one of them, or the
// filesystem's own error.
var (
	// ErrNoSharedDir: the configuration names no shared directory, so there is no storage
	// evidence.
	ErrNoSharedDir = errors.New("no shared directory is configured (health.shared_dir)")
	// ErrStorageHung: the shared directory did not answer in time, or an earlier read of it
	// has still not returned.
	ErrStorageHung = errors.New("the shared directory does not answer")
)

// Storage reads the heartbeat records from the shared directory in a goroutine, so that its
// caller is never held longer than a bound when the storage hangs. A read that hangs keeps
// its goroutine (a process blocked in the kernel on a dead mount cannot be interrupted);
// until it returns, further reads fail at once instead of piling up more goroutines. The
// zero value reads the real filesystem.
type Storage struct {
	// FS replaces the shared directory, for tests: nil opens the directory named by the
	// configuration.
	FS fs.FS

	mu      sync.Mutex
	pending chan struct{} // closed when the read in flight returns; nil when none ran
	since   time.Time     // when the read in flight started
}

// Heartbeats is what one read of the shared directory found.
type Heartbeats struct {
	// Records are the hosts' records, by host. A host without a record file is absent.
	Records map[string]health.Record
	// Errs says, by host, why a record file that exists could not be used: unreadable,
	// torn, foreign, or naming another host. Such a host's storage signal is unknown, never
	// lost: its file is there.
	Errs map[string]error
}

// Read reads the records of hosts in dir within wait. The error is for the directory as a
// whole, and means no storage evidence at all: it is missing or unreadable (a mount point
// without its mount reads as "every host silent", which is not evidence of anything), the
// read took longer than wait (ErrStorageHung), or ctx ended.
func (s *Storage) Read(ctx context.Context, dir string, hosts []string, wait time.Duration) (Heartbeats, error) {
	return s.read(ctx, dir, hosts, false, wait)
}

// ReadJoined is Read of the listed hosts and of every other host that has a record file in
// dir: the hosts that joined by gossip write theirs there as the listed ones do.
func (s *Storage) ReadJoined(ctx context.Context, dir string, listed []string, wait time.Duration) (Heartbeats, error) {
	return s.read(ctx, dir, listed, true, wait)
}

func (s *Storage) read(ctx context.Context, dir string, hosts []string, joined bool, wait time.Duration) (Heartbeats, error) {
	fsys := s.FS
	if fsys == nil {
		if dir == "" {
			return Heartbeats{}, ErrNoSharedDir
		}
		fsys = os.DirFS(dir)
	}
	s.mu.Lock()
	if s.pending != nil {
		select {
		case <-s.pending:
		default:
			since := s.since
			s.mu.Unlock()
			return Heartbeats{}, fmt.Errorf("%s: %w: an earlier read has not returned for %s", dir, ErrStorageHung, time.Since(since).Round(time.Millisecond))
		}
	}
	done := make(chan struct{})
	s.pending, s.since = done, time.Now()
	s.mu.Unlock()

	type result struct {
		hb  Heartbeats
		err error
	}
	ch := make(chan result, 1)
	go func() {
		hb, err := readRecords(fsys, hosts, joined)
		// Over before its result is handed back: a read that follows at once must not find
		// this one still pending.
		close(done)
		ch <- result{hb, err}
	}()
	timer := time.NewTimer(wait)
	defer timer.Stop()
	select {
	case r := <-ch:
		if r.err != nil {
			return Heartbeats{}, fmt.Errorf("%s: %w", dir, r.err)
		}
		return r.hb, nil
	case <-timer.C:
		return Heartbeats{}, fmt.Errorf("%s: %w within %s", dir, ErrStorageHung, wait)
	case <-ctx.Done():
		return Heartbeats{}, fmt.Errorf("%s: %w", dir, ctx.Err())
	}
}

func readRecords(fsys fs.FS, hosts []string, joined bool) (Heartbeats, error) {
	// The directory itself first: a missing mount point reads as "no record anywhere",
	// which would be taken for every host having stopped writing.
	if _, err := fs.Stat(fsys, "."); err != nil {
		return Heartbeats{}, err
	}
	if joined {
		entries, err := fs.ReadDir(fsys, ".")
		if err != nil {
			return Heartbeats{}, err
		}
		hosts = slices.Clone(hosts)
		for _, e := range entries {
			h, ok := strings.CutSuffix(e.Name(), health.RecordSuffix)
			if ok && e.Type().IsRegular() && config.ValidNodeName(h) && !slices.Contains(hosts, h) {
				hosts = append(hosts, h)
			}
		}
	}
	hb := Heartbeats{Records: make(map[string]health.Record, len(hosts))}
	fail := func(h string, err error) {
		if hb.Errs == nil {
			hb.Errs = map[string]error{}
		}
		hb.Errs[h] = err
	}
	for _, h := range hosts {
		name := health.RecordFile(h)
		data, err := fs.ReadFile(fsys, name)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			continue
		case err != nil:
			fail(h, err)
			continue
		}
		rec, err := health.ParseRecord(data)
		switch {
		case err != nil:
			fail(h, fmt.Errorf("%s: %w", name, err))
		case rec.Host != h:
			fail(h, fmt.Errorf("%s: the record is %s's", name, rec.Host))
		default:
			hb.Records[h] = rec
		}
	}
	return hb, nil
}
