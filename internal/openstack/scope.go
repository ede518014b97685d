package openstack

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/gophercloud/gophercloud/v2"
	gcopenstack "github.com/gophercloud/gophercloud/v2/openstack"
	tokens3 "github.com/gophercloud/gophercloud/v2/openstack/identity/v3/tokens"
)

// refusal is Keystone's refusal to scope the login's token to a project.
type refusal struct {
	err error
	at  time.Time
}

// refusalTTL is how long a refusal is believed: long enough that a recovery recreating many
// servers of one project asks once, short enough that a role granted meanwhile is soon used.
const refusalTTL = time.Minute

// computeFor returns a compute client whose token is scoped to projectID, since Nova creates a
// server in the project of the token that asks. It is the login's own client for the login's
// project; for another one, the login's token is rescoped once (Keystone's "token" method: the
// token vouches for the user, so no password is sent again) and the client kept. A kept client
// whose token is refused gets a new one the same way, from the login's current token.
//
// It fails with ErrForbidden when Keystone will not scope a token to projectID: the cloud user
// has no role there.
func (c *nova) computeFor(ctx context.Context, projectID string) (*gophercloud.ServiceClient, error) {
	if projectID == "" || projectID == c.projectID {
		return c.compute, nil
	}
	// One lock for every project: rescoping is rare, and this way no two requests for one
	// project's token race.
	c.scopedMu.Lock()
	defer c.scopedMu.Unlock()
	if sc := c.scoped[projectID]; sc != nil {
		return sc, nil
	}
	if r, ok := c.refused[projectID]; ok && time.Since(r.at) < refusalTTL {
		return nil, r.err
	}
	pc := &gophercloud.ProviderClient{
		IdentityBase: c.pc.IdentityBase, IdentityEndpoint: c.pc.IdentityEndpoint,
		HTTPClient: c.pc.HTTPClient, UserAgent: c.pc.UserAgent,
	}
	pc.UseTokenLock()
	eo := c.eo
	eo.Type = "compute"
	eo.ApplyDefaults("compute")
	var endpoint string
	op := "getting a token for project " + projectID
	err := c.do(ctx, "identity", op, true, func(ctx context.Context) error {
		tok, catalog, err := c.scopedToken(ctx, projectID)
		if err != nil {
			return err
		}
		// The project's own catalog: an old catalog names the project in the compute URL.
		if endpoint, err = gcopenstack.V3Endpoint(ctx, pc, catalog, eo); err != nil {
			return fmt.Errorf("no compute endpoint in project %s's catalog: %w", projectID, err)
		}
		pc.SetToken(tok)
		return nil
	})
	if err != nil {
		if errors.Is(err, ErrForbidden) {
			if c.refused == nil {
				c.refused = map[string]refusal{}
			}
			c.refused[projectID] = refusal{err: err, at: time.Now()}
		}
		return nil, err
	}
	pc.ReauthFunc = func(ctx context.Context) error {
		tok, _, err := c.scopedToken(ctx, projectID)
		if err != nil {
			return err
		}
		pc.SetToken(tok)
		return nil
	}
	sc := &gophercloud.ServiceClient{ProviderClient: pc, Endpoint: endpoint, Type: "compute", Microversion: ComputeMicroversion}
	if c.scoped == nil {
		c.scoped = map[string]*gophercloud.ServiceClient{}
	}
	c.scoped[projectID] = sc
	return sc, nil
}

