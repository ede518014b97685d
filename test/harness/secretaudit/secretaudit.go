// Package secretaudit looks for secrets where they must never be: the command lines of every
// process (sampled while a test runs), log files, the history and a dump of the CIB. A finding
// names the secret and where it was seen, never the value.
package secretaudit

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// MinLen is the shortest secret the audit takes: a shorter value would be found by chance.
const MinLen = 8

// Secret is a value that must appear nowhere the audit looks, and the name it is reported by.
type Secret struct {
	Name, Value string
}

// Finding is one secret seen where it must not be.
type Finding struct {
	Secret string // its name
	Where  string // "argv of pid 123 (sleep)", a file's path, "the CIB"
}

func (f Finding) String() string { return f.Secret + " in " + f.Where }

// Auditor collects findings; it is safe for concurrent use.
type Auditor struct {
	secrets []Secret

	mu       sync.Mutex
	findings []Finding
	seen     map[Finding]bool
	samples  int // process samples taken
	procs    int // command lines read, over every sample
	files    int // files scanned
}

// New returns an auditor for secrets; it refuses none, an empty name, or a value shorter than
// MinLen.
func New(secrets []Secret) (*Auditor, error) {
	if len(secrets) == 0 {
		return nil, errors.New("secretaudit: no secrets to look for")
	}
	for _, s := range secrets {
		if s.Name == "" || len(s.Value) < MinLen {
			return nil, fmt.Errorf("secretaudit: secret %q is unnamed or shorter than %d characters", s.Name, MinLen)
		}
	}
	return &Auditor{secrets: slices.Clone(secrets), seen: map[Finding]bool{}}, nil
}

// ScanBytes records every secret found in b as seen at where.
func (a *Auditor) ScanBytes(where string, b []byte) {
	for _, s := range a.secrets {
		if bytes.Contains(b, []byte(s.Value)) {
			a.add(Finding{Secret: s.Name, Where: where})
		}
	}
}

func (a *Auditor) add(f Finding) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if !a.seen[f] {
		a.seen[f] = true
		a.findings = append(a.findings, f)
	}
}

// ScanTree scans every regular file under root that keep accepts (keep gets the path). A
// file that vanishes meanwhile is skipped; any other error ends the walk.
func (a *Auditor) ScanTree(root string, keep func(path string) bool) error {
	return filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		if !d.Type().IsRegular() || !keep(path) {
			return nil
		}
		b, err := os.ReadFile(path)
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if err != nil {
			return err
		}
		a.mu.Lock()
		a.files++
		a.mu.Unlock()
		a.ScanBytes(path, b)
		return nil
	})
}

// LogLike tells a log, an output capture or a history file from the rest (configurations and
// key files hold secrets on purpose): under a directory named log, or named *.log, *.out,
// *.err, *.jsonl, or history.db and its journal files.
func LogLike(path string) bool {
	base := filepath.Base(path)
	switch {
	case strings.HasPrefix(base, "history.db"):
		return true
	case slices.Contains([]string{".log", ".out", ".err", ".jsonl"}, filepath.Ext(base)):
		return true
	}
	return slices.Contains(strings.Split(filepath.ToSlash(filepath.Dir(path)), "/"), "log")
}

// SampleProcesses reads the command line of every process once (procRoot is /proc).
func (a *Auditor) SampleProcesses(procRoot string) error {
	ents, err := os.ReadDir(procRoot)
	if err != nil {
		return err
	}
	n := 0
	for _, e := range ents {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join(procRoot, e.Name(), "cmdline"))
		if err != nil {
			continue // gone meanwhile
		}
		n++
		if a.contains(b) {
			comm, _ := os.ReadFile(filepath.Join(procRoot, e.Name(), "comm"))
			a.ScanBytes(fmt.Sprintf("the argv of pid %s (%s)", e.Name(), strings.TrimSpace(string(comm))), b)
		}
	}
	a.mu.Lock()
	a.samples++
	a.procs += n
	a.mu.Unlock()
	return nil
}

func (a *Auditor) contains(b []byte) bool {
	for _, s := range a.secrets {
		if bytes.Contains(b, []byte(s.Value)) {
			return true
		}
	}
	return false
}

// Watch samples the processes every interval until ctx ends.
func (a *Auditor) Watch(ctx context.Context, procRoot string, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		_ = a.SampleProcesses(procRoot)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Findings returns what was found, in the order it was first seen.
func (a *Auditor) Findings() []Finding {
	a.mu.Lock()
	defer a.mu.Unlock()
	return slices.Clone(a.findings)
}

// Coverage says how much was looked at: process samples, command lines and files.
func (a *Auditor) Coverage() (samples, cmdlines, files int) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.samples, a.procs, a.files
}

// ReadEnvFile reads secrets from a file of NAME=value or NAME='value' lines (a shell
// fragment, as a secrets file sourced by scripts); blank lines and comments are skipped.
func ReadEnvFile(path string) ([]Secret, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []Secret
	sc := bufio.NewScanner(f)
	for line := 1; sc.Scan(); line++ {
		l := strings.TrimSpace(sc.Text())
		if l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		name, v, ok := strings.Cut(l, "=")
		if !ok || name == "" {
			return nil, fmt.Errorf("%s:%d: not NAME=value", path, line)
		}
		if len(v) >= 2 && (v[0] == '\'' || v[0] == '"') && v[len(v)-1] == v[0] {
			v = v[1 : len(v)-1]
		}
		out = append(out, Secret{Name: name, Value: v})
	}
	return out, sc.Err()
}
