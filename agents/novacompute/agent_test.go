package novacompute

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/computeha/computeha/agents"
	"github.com/computeha/computeha/internal/openstack"
)

// fakeProc is nova-compute as the logic tests see it.
type fakeProc struct {
	state  agents.ProcState
	starts int
	stops  int
	// dieAfterStart makes the process exit right after it starts.
	dieAfterStart bool
}

func (f *fakeProc) Status(context.Context) (agents.ProcState, string, error) {
	return f.state, "fake " + f.state.String(), nil
}

func (f *fakeProc) Start(context.Context) error {
	f.starts++
	f.state = agents.ProcRunning
	if f.dieAfterStart {
		f.state = agents.ProcCrashed
	}
	return nil
}

func (f *fakeProc) Stop(context.Context) error {
	f.stops++
	f.state = agents.ProcStopped
	return nil
}

type world struct {
	nova  *FakeNova
	evac  *FakeEvacuation
	proc  *fakeProc
	clock *agents.FakeClock
	// novaErr fails building the Nova client.
	novaErr error
	// evacBuilt counts how often the evacuation reader was built.
	evacBuilt int
	// loginFiles are the files each Nova client was given to keep its login in.
	loginFiles []string
}

func newWorld(svcs ...Service) *world {
	return &world{nova: NewFakeNova(svcs...), evac: NewFakeEvacuation(), proc: &fakeProc{}, clock: agents.NewFakeClock()}
}

