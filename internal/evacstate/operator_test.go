package evacstate

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/computeha/computeha/crm"
)

var opNow = time.Date(2026, 12, 4, 10, 0, 0, 0, time.UTC)

func operatorOn(t *testing.T, marks map[string]State) (*crm.Fake, Operator) {
	t.Helper()
	f := crm.NewFake(func() time.Time { return opNow }, "ctl1", "cmp1", "cmp2", "cmp3")
	for node, st := range marks {
		if err := (Marks{f}).Set(context.Background(), node, st); err != nil {
			t.Fatal(err)
		}
	}
	return f, Operator{Cluster: f, Now: func() time.Time { return opNow }, FenceTimeout: time.Minute}
}

func mark(t *testing.T, f *crm.Fake, node string) State {
	t.Helper()
	st, err := (Marks{f}).Get(context.Background(), node)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

var failedSince = time.Date(2026, 12, 4, 9, 0, 0, 0, time.UTC)

func TestEntriesListEveryHostWithAStateUnreadableOnesIncluded(t *testing.T) {
	f, _ := operatorOn(t, map[string]State{
		"cmp2": {Phase: Failed, Since: failedSince, Reason: "2 VMs not recovered"},
		"cmp1": {Phase: Running, Owner: "ctl1", Since: failedSince},
	})
	if err := f.SetAttribute(context.Background(), "cmp3", Attribute, "evacuating", crm.Permanent); err != nil {
		t.Fatal(err)
	}
	cib, _ := f.CIB(context.Background())
	got := Entries(cib)
	if len(got) != 3 || got[0].Node != "cmp1" || got[1].Node != "cmp2" || got[2].Node != "cmp3" {
		t.Fatalf("entries %+v, want cmp1, cmp2, cmp3 in order", got)
	}
	if got[1].State.Phase != Failed || got[1].State.Reason != "2 VMs not recovered" || got[1].Err != nil {
		t.Errorf("cmp2: %+v", got[1])
	}
	if got[2].Err == nil || got[2].Raw != "evacuating" {
		t.Errorf("an unknown phase is listed with its error and value: %+v", got[2])
	}
}

func TestRetryMarksAFailedHostPendingThenFencesItWithTheClustersAction(t *testing.T) {
	f, op := operatorOn(t, map[string]State{"cmp2": {Phase: Failed, Since: failedSince, Reason: "2 VMs not recovered"}})
	f.SetProperty("stonith-action", "off")
	var markAtFence State
	f.OnFence = func(node string, _ crm.FenceAction) error {
		markAtFence = mark(t, f, node)
		return nil
	}
	st, err := op.Retry(context.Background(), "cmp2")
	if err != nil {
		t.Fatal(err)
	}
	want := State{Phase: Pending, By: ByRetry, Since: opNow}
	if diff := cmp.Diff(want, st); diff != "" {
		t.Errorf("state written (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(want, markAtFence); diff != "" {
		t.Errorf("the host is marked before it is fenced, so the fencing's time is after the mark's (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"cmp2 off"}, f.Fences()); diff != "" {
		t.Errorf("fencing requests (-want +got):\n%s", diff)
	}
}

func TestRetryWhoseFencingFailsLeavesTheHostPendingAndSaysSo(t *testing.T) {
	f, op := operatorOn(t, map[string]State{"cmp2": {Phase: Failed, Since: failedSince}})
	f.FenceErr = errors.New("stonith_admin: No route to host")
	_, err := op.Retry(context.Background(), "cmp2")
	if err == nil || !strings.Contains(err.Error(), "waits for a fencing that succeeds") {
		t.Fatalf("error %v, want one saying the recovery waits for fencing", err)
	}
	if st := mark(t, f, "cmp2"); st.Phase != Pending {
		t.Errorf("cmp2 is %s, want pending: nothing may recover it before a fencing succeeds", st.Phase)
	}
	// Asked again, it fences again and keeps the mark.
	f.FenceErr = nil
	st, err := op.Retry(context.Background(), "cmp2")
	if err != nil || st.Phase != Pending || st.By != ByRetry {
		t.Errorf("second retry: %+v, %v", st, err)
	}
	if diff := cmp.Diff([]string{"cmp2 reboot", "cmp2 reboot"}, f.Fences()); diff != "" {
		t.Errorf("fencing requests, reboot being Pacemaker's default (-want +got):\n%s", diff)
	}
}

func TestRetryAndClearRefuseWhatTheyCannotActOnAndChangeNothing(t *testing.T) {
	marks := map[string]State{
		"cmp1": {Phase: Running, Owner: "ctl1", Since: failedSince},
		"cmp3": {Phase: Done, Since: failedSince},
	}
	for _, tt := range []struct {
		name, node string
		act        func(Operator, context.Context, string) (State, error)
		want       error
	}{
		{"retry of an unknown host", "cmp9", Operator.Retry, ErrNoSuchNode},
		{"clear of an unknown host", "cmp9", Operator.Clear, ErrNoSuchNode},
		{"retry of a running recovery", "cmp1", Operator.Retry, ErrNotFailed},
		{"clear of a running recovery", "cmp1", Operator.Clear, ErrNotFailed},
		{"retry of a done recovery", "cmp3", Operator.Retry, ErrNotFailed},
		{"retry of a host not under recovery", "cmp2", Operator.Retry, ErrNotFailed},
		{"clear of a host not under recovery", "cmp2", Operator.Clear, ErrNotFailed},
		{"clear of a pending host, whose fencing may be running", "cmp2", Operator.Clear, ErrNotFailed},
	} {
		t.Run(tt.name, func(t *testing.T) {
			m := map[string]State{}
			for k, v := range marks {
				m[k] = v
			}
			if strings.Contains(tt.name, "pending") {
				m["cmp2"] = State{Phase: Pending, By: "fence_nova", Since: failedSince}
			}
			f, op := operatorOn(t, m)
			before, _ := f.CIB(context.Background())
			_, err := tt.act(op, context.Background(), tt.node)
			if !errors.Is(err, tt.want) {
				t.Fatalf("error %v, want %v", err, tt.want)
			}
			after, _ := f.CIB(context.Background())
			if diff := cmp.Diff(before, after); diff != "" {
				t.Errorf("the CIB changed (-before +after):\n%s", diff)
			}
			if len(f.Fences()) > 0 {
				t.Errorf("fenced: %v", f.Fences())
			}
		})
	}
}

func TestClearRemovesAFailedHostsMarkAndReturnsIt(t *testing.T) {
	failed := State{Phase: Failed, Since: failedSince, Reason: "2 VMs not recovered"}
	f, op := operatorOn(t, map[string]State{"cmp2": failed})
	got, err := op.Clear(context.Background(), "cmp2")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(failed, got); diff != "" {
		t.Errorf("state returned (-want +got):\n%s", diff)
	}
	if st := mark(t, f, "cmp2"); st.Phase != None {
		t.Errorf("cmp2 is still %s", st.Phase)
	}
	if len(f.Fences()) > 0 {
		t.Errorf("clearing fenced: %v", f.Fences())
	}
}
