// Package plan decides where the VMs of a failed host go, and whether recovery may start at
// all.
//
// [Make] picks an explicit target host for every VM, inside the failed host's segment, with
// masakari's recovery methods:
//
//   - auto: the segment's ordinary hosts. Unlike masakari, which lets Nova's scheduler choose,
//     each VM goes where the most VMs of its size still fit per VM planned there (ties to the
//     host with the most free vCPU, RAM and disk, each relative to the roomiest host), so a
//     burst spreads over the hosts in proportion to what each can take. A burst of
//     evacuations without a target lands unevenly, and the busiest destination sets the
//     finish time (a compute claims its incoming moves one at a time).
//   - reserved_host: only reserved hosts, taken into use one at a time, in segment order, and
//     filled before the next is taken, so as few as possible leave the reserve.
//   - auto_priority: auto; what does not fit goes to reserved hosts.
//   - rh_priority: reserved hosts; what does not fit goes to the ordinary hosts.
//
// Explicit targets never break a hard server group policy (Nova's scheduler would refuse the
// target): an anti-affinity member goes to a host with fewer members than the group's
// max_server_per_host, an affinity member to the host its group runs on. A member no host may
// take is Unplaced with a reason naming the policy, not placed against it. Soft policies are
// followed while a host allows it; a move that cannot follow one says so (Move.Degraded).
//
// VMs are placed, and listed, by restart priority (highest first), then largest first so the
// big ones still find room, then in input order. The plan's pre-flight names every VM that
// does not fit. Every choice and every excluded host carries a typed reason.
//
// [Guard] refuses recovery (pause and alert) when too many hosts fail within a window, when
// too large a part of one segment fails, or when this side of the cluster lacks quorum.
//
// The package is pure: callers pass in host state, VMs and the time.
package plan