func (w *world) run(t *testing.T, env []string, action string) (int, string) {
	t.Helper()
	a := NewAgent(Deps{
		Nova: func(_ context.Context, _ *Params, loginFile string) (Nova, error) {
			w.loginFiles = append(w.loginFiles, loginFile)
			if w.novaErr != nil {
				return nil, w.novaErr
			}
			return w.nova, nil
		},
		Evacuation: func(context.Context, *Params) (EvacuationState, error) {
			w.evacBuilt++
			return w.evac, nil
		},
		Hostname: func() (string, error) { return "machine", nil },
		proc:     func(*agents.Request, *Params) agents.Process { return w.proc },
	})
	yaml := filepath.Join(t.TempDir(), "clouds.yaml")
	if err := os.WriteFile(yaml, []byte("clouds: {}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(env, func(v string) bool { return strings.HasPrefix(v, "HA_RSCTMP=") }) {
		env = append(env, "HA_RSCTMP="+t.TempDir())
	}
	var errb bytes.Buffer
	code := agents.Main(context.Background(), a, agents.Env{
		Args: []string{action},
		Environ: append([]string{
			"OCF_RESKEY_cloud=test", "OCF_RESOURCE_INSTANCE=nc", "OCF_RESKEY_CRM_meta_on_node=compute1",
			"OCF_RESKEY_clouds_yaml=" + yaml,
		}, env...),
		Stdout:   &bytes.Buffer{},
		Stderr:   &errb,
		Clock:    w.clock,
		Syslog:   func(string) (agents.Syslogger, error) { return nil, errors.New("none") },
		LookPath: func(n string) (string, error) { return "/usr/bin/" + n, nil },
	})
	return code, errb.String()
}

func reasonOf(stderr string) string {
	for _, l := range strings.Split(stderr, "\n") {
		if r, ok := strings.CutPrefix(l, "ocf-exit-reason:"); ok {
			return r
		}
	}
	return ""
}

func healthy(host string) Service {
	return Service{ID: "id-" + host, Host: host, State: "up", Status: "enabled"}
}

const (
	recurring = "OCF_RESKEY_CRM_meta_interval=10000"
	probe     = "OCF_RESKEY_CRM_meta_interval=0"
)

func TestMonitorCombinesTheProcessAndNovasView(t *testing.T) {
	other := healthy("compute2")
	tests := []struct {
		name       string
		proc       agents.ProcState
		env        []string
		svcs       []Service
		novaErr    error
		callErr    error
		wantCode   int
		wantReason string
	}{
		{name: "a stopped service is not running", proc: agents.ProcStopped, env: []string{recurring}, wantCode: 7},
		{name: "a dead process is not running on a probe", proc: agents.ProcCrashed, env: []string{probe}, wantCode: 7},
		// Pacemaker 2.1 passes no interval at all for a probe: a process recorded before the
		// node rebooted (or Pacemaker restarted) is not a failure there.
		{name: "a dead process is not running on a probe as Pacemaker sends it, without an interval", proc: agents.ProcCrashed, wantCode: 7},
		{name: "a dead process fails a recurring monitor", proc: agents.ProcCrashed, env: []string{recurring}, wantCode: 1, wantReason: "nova-compute is not running: fake crashed"},
		{name: "a running service that Nova has up and enabled is healthy", proc: agents.ProcRunning, env: []string{recurring}, svcs: []Service{healthy("compute1")}, wantCode: 0},
		{name: "a running service on a probe is checked against Nova too", proc: agents.ProcRunning, env: []string{probe}, svcs: []Service{healthy("compute1")}, wantCode: 0},
		{name: "a service forced down in Nova fails", proc: agents.ProcRunning, svcs: []Service{{ID: "a", Host: "compute1", State: "down", Status: "enabled", ForcedDown: true}}, wantCode: 1, wantReason: "nova-compute runs, but Nova has compute1 forced down"},
		{name: "a service computeha disabled (fencing) fails until start enables it", proc: agents.ProcRunning, svcs: []Service{{ID: "a", Host: "compute1", State: "up", Status: "disabled", DisabledReason: "computeha: fenced by fence_nova at 2026-11-21T10:00:00Z"}}, wantCode: 1, wantReason: `nova-compute runs, but compute1 is disabled in Nova (reason: "computeha: fenced by fence_nova at 2026-11-21T10:00:00Z")`},
		{name: "a service the evacuation daemon disabled for the host's health is left so, until the daemon enables it", proc: agents.ProcRunning, svcs: []Service{{ID: "a", Host: "compute1", State: "up", Status: "disabled", DisabledReason: "computeha: health: tenant network lost"}}, wantCode: 0},
		{name: "a service an operator disabled (maintenance) is left so", proc: agents.ProcRunning, svcs: []Service{{ID: "a", Host: "compute1", State: "up", Status: "disabled", DisabledReason: "maintenance"}}, wantCode: 0},
		{name: "a service Nova reports down while another is up fails", proc: agents.ProcRunning, svcs: []Service{{ID: "a", Host: "compute1", State: "down", Status: "enabled"}, other}, wantCode: 1, wantReason: "nova-compute runs, but Nova reports compute1 down (last report unknown) while compute2 is up"},
		{name: "every service down is a control-plane problem, reported degraded", proc: agents.ProcRunning, svcs: []Service{{ID: "a", Host: "compute1", State: "down", Status: "enabled"}, {ID: "b", Host: "compute2", State: "down", Status: "enabled"}}, wantCode: 190, wantReason: "nova-compute runs, but Nova reports every compute service down: a Nova control-plane problem"},
		{name: "a host Nova does not know fails naming the host", proc: agents.ProcRunning, svcs: []Service{other}, wantCode: 1, wantReason: `nova-compute runs, but Nova has no compute service for host "compute1" (is host right?)`},
		{name: "an unreachable Nova API is degraded, not a failure", proc: agents.ProcRunning, svcs: []Service{healthy("compute1")}, callErr: errors.New("connection refused"), wantCode: 190, wantReason: "nova-compute runs, but Nova cannot be checked: connection refused"},
		{name: "a Nova client that cannot be built is degraded", proc: agents.ProcRunning, novaErr: errNovaUnreachable, wantCode: 190, wantReason: "nova-compute runs, but Nova cannot be checked: keystone unreachable"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := newWorld(tt.svcs...)
			w.proc.state = tt.proc
			w.novaErr = tt.novaErr
			w.nova.Err = tt.callErr
			code, stderr := w.run(t, tt.env, "monitor")
			if code != tt.wantCode || reasonOf(stderr) != tt.wantReason {
				t.Errorf("exit %d reason %q, want %d %q\nstderr:\n%s", code, reasonOf(stderr), tt.wantCode, tt.wantReason, stderr)
			}
			for _, c := range w.nova.Calls() {
				if strings.HasPrefix(c, "Unforce") || strings.HasPrefix(c, "Enable") {
					t.Errorf("monitor changed Nova: %s", c)
				}
			}
		})
	}
}

