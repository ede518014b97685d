package e2e

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Memory is a process's memory from /proc/PID/status, in kB: its resident set now (RSS), its
// peak (HWM), and the anonymous (heap, stacks) and file-backed (the binary's pages, shared with
// every process of the same binary) parts of RSS.
type Memory struct {
	RSS, HWM, Anon, File int64
}

// ReadMemory reads pid's Memory.
func ReadMemory(pid int) (Memory, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return Memory{}, err
	}
	var m Memory
	fields := map[string]*int64{"VmRSS:": &m.RSS, "VmHWM:": &m.HWM, "RssAnon:": &m.Anon, "RssFile:": &m.File}
	for line := range strings.Lines(string(b)) {
		if f := strings.Fields(line); len(f) >= 2 && fields[f[0]] != nil {
			if *fields[f[0]], err = strconv.ParseInt(f[1], 10, 64); err != nil {
				return Memory{}, fmt.Errorf("/proc/%d/status: %s: %w", pid, f[0], err)
			}
		}
	}
	return m, nil
}

// MemorySampler reads a process's Memory every interval until its context ends, and keeps
// the largest anonymous and file-backed parts seen: VmHWM alone does not tell them apart.
type MemorySampler struct {
	mu         sync.Mutex
	last       Memory
	anon, file int64
	err        error
}

// SampleMemory starts sampling pid every interval until ctx ends.
func SampleMemory(ctx context.Context, pid int, interval time.Duration) *MemorySampler {
	s := &MemorySampler{}
	s.sample(pid)
	go func() {
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				s.sample(pid)
			}
		}
	}()
	return s
}

func (s *MemorySampler) sample(pid int) {
	m, err := ReadMemory(pid)
	s.mu.Lock()
	defer s.mu.Unlock()
	if err != nil {
		s.err = err
		return
	}
	s.last, s.anon, s.file = m, max(s.anon, m.Anon), max(s.file, m.File)
}

// Peaks is the last Memory read, with the largest anonymous and file-backed parts sampled in
// Anon and File; an error if the process could not be read at the last try (it ended).
func (s *MemorySampler) Peaks() (Memory, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	m := s.last
	m.Anon, m.File = s.anon, s.file
	return m, s.err
}
