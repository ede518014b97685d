package openstack

import (
	"context"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time { return c.t }

func newFakeLab(t *testing.T) (*Fake, *fakeClock, Service, Server) {
	t.Helper()
	clock := &fakeClock{t: time.Date(2024, 5, 1, 10, 0, 0, 0, time.UTC)}
	f := NewFake(clock.now)
	f.ServiceDownTime = 20 * time.Second
	svc := f.AddCompute("compute1", "nova")
	f.AddCompute("compute2", "nova")
	srv := f.AddServer(Server{Name: "db-1", Host: "compute1", HypervisorHostname: "compute1"})
	return f, clock, svc, srv
}

func TestFakeRefusesEvacuationWhileTheSourceServiceIsUp(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name   string
		before func(f *Fake, c *fakeClock, svc Service)
		wantUp bool
	}{
		{name: "a live host refuses", before: func(*Fake, *fakeClock, Service) {}, wantUp: true},
		{
			name:   "a dead host within service_down_time still refuses",
			before: func(f *Fake, c *fakeClock, _ Service) { f.KillCompute("compute1"); c.t = c.t.Add(19 * time.Second) },
			wantUp: true,
		},
		{
			name:   "a dead host past service_down_time accepts",
			before: func(f *Fake, c *fakeClock, _ Service) { f.KillCompute("compute1"); c.t = c.t.Add(20 * time.Second) },
		},
		{
			name: "a forced-down host accepts at once",
			before: func(f *Fake, _ *fakeClock, svc Service) {
				f.KillCompute("compute1")
				if _, err := f.ForceDown(ctx, svc.ID); err != nil {
					t.Fatal(err)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, clock, svc, srv := newFakeLab(t)
			tt.before(f, clock, svc)
			err := f.Evacuate(ctx, srv.ID, "compute2")
			if got := IsSourceServiceUp(err); got != tt.wantUp {
				t.Fatalf("Evacuate err = %v; source-up refusal = %v, want %v", err, got, tt.wantUp)
			}
			got, _ := f.Server(ctx, srv.ID)
			if wantHost := map[bool]string{true: "compute1", false: "compute2"}[tt.wantUp]; got.Host != wantHost {
				t.Errorf("server host = %q, want %q", got.Host, wantHost)
			}
		})
	}
}

func TestFakeRefusesUnforcingUntilTheHostRestarts(t *testing.T) {
	ctx := context.Background()
	f, _, svc, srv := newFakeLab(t)
	f.KillCompute("compute1")
	if _, err := f.ForceDown(ctx, svc.ID); err != nil {
		t.Fatal(err)
	}
	if err := f.Evacuate(ctx, srv.ID, ""); err != nil {
		t.Fatalf("Evacuate: %v", err)
	}
	if _, err := f.UnforceDown(ctx, svc.ID); !IsEvacuationsPending(err) {
		t.Fatalf("UnforceDown before restart: err = %v, want pending evacuations", err)
	}
	f.RestartCompute("compute1")
	got, err := f.UnforceDown(ctx, svc.ID)
	if err != nil {
		t.Fatalf("UnforceDown after restart: %v", err)
	}
	if got.ForcedDown || !got.Up() {
		t.Errorf("service = %+v, want up and not forced down", got)
	}
	migs, _ := f.Migrations(ctx, MigrationFilter{Host: "compute1", Type: "evacuation"})
	if len(migs) != 1 || migs[0].Status != "completed" || migs[0].DestCompute != "compute2" {
		t.Errorf("migrations = %+v, want one completed evacuation to compute2", migs)
	}
}

func TestFakeCountsDisablesThatWouldBlockOnARealNova(t *testing.T) {
	ctx := context.Background()
	f, _, svc, _ := newFakeLab(t)
	f.KillCompute("compute1")
	if _, err := f.DisableService(ctx, svc.ID, "fenced"); err != nil {
		t.Fatal(err)
	}
	if _, err := f.ForceDown(ctx, svc.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := f.DisableService(ctx, svc.ID, "fenced"); err != nil {
		t.Fatal(err)
	}
	if got := f.BlockedDisables(); got != 1 {
		t.Errorf("blocked disables = %d, want 1 (only the one before force-down)", got)
	}
	want := []string{"DisableService " + svc.ID, "ForceDown " + svc.ID, "DisableService " + svc.ID}
	if diff := cmp.Diff(want, f.Calls()); diff != "" {
		t.Errorf("calls (-want +got):\n%s", diff)
	}
}

func TestFakeSchedulerSkipsDisabledAndDownHostsAndFailsWithoutOne(t *testing.T) {
	ctx := context.Background()
	f, _, svc, srv := newFakeLab(t)
	c2, _ := f.FindComputeService(ctx, "compute2")
	if _, err := f.DisableService(ctx, c2.ID, "maintenance"); err != nil {
		t.Fatal(err)
	}
	if _, err := f.ForceDown(ctx, svc.ID); err != nil {
		t.Fatal(err)
	}
	if err := f.Evacuate(ctx, srv.ID, ""); err != nil {
		t.Fatalf("Evacuate: %v", err)
	}
	migs, _ := f.Migrations(ctx, MigrationFilter{ServerID: srv.ID})
	if len(migs) != 1 || migs[0].Status != "error" {
		t.Fatalf("migrations = %+v, want one in error (no valid host)", migs)
	}
	f.AddCompute("compute3", "nova")
	if err := f.Evacuate(ctx, srv.ID, ""); err != nil {
		t.Fatalf("Evacuate: %v", err)
	}
	if got, _ := f.Server(ctx, srv.ID); got.Host != "compute3" {
		t.Errorf("server host = %q, want compute3, the only enabled, up host", got.Host)
	}
	if err := f.Evacuate(ctx, srv.ID, "compute9"); !IsNotFound(err) {
		t.Errorf("Evacuate to an unknown host: err = %v, want not found", err)
	}
}

func TestFakeInjectedFailureHitsTheNextCallOnly(t *testing.T) {
	ctx := context.Background()
	f, _, _, _ := newFakeLab(t)
	f.FailNext("FindComputeService", ErrUnavailable)
	if _, err := f.FindComputeService(ctx, "compute1"); !IsUnavailable(err) {
		t.Fatalf("first call: err = %v, want the injected failure", err)
	}
	if _, err := f.FindComputeService(ctx, "compute1"); err != nil {
		t.Fatalf("second call: %v", err)
	}
}
