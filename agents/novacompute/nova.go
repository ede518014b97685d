package novacompute

import (
	"context"
	"errors"
	"time"
)

// Service is Nova's view of one nova-compute service.
type Service struct {
	ID   string
	Host string
	// State is "up" when Nova has recent heartbeats and the service is not
	// forced down, else "down".
	State string
	// Status is "enabled" or "disabled".
	Status         string
	ForcedDown     bool
	DisabledReason string
	UpdatedAt      time.Time
}

// Up tells whether Nova reports the service up.
func (s Service) Up() bool { return s.State == "up" }

// Enabled tells whether the scheduler may place instances on the host.
func (s Service) Enabled() bool { return s.Status == "enabled" }

// Nova is the part of the Nova API the agent uses.
type Nova interface {
	// Service returns the nova-compute service of host, or ErrNoService.
	Service(ctx context.Context, host string) (Service, error)
	// ComputeServices lists every nova-compute service.
	ComputeServices(ctx context.Context) ([]Service, error)
	// Unforce unsets forced_down. Nova refuses it while evacuations of the
	// host are finished but not yet confirmed by its nova-compute.
	Unforce(ctx context.Context, id string) error
	// Enable enables the service.
	Enable(ctx context.Context, id string) error
}

// ErrNoService is Nova having no nova-compute service for a host.
var ErrNoService = errors.New("no nova-compute service registered in Nova")

// EvacuationState tells whether evacuations from a host are pending.
type EvacuationState interface {
	// Pending reports whether host has evacuations not yet finished, with
	// a short description of them for logs and exit reasons.
	Pending(ctx context.Context, host string) (bool, string, error)
}
