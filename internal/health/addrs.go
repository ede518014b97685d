package health

import (
	"fmt"
	"net"
	"net/netip"

	"github.com/computeha/computeha/internal/config"
)

// LocalAddresses is where node is on each network: health.hosts' addresses when they list it.
// A host they do not list (it joins by gossip) is, on each network with a subnet, at the
// first of its interfaces' addresses (as listAddrs gives them, which is asked only then, in
// the system's order: an interface's primary address before a floating one added later) that
// lies in it, and on no network where none does. An error says the host cannot take part:
// not listed and not allowed to join, its addresses cannot be listed, or none lies in the
// management network's subnet.
func LocalAddresses(cfg *config.Health, node string, listAddrs func() ([]netip.Addr, error)) (map[string]netip.Addr, error) {
	out := map[string]netip.Addr{}
	if cfg.Listed(node) {
		for _, n := range cfg.Networks {
			if a, ok := cfg.Address(node, n.Name); ok {
				out[n.Name] = a
			}
		}
		return out, nil
	}
	if why := cfg.Unlisted(); why != "" {
		return nil, fmt.Errorf("%s is not listed in health.hosts, and %s", node, why)
	}
	ifaddrs, err := listAddrs()
	if err != nil {
		return nil, err
	}
	for _, n := range cfg.Networks {
		for _, a := range ifaddrs {
			if cfg.InSubnet(n.Name, a) {
				out[n.Name] = a.Unmap()
				break
			}
		}
	}
	mgmt := cfg.ManagementNetwork()
	if _, ok := out[mgmt]; !ok {
		n, _ := cfg.Network(mgmt)
		return nil, fmt.Errorf("%s is not listed in health.hosts, and none of its addresses (%v) lies in the management network's subnet %s", node, ifaddrs, n.Subnet)
	}
	return out, nil
}

// InterfaceAddrs is this machine's interfaces' addresses, in the system's order.
func InterfaceAddrs() ([]netip.Addr, error) {
	as, err := net.InterfaceAddrs()
	if err != nil {
		return nil, fmt.Errorf("listing this machine's addresses: %w", err)
	}
	var out []netip.Addr
	for _, a := range as {
		if n, ok := a.(*net.IPNet); ok {
			if ip, ok := netip.AddrFromSlice(n.IP); ok {
				out = append(out, ip.Unmap())
			}
		}
	}
	return out, nil
}

// HostAddress is where host is on network: its address in health.hosts when they list it;
// otherwise the one its heartbeat record (rec, nil when none was read) announces, taken only
// within the network's subnet.
func HostAddress(cfg *config.Health, host, network string, rec *Record) (netip.Addr, bool) {
	if cfg.Listed(host) {
		return cfg.Address(host, network)
	}
	if rec == nil || rec.Host != host {
		return netip.Addr{}, false
	}
	a, err := netip.ParseAddr(rec.Addresses[network])
	if err != nil || !cfg.InSubnet(network, a) {
		return netip.Addr{}, false
	}
	return a.Unmap(), true
}
