package hostcheck

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/computeha/computeha/internal/health"
)

// Store reads and writes heartbeat files. The default, DirStore, uses the file system; tests
// use a fake that fails or hangs on demand.
type Store interface {
	// ReadFile returns a file's content.
	ReadFile(path string) ([]byte, error)
	// WriteFile replaces a file's content atomically: a reader sees the old or the new
	// content, never a torn one, and the new content is on stable storage when it returns.
	WriteFile(path string, data []byte) error
}

// DirStore is the Store of a directory on the file system.
type DirStore struct{}

var _ Store = DirStore{}

// ReadFile reads path.
func (DirStore) ReadFile(path string) ([]byte, error) { return os.ReadFile(path) }

// WriteFile writes data to a temporary file in path's directory, syncs it, renames it over
// path and syncs the directory, so the rename itself survives a crash of this host.
func (DirStore) WriteFile(path string, data []byte) error {
	dir := filepath.Dir(path)
	// One fixed temporary name per file: only one write per file is ever in flight, and a
	// write interrupted by a crash leaves nothing that piles up.
	tmp := filepath.Join(dir, "."+filepath.Base(path)+".tmp")
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		_ = os.Remove(tmp)
		return err
	}
	return syncDir(dir)
}

// syncDir makes a rename in dir durable. File systems that cannot sync a directory (FUSE
// mounts such as sshfs, some network file systems) answer EINVAL or ENOTSUP: their rename is
// as durable as they make it, which is not this host's to improve.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	err = d.Sync()
	if errors.Is(err, syscall.EINVAL) || errors.Is(err, syscall.ENOTSUP) || errors.Is(err, syscall.ENOSYS) {
		return nil
	}
	return err
}

// writer writes the heartbeat record, at most one write in flight. A write that hangs (a hard
// NFS mount, a FUSE server gone) keeps its goroutine; no other is started behind it, and the
// writer is reported failing once nothing was written for staleAfter.
type writer struct {
	store      Store
	path       string
	staleAfter time.Duration
	// timeout is how long a write may take before it is reported as hung. It cannot be
	// interrupted (a system call on a hung mount does not return), only reported.
	timeout time.Duration
	started time.Time

	mu            sync.Mutex
	seq           uint64 // last seq written or attempted; 0 until the first write
	inflight      bool
	inflightSince time.Time
	lastOK        time.Time // Time of the newest record written successfully
	lastOKAt      time.Time // the same instant on the process's clock (monotonic in production)
	lastOKSeq     uint64
	lastDuration  time.Duration
	lastErr       error
	failingSince  time.Time // first failure since the last success
	wg            sync.WaitGroup
}

func newWriter(store Store, dir, host string, staleAfter, timeout time.Duration, now time.Time) *writer {
	return &writer{
		store: store, path: filepath.Join(dir, health.RecordFile(host)),
		staleAfter: staleAfter, timeout: timeout, started: now,
	}
}

// kick starts writing rec (its Seq is filled in) unless a write is still in flight, in which
// case it reports false: the storage is hung, and piling goroutines up on it helps nobody. at
// is rec.Time on the process's clock: the record's time is wall-clock, and a clock step
// must not move what the host measures its own silence from.
func (w *writer) kick(rec health.Record, at time.Time, now func() time.Time) bool {
	return w.start(rec, at, now, nil)
}

// writeNow writes rec and waits for it up to timeout: the error is the write's, or a timeout.
func (w *writer) writeNow(rec health.Record, at time.Time, now func() time.Time, timeout time.Duration) error {
	done := make(chan error, 1)
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for !w.start(rec, at, now, done) {
		// Another write is in flight: wait for it, within the same bound.
		select {
		case <-deadline.C:
			return errors.New("an earlier heartbeat write has not returned")
		case <-time.After(10 * time.Millisecond):
		}
	}
	select {
	case err := <-done:
		return err
	case <-deadline.C:
		return fmt.Errorf("the heartbeat write did not return within %s", timeout)
	}
}

