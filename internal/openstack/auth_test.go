package openstack

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

const serviceListBody = `{"services": [{
	"id": "e81d66a4-ddd3-4aba-8a84-171d1cb4d339", "binary": "nova-compute", "host": "compute1",
	"zone": "nova", "status": "enabled", "state": "up", "forced_down": false,
	"disabled_reason": null, "updated_at": "2024-05-01T10:00:05.000000"}]}`

func TestLoginFromCloudsYAMLGetsOneTokenAndReusesIt(t *testing.T) {
	tests := []struct {
		name      string
		auth      string
		wantLogin string
	}{
		{
			name: "a password login names the user and the project in their domains",
			auth: passwordAuth,
			wantLogin: `{"auth": {
				"identity": {"methods": ["password"], "password": {"user": {
					"name": "computeha", "password": "` + testPassword + `", "domain": {"name": "Default"}}}},
				"scope": {"project": {"name": "service", "domain": {"name": "Default"}}}}}`,
		},
		{
			name: "an application credential login sends id and secret and no scope",
			auth: appCredAuth,
			wantLogin: `{"auth": {"identity": {"methods": ["application_credential"],
				"application_credential": {"id": "21dced0fd20347869b93710d2b98aae0", "secret": "` + testAppSecret + `"}}}}`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newTestCloud(t)
			c.mux.HandleFunc("/compute/v2.1/os-services", func(w http.ResponseWriter, r *http.Request) {
				reply(w, http.StatusOK, serviceListBody)
			})
			cl, err := New(context.Background(), Options{Cloud: "lab", CloudsFile: c.cloudsYAML(tt.auth), Retry: fastRetry})
			if err != nil {
				t.Fatalf("New: %v", err)
			}
			for range 3 {
				if _, err := cl.FindComputeService(context.Background(), "compute1"); err != nil {
					t.Fatalf("FindComputeService: %v", err)
				}
			}
			if got := c.loginCount(); got != 1 {
				t.Errorf("logins = %d, want 1 for three calls", got)
			}
			var got, want any
			if err := json.Unmarshal([]byte(c.loginBodies[0]), &got); err != nil {
				t.Fatal(err)
			}
			if err := json.Unmarshal([]byte(tt.wantLogin), &want); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("token request body (-want +got):\n%s", diff)
			}
		})
	}
}

func TestCloudsFileComesFromOSClientConfigFileWhenNoPathIsGiven(t *testing.T) {
	c := newTestCloud(t)
	c.mux.HandleFunc("/compute/v2.1/os-services", func(w http.ResponseWriter, r *http.Request) {
		reply(w, http.StatusOK, serviceListBody)
	})
	t.Setenv("OS_CLIENT_CONFIG_FILE", c.cloudsYAML(passwordAuth))
	cl, err := New(context.Background(), Options{Cloud: "lab", Retry: fastRetry})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	if _, err := cl.FindComputeService(context.Background(), "compute1"); err != nil {
		t.Fatalf("FindComputeService: %v", err)
	}
}

func TestRegionAndEndpointTypeChooseTheCatalogEndpoint(t *testing.T) {
	tests := []struct {
		name     string
		region   string
		endpoint string
		wantPath string
	}{
		{name: "the clouds.yaml entry's region and interface are used by default", wantPath: "/compute/v2.1/os-services"},
		{name: "a region option overrides region_name", region: "RegionTwo", wantPath: "/two/compute/v2.1/os-services"},
		{name: "an endpoint type option overrides interface", endpoint: "public", wantPath: "/public/compute/v2.1/os-services"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newTestCloud(t)
			var got string
			c.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
				got = r.URL.Path
				reply(w, http.StatusOK, serviceListBody)
			})
			cl, err := New(context.Background(), Options{
				Cloud: "lab", CloudsFile: c.cloudsYAML(passwordAuth), Region: tt.region, EndpointType: tt.endpoint, Retry: fastRetry,
			})
			if err != nil {
				t.Fatalf("New: %v", err)
			}
			if _, err := cl.FindComputeService(context.Background(), "compute1"); err != nil {
				t.Fatalf("FindComputeService: %v", err)
			}
			if got != tt.wantPath {
				t.Errorf("request path = %q, want %q", got, tt.wantPath)
			}
		})
	}
}

func TestExpiredTokenIsReplacedByOneNewLoginAndTheCallSucceeds(t *testing.T) {
	c := newTestCloud(t)
	c.mux.HandleFunc("/compute/v2.1/os-services", func(w http.ResponseWriter, r *http.Request) {
		reply(w, http.StatusOK, serviceListBody)
	})
	cl := c.client()
	c.expireTokens()
	if _, err := cl.FindComputeService(context.Background(), "compute1"); err != nil {
		t.Fatalf("FindComputeService after the token expired: %v", err)
	}
	if got := c.loginCount(); got != 2 {
		t.Errorf("logins = %d, want 2 (the first and one after the 401)", got)
	}
}

