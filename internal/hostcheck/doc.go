// Package hostcheck is the per-host health process (computeha hostcheck, run on every node by
// the ocf:computeha:hostcheck clone). It produces this host's share of the evidence that
// package health judges hosts from:
//
//   - the storage heartbeat: every interval it writes its health.Record to the shared
//     directory (temp file, fsync, rename, fsync of the directory). Shared storage can hang,
//     so each write runs in its own goroutine; a hung write never blocks the loops, and no
//     second write is started behind it.
//   - reachability: every interval it sends one ICMP echo request to every other configured
//     host on every network, from a raw socket bound to this host's address there, and
//     publishes its view of each network as the node attribute computeha-reach-NETWORK on
//     its own node, only when the view changes. The attribute is private to attrd: never
//     written to the CIB, so a flapping peer does not abort Pacemaker's transitions. A peer
//     is lost after Health.ProbeFailures failed probes in a row and ok again at its first
//     answer. With Health.Gossip, the host joins the gossip membership (internal/gossip) on
//     every network and probes only the seeds and the observers (which probe every host):
//     the others' reachability is the membership's (gossip.go), and a fence query by gossip
//     for this host stops its watchdog before it is acknowledged.
//   - the cluster service: it watches the service's process (pacemaker-remoted on computes)
//     and, while it is down, runs Health.RestartCommand with a growing backoff; the
//     heartbeat record carries the service state and since when it is down.
//
// The heartbeat and the probes run in two separate loops, so that neither a hung storage nor
// a slow Pacemaker tool delays the other. The process serves its own health on a UNIX socket
// (AskHealth): whether the heartbeat writer and the probe loop work, and why not.
package hostcheck
