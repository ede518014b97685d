package openstack

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/gophercloud/gophercloud/v2"
	gcopenstack "github.com/gophercloud/gophercloud/v2/openstack"
	"github.com/gophercloud/gophercloud/v2/openstack/config/clouds"
	tokens3 "github.com/gophercloud/gophercloud/v2/openstack/identity/v3/tokens"

	"github.com/computeha/computeha/internal/clock"
)

// Pinned API versions; doc.go explains each choice.
const (
	ComputeMicroversion   = "2.69"
	PlacementMicroversion = "1.14"
	// CreateServerMicroversion is sent by CreateServer alone: 2.74 is the first that takes a
	// requested host that the scheduler still checks.
	CreateServerMicroversion = "2.74"
)

// Options configures [New].
type Options struct {
	// Cloud names the clouds.yaml entry to use. Required.
	Cloud string
	// CloudsFile is the clouds.yaml to read. When empty, OS_CLIENT_CONFIG_FILE names it, or
	// else the first of ./clouds.yaml, $XDG_CONFIG_HOME/openstack/clouds.yaml (~/.config) and
	// /etc/openstack/clouds.yaml is used. A secure.yaml next to it is merged in, as
	// python-openstackclient does.
	CloudsFile string
	// Region overrides region_name (and OS_REGION_NAME).
	Region string
	// EndpointType ("public", "internal" or "admin") overrides the entry's interface.
	EndpointType string
	// CACertFile overrides the entry's cacert.
	CACertFile string
	// Insecure, when set, overrides the entry's verify (Insecure = !verify).
	Insecure *bool

	// HTTPClient, if set, carries every request (Keystone included). When its Transport is nil
	// or an *http.Transport, a clone of it gets the TLS settings of the clouds.yaml entry and
	// DialContext; any other RoundTripper is used as it is, and then owns TLS itself.
	HTTPClient *http.Client
	// DialContext, if set, opens every connection; for example one that dials from inside a
	// network namespace.
	DialContext func(ctx context.Context, network, addr string) (net.Conn, error)
	// WrapTransport, if set, wraps the transport that carries every request (Keystone
	// included), after TLS and DialContext are set: to count and time them, for example.
	WrapTransport func(http.RoundTripper) http.RoundTripper

	// CallTimeout bounds each HTTP attempt (default 60 s). The caller's context bounds the
	// whole call, retries included.
	CallTimeout time.Duration
	// Retry is the retry policy; zero fields take their defaults.
	Retry RetryPolicy
	// Logger receives retries and re-logins; nil discards them.
	Logger *slog.Logger
	// LoginFile, if set, keeps the Keystone login between processes: New takes up the token
	// kept there for the same credentials, while it is fresh, instead of logging in, and keeps
	// each new login there (mode 0600). For short-lived processes that each call a few times,
	// such as an agent's monitor; see login.go.
	LoginFile string
}

// RetryPolicy bounds retries of failed attempts (see the package doc for what is retried).
type RetryPolicy struct {
	// Attempts is the most attempts per request, the first included (default 4).
	Attempts int
	// BaseDelay is the wait before the first retry, doubled for each further one, with jitter
	// (default 250 ms).
	BaseDelay time.Duration
	// MaxDelay caps one wait, a Retry-After header included (default 4 s).
	MaxDelay time.Duration
}

func (p RetryPolicy) withDefaults() RetryPolicy {
	if p.Attempts <= 0 {
		p.Attempts = 4
	}
	if p.BaseDelay <= 0 {
		p.BaseDelay = 250 * time.Millisecond
	}
	if p.MaxDelay <= 0 {
		p.MaxDelay = 4 * time.Second
	}
	return p
}

