package config

import (
	"fmt"
	"net/netip"
	"sort"
	"strings"
	"time"
)

// Health configures how a host's health is judged from several independent signals: the
// management heartbeat (Pacemaker's membership), reachability over each network, and a
// heartbeat written to shared storage. The same section is read by the hostcheck agent on
// every host, by fence_hostcheck and by the evacuation daemon, so one file serves the cluster.
// An empty section (no networks) turns the health checks off.
type Health struct {
	// SharedDir is a directory on the shared storage (NFS, CephFS) mounted on every host, where
	// each host writes its heartbeat record. Empty means no storage heartbeat: storage evidence
	// is then always unknown, and no host is ever judged dead without fencing's own evidence.
	SharedDir string `yaml:"shared_dir"`
	// Interval is how often each host writes its heartbeat and probes its peers. Default 1s.
	Interval time.Duration `yaml:"interval"`
	// StaleAfter is the age beyond which a heartbeat counts as lost. Default 4s.
	StaleAfter time.Duration `yaml:"stale_after"`
	// ClockSkew is the clock difference tolerated between hosts when heartbeat times are
	// compared. Default 2s.
	ClockSkew time.Duration `yaml:"clock_skew"`
	// ProbeFailures is how many probes in a row must fail before a peer is reported
	// unreachable on a network. Default 3.
	ProbeFailures int `yaml:"probe_failures"`
	// Confirm is how long a new state must hold before it is acted on, so a flapping signal
	// does not trigger responses back and forth. Default 2s.
	Confirm time.Duration `yaml:"confirm"`
	// RestartTimeout is how long a host whose cluster service is unreachable (but whose
	// networks and heartbeat are fine) is given to restart it before it is fenced and
	// evacuated. Default 60s.
	RestartTimeout time.Duration `yaml:"restart_timeout"`
	// RejoinGrace is how long at most after a host comes back into the cluster (powered on
	// after a fencing, its service restarted, its management network healed) a loss of its
	// other networks or of its storage heartbeat is not acted on, until it is first seen
	// running: until then the evidence may still be what was seen while it was away, and its
	// hostcheck may not have started yet. A host judged dead that answers again before it
	// rejoins stays dead for as long, unless seen running. A loss that outlasts it is then
	// confirmed as usual. 0 acts at once. Default 30s.
	RejoinGrace time.Duration `yaml:"rejoin_grace"`
	// RestartCommand restarts the cluster service on a host (run there by hostcheck, through
	// /bin/sh). Default "systemctl restart pacemaker_remote".
	RestartCommand string `yaml:"restart_command"`
	// Decide bounds how long fence_hostcheck gathers evidence before it answers. Default 15s.
	Decide time.Duration `yaml:"decide"`
	// Networks lists the networks, in the order probes and messages name them. Exactly one is
	// the management network.
	Networks []Network `yaml:"networks"`
	// Hosts maps each host (its Pacemaker node name) to its address on each network.
	Hosts map[string]map[string]string `yaml:"hosts"`
	// Watchdog is the hosts' self-fencing, which fence_gossip relies on.
	Watchdog Watchdog `yaml:"watchdog"`
	// Gossip is membership by gossip among the hosts, in place of probing every peer.
	Gossip Gossip `yaml:"gossip"`
}

// Network is one network whose reachability is probed.
type Network struct {
	// Name names the network, as Hosts' addresses do.
	Name string `yaml:"name"`
	// Management marks the network Pacemaker's heartbeat runs over.
	Management bool `yaml:"management"`
	// Response is what is done when only this network is lost on a host. Defaults: disable
	// for the management network, fence for one named "storage", migrate for the others.
	Response Response `yaml:"response"`
	// Subnet is the network's prefix ("192.0.2.0/24"). A host that Hosts does not list finds
	// its own address on the network among its interfaces' addresses in it, and the other
	// hosts learn that address from the gossip and from its heartbeat record, which are
	// taken only within it. Needs the gossip. Addresses listed in Hosts must lie in it.
	Subnet string `yaml:"subnet"`
}

