//go:build e2e

package e2e

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"
)

type testLog struct{ t *testing.T }

func (w testLog) Write(p []byte) (int, error) {
	w.t.Log(string(p))
	return len(p), nil
}

// TestPowerLoss is computeha's main job on real parts: a compute host with
// 10 HA VMs and 2 others loses power; Pacemaker fences it through its BMC
// and fence_nova; the evacuation daemon rebuilds exactly the HA VMs, once
// each, on the other hosts of the segment, never before the fencing was
// confirmed; the host is powered on again and is let back into Nova.
func TestPowerLoss(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatal("the end-to-end suite needs root")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()
	bin, err := filepath.Abs(filepath.Join("..", "..", "bin"))
	if err != nil {
		t.Fatal(err)
	}
	if b := os.Getenv("LAB_BIN"); b != "" {
		bin = b
	}
	env, err := Up(ctx, Options{Dir: filepath.Join(t.TempDir(), "e2e"), Bin: bin, Log: testLog{t}})
	if err != nil {
		t.Fatal(err)
	}
	defer env.Down(context.Background())

	vms, err := env.Boot(ctx, "cmp1", 10, 2)
	if err != nil {
		t.Fatal(err)
	}
	tl, err := env.PowerLoss(ctx, "cmp1", vms, 4*time.Minute, testLog{t})
	if err != nil {
		t.Fatal(err)
	}
	t.Log(tl.Summary())
	for _, v := range tl.Violations {
		t.Error(v)
	}
	if tl.AllActive == 0 {
		t.Fatal("not every HA VM was ACTIVE elsewhere within 4 minutes")
	}
	if _, err := env.PowerOn(ctx, "cmp1", 4*time.Minute, testLog{t}); err != nil {
		t.Error(err)
	}
}
