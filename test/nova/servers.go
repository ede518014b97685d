package nova

import (
	"context"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"time"

	"github.com/gophercloud/gophercloud/v2"
	"github.com/gophercloud/gophercloud/v2/openstack"
	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/aggregates"
	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/flavors"
	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/instanceactions"
	"github.com/gophercloud/gophercloud/v2/openstack/compute/v2/servergroups"
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
	// FlavorGuest (GuestFlavor) fits the test guest: 1 vCPU, 128 MB, 1 GB;
	// FlavorGuestEvacuable is the same with evacuable=true.
	FlavorGuest          = "20"
	FlavorGuestEvacuable = "21"
)

// Admin is a compute client of the plane's admin, reaching it through its
// namespace, for tests that boot and inspect servers.
type Admin struct {
	Compute *gophercloud.ServiceClient
	Images  *gophercloud.ServiceClient
	image   string
}

// AdminClient logs in as the plane's admin.
func (p *Plane) AdminClient(ctx context.Context) (*Admin, error) { return p.ClientAs(ctx, CloudAdmin) }

// ClientAs logs in as the clouds.yaml entry cloud (CloudAdmin, CloudDemo): servers it boots
// belong to that cloud's project.
func (p *Plane) ClientAs(ctx context.Context, cloud string) (*Admin, error) {
	tr, err := p.Transport()
	if err != nil {
		return nil, err
	}
	ao, eo, _, err := clouds.Parse(clouds.WithCloudName(cloud), clouds.WithLocations(p.CloudsYAML()))
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
	return &Admin{Compute: compute, Images: imageClient, image: imgs[0].ID}, nil
}

// ImageID is the ID of the one active image called name (GuestImage, say).
func (a *Admin) ImageID(ctx context.Context, name string) (string, error) {
	pages, err := images.List(a.Images, images.ListOpts{Name: name, Status: images.ImageStatusActive}).AllPages(ctx)
	if err != nil {
		return "", err
	}
	imgs, err := images.ExtractImages(pages)
	if err != nil {
		return "", err
	}
	if len(imgs) != 1 {
		return "", fmt.Errorf("image %s: %d active images of that name, not 1", name, len(imgs))
	}
	return imgs[0].ID, nil
}

