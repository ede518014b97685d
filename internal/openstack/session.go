package openstack

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/gophercloud/gophercloud/v2"
	gcopenstack "github.com/gophercloud/gophercloud/v2/openstack"

	"github.com/computeha/computeha/internal/clock"
)

// Session is a Keystone login and the HTTP client to use with it, for calls to a service
// that is not one of OpenStack's own (computeha's HA API): it gives the login's token and
// logs in again when a service refuses it.
type Session struct {
	pc   *gophercloud.ProviderClient
	http *http.Client
}

// NewSession logs in as the clouds.yaml entry opts names (only Cloud, CloudsFile, Region,
// EndpointType, CACertFile, Insecure, HTTPClient, DialContext, CallTimeout, Retry and Logger
// are used). Errors are New's.
func NewSession(ctx context.Context, opts Options) (*Session, error) {
	ao, _, tlsConf, err := loadCloud(opts)
	if err != nil {
		return nil, err
	}
	hc, err := buildHTTPClient(opts, tlsConf)
	if err != nil {
		return nil, err
	}
	logger := opts.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	c := &nova{log: logger.With("component", "openstack", "cloud", opts.Cloud), callTimeout: opts.CallTimeout, retry: opts.Retry.withDefaults()}
	if c.callTimeout <= 0 {
		c.callTimeout = 60 * time.Second
	}
	c.sleep = clock.Sleep
	pc, err := gcopenstack.NewClient(ao.IdentityEndpoint)
	if err != nil {
		return nil, fmt.Errorf("cloud %q: auth_url: %w", opts.Cloud, err)
	}
	pc.HTTPClient = hc
	pc.UserAgent.Prepend("computeha")
	if _, err := c.login(ctx, pc, ao, ""); err != nil {
		return nil, fmt.Errorf("cloud %q: %w", opts.Cloud, err)
	}
	return &Session{pc: pc, http: &hc}, nil
}

// Token is the login's current token.
func (s *Session) Token() string { return s.pc.Token() }

// Relogin logs in again (after a service refused Token), unless another caller did since
// the token old was current.
func (s *Session) Relogin(ctx context.Context, old string) error {
	return s.pc.Reauthenticate(ctx, old)
}

// HTTPClient carries requests the way the login does (TLS settings, dialer).
func (s *Session) HTTPClient() *http.Client { return s.http }