func TestEveryInvocationKeepsItsKeystoneLoginInOneFileOfTheStateDirectory(t *testing.T) {
	w := newWorld(healthy("compute1"))
	w.proc.state = agents.ProcRunning
	dir := t.TempDir()
	for range 2 {
		if code, stderr := w.run(t, []string{"HA_RSCTMP=" + dir, "OCF_RESKEY_CRM_meta_interval=10000"}, "monitor"); code != agents.Success {
			t.Fatalf("monitor: exit %d: %s", code, stderr)
		}
	}
	if code, stderr := w.run(t, []string{"HA_RSCTMP=" + dir}, "start"); code != agents.Success {
		t.Fatalf("start: exit %d: %s", code, stderr)
	}
	want := filepath.Join(dir, "computeha-nova-compute-nc.login")
	if len(w.loginFiles) != 3 {
		t.Fatalf("Nova clients made: %d, want 3", len(w.loginFiles))
	}
	for i, f := range w.loginFiles {
		if f != want {
			t.Errorf("client %d keeps its login in %q, want %q", i+1, f, want)
		}
	}
}

func TestStartWaitsForEvacuationsThenPutsNovaRight(t *testing.T) {
	w := newWorld(Service{ID: "s1", Host: "compute1", State: "down", Status: "disabled", ForcedDown: true, DisabledReason: "computeha: fenced"})
	w.evac.SetPending("compute1", "3 evacuations running")
	w.evac.ClearAfter = 5
	w.nova.Beating = true
	code, stderr := w.run(t, nil, "start")
	if code != 0 {
		t.Fatalf("start: exit %d\n%s", code, stderr)
	}
	if w.evac.Reads != 5 || w.proc.starts != 1 {
		t.Errorf("evacuation reads %d (want 5), process starts %d (want 1)", w.evac.Reads, w.proc.starts)
	}
	// The read after unsetting forced_down is the base; the one after
	// shows the new nova-compute's report.
	want := []string{"Service compute1", "Unforce s1", "Service compute1", "Service compute1", "Enable s1"}
	if diff := cmp.Diff(want, w.nova.Calls()); diff != "" {
		t.Errorf("Nova calls (-want +got):\n%s", diff)
	}
	if s, _ := w.nova.Get("compute1"); !s.Up() || !s.Enabled() || s.ForcedDown {
		t.Errorf("Nova's view after start: %+v", s)
	}
	if !strings.Contains(stderr, "INFO: waiting for the evacuations from compute1 to finish state=3 evacuations running") {
		t.Errorf("the wait is not logged:\n%s", stderr)
	}
}

func TestStartFailsAtItsTimeoutWhileEvacuationsArePending(t *testing.T) {
	w := newWorld(healthy("compute1"))
	w.evac.SetPending("compute1", "evacuating 2 instances")
	start := w.clock.Now()
	code, stderr := w.run(t, []string{"OCF_RESKEY_CRM_meta_timeout=60000"}, "start")
	want := "timed out after 55s waiting for the evacuations from compute1 to finish (evacuating 2 instances)"
	if code != 1 || reasonOf(stderr) != want {
		t.Errorf("exit %d reason %q, want 1 %q", code, reasonOf(stderr), want)
	}
	if w.proc.starts != 0 {
		t.Error("nova-compute was started while evacuations were pending")
	}
	if took := w.clock.Now().Sub(start); took != 55*time.Second {
		t.Errorf("gave up after %s of the 60s timeout, want 55s (a 5s margin)", took)
	}
}

