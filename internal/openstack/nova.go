package openstack

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gophercloud/gophercloud/v2"
)

// nova is the real Client.
type nova struct {
	log         *slog.Logger
	callTimeout time.Duration
	retry       RetryPolicy
	sleep       func(context.Context, time.Duration) error

	compute      *gophercloud.ServiceClient
	placement    *gophercloud.ServiceClient
	placementErr error
	image        *gophercloud.ServiceClient
	imageErr     error
	network      *gophercloud.ServiceClient
	networkErr   error

	// pc is the login every service client above shares; eo chooses endpoints in a catalog.
	pc *gophercloud.ProviderClient
	eo gophercloud.EndpointOpts
	// projectID and userID own the login's token: servers it creates belong to projectID,
	// key pairs it names belong to userID.
	projectID, userID string
	// identity reaches Keystone v3 without a token of its own, to rescope the login's token.
	identity *gophercloud.ServiceClient

	// scoped holds a compute client per other project CreateServer was asked to create in,
	// each with its own rescoped token; refused remembers, for a while, the projects Keystone
	// would not scope a token to, so a recovery recreating many servers of such a project
	// does not ask again (and log in again) for each.
	scopedMu sync.Mutex
	scoped   map[string]*gophercloud.ServiceClient
	refused  map[string]refusal
	// keysMu serialises key pair copies, so two concurrent creates never import one key twice.
	keysMu sync.Mutex

	// images caches image properties: a recovery reads the same few
	// images for every server it watches, and a control plane under load
	// is better spared the repeated Glance calls.
	imagesMu sync.Mutex
	images   map[string]cachedImage
}

type cachedImage struct {
	props map[string]string
	at    time.Time
}

// imageTTL is how long image properties are trusted; properties that
// decide HA change rarely, and a recovery lasts minutes at most.
const imageTTL = 5 * time.Minute

var _ Client = (*nova)(nil)

// Page sizes: large enough that a typical host takes one request, small enough that one
// response stays well under Nova's max_limit (1000) and quick to serialise.
const (
	serversPageSize     = 200
	migrationsPageSize  = 200
	hypervisorsPageSize = 200
	// placementParallel bounds concurrent Placement reads in Hypervisors.
	placementParallel = 4
)

// getJSON GETs url from sc and decodes the answer into out, retrying as for reads. Each
// attempt decodes afresh, so a half-read failed attempt leaves nothing behind in out.
func (c *nova) getJSON(ctx context.Context, sc *gophercloud.ServiceClient, service, op, url string, out any) error {
	var raw json.RawMessage
	err := c.do(ctx, service, op, true, func(ctx context.Context) error {
		raw = nil
		_, err := sc.Get(ctx, url, &raw, &gophercloud.RequestOpts{OkCodes: []int{200}})
		return err
	})
	if err != nil {
		return err
	}
	if err := json.Unmarshal(raw, out); err != nil {
		return fmt.Errorf("%s: decoding the answer: %w", op, err)
	}
	return nil
}

// --- services -------------------------------------------------------------------------------

type serviceJSON struct {
	ID             string  `json:"id"`
	Binary         string  `json:"binary"`
	Host           string  `json:"host"`
	Zone           string  `json:"zone"`
	Status         string  `json:"status"`
	State          string  `json:"state"`
	ForcedDown     bool    `json:"forced_down"`
	DisabledReason *string `json:"disabled_reason"`
	UpdatedAt      *string `json:"updated_at"`
}

func (s serviceJSON) service() Service {
	out := Service{
		ID: s.ID, Host: s.Host, Binary: s.Binary, Zone: s.Zone,
		Status: s.Status, State: s.State, ForcedDown: s.ForcedDown,
	}
	if s.DisabledReason != nil {
		out.DisabledReason = *s.DisabledReason
	}
	if s.UpdatedAt != nil {
		out.UpdatedAt = parseTime(*s.UpdatedAt)
	}
	return out
}