// New reads the clouds.yaml entry, logs in to Keystone v3 (password or application
// credential) and returns a Client that reuses that login. It fails with a configuration error,
// with ErrUnauthorized when Keystone refuses the credentials, with ErrUnavailable when Keystone
// cannot be reached, or when the catalog has no compute endpoint for the region and interface.
func New(ctx context.Context, opts Options) (Client, error) {
	c, pc, eo, kept, err := logIn(ctx, opts, opts.LoginFile)
	if err != nil {
		return nil, err
	}

	c.compute, err = serviceClient(pc, eo, "compute")
	if err != nil {
		return nil, fmt.Errorf("cloud %q: no compute endpoint in the catalog for region %q, interface %s: %w",
			opts.Cloud, eo.Region, eo.Availability, err)
	}
	c.compute.Microversion = ComputeMicroversion
	c.pc, c.eo = pc, eo
	c.projectID, c.userID = loginOwner(pc, kept)
	// Rescoping (CreateServer in another project) posts to Keystone with a provider client of
	// its own: no token, no re-login, so a refusal comes back as it is instead of being taken
	// for an expired token of the main login.
	idpc := &gophercloud.ProviderClient{
		IdentityBase: pc.IdentityBase, IdentityEndpoint: pc.IdentityEndpoint,
		HTTPClient: pc.HTTPClient, UserAgent: pc.UserAgent,
	}
	if c.identity, err = gcopenstack.NewIdentityV3(idpc, gophercloud.EndpointOpts{}); err != nil {
		return nil, fmt.Errorf("cloud %q: identity endpoint: %w", opts.Cloud, err)
	}
	// Placement, Glance and Neutron are only needed by some calls; a catalog without them
	// fails those calls, not the login.
	if c.placement, err = serviceClient(pc, eo, "placement"); err == nil {
		c.placement.Microversion = PlacementMicroversion
	} else {
		c.placement, c.placementErr = nil, fmt.Errorf("no placement endpoint in the catalog: %w", err)
	}
	if c.image, err = serviceClient(pc, eo, "image"); err == nil {
		// Glance's catalog URL is usually unversioned; the v2 API lives under /v2/.
		if !strings.HasSuffix(c.image.Endpoint, "/v2/") {
			c.image.ResourceBase = c.image.Endpoint + "v2/"
		}
	} else {
		c.image, c.imageErr = nil, fmt.Errorf("no image endpoint in the catalog: %w", err)
	}
	if c.network, err = serviceClient(pc, eo, "network"); err == nil {
		// Neutron's catalog URL is unversioned; the v2.0 API lives under /v2.0/.
		c.network.ResourceBase = c.network.Endpoint + "v2.0/"
	} else {
		c.network, c.networkErr = nil, fmt.Errorf("no network endpoint in the catalog: %w", err)
	}
	return c, nil
}

// tokenOwner returns the project and the user of the login's token ("" when it has none, e.g.
// a domain-scoped token).
func tokenOwner(pc *gophercloud.ProviderClient) (projectID, userID string) {
	r, ok := pc.GetAuthResult().(tokens3.CreateResult)
	if !ok {
		return "", ""
	}
	if p, err := r.ExtractProject(); err == nil && p != nil {
		projectID = p.ID
	}
	if u, err := r.ExtractUser(); err == nil && u != nil {
		userID = u.ID
	}
	return projectID, userID
}

// serviceClient takes the endpoint of serviceType from the login's catalog. It does not use
// gophercloud's New*V* constructors: they probe each unversioned endpoint for its version
// document with a context that has no deadline, so a hung Placement or Glance would hang New.
func serviceClient(pc *gophercloud.ProviderClient, eo gophercloud.EndpointOpts, serviceType string) (*gophercloud.ServiceClient, error) {
	eo.Type = serviceType
	eo.ApplyDefaults(serviceType)
	u, err := pc.EndpointLocator(eo)
	if err != nil {
		return nil, err
	}
	return &gophercloud.ServiceClient{ProviderClient: pc, Endpoint: u, Type: serviceType}, nil
}

// logIn reads the clouds.yaml entry of opts and logs in to Keystone (taking up a login kept in
// loginFile when fresh): the client's settings, its provider client and endpoint options, and
// the kept login when one was used. Its errors are New's.
func logIn(ctx context.Context, opts Options, loginFile string) (*nova, *gophercloud.ProviderClient, gophercloud.EndpointOpts, *keptLogin, error) {
	ao, eo, tlsConf, err := loadCloud(opts)
	if err != nil {
		return nil, nil, eo, nil, err
	}
	hc, err := buildHTTPClient(opts, tlsConf)
	if err != nil {
		return nil, nil, eo, nil, err
	}
	logger := opts.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	c := &nova{
		log:         logger.With("component", "openstack", "cloud", opts.Cloud),
		callTimeout: opts.CallTimeout,
		retry:       opts.Retry.withDefaults(),
		sleep:       clock.Sleep,
	}
	if c.callTimeout <= 0 {
		c.callTimeout = 60 * time.Second
	}
	pc, err := gcopenstack.NewClient(ao.IdentityEndpoint)
	if err != nil {
		return nil, nil, eo, nil, fmt.Errorf("cloud %q: auth_url: %w", opts.Cloud, err)
	}
	// The HTTP client must be in place before Authenticate: the re-login function it installs
	// works on a copy of the provider client taken at that moment.
	pc.HTTPClient = hc
	pc.UserAgent.Prepend("computeha")
	kept, err := c.login(ctx, pc, ao, loginFile)
	if err != nil {
		return nil, nil, eo, nil, fmt.Errorf("cloud %q: %w", opts.Cloud, err)
	}
	return c, pc, eo, kept, nil
}