func TestRefusedCredentialsAreUnauthorizedAndNeverShowTheSecret(t *testing.T) {
	c := newTestCloud(t)
	c.mux.HandleFunc("/compute/v2.1/os-services", func(w http.ResponseWriter, r *http.Request) {
		reply(w, http.StatusOK, serviceListBody)
	})

	t.Run("at the first login", func(t *testing.T) {
		c.refuseLogin = true
		defer func() { c.refuseLogin = false }()
		_, err := New(context.Background(), Options{Cloud: "lab", CloudsFile: c.cloudsYAML(passwordAuth), Retry: fastRetry})
		if !IsUnauthorized(err) {
			t.Fatalf("New: err = %v, want unauthorized", err)
		}
		if strings.Contains(err.Error(), testPassword) {
			t.Errorf("error text shows the password: %v", err)
		}
	})
	t.Run("at a login after the token expired", func(t *testing.T) {
		cl := c.client()
		c.expireTokens()
		c.refuseLogin = true
		defer func() { c.refuseLogin = false }()
		_, err := cl.FindComputeService(context.Background(), "compute1")
		if !IsUnauthorized(err) {
			t.Fatalf("err = %v, want unauthorized", err)
		}
		if strings.Contains(err.Error(), testPassword) {
			t.Errorf("error text shows the password: %v", err)
		}
	})
}

func TestKeystoneThatCannotBeReachedIsUnavailableAfterRetries(t *testing.T) {
	c := newTestCloud(t)
	path := c.cloudsYAML(passwordAuth)
	c.srv.Close()
	start := time.Now()
	_, err := New(context.Background(), Options{Cloud: "lab", CloudsFile: path, Retry: fastRetry})
	if !IsUnavailable(err) {
		t.Fatalf("err = %v, want unavailable", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("gave up after %s, want the bounded retry budget (well under 2 s)", d)
	}
}

func TestBadConfigurationIsRefusedWithAClearError(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	entry := func(auth string) string {
		return "clouds:\n  lab:\n    auth:\n      auth_url: http://127.0.0.1:1/v3\n" + auth
	}
	tests := []struct {
		name    string
		opts    Options
		wantErr string
	}{
		{name: "no cloud name", opts: Options{CloudsFile: write("a.yaml", entry(passwordAuth))}, wantErr: "no cloud name"},
		{name: "a clouds file that does not exist", opts: Options{Cloud: "lab", CloudsFile: filepath.Join(dir, "missing.yaml")}, wantErr: "no such file"},
		{name: "a cloud the file does not have", opts: Options{Cloud: "other", CloudsFile: write("b.yaml", entry(passwordAuth))}, wantErr: `"other" not found`},
		{name: "an entry without an auth section", opts: Options{Cloud: "lab", CloudsFile: write("c.yaml", "clouds:\n  lab:\n    region_name: RegionOne\n")}, wantErr: "no auth section"},
		{
			name:    "a user name without its domain",
			opts:    Options{Cloud: "lab", CloudsFile: write("d.yaml", entry("      username: u\n      password: "+testPassword+"\n      project_id: p\n"))},
			wantErr: "user_domain_name",
		},
		{
			name: "a project name without its domain",
			opts: Options{Cloud: "lab", CloudsFile: write("e.yaml", entry(
				"      username: u\n      password: "+testPassword+"\n      user_domain_id: default\n      project_name: p\n"))},
			wantErr: "project_domain_name",
		},
		{name: "a bare token, which cannot be renewed", opts: Options{Cloud: "lab", CloudsFile: write("f.yaml", entry("      token: abc\n      project_id: p\n"))}, wantErr: "token login"},
		{name: "an application credential without secret", opts: Options{Cloud: "lab", CloudsFile: write("g.yaml", entry("      application_credential_id: x\n"))}, wantErr: "application_credential_secret"},
		{name: "an unknown endpoint type", opts: Options{Cloud: "lab", CloudsFile: write("h.yaml", entry(passwordAuth)), EndpointType: "private"}, wantErr: "want public, internal or admin"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New(context.Background(), tt.opts)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("err = %v, want one containing %q", err, tt.wantErr)
			}
			if strings.Contains(err.Error(), testPassword) {
				t.Errorf("error text shows the password: %v", err)
			}
		})
	}
}

func TestInjectedTransportCarriesEveryRequest(t *testing.T) {
	c := newTestCloud(t)
	c.mux.HandleFunc("/compute/v2.1/os-services", func(w http.ResponseWriter, r *http.Request) {
		reply(w, http.StatusOK, serviceListBody)
	})
	rt := &countingTransport{next: http.DefaultTransport}
	cl, err := New(context.Background(), Options{
		Cloud: "lab", CloudsFile: c.cloudsYAML(passwordAuth), HTTPClient: &http.Client{Transport: rt}, Retry: fastRetry,
	})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	if _, err := cl.FindComputeService(context.Background(), "compute1"); err != nil {
		t.Fatal(err)
	}
	if rt.n != 2 {
		t.Errorf("requests through the injected transport = %d, want 2 (login and list)", rt.n)
	}
}

type countingTransport struct {
	next http.RoundTripper
	n    int
}

func (c *countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	c.n++
	return c.next.RoundTrip(r)
}

func TestErrorKindsAreClassifiedByErrorsIs(t *testing.T) {
	err := newAPIError("compute", gophercloudErr("POST", "/v2.1/servers/x/action", 400, "Compute service of compute1 is still in use."))
	for _, kind := range []error{ErrBadRequest, ErrSourceServiceUp} {
		if !errors.Is(err, kind) {
			t.Errorf("errors.Is(%v, %v) = false", err, kind)
		}
	}
	if errors.Is(err, ErrConflict) || IsEvacuationsPending(err) {
		t.Errorf("%v classified as conflict or pending evacuations", err)
	}
	want := "compute POST /v2.1/servers/x/action: 400 Bad Request: Compute service of compute1 is still in use."
	if got := err.Error(); got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
}