func TestStartRetriesUnforceUntilNovaAcceptsIt(t *testing.T) {
	w := newWorld(Service{ID: "s1", Host: "compute1", State: "down", Status: "enabled", ForcedDown: true})
	w.nova.RefuseUnforce = errors.New("HTTP 400: migrations not completed")
	w.nova.Beating = true
	reads := 0
	w.nova.BeforeRead = func(f *FakeNova) {
		if reads++; reads == 3 {
			f.RefuseUnforce = nil
		}
	}
	code, stderr := w.run(t, nil, "start")
	if code != 0 {
		t.Fatalf("start: exit %d\n%s", code, stderr)
	}
	// Its reports while forced down already show the new nova-compute
	// reporting: no read more once Nova accepts.
	want := []string{"Service compute1", "Unforce s1", "Service compute1", "Unforce s1", "Service compute1", "Unforce s1", "Service compute1"}
	if diff := cmp.Diff(want, w.nova.Calls()); diff != "" {
		t.Errorf("Nova calls (-want +got):\n%s", diff)
	}
}

func TestStartFailsSoonWhenNovaKeepsRefusingToUnforceAfterTheFirstReport(t *testing.T) {
	w := newWorld(Service{ID: "s1", Host: "compute1", State: "down", Status: "disabled", ForcedDown: true, DisabledReason: "computeha: fenced"})
	w.nova.RefuseUnforce = fmt.Errorf("Unable to force up host compute1 as `done` evacuation migration records remain: %w", openstack.ErrEvacuationsPending)
	w.nova.Beating = true
	start := w.clock.Now()
	code, stderr := w.run(t, []string{"OCF_RESKEY_CRM_meta_timeout=180000", "OCF_RESKEY_evacuation_wait=false"}, "start")
	if code != 1 || !strings.Contains(reasonOf(stderr), "Nova refuses to unset forced_down 30s after nova-compute on compute1 reported") ||
		!strings.Contains(reasonOf(stderr), "must be restarted") {
		t.Errorf("exit %d reason %q, want 1 and the refusal", code, reasonOf(stderr))
	}
	// Well before the 180 s timeout: the first report, then 30 s.
	if took := w.clock.Now().Sub(start); took < 30*time.Second || took > 40*time.Second {
		t.Errorf("gave up after %s, want just over 30s", took)
	}
}

func TestStartWaitsForNovaToUnforceUntilTheFirstReport(t *testing.T) {
	// The same refusal before the new nova-compute reports: it has not confirmed the
	// evacuations yet, so start waits (here until its timeout).
	w := newWorld(Service{ID: "s1", Host: "compute1", State: "down", Status: "enabled", ForcedDown: true})
	w.nova.RefuseUnforce = fmt.Errorf("refused: %w", openstack.ErrEvacuationsPending)
	code, stderr := w.run(t, []string{"OCF_RESKEY_CRM_meta_timeout=60000", "OCF_RESKEY_evacuation_wait=false"}, "start")
	if code != 1 || !strings.HasPrefix(reasonOf(stderr), "timed out after 55s waiting for nova-compute on compute1") {
		t.Errorf("exit %d reason %q, want the timeout", code, reasonOf(stderr))
	}
}

