package hostcheck

import (
	"context"
	"errors"
	"net/netip"
	"sync"
)

// FakeProber answers probes from a table: a target answers when Reach[target] is true.
type FakeProber struct {
	mu    sync.Mutex
	reach map[netip.Addr]bool
	// Rounds counts the calls of Probe.
	Rounds int
	// Targets are the last round's.
	Targets []netip.Addr
	closed  bool
}

var _ Prober = (*FakeProber)(nil)

// NewFakeProber returns a prober in which nobody answers yet.
func NewFakeProber() *FakeProber { return &FakeProber{reach: map[netip.Addr]bool{}} }

// Set makes target answer (or not) from the next round on.
func (f *FakeProber) Set(target netip.Addr, answers bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.reach[target] = answers
}

func (f *FakeProber) Probe(_ context.Context, targets []netip.Addr) (map[netip.Addr]error, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return nil, errors.New("fake prober: closed")
	}
	f.Rounds++
	f.Targets = append([]netip.Addr(nil), targets...)
	res := map[netip.Addr]error{}
	for _, t := range targets {
		if f.reach[t] {
			res[t] = nil
		} else {
			res[t] = ErrNoReply
		}
	}
	return res, nil
}

func (f *FakeProber) Close() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.closed = true
	return nil
}

// Publication is one attribute a FakePublisher was asked to set.
type Publication struct {
	Node, Name, Value string
}

// FakePublisher records publications; it fails them while Err is set.
type FakePublisher struct {
	mu   sync.Mutex
	Err  error
	done []Publication
}

var _ Publisher = (*FakePublisher)(nil)

func (f *FakePublisher) Publish(_ context.Context, node, name, value string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.Err != nil {
		return f.Err
	}
	f.done = append(f.done, Publication{node, name, value})
	return nil
}

// SetErr makes the following publications fail with err (nil: succeed).
func (f *FakePublisher) SetErr(err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.Err = err
}

// Take returns the publications made since the last Take.
func (f *FakePublisher) Take() []Publication {
	f.mu.Lock()
	defer f.mu.Unlock()
	d := f.done
	f.done = nil
	return d
}

// FakeStore is an in-memory Store whose writes can fail (Err) or hang until released
// (Block).
type FakeStore struct {
	mu     sync.Mutex
	files  map[string][]byte
	err    error
	block  chan struct{}
	writes int
}

var _ Store = (*FakeStore)(nil)

// NewFakeStore returns an empty store.
func NewFakeStore() *FakeStore { return &FakeStore{files: map[string][]byte{}} }

func (f *FakeStore) ReadFile(path string) ([]byte, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	b, ok := f.files[path]
	if !ok {
		return nil, errors.New("fake store: no such file")
	}
	return b, nil
}

func (f *FakeStore) WriteFile(path string, data []byte) error {
	f.mu.Lock()
	f.writes++
	block, err := f.block, f.err
	f.mu.Unlock()
	if block != nil {
		<-block
	}
	if err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.files[path] = append([]byte(nil), data...)
	return nil
}

// Writes counts the writes started.
func (f *FakeStore) Writes() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.writes
}

// Fail makes the following writes fail with err (nil: succeed).
func (f *FakeStore) Fail(err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.err = err
}

// Block makes the following writes hang until the returned function is called.
func (f *FakeStore) Block() (release func()) {
	ch := make(chan struct{})
	f.mu.Lock()
	f.block = ch
	f.mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			f.mu.Lock()
			f.block = nil
			f.mu.Unlock()
			close(ch)
		})
	}
}

// FakeService is a ServiceCheck whose answer the test sets.
type FakeService struct {
	mu sync.Mutex
	up bool
}

var _ ServiceCheck = (*FakeService)(nil)

// Set says whether the service runs.
func (f *FakeService) Set(up bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.up = up
}

func (f *FakeService) Running() (bool, string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.up {
		return true, "fake service runs", nil
	}
	return false, "fake service is down", nil
}
