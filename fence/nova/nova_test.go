package nova

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
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
	e.run(t, "action=off\nplug=compute1\n")
	if code, out, _ := e.run(t, "action=status\nplug=compute1\n"); code != 2 || out != "Status: OFF\n" {
		t.Errorf("after off: exit %d, %q", code, out)
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
	}
	for _, tt := range tests {
		err := tt.p.Validate()
		if (tt.wantErr == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tt.wantErr)) {
			t.Errorf("%+v: err %v, want %q", tt.p, err, tt.wantErr)
		}
	}
}
