package nova

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/computeha/computeha/crm"
	"github.com/computeha/computeha/fence"
	"github.com/computeha/computeha/internal/evacstate"
	"github.com/computeha/computeha/internal/openstack"
)

// marks keeps the evacuation state in a fake Pacemaker, as the agent does in the real one.
type marks struct{ evacstate.Marks }

func (m marks) get(node string) evacstate.State {
	st, _ := m.Get(context.Background(), node)
	return st
}

// setCompute1 sets the state of compute1, the host the tests fence.
func (m marks) setCompute1(st evacstate.State) { _ = m.Set(context.Background(), "compute1", st) }

var now = time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC)

type env struct {
	nova  *openstack.Fake
	marks marks
	agent *fence.Agent
}

func newEnv() *env {
	e := &env{nova: openstack.NewFake(func() time.Time { return now }), marks: marks{evacstate.Marks{Attrs: crm.NewFake(nil)}}}
	e.nova.AddCompute("compute1.example.org", "nova")
	e.nova.AddCompute("compute2.example.org", "nova")
	e.agent = NewAgent(Deps{
		Nova:  func(context.Context, *Params, *slog.Logger) (openstack.Client, error) { return e.nova, nil },
		Marks: e.marks,
		Now:   func() time.Time { return now },
	})
	return e
}

func (e *env) run(t *testing.T, stdin string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := fence.Main(context.Background(), e.agent, fence.Env{
		Stdin: strings.NewReader("cloud=test\ndomain=example.org\n" + stdin), Stdout: &out, Stderr: &errb,
		Sleep: func(context.Context, time.Duration) error { return nil },
	})
	return code, out.String(), errb.String()
}

