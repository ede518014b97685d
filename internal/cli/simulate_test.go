package cli

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/computeha/computeha/crm"
	"github.com/computeha/computeha/internal/config"
	"github.com/computeha/computeha/internal/maintenance"
	"github.com/computeha/computeha/internal/openstack"
)

func fakeSimulate(t *testing.T) string {
	t.Helper()
	cfg := filepath.Join(t.TempDir(), "evacd.yaml")
	if err := os.WriteFile(cfg, []byte("cloud: test\nsegments:\n  lab:\n    hosts: [cmp1, cmp2, cmp3]\npolicy:\n  default: off\n  flavor_key: evacuable\nguard:\n  max_hosts: 1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	n := openstack.NewFake(nil)
	for _, h := range []string{"cmp1", "cmp2", "cmp3"} {
		n.AddCompute(h, "nova")
		n.SetResources(h, map[string]openstack.Resource{"VCPU": {Total: 8, AllocationRatio: 1}, "MEMORY_MB": {Total: 8192, AllocationRatio: 1}, "DISK_GB": {Total: 100, AllocationRatio: 1}})
	}
	svc, _ := n.FindComputeService(t.Context(), "cmp3")
	_, _ = n.DisableService(t.Context(), svc.ID, "RAM replacement")
	n.AddServer(openstack.Server{Name: "db", Host: "cmp1", Flavor: openstack.Flavor{VCPUs: 1, RAMMB: 512, ExtraSpecs: map[string]string{"evacuable": "true"}}})
	n.AddServer(openstack.Server{Name: "scratch", Host: "cmp1"})
	c := crm.NewFake(nil, "ctl1", "cmp1", "cmp2", "cmp3")
	old := simulateSources
	simulateSources = func(*config.Config) (openstack.Client, simulateCluster) { return n, c }
	t.Cleanup(func() { simulateSources = old })
	return cfg
}

func TestSimulateTellsWhereEachVMWouldGoAndWhatTheGuardWouldSay(t *testing.T) {
	cfg := fakeSimulate(t)
	code, out, errOut := runMain(t, []string{"computeha", "simulate", "--config", cfg, "cmp1"}, "")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	for _, want := range []string{"if cmp1 failed now (segment lab, auto):", "db       move     evacuate  cmp2", "scratch  left", "the guard lets it proceed"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	// Two at once: beyond guard.max_hosts 1, and cmp2 is no target of cmp1's plan.
	code, out, errOut = runMain(t, []string{"computeha", "simulate", "--config", cfg, "--json", "cmp1", "cmp2"}, "")
	if code != 0 {
		t.Fatalf("two hosts: exit %d: %s", code, errOut)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	var first simulationJSON
	if len(lines) != 2 || json.Unmarshal([]byte(lines[0]), &first) != nil {
		t.Fatalf("--json: %s", out)
	}
	if first.Guard != "pause" || first.GuardWhy == "" {
		t.Errorf("guard %q (%s), want pause", first.Guard, first.GuardWhy)
	}
	for _, vm := range first.VMs {
		if vm.Name == "db" && vm.Target == "cmp2" {
			t.Errorf("db planned onto cmp2, which fails with cmp1")
		}
	}
}

func TestSimulateRefusesBadInput(t *testing.T) {
	cfg := fakeSimulate(t)
	for _, tt := range []struct {
		args     []string
		code     int
		errorHas string
	}{
		{[]string{"simulate", "--config", cfg}, 2, "needs at least one argument: HOST [HOST...]"},
		{[]string{"simulate", "--config", cfg, "cmp9"}, 1, "cmp9: no such Pacemaker node"},
		{[]string{"simulate", "--config", cfg, "--timeout", "long", "cmp1"}, 2, "invalid value"},
	} {
		code, out, errOut := runMain(t, append([]string{"computeha"}, tt.args...), "")
		if code != tt.code || out != "" || !strings.Contains(errOut, tt.errorHas) {
			t.Errorf("%v: exit %d, stdout %q, stderr %q; want %d and %q", tt.args, code, out, errOut, tt.code, tt.errorHas)
		}
	}
}

func TestSimulateSaysAHostInMaintenanceRecoversNothing(t *testing.T) {
	cfg := fakeSimulate(t)
	_, cl := simulateSources(nil)
	if err := cl.(*crm.Fake).SetAttribute(t.Context(), "cmp1", maintenance.Attribute, "since=2026-12-04T10:00:00Z;reason=firmware", crm.Permanent); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := runMain(t, []string{"computeha", "simulate", "--config", cfg, "cmp1"}, "")
	if code != 0 || !strings.Contains(out, "it is in maintenance: firmware: a failure recovers nothing") {
		t.Errorf("exit %d, %q, %q", code, out, errOut)
	}
}
