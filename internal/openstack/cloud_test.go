package openstack

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// testCloud is an httptest server playing Keystone v3 (tokens with a catalog pointing back at
// itself), Nova, Placement, Glance and Neutron. Tests register the service paths they exercise.
type testCloud struct {
	t   *testing.T
	srv *httptest.Server
	mux *http.ServeMux

	mu           sync.Mutex
	logins       int
	loginBodies  []string
	tokens       map[string]bool // tokens the services accept
	refused      int             // requests the services refused for their token
	refuseLogin  bool            // Keystone answers 401 to every login
	keystoneDown bool            // Keystone answers 503 to every token request
	noNetwork    bool            // the catalog has no network endpoint
	// rescoping with the "token" method: the projects the user has a role in besides the
	// login's, the project of each token, and the rescopes asked for.
	projects     map[string]bool
	tokenProject map[string]string
	rescopes     []string
}

// The login's user and project, as every password or application credential login returns.
const (
	testUserID    = "5a3a2f9b3c2e4b1c9d9e0f1a2b3c4d5e"
	testProjectID = "8538a3f13f9541b28c2620eb19065e45"
)

const (
	testPassword  = "s3cr3t-pa55"
	testAppSecret = "app-s3cr3t"
)

func newTestCloud(t *testing.T) *testCloud {
	t.Helper()
	c := &testCloud{
		t: t, mux: http.NewServeMux(), tokens: map[string]bool{},
		projects: map[string]bool{}, tokenProject: map[string]string{},
	}
	c.mux.HandleFunc("POST /identity/v3/auth/tokens", c.login)
	c.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !strings.HasPrefix(r.URL.Path, "/identity/") {
			c.mu.Lock()
			ok := c.tokens[r.Header.Get("X-Auth-Token")]
			if !ok {
				c.refused++
			}
			c.mu.Unlock()
			if !ok {
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(http.StatusUnauthorized)
				_, _ = io.WriteString(w, `{"error": {"code": 401, "title": "Unauthorized", "message": "The request you have made requires authentication."}}`)
				return
			}
		}
		c.mux.ServeHTTP(w, r)
	}))
	t.Cleanup(c.srv.Close)
	return c
}

// expireTokens makes the services refuse every token issued so far.
func (c *testCloud) expireTokens() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.tokens = map[string]bool{}
}

// locked runs f with the cloud's lock held, for tests that change how it answers.
func (c *testCloud) locked(f func()) {
	c.mu.Lock()
	defer c.mu.Unlock()
	f()
}

func (c *testCloud) loginCount() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.logins
}

// projectOf returns the project of the token r carries.
func (c *testCloud) projectOf(r *http.Request) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.tokenProject[r.Header.Get("X-Auth-Token")]
}

func (c *testCloud) login(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	var req struct {
		Auth struct {
			Identity struct {
				Methods []string `json:"methods"`
				Token   struct {
					ID string `json:"id"`
				} `json:"token"`
			} `json:"identity"`
			Scope struct {
				Project struct {
					ID string `json:"id"`
				} `json:"project"`
			} `json:"scope"`
		} `json:"auth"`
	}
	_ = json.Unmarshal(body, &req)
	c.mu.Lock()
	if c.keystoneDown {
		c.mu.Unlock()
		reply(w, http.StatusServiceUnavailable, `<html><body><h1>503 Service Unavailable</h1></body></html>`)
		return
	}
	if len(req.Auth.Identity.Methods) == 1 && req.Auth.Identity.Methods[0] == "token" {
		c.mu.Unlock()
		c.rescope(w, req.Auth.Identity.Token.ID, req.Auth.Scope.Project.ID)
		return
	}
	c.logins++
	n := c.logins
	c.loginBodies = append(c.loginBodies, string(body))
	refuse := c.refuseLogin
	if !refuse {
		c.tokens[fmt.Sprintf("gAAAAAB-token-%d", n)] = true
		c.tokenProject[fmt.Sprintf("gAAAAAB-token-%d", n)] = testProjectID
	}
	c.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	if refuse {
		w.WriteHeader(http.StatusUnauthorized)
		_, _ = io.WriteString(w, `{"error": {"code": 401, "title": "Unauthorized", "message": "The request you have made requires authentication."}}`)
		return
	}
	methods := `["password"]`
	if strings.Contains(string(body), "application_credential") {
		methods = `["application_credential"]`
	}
	w.Header().Set("X-Subject-Token", fmt.Sprintf("gAAAAAB-token-%d", n))
	w.WriteHeader(http.StatusCreated)
	c.writeToken(w, methods, testProjectID, "service")
}