func (e *env) service(t *testing.T, host string) openstack.Service {
	t.Helper()
	s, err := e.nova.FindComputeService(context.Background(), host)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestOffForcesDownDisablesAndMarksWithoutWaiting(t *testing.T) {
	e := newEnv()
	code, out, errOut := e.run(t, "action=off\nplug=compute1\nnodename=cmp1\n")
	if code != 0 || out != "Success: Powered OFF\n" {
		t.Fatalf("exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	s := e.service(t, "compute1.example.org")
	if !s.ForcedDown || s.Enabled() || !strings.HasPrefix(s.DisabledReason, "computeha: fenced by fence_nova at 2026-11-21T10:00:00Z") {
		t.Errorf("service after off: %+v", s)
	}
	st := e.marks.get("cmp1")
	if st.Phase != evacstate.Pending || st.By != "fence_nova" || !st.Since.Equal(now) {
		t.Errorf("mark on the Pacemaker node: %+v (on cmp1.example.com: %+v)", st, e.marks.get("cmp1.example.com"))
	}
	calls := strings.Join(e.nova.Calls(), "\n")
	if strings.Index(calls, "ForceDown") > strings.Index(calls, "DisableService") {
		t.Errorf("disabled before forcing down:\n%s", calls)
	}
	if e.service(t, "compute2.example.org").ForcedDown {
		t.Errorf("compute2 was touched")
	}
}

func TestOffOfAFencedHostChangesNothing(t *testing.T) {
	e := newEnv()
	e.run(t, "action=off\nplug=compute1\n")
	e.marks.setCompute1(evacstate.State{Phase: evacstate.Running, Owner: "ctl2", Since: now})
	before := len(e.nova.Calls())
	code, out, _ := e.run(t, "action=off\nplug=compute1\n")
	if code != 0 || out != "Success: Already OFF\n" {
		t.Errorf("exit %d, %q", code, out)
	}
	for _, c := range e.nova.Calls()[before:] {
		if !strings.HasPrefix(c, "FindComputeService") {
			t.Errorf("unexpected call %s", c)
		}
	}
	if e.marks.get("compute1").Phase != evacstate.Running {
		t.Errorf("a running evacuation was reset: %+v", e.marks.get("compute1"))
	}
}

func TestStatusNeedsBothHalvesOfFencing(t *testing.T) {
	e := newEnv()
	if code, out, _ := e.run(t, "action=status\nplug=compute1\n"); code != 0 || out != "Status: ON\n" {
		t.Errorf("before: exit %d, %q", code, out)
	}
	// Forced down by someone else, but not marked: not fenced by us.
	if _, err := e.nova.ForceDown(context.Background(), e.service(t, "compute1.example.org").ID); err != nil {
		t.Fatal(err)
	}
	if code, _, _ := e.run(t, "action=status\nplug=compute1\n"); code != 0 {
		t.Errorf("forced down without a mark: exit %d, want 0 (ON)", code)
	}
	// Forced down, and recovered once long ago: that recovery is history, not this fencing.
	e.marks.setCompute1(evacstate.State{Phase: evacstate.Done, Since: now.Add(-time.Hour)})
	if code, _, _ := e.run(t, "action=status\nplug=compute1\n"); code != 0 {
		t.Errorf("forced down with a done mark: exit %d, want 0 (ON)", code)
	}
	e.run(t, "action=off\nplug=compute1\n")
	if code, out, _ := e.run(t, "action=status\nplug=compute1\n"); code != 2 || out != "Status: OFF\n" {
		t.Errorf("after off: exit %d, %q", code, out)
	}
	if st := e.marks.get("compute1"); st.Phase != evacstate.Pending || !st.Since.Equal(now) {
		t.Errorf("after off: %+v, want marked pending anew", st)
	}
}

// A host disabled for another reason before its fencing (its health, an operator) keeps that
// reason; once its recovery is done it is still fenced, so that unfencing does its work.
func TestAHostDisabledBeforeItsFencingIsStillOffOnceItsRecoveryIsDone(t *testing.T) {
	e := newEnv()
	id := e.service(t, "compute1.example.org").ID
	if _, err := e.nova.DisableService(context.Background(), id, evacstate.HealthReasonPrefix+" isolated"); err != nil {
		t.Fatal(err)
	}
	e.run(t, "action=off\nplug=compute1\n")
	e.marks.setCompute1(evacstate.State{Phase: evacstate.Done, Since: now})
	if code, out, _ := e.run(t, "action=status\nplug=compute1\n"); code != 2 || out != "Status: OFF\n" {
		t.Errorf("recovered, still forced down and disabled: exit %d, %q; want OFF", code, out)
	}
	if code, out, errOut := e.run(t, "action=on\nplug=compute1\n"); code != 0 || out != "Success: Powered ON\n" {
		t.Errorf("on: exit %d, stdout %q, stderr %q; want the unfencing done", code, out, errOut)
	}
	if e.marks.get("compute1").Phase != evacstate.None {
		t.Errorf("the mark was not cleared by the unfencing")
	}
}

func TestUnfencingWaitsForTheEvacuation(t *testing.T) {
	for _, phase := range []evacstate.Phase{evacstate.Pending, evacstate.Running, evacstate.Failed} {
		t.Run(string(phase), func(t *testing.T) {
			e := newEnv()
			e.run(t, "action=off\nplug=compute1\n")
			e.marks.setCompute1(evacstate.State{Phase: phase, Since: now, Reason: "2 VMs not recovered"})
			code, _, errOut := e.run(t, "action=on\nplug=compute1\n")
			if code != 1 || !strings.Contains(errOut, "evacuation of compute1 is "+string(phase)) {
				t.Errorf("exit %d, stderr %q", code, errOut)
			}
			if s := e.service(t, "compute1.example.org"); !s.ForcedDown || s.Enabled() {
				t.Errorf("service changed while unfencing was refused: %+v", s)
			}
		})
	}
}

func TestUnfencingAfterTheEvacuationReenablesTheHost(t *testing.T) {
	e := newEnv()
	srv := e.nova.AddServer(openstack.Server{Name: "vm1", Host: "compute1.example.org", Status: "ACTIVE"})
	e.nova.KillCompute("compute1.example.org")
	e.run(t, "action=off\nplug=compute1\n")
	if err := e.nova.Evacuate(context.Background(), srv.ID, "compute2.example.org"); err != nil {
		t.Fatal(err)
	}
	e.marks.setCompute1(evacstate.State{Phase: evacstate.Done, Since: now})

	// nova-compute of compute1 has not cleaned up yet: Nova refuses to
	// unforce, which fence_nova leaves to the nova-compute agent.
	code, out, errOut := e.run(t, "action=on\nplug=compute1\n")
	if code != 0 || out != "Success: Powered ON\n" {
		t.Fatalf("exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	s := e.service(t, "compute1.example.org")
	if !s.ForcedDown || !s.Enabled() {
		t.Errorf("want still forced down (Nova refused) but enabled: %+v", s)
	}
	if e.marks.get("compute1").Phase != evacstate.None {
		t.Errorf("the mark was not cleared")
	}

	// After nova-compute cleaned up, on unforces as well.
	e.nova.RestartCompute("compute1.example.org")
	e.run(t, "action=off\nplug=compute1\n")
	e.marks.setCompute1(evacstate.State{Phase: evacstate.Done, Since: now})
	if code, _, errOut := e.run(t, "action=on\nplug=compute1\n"); code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	if s := e.service(t, "compute1.example.org"); s.ForcedDown || !s.Enabled() {
		t.Errorf("service after unfencing: %+v", s)
	}
}

func TestUnfencingLeavesAnOperatorsDisableAlone(t *testing.T) {
	e := newEnv()
	id := e.service(t, "compute1.example.org").ID
	if _, err := e.nova.DisableService(context.Background(), id, "hardware ticket 4711"); err != nil {
		t.Fatal(err)
	}
	if code, _, errOut := e.run(t, "action=on\nplug=compute1\n"); code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	if s := e.service(t, "compute1.example.org"); s.Enabled() {
		t.Errorf("an operator's disable was undone: %+v", s)
	}
}

func TestRebootActsAsOffAndListShowsHosts(t *testing.T) {
	e := newEnv()
	if code, out, _ := e.run(t, "action=reboot\nplug=compute2\n"); code != 0 || out != "Success: Powered OFF\n" {
		t.Errorf("reboot: exit %d, %q", code, out)
	}
	code, out, errOut := e.run(t, "action=list\n")
	if code != 0 {
		t.Fatalf("list: exit %d: %s", code, errOut)
	}
	for _, want := range []string{"compute1.example.org,", "compute2.example.org,"} {
		if !strings.Contains(out, want) {
			t.Errorf("list %q lacks %s", out, want)
		}
	}
	// The hosts alone: not the capacity, two Placement reads per node, on every monitor.
	if slices.Contains(e.nova.Calls(), "Hypervisors") {
		t.Errorf("list read the hypervisors' capacity: calls %v", e.nova.Calls())
	}
}

func TestErrorsAreClear(t *testing.T) {
	e := newEnv()
	if code, _, errOut := e.run(t, "action=off\nplug=compute9\n"); code != 1 || !strings.Contains(errOut, "not found") {
		t.Errorf("unknown host: exit %d, %q", code, errOut)
	}
	e.agent.Connect = func(context.Context, fence.Params, *slog.Logger) (fence.Device, error) {
		return nil, errors.New("keystone: 401 unauthorized")
	}
	if code, _, errOut := e.run(t, "action=off\nplug=compute1\n"); code != 1 || !strings.Contains(errOut, "Unable to connect/login") {
		t.Errorf("bad credentials: exit %d, %q", code, errOut)
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		p       Params
		wantErr string
	}{
		{Params{Cloud: "c"}, ""},
		{Params{AuthURL: "https://k:5000/v3", ProjectName: "admin", Credentials: fence.Credentials{Username: "admin", Password: "x"}}, ""},
		{Params{}, "give cloud"},
		{Params{Cloud: "c", AuthURL: "https://k"}, "not both"},
		{Params{AuthURL: "https://k"}, "needs username and project_name"},
		{Params{Cloud: "c", Credentials: fence.Credentials{Password: "x"}}, "password is not used with cloud"},
		{Params{Cloud: "c", RecordOnly: "True"}, ""},
		{Params{Cloud: "c", RecordOnly: "no"}, ""},
		{Params{Cloud: "c", RecordOnly: "2"}, "record_only=2 is refused"},
		{Params{Cloud: "c", RecordOnly: "Disabled"}, "record_only=Disabled is refused"},
		{Params{Cloud: "c", RecordOnly: "sometimes"}, `record_only="sometimes" is not valid`},
	}
	for _, tt := range tests {
		tt.p.InstanceFiltering = true // its default
		err := tt.p.Validate()
		if (tt.wantErr == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tt.wantErr)) {
			t.Errorf("%+v: err %v, want %q", tt.p, err, tt.wantErr)
		}
	}
	if err := (&Params{Cloud: "c"}).Validate(); err == nil || !strings.Contains(err.Error(), "instance_filtering=0") {
		t.Errorf("instance_filtering off: err %v", err)
	}
}

// runRaw runs the agent on stdin as given: no cloud or domain added.
func (e *env) runRaw(t *testing.T, stdin string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := fence.Main(context.Background(), e.agent, fence.Env{
		Stdin: strings.NewReader(stdin), Stdout: &out, Stderr: &errb,
		Sleep: func(context.Context, time.Duration) error { return nil },
	})
	return code, out.String(), errb.String()
}

// tripleO is the option set the TripleO instance-HA profile gives fence_compute (its
// pacemaker::stonith::fence_compute 'fence-nova'), as the fencer passes it on stdin, with
// fence_nova in its place.
const tripleO = "auth_url=http://keystone.example.org:5000/v3\nlogin=admin\npasswd=s3cret\ntenant_name=admin\n" +
	"project_domain=Default\nuser_domain=Default\ndomain=example.org\nregion_name=regionOne\nrecord_only=1\n"

func TestAFenceComputeDeviceWorksWithOnlyTheAgentNameChanged(t *testing.T) {
	e := newEnv()
	var got *Params
	e.agent.Connect = func(ctx context.Context, fp fence.Params, log *slog.Logger) (fence.Device, error) {
		got = fp.(*Params)
		return &device{nova: e.nova, marks: e.marks, p: got, log: log, now: func() time.Time { return now }}, nil
	}
	code, out, errOut := e.runRaw(t, tripleO+"action=off\nport=compute1\nnodename=compute1\n")
	if code != 0 || out != "Success: Powered OFF\n" {
		t.Fatalf("off: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	if strings.Contains(errOut, "s3cret") || strings.Contains(errOut, "Ignoring") {
		t.Errorf("stderr: %q", errOut)
	}
	if got.AuthURL != "http://keystone.example.org:5000/v3" || got.ProjectName != "admin" || got.Username != "admin" || got.Password != "s3cret" ||
		got.ProjectDomain != "Default" || got.UserDomain != "Default" || got.Domain != "example.org" || got.Region != "regionOne" ||
		got.RecordOnly != "1" || !got.InstanceFiltering {
		t.Errorf("params: %+v", got)
	}
	if s := e.service(t, "compute1.example.org"); !s.ForcedDown || s.Enabled() || e.marks.get("compute1").Phase != evacstate.Pending {
		t.Errorf("after off: %+v, mark %+v", s, e.marks.get("compute1"))
	}
	// The older spellings of the same options (dashes, compute-domain) and the other
	// fence_compute options a device may carry.
	older := "auth-url=http://keystone.example.org:5000/v3\nlogin=admin\npasswd=s3cret\ntenant-name=admin\n" +
		"project-domain=Default\nuser-domain=Default\ncompute-domain=example.org\nrecord-only=0\nno-shared-storage=1\ninstance-filtering=True\n"
	if code, out, errOut := e.runRaw(t, older+"action=off\nport=compute2\n"); code != 0 || out != "Success: Powered OFF\n" {
		t.Fatalf("older spellings: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	if got.Domain != "example.org" || got.RecordOnly != "0" || !got.NoSharedStorage || !got.InstanceFiltering {
		t.Errorf("older spellings: %+v", got)
	}
	// The same on the command line.
	var outb, errb bytes.Buffer
	code = fence.Main(context.Background(), e.agent, fence.Env{
		Args:   []string{"-k", "http://keystone.example.org:5000/v3", "-l", "admin", "-t", "admin", "-S", "echo s3cret", "-u", "Default", "-P", "Default", "-d", "example.org", "--record-only", "1", "--no-shared-storage", "--instance-filtering", "-o", "status", "-n", "compute1"},
		Stdout: &outb, Stderr: &errb, Sleep: func(context.Context, time.Duration) error { return nil },
	})
	if code != 2 || outb.String() != "Status: OFF\n" {
		t.Errorf("command line: exit %d, %q, %q", code, outb.String(), errb.String())
	}
}

func TestFenceComputeOptionsComputehaDoesNotHonourAreRefusedChangingNothing(t *testing.T) {
	for _, opt := range []string{"record_only=2", "record_only=disabled", "record_only=sometimes", "instance_filtering=0", "no_shared_storage=maybe"} {
		t.Run(opt, func(t *testing.T) {
			e := newEnv()
			code, out, errOut := e.run(t, opt+"\naction=off\nplug=compute1\n")
			name, _, _ := strings.Cut(opt, "=")
			named := strings.Contains(errOut, name) || strings.Contains(errOut, strings.ReplaceAll(name, "_", "-"))
			if code != 1 || out != "" || !named {
				t.Errorf("exit %d, stdout %q, stderr %q", code, out, errOut)
			}
			if calls := e.nova.Calls(); len(calls) != 0 {
				t.Errorf("Nova was called: %v", calls)
			}
			if st := e.marks.get("compute1"); st.Phase != evacstate.None {
				t.Errorf("marked: %+v", st)
			}
		})
	}
}

func TestADomainNovaDoesNotUseFallsBackToTheNameAsGiven(t *testing.T) {
	e := newEnv()
	e.nova.AddCompute("overcloud-novacompute-0", "nova")
	code, out, errOut := e.runRaw(t, "cloud=test\ndomain=localdomain\naction=off\nplug=overcloud-novacompute-0\n")
	if code != 0 || out != "Success: Powered OFF\n" || !strings.Contains(errOut, "overcloud-novacompute-0.localdomain") {
		t.Fatalf("exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	if s := e.service(t, "overcloud-novacompute-0"); !s.ForcedDown {
		t.Errorf("not forced down: %+v", s)
	}
	// A long name whose short form is Nova's host.
	e.nova.AddCompute("cmp7", "nova")
	if code, _, errOut := e.runRaw(t, "cloud=test\naction=off\nplug=cmp7.internal.example.org\n"); code != 0 || !e.service(t, "cmp7").ForcedDown {
		t.Errorf("short form: exit %d, %q", code, errOut)
	}
	// No name Nova knows: the error names the first one tried.
	if code, _, errOut := e.runRaw(t, "cloud=test\ndomain=localdomain\naction=off\nplug=nowhere\n"); code != 1 || !strings.Contains(errOut, "nowhere.localdomain") {
		t.Errorf("unknown: exit %d, %q", code, errOut)
	}
}
