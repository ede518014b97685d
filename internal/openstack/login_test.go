package openstack

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// newKept is New with a login file, as an agent's monitor calls it.
func (c *testCloud) newKept(auth, file string) Client {
	c.t.Helper()
	cl, err := New(context.Background(), Options{
		Cloud: "lab", CloudsFile: c.cloudsYAML(auth), Retry: fastRetry, CallTimeout: 5 * time.Second, LoginFile: file,
	})
	if err != nil {
		c.t.Fatalf("New: %v", err)
	}
	return cl
}

// keptCloud is a cloud that serves the compute services, and the file a login is kept in.
func keptCloud(t *testing.T) (*testCloud, string) {
	t.Helper()
	c := newTestCloud(t)
	c.servesServices()
	return c, filepath.Join(t.TempDir(), "login")
}

func (c *testCloud) servesServices() {
	c.mux.HandleFunc("/compute/v2.1/os-services", func(w http.ResponseWriter, r *http.Request) {
		reply(w, http.StatusOK, serviceListBody)
	})
}

func findService(t *testing.T, cl Client) {
	t.Helper()
	if _, err := cl.FindComputeService(context.Background(), "compute1"); err != nil {
		t.Fatalf("FindComputeService: %v", err)
	}
}

func TestAKeptLoginIsTakenUpByTheNextProcessWithoutLoggingIn(t *testing.T) {
	c, file := keptCloud(t)
	findService(t, c.newKept(passwordAuth, file))
	st, err := os.Stat(file)
	if err != nil {
		t.Fatalf("the login was not kept: %v", err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Errorf("login file mode %o, want 600", st.Mode().Perm())
	}
	b, _ := os.ReadFile(file)
	if strings.Contains(string(b), testPassword) {
		t.Errorf("the login file holds the password in clear")
	}
	for range 3 {
		cl := c.newKept(passwordAuth, file)
		findService(t, cl)
		if p, u := cl.(*nova).projectID, cl.(*nova).userID; p != testProjectID || u != testUserID {
			t.Errorf("a kept login's project and user = %q, %q; want %q, %q", p, u, testProjectID, testUserID)
		}
	}
	if got := c.loginCount(); got != 1 {
		t.Errorf("logins = %d, want 1 for four processes sharing a kept login", got)
	}
}

func TestALoginKeptForOthersOrAboutToExpireOrUnreadableIsNotTakenUp(t *testing.T) {
	tests := []struct {
		name string
		// spoil changes the kept file between the first process and the second.
		spoil func(t *testing.T, file string)
		auth  string // the second process's credentials
	}{
		{name: "other credentials (the clouds.yaml changed)", auth: appCredAuth},
		{name: "a token that expires within the margin", auth: passwordAuth, spoil: func(t *testing.T, file string) {
			rewrite(t, file, func(l *keptLogin) { l.ExpiresAt = time.Now().Add(time.Minute) })
		}},
		{name: "a file that is not a kept login", auth: passwordAuth, spoil: func(t *testing.T, file string) {
			if err := os.WriteFile(file, []byte("{not json"), 0o600); err != nil {
				t.Fatal(err)
			}
		}},
		{name: "a kept login without a catalog", auth: passwordAuth, spoil: func(t *testing.T, file string) {
			rewrite(t, file, func(l *keptLogin) { l.Catalog.Entries = nil })
		}},
		{name: "a login kept longer ago than its catalog is trusted", auth: passwordAuth, spoil: func(t *testing.T, file string) {
			rewrite(t, file, func(l *keptLogin) { l.KeptAt = time.Now().Add(-loginMaxAge - time.Minute) })
		}},
		{name: "a login whose salt was changed (its key no longer matches)", auth: passwordAuth, spoil: func(t *testing.T, file string) {
			rewrite(t, file, func(l *keptLogin) { l.Salt = "00" + l.Salt[2:] })
		}},
		{name: "a file others may read or write", auth: passwordAuth, spoil: func(t *testing.T, file string) {
			if err := os.Chmod(file, 0o644); err != nil {
				t.Fatal(err)
			}
		}},
		{name: "a symbolic link to a kept login", auth: passwordAuth, spoil: func(t *testing.T, file string) {
			if err := os.Rename(file, file+".real"); err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink(file+".real", file); err != nil {
				t.Fatal(err)
			}
			// The next login's rename replaces the link with a file.
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, file := keptCloud(t)
			findService(t, c.newKept(passwordAuth, file))
			if tt.spoil != nil {
				tt.spoil(t, file)
			}
			findService(t, c.newKept(tt.auth, file))
			if got := c.loginCount(); got != 2 {
				t.Errorf("logins = %d, want 2: the second process logs in itself", got)
			}
			// Its own login is kept for the next one.
			findService(t, c.newKept(tt.auth, file))
			if got := c.loginCount(); got != 2 {
				t.Errorf("logins = %d after a third process, want 2", got)
			}
		})
	}
}

func rewrite(t *testing.T, file string, change func(*keptLogin)) {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var l keptLogin
	if err := json.Unmarshal(b, &l); err != nil {
		t.Fatal(err)
	}
	change(&l)
	if b, err = json.Marshal(l); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(file, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestAKeptTokenTheServicesRefuseIsReplacedByOneLoginWhichIsKept(t *testing.T) {
	c, file := keptCloud(t)
	findService(t, c.newKept(passwordAuth, file))
	c.expireTokens() // revoked before its expiry
	findService(t, c.newKept(passwordAuth, file))
	if got := c.loginCount(); got != 2 {
		t.Errorf("logins = %d, want 2 (the first, and one after the refusal)", got)
	}
	c.locked(func() {
		if c.refused != 1 {
			t.Errorf("requests refused = %d, want 1: the kept token was used, refused once, and replaced", c.refused)
		}
	})
	findService(t, c.newKept(passwordAuth, file))
	if got := c.loginCount(); got != 2 {
		t.Errorf("logins = %d, want still 2: the new login was kept", got)
	}
}

func TestALoginThatCannotBeKeptStillWorks(t *testing.T) {
	c := newTestCloud(t)
	c.servesServices()
	file := filepath.Join(t.TempDir(), "no-such-dir", "login")
	findService(t, c.newKept(passwordAuth, file))
	findService(t, c.newKept(passwordAuth, file))
	if got := c.loginCount(); got != 2 {
		t.Errorf("logins = %d, want 2: nothing could be kept", got)
	}
}

func TestALoginMadeAgainAfterAnExpiryIsKept(t *testing.T) {
	c, file := keptCloud(t)
	cl := c.newKept(passwordAuth, file)
	c.expireTokens()
	findService(t, cl) // refused, logs in again
	findService(t, c.newKept(passwordAuth, file))
	if got := c.loginCount(); got != 2 {
		t.Errorf("logins = %d, want 2: the second login, made by the first process, was kept", got)
	}
}

func TestAKeptLoginWhosePasswordIsNowRefusedIsUnauthorized(t *testing.T) {
	c, file := keptCloud(t)
	findService(t, c.newKept(passwordAuth, file))
	c.expireTokens()
	c.locked(func() { c.refuseLogin = true })
	cl := c.newKept(passwordAuth, file) // takes up the kept token, which is refused
	_, err := cl.FindComputeService(context.Background(), "compute1")
	if !IsUnauthorized(err) {
		t.Fatalf("FindComputeService = %v, want unauthorized", err)
	}
}
