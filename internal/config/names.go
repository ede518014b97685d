package config

import (
	"fmt"
	"sort"
	"strings"
	"unicode/utf8"
)

// Pacemaker and Nova may know a compute host by different names: Pacemaker by the node name
// (often the short name, cmp1), Nova by its service host name ([DEFAULT] host in nova.conf,
// often the FQDN, cmp1.example.com). The daemon learns of a failed host from Pacemaker and acts
// on it in Nova, so it maps one name to the other with the same rule as fence_nova (its domain
// option) and the nova-compute agent (its domain and host parameters).

// NovaHost returns the Nova service host name of a Pacemaker node: its nova_hosts entry if it
// has one, else the node name with nova_host_domain appended after a dot when the name has no
// dot yet, else the node name itself.
func (c *Config) NovaHost(node string) string {
	if h, ok := c.NovaHosts[node]; ok {
		return h
	}
	if d := c.novaHostDomain(); d != "" && node != "" && !strings.Contains(node, ".") {
		return node + "." + d
	}
	return node
}

// Node returns the Pacemaker node name of a Nova host, the reverse of [Config.NovaHost]: the
// node whose nova_hosts entry it is, else the name without the nova_host_domain suffix when
// what is left has no dot, else the name itself. It cannot tell a node named cmp1 from one
// named cmp1.example.com, which NovaHost maps to the same Nova host; a caller that knows the
// cluster's nodes asks [Config.NodeAmong] instead.
func (c *Config) Node(novaHost string) string {
	for _, n := range sortedKeys(c.NovaHosts) {
		if c.NovaHosts[n] == novaHost {
			return n
		}
	}
	if d := c.novaHostDomain(); d != "" {
		if short, ok := strings.CutSuffix(novaHost, "."+d); ok && short != "" && !strings.Contains(short, ".") {
			return short
		}
	}
	return novaHost
}

// NodeAmong returns the node of nodes (the cluster's node names) whose Nova host is novaHost,
// preferring the one [Config.Node] names when several are; when none is, it returns
// Node(novaHost).
func (c *Config) NodeAmong(novaHost string, nodes []string) string {
	guess := c.Node(novaHost)
	found := ""
	for _, n := range nodes {
		if c.NovaHost(n) != novaHost {
			continue
		}
		if n == guess {
			return n
		}
		if found == "" || n < found {
			found = n
		}
	}
	if found != "" {
		return found
	}
	return guess
}

// novaHostDomain is the domain without the leading dot the option may be written with.
func (c *Config) novaHostDomain() string { return strings.TrimPrefix(c.NovaHostDomain, ".") }

// validateNames checks nova_host_domain and nova_hosts, and that the segments' hosts, which
// are Nova host names, can be Nova host names of nodes under that mapping.
func (c *Config) validateNames(p *problems) {
	d := c.novaHostDomain()
	if c.NovaHostDomain != "" {
		if why := domainProblem(d); why != "" {
			p.add("nova_host_domain: %q is not a DNS domain such as example.com: %s", c.NovaHostDomain, why)
			d = ""
		}
	}
	values := map[string]string{} // Nova host → the node mapped to it
	for _, node := range sortedKeys(c.NovaHosts) {
		h := c.NovaHosts[node]
		if !ValidNodeName(node) {
			p.add("nova_hosts: %q is not a node name (empty, or holds '=' or a space)", node)
		}
		switch {
		case h == "" || strings.ContainsAny(h, " \t\r\n"):
			p.add("nova_hosts.%s: %q is not a Nova host name (empty, or holds a space)", node, h)
		case values[h] != "":
			p.add("nova_hosts.%s: %q is also the Nova host of %s; each node has its own", node, h, values[h])
		default:
			values[h] = node
		}
	}
	if d == "" {
		return
	}
	// With a domain, the Nova host of a node without an explicit entry always holds a dot: a
	// segment host without one can be no node's, and its failure would never be recovered.
	for _, name := range c.Segments.Names() {
		seg := c.Segments[name]
		hosts := map[string][]string{"hosts": seg.Hosts}
		if seg.Aggregate != "" {
			// A listed segment's reserved hosts are among its hosts, reported once there.
			hosts["reserved_hosts"] = seg.ReservedHosts
		}
		for _, field := range []string{"hosts", "reserved_hosts"} {
			for _, h := range hosts[field] {
				if h != "" && !strings.Contains(h, ".") && values[h] == "" {
					p.add("segments.%s.%s: %q has no dot, but nova_host_domain is set: segment hosts are Nova host names (%s.%s), or need a nova_hosts entry",
						name, field, h, h, d)
				}
			}
		}
	}
}

// domainProblem names what is wrong with a DNS domain (given without its leading dot), or "".
// Labels are those of host names, underscores allowed as Nova and the agents allow them.
func domainProblem(d string) string {
	switch {
	case d == "":
		return "only a dot"
	case strings.HasPrefix(d, "."):
		return "more than one leading dot"
	case strings.HasSuffix(d, "."):
		return "a trailing dot (Nova host names have none)"
	case len(d) > 253:
		return "longer than 253 characters"
	}
	for _, label := range strings.Split(d, ".") {
		switch {
		case label == "":
			return "an empty label (two dots in a row)"
		case len(label) > 63:
			return fmt.Sprintf("a label longer than 63 characters (%.20s...)", label)
		case strings.HasPrefix(label, "-") || strings.HasSuffix(label, "-"):
			return fmt.Sprintf("a label starting or ending with '-' (%s)", label)
		}
		if i := strings.IndexFunc(label, notLabelRune); i >= 0 {
			r, _ := utf8.DecodeRuneInString(label[i:])
			return fmt.Sprintf("the character %q (only letters, digits, '-' and '_' go between the dots)", r)
		}
	}
	return ""
}

func notLabelRune(r rune) bool {
	letterOrDigit := r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9'
	return !letterOrDigit && r != '-' && r != '_'
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
