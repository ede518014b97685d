//go:build openstack

package nova

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack"
	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/servers"
	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/services"
	"github.com/gophercloud/gophercloud/v2/openstack/config"
	"github.com/gophercloud/gophercloud/v2/openstack/config/clouds"
	"github.com/gophercloud/gophercloud/v2/openstack/image/v2/images"
)

// computeClient logs in as the admin of the plane's clouds.yaml, with every
// connection made inside the plane's network namespace.
func computeClient(ctx context.Context, t *testing.T, p *Plane) (*gophercloud.ServiceClient, *gophercloud.ServiceClient) {
	t.Helper()
	tr, err := p.Transport()
	if err != nil {
		t.Fatalf("transport: %v", err)
	}
	ao, eo, _, err := clouds.Parse(clouds.WithCloudName(CloudAdmin), clouds.WithLocations(p.CloudsYAML()))
	if err != nil {
		t.Fatalf("clouds.yaml: %v", err)
	}
	pc, err := config.NewProviderClient(ctx, ao, config.WithHTTPClient(http.Client{Transport: tr}))
	if err != nil {
		t.Fatalf("log in: %v", err)
	}
	compute, err := openstack.NewComputeV2(pc, eo)
	if err != nil {
		t.Fatalf("compute client: %v", err)
	}
	compute.Microversion = "2.93"
	image, err := openstack.NewImageV2(pc, eo)
	if err != nil {
		t.Fatalf("image client: %v", err)
	}
	return compute, image
}

