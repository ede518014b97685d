package haapi

import (
	"context"
	"errors"

	"github.com/computeha/computeha/internal/instancemon"
	"github.com/computeha/computeha/internal/openstack"
)

// Paths of the API.
const (
	PathInstanceEvents = "/v1/instance-events"
	PathHostEvents     = "/v1/host-events"
	PathSignal         = "/v1/servers/{id}/signal"
	PathHealth         = "/healthz"
)

// SignalPath is the signal path of server id.
func SignalPath(id string) string { return "/v1/servers/" + id + "/signal" }

// MaxBody is the largest request body taken.
const MaxBody = 64 << 10

// MaxReason is the longest signal reason taken, in bytes.
const MaxReason = 255

// DefaultMonitorRoles may report instance and host events (and signal any server).
var DefaultMonitorRoles = []string{"admin"}

// DefaultSignalRoles may signal the servers of their token's project.
var DefaultSignalRoles = []string{"member"}

// SignalRequest is the body of a signal.
type SignalRequest struct {
	Reason string `json:"reason"`
}

// Status says what the daemon did with a request it took.
type Status string

const (
	// Accepted: the daemon acts on it (a recovery, subject to fencing, policy and limits).
	Accepted Status = "accepted"
	// Coalesced: the same guest's failure or signal is being handled already.
	Coalesced Status = "coalesced"
	// Ignored: nothing to do (not a failure after all, not an HA guest, its host under
	// recovery); Reason says why.
	Ignored Status = "ignored"
)

// Answer is the body of a 202.
type Answer struct {
	Status Status `json:"status"`
	Reason string `json:"reason,omitempty"`
}

// ErrorBody is the body of every error answer.
type ErrorBody struct {
	Error struct {
		Code    int    `json:"code"`
		Title   string `json:"title"`
		Message string `json:"message"`
	} `json:"error"`
}

// Caller is who made a request, as Keystone says.
type Caller = openstack.TokenInfo

// Sink is what the API hands requests to: the evacuation daemon.
type Sink interface {
	// InstanceFailed takes a monitor's report of a guest failure.
	InstanceFailed(ctx context.Context, e instancemon.Event, by Caller) (Answer, error)
	// Signal takes a request to recover server s (already found visible to by).
	Signal(ctx context.Context, s openstack.Server, reason string, by Caller) (Answer, error)
	// HostProcess takes a monitor's report of a provisioning process of a host that cannot
	// be restarted, or runs again.
	HostProcess(ctx context.Context, e instancemon.HostEvent, by Caller) (Answer, error)
}

// ErrUnavailable from a Sink means it cannot decide now (503).
var ErrUnavailable = errors.New("cannot decide now")

// Servers finds a server (the daemon's Nova client).
type Servers interface {
	Server(ctx context.Context, id string) (openstack.Server, error)
}

// Tokens validates a token (the daemon's Nova client, whose login asks Keystone).
type Tokens interface {
	Token(ctx context.Context, token string) (openstack.TokenInfo, error)
}