// Prefix is the network's subnet, and false when it has none or an invalid one.
func (n Network) Prefix() (netip.Prefix, bool) {
	p, err := netip.ParsePrefix(n.Subnet)
	return p, err == nil
}

// Response is what is done about a host in a given state.
type Response string

const (
	// ResponseNone does nothing but record the state.
	ResponseNone Response = "none"
	// ResponseAlert records and alerts.
	ResponseAlert Response = "alert"
	// ResponseDisable alerts and disables the host's nova-compute, so nothing new lands there;
	// it is enabled again when the host recovers.
	ResponseDisable Response = "disable"
	// ResponseMigrate live-migrates the host's HA VMs to healthy hosts of its segment, then
	// disables it.
	ResponseMigrate Response = "migrate"
	// ResponseFence fences the host and evacuates its HA VMs.
	ResponseFence Response = "fence"
)

// Responses lists the valid network responses, in the order messages name them.
var Responses = []Response{ResponseNone, ResponseAlert, ResponseDisable, ResponseMigrate, ResponseFence}

// Defaults of the health section.
const (
	DefaultHealthInterval   = time.Second
	DefaultStaleAfter       = 4 * time.Second
	DefaultClockSkew        = 2 * time.Second
	DefaultProbeFailures    = 3
	DefaultConfirm          = 2 * time.Second
	DefaultRestartTimeout   = 60 * time.Second
	DefaultRejoinGrace      = 30 * time.Second
	DefaultRestartCommand   = "systemctl restart pacemaker_remote"
	DefaultDecide           = 15 * time.Second
	DefaultStorageNetwork   = "storage"
	DefaultManagementNetRsp = ResponseDisable
)

// Enabled reports whether health checks are configured.
func (h *Health) Enabled() bool { return len(h.Networks) > 0 }

// ManagementNetwork returns the name of the management network ("" when none is configured).
func (h *Health) ManagementNetwork() string {
	for _, n := range h.Networks {
		if n.Management {
			return n.Name
		}
	}
	return ""
}

// Address returns host's address on network, if configured and valid.
func (h *Health) Address(host, network string) (netip.Addr, bool) {
	a, err := netip.ParseAddr(h.Hosts[host][network])
	return a, err == nil
}

// Listed tells whether Hosts lists host.
func (h *Health) Listed(host string) bool {
	_, ok := h.Hosts[host]
	return ok
}

// Network returns the network named name.
func (h *Health) Network(name string) (Network, bool) {
	for _, n := range h.Networks {
		if n.Name == name {
			return n, true
		}
	}
	return Network{}, false
}

// InSubnet tells whether a lies in network's subnet; false when the network has none, so an
// address learned at run time (from the gossip, from a heartbeat record) is taken only where
// the operator said where the network is.
func (h *Health) InSubnet(network string, a netip.Addr) bool {
	n, ok := h.Network(network)
	if !ok {
		return false
	}
	p, ok := n.Prefix()
	return ok && p.Contains(a.Unmap())
}

// Unlisted tells why a host that Hosts does not list cannot take part in the health checks,
// or "" when it can: the hosts gossip (the others learn of it by the gossip), and the
// management network has a subnet (where it finds its own address).
func (h *Health) Unlisted() string {
	mgmt, _ := h.Network(h.ManagementNetwork())
	switch {
	case !h.Gossip.Enabled():
		return "without gossip (health.gossip.key_file) only the hosts listed in health.hosts take part"
	case mgmt.Subnet == "":
		return fmt.Sprintf("the management network %s has no subnet (health.networks[].subnet) to find a host's address in", mgmt.Name)
	}
	return ""
}

// NotAHost tells why host cannot be one of the hosts, or "" when it can: listed, or allowed
// to join by gossip (see Unlisted).
func (h *Health) NotAHost(host string) string {
	if h.Listed(host) {
		return ""
	}
	return h.Unlisted()
}

