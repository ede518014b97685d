package selffence

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"testing/fstest"
	"time"

	"github.com/computeha/computeha/crm"
	"github.com/computeha/computeha/fence"
	"github.com/computeha/computeha/internal/evidence"
	"github.com/computeha/computeha/internal/health"
)

var t0 = time.Date(2026, 12, 6, 10, 0, 0, 0, time.UTC)

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) sleep(_ context.Context, d time.Duration) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
	return nil
}

// pills is an in-memory pill store.
type pills struct {
	mu      sync.Mutex
	files   map[string][]byte
	err     error // of writes
	readErr error
}

func (p *pills) ReadFile(path string) ([]byte, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.readErr != nil {
		return nil, p.readErr
	}
	b, ok := p.files[path]
	if !ok {
		return nil, fs.ErrNotExist
	}
	return b, nil
}

func (p *pills) WriteFile(path string, data []byte) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.err != nil {
		return p.err
	}
	p.files[path] = data
	return nil
}

func (p *pills) Remove(path string) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.files, path)
	return nil
}

func (p *pills) pill(t *testing.T) *health.Pill {
	t.Helper()
	b, err := p.ReadFile("/shared/cmp1.pill")
	if err != nil {
		return nil
	}
	pl, err := health.ParsePill(b)
	if err != nil {
		t.Fatal(err)
	}
	return &pl
}

// world is the evidence as a function of the fake clock.
type world struct {
	clk    *clock
	pills  *pills
	record func(now time.Time, pill *health.Pill) *health.Record
	view   func(now time.Time) string // ctl1's view of mgmt
}

func (w *world) Status(context.Context) (*crm.Status, error) {
	return &crm.Status{Nodes: []crm.Node{{Name: "ctl1", Online: true}, {Name: "cmp1"}, {Name: "cmp2", Online: true}}}, nil
}

func (w *world) AttributeAllNodes(_ context.Context, name string) (map[string]string, error) {
	if name != health.ReachAttribute("mgmt") {
		return map[string]string{}, nil
	}
	return map[string]string{"ctl1": w.view(w.clk.now())}, nil
}

// Open serves the shared directory: the record the world shows now.
func (w *world) Open(name string) (fs.File, error) {
	m := fstest.MapFS{}
	var pill *health.Pill
	if b, err := w.pills.ReadFile("/shared/cmp1.pill"); err == nil {
		if p, err := health.ParsePill(b); err == nil {
			pill = &p
		}
	}
	if rec := w.record(w.clk.now(), pill); rec != nil {
		b, _ := health.MarshalRecord(*rec)
		m["cmp1.heartbeat"] = &fstest.MapFile{Data: b}
	}
	return m.Open(name)
}

const cfgDoc = `cloud: x
segments:
  seg-a:
    hosts: [cmp1, cmp2]
health:
  shared_dir: /shared
  networks:
    - {name: mgmt, management: true}
  hosts:
    ctl1: {mgmt: 192.0.2.1}
    cmp1: {mgmt: 192.0.2.11}
    cmp2: {mgmt: 192.0.2.12}
  watchdog: {device: /dev/watchdog, timeout: 5s, self_fence_after: 5s, observers: [ctl1], margin: 2s}
`