func TestStartWaitsForTheNewNovaComputesFirstReportNotTheUpStateLeftByTheOldOne(t *testing.T) {
	// Fenced a few seconds ago: Nova still counts the old process's last
	// heartbeat, so it reports the service up as soon as forced_down is
	// unset, and down once that heartbeat is older than service_down_time
	// unless the new process has reported by then.
	w := newWorld(Service{ID: "s1", Host: "compute1", State: "up", Status: "disabled", ForcedDown: true, DisabledReason: "computeha: fenced"})
	reads := 0
	w.nova.BeforeRead = func(f *FakeNova) {
		if reads++; reads == 6 {
			f.BeatLocked("compute1")
		}
	}
	code, stderr := w.run(t, []string{"OCF_RESKEY_evacuation_wait=false"}, "start")
	if code != 0 {
		t.Fatalf("start: exit %d\n%s", code, stderr)
	}
	want := []string{"Service compute1", "Unforce s1", "Service compute1", "Service compute1", "Service compute1", "Service compute1", "Service compute1", "Enable s1"}
	if diff := cmp.Diff(want, w.nova.Calls()); diff != "" {
		t.Errorf("Nova calls (-want +got):\n%s", diff)
	}
	if !strings.Contains(stderr, "state=Nova reports it up, but the nova-compute started here has not reported yet") {
		t.Errorf("the wait for the first report is not logged:\n%s", stderr)
	}
}

func TestStartFailures(t *testing.T) {
	tests := []struct {
		name       string
		svc        *Service
		novaErr    error
		die        bool
		wantReason string
	}{
		{name: "a service that never comes up fails at the timeout", svc: &Service{ID: "s", Host: "compute1", State: "down", Status: "enabled"}, wantReason: "timed out after 18s waiting for nova-compute on compute1 to be up and enabled in Nova (Nova reports it down)"},
		{name: "a service never registered fails at the timeout", wantReason: "timed out after 18s waiting for nova-compute on compute1 to be up and enabled in Nova (not registered in Nova yet)"},
		{name: "a process that exits while starting fails at once", svc: &Service{ID: "s", Host: "compute1", State: "down", Status: "enabled"}, die: true, wantReason: "nova-compute exited while starting: fake crashed"},
		{name: "no Nova client fails the start", novaErr: errNovaUnreachable, wantReason: "Nova API: keystone unreachable"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := newWorld()
			if tt.svc != nil {
				w.nova.Set(*tt.svc)
			}
			w.novaErr = tt.novaErr
			w.proc.dieAfterStart = tt.die
			code, stderr := w.run(t, []string{"OCF_RESKEY_CRM_meta_timeout=20000"}, "start")
			if code != 1 || reasonOf(stderr) != tt.wantReason {
				t.Errorf("exit %d reason %q, want 1 %q\n%s", code, reasonOf(stderr), tt.wantReason, stderr)
			}
		})
	}
}

func TestStartOfARunningServiceDoesNotStartItAgain(t *testing.T) {
	w := newWorld(healthy("compute1"))
	w.proc.state = agents.ProcRunning
	if code, stderr := w.run(t, []string{"OCF_RESKEY_evacuation_wait=false"}, "start"); code != 0 {
		t.Fatalf("start: exit %d\n%s", code, stderr)
	}
	if w.proc.starts != 0 || w.evacBuilt != 0 {
		t.Errorf("starts %d, evacuation reader built %d times; want 0 and 0", w.proc.starts, w.evacBuilt)
	}
}

func TestStopNeverTalksToNovaAndSucceedsWhenStopped(t *testing.T) {
	for _, st := range []agents.ProcState{agents.ProcRunning, agents.ProcStopped, agents.ProcCrashed} {
		w := newWorld(healthy("compute1"))
		w.proc.state = st
		w.novaErr = errNovaUnreachable
		if code, stderr := w.run(t, nil, "stop"); code != 0 || w.proc.stops != 1 {
			t.Errorf("stop of a %s service: exit %d, stops %d\n%s", st, code, w.proc.stops, stderr)
		}
		if len(w.nova.Calls()) != 0 {
			t.Errorf("stop called Nova: %q", w.nova.Calls())
		}
	}
}

