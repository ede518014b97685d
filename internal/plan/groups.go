package plan

import (
	"fmt"
	"maps"
	"slices"
	"strings"
)

// groupStates follows, during one plan, where each server group's members are: those that run
// elsewhere already and those placed so far.
type groupStates map[string]*groupState

type groupState struct {
	id      string
	g       Group
	members map[string]int // host → members there
}

func newGroupState(groups map[string]Group) groupStates {
	out := groupStates{}
	for id, g := range groups {
		m := maps.Clone(g.Members)
		if m == nil {
			m = map[string]int{}
		}
		out[id] = &groupState{id: id, g: g, members: m}
	}
	return out
}

// of is vm's group, nil when it has none.
func (gs groupStates) of(vm *VM) *groupState {
	if vm.Group == "" {
		return nil
	}
	return gs[vm.Group]
}

func (g *groupState) hard() bool {
	return g.g.Policy == Affinity || g.g.Policy == AntiAffinity
}

func (g *groupState) maxPerHost() int {
	if g.g.MaxPerHost > 0 {
		return g.g.MaxPerHost
	}
	return 1
}

// affinityHost is where an affinity group's members are (the host with the most of them), or
// "" while none is placed.
func (g *groupState) affinityHost() string {
	best := ""
	for _, h := range slices.Sorted(maps.Keys(g.members)) {
		if g.members[h] > 0 && (best == "" || g.members[h] > g.members[best]) {
			best = h
		}
	}
	return best
}

// allows tells whether a hard policy lets a member go to host (a nil group allows anything).
func (g *groupState) allows(host string) bool {
	if g == nil {
		return true
	}
	switch g.g.Policy {
	case AntiAffinity:
		return g.members[host] < g.maxPerHost()
	case Affinity:
		h := g.affinityHost()
		return h == "" || h == host
	}
	return true
}

// rank orders hosts by a soft policy's preference: 0 is best (a nil group ranks every host 0).
func (g *groupState) rank(host string) int {
	if g == nil {
		return 0
	}
	switch g.g.Policy {
	case SoftAntiAffinity:
		return g.members[host]
	case SoftAffinity:
		if h := g.affinityHost(); h != "" && h != host {
			return 1
		}
	}
	return 0
}

// degraded says how placing a member on host breaks a soft policy, or "".
func (g *groupState) degraded(host string) string {
	switch {
	case g.g.Policy == SoftAntiAffinity && g.members[host] > 0:
		return fmt.Sprintf("soft-anti-affinity of server group %s: %s already runs %d of its members, and no other host has room", g.id, host, g.members[host])
	case g.g.Policy == SoftAffinity && g.affinityHost() != "" && g.affinityHost() != host:
		return fmt.Sprintf("soft-affinity of server group %s: its members run on %s, which has no room", g.id, g.affinityHost())
	}
	return ""
}

func (g *groupState) place(host string) { g.members[host]++ }

func (g *groupState) unsatisfiable() Reason {
	if g.g.Policy == Affinity {
		return ReasonHardAffinity
	}
	return ReasonHardAntiAffinity
}

// why explains an unsatisfiable hard policy.
func (g *groupState) why(vm *VM) string {
	if g.g.Policy == Affinity {
		return fmt.Sprintf("%s must run with the other members of server group %s (affinity), on %s, which has no room for it or is not a target",
			vm.ID, g.id, g.affinityHost())
	}
	var full []string
	for _, h := range slices.Sorted(maps.Keys(g.members)) {
		if g.members[h] >= g.maxPerHost() {
			full = append(full, h)
		}
	}
	return fmt.Sprintf("%s must not share a host with other members of server group %s (anti-affinity, %d per host): %s already hold their share, and the hosts left have no room",
		vm.ID, g.id, g.maxPerHost(), strings.Join(full, ", "))
}
