package agents

import (
	"bytes"
	"context"
	"errors"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

type testParams struct {
	Name    string        `ocf:"name" required:"true" help:"a required name"`
	Count   int           `ocf:"count" default:"3" help:"a number"`
	Enabled bool          `ocf:"enabled" default:"true" help:"a switch"`
	Wait    time.Duration `ocf:"wait" default:"5s" help:"a time"`
}

// testResource records what the runtime asked of it.
type testResource struct {
	req      *Request
	calls    *[]string
	validate error
	result   error
}

func (r *testResource) Start(context.Context) error {
	*r.calls = append(*r.calls, "start")
	return r.result
}

func (r *testResource) Stop(context.Context) error {
	*r.calls = append(*r.calls, "stop")
	return r.result
}

func (r *testResource) Monitor(context.Context) error {
	*r.calls = append(*r.calls, "monitor")
	return r.result
}

func (r *testResource) Validate(context.Context) error {
	*r.calls = append(*r.calls, "validate")
	return r.validate
}

type testAgent struct {
	calls    []string
	req      *Request
	validate error
	result   error
	missing  string // a program LookPath does not find
}

func (ta *testAgent) agent() *Agent {
	return &Agent{
		Name:      "test-agent",
		Version:   "1.0",
		ShortDesc: "A test agent",
		LongDesc:  "An agent for the runtime's tests.",
		NewParams: func() any { return new(testParams) },
		Timeouts: map[string]ActionDefaults{
			"start":   {Timeout: 40 * time.Second},
			"monitor": {Timeout: 20 * time.Second, Interval: 15 * time.Second},
		},
		Binaries: func(any) []string { return []string{"sh", "test-tool"} },
		Open: func(req *Request) (Resource, error) {
			ta.req = req
			return &testResource{req: req, calls: &ta.calls, validate: ta.validate, result: ta.result}, nil
		},
		Sample: (*testResource)(nil),
	}
}

type outcome struct {
	code           int
	stdout, stderr string
}

func (ta *testAgent) run(t *testing.T, clock Clock, env []string, args ...string) outcome {
	t.Helper()
	var out, errb bytes.Buffer
	code := Main(context.Background(), ta.agent(), Env{
		Args: args, Environ: env, Stdout: &out, Stderr: &errb, Clock: clock,
		Syslog: func(string) (Syslogger, error) { return nil, errors.New("no syslog here") },
		LookPath: func(name string) (string, error) {
			if name == ta.missing {
				return "", &exec.Error{Name: name, Err: exec.ErrNotFound}
			}
			return "/usr/bin/" + name, nil
		},
	})
	return outcome{code, out.String(), errb.String()}
}

func exitReasons(stderr string) []string {
	var rs []string
	for _, l := range strings.Split(stderr, "\n") {
		if r, ok := strings.CutPrefix(l, "ocf-exit-reason:"); ok {
			rs = append(rs, r)
		}
	}
	return rs
}

func TestMainMapsEveryOutcomeToItsOCFExitCode(t *testing.T) {
	base := []string{"OCF_RESKEY_name=web", "OCF_RESOURCE_INSTANCE=t1"}
	tests := []struct {
		name      string
		args      []string
		env       []string
		missing   string
		validate  error
		result    error
		wantCode  int
		wantCalls []string
		// wantReason is the exit reason; "" means none is printed.
		wantReason string
	}{
		{name: "no action is a usage error", wantCode: 2, wantReason: "no action given"},
		{name: "an unknown action is a usage error", args: []string{"explode"}, env: base, wantCode: 2, wantReason: `unknown action "explode"`},
		{name: "an OCF action the agent lacks is unimplemented even without parameters", args: []string{"notify"}, wantCode: 3, wantReason: "notify is not implemented"},
		{name: "reload-agent is unimplemented without a Reloader", args: []string{"reload-agent"}, env: base, wantCode: 3, wantReason: "reload-agent is not implemented"},
		{name: "promote is unimplemented without a Promoter", args: []string{"promote"}, env: base, wantCode: 3, wantReason: "promote is not implemented"},
		{name: "validate-all without a required parameter is a configuration error", args: []string{"validate-all"}, wantCode: 6, wantReason: "parameter name is required"},
		{name: "a parameter of the wrong type is a configuration error", args: []string{"start"}, env: append(base, "OCF_RESKEY_count=many"), wantCode: 6, wantReason: `parameter count="many": not an integer`},
		{name: "a bad boolean is a configuration error", args: []string{"monitor"}, env: append(base, "OCF_RESKEY_enabled=perhaps"), wantCode: 6, wantReason: `parameter enabled="perhaps": not a boolean (use 1/yes/on/true or 0/no/off/false)`},
		{name: "validate-all runs the resource's own checks", args: []string{"validate-all"}, env: base, validate: Args("file /x is not here"), wantCode: 2, wantCalls: []string{"validate"}, wantReason: "file /x is not here"},
		{name: "start validates before it starts", args: []string{"start"}, env: base, validate: Args("no"), wantCode: 2, wantCalls: []string{"validate"}, wantReason: "no"},
		{name: "a successful start prints no exit reason", args: []string{"start"}, env: base, wantCode: 0, wantCalls: []string{"validate", "start"}},
		{name: "a failed start prints its reason", args: []string{"start"}, env: base, result: Generic("it broke: %w", errors.New("disk full")), wantCode: 1, wantCalls: []string{"validate", "start"}, wantReason: "it broke: disk full"},
		{name: "a plain error is a generic failure", args: []string{"stop"}, env: base, result: errors.New("plain\nerror"), wantCode: 1, wantCalls: []string{"stop"}, wantReason: "plain error"},
		{name: "a missing program fails start as not installed", args: []string{"start"}, env: base, missing: "test-tool", wantCode: 5, wantReason: "required program test-tool is not installed"},
		{name: "a missing program fails validate-all as not installed", args: []string{"validate-all"}, env: base, missing: "test-tool", wantCode: 5, wantReason: "required program test-tool is not installed"},
		{name: "a probe with a missing program answers not running", args: []string{"monitor"}, env: append(base, "OCF_RESKEY_CRM_meta_interval=0"), missing: "test-tool", wantCode: 7},
		{name: "a probe while ocf-tester hides the programs answers not running", args: []string{"monitor"}, env: append(base, "OCF_RESKEY_CRM_meta_interval=0", "OCF_TESTER_FAIL_HAVE_BINARY=1"), wantCode: 7},
		{name: "a recurring monitor with a missing program is not installed", args: []string{"monitor"}, env: append(base, "OCF_RESKEY_CRM_meta_interval=10000"), missing: "test-tool", wantCode: 5, wantReason: "required program test-tool is not installed"},
		{name: "stop goes on despite a missing program", args: []string{"stop"}, env: base, missing: "test-tool", wantCode: 0, wantCalls: []string{"stop"}},
		{name: "stop goes on despite a missing required parameter", args: []string{"stop"}, wantCode: 0, wantCalls: []string{"stop"}},
		{name: "not running is reported without an exit reason", args: []string{"monitor"}, env: base, result: NotRunning("stopped"), wantCode: 7, wantCalls: []string{"monitor"}},
		{name: "degraded is reported with its reason", args: []string{"monitor"}, env: base, result: Degraded("API slow"), wantCode: 190, wantCalls: []string{"monitor"}, wantReason: "API slow"},
		{name: "a timeout that is not milliseconds is a usage error", args: []string{"monitor"}, env: append(base, "OCF_RESKEY_CRM_meta_timeout=20s"), wantCode: 2, wantReason: `OCF_RESKEY_CRM_meta_timeout="20s" is not a number of milliseconds`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ta := &testAgent{validate: tt.validate, result: tt.result, missing: tt.missing}
			got := ta.run(t, NewFakeClock(), tt.env, tt.args...)
			if got.code != tt.wantCode {
				t.Errorf("exit code %d, want %d; stderr:\n%s", got.code, tt.wantCode, got.stderr)
			}
			if diff := cmp.Diff(tt.wantCalls, ta.calls); diff != "" {
				t.Errorf("resource calls (-want +got):\n%s", diff)
			}
			var want []string
			if tt.wantReason != "" {
				want = []string{tt.wantReason}
			}
			if diff := cmp.Diff(want, exitReasons(got.stderr)); diff != "" {
				t.Errorf("exit reasons (-want +got):\n%s\nstderr:\n%s", diff, got.stderr)
			}
			if got.stdout != "" {
				t.Errorf("stdout is for meta-data and usage only, got %q", got.stdout)
			}
		})
	}
}

