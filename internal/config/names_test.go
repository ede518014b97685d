package config

import (
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestNovaHostAndNodeMapNamesBothWays(t *testing.T) {
	explicit := map[string]string{"odd1": "hv-odd-1.lab.example.net", "short": "short"}
	tests := []struct {
		name     string
		domain   string
		explicit map[string]string
		node     string
		novaHost string
	}{
		{name: "without a domain a node name is its Nova host name", node: "cmp1", novaHost: "cmp1"},
		{name: "without a domain a dotted node name is kept too", node: "cmp1.example.com", novaHost: "cmp1.example.com"},
		{name: "the domain is appended after a dot to a short node name", domain: "example.com", node: "cmp1", novaHost: "cmp1.example.com"},
		{name: "a leading dot in the domain is ignored", domain: ".example.com", node: "cmp1", novaHost: "cmp1.example.com"},
		{name: "an explicit entry wins over the domain", domain: "example.com", explicit: explicit, node: "odd1", novaHost: "hv-odd-1.lab.example.net"},
		{name: "an explicit entry may keep a short name despite the domain", domain: "example.com", explicit: explicit, node: "short", novaHost: "short"},
		{name: "a node without an entry still gets the domain", domain: "example.com", explicit: explicit, node: "cmp2", novaHost: "cmp2.example.com"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := &Config{NovaHostDomain: tt.domain, NovaHosts: tt.explicit}
			if got := c.NovaHost(tt.node); got != tt.novaHost {
				t.Errorf("NovaHost(%q) = %q, want %q", tt.node, got, tt.novaHost)
			}
			if got := c.Node(tt.novaHost); got != tt.node {
				t.Errorf("Node(%q) = %q, want %q", tt.novaHost, got, tt.node)
			}
		})
	}
}

func TestNodeLeavesANovaHostOutsideTheDomainAsItIs(t *testing.T) {
	c := &Config{NovaHostDomain: "example.com"}
	for novaHost, want := range map[string]string{
		"cmp1.other.org":         "cmp1.other.org",
		"cmp1":                   "cmp1",
		"a.b.example.com":        "a.b.example.com", // what is left has a dot: no node name had the domain appended
		"example.com":            "example.com",
		"cmp1.notexample.com":    "cmp1.notexample.com",
		"cmp1.sub.example.com.x": "cmp1.sub.example.com.x",
	} {
		if got := c.Node(novaHost); got != want {
			t.Errorf("Node(%q) = %q, want %q", novaHost, got, want)
		}
	}
}

func TestNodeAmongFindsTheClusterNodeANovaHostBelongsTo(t *testing.T) {
	c := &Config{NovaHostDomain: "example.com", NovaHosts: map[string]string{"odd": "hv7.example.net"}}
	tests := []struct {
		name     string
		novaHost string
		nodes    []string
		want     string
	}{
		{"a short-named node is found by its Nova host", "cmp1.example.com", []string{"ctl1", "cmp1", "cmp2"}, "cmp1"},
		{"a node already named by its FQDN is found, not a short name nobody has", "cmp3.example.com", []string{"ctl1", "cmp3.example.com"}, "cmp3.example.com"},
		{"the short name wins when the cluster has both", "cmp4.example.com", []string{"cmp4.example.com", "cmp4"}, "cmp4"},
		{"an explicit entry is found", "hv7.example.net", []string{"odd", "cmp1"}, "odd"},
		{"a Nova host of no node falls back to the reverse rule", "cmp9.example.com", []string{"cmp1"}, "cmp9"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := c.NodeAmong(tt.novaHost, tt.nodes); got != tt.want {
				t.Errorf("NodeAmong(%q, %v) = %q, want %q", tt.novaHost, tt.nodes, got, tt.want)
			}
		})
	}
}

