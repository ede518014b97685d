package cli

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/computeha/computeha/crm"
	"github.com/computeha/computeha/internal/config"
	"github.com/computeha/computeha/internal/evacstate"
	"github.com/computeha/computeha/internal/openstack"
	"github.com/computeha/computeha/internal/status"
)

func fakeStatus(t *testing.T) string {
	t.Helper()
	cfg := filepath.Join(t.TempDir(), "evacd.yaml")
	if err := os.WriteFile(cfg, []byte("cloud: test\nsegments:\n  lab:\n    hosts: [cmp1, cmp2]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	n := openstack.NewFake(nil)
	n.AddCompute("cmp1", "nova")
	n.AddCompute("cmp2", "nova")
	n.AddServer(openstack.Server{Name: "vm", Host: "cmp1"})
	c := crm.NewFake(nil, "ctl1", "cmp1", "cmp2")
	if err := (evacstate.Marks{Attrs: c}).Set(context.Background(), "cmp2", evacstate.State{Phase: evacstate.Failed, Since: time.Date(2026, 12, 4, 9, 0, 0, 0, time.UTC), Reason: "1 VMs not recovered"}); err != nil {
		t.Fatal(err)
	}
	old := statusSources
	statusSources = func(cfg *config.Config, _ string) status.Sources {
		return status.Sources{Config: cfg, Cluster: c, Nova: n, Now: time.Now}
	}
	t.Cleanup(func() { statusSources = old })
	return cfg
}

func TestStatusPrintsTheSegmentsTheRecoveriesAndWhatNeedsAttention(t *testing.T) {
	cfg := fakeStatus(t)
	code, out, errOut := runMain(t, []string{"computeha", "status", "--config", cfg}, "")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	for _, want := range []string{
		"cluster: quorate, DC -; the evacuation daemon runs nowhere",
		"segment lab (auto)",
		"cmp1  online",
		"cmp2  failed  2026-12-04T09:00:00Z  -     1 VMs not recovered",
		"status: attention: the evacuation daemon runs nowhere; recovery of cmp2 failed",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	code, out, _ = runMain(t, []string{"computeha", "status", "--config", cfg, "--json"}, "")
	var r status.Report
	if code != 0 || json.Unmarshal([]byte(out), &r) != nil || len(r.Segments) != 1 || r.Segments[0].Hosts[0].VMs != 1 {
		t.Errorf("--json: exit %d, %s", code, out)
	}
	if code, _, errOut := runMain(t, []string{"computeha", "status", "--config", cfg, "extra"}, ""); code != 2 || !strings.Contains(errOut, "takes no arguments") {
		t.Errorf("an argument: exit %d, %q", code, errOut)
	}
}