// HostNames returns the configured hosts in name order.
func (h *Health) HostNames() []string {
	names := make([]string, 0, len(h.Hosts))
	for n := range h.Hosts {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// DefaultHealth is the health section's defaults, before any network is configured.
func DefaultHealth() Health {
	return Health{
		Interval:       DefaultHealthInterval,
		StaleAfter:     DefaultStaleAfter,
		ClockSkew:      DefaultClockSkew,
		ProbeFailures:  DefaultProbeFailures,
		Confirm:        DefaultConfirm,
		RestartTimeout: DefaultRestartTimeout,
		RejoinGrace:    DefaultRejoinGrace,
		RestartCommand: DefaultRestartCommand,
		Decide:         DefaultDecide,
		Watchdog:       Watchdog{Timeout: DefaultWatchdogTimeout, SelfFenceAfter: DefaultSelfFenceAfter, Margin: DefaultWatchdogMargin},
	}
}

// ResponseOrDefault returns the network's response, or its default when none is set: disable
// for the management network, fence for the one named "storage" (VMs whose disks are gone must
// be restarted elsewhere), migrate for the others.
func (n Network) ResponseOrDefault() Response {
	switch {
	case n.Response != "":
		return n.Response
	case n.Management:
		return DefaultManagementNetRsp
	case n.Name == DefaultStorageNetwork:
		return ResponseFence
	default:
		return ResponseMigrate
	}
}

// applyDefaults sets each network's default response.
func (h *Health) applyDefaults() {
	h.Watchdog.applyDefaults()
	h.Gossip.applyDefaults(h)
	for i, n := range h.Networks {
		h.Networks[i].Response = n.ResponseOrDefault()
	}
}

func (h *Health) validate(p *problems) {
	if !h.Enabled() {
		if len(h.Hosts) > 0 {
			p.add("health.networks: hosts are listed but no network is")
		}
		return
	}
	positive(p, "health.interval", h.Interval)
	positive(p, "health.stale_after", h.StaleAfter)
	positive(p, "health.confirm", h.Confirm)
	positive(p, "health.restart_timeout", h.RestartTimeout)
	positive(p, "health.decide", h.Decide)
	if h.ClockSkew < 0 {
		p.add("health.clock_skew: %s is negative", h.ClockSkew)
	}
	if h.RejoinGrace < 0 {
		p.add("health.rejoin_grace: %s is negative", h.RejoinGrace)
	}
	if h.StaleAfter > 0 && h.StaleAfter < 2*h.Interval {
		p.add("health.stale_after: %s is shorter than two intervals (%s); one late write would count as lost", h.StaleAfter, 2*h.Interval)
	}
	if h.ProbeFailures < 1 {
		p.add("health.probe_failures: %d is below 1", h.ProbeFailures)
	}
	// fence_hostcheck acts only on a decision that held for confirm, so it must gather
	// evidence for longer than that or it would refuse every fencing.
	if h.Decide > 0 && h.Confirm > 0 && h.Decide <= h.Confirm {
		p.add("health.decide: %s is not longer than confirm (%s); fence_hostcheck could never confirm a decision", h.Decide, h.Confirm)
	}
	if strings.TrimSpace(h.RestartCommand) == "" {
		p.add("health.restart_command: must not be empty")
	}
	seen := map[string]bool{}
	mgmt := 0
	for i, n := range h.Networks {
		switch {
		case n.Name == "":
			p.add("health.networks[%d].name: required", i)
		case seen[n.Name]:
			p.add("health.networks[%d].name: %q is listed twice", i, n.Name)
		case !validNetworkName(n.Name):
			p.add("health.networks[%d].name: %q may hold only letters, digits, '.', '_' and '-' (it names a node attribute)", i, n.Name)
		}
		seen[n.Name] = true
		if n.Management {
			mgmt++
		}
		if !oneOf(n.Response, Responses) {
			p.add("health.networks[%d].response: %q is not one of %s", i, n.Response, list(Responses))
		}
		if n.Management && n.Response == ResponseMigrate {
			p.add("health.networks[%d].response: migrate needs the management network, so it cannot answer its loss", i)
		}
		// The management network alone lost means the host's VMs still run and its storage
		// heartbeat is fresh: a host is never fenced for that.
		if n.Management && n.Response == ResponseFence {
			p.add("health.networks[%d].response: a host that lost only the management network is never fenced; use disable, alert or none", i)
		}
		if n.Subnet != "" {
			switch pre, err := netip.ParsePrefix(n.Subnet); {
			case err != nil:
				p.add("health.networks[%d].subnet: %q is not a prefix such as 192.0.2.0/24", i, n.Subnet)
			case pre != pre.Masked():
				p.add("health.networks[%d].subnet: %q has host bits set; the network is %s", i, n.Subnet, pre.Masked())
			case !h.Gossip.Enabled():
				p.add("health.networks[%d].subnet: set, but the hosts do not gossip (health.gossip.key_file): a host not listed in health.hosts would be known to nobody", i)
			}
		}
	}
	h.Watchdog.validate(p, h)
	h.Gossip.validate(p, h)
	if mgmt != 1 {
		p.add("health.networks: exactly one network must be the management network (management: true), found %d", mgmt)
	}
	if len(h.Hosts) == 0 {
		p.add("health.hosts: required: each host's address on each network (with the gossip, at least the seeds' and the observers')")
	} else {
		// A host's report that a peer is lost counts only when it still reaches a third host
		// there, so on a network with fewer hosts no loss could ever be proven. Hosts that
		// join by gossip are not counted here: they are known only at run time.
		for i, n := range h.Networks {
			on := 0
			for _, addrs := range h.Hosts {
				if _, ok := addrs[n.Name]; ok {
					on++
				}
			}
			if n.Name != "" && on < 3 && (n.Subnet == "" || !h.Gossip.Enabled()) {
				p.add("health.networks[%d]: %d hosts have an address on %s; at least 3 are needed to tell a lost host from a lost link", i, on, n.Name)
			}
		}
	}
	mgmtName := h.ManagementNetwork()
	for _, host := range h.HostNames() {
		addrs := h.Hosts[host]
		if !ValidNodeName(host) {
			p.add("health.hosts: %q is not a node name (empty, or holds '=' or a space)", host)
		}
		if _, ok := addrs[mgmtName]; mgmt == 1 && !ok {
			p.add("health.hosts.%s: no address on the management network %s", host, mgmtName)
		}
		nets := make([]string, 0, len(addrs))
		for net := range addrs {
			nets = append(nets, net)
		}
		sort.Strings(nets) // stable messages
		for _, net := range nets {
			a := addrs[net]
			if !seen[net] {
				p.add("health.hosts.%s.%s: no such network", host, net)
				continue
			}
			ip, err := netip.ParseAddr(a)
			if err != nil {
				p.add("health.hosts.%s.%s: %q is not an IP address", host, net, a)
				continue
			}
			if n, _ := h.Network(net); n.Subnet != "" && !h.InSubnet(net, ip) {
				if _, ok := n.Prefix(); ok {
					p.add("health.hosts.%s.%s: %s is not in the network's subnet %s", host, net, a, n.Subnet)
				}
			}
		}
	}
}

// ValidNodeName tells whether name can be a node name in computeha's attributes and files:
// not empty, and without '=', a space or a line break (which the attribute values separate
// names and states with).
func ValidNodeName(name string) bool {
	return name != "" && !strings.ContainsAny(name, "= \t\r\n")
}

func validNetworkName(name string) bool {
	for _, r := range name {
		ok := r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-'
		if !ok {
			return false
		}
	}
	return name != ""
}
