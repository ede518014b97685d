package openstack

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"time"

	"github.com/gophercloud/gophercloud/v2"
	gcopenstack "github.com/gophercloud/gophercloud/v2/openstack"
	tokens3 "github.com/gophercloud/gophercloud/v2/openstack/identity/v3/tokens"
)

// A kept login is a Keystone token with its catalog, written to a file (Options.LoginFile) by
// one short-lived process and taken up by the next: an agent's monitor that logged in anew
// every few seconds on every compute would make Keystone check a password each time (a
// deliberately slow hash), which on a cloud of a few dozen computes is most of Keystone's
// work and slows every other call. The file holds a bearer token: it is written with mode
// 0600, and is worth no more than the clouds.yaml beside it, which holds the password.

// loginMargin is how long a kept token must still be valid to be taken up: longer than any
// one invocation of the processes that keep one.
const loginMargin = 5 * time.Minute

// keptLogin is the content of a login file.
type keptLogin struct {
	// Key identifies the credentials and endpoint the token was issued for: a login kept
	// for others (the clouds.yaml changed) is not taken up.
	Key       string                 `json:"key"`
	Token     string                 `json:"token"`
	ExpiresAt time.Time              `json:"expires_at"`
	ProjectID string                 `json:"project_id,omitempty"`
	UserID    string                 `json:"user_id,omitempty"`
	Catalog   tokens3.ServiceCatalog `json:"catalog"`
}

// loginKey is a digest of what a login is made of: the identity endpoint, the credentials and
// the scope. A password changed in the clouds.yaml changes it.
func loginKey(ao gophercloud.AuthOptions) string {
	b, _ := json.Marshal(struct {
		Endpoint, UserID, Username, Password, DomainID, DomainName  string
		TenantID, TenantName, AppCredID, AppCredName, AppCredSecret string
		Scope                                                       *gophercloud.AuthScope
	}{
		ao.IdentityEndpoint, ao.UserID, ao.Username, ao.Password, ao.DomainID, ao.DomainName,
		ao.TenantID, ao.TenantName, ao.ApplicationCredentialID, ao.ApplicationCredentialName, ao.ApplicationCredentialSecret,
		ao.Scope,
	})
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// readLogin returns the login kept in path for key if it is valid for loginMargin after now;
// a missing, unreadable, foreign or stale file is no login, never an error.
func readLogin(path, key string, now time.Time) (*keptLogin, bool) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, false
	}
	var l keptLogin
	if json.Unmarshal(b, &l) != nil || l.Key != key || l.Token == "" || len(l.Catalog.Entries) == 0 ||
		!l.ExpiresAt.After(now.Add(loginMargin)) {
		return nil, false
	}
	return &l, true
}

// keepLogin writes pc's login to path (mode 0600, through a file renamed into place, so that
// a reader never sees half of one).
func keepLogin(pc *gophercloud.ProviderClient, path, key string) error {
	r, ok := pc.GetAuthResult().(tokens3.CreateResult)
	if !ok {
		return errors.New("the login has no token to keep")
	}
	tok, err := r.ExtractToken()
	if err != nil {
		return err
	}
	cat, err := r.ExtractServiceCatalog()
	if err != nil {
		return err
	}
	l := keptLogin{Key: key, Token: tok.ID, ExpiresAt: tok.ExpiresAt, Catalog: *cat}
	l.ProjectID, l.UserID = tokenOwner(pc)
	b, err := json.Marshal(l)
	if err != nil {
		return err
	}
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	if err := f.Chmod(0o600); err != nil {
		f.Close()
		return err
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), path)
}

// useKeptLogin makes pc use l: its token, and its catalog to find endpoints. A token Keystone
// no longer accepts (revoked early) is replaced by a new login when a service refuses it, as
// after an expiry, and that login is kept in turn.
func (c *nova) useKeptLogin(pc *gophercloud.ProviderClient, l *keptLogin, ao gophercloud.AuthOptions, path string) {
	pc.SetToken(l.Token)
	cat := l.Catalog
	pc.EndpointLocator = func(eo gophercloud.EndpointOpts) (string, error) {
		// As gophercloud's own login does; serviceClient asks no version, so nothing is
		// discovered over the network and the context is never used.
		return gcopenstack.V3Endpoint(context.Background(), pc, &cat, eo)
	}
	once := ao
	once.AllowReauth = false
	pc.ReauthFunc = func(ctx context.Context) error {
		fresh := &gophercloud.ProviderClient{
			IdentityBase: pc.IdentityBase, IdentityEndpoint: pc.IdentityEndpoint,
			HTTPClient: pc.HTTPClient, UserAgent: pc.UserAgent,
		}
		if err := gcopenstack.Authenticate(ctx, fresh, once); err != nil {
			return err
		}
		pc.CopyTokenFrom(fresh)
		c.keep(fresh, path, loginKey(ao))
		return nil
	}
}

// keep writes the login to path, saying so when it cannot: the next process then logs in
// itself, which works, only slower.
func (c *nova) keep(pc *gophercloud.ProviderClient, path, key string) {
	if err := keepLogin(pc, path, key); err != nil {
		c.log.Warn("keeping the Keystone login for the next call failed; it logs in again", "file", path, "error", err)
	}
}

// loginOwner is the project and user of a kept login, or of pc's own.
func loginOwner(pc *gophercloud.ProviderClient, l *keptLogin) (projectID, userID string) {
	if l != nil {
		return l.ProjectID, l.UserID
	}
	return tokenOwner(pc)
}