func TestUsageAndMetadataGoToStdout(t *testing.T) {
	for _, args := range [][]string{{"meta-data"}, {"usage"}, {"--help"}} {
		ta := &testAgent{}
		got := ta.run(t, NewFakeClock(), nil, args...)
		if got.code != 0 || got.stdout == "" || got.stderr != "" {
			t.Errorf("%q: exit %d, stdout %.40q, stderr %q", args, got.code, got.stdout, got.stderr)
		}
	}
	ta := &testAgent{}
	if got := ta.run(t, NewFakeClock(), nil); !strings.Contains(got.stderr, "usage: test-agent {start|stop|monitor|meta-data|validate-all|usage}") {
		t.Errorf("usage on stderr lacks the actions: %q", got.stderr)
	}
}

func TestRequestCarriesParametersMetaAndTheDeadline(t *testing.T) {
	clock := NewFakeClock()
	ta := &testAgent{}
	env := []string{
		"OCF_RESKEY_name=web", "OCF_RESKEY_wait=1min", "OCF_RESKEY_unknown=x",
		"OCF_RESKEY_CRM_meta_timeout=20000", "OCF_RESKEY_CRM_meta_interval=0", "OCF_RESKEY_CRM_meta_on_node=node7",
		"OCF_RESOURCE_INSTANCE=web:1", "OCF_RESOURCE_TYPE=test-agent", "OCF_ROOT=/usr/lib/ocf",
		"OCF_CHECK_LEVEL=10", "HA_RSCTMP=/tmp/state",
	}
	if got := ta.run(t, clock, env, "monitor"); got.code != 0 {
		t.Fatalf("monitor: %+v", got)
	}
	r := ta.req
	if diff := cmp.Diff(&testParams{Name: "web", Count: 3, Enabled: true, Wait: time.Minute}, r.Params); diff != "" {
		t.Errorf("params (-want +got):\n%s", diff)
	}
	type view struct {
		Instance, Type, Root, StateDir, OnNode string
		CheckLevel                             int
		Timeout, Interval, Left                time.Duration
		Probe                                  bool
	}
	want := view{"web:1", "test-agent", "/usr/lib/ocf", "/tmp/state", "node7", 10, 20 * time.Second, 0, 18 * time.Second, true}
	got := view{r.Instance, r.Type, r.Root, r.StateDir, r.Meta["on_node"], r.CheckLevel, r.Timeout, r.Interval, r.Remaining(), r.Probe()}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("request (-want +got):\n%s", diff)
	}
}

