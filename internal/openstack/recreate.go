package openstack

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strconv"

	"github.com/gophercloud/gophercloud/v2"
)

// flavorsPageSize: one page holds the flavors of most clouds.
const flavorsPageSize = 200

// serverSpecJSON is GET /servers/{id} at 2.69 with the admin fields that creating the server
// again needs, beyond those of serverJSON.
type serverSpecJSON struct {
	serverJSON
	KeyName        *string `json:"key_name"`
	UserData       *string `json:"OS-EXT-SRV-ATTR:user_data"` // base64, 2.3+
	RootDeviceName *string `json:"OS-EXT-SRV-ATTR:root_device_name"`
	Volumes        []struct {
		ID                  string `json:"id"`
		DeleteOnTermination bool   `json:"delete_on_termination"`
	} `json:"os-extended-volumes:volumes_attached"`
	Addresses json.RawMessage `json:"addresses"`
}

// ServerSpec reads the server (admin view), then what the server's record does not hold: the
// id of its flavor (by the embedded flavor's original name, from every flavor, private ones
// included), its boot volume (the attachment on the root device), its server group (from the
// group listing) and its ports (from Neutron, in the order of the server's interfaces).
func (c *nova) ServerSpec(ctx context.Context, serverID string) (ServerSpec, error) {
	if serverID == "" {
		return ServerSpec{}, errors.New("reading a server's spec: empty server id")
	}
	op := "reading what it takes to recreate server " + serverID
	var body struct {
		Server serverSpecJSON `json:"server"`
	}
	if err := c.getJSON(ctx, c.compute, "compute", op, c.compute.ServiceURL("servers", url.PathEscape(serverID)), &body); err != nil {
		return ServerSpec{}, err
	}
	s := body.Server
	srv := s.server()
	if srv.Partial {
		return ServerSpec{}, fmt.Errorf("%s: the server's cell is down: %w", op, ErrUnavailable)
	}
	spec := ServerSpec{
		Name: srv.Name, ProjectID: srv.ProjectID, UserID: srv.UserID,
		FlavorName: srv.Flavor.OriginalName, ImageID: srv.ImageID,
		LocalDisks: srv.ImageID != "" || srv.Flavor.EphemeralGB > 0,
		Metadata:   srv.Metadata, Tags: srv.Tags, KeyName: deref(s.KeyName),
		UserData: deref(s.UserData), AvailabilityZone: srv.AvailabilityZone,
	}
	if spec.KeyName != "" {
		spec.KeyOwner = srv.UserID
	}
	var err error
	if spec.FlavorID, err = c.flavorID(ctx, spec.FlavorName); err != nil {
		return ServerSpec{}, fmt.Errorf("%s: %w", op, err)
	}
	if err := c.addVolumes(ctx, &spec, serverID, s); err != nil {
		return ServerSpec{}, fmt.Errorf("%s: %w", op, err)
	}
	groups, err := c.ServerGroups(ctx)
	if err != nil {
		return ServerSpec{}, fmt.Errorf("%s: %w", op, err)
	}
	for _, g := range groups {
		if slices.Contains(g.Members, serverID) {
			spec.Group = g.ID
			break
		}
	}
	if spec.Ports, err = c.serverPorts(ctx, serverID, macOrder(s.Addresses)); err != nil {
		return ServerSpec{}, fmt.Errorf("%s: %w", op, err)
	}
	return spec, nil
}

// addVolumes fills the boot volume and the data volumes. A server booted from an image has
// only data volumes. One booted from a volume ("image" is "") boots from the volume attached
// on its root device name, which only the attachment listing tells.
func (c *nova) addVolumes(ctx context.Context, spec *ServerSpec, serverID string, s serverSpecJSON) error {
	if spec.ImageID != "" {
		for _, v := range s.Volumes {
			spec.DataVolumes = append(spec.DataVolumes, v.ID)
		}
		return nil
	}
	var body struct {
		Attachments []struct {
			Device   string `json:"device"`
			VolumeID string `json:"volumeId"`
		} `json:"volumeAttachments"`
	}
	u := c.compute.ServiceURL("servers", url.PathEscape(serverID), "os-volume_attachments")
	if err := c.getJSON(ctx, c.compute, "compute", "listing volume attachments", u, &body); err != nil {
		return err
	}
	root := deref(s.RootDeviceName)
	for _, a := range body.Attachments {
		if root != "" && a.Device == root {
			spec.BootVolume = a.VolumeID
			break
		}
	}
	if spec.BootVolume == "" {
		return fmt.Errorf("the server boots from a volume, but none is attached on its root device %q", root)
	}
	for _, v := range s.Volumes {
		if v.ID == spec.BootVolume {
			spec.BootVolumeDeleteOnTerminate = v.DeleteOnTermination
			continue
		}
		spec.DataVolumes = append(spec.DataVolumes, v.ID)
	}
	return nil
}

