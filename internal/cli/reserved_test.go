package cli

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/computeha/computeha/crm"
	"github.com/computeha/computeha/internal/config"
	"github.com/computeha/computeha/internal/openstack"
	"github.com/computeha/computeha/internal/reserve"
)

// fakeReserve has the reserved commands act on a fake Nova and Pacemaker: segment lab of cmp1..cmp3,
// cmp3 reserved and taken into use. It returns the configuration file to give them.
func fakeReserve(t *testing.T) (string, *openstack.Fake) {
	t.Helper()
	cfg := filepath.Join(t.TempDir(), "evacd.yaml")
	if err := os.WriteFile(cfg, []byte("cloud: test\nsegments:\n  lab:\n    hosts: [cmp1, cmp2, cmp3]\n    recovery_method: rh_priority\n    reserved_hosts: [cmp3]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	n := openstack.NewFake(nil)
	for _, h := range []string{"cmp1", "cmp2", "cmp3"} {
		n.AddCompute(h, "nova")
	}
	c := crm.NewFake(nil, "ctl1", "cmp1", "cmp2", "cmp3")
	if err := c.SetAttribute(context.Background(), "cmp3", reserve.UsedAttribute, "2026-12-04T11:00:00Z", crm.Permanent); err != nil {
		t.Fatal(err)
	}
	old := reservePool
	reservePool = func(cfg *config.Config) reserve.Pool {
		return reserve.Pool{Config: cfg, Nova: n, Cluster: c, Now: time.Now}
	}
	t.Cleanup(func() { reservePool = old })
	return cfg, n
}

func TestReservedListThenReturnThenListAgain(t *testing.T) {
	cfg, n := fakeReserve(t)
	vm := n.AddServer(openstack.Server{Name: "vm1", Host: "cmp3"})
	code, out, errOut := runMain(t, []string{"computeha", "reserved", "list", "--config", cfg}, "")
	if code != 0 || !strings.Contains(out, "in-use") || !strings.Contains(out, "2026-12-04T11:00:00Z") {
		t.Fatalf("list: exit %d, %q, %q", code, out, errOut)
	}
	code, out, errOut = runMain(t, []string{"computeha", "reserved", "return", "--config", cfg, "cmp3"}, "")
	if code != 1 || out != "" || !strings.Contains(errOut, "not empty: 1 servers on it (first vm1)") {
		t.Errorf("return of a host holding a VM: exit %d, %q, %q", code, out, errOut)
	}
	if err := n.DeleteServer(context.Background(), vm.ID); err != nil {
		t.Fatal(err)
	}
	code, out, errOut = runMain(t, []string{"computeha", "reserved", "return", "--config", cfg, "cmp3"}, "")
	if code != 0 || !strings.Contains(out, "cmp3 returned to the pool of segment lab, in-reserve") {
		t.Errorf("return: exit %d, %q, %q", code, out, errOut)
	}
	code, out, _ = runMain(t, []string{"computeha", "reserved", "list", "--config", cfg, "--json"}, "")
	if code != 0 || !strings.Contains(out, `"state":"in-reserve"`) || !strings.Contains(out, `"disabled_reason":"computeha: reserved: returned to the pool of segment lab`) {
		t.Errorf("list --json: exit %d, %q", code, out)
	}
}

func TestReservedCommandsRefuseBadInput(t *testing.T) {
	cfg, _ := fakeReserve(t)
	for _, tt := range []struct {
		args     []string
		code     int
		errorHas string
	}{
		{[]string{"reserved", "return", "--config", cfg}, 2, "needs exactly one argument: HOST"},
		{[]string{"reserved", "return", "--config", cfg, "cmp1"}, 1, "cmp1: not a reserved host of any segment"},
		{[]string{"reserved", "list", "--config", cfg, "cmp1"}, 2, "takes no arguments"},
		{[]string{"reserved", "list", "--config", filepath.Join(t.TempDir(), "none.yaml")}, 1, "none.yaml"},
		{[]string{"reserved", "list", "--config", cfg, "--all"}, 2, "flag provided but not defined"},
	} {
		code, out, errOut := runMain(t, append([]string{"computeha"}, tt.args...), "")
		if code != tt.code || out != "" || !strings.Contains(errOut, tt.errorHas) {
			t.Errorf("%v: exit %d, stdout %q, stderr %q; want %d and %q", tt.args, code, out, errOut, tt.code, tt.errorHas)
		}
	}
}
