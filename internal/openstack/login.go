package openstack

import (
	"context"
	"crypto/rand"
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

	"github.com/computeha/computeha/internal/secretfile"
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

// loginMaxAge is how long a login is taken up after it was kept: its catalog is not read
// again meanwhile, and an endpoint moved elsewhere (a new address, TLS) is followed by the
// next login, not by a refusal of the old token.
const loginMaxAge = 10 * time.Minute

// keptLogin is the content of a login file.
type keptLogin struct {
	// Salt and Key identify the credentials and endpoint the token was issued for, so that
	// a login kept for others (the clouds.yaml changed) is not taken up; salted, the key
	// gives no way to test guesses of the password against it.
	Salt      string                 `json:"salt"`
	Key       string                 `json:"key"`
	KeptAt    time.Time              `json:"kept_at"`
	Token     string                 `json:"token"`
	ExpiresAt time.Time              `json:"expires_at"`
	ProjectID string                 `json:"project_id,omitempty"`
	UserID    string                 `json:"user_id,omitempty"`
	Catalog   tokens3.ServiceCatalog `json:"catalog"`
}

// loginKey is a salted digest of what a login is made of: the identity endpoint, the
// credentials and the scope. A password changed in the clouds.yaml changes it.
func loginKey(ao gophercloud.AuthOptions, salt []byte) string {
	b, _ := json.Marshal(struct {
		Endpoint, UserID, Username, Password, DomainID, DomainName  string
		TenantID, TenantName, AppCredID, AppCredName, AppCredSecret string
		Scope                                                       *gophercloud.AuthScope
	}{
		ao.IdentityEndpoint, ao.UserID, ao.Username, ao.Password, ao.DomainID, ao.DomainName,
		ao.TenantID, ao.TenantName, ao.ApplicationCredentialID, ao.ApplicationCredentialName, ao.ApplicationCredentialSecret,
		ao.Scope,
	})
	h := sha256.New()
	h.Write(salt)
	h.Write(b)
	return hex.EncodeToString(h.Sum(nil))
}

// readLogin returns the login kept in path for ao if it was kept less than loginMaxAge ago
// and is valid for loginMargin after now. A missing, unreadable, foreign or stale file is no
// login, never an error; so is a symbolic link, or a file not of this user or that others may
// read or write: a login planted by someone else could send the next one to them.
func readLogin(path string, ao gophercloud.AuthOptions, now time.Time) (*keptLogin, bool) {
	f, err := secretfile.Open(path)
	if err != nil {
		return nil, false
	}
	defer f.Close()
	var l keptLogin
	if json.NewDecoder(f).Decode(&l) != nil {
		return nil, false
	}
	salt, serr := hex.DecodeString(l.Salt)
	if serr != nil || len(salt) == 0 || l.Key != loginKey(ao, salt) || l.Token == "" || len(l.Catalog.Entries) == 0 ||
		now.Sub(l.KeptAt) > loginMaxAge || l.KeptAt.After(now.Add(time.Minute)) || !l.ExpiresAt.After(now.Add(loginMargin)) {
		return nil, false
	}
	return &l, true
}

// keepLogin writes pc's login for ao to path (mode 0600, through a file renamed into place,
// so that a reader never sees half of one).
func keepLogin(pc *gophercloud.ProviderClient, path string, ao gophercloud.AuthOptions, now time.Time) error {
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
	salt := make([]byte, 16)
	if _, err := rand.Read(salt); err != nil {
		return err
	}
	l := keptLogin{
		Salt: hex.EncodeToString(salt), Key: loginKey(ao, salt), KeptAt: now.UTC(),
		Token: tok.ID, ExpiresAt: tok.ExpiresAt, Catalog: *cat,
	}
	l.ProjectID, l.UserID = tokenOwner(pc)
	b, err := json.Marshal(l)
	if err != nil {
		return err
	}
	// CreateTemp makes the file 0600.
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	_, werr := f.Write(b)
	if err := errors.Join(werr, f.Close()); err != nil {
		_ = os.Remove(f.Name())
		return err
	}
	if err := os.Rename(f.Name(), path); err != nil {
		_ = os.Remove(f.Name())
		return err
	}
	return nil
}

// login logs pc in to Keystone with ao, or, when file is set, takes up the login kept there
// if it is fresh (returned, nil otherwise), and keeps there each login it makes, the ones
// made again after a token is refused included.
func (c *nova) login(ctx context.Context, pc *gophercloud.ProviderClient, ao gophercloud.AuthOptions, file string) (*keptLogin, error) {
	if file != "" {
		if l, ok := readLogin(file, ao, time.Now()); ok {
			c.useKeptLogin(pc, l, ao, file)
			return l, nil
		}
	}
	err := c.do(ctx, "identity", "logging in to Keystone", true, func(ctx context.Context) error {
		return gcopenstack.Authenticate(ctx, pc, ao)
	})
	if err != nil || file == "" {
		return nil, err
	}
	c.keep(pc, file, ao)
	if relogin := pc.ReauthFunc; relogin != nil {
		pc.ReauthFunc = func(ctx context.Context) error {
			if err := relogin(ctx); err != nil {
				return err
			}
			c.keep(pc, file, ao)
			return nil
		}
	}
	return nil, nil
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
		c.keep(fresh, path, ao)
		return nil
	}
}

// keep writes the login to path, saying so when it cannot: the next process then logs in
// itself, which works, only slower.
func (c *nova) keep(pc *gophercloud.ProviderClient, path string, ao gophercloud.AuthOptions) {
	if err := keepLogin(pc, path, ao, time.Now()); err != nil {
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