// ConsoleLog is the server's console output as Nova gives it (the serial
// console's log, for a libvirt guest).
func (a *Admin) ConsoleLog(ctx context.Context, id string) (string, error) {
	return servers.ShowConsoleOutput(ctx, a.Compute, id, servers.ShowConsoleOutputOpts{}).Extract()
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

// BootMany creates n servers on host in one request (Nova's multiple create: Nova names them
// prefix-1 to prefix-n) and returns their names by ID, without waiting for them.
func (a *Admin) BootMany(ctx context.Context, prefix, host, flavor string, n int) (map[string]string, error) {
	if n == 1 {
		// Nova adds the suffix only when it creates more than one.
		id, err := a.Boot(ctx, prefix+"-1", host, flavor)
		if err != nil {
			return nil, err
		}
		return map[string]string{id: prefix + "-1"}, nil
	}
	if _, err := servers.Create(ctx, a.Compute, servers.CreateOpts{
		Name: prefix, ImageRef: a.image, FlavorRef: flavor, Networks: "none", AvailabilityZone: "nova:" + host,
		Min: n, Max: n,
	}, nil).Extract(); err != nil {
		return nil, fmt.Errorf("boot %d servers %s: %w", n, prefix, err)
	}
	// The reply names the first server only: the others are found by name.
	pages, err := servers.List(a.Compute, servers.ListOpts{AllTenants: true, Name: "^" + regexp.QuoteMeta(prefix) + "-[0-9]+$"}).AllPages(ctx)
	if err != nil {
		return nil, err
	}
	all, err := servers.ExtractServers(pages)
	if err != nil {
		return nil, err
	}
	if len(all) != n {
		return nil, fmt.Errorf("boot %d servers %s: Nova lists %d of that name", n, prefix, len(all))
	}
	out := make(map[string]string, n)
	for _, s := range all {
		out[s.ID] = s.Name
	}
	return out, nil
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

// Stop stops a server (os-stop), as `openstack server stop` does.
func (a *Admin) Stop(ctx context.Context, id string) error {
	return servers.Stop(ctx, a.Compute, id).ExtractErr()
}

// Start starts a stopped server (os-start).
func (a *Admin) Start(ctx context.Context, id string) error {
	return servers.Start(ctx, a.Compute, id).ExtractErr()
}

// SetMetadata sets metadata items of a server (others are kept), as `openstack server set
// --property` does.
func (a *Admin) SetMetadata(ctx context.Context, id string, md map[string]string) error {
	_, err := servers.UpdateMetadata(ctx, a.Compute, id, servers.MetadataOpts(md)).Extract()
	return err
}

// Token is the login's Keystone token.
func (a *Admin) Token() string { return a.Compute.Token() }

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

// BootOpts is a server to boot with more than a name and a flavor.
type BootOpts struct {
	// Host pins the server to a host (the admin's "nova:HOST" zone); empty lets the scheduler
	// choose (what a project member may do).
	Name, Host, Flavor string
	// Image is the ID of the image to boot; empty: the image tiny (Image).
	Image string
	// Metadata is the instance metadata (recovery class, restart priority).
	Metadata map[string]string
	// Group is the server group the server joins ("" for none).
	Group string
}

// BootWith creates a server on o.Host and returns its ID without waiting.
func (a *Admin) BootWith(ctx context.Context, o BootOpts) (string, error) {
	image := o.Image
	if image == "" {
		image = a.image
	}
	zone := ""
	if o.Host != "" {
		zone = "nova:" + o.Host
	}
	var create servers.CreateOptsBuilder = servers.CreateOpts{
		Name: o.Name, ImageRef: image, FlavorRef: o.Flavor, Networks: "none", AvailabilityZone: zone,
		Metadata: o.Metadata,
	}
	var hints servers.SchedulerHintOptsBuilder
	if o.Group != "" {
		hints = servers.SchedulerHintOpts{Group: o.Group}
	}
	s, err := servers.Create(ctx, a.Compute, create, hints).Extract()
	if err != nil {
		return "", fmt.Errorf("boot %s: %w", o.Name, err)
	}
	return s.ID, nil
}

// Image is the image servers boot from.
func (a *Admin) Image() string { return a.image }

// CreateGroup creates a server group with policy and returns its ID.
func (a *Admin) CreateGroup(ctx context.Context, name, policy string) (string, error) {
	g, err := servergroups.Create(ctx, a.Compute, servergroups.CreateOpts{Name: name, Policy: policy}).Extract()
	if err != nil {
		return "", fmt.Errorf("server group %s: %w", name, err)
	}
	return g.ID, nil
}

// DeleteGroups deletes every server group of the admin's project.
func (a *Admin) DeleteGroups(ctx context.Context) error {
	pages, err := servergroups.List(a.Compute, nil).AllPages(ctx)
	if err != nil {
		return err
	}
	gs, err := servergroups.ExtractServerGroups(pages)
	if err != nil {
		return err
	}
	for _, g := range gs {
		if err := servergroups.Delete(ctx, a.Compute, g.ID).ExtractErr(); err != nil {
			return err
		}
	}
	return nil
}

// GroupMembers lists the members of a server group.
func (a *Admin) GroupMembers(ctx context.Context, id string) ([]string, error) {
	g, err := servergroups.Get(ctx, a.Compute, id).Extract()
	if err != nil {
		return nil, err
	}
	return g.Members, nil
}

// EnsureFlavor creates a public flavor with the given id, name and size unless one with that
// id exists.
func (a *Admin) EnsureFlavor(ctx context.Context, id, name string, vcpus, ramMB, diskGB int) error {
	if _, err := flavors.Get(ctx, a.Compute, id).Extract(); err == nil {
		return nil
	}
	pub := true
	_, err := flavors.Create(ctx, a.Compute, flavors.CreateOpts{ID: id, Name: name, VCPUs: vcpus, RAM: ramMB, Disk: &diskGB, IsPublic: &pub}).Extract()
	if err != nil {
		return fmt.Errorf("flavor %s: %w", name, err)
	}
	return nil
}

// SetAggregate makes the aggregate name hold exactly hosts, creating it if needed, and
// returns its ID.
func (a *Admin) SetAggregate(ctx context.Context, name string, hosts []string) (int, error) {
	pages, err := aggregates.List(a.Compute).AllPages(ctx)
	if err != nil {
		return 0, err
	}
	all, err := aggregates.ExtractAggregates(pages)
	if err != nil {
		return 0, err
	}
	var agg *aggregates.Aggregate
	for i := range all {
		if all[i].Name == name {
			agg = &all[i]
		}
	}
	if agg == nil {
		created, err := aggregates.Create(ctx, a.Compute, aggregates.CreateOpts{Name: name}).Extract()
		if err != nil {
			return 0, fmt.Errorf("aggregate %s: %w", name, err)
		}
		agg = created
	}
	for _, h := range agg.Hosts {
		if !slices.Contains(hosts, h) {
			if _, err := aggregates.RemoveHost(ctx, a.Compute, agg.ID, aggregates.RemoveHostOpts{Host: h}).Extract(); err != nil {
				return 0, err
			}
		}
	}
	for _, h := range hosts {
		if !slices.Contains(agg.Hosts, h) {
			if _, err := aggregates.AddHost(ctx, a.Compute, agg.ID, aggregates.AddHostOpts{Host: h}).Extract(); err != nil {
				return 0, err
			}
		}
	}
	return agg.ID, nil
}

// DeleteAggregate deletes the aggregate name, its hosts first; a missing one is no error.
func (a *Admin) DeleteAggregate(ctx context.Context, name string) error {
	if _, err := a.SetAggregate(ctx, name, nil); err != nil {
		return err
	}
	pages, err := aggregates.List(a.Compute).AllPages(ctx)
	if err != nil {
		return err
	}
	all, err := aggregates.ExtractAggregates(pages)
	if err != nil {
		return err
	}
	for _, g := range all {
		if g.Name == name {
			return aggregates.Delete(ctx, a.Compute, g.ID).ExtractErr()
		}
	}
	return nil
}

// Rebuilds counts the rebuilds of server id that Nova's computes completed for its evacuations
// begun since then (to the second, as Nova keeps it): the compute_rebuild_instance events with
// result Success of its evacuate actions. Nova's migration records do not tell it: a rebuild
// asked again is recorded on the first one.
func (a *Admin) Rebuilds(ctx context.Context, id string, since time.Time) (int, error) {
	pages, err := instanceactions.List(a.Compute, id, nil).AllPages(ctx)
	if err != nil {
		return 0, fmt.Errorf("instance actions of %s: %w", id, err)
	}
	actions, err := instanceactions.ExtractInstanceActions(pages)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, act := range actions {
		if act.Action != "evacuate" {
			continue
		}
		d, err := instanceactions.Get(ctx, a.Compute, id, act.RequestID).Extract()
		if err != nil {
			return 0, fmt.Errorf("instance action %s of %s: %w", act.RequestID, id, err)
		}
		if d.Events == nil {
			continue
		}
		for _, e := range *d.Events {
			if e.Event == "compute_rebuild_instance" && e.Result == "Success" && !e.StartTime.Before(since.Truncate(time.Second)) {
				n++
			}
		}
	}
	return n, nil
}