// writeToken writes a token body whose catalog points back at this server.
func (c *testCloud) writeToken(w io.Writer, methods, projectID, projectName string) {
	base := c.srv.URL
	c.mu.Lock()
	noNetwork := c.noNetwork
	c.mu.Unlock()
	endpoints := func(path string) string {
		return fmt.Sprintf(`[
			{"id": "e-%[2]s-pub", "interface": "public", "region": "RegionOne", "region_id": "RegionOne", "url": "%[1]s/public%[2]s"},
			{"id": "e-%[2]s-int", "interface": "internal", "region": "RegionOne", "region_id": "RegionOne", "url": "%[1]s%[2]s"},
			{"id": "e-%[2]s-two", "interface": "internal", "region": "RegionTwo", "region_id": "RegionTwo", "url": "%[1]s/two%[2]s"}]`,
			base, path)
	}
	network := `,
			{"id": "c-network", "type": "network", "name": "neutron", "endpoints": ` + endpoints("/network") + `}`
	if noNetwork {
		network = ""
	}
	_, _ = fmt.Fprintf(w, `{"token": {
		"methods": %s,
		"user": {"domain": {"id": "default", "name": "Default"}, "id": "%s", "name": "computeha", "password_expires_at": null},
		"audit_ids": ["3T2dc1CGQxyJsHdDu1xkcw"],
		"expires_at": "%s",
		"issued_at": "%s",
		"project": {"domain": {"id": "default", "name": "Default"}, "id": "%s", "name": "%s"},
		"is_domain": false,
		"roles": [{"id": "0d9f3a8e5b6c4d2e8f1a2b3c4d5e6f70", "name": "admin"}, {"id": "1e2f", "name": "reader"}],
		"catalog": [
			{"id": "c-identity", "type": "identity", "name": "keystone", "endpoints": %s},
			{"id": "c-compute", "type": "compute", "name": "nova", "endpoints": %s},
			{"id": "c-placement", "type": "placement", "name": "placement", "endpoints": %s},
			{"id": "c-image", "type": "image", "name": "glance", "endpoints": %s}%s
		]}}`,
		methods, testUserID, time.Now().Add(time.Hour).UTC().Format("2006-01-02T15:04:05.000000Z"),
		time.Now().UTC().Format("2006-01-02T15:04:05.000000Z"), projectID, projectName,
		endpoints("/identity/v3"), endpoints("/compute/v2.1"), endpoints("/placement"), endpoints("/image"), network)
}

// rescope answers a "token" method request as Keystone does: 401 for a token it does not
// accept or a project the user has no role in, else a token scoped to the project.
func (c *testCloud) rescope(w http.ResponseWriter, tokenID, projectID string) {
	c.mu.Lock()
	c.rescopes = append(c.rescopes, projectID)
	ok := c.tokens[tokenID] && (c.projects[projectID] || projectID == testProjectID)
	tok := fmt.Sprintf("gAAAAAB-scoped-%s-%d", projectID, len(c.rescopes))
	if ok {
		c.tokens[tok] = true
		c.tokenProject[tok] = projectID
	}
	c.mu.Unlock()
	if !ok {
		reply(w, http.StatusUnauthorized, `{"error": {"code": 401, "title": "Unauthorized", "message": "The request you have made requires authentication."}}`)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Subject-Token", tok)
	w.WriteHeader(http.StatusCreated)
	c.writeToken(w, `["token", "password"]`, projectID, "tenant-"+projectID)
}

func (c *testCloud) rescopeCount() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.rescopes)
}