func (c *nova) FindComputeService(ctx context.Context, host string) (Service, error) {
	if host == "" {
		return Service{}, errors.New("finding the compute service: empty host name")
	}
	op := fmt.Sprintf("finding the nova-compute service of %s", host)
	list, err := c.services(ctx, op, url.Values{"binary": {"nova-compute"}, "host": {host}})
	if err != nil {
		return Service{}, err
	}
	var found []Service
	for _, s := range list {
		// Nova filters on the server side; filter again so a server that ignores the query
		// (or matches case-insensitively, as MySQL collations do) cannot hand back another host.
		if s.Binary != "nova-compute" || s.Host != host {
			continue
		}
		if s.ID == "" || s.Status == "UNKNOWN" {
			return Service{}, fmt.Errorf("%s: the host's cell is down: %w", op, ErrUnavailable)
		}
		found = append(found, s.service())
	}
	switch len(found) {
	case 0:
		return Service{}, fmt.Errorf("%s: %w", op, ErrNotFound)
	case 1:
		return found[0], nil
	default:
		return Service{}, fmt.Errorf("%s: %d services match: %w", op, len(found), ErrAmbiguous)
	}
}

func (c *nova) ComputeServices(ctx context.Context) ([]Service, error) {
	list, err := c.services(ctx, "listing the nova-compute services", url.Values{"binary": {"nova-compute"}})
	if err != nil {
		return nil, err
	}
	out := make([]Service, 0, len(list))
	for _, s := range list {
		if s.Binary != "nova-compute" || s.ID == "" || s.Status == "UNKNOWN" {
			continue
		}
		out = append(out, s.service())
	}
	return out, nil
}

// services sends GET /os-services with q.
func (c *nova) services(ctx context.Context, op string, q url.Values) ([]serviceJSON, error) {
	var body struct {
		Services []serviceJSON `json:"services"`
	}
	if err := c.getJSON(ctx, c.compute, "compute", op, c.compute.ServiceURL("os-services")+"?"+q.Encode(), &body); err != nil {
		return nil, err
	}
	return body.Services, nil
}

// updateService sends PUT /os-services/{id} (2.53+). The body is built here rather than with
// gophercloud's services.UpdateOpts, whose omitempty drops "forced_down": false.
func (c *nova) updateService(ctx context.Context, op, serviceID string, body map[string]any) (Service, error) {
	if serviceID == "" {
		return Service{}, fmt.Errorf("%s: empty service id", op)
	}
	var out struct {
		Service serviceJSON `json:"service"`
	}
	u := c.compute.ServiceURL("os-services", url.PathEscape(serviceID))
	err := c.do(ctx, "compute", op, true, func(ctx context.Context) error {
		out.Service = serviceJSON{}
		_, err := c.compute.Put(ctx, u, body, &out, &gophercloud.RequestOpts{OkCodes: []int{200}})
		return err
	})
	if err != nil {
		return Service{}, err
	}
	return out.Service.service(), nil
}

func (c *nova) DisableService(ctx context.Context, serviceID, reason string) (Service, error) {
	body := map[string]any{"status": "disabled"}
	if reason != "" {
		body["disabled_reason"] = reason
	}
	return c.updateService(ctx, "disabling service "+serviceID, serviceID, body)
}

func (c *nova) EnableService(ctx context.Context, serviceID string) (Service, error) {
	return c.updateService(ctx, "enabling service "+serviceID, serviceID, map[string]any{"status": "enabled"})
}

func (c *nova) ForceDown(ctx context.Context, serviceID string) (Service, error) {
	return c.updateService(ctx, "forcing service "+serviceID+" down", serviceID, map[string]any{"forced_down": true})
}

func (c *nova) UnforceDown(ctx context.Context, serviceID string) (Service, error) {
	return c.updateService(ctx, "clearing forced_down of service "+serviceID, serviceID, map[string]any{"forced_down": false})
}

// --- servers --------------------------------------------------------------------------------

type serverJSON struct {
	ID                 string            `json:"id"`
	Name               string            `json:"name"`
	Status             string            `json:"status"`
	TenantID           string            `json:"tenant_id"`
	UserID             string            `json:"user_id"`
	Metadata           map[string]string `json:"metadata"`
	Tags               []string          `json:"tags"`
	Image              json.RawMessage   `json:"image"`
	Flavor             *flavorJSON       `json:"flavor"`
	Locked             bool              `json:"locked"`
	Host               *string           `json:"OS-EXT-SRV-ATTR:host"`
	HypervisorHostname *string           `json:"OS-EXT-SRV-ATTR:hypervisor_hostname"`
	VMState            *string           `json:"OS-EXT-STS:vm_state"`
	TaskState          *string           `json:"OS-EXT-STS:task_state"`
	PowerState         *int              `json:"OS-EXT-STS:power_state"`
	AvailabilityZone   *string           `json:"OS-EXT-AZ:availability_zone"`
	Fault              *struct {
		Message string `json:"message"`
	} `json:"fault"`
}

