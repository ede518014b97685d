package recovery

import "github.com/computeha/computeha/internal/config"

// Host names a compute host the two ways computeha meets it.
type Host struct {
	// Node is its Pacemaker node name: what the history, the evacuation marks and operators
	// name.
	Node string
	// NovaHost is its nova-compute service host: what every Nova call names.
	NovaHost string
}

// String is the node name, with the Nova host after it when they differ.
func (h Host) String() string {
	if h.NovaHost == "" || h.NovaHost == h.Node {
		return h.Node
	}
	return h.Node + " (Nova host " + h.NovaHost + ")"
}

// Names turns node names into Nova host names and back, by the configuration's rule
// ([config.Config.NovaHost]) and the cluster's node names.
type Names struct {
	cfg   *config.Config
	nodes []string
}

// NewNames returns the resolver for cfg and the cluster's nodes (nil when unknown: the rule
// alone decides).
func NewNames(cfg *config.Config, nodes []string) Names { return Names{cfg: cfg, nodes: nodes} }

// ByNode is the host of a Pacemaker node.
func (n Names) ByNode(node string) Host {
	return Host{Node: node, NovaHost: n.cfg.NovaHost(node)}
}

// ByNova is the host of a Nova host name ("" stays empty).
func (n Names) ByNova(novaHost string) Host {
	if novaHost == "" {
		return Host{}
	}
	return Host{Node: n.cfg.NodeAmong(novaHost, n.nodes), NovaHost: novaHost}
}