// cloudsYAML writes a clouds.yaml for this server and returns its path. auth is the YAML of the
// auth section's credential lines.
func (c *testCloud) cloudsYAML(auth string) string {
	c.t.Helper()
	p := filepath.Join(c.t.TempDir(), "clouds.yaml")
	content := fmt.Sprintf(`clouds:
  lab:
    auth:
      auth_url: %s/identity/v3
%s    region_name: RegionOne
    interface: internal
    identity_api_version: 3
`, c.srv.URL, auth)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		c.t.Fatal(err)
	}
	return p
}

const passwordAuth = `      username: computeha
      password: ` + testPassword + `
      user_domain_name: Default
      project_name: service
      project_domain_name: Default
`

const appCredAuth = `      application_credential_id: 21dced0fd20347869b93710d2b98aae0
      application_credential_secret: ` + testAppSecret + `
`

// fastRetry keeps retry tests quick.
var fastRetry = RetryPolicy{Attempts: 3, BaseDelay: time.Millisecond, MaxDelay: 5 * time.Millisecond}

// client logs in with password credentials.
func (c *testCloud) client() Client {
	c.t.Helper()
	cl, err := New(context.Background(), Options{
		Cloud: "lab", CloudsFile: c.cloudsYAML(passwordAuth), Retry: fastRetry, CallTimeout: 5 * time.Second,
	})
	if err != nil {
		c.t.Fatalf("New: %v", err)
	}
	return cl
}

// request is what a test expects one request to carry.
type request struct {
	method string
	path   string
	query  url.Values // nil: no query
	body   string     // JSON; "" for no body
	// version is the expected compute or placement microversion; "" for no version header.
	version string
}

// check compares r with want and reports every difference.
func (want request) check(t *testing.T, r *http.Request) {
	t.Helper()
	if r.Method != want.method || r.URL.Path != want.path {
		t.Errorf("request = %s %s, want %s %s", r.Method, r.URL.Path, want.method, want.path)
	}
	gotQuery := r.URL.Query()
	if len(gotQuery) == 0 {
		gotQuery = nil
	}
	if diff := cmp.Diff(want.query, gotQuery); diff != "" {
		t.Errorf("%s %s query (-want +got):\n%s", r.Method, r.URL.Path, diff)
	}
	switch {
	case strings.HasPrefix(r.URL.Path, "/compute/"):
		if got := r.Header.Get("X-OpenStack-Nova-API-Version"); got != want.version {
			t.Errorf("X-OpenStack-Nova-API-Version = %q, want %q", got, want.version)
		}
		if got, w := r.Header.Get("OpenStack-API-Version"), "compute "+want.version; got != w {
			t.Errorf("OpenStack-API-Version = %q, want %q", got, w)
		}
	case strings.HasPrefix(r.URL.Path, "/placement/"):
		if got, w := r.Header.Get("OpenStack-API-Version"), "placement "+want.version; got != w {
			t.Errorf("OpenStack-API-Version = %q, want %q", got, w)
		}
	}
	body, _ := io.ReadAll(r.Body)
	if want.body == "" {
		if len(body) != 0 {
			t.Errorf("%s %s sent body %s, want none", r.Method, r.URL.Path, body)
		}
		return
	}
	if ct := r.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type = %q, want application/json", ct)
	}
	var gotBody, wantBody any
	if err := json.Unmarshal(body, &gotBody); err != nil {
		t.Fatalf("request body %q: %v", body, err)
	}
	if err := json.Unmarshal([]byte(want.body), &wantBody); err != nil {
		t.Fatalf("bad test: want body %q: %v", want.body, err)
	}
	if diff := cmp.Diff(wantBody, gotBody); diff != "" {
		t.Errorf("%s %s body (-want +got):\n%s", r.Method, r.URL.Path, diff)
	}
}

// reply writes a JSON answer.
func reply(w http.ResponseWriter, status int, body string) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Openstack-Request-Id", "req-5c2c1b4e-7a8f-4d1e-9b0a-3f2e1d0c9b8a")
	w.WriteHeader(status)
	_, _ = io.WriteString(w, body)
}