// flavorJSON is the flavor embedded in a server from 2.47.
type flavorJSON struct {
	OriginalName string            `json:"original_name"`
	VCPUs        flexInt           `json:"vcpus"`
	RAM          flexInt           `json:"ram"`
	Disk         flexInt           `json:"disk"`
	Ephemeral    flexInt           `json:"ephemeral"`
	Swap         flexInt           `json:"swap"`
	ExtraSpecs   map[string]string `json:"extra_specs"`
}

// flexInt decodes a number, or "" as 0: Nova's flavor views have sent swap 0 as "".
type flexInt int

func (f *flexInt) UnmarshalJSON(b []byte) error {
	s := strings.Trim(string(b), `"`)
	if s == "" || s == "null" {
		*f = 0
		return nil
	}
	n, err := strconv.Atoi(s)
	if err != nil {
		return fmt.Errorf("not an integer: %s", b)
	}
	*f = flexInt(n)
	return nil
}

func (s serverJSON) server() Server {
	out := Server{
		ID: s.ID, Name: s.Name, Status: s.Status, ProjectID: s.TenantID, UserID: s.UserID,
		Metadata: s.Metadata, Tags: s.Tags, Locked: s.Locked,
		Host: deref(s.Host), HypervisorHostname: deref(s.HypervisorHostname),
		VMState: deref(s.VMState), TaskState: deref(s.TaskState), PowerState: deref(s.PowerState),
		AvailabilityZone: deref(s.AvailabilityZone),
		// A server of a down cell (2.69) comes with its id, status UNKNOWN and little else.
		Partial: s.Status == "UNKNOWN",
	}
	if s.Fault != nil {
		out.Fault = s.Fault.Message
	}
	if f := s.Flavor; f != nil {
		out.Flavor = Flavor{
			OriginalName: f.OriginalName, VCPUs: int(f.VCPUs), RAMMB: int(f.RAM), DiskGB: int(f.Disk),
			EphemeralGB: int(f.Ephemeral), SwapMB: int(f.Swap), ExtraSpecs: f.ExtraSpecs,
		}
	}
	// "image" is {"id": ..., "links": [...]} or, for a server booted from a volume, "".
	var img struct {
		ID string `json:"id"`
	}
	if len(s.Image) > 0 && s.Image[0] == '{' && json.Unmarshal(s.Image, &img) == nil {
		out.ImageID = img.ID
	}
	return out
}

func (c *nova) ServersOnHost(ctx context.Context, host string) ([]Server, error) {
	if host == "" {
		return nil, errors.New("listing servers: empty host name")
	}
	op := "listing servers on " + host
	var out []Server
	marker := ""
	for {
		q := url.Values{
			"all_tenants": {"1"},
			"host":        {host},
			"limit":       {strconv.Itoa(serversPageSize)},
		}
		if marker != "" {
			q.Set("marker", marker)
		}
		var page struct {
			Servers []serverJSON `json:"servers"`
			Links   []link       `json:"servers_links"`
		}
		if err := c.getJSON(ctx, c.compute, "compute", op, c.compute.ServiceURL("servers", "detail")+"?"+q.Encode(), &page); err != nil {
			return nil, err
		}
		for _, s := range page.Servers {
			out = append(out, s.server())
		}
		next, err := nextMarker(page.Links, marker)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", op, err)
		}
		if next == "" {
			break
		}
		marker = next
	}
	if err := c.addImageProperties(ctx, out); err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	return out, nil
}

func (c *nova) Server(ctx context.Context, serverID string) (Server, error) {
	if serverID == "" {
		return Server{}, errors.New("showing a server: empty server id")
	}
	op := "showing server " + serverID
	var body struct {
		Server serverJSON `json:"server"`
	}
	if err := c.getJSON(ctx, c.compute, "compute", op, c.compute.ServiceURL("servers", url.PathEscape(serverID)), &body); err != nil {
		return Server{}, err
	}
	out := []Server{body.Server.server()}
	if err := c.addImageProperties(ctx, out); err != nil {
		return Server{}, fmt.Errorf("%s: %w", op, err)
	}
	return out[0], nil
}