func TestValidation(t *testing.T) {
	dir := t.TempDir()
	yaml := filepath.Join(dir, "clouds.yaml")
	if err := os.WriteFile(yaml, []byte("clouds: {}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name       string
		env        []string
		wantCode   int
		wantReason string
	}{
		{name: "a readable clouds.yaml validates", env: []string{"OCF_RESKEY_clouds_yaml=" + yaml}, wantCode: 0},
		{name: "a missing clouds.yaml is not valid on this node", env: []string{"OCF_RESKEY_clouds_yaml=" + dir + "/none.yaml"}, wantCode: 2, wantReason: "clouds_yaml " + dir + "/none.yaml cannot be read: no such file or directory"},
		{name: "a missing cloud is a configuration error", env: []string{"OCF_RESKEY_cloud="}, wantCode: 6, wantReason: "parameter cloud is required"},
		{name: "stop_command without start_command is a configuration error", env: []string{"OCF_RESKEY_stop_command=kill 1"}, wantCode: 6, wantReason: "stop_command needs start_command (with systemd, the unit stops nova-compute)"},
		{name: "a unit name with a space is a configuration error", env: []string{"OCF_RESKEY_service=nova compute"}, wantCode: 6, wantReason: `service "nova compute" is not a systemd unit name`},
		{name: "a bad host name is a configuration error", env: []string{"OCF_RESKEY_host=-x"}, wantCode: 6, wantReason: `host "-x" is not a host name`},
		{name: "a zero nova_timeout is a configuration error", env: []string{"OCF_RESKEY_nova_timeout=0"}, wantCode: 6, wantReason: "nova_timeout must be more than 0"},
		{name: "a nova_timeout that is not a time is a configuration error", env: []string{"OCF_RESKEY_nova_timeout=soon"}, wantCode: 6, wantReason: `parameter nova_timeout="soon": not a time (a number of seconds, or with a unit: 500ms, 30s, 5min, 1h)`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := newWorld()
			code, stderr := w.run(t, append([]string{"OCF_RESKEY_clouds_yaml=" + yaml}, tt.env...), "validate-all")
			if code != tt.wantCode || reasonOf(stderr) != tt.wantReason {
				t.Errorf("exit %d reason %q, want %d %q", code, reasonOf(stderr), tt.wantCode, tt.wantReason)
			}
		})
	}
}

func TestTheHostNameComesFromParametersNodeNameOrHostname(t *testing.T) {
	tests := []struct {
		name string
		env  []string
		want string
	}{
		{"the node name by default", nil, "compute1"},
		{"the node name with the domain", []string{"OCF_RESKEY_domain=.example.org."}, "compute1.example.org"},
		{"the host parameter as given", []string{"OCF_RESKEY_host=nova-c1.example.org", "OCF_RESKEY_domain=x.org"}, "nova-c1.example.org"},
		{"the machine's host name outside Pacemaker", []string{"OCF_RESKEY_CRM_meta_on_node="}, "machine"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := newWorld(healthy(tt.want))
			w.proc.state = agents.ProcRunning
			if code, stderr := w.run(t, tt.env, "monitor"); code != 0 {
				t.Errorf("monitor of %s: exit %d\n%s", tt.want, code, stderr)
			}
		})
	}
}

func TestBinariesFollowTheMode(t *testing.T) {
	tests := []struct {
		p    Params
		want []string
	}{
		{Params{Service: "nova-compute"}, []string{"systemctl"}},
		{Params{StartCommand: "/usr/bin/nova-compute --config-file /etc/nova/nova.conf"}, []string{"/bin/sh", "/usr/bin/nova-compute"}},
		{Params{StartCommand: "exec python3 -m x", StopCommand: "pkill -f 'x y'"}, []string{"/bin/sh"}},
		{Params{StartCommand: "NOVA=1 run-nova", StopCommand: "stop-nova now"}, []string{"/bin/sh", "stop-nova"}},
	}
	for _, tt := range tests {
		if diff := cmp.Diff(tt.want, binaries(&tt.p)); diff != "" {
			t.Errorf("%+v (-want +got):\n%s", tt.p, diff)
		}
	}
}

// errNovaUnreachable stands for any failure to build a Nova client.
var errNovaUnreachable = errors.New("keystone unreachable")