func writeConfig(t *testing.T, doc string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "evacd.yaml")
	if err := os.WriteFile(p, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func armed(now time.Time) *health.Record {
	return &health.Record{
		Host: "cmp1", Seq: uint64(now.Unix()), Time: now, Service: health.ServiceOK,
		Watchdog: &health.RecordWatchdog{TimeoutMS: 5000, SelfFenceAfterMS: 5000},
	}
}

type result struct {
	code           int
	stdout, stderr string
	took           time.Duration
}

func run(t *testing.T, w *world, args ...string) result {
	t.Helper()
	var out, errb bytes.Buffer
	start := w.clk.now()
	deps := Deps{Cluster: w, Storage: &evidence.Storage{FS: w}, Pills: w.pills, Now: w.clk.now, Node: "ctl1"}
	code := fence.Main(context.Background(), NewAgent(deps), fence.Env{
		Args: args, Stdin: strings.NewReader(""), Stdout: &out, Stderr: &errb, Now: w.clk.now, Sleep: w.clk.sleep,
	})
	return result{code, out.String(), errb.String(), w.clk.now().Sub(start)}
}

func newWorld() *world {
	return &world{clk: &clock{t: t0}, pills: &pills{files: map[string][]byte{}}}
}

func TestOffSucceedsOnceTheAcknowledgedCountdownHasRun(t *testing.T) {
	w := newWorld()
	cfg := writeConfig(t, cfgDoc)
	// The host lives on, reachable, and acknowledges the pill two seconds after it appears.
	var ackAt time.Time
	w.record = func(now time.Time, pill *health.Pill) *health.Record {
		r := armed(now)
		if pill != nil && now.Sub(pill.Time) >= 2*time.Second {
			if ackAt.IsZero() {
				ackAt = now
			}
			r.Condemned = &health.Condemned{Pill: pill.ID, Since: ackAt}
		}
		return r
	}
	w.view = func(time.Time) string { return "cmp1=ok cmp2=ok" }
	r := run(t, w, "-o", "off", "-n", "cmp1", "--config", cfg)
	if r.code != 0 || r.stdout != "Success: Powered OFF\n" {
		t.Fatalf("off: code %d, stdout %q, stderr %s", r.code, r.stdout, r.stderr)
	}
	// Seen in the first round after the clock skew (2s): only a record written more than
	// that after the attempt began counts; then the 5s countdown and the 2s margin.
	if r.took <= 9*time.Second || r.took > 10*time.Second {
		t.Fatalf("off took %s, want 9-10s (ack seen after 2s + 5s + 2s)", r.took)
	}
	if w.pills.pill(t) != nil {
		t.Fatal("the pill is still there after the host was called off")
	}
}

func TestOffSucceedsOnAProvenSilence(t *testing.T) {
	w := newWorld()
	cfg := writeConfig(t, cfgDoc)
	// Dead at t0-1s: its last heartbeat then, ctl1's last answer from it a second before.
	w.record = func(time.Time, *health.Pill) *health.Record { return armed(t0.Add(-time.Second)) }
	w.view = func(time.Time) string {
		return "cmp1=lost@" + strconv.FormatInt(t0.Add(-2*time.Second).UnixMilli(), 10) + " cmp2=ok"
	}
	r := run(t, w, "-o", "off", "-n", "cmp1", "--config", cfg)
	if r.code != 0 {
		t.Fatalf("off: code %d, stderr %s", r.code, r.stderr)
	}
	// Contact t0-1s + 2s of skew, then 5s alone + a 1s round + 5s countdown + 2s margin.
	if r.took < 14*time.Second || r.took > 14500*time.Millisecond {
		t.Fatalf("off took %s, want 14s", r.took)
	}
	if w.pills.pill(t) != nil {
		t.Fatal("the pill is still there")
	}
}

func TestOffRefusesAHostThatMayStillRunAndSaysWhy(t *testing.T) {
	tests := []struct {
		name   string
		record func(time.Time, *health.Pill) *health.Record
		view   func(time.Time) string
		want   []string
	}{
		{
			"reachable, no acknowledgement",
			func(now time.Time, _ *health.Pill) *health.Record { return armed(now) },
			func(time.Time) string { return "cmp1=ok" },
			[]string{"did not acknowledge the poison pill", "observer ctl1 still reaches cmp1 on network mgmt"},
		},
		{
			"silent, but its record announces no watchdog",
			func(time.Time, *health.Pill) *health.Record {
				r := armed(t0.Add(-time.Minute))
				r.Watchdog = nil
				return r
			},
			func(time.Time) string { return "cmp1=lost@1" },
			[]string{"announces no watchdog"},
		},
		{
			"isolated: still writing its heartbeat, so never silent long enough",
			func(now time.Time, _ *health.Pill) *health.Record { return armed(now) },
			func(time.Time) string { return "cmp1=lost@1" },
			[]string{"it is silent, but may run until"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := newWorld()
			w.record, w.view = tt.record, tt.view
			r := run(t, w, "-o", "off", "-n", "cmp1", "--config", writeConfig(t, cfgDoc))
			if r.code == 0 {
				t.Fatalf("off succeeded: %s", r.stdout)
			}
			for _, s := range tt.want {
				if !strings.Contains(r.stderr, s) {
					t.Errorf("stderr does not say %q:\n%s", s, r.stderr)
				}
			}
			// It waited the whole bound: self_fence_after 5 + interval 1 + timeout 5 + margin 2 +
			// skew 2 + 4 probes + stale_after 4 = 23s.
			if r.took < 22*time.Second || r.took > 24*time.Second {
				t.Errorf("gave up after %s, want about 23s", r.took)
			}
			if w.pills.pill(t) == nil {
				t.Error("the pill was removed though the host may run")
			}
		})
	}
}

func TestAnEarlierPillIsTakenUpAndOnRemovesIt(t *testing.T) {
	w := newWorld()
	cfg := writeConfig(t, cfgDoc)
	old := health.Pill{Host: "cmp1", ID: "earlier", By: "ctl2", Time: t0.Add(-time.Minute)}
	b, _ := health.MarshalPill(old)
	_ = w.pills.WriteFile("/shared/cmp1.pill", b)
	// Acknowledged long ago, in a record not written since: the host may have been reset
	// and started again since, so that proves nothing.
	w.record = func(time.Time, *health.Pill) *health.Record {
		r := armed(t0.Add(-50 * time.Second))
		r.Condemned = &health.Condemned{Pill: "earlier", Since: t0.Add(-50 * time.Second)}
		return r
	}
	w.view = func(time.Time) string { return "cmp1=ok" }
	if r := run(t, w, "-o", "off", "-n", "cmp1", "--config", cfg); r.code == 0 || !strings.Contains(r.stderr, "did not acknowledge") {
		t.Fatalf("an old acknowledgement was taken: code %d, stderr %s", r.code, r.stderr)
	}
	// Still writing, still condemned by it: the earlier pill is taken up, and the countdown
	// runs from when the acknowledgement is first seen here.
	w.record = func(now time.Time, _ *health.Pill) *health.Record {
		r := armed(now)
		r.Condemned = &health.Condemned{Pill: "earlier", Since: t0.Add(-50 * time.Second)}
		return r
	}
	r := run(t, w, "-o", "off", "-n", "cmp1", "--config", cfg)
	if r.code != 0 || r.took <= 9*time.Second || r.took > 10*time.Second {
		t.Fatalf("off: code %d after %s (want 0 after 9-10s), stderr %s", r.code, r.took, r.stderr)
	}
	_ = w.pills.WriteFile("/shared/cmp1.pill", b)
	if r := run(t, w, "-o", "on", "-n", "cmp1", "--config", cfg); r.code != 0 || w.pills.pill(t) != nil {
		t.Fatalf("on: code %d, pill %v, stderr %s", r.code, w.pills.pill(t), r.stderr)
	}
}

func TestAPillThatCannotBeReadIsNeverReplaced(t *testing.T) {
	w := newWorld()
	w.pills.readErr = errors.New("EIO")
	w.record = func(now time.Time, _ *health.Pill) *health.Record { return armed(now) }
	w.view = func(time.Time) string { return "cmp1=ok" }
	r := run(t, w, "-o", "off", "-n", "cmp1", "--config", writeConfig(t, cfgDoc))
	w.pills.readErr = nil
	if r.code == 0 || !strings.Contains(r.stderr, "the poison pill could not be written (EIO)") || len(w.pills.files) != 0 {
		t.Fatalf("code %d, files %v, stderr %s", r.code, w.pills.files, r.stderr)
	}
}

func TestAPillThatCannotBeWrittenLeavesOnlyTheSilence(t *testing.T) {
	w := newWorld()
	w.pills.err = errors.New("EROFS")
	w.record = func(now time.Time, _ *health.Pill) *health.Record { return armed(now) }
	w.view = func(time.Time) string { return "cmp1=ok" }
	r := run(t, w, "-o", "off", "-n", "cmp1", "--config", writeConfig(t, cfgDoc))
	if r.code == 0 || !strings.Contains(r.stderr, "the poison pill could not be written") {
		t.Fatalf("code %d, stderr %s", r.code, r.stderr)
	}
}

func TestValidateRefusesWhatCannotWork(t *testing.T) {
	noWatchdog := strings.Replace(cfgDoc, "  watchdog: {device: /dev/watchdog, timeout: 5s, self_fence_after: 5s, observers: [ctl1], margin: 2s}\n", "", 1)
	noShared := strings.Replace(cfgDoc, "  shared_dir: /shared\n", "", 1)
	tests := []struct {
		name, doc, plug, want string
	}{
		{"no watchdog configured", noWatchdog, "cmp1", "sets no health.watchdog.device"},
		{"no shared directory", noShared, "cmp1", "sets no health.shared_dir"},
		{"a host not listed", cfgDoc, "cmp9", "not one of the hosts"},
		{"an observer", cfgDoc, "ctl1", "is one of health.watchdog.observers"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := newWorld()
			r := run(t, w, "-o", "off", "-n", tt.plug, "--config", writeConfig(t, tt.doc))
			if r.code == 0 || !strings.Contains(r.stderr, tt.want) {
				t.Fatalf("code %d, stderr %s; want %q", r.code, r.stderr, tt.want)
			}
			if w.pills.pill(t) != nil {
				t.Fatal("a pill was written by a refused action")
			}
		})
	}
}