func TestRequestDefaultsWithoutPacemaker(t *testing.T) {
	ta := &testAgent{}
	if got := ta.run(t, NewFakeClock(), []string{"OCF_RESKEY_name=web"}, "monitor"); got.code != 0 {
		t.Fatalf("monitor: %+v", got)
	}
	r := ta.req
	// A monitor without an interval is a probe: Pacemaker 2.1 sends a probe no
	// OCF_RESKEY_CRM_meta_interval at all.
	if !r.Probe() || r.Timeout != 20*time.Second || r.StateDir != DefaultStateDir || r.Instance != "test-agent" {
		t.Errorf("without meta attributes: probe %v, timeout %s, state dir %s, instance %s", r.Probe(), r.Timeout, r.StateDir, r.Instance)
	}
	if got := ta.run(t, NewFakeClock(), []string{"OCF_RESKEY_name=web", "OCF_RESKEY_CRM_meta_interval=10000"}, "monitor"); got.code != 0 {
		t.Fatalf("monitor: %+v", got)
	}
	if ta.req.Probe() {
		t.Error("a monitor with a 10 s interval is taken for a probe")
	}
	if got := ta.run(t, NewFakeClock(), []string{"OCF_RESKEY_name=web"}, "start"); got.code != 0 {
		t.Fatalf("start: %+v", got)
	}
	if ta.req.Probe() {
		t.Error("a start is taken for a probe")
	}
}

func TestPollWaitsUntilDoneOrTheDeadline(t *testing.T) {
	clock := NewFakeClock()
	req := &Request{Clock: clock, Log: discardLogger(), deadline: clock.Now().Add(10 * time.Second)}
	n := 0
	err := req.Poll(context.Background(), time.Second, "the thing", func(context.Context) (bool, string, error) {
		n++
		return n == 4, "not yet", nil
	})
	if err != nil || n != 4 || clock.Now().Sub(NewFakeClock().Now()) != 3*time.Second {
		t.Errorf("done on the 4th check: err %v, checks %d, clock moved %s", err, n, clock.Now().Sub(NewFakeClock().Now()))
	}
	err = req.Poll(context.Background(), 4*time.Second, "the thing", func(context.Context) (bool, string, error) {
		return false, "still busy", nil
	})
	want := "timed out after 7s waiting for the thing (still busy)"
	if CodeOf(err) != ErrGeneric || err == nil || err.Error() != want {
		t.Errorf("at the deadline: %v (code %d), want %q", err, CodeOf(err), want)
	}
}