// addImageProperties fills ImageProperties from Glance, one request per distinct image.
// A deleted image leaves the properties nil: Nova can still rebuild from its cached copy,
// and the policy sees "no properties" rather than a failed listing.
func (c *nova) addImageProperties(ctx context.Context, servers []Server) error {
	props := map[string]map[string]string{}
	for i := range servers {
		id := servers[i].ImageID
		if id == "" {
			continue
		}
		p, seen := props[id]
		if !seen {
			var err error
			if p, err = c.imageProperties(ctx, id); err != nil {
				return err
			}
			props[id] = p
		}
		servers[i].ImageProperties = p
	}
	return nil
}

// glanceCoreFields are the image fields of Glance v2's schema; every other top-level string is
// a user property (evacuable, hw_*, os_*, ...).
var glanceCoreFields = map[string]bool{
	"id": true, "name": true, "status": true, "visibility": true, "protected": true,
	"os_hidden": true, "checksum": true, "os_hash_algo": true, "os_hash_value": true,
	"owner": true, "size": true, "virtual_size": true, "min_ram": true, "min_disk": true,
	"container_format": true, "disk_format": true, "created_at": true, "updated_at": true,
	"tags": true, "self": true, "file": true, "schema": true, "direct_url": true,
	"locations": true, "stores": true,
}

func (c *nova) imageProperties(ctx context.Context, imageID string) (map[string]string, error) {
	if c.image == nil {
		return nil, c.imageErr
	}
	c.imagesMu.Lock()
	if ci, ok := c.images[imageID]; ok && time.Since(ci.at) < imageTTL {
		c.imagesMu.Unlock()
		return ci.props, nil
	}
	c.imagesMu.Unlock()
	props, err := c.fetchImageProperties(ctx, imageID)
	if err != nil {
		return nil, err
	}
	c.imagesMu.Lock()
	if c.images == nil {
		c.images = map[string]cachedImage{}
	}
	c.images[imageID] = cachedImage{props: props, at: time.Now()}
	c.imagesMu.Unlock()
	return props, nil
}

func (c *nova) fetchImageProperties(ctx context.Context, imageID string) (map[string]string, error) {
	var raw map[string]json.RawMessage
	err := c.getJSON(ctx, c.image, "image", "reading image "+imageID, c.image.ServiceURL("images", url.PathEscape(imageID)), &raw)
	if IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	props := map[string]string{}
	for k, v := range raw {
		var s string
		if glanceCoreFields[k] || json.Unmarshal(v, &s) != nil {
			continue
		}
		props[k] = s
	}
	return props, nil
}

// Evacuate sends the evacuate action with a body built here: gophercloud's EvacuateOpts
// always sends onSharedStorage, which Nova rejects from 2.14, and its result decoding fails on
// the empty 200 body Nova answers with from 2.14.
func (c *nova) Evacuate(ctx context.Context, serverID, targetHost string) error {
	if serverID == "" {
		return errors.New("evacuating: empty server id")
	}
	args := map[string]any{}
	if targetHost != "" {
		args["host"] = targetHost
	}
	body := map[string]any{"evacuate": args}
	op := "evacuating server " + serverID
	if targetHost != "" {
		op += " to " + targetHost
	}
	u := c.compute.ServiceURL("servers", url.PathEscape(serverID), "action")
	return c.do(ctx, "compute", op, false, func(ctx context.Context) error {
		_, err := c.compute.Post(ctx, u, body, nil, &gophercloud.RequestOpts{OkCodes: []int{200, 202}})
		return err
	})
}

// ResetState sends os-resetState: Nova sets vm_state and clears the task
// state, and does nothing to the instance itself.
func (c *nova) ResetState(ctx context.Context, serverID, state string) error {
	if serverID == "" {
		return errors.New("resetting state: empty server id")
	}
	if state != "active" && state != "error" {
		return fmt.Errorf("resetting state of %s: %q is neither active nor error", serverID, state)
	}
	body := map[string]any{"os-resetState": map[string]string{"state": state}}
	u := c.compute.ServiceURL("servers", url.PathEscape(serverID), "action")
	return c.do(ctx, "compute", "resetting server "+serverID+" to "+state, true, func(ctx context.Context) error {
		_, err := c.compute.Post(ctx, u, body, nil, &gophercloud.RequestOpts{OkCodes: []int{202}})
		return err
	})
}

// --- migrations -----------------------------------------------------------------------------

