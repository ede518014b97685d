package openstack

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/gophercloud/gophercloud/v2"
	gcopenstack "github.com/gophercloud/gophercloud/v2/openstack"
	"github.com/gophercloud/gophercloud/v2/openstack/identity/v3/tokens"
)

// TokenInfo is whom a Keystone token stands for.
type TokenInfo struct {
	UserID, UserName string
	// ProjectID is the project the token is scoped to ("" for an unscoped or
	// domain-scoped token).
	ProjectID, ProjectName string
	// Roles are the names of the roles the token carries in that project.
	Roles     []string
	ExpiresAt time.Time
}

// HasRole reports whether the token carries one of roles (names compared as Keystone
// stores them).
func (t TokenInfo) HasRole(roles ...string) bool {
	for _, r := range roles {
		if slices.Contains(t.Roles, r) {
			return true
		}
	}
	return false
}

func (c *nova) Token(ctx context.Context, token string) (TokenInfo, error) {
	if token == "" {
		return TokenInfo{}, fmt.Errorf("validate token: no token: %w", ErrUnauthorized)
	}
	sc, err := gcopenstack.NewIdentityV3(c.pc, gophercloud.EndpointOpts{})
	if err != nil {
		return TokenInfo{}, fmt.Errorf("validate token: identity endpoint: %w", err)
	}
	var info TokenInfo
	err = c.do(ctx, "identity", "validate token", true, func(ctx context.Context) error {
		r := tokens.Get(ctx, sc, token)
		if r.Err != nil {
			return r.Err
		}
		tok, err := r.ExtractToken()
		if err != nil {
			return err
		}
		info = TokenInfo{ExpiresAt: tok.ExpiresAt}
		if u, err := r.ExtractUser(); err == nil {
			info.UserID, info.UserName = u.ID, u.Name
		}
		if p, err := r.ExtractProject(); err == nil && p != nil {
			info.ProjectID, info.ProjectName = p.ID, p.Name
		}
		roles, err := r.ExtractRoles()
		if err != nil {
			return err
		}
		for _, role := range roles {
			info.Roles = append(info.Roles, role.Name)
		}
		return nil
	})
	// Keystone answers 404 for a token it does not know (expired, revoked, made up), and 400
	// for one it cannot even read (not a Fernet token).
	if IsNotFound(err) || errors.Is(err, ErrBadRequest) {
		return TokenInfo{}, fmt.Errorf("%w: %w", ErrUnauthorized, err)
	}
	if err != nil {
		return TokenInfo{}, err
	}
	return info, nil
}

// SetToken makes token valid for the fake's Token, standing for info; an empty info
// (TokenInfo{}) makes it invalid again.
func (f *Fake) SetToken(token string, info TokenInfo) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.tokens == nil {
		f.tokens = map[string]TokenInfo{}
	}
	if info.UserID == "" && info.ProjectID == "" && len(info.Roles) == 0 {
		delete(f.tokens, token)
		return
	}
	f.tokens[token] = info
}

func (f *Fake) Token(ctx context.Context, token string) (TokenInfo, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	// The token itself is a secret: the call is recorded without it.
	if err := f.begin(ctx, "Token"); err != nil {
		return TokenInfo{}, err
	}
	info, ok := f.tokens[token]
	if !ok {
		return TokenInfo{}, fmt.Errorf("validate token: Keystone does not know it: %w", ErrUnauthorized)
	}
	if !info.ExpiresAt.IsZero() && !f.now().Before(info.ExpiresAt) {
		return TokenInfo{}, fmt.Errorf("validate token: expired: %w", ErrUnauthorized)
	}
	info.Roles = slices.Clone(info.Roles)
	return info, nil
}