// flavorID finds the flavor named name among every flavor (is_public=None: private ones too;
// Nova keeps flavor names unique). A server embeds a copy of its flavor, but can only be
// created from a flavor that exists.
func (c *nova) flavorID(ctx context.Context, name string) (string, error) {
	marker := ""
	for {
		q := url.Values{"is_public": {"None"}, "limit": {strconv.Itoa(flavorsPageSize)}}
		if marker != "" {
			q.Set("marker", marker)
		}
		var page struct {
			Flavors []struct {
				ID   string `json:"id"`
				Name string `json:"name"`
			} `json:"flavors"`
			Links []link `json:"flavors_links"`
		}
		if err := c.getJSON(ctx, c.compute, "compute", "listing flavors", c.compute.ServiceURL("flavors", "detail")+"?"+q.Encode(), &page); err != nil {
			return "", err
		}
		for _, f := range page.Flavors {
			if f.Name == name {
				return f.ID, nil
			}
		}
		next, err := nextMarker(page.Links, marker)
		if err != nil {
			return "", fmt.Errorf("listing flavors: %w", err)
		}
		if next == "" {
			return "", fmt.Errorf("no flavor is named %q any more, so the server cannot be created again with its flavor: %w", name, ErrNotFound)
		}
		marker = next
	}
}

// macOrder returns the MAC addresses of a server's "addresses", in the order Nova lists them:
// the order of its network interfaces, grouped by network. The object is read token by token
// because that order is all it is read for, and a Go map would lose it.
func macOrder(addresses json.RawMessage) []string {
	var out []string
	dec := json.NewDecoder(bytes.NewReader(addresses))
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return nil
	}
	for dec.More() {
		if _, err := dec.Token(); err != nil { // the network's name
			return out
		}
		var addrs []struct {
			MAC string `json:"OS-EXT-IPS-MAC:mac_addr"`
		}
		if err := dec.Decode(&addrs); err != nil {
			return out
		}
		for _, a := range addrs {
			if a.MAC != "" && !slices.Contains(out, a.MAC) {
				out = append(out, a.MAC)
			}
		}
	}
	return out
}

// createServerBody is POST /servers for spec at 2.74, with keyName as the key pair. A server
// booted from a volume is given it as block device 0 (never deleted with the server: it holds
// the data the recreation is for); data volumes are attached at boot as further mappings with
// no boot index. With an image and data volumes, the image is mapping 0, as Nova's own clients
// send it; Nova refuses an image-to-local mapping at any other index.
func createServerBody(spec ServerSpec, keyName string) (map[string]any, error) {
	switch {
	case spec.Name == "":
		return nil, errors.New("the spec has no name")
	case spec.FlavorID == "":
		return nil, errors.New("the spec has no flavor id")
	case spec.ImageID != "" && spec.BootVolume != "":
		return nil, errors.New("the spec has both an image and a boot volume")
	case spec.ImageID == "" && spec.BootVolume == "":
		return nil, errors.New("the spec has neither an image nor a boot volume")
	}
	srv := map[string]any{"name": spec.Name, "flavorRef": spec.FlavorID}
	volume := func(id string, bootIndex int) map[string]any {
		return map[string]any{
			"uuid": id, "source_type": "volume", "destination_type": "volume",
			"boot_index": bootIndex, "delete_on_termination": false,
		}
	}
	var bdm []map[string]any
	if spec.BootVolume != "" {
		bdm = append(bdm, volume(spec.BootVolume, 0))
	} else {
		srv["imageRef"] = spec.ImageID
		if len(spec.DataVolumes) > 0 {
			bdm = append(bdm, map[string]any{
				"uuid": spec.ImageID, "source_type": "image", "destination_type": "local",
				"boot_index": 0, "delete_on_termination": true,
			})
		}
	}
	for _, v := range spec.DataVolumes {
		bdm = append(bdm, volume(v, -1))
	}
	if len(bdm) > 0 {
		srv["block_device_mapping_v2"] = bdm
	}
	if len(spec.Ports) == 0 {
		srv["networks"] = "none"
	} else {
		nets := make([]map[string]string, 0, len(spec.Ports))
		for i, p := range spec.Ports {
			if p.ID == "" {
				return nil, fmt.Errorf("port %d of the spec has no id: create the ports first", i)
			}
			nets = append(nets, map[string]string{"port": p.ID})
		}
		srv["networks"] = nets
	}
	for k, v := range map[string]string{
		"key_name": keyName, "user_data": spec.UserData, "availability_zone": spec.AvailabilityZone, "host": spec.Host,
	} {
		if v != "" {
			srv[k] = v
		}
	}
	if len(spec.Metadata) > 0 {
		srv["metadata"] = spec.Metadata
	}
	if len(spec.Tags) > 0 {
		srv["tags"] = spec.Tags
	}
	body := map[string]any{"server": srv}
	if spec.Group != "" {
		body["os:scheduler_hints"] = map[string]string{"group": spec.Group}
	}
	return body, nil
}