type migrationJSON struct {
	ID            int     `json:"id"`
	UUID          string  `json:"uuid"`
	InstanceUUID  string  `json:"instance_uuid"`
	MigrationType string  `json:"migration_type"`
	Status        string  `json:"status"`
	SourceCompute *string `json:"source_compute"`
	SourceNode    *string `json:"source_node"`
	DestCompute   *string `json:"dest_compute"`
	DestNode      *string `json:"dest_node"`
	CreatedAt     *string `json:"created_at"`
	UpdatedAt     *string `json:"updated_at"`
}

func (c *nova) Migrations(ctx context.Context, f MigrationFilter) ([]Migration, error) {
	op := "listing migrations"
	var out []Migration
	marker := ""
	for {
		q := url.Values{"limit": {strconv.Itoa(migrationsPageSize)}}
		for k, v := range map[string]string{
			"host": f.Host, "migration_type": f.Type, "status": f.Status, "instance_uuid": f.ServerID,
		} {
			if v != "" {
				q.Set(k, v)
			}
		}
		if !f.ChangedSince.IsZero() {
			q.Set("changes-since", f.ChangedSince.UTC().Format(time.RFC3339))
		}
		if marker != "" {
			q.Set("marker", marker)
		}
		var page struct {
			Migrations []migrationJSON `json:"migrations"`
			Links      []link          `json:"migrations_links"`
		}
		if err := c.getJSON(ctx, c.compute, "compute", op, c.compute.ServiceURL("os-migrations")+"?"+q.Encode(), &page); err != nil {
			return nil, err
		}
		for _, m := range page.Migrations {
			mig := Migration{
				ID: m.ID, UUID: m.UUID, ServerID: m.InstanceUUID, Type: m.MigrationType, Status: m.Status,
				SourceCompute: deref(m.SourceCompute), SourceNode: deref(m.SourceNode),
				DestCompute: deref(m.DestCompute), DestNode: deref(m.DestNode),
			}
			if m.CreatedAt != nil {
				mig.CreatedAt = parseTime(*m.CreatedAt)
			}
			if m.UpdatedAt != nil {
				mig.UpdatedAt = parseTime(*m.UpdatedAt)
			}
			out = append(out, mig)
		}
		next, err := nextMarker(page.Links, marker)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", op, err)
		}
		if next == "" {
			return out, nil
		}
		marker = next
	}
}

// --- hypervisors and placement --------------------------------------------------------------

type hypervisorJSON struct {
	ID         string `json:"id"`
	Hostname   string `json:"hypervisor_hostname"`
	State      string `json:"state"`
	Status     string `json:"status"`
	RunningVMs int    `json:"running_vms"`
	Service    struct {
		Host           string  `json:"host"`
		DisabledReason *string `json:"disabled_reason"`
	} `json:"service"`
}

func (c *nova) HypervisorHosts(ctx context.Context) ([]Hypervisor, error) {
	return c.hypervisorList(ctx, "listing hypervisors")
}

func (c *nova) Hypervisors(ctx context.Context) ([]Hypervisor, error) {
	op := "listing hypervisors"
	if c.placement == nil {
		return nil, fmt.Errorf("%s: %w", op, c.placementErr)
	}
	out, err := c.hypervisorList(ctx, op)
	if err != nil {
		return nil, err
	}

	// Two Placement reads per node, a few nodes at a time.
	var (
		wg       sync.WaitGroup
		sem      = make(chan struct{}, placementParallel)
		mu       sync.Mutex
		firstErr error
	)
	for i := range out {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			res, err := c.resources(ctx, out[i].ID)
			if err != nil {
				mu.Lock()
				if firstErr == nil {
					firstErr = fmt.Errorf("%s: node %s: %w", op, out[i].Hostname, err)
				}
				mu.Unlock()
				return
			}
			out[i].Resources = res
		})
	}
	wg.Wait()
	if firstErr != nil {
		return nil, firstErr
	}
	return out, nil
}

