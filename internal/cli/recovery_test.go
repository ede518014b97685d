package cli

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/computeha/computeha/crm"
	"github.com/computeha/computeha/internal/evacstate"
)

func fakeRecoveryCluster(t *testing.T, marks map[string]evacstate.State) *crm.Fake {
	t.Helper()
	f := crm.NewFake(nil, "ctl1", "cmp1", "cmp2", "cmp3")
	for node, st := range marks {
		if err := (evacstate.Marks{Attrs: f}).Set(context.Background(), node, st); err != nil {
			t.Fatal(err)
		}
	}
	old := recoveryCluster
	recoveryCluster = func() evacstate.Cluster { return f }
	t.Cleanup(func() { recoveryCluster = old })
	return f
}

var cliSince = time.Date(2026, 12, 4, 9, 0, 0, 0, time.UTC)

func TestRecoveryListShowsEachHostUnderRecoveryAsATableOrJSON(t *testing.T) {
	fakeRecoveryCluster(t, map[string]evacstate.State{
		"cmp2": {Phase: evacstate.Failed, Since: cliSince, Reason: "2 VMs not recovered"},
		"cmp1": {Phase: evacstate.Running, Owner: "ctl1", Since: cliSince},
	})
	code, out, errOut := runMain(t, []string{"computeha", "recovery", "list"}, "")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 3 || !strings.HasPrefix(lines[0], "HOST") ||
		!strings.Contains(lines[1], "cmp1") || !strings.Contains(lines[1], "running") || !strings.Contains(lines[1], "ctl1") ||
		!strings.Contains(lines[2], "failed") || !strings.Contains(lines[2], "2 VMs not recovered") {
		t.Errorf("table:\n%s", out)
	}
	code, out, errOut = runMain(t, []string{"computeha", "recovery", "list", "--json"}, "")
	if code != 0 {
		t.Fatalf("--json: exit %d: %s", code, errOut)
	}
	var got []recoveryJSON
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		var v recoveryJSON
		if err := json.Unmarshal([]byte(l), &v); err != nil {
			t.Fatalf("line %q: %v", l, err)
		}
		got = append(got, v)
	}
	want := recoveryJSON{Host: "cmp2", Phase: "failed", Since: "2026-12-04T09:00:00Z", Reason: "2 VMs not recovered"}
	if len(got) != 2 || got[1] != want {
		t.Errorf("json %+v, want cmp1 then %+v", got, want)
	}
}

func TestRecoveryListWithNothingUnderRecoverySaysSo(t *testing.T) {
	fakeRecoveryCluster(t, nil)
	code, out, _ := runMain(t, []string{"computeha", "recovery", "list"}, "")
	if code != 0 || strings.TrimSpace(out) != "no host is under recovery" {
		t.Errorf("exit %d, %q", code, out)
	}
}

func TestRecoveryRetryAndClearOfAFailedHost(t *testing.T) {
	f := fakeRecoveryCluster(t, map[string]evacstate.State{
		"cmp2": {Phase: evacstate.Failed, Since: cliSince, Reason: "2 VMs not recovered"},
		"cmp3": {Phase: evacstate.Failed, Since: cliSince, Reason: "reading Nova failed"},
	})
	code, out, errOut := runMain(t, []string{"computeha", "recovery", "retry", "cmp2"}, "")
	if code != 0 || !strings.Contains(out, "cmp2 fenced again and marked pending") {
		t.Errorf("retry: exit %d, %q, %q", code, out, errOut)
	}
	if fences := f.Fences(); len(fences) != 1 || fences[0] != "cmp2 reboot" {
		t.Errorf("fencings %v", fences)
	}
	code, out, errOut = runMain(t, []string{"computeha", "recovery", "clear", "cmp3"}, "")
	if code != 0 || !strings.Contains(out, "cleared the failed recovery of cmp3") || !strings.Contains(out, "reading Nova failed") {
		t.Errorf("clear: exit %d, %q, %q", code, out, errOut)
	}
	if st, _ := (evacstate.Marks{Attrs: f}).Get(context.Background(), "cmp3"); st.Phase != evacstate.None {
		t.Errorf("cmp3 still %s", st.Phase)
	}
}

func TestRecoveryCommandsRefuseBadInputWithAClearErrorAndChangeNothing(t *testing.T) {
	for _, tt := range []struct {
		args     []string
		code     int
		errorHas string
	}{
		{[]string{"recovery", "retry"}, 2, "needs exactly one argument: HOST"},
		{[]string{"recovery", "retry", "cmp2", "cmp3"}, 2, "needs exactly one argument"},
		{[]string{"recovery", "retry", "cmp9"}, 1, "no such Pacemaker node"},
		{[]string{"recovery", "retry", "cmp1"}, 1, "has not failed (it is not under recovery)"},
		{[]string{"recovery", "retry", "--timeout", "soon", "cmp2"}, 2, `invalid value "soon" for flag -timeout`},
		{[]string{"recovery", "retry", "--timeout", "0s", "cmp2"}, 1, "--timeout must be positive"},
		{[]string{"recovery", "clear", "cmp9"}, 1, "no such Pacemaker node"},
		{[]string{"recovery", "clear"}, 2, "needs exactly one argument"},
		{[]string{"recovery", "list", "extra"}, 2, "takes no arguments"},
		{[]string{"recovery", "list", "--color"}, 2, "flag provided but not defined"},
	} {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			f := fakeRecoveryCluster(t, map[string]evacstate.State{"cmp2": {Phase: evacstate.Failed, Since: cliSince}})
			before, _ := f.CIB(context.Background())
			code, out, errOut := runMain(t, append([]string{"computeha"}, tt.args...), "")
			if code != tt.code || !strings.Contains(errOut, tt.errorHas) {
				t.Errorf("exit %d, stderr %q; want exit %d and %q", code, errOut, tt.code, tt.errorHas)
			}
			if out != "" {
				t.Errorf("stdout %q", out)
			}
			after, _ := f.CIB(context.Background())
			if len(before.Nodes) != len(after.Nodes) || after.Nodes[2].Attributes[evacstate.Attribute] != before.Nodes[2].Attributes[evacstate.Attribute] {
				t.Errorf("the CIB changed")
			}
			if len(f.Fences()) > 0 {
				t.Errorf("fenced %v", f.Fences())
			}
		})
	}
}
