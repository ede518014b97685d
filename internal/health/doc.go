// Package health tells a dead host from an isolated one, or from one whose cluster service
// alone is unreachable, by combining independent signals: Pacemaker's membership (the
// management heartbeat), reachability of the host over each network as its peers see it, and
// the freshness of the heartbeat the host writes to shared storage.
//
// The decision itself is one pure function, [Decide], from an [Evidence] to a [Decision];
// [Tracker] adds hysteresis over time, and [Responder] says what to do about each confirmed
// decision and what time brings to it (the evacuation daemon carries its actions out). The
// wire formats shared by the hostcheck process that
// produces the evidence and the readers that consume it (fence_hostcheck, the evacuation
// daemon) live here too: the heartbeat [Record] and the reachability node attributes.
//
// Unknown evidence is never read as lost: a host is dead only when every signal says so.
package health
