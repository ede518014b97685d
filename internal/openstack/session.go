package openstack

import (
	"context"
	"net/http"
	"sync"

	"github.com/gophercloud/gophercloud/v2"
)

// Session is a Keystone login and the HTTP client to use with it, for calls to a service
// that is not one of OpenStack's own (computeha's HA API): it gives the login's token and
// logs in again when a service refuses it.
type Session struct {
	pc *gophercloud.ProviderClient
}

// NewSession logs in as the clouds.yaml entry opts names (only Cloud, CloudsFile, Region,
// EndpointType, CACertFile, Insecure, HTTPClient, DialContext, CallTimeout, Retry and Logger
// are used). Errors are New's.
func NewSession(ctx context.Context, opts Options) (*Session, error) {
	_, pc, _, _, err := logIn(ctx, opts, "")
	if err != nil {
		return nil, err
	}
	return &Session{pc: pc}, nil
}

// Token is the login's current token.
func (s *Session) Token() string { return s.pc.Token() }

// Relogin logs in again (after a service refused Token), unless another caller did since
// the token old was current.
func (s *Session) Relogin(ctx context.Context, old string) error {
	return s.pc.Reauthenticate(ctx, old)
}

// LazySession is a Session made at first use, and made again after a failed attempt: a
// process that must start while Keystone is away (an instance monitor) logs in once it can.
type LazySession struct {
	opts Options
	mu   sync.Mutex
	s    *Session
}

// NewLazySession returns a LazySession for opts (see NewSession).
func NewLazySession(opts Options) *LazySession { return &LazySession{opts: opts} }

func (l *LazySession) get(ctx context.Context) (*Session, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.s != nil {
		return l.s, nil
	}
	s, err := NewSession(ctx, l.opts)
	if err != nil {
		return nil, err
	}
	l.s = s
	return s, nil
}

// Token is the login's token, logging in first if need be.
func (l *LazySession) Token(ctx context.Context) (string, error) {
	s, err := l.get(ctx)
	if err != nil {
		return "", err
	}
	return s.Token(), nil
}

// Relogin logs in again after a service refused the token old.
func (l *LazySession) Relogin(ctx context.Context, old string) error {
	s, err := l.get(ctx)
	if err != nil {
		return err
	}
	return s.Relogin(ctx, old)
}

// Do sends req with the login's HTTP client (after Token).
func (l *LazySession) Do(req *http.Request) (*http.Response, error) {
	s, err := l.get(req.Context())
	if err != nil {
		return nil, err
	}
	return s.pc.HTTPClient.Do(req)
}
