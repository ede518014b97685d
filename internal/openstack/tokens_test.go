package openstack

import (
	"errors"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestTokenAsksKeystoneWhomAnotherClientsTokenStandsFor(t *testing.T) {
	c := newTestCloud(t)
	var own, subject []string
	c.mux.HandleFunc("GET /identity/v3/auth/tokens", func(w http.ResponseWriter, r *http.Request) {
		c.mu.Lock()
		own = append(own, r.Header.Get("X-Auth-Token"))
		authorised := c.tokens[r.Header.Get("X-Auth-Token")]
		c.mu.Unlock()
		subject = append(subject, r.Header.Get("X-Subject-Token"))
		w.Header().Set("Content-Type", "application/json")
		switch {
		case !authorised:
			w.WriteHeader(http.StatusUnauthorized)
			_, _ = io.WriteString(w, `{"error": {"code": 401, "title": "Unauthorized", "message": "no"}}`)
		case r.Header.Get("X-Subject-Token") == "member-token":
			w.Header().Set("X-Subject-Token", "member-token")
			_, _ = io.WriteString(w, `{"token": {"expires_at": "2030-01-02T03:04:05.000000Z", "methods": ["password"],
				"user": {"id": "u1", "name": "alice", "domain": {"id": "default", "name": "Default"}},
				"project": {"id": "p1", "name": "demo", "domain": {"id": "default", "name": "Default"}},
				"roles": [{"id": "r1", "name": "member"}, {"id": "r2", "name": "reader"}]}}`)
		default:
			w.WriteHeader(http.StatusNotFound)
			_, _ = io.WriteString(w, `{"error": {"code": 404, "title": "Not Found", "message": "Could not find token: x."}}`)
		}
	})
	cl := c.client()
	got, err := cl.Token(t.Context(), "member-token")
	if err != nil {
		t.Fatal(err)
	}
	want := TokenInfo{
		UserID: "u1", UserName: "alice", ProjectID: "p1", ProjectName: "demo",
		Roles: []string{"member", "reader"}, ExpiresAt: time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC),
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("token (-want +got):\n%s", d)
	}
	if !got.HasRole("admin", "member") || got.HasRole("admin") {
		t.Errorf("HasRole is wrong for %v", got.Roles)
	}
	if own[0] == "" || own[0] == "member-token" || subject[0] != "member-token" {
		t.Errorf("asked with X-Auth-Token %q and X-Subject-Token %q; want the client's own login and the token asked about", own[0], subject[0])
	}
	if _, err := cl.Token(t.Context(), "forged"); !errors.Is(err, ErrUnauthorized) {
		t.Errorf("a token Keystone does not know: %v, want ErrUnauthorized", err)
	}
	if _, err := cl.Token(t.Context(), ""); !errors.Is(err, ErrUnauthorized) {
		t.Errorf("no token: %v, want ErrUnauthorized", err)
	}
}

func TestTheFakesTokensAreValidUntilTheyExpire(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	f := NewFake(func() time.Time { return now })
	f.SetToken("t", TokenInfo{UserID: "u", ProjectID: "p", Roles: []string{"member"}, ExpiresAt: now.Add(time.Hour)})
	if info, err := f.Token(t.Context(), "t"); err != nil || info.ProjectID != "p" {
		t.Fatalf("Token = %+v, %v", info, err)
	}
	now = now.Add(2 * time.Hour)
	if _, err := f.Token(t.Context(), "t"); !errors.Is(err, ErrUnauthorized) {
		t.Errorf("an expired token: %v, want ErrUnauthorized", err)
	}
	if _, err := f.Token(t.Context(), "other"); !errors.Is(err, ErrUnauthorized) {
		t.Errorf("an unknown token: %v, want ErrUnauthorized", err)
	}
}

func TestALazySessionLogsInAtFirstUseAndAgainWhenAServiceRefusesItsToken(t *testing.T) {
	c := newTestCloud(t)
	var seen []string
	c.mux.HandleFunc("GET /ha/ping", func(w http.ResponseWriter, r *http.Request) {
		seen = append(seen, r.Header.Get("X-Auth-Token"))
		w.WriteHeader(http.StatusNoContent)
	})
	l := NewLazySession(Options{Cloud: "lab", CloudsFile: c.cloudsYAML(passwordAuth), Retry: fastRetry, CallTimeout: 5 * time.Second})
	if n := c.loginCount(); n != 0 {
		t.Fatalf("%d logins before the first use", n)
	}
	tok, err := l.Token(t.Context())
	if err != nil || tok == "" || c.loginCount() != 1 {
		t.Fatalf("Token = %q, %v after %d logins", tok, err, c.loginCount())
	}
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, c.srv.URL+"/ha/ping", nil)
	req.Header.Set("X-Auth-Token", tok)
	resp, err := l.Do(req)
	if err != nil || resp.StatusCode != http.StatusNoContent {
		t.Fatalf("Do: %v, %v", resp, err)
	}
	resp.Body.Close()
	if err := l.Relogin(t.Context(), tok); err != nil {
		t.Fatal(err)
	}
	if again, _ := l.Token(t.Context()); again == tok || c.loginCount() != 2 {
		t.Errorf("after Relogin: the same token %v, %d logins; want a new login", again == tok, c.loginCount())
	}
}
