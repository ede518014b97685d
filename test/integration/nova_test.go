//go:build integration && openstack

package integration

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gophercloud/gophercloud/v2/openstack/config/clouds"

	"github.com/computeha/computeha/crm"
	"github.com/computeha/computeha/internal/evacstate"
	"github.com/computeha/computeha/internal/openstack"
	"github.com/computeha/computeha/test/nova"
)

// TestNovaSide proves fence_nova and ocf:computeha:nova-compute against a
// real Nova: the control plane runs in the network namespace of a live
// single-node Pacemaker cluster, so the agents, run inside that node, reach
// both Nova and Pacemaker's tools.
func TestNovaSide(t *testing.T) {
	node := startPacemaker(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	dir := os.Getenv("NOVA_DIR")
	if dir == "" {
		dir = "/tmp/computeha-nova"
	}
	plane := &nova.Plane{Dir: dir, NetNS: node.netns, Addr: "127.0.0.1"}
	start := time.Now()
	if err := plane.Up(ctx); err != nil {
		t.Fatalf("nova up: %v", err)
	}
	t.Logf("Nova up in %s", time.Since(start).Round(time.Millisecond))
	t.Cleanup(func() {
		dctx, dcancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer dcancel()
		if err := plane.Down(dctx); err != nil {
			t.Errorf("nova down: %v", err)
		}
	})
	tr, err := plane.Transport()
	if err != nil {
		t.Fatal(err)
	}
	osc, err := openstack.New(ctx, openstack.Options{Cloud: nova.CloudAdmin, CloudsFile: plane.CloudsYAML(), DialContext: tr.DialContext})
	if err != nil {
		t.Fatal(err)
	}
	admin, err := plane.AdminClient(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := admin.DeleteAll(ctx); err != nil {
		t.Fatal(err)
	}
	for _, h := range []string{"compute1", "compute2"} {
		if err := plane.Ready(ctx, h, osc); err != nil {
			t.Fatalf("start %s: %v", h, err)
		}
	}
	var ids []string
	for i := range 3 {
		id, err := admin.Boot(ctx, fmt.Sprintf("fence-nova-%d", i), "compute1", nova.FlavorEvacuable)
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	t.Cleanup(func() {
		for _, id := range ids {
			_ = admin.Delete(context.Background(), id)
		}
	})
	for _, id := range ids {
		if host, err := admin.Wait(ctx, id); err != nil || host != "compute1" {
			t.Fatalf("boot %s: on %q, %v", id, host, err)
		}
	}

	fenceNova := func(t *testing.T, lines ...string) run {
		t.Helper()
		stdin := "cloud=" + nova.CloudAdmin + "\nclouds_yaml=" + plane.CloudsYAML() + "\nnodename=node1\n" + strings.Join(lines, "\n") + "\n"
		r := execute(t, 2*time.Minute, stdin, filepath.Join(repoRoot, "test", "harness", "pcmk.sh"), "exec", node.dir, "/usr/sbin/fence_nova")
		t.Logf("fence_nova %q: %s", lines, r)
		return r
	}
	c := node.crmClient()

	t.Run("off forces compute1 down, disables it and marks the node, and an evacuation is accepted at once", func(t *testing.T) {
		if err := plane.ComputeKill(ctx, "compute1"); err != nil {
			t.Fatal(err)
		}
		t0 := time.Now()
		r := fenceNova(t, "action=off", "plug=compute1")
		if r.code != 0 || r.stdout != "Success: Powered OFF\n" {
			t.Fatalf("off: %s", r)
		}
		t.Logf("fence_nova off took %s", time.Since(t0).Round(time.Millisecond))
		svc, err := osc.FindComputeService(ctx, "compute1")
		if err != nil || !svc.ForcedDown || svc.Enabled() || !evacstate.DisabledByUs(svc.DisabledReason) {
			t.Errorf("compute1 after off: %+v, %v", svc, err)
		}
		v, err := c.Attribute(ctx, "node1", evacstate.Attribute, crm.Permanent)
		if st, perr := evacstate.Parse(v); err != nil || perr != nil || st.Phase != evacstate.Pending {
			t.Errorf("mark: %q, %v, %v", v, err, perr)
		}
		if r := fenceNova(t, "action=status", "plug=compute1"); r.code != 2 {
			t.Errorf("status after off: %s", r)
		}
		// No service_down_time wait: evacuations are accepted right away.
		t1 := time.Now()
		for _, id := range ids {
			if err := osc.Evacuate(ctx, id, "compute2"); err != nil {
				t.Fatalf("evacuate %s right after fence_nova off: %v", id, err)
			}
		}
		for _, id := range ids {
			wctx, wcancel := context.WithTimeout(ctx, 3*time.Minute)
			for {
				s, err := osc.Server(wctx, id)
				if err == nil && s.Host == "compute2" && s.Status == "ACTIVE" && s.TaskState == "" {
					break
				}
				if wctx.Err() != nil {
					t.Fatalf("%s not ACTIVE on compute2: %+v, %v", id, s, err)
				}
				time.Sleep(200 * time.Millisecond)
			}
			wcancel()
		}
		t.Logf("3 VMs ACTIVE on compute2 %s after fence_nova off", time.Since(t1).Round(time.Millisecond))
	})

	t.Run("on is refused while the evacuation is unfinished and succeeds after", func(t *testing.T) {
		if r := fenceNova(t, "action=on", "plug=compute1"); r.code != 1 || !strings.Contains(r.stderr, "evacuation of node1 is pending") {
			t.Errorf("on while pending: %s", r)
		}
		done := evacstate.State{Phase: evacstate.Done, Since: time.Now().UTC()}
		if err := c.SetAttribute(ctx, "node1", evacstate.Attribute, done.String(), crm.Permanent); err != nil {
			t.Fatal(err)
		}
		if r := fenceNova(t, "action=on", "plug=compute1"); r.code != 0 {
			t.Errorf("on after done: %s", r)
		}
		svc, _ := osc.FindComputeService(ctx, "compute1")
		if !svc.Enabled() {
			t.Errorf("compute1 not enabled after on: %+v", svc)
		}
		if _, err := c.Attribute(ctx, "node1", evacstate.Attribute, crm.Permanent); !errors.Is(err, crm.ErrNoSuchObject) {
			t.Errorf("the mark survived unfencing: %v", err)
		}
	})

	t.Run("ocf-tester passes for nova-compute, which unforces compute1 once its nova-compute cleaned up", func(t *testing.T) {
		// ocf-tester gives every action 20 s unless told otherwise; Pacemaker gives start
		// the advertised 180 s. A start here waits for nova-compute to clean up the
		// evacuation records, for Nova to accept unforcing, then for the new process's
		// first report: more than 20 s on a loaded machine.
		r := node.exec(t, 15*time.Minute, "ocf-tester", "-v", "-n", "nc",
			"-o", "CRM_meta_timeout=180000",
			"-o", "cloud="+nova.CloudAdmin, "-o", "clouds_yaml="+plane.CloudsYAML(), "-o", "host=compute1",
			"-o", "start_command="+nova.Script()+" compute-run compute1 --dir "+plane.Dir,
			"-o", "CRM_meta_on_node=node1", ocfAgentPath("nova-compute"))
		if r.code != 0 || !strings.Contains(r.stdout, "passed all tests") {
			t.Fatalf("ocf-tester: %s", r)
		}
		svc, err := osc.FindComputeService(ctx, "compute1")
		if err != nil || svc.ForcedDown || !svc.Enabled() {
			t.Errorf("compute1 after the agent ran: %+v, %v", svc, err)
		}
		migs, _ := osc.Migrations(ctx, openstack.MigrationFilter{Host: "compute1", Type: "evacuation"})
		for _, m := range migs {
			if m.Status == "done" {
				t.Errorf("evacuation %s still done: nova-compute did not clean up", m.ServerID)
			}
		}
	})

	t.Run("a device configured as TripleO's instance-HA profile configured fence_compute works with only the agent's name changed", func(t *testing.T) {
		if err := plane.Ready(ctx, "compute1", osc); err != nil {
			t.Fatal(err)
		}
		ao, eo, _, err := clouds.Parse(clouds.WithCloudName(nova.CloudAdmin), clouds.WithLocations(plane.CloudsYAML()))
		if err != nil {
			t.Fatal(err)
		}
		// compute1 as Pacemaker knows a compute: a remote node, which carries the mark.
		if r := node.exec(t, time.Minute, "cibadmin", "--create", "-o", "nodes", "-X", `<node id="compute1" uname="compute1" type="remote"/>`); r.code != 0 {
			t.Fatalf("cibadmin: %s", r)
		}
		// pacemaker::stonith::fence_compute { 'fence-nova': ... } of the profile: the
		// password in the CIB as it put it there, domain localdomain where this Nova's
		// host names have none (fence_compute then uses the names Nova has), record_only=1.
		opts := []string{
			"auth_url=" + ao.IdentityEndpoint, "login=" + ao.Username,
			"tenant_name=" + ao.TenantName, "project_domain=Default", "user_domain=Default", "domain=localdomain",
			"region_name=" + eo.Region, "record_only=1", "pcmk_host_list=compute1",
		}
		// pcs checks every option against the agent's metadata: a misspelt one is refused.
		if r := node.exec(t, time.Minute, append([]string{"pcs", "stonith", "create", "typo", "fence_nova", "reccord_only=1"}, opts...)...); r.code == 0 ||
			!strings.Contains(r.stderr, "reccord_only") {
			t.Errorf("pcs accepted an option fence_nova does not have: %s", r)
		}
		// Run without node.exec, which logs the command line: the password is on it.
		create := append(append([]string{"exec", node.dir, "pcs", "stonith", "create", "fence-nova", "fence_nova", "passwd=" + ao.Password}, opts...), "meta", "provides=unfencing")
		if r := execute(t, time.Minute, "", filepath.Join(repoRoot, "test", "harness", "pcmk.sh"), create...); r.code != 0 {
			t.Fatalf("pcs stonith create fence-nova fence_nova passwd=... %s: %s", strings.Join(opts, " "), strings.ReplaceAll(r.String(), ao.Password, "***"))
		}
		t.Cleanup(func() { node.exec(t, time.Minute, "pcs", "stonith", "delete", "fence-nova") })
		// --fence is an off.
		if r := node.exec(t, 2*time.Minute, "stonith_admin", "--fence", "compute1", "--timeout", "60"); r.code != 0 {
			t.Fatalf("stonith_admin --fence compute1: %s", r)
		}
		svc, err := osc.FindComputeService(ctx, "compute1")
		if err != nil || !svc.ForcedDown || svc.Enabled() || !evacstate.DisabledByUs(svc.DisabledReason) {
			t.Errorf("compute1 after the fencing: %+v, %v", svc, err)
		}
		v, err := c.Attribute(ctx, "compute1", evacstate.Attribute, crm.Permanent)
		if st, perr := evacstate.Parse(v); err != nil || perr != nil || st.Phase != evacstate.Pending {
			t.Errorf("mark: %q, %v, %v", v, err, perr)
		}
		if r := node.exec(t, time.Minute, "stonith_admin", "--history", "compute1", "--output-as=xml"); !strings.Contains(r.stdout, `status="success"`) {
			t.Errorf("the fencing history has no success: %s", r)
		}
		// Unfencing once the daemon is done with the host, as Pacemaker does when it comes back.
		done := evacstate.State{Phase: evacstate.Done, Since: time.Now().UTC()}
		if err := c.SetAttribute(ctx, "compute1", evacstate.Attribute, done.String(), crm.Permanent); err != nil {
			t.Fatal(err)
		}
		if r := node.exec(t, 2*time.Minute, "stonith_admin", "--unfence", "compute1", "--timeout", "60"); r.code != 0 {
			t.Fatalf("stonith_admin --unfence compute1: %s", r)
		}
		if svc, err := osc.FindComputeService(ctx, "compute1"); err != nil || svc.ForcedDown || !svc.Enabled() {
			t.Errorf("compute1 after unfencing: %+v, %v", svc, err)
		}
	})

	t.Run("bad credentials, an unknown host and a dead Nova fail clearly, in bounded time", func(t *testing.T) {
		dir := sharedDir(t)
		raw, err := os.ReadFile(plane.CloudsYAML())
		if err != nil {
			t.Fatal(err)
		}
		wrong := filepath.Join(dir, "wrong.yaml")
		if err := os.WriteFile(wrong, []byte(strings.Replace(string(raw), "password:", "password: wrong", 1)), 0o600); err != nil {
			t.Fatal(err)
		}
		dead := filepath.Join(dir, "dead.yaml")
		if err := os.WriteFile(dead, []byte(strings.ReplaceAll(string(raw), ":5000", ":9")), 0o600); err != nil {
			t.Fatal(err)
		}
		for _, tc := range []struct {
			name, clouds, plug, want string
		}{
			{"wrong credentials", wrong, "compute1", "Unable to connect/login"},
			{"unknown host", plane.CloudsYAML(), "compute9", "not found"},
			{"Nova down", dead, "compute1", "Unable to connect/login"},
		} {
			stdin := "action=off\nplug=" + tc.plug + "\ncloud=" + nova.CloudAdmin + "\nclouds_yaml=" + tc.clouds + "\nnodename=node1\nlogin_timeout=10\n"
			r := execute(t, 2*time.Minute, stdin, filepath.Join(repoRoot, "test", "harness", "pcmk.sh"), "exec", node.dir, "/usr/sbin/fence_nova")
			if r.code != 1 || !strings.Contains(r.stderr, tc.want) {
				t.Errorf("%s: want exit 1 and %q: %s", tc.name, tc.want, r)
			}
			if r.elapsed > 30*time.Second {
				t.Errorf("%s took %s", tc.name, r.elapsed)
			}
			if strings.Contains(r.stderr, "password") && strings.Contains(r.stderr, "wrong") {
				t.Errorf("%s: the password shows in the error: %s", tc.name, r.stderr)
			}
		}
	})
}