// waitServer polls until the server is ACTIVE on host with no task running.
func waitServer(ctx context.Context, c *gophercloud.ServiceClient, id, host string) error {
	for {
		s, err := servers.Get(ctx, c, id).Extract()
		if err == nil {
			if s.Status == "ERROR" {
				return fmt.Errorf("server %s is in ERROR: %v", id, s.Fault)
			}
			if s.Status == "ACTIVE" && s.Host == host && s.TaskState == "" {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("server %s not ACTIVE on %s (last error %v): %w", id, host, err, ctx.Err())
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// serviceID is the UUID of host's nova-compute service.
func serviceID(ctx context.Context, t *testing.T, c *gophercloud.ServiceClient, host string) string {
	t.Helper()
	pages, err := services.List(c, services.ListOpts{Binary: "nova-compute", Host: host}).AllPages(ctx)
	if err != nil {
		t.Fatalf("list services: %v", err)
	}
	all, err := services.ExtractServices(pages)
	if err != nil || len(all) != 1 {
		t.Fatalf("nova-compute service of %s: %v, %d found", host, err, len(all))
	}
	return all[0].ID
}

// setForcedDown sends forced_down explicitly: services.UpdateOpts drops a
// false value (omitempty).
func setForcedDown(ctx context.Context, c *gophercloud.ServiceClient, id string, down bool) error {
	_, err := c.Put(ctx, c.ServiceURL("os-services", id), map[string]any{"forced_down": down}, nil,
		&gophercloud.RequestOpts{OkCodes: []int{200}})
	return err
}

// evacuate asks Nova to rebuild the server on host. From microversion 2.14
// the body must not carry onSharedStorage, and the 200 answer may be empty.
func evacuate(ctx context.Context, c *gophercloud.ServiceClient, id, host string) error {
	_, err := c.Post(ctx, c.ServiceURL("servers", id, "action"),
		map[string]any{"evacuate": map[string]any{"host": host}}, nil,
		&gophercloud.RequestOpts{OkCodes: []int{200}})
	return err
}

type migration struct {
	InstanceUUID  string `json:"instance_uuid"`
	Status        string `json:"status"`
	MigrationType string `json:"migration_type"`
	SourceCompute string `json:"source_compute"`
	DestCompute   string `json:"dest_compute"`
}

// evacuationStatuses maps each of the servers to the status of its
// evacuation from source.
func evacuationStatuses(ctx context.Context, c *gophercloud.ServiceClient, source string, ids []string) (map[string]string, error) {
	var body struct {
		Migrations []migration `json:"migrations"`
	}
	url := c.ServiceURL("os-migrations") + "?migration_type=evacuation&source_compute=" + source
	if _, err := c.Get(ctx, url, &body, nil); err != nil {
		return nil, err
	}
	want := map[string]bool{}
	for _, id := range ids {
		want[id] = true
	}
	got := map[string]string{}
	for _, m := range body.Migrations {
		if want[m.InstanceUUID] {
			got[m.InstanceUUID] = m.Status
		}
	}
	return got, nil
}

func allStatus(ids []string, status string) map[string]string {
	m := map[string]string{}
	for _, id := range ids {
		m[id] = status
	}
	return m
}

func TestEvacuationMovesTheServersOfAForcedDownHostToTheOtherHost(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("the control plane needs root")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	p := &Plane{Dir: os.Getenv("NOVA_DIR")}
	start := time.Now()
	if err := p.Up(ctx); err != nil {
		t.Fatalf("up: %v", err)
	}
	t.Logf("control plane up in %v", time.Since(start).Round(time.Millisecond))
	t.Cleanup(func() {
		if os.Getenv("NOVA_KEEP") != "" {
			return
		}
		dctx, dcancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer dcancel()
		if err := p.Down(dctx); err != nil {
			t.Errorf("down: %v", err)
		}
		if running, err := p.Running(dctx); running || err != nil {
			t.Errorf("after down: running %v, %v", running, err)
		}
		if _, err := os.Stat(filepath.Join(NetNSDir, p.NetNS)); p.NetNSCreated && !errors.Is(err, os.ErrNotExist) {
			t.Errorf("namespace %s still exists after down (%v)", p.NetNS, err)
		}
	})
	for _, h := range []string{"compute1", "compute2"} {
		start = time.Now()
		if err := p.ComputeStart(ctx, h); err != nil {
			t.Fatalf("start %s: %v", h, err)
		}
		t.Logf("%s up in %v", h, time.Since(start).Round(time.Millisecond))
	}
	compute, imageClient := computeClient(ctx, t, p)

	pages, err := images.List(imageClient, images.ListOpts{Name: "tiny"}).AllPages(ctx)
	if err != nil {
		t.Fatalf("list images: %v", err)
	}
	imgs, err := images.ExtractImages(pages)
	if err != nil || len(imgs) == 0 {
		t.Fatalf("image tiny: %v (%d found)", err, len(imgs))
	}

	// Boot on compute1: "nova:compute1" is the admin's way to pick a host.
	// The first server is evacuated alone (the time of one evacuation), the
	// other three together.
	ids := make([]string, 4)
	stamp := time.Now().Format("150405")
	for i := range ids {
		s, err := servers.Create(ctx, compute, servers.CreateOpts{
			Name:             fmt.Sprintf("evac-%s-%d", stamp, i),
			ImageRef:         imgs[0].ID,
			FlavorRef:        "10", // m1.evacuable
			Networks:         "none",
			AvailabilityZone: "nova:compute1",
		}, nil).Extract()
		if err != nil {
			t.Fatalf("boot server %d: %v", i, err)
		}
		ids[i] = s.ID
	}
	t.Cleanup(func() {
		for _, id := range ids {
			_ = servers.Delete(context.Background(), compute, id).ExtractErr()
		}
	})
	for _, id := range ids {
		if err := waitServer(ctx, compute, id, "compute1"); err != nil {
			t.Fatalf("boot: %v", err)
		}
	}

	// The host dies: its nova-compute is killed, and the fence is reported
	// to Nova by forcing the service down.
	if err := p.ComputeKill(ctx, "compute1"); err != nil {
		t.Fatalf("kill compute1: %v", err)
	}
	t0 := time.Now()
	svc := serviceID(ctx, t, compute, "compute1")
	if err := setForcedDown(ctx, compute, svc, true); err != nil {
		t.Fatalf("force compute1 down: %v", err)
	}
	forced := time.Since(t0)

	s := time.Now()
	if err := evacuate(ctx, compute, ids[0], "compute2"); err != nil {
		t.Fatalf("evacuate %s: %v", ids[0], err)
	}
	if err := waitServer(ctx, compute, ids[0], "compute2"); err != nil {
		t.Fatal(err)
	}
	single := time.Since(s)
	t.Logf("one evacuation (request to ACTIVE on compute2): %v", single.Round(time.Millisecond))

	var wg sync.WaitGroup
	batch := ids[1:]
	durations := make([]time.Duration, len(batch))
	errs := make([]error, len(batch))
	s = time.Now()
	for i, id := range batch {
		wg.Go(func() {
			s := time.Now()
			if err := evacuate(ctx, compute, id, "compute2"); err != nil {
				errs[i] = fmt.Errorf("evacuate %s: %w", id, err)
				return
			}
			errs[i] = waitServer(ctx, compute, id, "compute2")
			durations[i] = time.Since(s)
		})
	}
	wg.Wait()
	total := time.Since(s)
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	sorted := append([]time.Duration(nil), durations...)
	sort.Slice(sorted, func(a, b int) bool { return sorted[a] < sorted[b] })
	t.Logf("3 evacuations in parallel: each (request to ACTIVE on compute2) %v, all ACTIVE after %v",
		sorted, total.Round(time.Millisecond))
	t.Logf("force-down took %v; from force-down to all 4 ACTIVE on compute2: %v",
		forced.Round(time.Millisecond), time.Since(t0).Round(time.Millisecond))

	got, err := evacuationStatuses(ctx, compute, "compute1", ids)
	if err != nil {
		t.Fatalf("list migrations: %v", err)
	}
	if diff := cmp.Diff(allStatus(ids, "done"), got); diff != "" {
		t.Errorf("evacuation migrations before compute1 returns (-want +got):\n%s", diff)
	}
	// While they are "done", Nova refuses to lift the force-down.
	if err := setForcedDown(ctx, compute, svc, false); err == nil {
		t.Errorf("unsetting forced_down succeeded while evacuations were not completed")
	}

	// compute1 returns: its nova-compute cleans up the evacuated instances
	// and completes the migrations.
	start = time.Now()
	if err := p.ComputeLaunch(ctx, "compute1"); err != nil {
		t.Fatalf("restart compute1: %v", err)
	}
	for {
		got, err = evacuationStatuses(ctx, compute, "compute1", ids)
		if err == nil && cmp.Equal(allStatus(ids, "completed"), got) {
			break
		}
		if time.Since(start) > 2*time.Minute {
			t.Fatalf("evacuation migrations not completed after compute1 restarted: %v, %v", got, err)
		}
		time.Sleep(500 * time.Millisecond)
	}
	t.Logf("migrations completed %v after compute1's restart", time.Since(start).Round(time.Millisecond))
	if err := setForcedDown(ctx, compute, svc, false); err != nil {
		t.Fatalf("unset forced_down once the evacuations completed: %v", err)
	}
	if err := p.ComputeStart(ctx, "compute1"); err != nil {
		t.Fatalf("compute1 back up: %v", err)
	}
	for _, id := range ids {
		s, err := servers.Get(ctx, compute, id).Extract()
		if err != nil {
			t.Fatalf("get %s: %v", id, err)
		}
		if s.Host != "compute2" || s.Status != "ACTIVE" {
			t.Errorf("server %s is %s on %s after compute1 returned, want ACTIVE on compute2", id, s.Status, s.Host)
		}
	}
}
