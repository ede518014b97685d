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
	"github.com/computeha/computeha/internal/maintenance"
	"github.com/computeha/computeha/internal/openstack"
	"github.com/computeha/computeha/internal/recovery"
)

func fakeMaintenance(t *testing.T) (string, *crm.Fake, *openstack.Fake) {
	t.Helper()
	cfg := filepath.Join(t.TempDir(), "evacd.yaml")
	if err := os.WriteFile(cfg, []byte("cloud: test\nsegments:\n  lab:\n    hosts: [cmp1, cmp2, cmp3]\npolicy:\n  default: off\n  flavor_key: evacuable\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	n := openstack.NewFake(nil)
	for _, h := range []string{"cmp1", "cmp2", "cmp3"} {
		n.AddCompute(h, "nova")
		n.SetResources(h, map[string]openstack.Resource{"VCPU": {Total: 8, AllocationRatio: 1}, "MEMORY_MB": {Total: 8192, AllocationRatio: 1}, "DISK_GB": {Total: 100, AllocationRatio: 1}})
	}
	c := crm.NewFake(nil, "ctl1", "cmp1", "cmp2", "cmp3")
	old := maintenanceEnv
	maintenanceEnv = func(*config.Config) (maintenance.Cluster, openstack.Client, recovery.Cluster) { return c, n, c }
	t.Cleanup(func() { maintenanceEnv = old })
	return cfg, c, n
}

func TestMaintenanceEnterListAndExit(t *testing.T) {
	cfg, c, n := fakeMaintenance(t)
	code, out, errOut := runMain(t, []string{"computeha", "maintenance", "enter", "--config", cfg, "--reason", "RAM swap", "--until", "2h", "--by", "alice", "cmp1"}, "")
	if code != 0 || !strings.Contains(out, "cmp1 is in maintenance (by alice): RAM swap, until ") || !strings.Contains(out, "its nova-compute is disabled: computeha: maintenance:") {
		t.Fatalf("enter: exit %d, %q, %q", code, out, errOut)
	}
	v, _ := c.Attribute(context.Background(), "cmp1", maintenance.Attribute, crm.Permanent)
	w, err := maintenance.Parse(v)
	if err != nil || w.Until.Sub(w.Since) < 119*time.Minute || w.Until.Sub(w.Since) > 121*time.Minute {
		t.Errorf("window %+v (%v), want 2 hours", w, err)
	}
	code, out, _ = runMain(t, []string{"computeha", "maintenance", "list", "--config", cfg, "--json"}, "")
	if code != 0 || !strings.Contains(out, `"host":"cmp1"`) || !strings.Contains(out, `"reason":"RAM swap"`) {
		t.Errorf("list: exit %d, %q", code, out)
	}
	code, out, errOut = runMain(t, []string{"computeha", "maintenance", "exit", "--config", cfg, "cmp1"}, "")
	if code != 0 || !strings.Contains(out, "cmp1 left maintenance; its nova-compute is enabled") {
		t.Errorf("exit: exit %d, %q, %q", code, out, errOut)
	}
	if svc, _ := n.FindComputeService(context.Background(), "cmp1"); !svc.Enabled() {
		t.Errorf("cmp1 %+v", svc)
	}
}

func TestMaintenanceEnterDrainMovesTheHAVMsAndReportsEach(t *testing.T) {
	cfg, _, n := fakeMaintenance(t)
	n.AddServer(openstack.Server{Name: "db", Host: "cmp1", Flavor: openstack.Flavor{VCPUs: 1, RAMMB: 512, ExtraSpecs: map[string]string{"evacuable": "true"}}})
	n.AddServer(openstack.Server{Name: "scratch", Host: "cmp1"})
	code, out, errOut := runMain(t, []string{"computeha", "maintenance", "enter", "--config", cfg, "--drain", "cmp1"}, "")
	if code != 0 {
		t.Fatalf("exit %d: %s\n%s", code, errOut, out)
	}
	for _, want := range []string{"draining cmp1", "db (", "recovered by live-migrate to cmp", "scratch (", "left"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}

func TestMaintenanceCommandsRefuseBadInputAndChangeNothing(t *testing.T) {
	cfg, c, n := fakeMaintenance(t)
	for _, tt := range []struct {
		args     []string
		code     int
		errorHas string
	}{
		{[]string{"maintenance", "enter", "--config", cfg}, 2, "needs exactly one argument: HOST"},
		{[]string{"maintenance", "enter", "--config", cfg, "cmp9"}, 1, "cmp9: no such Pacemaker node"},
		{[]string{"maintenance", "enter", "--config", cfg, "--until", "soonish", "cmp1"}, 2, `--until`},
		{[]string{"maintenance", "enter", "--config", cfg, "--until", "2020-01-01", "cmp1"}, 2, "not in the future"},
		{[]string{"maintenance", "exit", "--config", cfg, "cmp1"}, 1, "cmp1: not in maintenance"},
		{[]string{"maintenance", "list", "--config", cfg, "cmp1"}, 2, "takes no arguments"},
		{[]string{"maintenance", "pause", "cmp1"}, 2, "pause"},
	} {
		code, out, errOut := runMain(t, append([]string{"computeha"}, tt.args...), "")
		if code != tt.code || out != "" || !strings.Contains(errOut, tt.errorHas) {
			t.Errorf("%v: exit %d, stdout %q, stderr %q; want %d and %q", tt.args, code, out, errOut, tt.code, tt.errorHas)
		}
	}
	if w, _ := (maintenance.Hosts{Cluster: c, Nova: n}).List(context.Background()); len(w) != 0 {
		t.Errorf("windows %+v", w)
	}
	if svc, _ := n.FindComputeService(context.Background(), "cmp1"); !svc.Enabled() {
		t.Errorf("cmp1 %+v", svc)
	}
}