// hypervisorList reads every page of GET /os-hypervisors/detail.
func (c *nova) hypervisorList(ctx context.Context, op string) ([]Hypervisor, error) {
	var out []Hypervisor
	marker := ""
	for {
		q := url.Values{"limit": {strconv.Itoa(hypervisorsPageSize)}}
		if marker != "" {
			q.Set("marker", marker)
		}
		var page struct {
			Hypervisors []hypervisorJSON `json:"hypervisors"`
			Links       []link           `json:"hypervisors_links"`
		}
		if err := c.getJSON(ctx, c.compute, "compute", op, c.compute.ServiceURL("os-hypervisors", "detail")+"?"+q.Encode(), &page); err != nil {
			return nil, err
		}
		for _, h := range page.Hypervisors {
			hv := Hypervisor{
				ID: h.ID, Hostname: h.Hostname, ServiceHost: h.Service.Host,
				State: h.State, Status: h.Status, RunningVMs: h.RunningVMs,
			}
			if h.Service.DisabledReason != nil {
				hv.DisabledReason = *h.Service.DisabledReason
			}
			out = append(out, hv)
		}
		next, err := nextMarker(page.Links, marker)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", op, err)
		}
		if next == "" {
			return out, nil
		}
		marker = next
	}
}

// resources reads one resource provider's inventories and usages; nil if Placement does not
// know the provider.
func (c *nova) resources(ctx context.Context, providerID string) (map[string]Resource, error) {
	var inv struct {
		Inventories map[string]struct {
			Total           int64   `json:"total"`
			Reserved        int64   `json:"reserved"`
			AllocationRatio float64 `json:"allocation_ratio"`
			MaxUnit         int64   `json:"max_unit"`
		} `json:"inventories"`
	}
	base := c.placement.ServiceURL("resource_providers", url.PathEscape(providerID))
	err := c.getJSON(ctx, c.placement, "placement", "reading inventories", base+"/inventories", &inv)
	if IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var use struct {
		Usages map[string]int64 `json:"usages"`
	}
	err = c.getJSON(ctx, c.placement, "placement", "reading usages", base+"/usages", &use)
	if IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	out := make(map[string]Resource, len(inv.Inventories))
	for rc, i := range inv.Inventories {
		out[rc] = Resource{
			Total: i.Total, Reserved: i.Reserved, AllocationRatio: i.AllocationRatio,
			MaxUnit: i.MaxUnit, Used: use.Usages[rc],
		}
	}
	return out, nil
}

// --- aggregates -----------------------------------------------------------------------------

func (c *nova) Aggregates(ctx context.Context) ([]Aggregate, error) {
	var body struct {
		Aggregates []struct {
			ID               int               `json:"id"`
			UUID             string            `json:"uuid"`
			Name             string            `json:"name"`
			AvailabilityZone *string           `json:"availability_zone"`
			Hosts            []string          `json:"hosts"`
			Metadata         map[string]string `json:"metadata"`
		} `json:"aggregates"`
	}
	if err := c.getJSON(ctx, c.compute, "compute", "listing aggregates", c.compute.ServiceURL("os-aggregates"), &body); err != nil {
		return nil, err
	}
	out := make([]Aggregate, 0, len(body.Aggregates))
	for _, a := range body.Aggregates {
		out = append(out, Aggregate{
			ID: a.ID, UUID: a.UUID, Name: a.Name, AvailabilityZone: deref(a.AvailabilityZone),
			Hosts: a.Hosts, Metadata: a.Metadata,
		})
	}
	return out, nil
}

// --- helpers --------------------------------------------------------------------------------

type link struct {
	Href string `json:"href"`
	Rel  string `json:"rel"`
}

// nextMarker returns the marker of the "next" link, or "" on the last page. Only the marker is
// taken: the link's host and path come from Nova's view of its own URL, which behind a proxy
// or inside a namespace need not be the endpoint this client reaches it at. A next marker
// equal to the current one would loop forever, so it is an error.
func nextMarker(links []link, current string) (string, error) {
	for _, l := range links {
		if l.Rel != "next" {
			continue
		}
		u, err := url.Parse(l.Href)
		if err != nil {
			return "", fmt.Errorf("next page link: %w", err)
		}
		m := u.Query().Get("marker")
		if m == "" {
			return "", errors.New("next page link has no marker")
		}
		if m == current {
			return "", fmt.Errorf("next page link repeats marker %s", m)
		}
		return m, nil
	}
	return "", nil
}

// parseTime reads the timestamps Nova sends ("2024-05-01T10:00:00.000000", with or without a
// zone; UTC when none). Unreadable timestamps give the zero time: they are informational.
func parseTime(s string) time.Time {
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05.999999", "2006-01-02 15:04:05"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UTC()
		}
	}
	return time.Time{}
}

func deref[T any](p *T) T {
	var zero T
	if p == nil {
		return zero
	}
	return *p
}
