package nova

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack"
	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/servers"

	"github.com/gophercloud/gophercloud/v2/openstack/config"
	"github.com/gophercloud/gophercloud/v2/openstack/config/clouds"
	"github.com/gophercloud/gophercloud/v2/openstack/image/v2/images"

	osclient "github.com/computeha/computeha/internal/openstack"
)

// Flavors the plane creates: m1.evacuable carries the extra spec
// evacuable=true (an HA VM under the Red Hat convention), m1.tiny nothing.
const (
	FlavorTiny      = "1"
	FlavorEvacuable = "10"
)

// Admin is a compute client of the plane's admin, reaching it through its
// namespace, for tests that boot and inspect servers.
type Admin struct {
	Compute *gophercloud.ServiceClient
	image   string
}

// AdminClient logs in as the plane's admin.
func (p *Plane) AdminClient(ctx context.Context) (*Admin, error) {
	tr, err := p.Transport()
	if err != nil {
		return nil, err
	}
	ao, eo, _, err := clouds.Parse(clouds.WithCloudName(CloudAdmin), clouds.WithLocations(p.CloudsYAML()))
	if err != nil {
		return nil, err
	}
	pc, err := config.NewProviderClient(ctx, ao, config.WithHTTPClient(http.Client{Transport: tr}))
	if err != nil {
		return nil, err
	}
	compute, err := openstack.NewComputeV2(pc, eo)
	if err != nil {
		return nil, err
	}
	compute.Microversion = "2.93"
	imageClient, err := openstack.NewImageV2(pc, eo)
	if err != nil {
		return nil, err
	}
	pages, err := images.List(imageClient, images.ListOpts{Name: "tiny"}).AllPages(ctx)
	if err != nil {
		return nil, err
	}
	imgs, err := images.ExtractImages(pages)
	if err != nil || len(imgs) == 0 {
		return nil, fmt.Errorf("image tiny: %v (%d found)", err, len(imgs))
	}
	return &Admin{Compute: compute, image: imgs[0].ID}, nil
}

// Boot creates a server on host (the admin's "nova:HOST" zone hint) and
// returns its ID without waiting.
func (a *Admin) Boot(ctx context.Context, name, host, flavor string) (string, error) {
	s, err := servers.Create(ctx, a.Compute, servers.CreateOpts{
		Name: name, ImageRef: a.image, FlavorRef: flavor, Networks: "none", AvailabilityZone: "nova:" + host,
	}, nil).Extract()
	if err != nil {
		return "", fmt.Errorf("boot %s: %w", name, err)
	}
	return s.ID, nil
}

// Wait polls until the server is ACTIVE with no task running, and returns
// its host.
func (a *Admin) Wait(ctx context.Context, id string) (string, error) {
	for {
		s, err := servers.Get(ctx, a.Compute, id).Extract()
		if err == nil {
			if s.Status == "ERROR" {
				return "", fmt.Errorf("server %s is in ERROR: %v", id, s.Fault)
			}
			if s.Status == "ACTIVE" && s.TaskState == "" {
				return s.Host, nil
			}
		}
		select {
		case <-ctx.Done():
			return "", fmt.Errorf("server %s not ACTIVE (last error %v): %w", id, err, ctx.Err())
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// Delete removes a server.
func (a *Admin) Delete(ctx context.Context, id string) error {
	return servers.Delete(ctx, a.Compute, id).ExtractErr()
}

// Ready runs host's nova-compute (inside execPrefix, when given) and makes
// Nova see it in service whatever an earlier run left behind: a host left
// forced down or disabled by fencing is unforced (once its nova-compute
// has cleaned up the evacuated instances, as Nova requires) and enabled.
func (p *Plane) Ready(ctx context.Context, host string, c osclient.Client, execPrefix ...string) error {
	if _, err := c.FindComputeService(ctx, host); osclient.IsNotFound(err) {
		return p.ComputeStart(ctx, host, execPrefix...)
	}
	if err := p.ComputeLaunch(ctx, host, execPrefix...); err != nil {
		return err
	}
	deadline := time.Now().Add(3 * time.Minute)
	for {
		s, err := c.FindComputeService(ctx, host)
		if err == nil {
			switch {
			case s.ForcedDown:
				_, err = c.UnforceDown(ctx, s.ID)
			case !s.Enabled():
				_, err = c.EnableService(ctx, s.ID)
			case s.State == "up":
				return nil
			}
		}
		if err != nil && !osclient.IsEvacuationsPending(err) {
			return fmt.Errorf("bringing %s back into service: %w", host, err)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not back in service within 3 minutes (last: %+v)", host, s)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// DeleteAll deletes every server, so a run starts from an empty cloud
// whatever an earlier one left.
func (a *Admin) DeleteAll(ctx context.Context) error {
	pages, err := servers.List(a.Compute, servers.ListOpts{AllTenants: true}).AllPages(ctx)
	if err != nil {
		return err
	}
	all, err := servers.ExtractServers(pages)
	if err != nil {
		return err
	}
	for _, s := range all {
		if err := servers.Delete(ctx, a.Compute, s.ID).ExtractErr(); err != nil {
			return err
		}
	}
	return nil
}

// Unlimited lifts the default quotas (instances, cores, RAM) of every
// project, so tests and the demo can boot as many servers as they need.
func (a *Admin) Unlimited(ctx context.Context) error {
	body := map[string]any{"quota_class_set": map[string]int{"instances": -1, "cores": -1, "ram": -1}}
	_, err := a.Compute.Put(ctx, a.Compute.ServiceURL("os-quota-class-sets", "default"), body, nil,
		&gophercloud.RequestOpts{OkCodes: []int{200}})
	if err != nil {
		return fmt.Errorf("lifting the default quotas: %w", err)
	}
	return nil
}

// ServerState is where a server is and what it does.
type ServerState struct {
	Host, Status, TaskState string
}

// States lists every server's state in one request, for watchers that
// must not add load to the control plane they watch.
func (a *Admin) States(ctx context.Context) (map[string]ServerState, error) {
	pages, err := servers.List(a.Compute, servers.ListOpts{AllTenants: true}).AllPages(ctx)
	if err != nil {
		return nil, err
	}
	all, err := servers.ExtractServers(pages)
	if err != nil {
		return nil, err
	}
	out := make(map[string]ServerState, len(all))
	for _, s := range all {
		out[s.ID] = ServerState{Host: s.Host, Status: s.Status, TaskState: s.TaskState}
	}
	return out, nil
}