func (w *writer) start(rec health.Record, at time.Time, now func() time.Time, done chan<- error) bool {
	w.mu.Lock()
	if w.inflight {
		w.mu.Unlock()
		return false
	}
	w.inflight, w.inflightSince = true, rec.Time
	w.mu.Unlock()
	w.wg.Add(1)
	go func() {
		defer w.wg.Done()
		start := now()
		seq, err := w.write(rec, start)
		end := now()
		if done != nil {
			defer func() { done <- err }()
		}
		w.mu.Lock()
		defer w.mu.Unlock()
		w.inflight = false
		w.lastDuration = end.Sub(start)
		if err != nil {
			w.lastErr = err
			if w.failingSince.IsZero() {
				w.failingSince = rec.Time
			}
			return
		}
		w.lastErr, w.failingSince = nil, time.Time{}
		w.lastOK, w.lastOKAt, w.lastOKSeq = rec.Time, at, seq
	}()
	return true
}

// write runs in the write goroutine: it numbers rec and writes it.
func (w *writer) write(rec health.Record, now time.Time) (uint64, error) {
	w.mu.Lock()
	seq := w.seq
	w.mu.Unlock()
	if seq == 0 {
		seq = w.initialSeq(now)
	}
	seq++
	w.mu.Lock()
	w.seq = seq
	w.mu.Unlock()
	rec.Seq = seq
	data, err := health.MarshalRecord(rec)
	if err != nil {
		return seq, err
	}
	if err := w.store.WriteFile(w.path, data); err != nil {
		return seq, fmt.Errorf("writing the heartbeat %s: %w", w.path, err)
	}
	return seq, nil
}

// initialSeq continues the sequence of the record already on the storage, so that readers
// never see it go backwards when hostcheck restarts. When that record cannot be read, the
// sequence starts from the time in milliseconds: one write per interval (at least a
// millisecond) never catches up with it, so a restart still moves forwards.
func (w *writer) initialSeq(now time.Time) uint64 {
	if data, err := w.store.ReadFile(w.path); err == nil {
		if rec, err := health.ParseRecord(data); err == nil {
			return rec.Seq
		}
	}
	return uint64(now.UnixMilli())
}

// wait waits for the write in flight, if any (tests only: a hung write never ends).
func (w *writer) wait() { w.wg.Wait() }

// writerStatus is the writer's state at one instant.
type writerStatus struct {
	OK        bool
	Reason    string
	Seq       uint64
	LastWrite time.Time
	// LastWriteAt is LastWrite on the process's clock.
	LastWriteAt time.Time
	// Duration is how long the last finished write took.
	Duration time.Duration
	// Hung tells whether a write has been in flight for longer than the write timeout.
	Hung bool
}

// status judges the writer at now: failing once nothing has been written for staleAfter
// (the age at which readers count the heartbeat as lost), and not yet OK before the first
// write succeeds.
func (w *writer) status(now time.Time) writerStatus {
	w.mu.Lock()
	defer w.mu.Unlock()
	st := writerStatus{Seq: w.lastOKSeq, LastWrite: w.lastOK, LastWriteAt: w.lastOKAt, Duration: w.lastDuration}
	st.Hung = w.inflight && now.Sub(w.inflightSince) > w.timeout
	ref := w.lastOK
	if ref.IsZero() {
		ref = w.started
	}
	age := now.Sub(ref)
	switch {
	case !w.lastOK.IsZero() && age <= w.staleAfter:
		st.OK = true
	case st.Hung:
		st.Reason = fmt.Sprintf("a heartbeat write to %s has hung for %s", w.path, now.Sub(w.inflightSince).Round(time.Millisecond))
		if !w.lastOK.IsZero() {
			st.Reason += fmt.Sprintf("; nothing written for %s", age.Round(time.Millisecond))
		}
	case w.lastErr != nil && !w.failingSince.IsZero():
		st.Reason = fmt.Sprintf("heartbeat writes have failed for %s", now.Sub(w.failingSince).Round(time.Millisecond))
		if !w.lastOK.IsZero() {
			st.Reason += fmt.Sprintf(" (last written %s ago)", age.Round(time.Millisecond))
		}
		st.Reason += fmt.Sprintf(": %v", w.lastErr)
	case w.lastOK.IsZero():
		st.Reason = "no heartbeat written yet to " + w.path
	default:
		st.Reason = fmt.Sprintf("no heartbeat written to %s for %s", w.path, age.Round(time.Millisecond))
	}
	return st
}