// scopedToken asks Keystone for a token of the login's user scoped to projectID, with the
// "token" method. Keystone answers 401 (or 404) both when the login's own token has expired
// and when the user has no role in the project, so on the first such answer the login logs in
// again and asks once more; a second refusal is the project's.
func (c *nova) scopedToken(ctx context.Context, projectID string) (string, *tokens3.ServiceCatalog, error) {
	for retried := false; ; retried = true {
		base := c.pc.Token()
		res := tokens3.Create(ctx, c.identity, &tokens3.AuthOptions{TokenID: base, Scope: tokens3.Scope{ProjectID: projectID}})
		if res.Err == nil {
			tok, err := res.ExtractTokenID()
			if err != nil {
				return "", nil, err
			}
			catalog, err := res.ExtractServiceCatalog()
			if err != nil {
				return "", nil, err
			}
			return tok, catalog, nil
		}
		rc, ok := responseCode(res.Err)
		if !ok {
			return "", nil, res.Err
		}
		switch rc.Actual {
		case http.StatusUnauthorized, http.StatusNotFound:
			if !retried {
				if err := c.pc.Reauthenticate(ctx, base); err != nil {
					return "", nil, fmt.Errorf("logging in again before rescoping: %w", classify("identity", err))
				}
				continue
			}
		case http.StatusForbidden:
			// Keystone forbids rescoping some tokens outright, an application credential's
			// among them: they are bound to their project.
			return "", nil, fmt.Errorf("the cloud user's token cannot be scoped to project %s (an application "+
				"credential's cannot), so a server cannot be recreated there: %w (%v)", projectID, ErrForbidden, newAPIError("identity", rc))
		default:
			return "", nil, res.Err
		}
		// %v, not %w, for Keystone's answer: the error is ErrForbidden, not ErrUnauthorized,
		// whose callers would check the credentials.
		return "", nil, fmt.Errorf("the cloud user has no role in project %s, so a server cannot be recreated there: %w (%v)",
			projectID, ErrForbidden, newAPIError("identity", rc))
	}
}

// --- key pairs ------------------------------------------------------------------------------

// copiedKeyName is the name a key pair of owner is imported under for the client's user:
// deterministic, so a second recreation finds the first copy, and within Nova's 255 characters.
func copiedKeyName(owner, name string) string {
	short := owner
	if len(short) > 8 {
		short = short[:8]
	}
	n := "computeha-" + short + "-" + name
	if len(n) > 255 {
		n = n[:255]
	}
	return n
}

type keypairJSON struct {
	Name      string `json:"name"`
	PublicKey string `json:"public_key"`
	Type      string `json:"type"`
}

// copyKeyPair makes the key pair name of user owner usable by the client's user (Nova looks a
// server's key_name up among the key pairs of the user who creates it) and returns the name
// to create with. It reads the owner's public key as admin (2.10+), and imports it under
// copiedKeyName unless a key pair of that name already holds the same public key. A copy that
// holds another key is a conflict: someone else made it, and overwriting it is not ours to do.
func (c *nova) copyKeyPair(ctx context.Context, owner, name string) (string, error) {
	c.keysMu.Lock()
	defer c.keysMu.Unlock()
	op := fmt.Sprintf("copying key pair %s of user %s", name, owner)
	var src struct {
		Keypair keypairJSON `json:"keypair"`
	}
	q := url.Values{"user_id": {owner}}
	err := c.getJSON(ctx, c.compute, "compute", op, c.compute.ServiceURL("os-keypairs", url.PathEscape(name))+"?"+q.Encode(), &src)
	if err != nil {
		return "", err
	}
	copied := copiedKeyName(owner, name)
	same := func() (bool, error) {
		var own struct {
			Keypair keypairJSON `json:"keypair"`
		}
		err := c.getJSON(ctx, c.compute, "compute", op, c.compute.ServiceURL("os-keypairs", url.PathEscape(copied)), &own)
		if err != nil {
			return false, err
		}
		if strings.TrimSpace(own.Keypair.PublicKey) != strings.TrimSpace(src.Keypair.PublicKey) {
			return false, fmt.Errorf("%s: the cloud user's key pair %s holds another public key: %w", op, copied, ErrConflict)
		}
		return true, nil
	}
	switch ok, err := same(); {
	case ok:
		return copied, nil
	case !IsNotFound(err):
		return "", err
	}
	kp := map[string]string{"name": copied, "public_key": src.Keypair.PublicKey}
	if src.Keypair.Type != "" {
		kp["type"] = src.Keypair.Type
	}
	body := map[string]any{"keypair": kp}
	err = c.do(ctx, "compute", op, false, func(ctx context.Context) error {
		_, err := c.compute.Post(ctx, c.compute.ServiceURL("os-keypairs"), body, nil,
			&gophercloud.RequestOpts{OkCodes: []int{http.StatusOK, http.StatusCreated}})
		return err
	})
	if IsConflict(err) {
		// Imported meanwhile, by another computeha: fine if it is the same key.
		_, err = same()
	}
	if err != nil {
		return "", err
	}
	return copied, nil
}
