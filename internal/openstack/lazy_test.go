package openstack

import (
	"context"
	"errors"
	"net/http"
	"testing"
)

func TestLazyClientLogsInOnFirstUseAndAgainAfterAFailedLogin(t *testing.T) {
	c := newTestCloud(t)
	c.mux.HandleFunc("/compute/v2.1/os-services", func(w http.ResponseWriter, r *http.Request) {
		reply(w, http.StatusOK, serviceListBody)
	})
	ctx := context.Background()
	l := NewLazy(Options{Cloud: "lab", CloudsFile: c.cloudsYAML(passwordAuth), Retry: fastRetry})
	if n := c.loginCount(); n != 0 {
		t.Fatalf("logins after NewLazy = %d, want none", n)
	}

	c.locked(func() { c.refuseLogin = true })
	if _, err := l.FindComputeService(ctx, "compute1"); !IsUnauthorized(err) || IsUnavailable(err) {
		t.Fatalf("with refused credentials: err = %v, want unauthorized", err)
	}
	c.locked(func() { c.refuseLogin, c.keystoneDown = false, true })
	if err := l.Ready(ctx); !IsUnavailable(err) {
		t.Fatalf("Ready with Keystone down: err = %v, want unavailable", err)
	}
	c.locked(func() { c.keystoneDown = false })

	if err := l.Ready(ctx); err != nil {
		t.Fatalf("Ready with Keystone back: %v", err)
	}
	logins := c.loginCount()
	for range 2 {
		if _, err := l.FindComputeService(ctx, "compute1"); err != nil {
			t.Fatalf("FindComputeService: %v", err)
		}
	}
	if n := c.loginCount(); n != logins {
		t.Errorf("logins after Ready and two calls = %d, want %d (no new login once logged in)", n, logins)
	}
}

func TestLazyClientWithAnUnusableConfigurationIsUnavailableNotAPanic(t *testing.T) {
	l := NewLazy(Options{Cloud: "lab", CloudsFile: "/nonexistent/clouds.yaml"})
	err := l.Ready(context.Background())
	if !IsUnavailable(err) {
		t.Fatalf("err = %v, want unavailable", err)
	}
}

func TestLazyClientCallerStopsWaitingForAnotherLoginWhenItsContextEnds(t *testing.T) {
	l := NewLazy(Options{})
	started, release := make(chan struct{}), make(chan struct{})
	l.login = func(ctx context.Context, _ Options) (Client, error) {
		close(started)
		<-release
		return NewFake(nil), nil
	}
	done := make(chan error)
	go func() { done <- l.Ready(context.Background()) }()
	<-started
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := l.Hypervisors(ctx); !errors.Is(err, context.Canceled) {
		t.Errorf("second caller: err = %v, want its context's end", err)
	}
	close(release)
	if err := <-done; err != nil {
		t.Fatalf("Ready: %v", err)
	}
	if _, err := l.ServerGroups(context.Background()); err != nil {
		t.Errorf("a call after the login: %v", err)
	}
}
