package openstack

import (
	"context"
	"fmt"
	"sync"
)

// Lazy is a Client that logs in to Keystone on first use, and again on the next use after a
// failed login, so that a control plane that is down when a daemon starts only delays the
// daemon's first OpenStack call instead of stopping the daemon. Once logged in it is the
// client [New] returns, which logs in again by itself when its token expires.
//
// A failed login fails the call with ErrUnauthorized (or ErrForbidden) when Keystone refused
// the credentials, which retrying does not fix, and with ErrUnavailable otherwise.
type Lazy struct {
	opts  Options
	login func(context.Context, Options) (Client, error)
	// sem is held while logging in: one login at a time, and a caller whose context ends
	// stops waiting for another's login.
	sem chan struct{}

	mu sync.Mutex
	c  Client
}

var _ Client = (*Lazy)(nil)

// NewLazy returns a Lazy client for opts; it does not log in (see [Lazy.Ready]).
func NewLazy(opts Options) *Lazy {
	return &Lazy{opts: opts, login: New, sem: make(chan struct{}, 1)}
}

// Ready logs in now unless already logged in, and returns what a call would have failed with.
// A daemon calls it at start, in a loop with a pause, so that the login's second or two is
// spent before a recovery needs the client rather than during it.
func (l *Lazy) Ready(ctx context.Context) error {
	_, err := l.get(ctx)
	return err
}

func (l *Lazy) client() Client {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.c
}