// CreateServer creates the server with a token of spec.ProjectID (computeFor), after copying
// its key pair to the client's user when it belongs to another (copyKeyPair). The request
// alone is sent at CreateServerMicroversion (2.74, for "host"); every other stays at
// ComputeMicroversion. It is not retried on 5xx: Nova may have created the server.
func (c *nova) CreateServer(ctx context.Context, spec ServerSpec) (string, error) {
	op := "creating server " + spec.Name
	if spec.ProjectID != "" {
		op += " in project " + spec.ProjectID
	}
	if spec.Host != "" {
		op += " on " + spec.Host
	}
	body, err := createServerBody(spec, spec.KeyName)
	if err != nil {
		return "", fmt.Errorf("%s: %w", op, err)
	}
	compute, err := c.computeFor(ctx, spec.ProjectID)
	if err != nil {
		return "", fmt.Errorf("%s: %w", op, err)
	}
	if spec.KeyName != "" && spec.KeyOwner != "" && spec.KeyOwner != c.userID {
		name, err := c.copyKeyPair(ctx, spec.KeyOwner, spec.KeyName)
		if err != nil {
			return "", fmt.Errorf("%s: %w", op, err)
		}
		body["server"].(map[string]any)["key_name"] = name
	}
	// A copy of the client with another microversion: the header comes from the client's
	// Microversion field and overrides any per-request header.
	sc := *compute
	sc.Microversion = CreateServerMicroversion
	var out struct {
		Server struct {
			ID string `json:"id"`
		} `json:"server"`
	}
	err = c.do(ctx, "compute", op, false, func(ctx context.Context) error {
		out.Server.ID = ""
		_, err := sc.Post(ctx, sc.ServiceURL("servers"), body, &out, &gophercloud.RequestOpts{OkCodes: []int{http.StatusAccepted}})
		return err
	})
	if err != nil {
		return "", err
	}
	if out.Server.ID == "" {
		return "", fmt.Errorf("%s: Nova answered without the new server's id", op)
	}
	return out.Server.ID, nil
}

// --- fake -----------------------------------------------------------------------------------

func cloneSpec(s ServerSpec) ServerSpec {
	s.DataVolumes = slices.Clone(s.DataVolumes)
	s.Metadata = maps.Clone(s.Metadata)
	s.Tags = slices.Clone(s.Tags)
	ports := make([]Port, 0, len(s.Ports))
	for _, p := range s.Ports {
		ports = append(ports, clonePort(p))
	}
	if s.Ports != nil {
		s.Ports = ports
	}
	return s
}

// ServerSpec returns the spec stored with SetServerSpec, or else one derived from what the
// fake knows: the server's fields, the id of a known flavor of its flavor's name (ErrNotFound
// when none is), its group, the ports bound to it, and what CreateServer was given for boot
// volumes, key pair and user data when the fake created it.
func (f *Fake) ServerSpec(ctx context.Context, serverID string) (ServerSpec, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.begin(ctx, "ServerSpec", serverID); err != nil {
		return ServerSpec{}, err
	}
	srv, ok := f.servers[serverID]
	if !ok {
		return ServerSpec{}, serverNotFound(http.MethodGet, "/v2.1/servers/"+serverID, serverID)
	}
	op := "reading what it takes to recreate server " + serverID
	if spec, ok := f.specs[serverID]; ok {
		return cloneSpec(spec), nil
	}
	if srv.Partial {
		return ServerSpec{}, fmt.Errorf("%s: the server's cell is down: %w", op, ErrUnavailable)
	}
	spec := ServerSpec{
		Name: srv.Name, ProjectID: srv.ProjectID, UserID: srv.UserID,
		FlavorName: srv.Flavor.OriginalName, FlavorID: f.flavorID(srv.Flavor.OriginalName), ImageID: srv.ImageID,
		LocalDisks: srv.ImageID != "" || srv.Flavor.EphemeralGB > 0,
		Metadata:   maps.Clone(srv.Metadata), Tags: slices.Clone(srv.Tags), AvailabilityZone: srv.AvailabilityZone,
	}
	if spec.FlavorID == "" {
		return ServerSpec{}, fmt.Errorf("%s: no flavor is named %q any more, so the server cannot be created again with its flavor: %w",
			op, spec.FlavorName, ErrNotFound)
	}
	b := f.boot[serverID]
	spec.BootVolume = b.bootVolume
	spec.DataVolumes = slices.Clone(b.dataVolumes)
	spec.KeyName, spec.KeyOwner, spec.UserData = b.keyName, b.keyOwner, b.userData
	if g := f.groupOf(serverID); g != nil {
		spec.Group = g.ID
	}
	var bound []*Port
	for _, p := range f.ports {
		if p.DeviceID == serverID {
			bound = append(bound, p)
		}
	}
	// In the order the server was created with them; ports added otherwise in creation order.
	rank := func(p *Port) int {
		if i := slices.Index(b.ports, p.ID); i >= 0 {
			return i
		}
		return len(b.ports)
	}
	slices.SortStableFunc(bound, func(a, b *Port) int { return rank(a) - rank(b) })
	for _, p := range bound {
		spec.Ports = append(spec.Ports, clonePort(*p))
	}
	return spec, nil
}