// loadCloud turns a clouds.yaml entry into gophercloud's login and endpoint options.
func loadCloud(opts Options) (gophercloud.AuthOptions, gophercloud.EndpointOpts, *tls.Config, error) {
	var (
		ao gophercloud.AuthOptions
		eo gophercloud.EndpointOpts
	)
	if opts.Cloud == "" {
		return ao, eo, nil, errors.New("no cloud name given: name the clouds.yaml entry to use")
	}
	switch opts.EndpointType {
	case "", "public", "internal", "admin", "publicURL", "internalURL", "adminURL":
	default:
		return ao, eo, nil, fmt.Errorf("endpoint type %q: want public, internal or admin", opts.EndpointType)
	}
	parseOpts := []clouds.ParseOption{clouds.WithCloudName(opts.Cloud)}
	if opts.CloudsFile != "" {
		if _, err := os.Stat(opts.CloudsFile); err != nil {
			return ao, eo, nil, fmt.Errorf("clouds file: %w", err)
		}
		parseOpts = append(parseOpts, clouds.WithLocations(opts.CloudsFile))
	}
	if opts.Region != "" {
		parseOpts = append(parseOpts, clouds.WithRegion(opts.Region))
	}
	if opts.EndpointType != "" {
		parseOpts = append(parseOpts, clouds.WithEndpointType(opts.EndpointType))
	}
	if opts.CACertFile != "" {
		parseOpts = append(parseOpts, clouds.WithCACertPath(opts.CACertFile))
	}
	if opts.Insecure != nil {
		parseOpts = append(parseOpts, clouds.WithInsecure(*opts.Insecure))
	}
	ao, eo, tlsConf, err := parseClouds(parseOpts)
	if err != nil {
		return ao, eo, nil, fmt.Errorf("cloud %q: %w", opts.Cloud, err)
	}
	if err := checkAuth(ao); err != nil {
		return ao, eo, nil, fmt.Errorf("cloud %q: %w", opts.Cloud, err)
	}
	// A daemon holds its login for days: log in again whenever a token is refused.
	ao.AllowReauth = true
	return ao, eo, tlsConf, nil
}

// parseClouds calls clouds.Parse, which dereferences the entry's auth section without checking
// it is there; an entry without one gets an error instead of a crash.
func parseClouds(opts []clouds.ParseOption) (ao gophercloud.AuthOptions, eo gophercloud.EndpointOpts, tlsConf *tls.Config, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = errors.New("the entry has no auth section")
		}
	}()
	return clouds.Parse(opts...)
}

// checkAuth accepts what computeha can log in with again unattended: a password or an
// application credential. The errors name fields, never values.
func checkAuth(ao gophercloud.AuthOptions) error {
	if ao.IdentityEndpoint == "" {
		return errors.New("auth.auth_url is missing")
	}
	switch {
	case ao.ApplicationCredentialID != "" || ao.ApplicationCredentialName != "":
		if ao.ApplicationCredentialSecret == "" {
			return errors.New("auth.application_credential_secret is missing")
		}
		if ao.ApplicationCredentialID == "" && ao.UserID == "" && ao.Username == "" {
			return errors.New("an application credential given by name needs auth.username or auth.user_id")
		}
		if ao.ApplicationCredentialID == "" && ao.UserID == "" && ao.DomainID == "" && ao.DomainName == "" {
			return errors.New("an application credential given by name needs auth.user_domain_name or auth.user_domain_id")
		}
	case ao.Password != "":
		if ao.Username == "" && ao.UserID == "" {
			return errors.New("password login needs auth.username or auth.user_id")
		}
		if ao.UserID == "" && ao.DomainID == "" && ao.DomainName == "" {
			return errors.New("auth.username needs auth.user_domain_name or auth.user_domain_id (Keystone v3 names users per domain)")
		}
		if s := ao.Scope; s != nil && s.ProjectName != "" && s.DomainID == "" && s.DomainName == "" {
			return errors.New("auth.project_name needs auth.project_domain_name or auth.project_domain_id")
		}
	case ao.TokenID != "":
		return errors.New("token login cannot log in again when the token expires: use a password or an application credential")
	default:
		return errors.New("auth has neither a password nor an application credential")
	}
	return nil
}

// buildHTTPClient returns the HTTP client every request goes through.
func buildHTTPClient(opts Options, tlsConf *tls.Config) (http.Client, error) {
	var hc http.Client
	if opts.HTTPClient != nil {
		hc = *opts.HTTPClient
	}
	var tr *http.Transport
	switch t := hc.Transport.(type) {
	case nil:
		dt, ok := http.DefaultTransport.(*http.Transport)
		if !ok {
			return hc, errors.New("http.DefaultTransport is not an *http.Transport")
		}
		tr = dt.Clone()
	case *http.Transport:
		tr = t.Clone()
	default:
		if opts.DialContext != nil {
			return hc, errors.New("DialContext needs an HTTPClient whose Transport is nil or an *http.Transport")
		}
		if opts.WrapTransport != nil {
			hc.Transport = opts.WrapTransport(hc.Transport)
		}
		return hc, nil
	}
	if tlsConf != nil {
		tr.TLSClientConfig = tlsConf
	}
	if opts.DialContext != nil {
		tr.DialContext = opts.DialContext
	}
	hc.Transport = tr
	if opts.WrapTransport != nil {
		hc.Transport = opts.WrapTransport(tr)
	}
	return hc, nil
}
