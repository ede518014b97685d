package config

import (
	"slices"
	"time"
)

// Gossip is membership by gossip (internal/gossip: memberlist, encrypted) on every network,
// among the hostcheck daemons of every host. When it is configured, a host learns whether its
// peers are reachable on a network from the network's membership, and probes directly (ICMP)
// only the seeds and the watchdog's observers, whose answers time its self-fencing; the
// seeds and the observers still probe every host, which bounds a silence for fence_gossip.
// Probes grow with the hosts, not with their square. fence_gossip also sends its fence query
// to a host over it, which reaches a host that lost only its storage.
type Gossip struct {
	// KeyFile holds the key that encrypts the gossip (AES-GCM): one line of base64 of 16, 24
	// or 32 bytes, in a file only root reads. Setting it turns gossip on.
	KeyFile string `yaml:"key_file"`
	// Port is the UDP and TCP port of the gossip on every network. Default 7946.
	Port int `yaml:"port"`
	// Seeds are the hosts a member joins through, and joins again through when it has lost
	// them (a partition healed). Default: the watchdog's observers.
	Seeds []string `yaml:"seeds"`
}

// DefaultGossipPort is memberlist's usual port.
const DefaultGossipPort = 7946

// Enabled tells whether the hosts gossip.
func (g *Gossip) Enabled() bool { return g.KeyFile != "" }

func (g *Gossip) applyDefaults(h *Health) {
	if !g.Enabled() {
		return
	}
	if g.Port == 0 {
		g.Port = DefaultGossipPort
	}
	if len(g.Seeds) == 0 {
		g.Seeds = slices.Clone(h.Watchdog.Observers)
	}
}

func (g *Gossip) validate(p *problems, h *Health) {
	if !g.Enabled() {
		if len(g.Seeds) > 0 {
			p.add("health.gossip: key_file is required: gossip is never sent in clear")
		}
		return
	}
	if g.Port < 1 || g.Port > 65535 {
		p.add("health.gossip.port: %d is not a port", g.Port)
	}
	if len(g.Seeds) == 0 {
		p.add("health.gossip.seeds: required without health.watchdog.observers: the hosts every member joins through")
	}
	// A host probes only the seeds and the observers, and joins through the seeds: on a
	// network where none has an address, nothing would watch it.
	for i, n := range h.Networks {
		if len(g.Seeds) == 0 {
			break // said above
		}
		seeds, direct := 0, 0
		for host, addrs := range h.Hosts {
			if _, ok := addrs[n.Name]; !ok {
				continue
			}
			if slices.Contains(g.Seeds, host) {
				seeds++
			}
			if h.Direct(host) {
				direct++
			}
		}
		if n.Name != "" && seeds == 0 {
			p.add("health.networks[%d]: no seed (health.gossip.seeds) has an address on %s: its gossip could never be joined", i, n.Name)
		} else if n.Name != "" && direct == 0 {
			p.add("health.networks[%d]: no seed nor observer has an address on %s: no host there would be probed", i, n.Name)
		}
	}
	for i, s := range g.Seeds {
		if _, ok := h.Hosts[s]; !ok {
			p.add("health.gossip.seeds[%d]: %q is not one of health.hosts", i, s)
		}
		if slices.Index(g.Seeds, s) != i {
			p.add("health.gossip.seeds[%d]: %q is listed twice", i, s)
		}
	}
}

// Direct tells whether host is probed directly (ICMP) by every host when the hosts gossip: a
// seed or an observer.
func (h *Health) Direct(host string) bool {
	return slices.Contains(h.Gossip.Seeds, host) || h.Watchdog.IsObserver(host)
}

// GossipTiming is memberlist's timing for a health interval: a probe every interval, answered
// within half of it, gossip five times as often.
type GossipTiming struct {
	ProbeInterval, ProbeTimeout, GossipInterval time.Duration
}

// GossipTiming is the gossip's timing for the configured interval.
func (h *Health) GossipTiming() GossipTiming {
	return GossipTiming{ProbeInterval: h.Interval, ProbeTimeout: h.Interval / 2, GossipInterval: h.Interval / 5}
}
