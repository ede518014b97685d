package openstack

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/gophercloud/gophercloud/v2"
)

// portJSON is a Neutron port as GET /v2.0/ports returns it.
type portJSON struct {
	ID         string `json:"id"`
	Name       string `json:"name"`
	NetworkID  string `json:"network_id"`
	ProjectID  string `json:"project_id"`
	TenantID   string `json:"tenant_id"`
	MACAddress string `json:"mac_address"`
	FixedIPs   []struct {
		SubnetID  string `json:"subnet_id"`
		IPAddress string `json:"ip_address"`
	} `json:"fixed_ips"`
	SecurityGroups []string `json:"security_groups"`
	DeviceID       string   `json:"device_id"`
	CreatedAt      string   `json:"created_at"`
}

func (p portJSON) port() Port {
	out := Port{
		ID: p.ID, Name: p.Name, NetworkID: p.NetworkID, ProjectID: p.ProjectID, MACAddress: p.MACAddress,
		SecurityGroups: p.SecurityGroups, DeviceID: p.DeviceID,
	}
	if out.ProjectID == "" {
		out.ProjectID = p.TenantID // Neutron before project_id existed
	}
	for _, ip := range p.FixedIPs {
		out.FixedIPs = append(out.FixedIPs, FixedIP(ip))
	}
	return out
}

// networkClient is Neutron's client, or why there is none.
func (c *nova) networkClient(op string) (*gophercloud.ServiceClient, error) {
	if c.network == nil {
		return nil, fmt.Errorf("%s: %w", op, c.networkErr)
	}
	return c.network, nil
}

// CreatePort sends POST /v2.0/ports with the fields of p that make it the same port again:
// network, project, MAC address, fixed IPs (subnet and address), security groups and name.
// Unset fields are left out so Neutron chooses (nil SecurityGroups: the project's default
// group; an empty list: none). Not retried on 5xx: a second port would take the same address.
func (c *nova) CreatePort(ctx context.Context, p Port) (Port, error) {
	op := "creating a port on network " + p.NetworkID
	if p.NetworkID == "" {
		return Port{}, errors.New("creating a port: empty network id")
	}
	nc, err := c.networkClient(op)
	if err != nil {
		return Port{}, err
	}
	port := map[string]any{"network_id": p.NetworkID}
	for k, v := range map[string]string{"project_id": p.ProjectID, "mac_address": p.MACAddress, "name": p.Name} {
		if v != "" {
			port[k] = v
		}
	}
	if len(p.FixedIPs) > 0 {
		ips := make([]map[string]string, 0, len(p.FixedIPs))
		for _, ip := range p.FixedIPs {
			m := map[string]string{}
			if ip.SubnetID != "" {
				m["subnet_id"] = ip.SubnetID
			}
			if ip.IPAddress != "" {
				m["ip_address"] = ip.IPAddress
			}
			ips = append(ips, m)
		}
		port["fixed_ips"] = ips
	}
	if p.SecurityGroups != nil {
		port["security_groups"] = p.SecurityGroups
	}
	body := map[string]any{"port": port}
	var out struct {
		Port portJSON `json:"port"`
	}
	err = c.do(ctx, "network", op, false, func(ctx context.Context) error {
		out.Port = portJSON{}
		_, err := nc.Post(ctx, nc.ServiceURL("ports"), body, &out, &gophercloud.RequestOpts{OkCodes: []int{http.StatusCreated}})
		return err
	})
	if err != nil {
		return Port{}, err
	}
	if out.Port.ID == "" {
		return Port{}, fmt.Errorf("%s: Neutron answered without the port's id", op)
	}
	return out.Port.port(), nil
}

// Port reads GET /v2.0/ports/{id}.
func (c *nova) Port(ctx context.Context, portID string) (Port, error) {
	if portID == "" {
		return Port{}, errors.New("showing a port: empty port id")
	}
	op := "showing port " + portID
	nc, err := c.networkClient(op)
	if err != nil {
		return Port{}, err
	}
	var body struct {
		Port portJSON `json:"port"`
	}
	if err := c.getJSON(ctx, nc, "network", op, nc.ServiceURL("ports", url.PathEscape(portID)), &body); err != nil {
		return Port{}, err
	}
	return body.Port.port(), nil
}

