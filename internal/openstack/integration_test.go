//go:build openstack

package openstack

import (
	"context"
	"log/slog"
	"net"
	"os"
	"testing"
	"time"
)

// Hooks the Nova lab's test code (a file of this package under the same build tag) may set,
// in TestMain for example, before the suite runs.
var (
	// integrationDialContext, if set, opens every connection to the control plane, e.g. from
	// inside the lab's network namespace.
	integrationDialContext func(ctx context.Context, network, addr string) (net.Conn, error)
	// integrationRestartCompute, if set, restarts the nova-compute of host, which turns its
	// "done" evacuations "completed". Without it the suite stops after checking that
	// unforcing is refused.
	integrationRestartCompute func(ctx context.Context, host string) error
)

// TestRealNovaRecoveryFlow runs a host recovery against a real Nova:
//
//	COMPUTEHA_TEST_CLOUDS_YAML  path of a clouds.yaml with admin credentials (required)
//	COMPUTEHA_TEST_CLOUD        entry to use (required)
//	COMPUTEHA_TEST_SOURCE_HOST  compute host to "fail", with at least one server (default compute1)
//	COMPUTEHA_TEST_TARGET_HOST  evacuation target; empty lets the scheduler choose
func TestRealNovaRecoveryFlow(t *testing.T) {
	cloudsFile, cloud := os.Getenv("COMPUTEHA_TEST_CLOUDS_YAML"), os.Getenv("COMPUTEHA_TEST_CLOUD")
	if cloudsFile == "" || cloud == "" {
		t.Fatal("the openstack suite needs COMPUTEHA_TEST_CLOUDS_YAML and COMPUTEHA_TEST_CLOUD (start the Nova lab first)")
	}
	source := envOr("COMPUTEHA_TEST_SOURCE_HOST", "compute1")
	target := os.Getenv("COMPUTEHA_TEST_TARGET_HOST")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()

	start := time.Now()
	cl, err := New(ctx, Options{
		Cloud: cloud, CloudsFile: cloudsFile, DialContext: integrationDialContext,
		Logger: slog.New(slog.NewTextHandler(os.Stderr, nil)),
	})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Logf("login: %s", time.Since(start))

	svc, err := cl.FindComputeService(ctx, source)
	if err != nil {
		t.Fatalf("FindComputeService(%s): %v", source, err)
	}
	if _, err := cl.FindComputeService(ctx, "no-such-host"); !IsNotFound(err) {
		t.Errorf("FindComputeService(no-such-host): err = %v, want not found", err)
	}
	t.Cleanup(func() {
		// Leave the lab usable: clear forced_down and re-enable if Nova allows it by now.
		ctx := context.Background()
		if _, err := cl.UnforceDown(ctx, svc.ID); err != nil {
			t.Logf("cleanup: UnforceDown: %v", err)
		}
		if _, err := cl.EnableService(ctx, svc.ID); err != nil {
			t.Logf("cleanup: EnableService: %v", err)
		}
	})

	servers, err := cl.ServersOnHost(ctx, source)
	if err != nil {
		t.Fatalf("ServersOnHost: %v", err)
	}
	if len(servers) == 0 {
		t.Fatalf("no servers on %s: boot some there before running the suite", source)
	}
	t.Logf("%d servers on %s", len(servers), source)

	// Evacuation is refused while Nova sees the source up, unless the lab already killed it
	// long enough ago.
	if svc.Up() && !svc.ForcedDown {
		if err := cl.Evacuate(ctx, servers[0].ID, target); !IsSourceServiceUp(err) {
			t.Fatalf("Evacuate with the source up: err = %v, want the source-up refusal", err)
		}
	}

	timed := func(name string, f func() (Service, error)) Service {
		t.Helper()
		start := time.Now()
		s, err := f()
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		t.Logf("%s: %s", name, time.Since(start))
		return s
	}
	got := timed("ForceDown", func() (Service, error) { return cl.ForceDown(ctx, svc.ID) })
	if !got.ForcedDown || got.Up() {
		t.Errorf("after ForceDown: %+v, want forced down and down", got)
	}
	got = timed("DisableService", func() (Service, error) { return cl.DisableService(ctx, svc.ID, "computeha integration test") })
	if got.Enabled() || got.DisabledReason != "computeha integration test" {
		t.Errorf("after DisableService: %+v, want disabled with the reason", got)
	}

	start = time.Now()
	for _, s := range servers {
		if err := cl.Evacuate(ctx, s.ID, target); err != nil {
			t.Fatalf("Evacuate(%s): %v", s.ID, err)
		}
	}
	for _, s := range servers {
		want := map[string]string{"SHUTOFF": "SHUTOFF"}[s.Status]
		if want == "" {
			want = "ACTIVE"
		}
		waitFor(ctx, t, "server "+s.ID+" "+want+" elsewhere", func() bool {
			now, err := cl.Server(ctx, s.ID)
			if err != nil {
				t.Logf("Server(%s): %v", s.ID, err)
				return false
			}
			if now.Status == "ERROR" {
				t.Fatalf("server %s went to ERROR", s.ID)
			}
			return now.Status == want && now.Host != source && now.TaskState == ""
		})
	}
	t.Logf("%d evacuations: all done in %s", len(servers), time.Since(start))

	migs, err := cl.Migrations(ctx, MigrationFilter{Host: source, Type: "evacuation", Status: "done"})
	if err != nil {
		t.Fatalf("Migrations: %v", err)
	}
	done := map[string]bool{}
	for _, m := range migs {
		if m.SourceCompute == source {
			done[m.ServerID] = true
		}
	}
	for _, s := range servers {
		if !done[s.ID] {
			t.Errorf("no done evacuation of %s from %s in %+v", s.ID, source, migs)
		}
	}

	if _, err := cl.UnforceDown(ctx, svc.ID); !IsEvacuationsPending(err) {
		t.Fatalf("UnforceDown with done evacuations: err = %v, want the pending-evacuations refusal", err)
	}
	if integrationRestartCompute == nil {
		t.Log("no restart hook: stopping before the restart of the source compute")
		return
	}
	if err := integrationRestartCompute(ctx, source); err != nil {
		t.Fatalf("restarting nova-compute on %s: %v", source, err)
	}
	waitFor(ctx, t, "evacuations from "+source+" completed", func() bool {
		left, err := cl.Migrations(ctx, MigrationFilter{Host: source, Type: "evacuation", Status: "done"})
		return err == nil && len(left) == 0
	})
	got = timed("UnforceDown", func() (Service, error) { return cl.UnforceDown(ctx, svc.ID) })
	if got.ForcedDown {
		t.Errorf("after UnforceDown: %+v, want not forced down", got)
	}
	got = timed("EnableService", func() (Service, error) { return cl.EnableService(ctx, svc.ID) })
	if !got.Enabled() {
		t.Errorf("after EnableService: %+v, want enabled", got)
	}
}

func waitFor(ctx context.Context, t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(3 * time.Minute)
	for !cond() {
		if time.Now().After(deadline) || ctx.Err() != nil {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}
