package health

import (
	"maps"
	"slices"
	"time"

	"github.com/computeha/computeha/internal/config"
)

// Signal is one piece of evidence about a host.
type Signal uint8

const (
	// Unknown means no usable evidence: nobody could look, or what was seen is too old.
	// It is never read as Lost.
	Unknown Signal = iota
	// OK means the signal was seen working.
	OK
	// Lost means observers that could look saw it fail.
	Lost
)

func (s Signal) String() string {
	switch s {
	case OK:
		return "ok"
	case Lost:
		return "lost"
	default:
		return "unknown"
	}
}

// Evidence is everything known about one host at one instant.
type Evidence struct {
	Host string
	// Membership is Pacemaker's heartbeat over the management network: the cluster node is
	// online, or the pacemaker-remote connection to the compute is up.
	Membership Signal
	// Networks is the host's reachability on each configured network (the management
	// network included), as its peers and the controllers see it by probing.
	Networks map[string]Signal
	// Storage is the freshness of the host's heartbeat on the shared storage. Unknown when
	// the reader cannot read the storage, or when no host's heartbeat is fresh (the storage
	// itself is down).
	Storage Signal
	// Service is the host's own report, carried in its heartbeat record, of its cluster
	// service (pacemaker-remoted or corosync): OK running, Lost down. Unknown without a
	// fresh record.
	Service Signal
	// ServiceDownFor is how long the host has reported its service down (when Service is
	// Lost).
	ServiceDownFor time.Duration
}

// State is what a host is judged to be.
type State string

const (
	// Running: the management heartbeat is fine.
	Running State = "running"
	// Degraded: the management heartbeat is fine but one or more other networks are lost;
	// Decision.Networks names them.
	Degraded State = "degraded"
	// Dead: every signal is lost (power or hardware failure, kernel crash).
	Dead State = "dead"
	// ServiceUnreachable: the management heartbeat is lost but the host answers on its
	// networks: its cluster service (agent, process) crashed.
	ServiceUnreachable State = "service-unreachable"
	// Isolated: the host is cut off from the networks but still writes to shared storage:
	// its VMs still run.
	Isolated State = "isolated"
	// ManagementLost: only the management network is lost; the other networks and the
	// storage heartbeat are fine.
	ManagementLost State = "management-lost"
	// Undecided: evidence is missing or contradictory; nothing drastic may be done.
	Undecided State = "unknown"
)

// States lists every state, in the order the documentation gives them.
func States() []State {
	return []State{Running, Degraded, Dead, ServiceUnreachable, Isolated, ManagementLost, Undecided}
}

// Response is what is to be done about a host; the values are the configuration's.
type Response = config.Response

// ResponseRestart restarts the host's cluster service, and fences and evacuates the host if
// that does not bring it back within the restart timeout. It is not a network response, so it
// is not one of the configuration's values.
const ResponseRestart Response = "restart"

// ReasonCode names why a decision was taken, for logs, history and tests.
type ReasonCode string

// Reason is why a decision was taken: a stable code and a sentence for people.
type Reason struct {
	Code ReasonCode
	Text string
}

// Decision is the judgement of one host.
type Decision struct {
	Host     string
	State    State
	Response Response
	// Networks names the lost networks behind a Degraded or ManagementLost state.
	Networks []string
	// Member is set when Pacemaker had the host (membership ok) as it was judged: the
	// [Tracker] tells a host that rejoins by it.
	Member bool
	Reason Reason
}

// Fence reports whether the decision allows fencing the host.
func (d Decision) Fence() bool { return d.Response == config.ResponseFence }

// Observations is the raw material evidence is made from, as read at one instant.
type Observations struct {
	Now time.Time
	// Members maps each node Pacemaker knows to whether it is online (cluster node) or
	// connected (remote node). A node absent from the map is unknown.
	Members map[string]bool
	// Reach maps an observing node to its published view of each network:
	// network → peer → signal (the decoded computeha-reach-* attributes).
	Reach map[string]map[string]map[string]Signal
	// Records holds the heartbeat records read from the shared directory, by host.
	Records map[string]Record
	// StorageErr is set when the reader could not read the shared directory at all (then
	// every storage signal is Unknown).
	StorageErr error
	// RecordErrs holds, by host, why a heartbeat file that exists could not be read or
	// decoded (torn, foreign, unreadable). Such a host's storage signal is Unknown, not Lost:
	// the file is there, so the storage does not prove the host gone.
	RecordErrs map[string]error
}

// Hosts is every host the observations give evidence of, in name order: those health.hosts
// lists, those with a heartbeat record file (readable or not), and those a view names, as
// observer or as peer. The hosts that joined by gossip are among them once their hostcheck
// wrote or was seen: the hosts are whoever joined.
func (o Observations) Hosts(cfg *config.Health) []string {
	seen := map[string]bool{}
	for _, h := range cfg.HostNames() {
		seen[h] = true
	}
	for h := range o.Records {
		seen[h] = true
	}
	for h := range o.RecordErrs {
		seen[h] = true
	}
	for observer, nets := range o.Reach {
		seen[observer] = true
		for _, view := range nets {
			for peer := range view {
				seen[peer] = true
			}
		}
	}
	return slices.Sorted(maps.Keys(seen))
}