// serverPorts lists the ports bound to a server, in the order of its network interfaces:
// macOrder gives the order Nova attached them in, which Neutron's listing does not keep. Ports
// Nova does not show come last, oldest first.
func (c *nova) serverPorts(ctx context.Context, serverID string, macOrder []string) ([]Port, error) {
	op := "listing the ports of server " + serverID
	nc, err := c.networkClient(op)
	if err != nil {
		return nil, err
	}
	var body struct {
		Ports []portJSON `json:"ports"`
	}
	q := url.Values{"device_id": {serverID}}
	if err := c.getJSON(ctx, nc, "network", op, nc.ServiceURL("ports")+"?"+q.Encode(), &body); err != nil {
		return nil, err
	}
	rank := func(p portJSON) int {
		if i := slices.IndexFunc(macOrder, func(m string) bool { return strings.EqualFold(m, p.MACAddress) }); i >= 0 {
			return i
		}
		return len(macOrder)
	}
	slices.SortStableFunc(body.Ports, func(a, b portJSON) int {
		if d := rank(a) - rank(b); d != 0 {
			return d
		}
		if d := strings.Compare(a.CreatedAt, b.CreatedAt); d != 0 {
			return d
		}
		return strings.Compare(a.ID, b.ID)
	})
	var out []Port
	for _, p := range body.Ports {
		if p.DeviceID != serverID {
			continue // a Neutron that ignored the filter
		}
		out = append(out, p.port())
	}
	return out, nil
}

// --- fake -----------------------------------------------------------------------------------

// neutronError is what gophercloud returns for a Neutron fault, classified as the real
// client's errors are.
func neutronError(method, path string, status int, kind, msg string) error {
	body, _ := json.Marshal(map[string]any{"NeutronError": map[string]string{"type": kind, "message": msg, "detail": ""}})
	return newAPIError("network", gophercloud.ErrUnexpectedResponseCode{
		Method: method, URL: "http://neutron.invalid" + path, Actual: status, Body: body, Expected: []int{200},
	})
}

// AddPort adds a port as it already exists in the cloud (DeviceID binds it to a server); an
// empty ID gets one generated. Unlike CreatePort it checks nothing.
func (f *Fake) AddPort(p Port) Port {
	f.mu.Lock()
	defer f.mu.Unlock()
	if p.ID == "" {
		p.ID = f.uuid()
	}
	p = clonePort(p)
	f.ports = append(f.ports, &p)
	return clonePort(p)
}

func clonePort(p Port) Port {
	p.FixedIPs = slices.Clone(p.FixedIPs)
	p.SecurityGroups = slices.Clone(p.SecurityGroups)
	return p
}

func (f *Fake) port(id string) *Port {
	for _, p := range f.ports {
		if p.ID == id {
			return p
		}
	}
	return nil
}

// CreatePort models Neutron's port creation: refused (400) without a network, (409) for a fixed
// IP another port holds on the same subnet (IpAddressAlreadyAllocated) or a MAC address
// another port holds on the same network (MacAddressInUse). The new port is bound to nothing;
// a fixed IP given without an address keeps an empty one (the fake allocates no addresses).
func (f *Fake) CreatePort(ctx context.Context, p Port) (Port, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.begin(ctx, "CreatePort", p.NetworkID, p.Name); err != nil {
		return Port{}, err
	}
	const path = "/v2.0/ports"
	if p.NetworkID == "" {
		return Port{}, neutronError(http.MethodPost, path, http.StatusBadRequest, "HTTPBadRequest",
			"Invalid input for operation: network_id is required.")
	}
	for _, o := range f.ports {
		if p.MACAddress != "" && o.NetworkID == p.NetworkID && strings.EqualFold(o.MACAddress, p.MACAddress) {
			return Port{}, neutronError(http.MethodPost, path, http.StatusConflict, "MacAddressInUse", fmt.Sprintf(
				"Unable to complete operation for network %s. The mac address %s is in use.", p.NetworkID, p.MACAddress))
		}
		for _, ip := range p.FixedIPs {
			for _, oip := range o.FixedIPs {
				if ip.IPAddress != "" && ip.IPAddress == oip.IPAddress && ip.SubnetID == oip.SubnetID {
					return Port{}, neutronError(http.MethodPost, path, http.StatusConflict, "IpAddressAlreadyAllocated",
						fmt.Sprintf("IP address %s already allocated in subnet %s", ip.IPAddress, ip.SubnetID))
				}
			}
		}
	}
	p.ID, p.DeviceID = f.uuid(), ""
	p = clonePort(p)
	f.ports = append(f.ports, &p)
	return clonePort(p), nil
}

// Port returns one port of the fake's Neutron.
func (f *Fake) Port(ctx context.Context, portID string) (Port, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.begin(ctx, "Port", portID); err != nil {
		return Port{}, err
	}
	p := f.port(portID)
	if p == nil {
		return Port{}, neutronError(http.MethodGet, "/v2.0/ports/"+portID, http.StatusNotFound, "PortNotFound",
			fmt.Sprintf("Port %s could not be found.", portID))
	}
	return clonePort(*p), nil
}