func TestNovaHostNamingIsValidated(t *testing.T) {
	tests := []struct {
		name     string
		segments string   // the segments section; empty: one of two hosts named by their FQDN
		yaml     string   // the rest of the file
		want     []string // the problems; nil: valid
	}{
		{name: "a plain domain is accepted", yaml: "nova_host_domain: example.com\n"},
		{name: "a domain with a leading dot, as fence_nova accepts it, is accepted", yaml: "nova_host_domain: .example.com\n"},
		{name: "a one-label domain with digits, '-' and '_' is accepted", segments: "{s: {hosts: [a.lab_2-x, b.lab_2-x]}}", yaml: "nova_host_domain: lab_2-x\n"},
		{name: "an empty domain means none", yaml: "nova_host_domain: \"\"\n"},
		{name: "explicit entries alone are accepted", yaml: "nova_hosts: {odd: hv7.example.net}\n"},
		{
			name: "a domain with a space is refused",
			yaml: "nova_host_domain: \"example .com\"\n",
			want: []string{`nova_host_domain: "example .com" is not a DNS domain such as example.com: the character ' ' (only letters, digits, '-' and '_' go between the dots)`},
		},
		{
			name: "a domain with an empty label is refused",
			yaml: "nova_host_domain: example..com\n",
			want: []string{`nova_host_domain: "example..com" is not a DNS domain such as example.com: an empty label (two dots in a row)`},
		},
		{
			name: "a domain with a trailing dot is refused, since fence_nova would append it as it is",
			yaml: "nova_host_domain: example.com.\n",
			want: []string{`nova_host_domain: "example.com." is not a DNS domain such as example.com: a trailing dot (Nova host names have none)`},
		},
		{
			name: "a domain of two leading dots is refused",
			yaml: "nova_host_domain: ..example.com\n",
			want: []string{`nova_host_domain: "..example.com" is not a DNS domain such as example.com: more than one leading dot`},
		},
		{
			name: "a lone dot is refused",
			yaml: "nova_host_domain: .\n",
			want: []string{`nova_host_domain: "." is not a DNS domain such as example.com: only a dot`},
		},
		{
			name: "a label starting with '-' is refused",
			yaml: "nova_host_domain: -example.com\n",
			want: []string{`nova_host_domain: "-example.com" is not a DNS domain such as example.com: a label starting or ending with '-' (-example)`},
		},
		{
			name: "a label longer than 63 characters is refused",
			yaml: "nova_host_domain: " + strings.Repeat("a", 64) + ".com\n",
			want: []string{`nova_host_domain: "` + strings.Repeat("a", 64) + `.com" is not a DNS domain such as example.com: a label longer than 63 characters (aaaaaaaaaaaaaaaaaaaa...)`},
		},
		{
			name:     "short segment hosts with a domain set are refused: they can be no node's Nova host",
			segments: "{s: {hosts: [cmp1, cmp2.example.com]}}", yaml: "nova_host_domain: example.com\n",
			want: []string{`segments.s.hosts: "cmp1" has no dot, but nova_host_domain is set: segment hosts are Nova host names (cmp1.example.com), or need a nova_hosts entry`},
		},
		{
			name:     "a short segment host with an explicit entry naming it is accepted",
			segments: "{s: {hosts: [cmp1, cmp2.example.com]}}", yaml: "nova_host_domain: example.com\nnova_hosts: {node1: cmp1}\n",
		},
		{
			name:     "a short reserved host of an aggregate segment with a domain set is refused",
			segments: "{s: {aggregate: ha, recovery_method: reserved_host, reserved_hosts: [cmp9]}}", yaml: "nova_host_domain: example.com\n",
			want: []string{`segments.s.reserved_hosts: "cmp9" has no dot, but nova_host_domain is set: segment hosts are Nova host names (cmp9.example.com), or need a nova_hosts entry`},
		},
		{
			name: "two nodes mapped to one Nova host are refused",
			yaml: "nova_hosts: {a: hv1.example.net, b: hv1.example.net}\n",
			want: []string{`nova_hosts.b: "hv1.example.net" is also the Nova host of a; each node has its own`},
		},
		{
			name: "an empty explicit Nova host is refused",
			yaml: "nova_hosts: {a: \"\"}\n",
			want: []string{`nova_hosts.a: "" is not a Nova host name (empty, or holds a space)`},
		},
		{
			name: "a list where the map of explicit entries belongs names the field",
			yaml: "nova_hosts: [a, b]\n",
			want: []string{"line 3: cannot unmarshal !!seq into a map of name: value"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			segs := tt.segments
			if segs == "" {
				segs = "{s: {hosts: [cmp1.example.com, cmp2.example.com]}}"
			}
			_, err := Parse([]byte("cloud: x\nsegments: " + segs + "\n" + tt.yaml))
			var got []string
			if err != nil {
				var ce *Error
				if !errors.As(err, &ce) {
					t.Fatalf("err = %v, want a *config.Error", err)
				}
				got = ce.Problems
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("problems (-want +got):\n%s", diff)
			}
		})
	}
}

func TestTheNamingOptionsAreDecoded(t *testing.T) {
	c, err := Parse([]byte("cloud: x\nsegments: {s: {hosts: [cmp1.example.com, hv7.example.net]}}\nnova_host_domain: example.com\nnova_hosts:\n  odd: hv7.example.net\n"))
	if err != nil {
		t.Fatal(err)
	}
	got := struct {
		Domain string
		Hosts  map[string]string
	}{c.NovaHostDomain, c.NovaHosts}
	want := struct {
		Domain string
		Hosts  map[string]string
	}{"example.com", map[string]string{"odd": "hv7.example.net"}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}