func TestParseTimeAndBool(t *testing.T) {
	times := map[string]time.Duration{
		"30": 30 * time.Second, "30s": 30 * time.Second, "500ms": 500 * time.Millisecond,
		"5min": 5 * time.Minute, "2m": 2 * time.Minute, "1h": time.Hour, "1.5s": 1500 * time.Millisecond, " 10 sec": 10 * time.Second,
	}
	for in, want := range times {
		if got, err := ParseTime(in); err != nil || got != want {
			t.Errorf("ParseTime(%q) = %s, %v; want %s", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "s", "-1", "5 fortnights", "1e3"} {
		if _, err := ParseTime(bad); err == nil {
			t.Errorf("ParseTime(%q) accepted", bad)
		}
	}
	for in, want := range map[string]bool{"1": true, "yes": true, "TRUE": true, "on": true, "0": false, "no": false, "off": false, "False": false} {
		if got, err := ParseBool(in); err != nil || got != want {
			t.Errorf("ParseBool(%q) = %v, %v", in, got, err)
		}
	}
	if _, err := ParseBool("maybe"); err == nil {
		t.Error("ParseBool accepted maybe")
	}
}

type recordingSyslog struct{ lines []string }

func (s *recordingSyslog) Debug(m string) error { s.lines = append(s.lines, "debug "+m); return nil }
func (s *recordingSyslog) Info(m string) error  { s.lines = append(s.lines, "info "+m); return nil }
func (s *recordingSyslog) Warning(m string) error {
	s.lines = append(s.lines, "warning "+m)
	return nil
}
func (s *recordingSyslog) Err(m string) error { s.lines = append(s.lines, "err "+m); return nil }
func (s *recordingSyslog) Close() error       { return nil }

func TestMessagesGoToSyslogWithTheInstanceTag(t *testing.T) {
	sl := &recordingSyslog{}
	var tag string
	var errb bytes.Buffer
	ta := &testAgent{result: Generic("broken")}
	code := Main(context.Background(), ta.agent(), Env{
		Args: []string{"start"}, Environ: []string{"OCF_RESKEY_name=x", "OCF_RESOURCE_INSTANCE=web"},
		Stdout: &bytes.Buffer{}, Stderr: &errb, Clock: NewFakeClock(),
		Syslog:   func(t string) (Syslogger, error) { tag = t; return sl, nil },
		LookPath: func(n string) (string, error) { return n, nil },
	})
	if code != 1 || tag != "test-agent(web)" {
		t.Errorf("exit %d, tag %q", code, tag)
	}
	if diff := cmp.Diff([]string{"err broken"}, sl.lines); diff != "" {
		t.Errorf("syslog (-want +got):\n%s", diff)
	}
	if want := "ERROR: broken\nocf-exit-reason:broken\n"; errb.String() != want {
		t.Errorf("stderr %q, want %q", errb.String(), want)
	}
}

// scriptedProc is a Process whose states come from a list (the last repeats).
type scriptedProc struct {
	states []ProcState
	starts int
}

func (p *scriptedProc) Status(context.Context) (ProcState, string, error) {
	st := p.states[0]
	if len(p.states) > 1 {
		p.states = p.states[1:]
	}
	return st, "pid 42", nil
}
func (p *scriptedProc) Start(context.Context) error { p.starts++; return nil }
func (p *scriptedProc) Stop(context.Context) error  { return nil }

func TestStartAndWaitStartsOnceAndFailsAtOnceWhenTheDaemonDies(t *testing.T) {
	tests := []struct {
		name       string
		states     []ProcState
		readyAfter int
		wantStarts int
		wantErr    string
	}{
		{"a stopped daemon is started and waited for", []ProcState{ProcStopped, ProcRunning}, 3, 1, ""},
		{"a running daemon is only waited for", []ProcState{ProcRunning}, 1, 0, ""},
		{"a daemon that exits while starting fails the start at once", []ProcState{ProcStopped, ProcRunning, ProcCrashed}, 100, 1, "the daemon exited while starting: pid 42"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clock := NewFakeClock()
			req := &Request{Clock: clock, Log: discardLogger(), deadline: clock.Now().Add(time.Minute)}
			p := &scriptedProc{states: tt.states}
			checks := 0
			err := StartAndWait(context.Background(), req, p, "the daemon", func(context.Context) (bool, string, error) {
				checks++
				return checks >= tt.readyAfter, "not ready", nil
			})
			got := ""
			if err != nil {
				got = err.Error()
			}
			if got != tt.wantErr || p.starts != tt.wantStarts {
				t.Errorf("err %q, starts %d; want %q, %d", got, p.starts, tt.wantErr, tt.wantStarts)
			}
		})
	}
}
