package openstack

import (
	"context"
	"errors"
	"net/http"
	"sync/atomic"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestLiveMigrate(t *testing.T) {
	tests := []struct {
		name      string
		target    string
		block     bool
		wantBody  string
		status    int
		reply     string
		wantErr   error
		wantCalls int32
	}{
		{
			name:   "a target host is sent with block_migration auto and the 202 answer is success",
			target: "compute2", wantBody: `{"os-migrateLive": {"host": "compute2", "block_migration": "auto"}}`,
			status: http.StatusAccepted, wantCalls: 1,
		},
		{
			name:     "without a target the host is null so the scheduler chooses",
			wantBody: `{"os-migrateLive": {"host": null, "block_migration": "auto"}}`, status: http.StatusAccepted, wantCalls: 1,
		},
		{
			name:   "a forced block migration sends true",
			target: "compute2", block: true, wantBody: `{"os-migrateLive": {"host": "compute2", "block_migration": true}}`,
			status: http.StatusAccepted, wantCalls: 1,
		},
		{
			name:     "a server that is not running is a conflict, not retried",
			wantBody: `{"os-migrateLive": {"host": null, "block_migration": "auto"}}`,
			status:   http.StatusConflict, reply: `{"conflictingRequest": {"code": 409, "message": "Cannot 'os-migrateLive' instance 3c6a8b6e while it is in vm_state stopped"}}`,
			wantErr: ErrConflict, wantCalls: 1,
		},
		{
			name:   "an unknown target host is not found",
			target: "compute9", wantBody: `{"os-migrateLive": {"host": "compute9", "block_migration": "auto"}}`,
			status: http.StatusNotFound, reply: `{"itemNotFound": {"code": 404, "message": "Compute host compute9 could not be found."}}`,
			wantErr: ErrNotFound, wantCalls: 1,
		},
		{
			name:     "a 500 may have been acted on, so a live migration is not sent twice",
			wantBody: `{"os-migrateLive": {"host": null, "block_migration": "auto"}}`,
			status:   http.StatusInternalServerError, reply: `{"computeFault": {"code": 500, "message": "Unexpected API Error."}}`,
			wantErr: ErrUnavailable, wantCalls: 1,
		},
	}
	const id = "3c6a8b6e-3f0e-4b43-9b6a-0d1c2b3a4f5e"
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newTestCloud(t)
			var calls atomic.Int32
			c.mux.HandleFunc("/compute/v2.1/servers/"+id+"/action", func(w http.ResponseWriter, r *http.Request) {
				calls.Add(1)
				request{method: "POST", path: "/compute/v2.1/servers/" + id + "/action", version: ComputeMicroversion, body: tt.wantBody}.check(t, r)
				if tt.reply == "" {
					w.Header().Set("Content-Length", "0")
					w.WriteHeader(tt.status)
					return
				}
				reply(w, tt.status, tt.reply)
			})
			err := c.client().LiveMigrate(context.Background(), id, tt.target, tt.block)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			if n := calls.Load(); n != tt.wantCalls {
				t.Errorf("requests = %d, want %d", n, tt.wantCalls)
			}
		})
	}
}

func TestFakeLiveMigrate(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name     string
		before   func(f *Fake, srv Server)
		target   string
		wantErr  error
		wantHost string
		wantMig  string // status of the recorded live migration; "" for none
	}{
		{name: "a running server moves to the target at once", target: "compute2", wantHost: "compute2", wantMig: "completed"},
		{name: "without a target the fake scheduler picks a host", wantHost: "compute2", wantMig: "completed"},
		{name: "its own host is a bad request", target: "compute1", wantErr: ErrBadRequest, wantHost: "compute1"},
		{name: "an unknown host is not found", target: "compute9", wantErr: ErrNotFound, wantHost: "compute1"},
		{
			name:   "a stopped server is a conflict",
			before: func(f *Fake, srv Server) { f.servers[srv.ID].VMState, f.servers[srv.ID].Status = "stopped", "SHUTOFF" },
			target: "compute2", wantErr: ErrConflict, wantHost: "compute1",
		},
		{
			name:   "a source whose compute service is forced down is a bad request",
			before: func(f *Fake, _ Server) { f.services["compute1"].ForcedDown = true },
			target: "compute2", wantErr: ErrBadRequest, wantHost: "compute1",
		},
		{
			name:   "a disabled target is no valid host: the migration errors and the server stays",
			before: func(f *Fake, _ Server) { f.services["compute2"].Status = "disabled" },
			target: "compute2", wantHost: "compute1", wantMig: "error",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, _, _, srv := newFakeLab(t)
			if tt.before != nil {
				tt.before(f, srv)
			}
			err := f.LiveMigrate(ctx, srv.ID, tt.target, false)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			got, _ := f.Server(ctx, srv.ID)
			if got.Host != tt.wantHost || got.Status != srv.Status && tt.wantErr == nil {
				t.Errorf("server on %s (%s), want on %s", got.Host, got.Status, tt.wantHost)
			}
			migs, _ := f.Migrations(ctx, MigrationFilter{ServerID: srv.ID, Type: "live-migration"})
			var statuses []string
			for _, m := range migs {
				statuses = append(statuses, m.Status)
			}
			var want []string
			if tt.wantMig != "" {
				want = []string{tt.wantMig}
			}
			if diff := cmp.Diff(want, statuses); diff != "" {
				t.Errorf("live migrations (-want +got):\n%s", diff)
			}
		})
	}
}