func (l *Lazy) get(ctx context.Context) (Client, error) {
	if c := l.client(); c != nil {
		return c, nil
	}
	select {
	case l.sem <- struct{}{}:
	case <-ctx.Done():
		return nil, fmt.Errorf("waiting for the login to Keystone: %w", ctx.Err())
	}
	defer func() { <-l.sem }()
	if c := l.client(); c != nil { // logged in by the caller we waited for
		return c, nil
	}
	c, err := l.login(ctx, l.opts)
	if err != nil {
		if IsUnauthorized(err) || IsUnavailable(err) {
			return nil, err
		}
		return nil, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	l.mu.Lock()
	l.c = c
	l.mu.Unlock()
	return c, nil
}

// call runs f with the logged-in client.
func call[T any](ctx context.Context, l *Lazy, f func(Client) (T, error)) (T, error) {
	c, err := l.get(ctx)
	if err != nil {
		var zero T
		return zero, err
	}
	return f(c)
}

// run runs f with the logged-in client, for the calls that return only an error.
func run(ctx context.Context, l *Lazy, f func(Client) error) error {
	c, err := l.get(ctx)
	if err != nil {
		return err
	}
	return f(c)
}

func (l *Lazy) ComputeServices(ctx context.Context) ([]Service, error) {
	return call(ctx, l, func(c Client) ([]Service, error) { return c.ComputeServices(ctx) })
}

func (l *Lazy) FindComputeService(ctx context.Context, host string) (Service, error) {
	return call(ctx, l, func(c Client) (Service, error) { return c.FindComputeService(ctx, host) })
}

func (l *Lazy) DisableService(ctx context.Context, serviceID, reason string) (Service, error) {
	return call(ctx, l, func(c Client) (Service, error) { return c.DisableService(ctx, serviceID, reason) })
}

func (l *Lazy) EnableService(ctx context.Context, serviceID string) (Service, error) {
	return call(ctx, l, func(c Client) (Service, error) { return c.EnableService(ctx, serviceID) })
}

func (l *Lazy) ForceDown(ctx context.Context, serviceID string) (Service, error) {
	return call(ctx, l, func(c Client) (Service, error) { return c.ForceDown(ctx, serviceID) })
}

func (l *Lazy) UnforceDown(ctx context.Context, serviceID string) (Service, error) {
	return call(ctx, l, func(c Client) (Service, error) { return c.UnforceDown(ctx, serviceID) })
}

func (l *Lazy) ServersOnHost(ctx context.Context, host string) ([]Server, error) {
	return call(ctx, l, func(c Client) ([]Server, error) { return c.ServersOnHost(ctx, host) })
}

func (l *Lazy) Token(ctx context.Context, token string) (TokenInfo, error) {
	return call(ctx, l, func(c Client) (TokenInfo, error) { return c.Token(ctx, token) })
}

func (l *Lazy) Server(ctx context.Context, serverID string) (Server, error) {
	return call(ctx, l, func(c Client) (Server, error) { return c.Server(ctx, serverID) })
}

func (l *Lazy) Evacuate(ctx context.Context, serverID, targetHost string) error {
	return run(ctx, l, func(c Client) error { return c.Evacuate(ctx, serverID, targetHost) })
}

func (l *Lazy) ResetState(ctx context.Context, serverID, state string) error {
	return run(ctx, l, func(c Client) error { return c.ResetState(ctx, serverID, state) })
}

func (l *Lazy) LiveMigrate(ctx context.Context, serverID, targetHost string, blockMigration bool) error {
	return run(ctx, l, func(c Client) error { return c.LiveMigrate(ctx, serverID, targetHost, blockMigration) })
}

func (l *Lazy) ColdMigrate(ctx context.Context, serverID, targetHost string) error {
	return run(ctx, l, func(c Client) error { return c.ColdMigrate(ctx, serverID, targetHost) })
}

func (l *Lazy) ConfirmResize(ctx context.Context, serverID string) error {
	return run(ctx, l, func(c Client) error { return c.ConfirmResize(ctx, serverID) })
}

func (l *Lazy) Reboot(ctx context.Context, serverID string, hard bool) error {
	return run(ctx, l, func(c Client) error { return c.Reboot(ctx, serverID, hard) })
}

func (l *Lazy) Pause(ctx context.Context, serverID string) error {
	return run(ctx, l, func(c Client) error { return c.Pause(ctx, serverID) })
}

func (l *Lazy) Unpause(ctx context.Context, serverID string) error {
	return run(ctx, l, func(c Client) error { return c.Unpause(ctx, serverID) })
}

func (l *Lazy) StartServer(ctx context.Context, serverID string) error {
	return run(ctx, l, func(c Client) error { return c.StartServer(ctx, serverID) })
}

func (l *Lazy) DeleteServer(ctx context.Context, serverID string) error {
	return run(ctx, l, func(c Client) error { return c.DeleteServer(ctx, serverID) })
}

func (l *Lazy) ServerSpec(ctx context.Context, serverID string) (ServerSpec, error) {
	return call(ctx, l, func(c Client) (ServerSpec, error) { return c.ServerSpec(ctx, serverID) })
}

func (l *Lazy) CreateServer(ctx context.Context, spec ServerSpec) (string, error) {
	return call(ctx, l, func(c Client) (string, error) { return c.CreateServer(ctx, spec) })
}

func (l *Lazy) CreatePort(ctx context.Context, p Port) (Port, error) {
	return call(ctx, l, func(c Client) (Port, error) { return c.CreatePort(ctx, p) })
}

func (l *Lazy) Port(ctx context.Context, portID string) (Port, error) {
	return call(ctx, l, func(c Client) (Port, error) { return c.Port(ctx, portID) })
}

func (l *Lazy) ServerGroups(ctx context.Context) ([]ServerGroup, error) {
	return call(ctx, l, func(c Client) ([]ServerGroup, error) { return c.ServerGroups(ctx) })
}

func (l *Lazy) Migrations(ctx context.Context, filter MigrationFilter) ([]Migration, error) {
	return call(ctx, l, func(c Client) ([]Migration, error) { return c.Migrations(ctx, filter) })
}

func (l *Lazy) Hypervisors(ctx context.Context) ([]Hypervisor, error) {
	return call(ctx, l, func(c Client) ([]Hypervisor, error) { return c.Hypervisors(ctx) })
}

func (l *Lazy) HypervisorHosts(ctx context.Context) ([]Hypervisor, error) {
	return call(ctx, l, func(c Client) ([]Hypervisor, error) { return c.HypervisorHosts(ctx) })
}

func (l *Lazy) Aggregates(ctx context.Context) ([]Aggregate, error) {
	return call(ctx, l, func(c Client) ([]Aggregate, error) { return c.Aggregates(ctx) })
}