// CreateServer models Nova's server creation at 2.74. Refused (400) without a name, for a
// flavor the fake does not know, without exactly one of image and boot volume, for a host,
// group or port it does not know (Nova answers 400 for each, not 404), and (409) for a port
// bound to another server. The server joins spec.Group at once, as Nova's API adds it before
// scheduling. It then completes at once: ACTIVE on spec.Host, or on the fake scheduler's pick
// within spec.AvailabilityZone, with its ports bound to it; when the host cannot take it
// (disabled, down, in another zone, or against a hard policy of the group) or none can, it is
// in ERROR with no host and its ports stay unbound, as after Nova's NoValidHost. It belongs to
// spec.ProjectID and to the client's user (UserID); a key pair of another user is used under
// the name the real client copies it to.
func (f *Fake) CreateServer(ctx context.Context, spec ServerSpec) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.begin(ctx, "CreateServer", spec.Name, spec.Host); err != nil {
		return "", err
	}
	const path = "/v2.1/servers"
	bad := func(msg string) error { return fakeAPIError(http.MethodPost, path, http.StatusBadRequest, msg) }
	keyName := spec.KeyName
	if spec.KeyName != "" && spec.KeyOwner != "" && spec.KeyOwner != f.UserID {
		keyName = copiedKeyName(spec.KeyOwner, spec.KeyName)
	}
	// The real client's own checks, with its errors.
	if _, err := createServerBody(spec, keyName); err != nil {
		return "", fmt.Errorf("creating server %s: %w", spec.Name, err)
	}
	fl, ok := f.flavors[spec.FlavorID]
	if !ok {
		return "", bad(fmt.Sprintf("Flavor %s could not be found.", spec.FlavorID))
	}
	if _, ok := f.services[spec.Host]; spec.Host != "" && !ok {
		return "", bad(fmt.Sprintf("Compute host %s could not be found.", spec.Host))
	}
	g := f.group(spec.Group)
	if spec.Group != "" && g == nil {
		return "", bad(fmt.Sprintf("Instance group %s could not be found.", spec.Group))
	}
	var ports []*Port
	for _, sp := range spec.Ports {
		p := f.port(sp.ID)
		if p == nil {
			return "", bad(fmt.Sprintf("Port id %s could not be found.", sp.ID))
		}
		if p.DeviceID != "" {
			return "", fakeAPIError(http.MethodPost, path, http.StatusConflict, fmt.Sprintf("Port %s is still in use.", sp.ID))
		}
		ports = append(ports, p)
	}
	srv := &Server{
		ID: f.uuid(), Name: spec.Name, ProjectID: spec.ProjectID, UserID: f.UserID,
		AvailabilityZone: spec.AvailabilityZone, Flavor: cloneFlavor(fl), ImageID: spec.ImageID,
		Metadata: maps.Clone(spec.Metadata), Tags: slices.Clone(spec.Tags),
	}
	f.servers[srv.ID] = srv
	b := fakeBoot{
		bootVolume: spec.BootVolume, dataVolumes: slices.Clone(spec.DataVolumes),
		keyName: keyName, userData: spec.UserData,
	}
	if keyName != "" {
		b.keyOwner = f.UserID
	}
	for _, p := range spec.Ports {
		b.ports = append(b.ports, p.ID)
	}
	f.boot[srv.ID] = b
	if g != nil {
		g.Members = append(g.Members, srv.ID)
	}
	dest := spec.Host
	if dest == "" {
		dest = f.pickHost(srv.ID, "", spec.AvailabilityZone)
	}
	if !f.canHost(dest, srv.ID) || spec.AvailabilityZone != "" && f.services[dest].Zone != spec.AvailabilityZone {
		srv.Status, srv.VMState = "ERROR", "error"
		return srv.ID, nil
	}
	srv.Host, srv.HypervisorHostname = dest, dest
	srv.Status, srv.VMState = "ACTIVE", "active"
	if srv.AvailabilityZone == "" {
		srv.AvailabilityZone = f.services[dest].Zone
	}
	for _, p := range ports {
		p.DeviceID = srv.ID
	}
	return srv.ID, nil
}
