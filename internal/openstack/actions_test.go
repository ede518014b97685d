package openstack

import (
	"context"
	"errors"
	"net/http"
	"sync/atomic"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestServerActions(t *testing.T) {
	const id = "3c6a8b6e-3f0e-4b43-9b6a-0d1c2b3a4f5e"
	const action = "/compute/v2.1/servers/" + id + "/action"
	conflict := `{"conflictingRequest": {"code": 409, "message": "Cannot 'migrate' instance 3c6a8b6e while it is in vm_state resized"}}`
	tests := []struct {
		name      string
		call      func(Client) error
		method    string
		path      string
		wantBody  string
		statuses  []int // answered in turn; the last repeats
		reply     string
		wantErr   error
		wantCalls int32
	}{
		{
			name:   "a cold migration to a host names it and the 202 answer is success",
			call:   func(c Client) error { return c.ColdMigrate(context.Background(), id, "compute2") },
			method: "POST", path: action, wantBody: `{"migrate": {"host": "compute2"}}`,
			statuses: []int{202}, wantCalls: 1,
		},
		{
			name:   "a cold migration without a target sends migrate null so the scheduler chooses",
			call:   func(c Client) error { return c.ColdMigrate(context.Background(), id, "") },
			method: "POST", path: action, wantBody: `{"migrate": null}`,
			statuses: []int{202}, wantCalls: 1,
		},
		{
			name:   "a cold migration to an unknown host is a bad request, as Nova answers it",
			call:   func(c Client) error { return c.ColdMigrate(context.Background(), id, "compute9") },
			method: "POST", path: action, wantBody: `{"migrate": {"host": "compute9"}}`,
			statuses: []int{400}, reply: `{"badRequest": {"code": 400, "message": "Compute host compute9 could not be found."}}`,
			wantErr: ErrBadRequest, wantCalls: 1,
		},
		{
			name:   "a cold migration while the source service is down is a conflict",
			call:   func(c Client) error { return c.ColdMigrate(context.Background(), id, "") },
			method: "POST", path: action, wantBody: `{"migrate": null}`,
			statuses: []int{409}, reply: `{"conflictingRequest": {"code": 409, "message": "Service is unavailable at this time."}}`,
			wantErr: ErrConflict, wantCalls: 1,
		},
		{
			name:   "a cold migration that met a 500 may have started, so it is not sent twice",
			call:   func(c Client) error { return c.ColdMigrate(context.Background(), id, "") },
			method: "POST", path: action, wantBody: `{"migrate": null}`,
			statuses: []int{500}, reply: `{"computeFault": {"code": 500, "message": "Unexpected API Error."}}`,
			wantErr: ErrUnavailable, wantCalls: 1,
		},
		{
			name:   "a cold migration refused with 503 was never started, so it is retried",
			call:   func(c Client) error { return c.ColdMigrate(context.Background(), id, "") },
			method: "POST", path: action, wantBody: `{"migrate": null}`,
			statuses: []int{503, 202}, wantCalls: 2,
		},
		{
			name:   "a resize confirmation sends confirmResize null and the 204 answer is success",
			call:   func(c Client) error { return c.ConfirmResize(context.Background(), id) },
			method: "POST", path: action, wantBody: `{"confirmResize": null}`,
			statuses: []int{204}, wantCalls: 1,
		},
		{
			name:   "confirming a server that is not in VERIFY_RESIZE is a conflict",
			call:   func(c Client) error { return c.ConfirmResize(context.Background(), id) },
			method: "POST", path: action, wantBody: `{"confirmResize": null}`,
			statuses: []int{409}, reply: conflict, wantErr: ErrConflict, wantCalls: 1,
		},
		{
			name:   "a hard reboot sends type HARD",
			call:   func(c Client) error { return c.Reboot(context.Background(), id, true) },
			method: "POST", path: action, wantBody: `{"reboot": {"type": "HARD"}}`,
			statuses: []int{202}, wantCalls: 1,
		},
		{
			name:   "a soft reboot sends type SOFT",
			call:   func(c Client) error { return c.Reboot(context.Background(), id, false) },
			method: "POST", path: action, wantBody: `{"reboot": {"type": "SOFT"}}`,
			statuses: []int{202}, wantCalls: 1,
		},
		{
			name:   "a reboot that met a 502 is not sent twice",
			call:   func(c Client) error { return c.Reboot(context.Background(), id, true) },
			method: "POST", path: action, wantBody: `{"reboot": {"type": "HARD"}}`,
			statuses: []int{502}, reply: `<html>502 Bad Gateway</html>`, wantErr: ErrUnavailable, wantCalls: 1,
		},
		{
			name:   "a start sends os-start null",
			call:   func(c Client) error { return c.StartServer(context.Background(), id) },
			method: "POST", path: action, wantBody: `{"os-start": null}`,
			statuses: []int{202}, wantCalls: 1,
		},
		{
			name:   "starting a server that is not SHUTOFF is a conflict",
			call:   func(c Client) error { return c.StartServer(context.Background(), id) },
			method: "POST", path: action, wantBody: `{"os-start": null}`,
			statuses: []int{409}, reply: `{"conflictingRequest": {"code": 409, "message": "Cannot 'start' instance 3c6a8b6e while it is in vm_state active"}}`,
			wantErr: ErrConflict, wantCalls: 1,
		},
		{
			name:   "a delete sends DELETE without a body and the 204 answer is success",
			call:   func(c Client) error { return c.DeleteServer(context.Background(), id) },
			method: "DELETE", path: "/compute/v2.1/servers/" + id, statuses: []int{204}, wantCalls: 1,
		},
		{
			name:   "deleting a server that is gone is not found",
			call:   func(c Client) error { return c.DeleteServer(context.Background(), id) },
			method: "DELETE", path: "/compute/v2.1/servers/" + id,
			statuses: []int{404}, reply: `{"itemNotFound": {"code": 404, "message": "Instance could not be found"}}`,
			wantErr: ErrNotFound, wantCalls: 1,
		},
		{
			name:   "a delete that met a 500 is sent again, since deleting twice is harmless",
			call:   func(c Client) error { return c.DeleteServer(context.Background(), id) },
			method: "DELETE", path: "/compute/v2.1/servers/" + id,
			statuses: []int{500, 204}, reply: `{"computeFault": {"code": 500, "message": "Unexpected API Error."}}`, wantCalls: 2,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newTestCloud(t)
			var calls atomic.Int32
			c.mux.HandleFunc(tt.path, func(w http.ResponseWriter, r *http.Request) {
				n := int(calls.Add(1))
				request{method: tt.method, path: tt.path, version: ComputeMicroversion, body: tt.wantBody}.check(t, r)
				status := tt.statuses[min(n, len(tt.statuses))-1]
				if status < 300 {
					w.Header().Set("Content-Length", "0")
					w.WriteHeader(status)
					return
				}
				reply(w, status, tt.reply)
			})
			err := tt.call(c.client())
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			if n := calls.Load(); n != tt.wantCalls {
				t.Errorf("requests = %d, want %d", n, tt.wantCalls)
			}
		})
	}
}

func TestServerActionsRefuseAnEmptyServerIDWithoutARequest(t *testing.T) {
	c := newTestCloud(t)
	c.mux.HandleFunc("/compute/", func(w http.ResponseWriter, r *http.Request) {
		t.Errorf("unexpected request %s %s", r.Method, r.URL.Path)
	})
	cl := c.client()
	ctx := context.Background()
	for name, err := range map[string]error{
		"ColdMigrate":   cl.ColdMigrate(ctx, "", ""),
		"ConfirmResize": cl.ConfirmResize(ctx, ""),
		"Reboot":        cl.Reboot(ctx, "", true),
		"StartServer":   cl.StartServer(ctx, ""),
		"Pause":         cl.Pause(ctx, ""),
		"Unpause":       cl.Unpause(ctx, ""),
		"DeleteServer":  cl.DeleteServer(ctx, ""),
	} {
		if err == nil {
			t.Errorf("%s with an empty id: no error", name)
		}
	}
}

func TestFakeColdMigrate(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name       string
		before     func(f *Fake, srv Server)
		target     string
		wantErr    error
		wantHost   string
		wantStatus string
		wantMig    string // status of the recorded migration; "" for none
	}{
		{
			name: "a running server moves to the target at once and waits in VERIFY_RESIZE", target: "compute2",
			wantHost: "compute2", wantStatus: "VERIFY_RESIZE", wantMig: "finished",
		},
		{name: "without a target the fake scheduler picks a host", wantHost: "compute2", wantStatus: "VERIFY_RESIZE", wantMig: "finished"},
		{
			name:   "a stopped server migrates too",
			before: func(f *Fake, srv Server) { f.servers[srv.ID].VMState, f.servers[srv.ID].Status = "stopped", "SHUTOFF" },
			target: "compute2", wantHost: "compute2", wantStatus: "VERIFY_RESIZE", wantMig: "finished",
		},
		{name: "its own host is a bad request", target: "compute1", wantErr: ErrBadRequest, wantHost: "compute1", wantStatus: "ACTIVE"},
		{name: "an unknown host is a bad request, as Nova answers it", target: "compute9", wantErr: ErrBadRequest, wantHost: "compute1", wantStatus: "ACTIVE"},
		{
			name:   "a server with a task in progress is a conflict",
			before: func(f *Fake, srv Server) { f.servers[srv.ID].TaskState = "powering-off" },
			target: "compute2", wantErr: ErrConflict, wantHost: "compute1", wantStatus: "ACTIVE",
		},
		{
			name:    "a server in ERROR is a conflict",
			before:  func(f *Fake, srv Server) { f.servers[srv.ID].VMState, f.servers[srv.ID].Status = "error", "ERROR" },
			wantErr: ErrConflict, wantHost: "compute1", wantStatus: "ERROR",
		},
		{
			name:   "a source whose compute service is down is a conflict: Nova needs it to send the server",
			before: func(f *Fake, _ Server) { f.services["compute1"].ForcedDown = true },
			target: "compute2", wantErr: ErrConflict, wantHost: "compute1", wantStatus: "ACTIVE",
		},
		{
			name:   "a disabled target is no valid host: the migration errors and the server stays ACTIVE",
			before: func(f *Fake, _ Server) { f.services["compute2"].Status = "disabled" },
			target: "compute2", wantHost: "compute1", wantStatus: "ACTIVE", wantMig: "error",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, _, _, srv := newFakeLab(t)
			if tt.before != nil {
				tt.before(f, srv)
			}
			err := f.ColdMigrate(ctx, srv.ID, tt.target)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			got, _ := f.Server(ctx, srv.ID)
			if got.Host != tt.wantHost || got.Status != tt.wantStatus {
				t.Errorf("server on %s (%s), want on %s (%s)", got.Host, got.Status, tt.wantHost, tt.wantStatus)
			}
			migs, _ := f.Migrations(ctx, MigrationFilter{ServerID: srv.ID, Type: "migration"})
			var statuses []string
			for _, m := range migs {
				statuses = append(statuses, m.Status)
			}
			var want []string
			if tt.wantMig != "" {
				want = []string{tt.wantMig}
			}
			if diff := cmp.Diff(want, statuses); diff != "" {
				t.Errorf("migrations (-want +got):\n%s", diff)
			}
		})
	}
}

func TestFakeConfirmResizeRestoresTheStatusBeforeTheMigration(t *testing.T) {
	ctx := context.Background()
	for _, before := range []string{"ACTIVE", "SHUTOFF"} {
		t.Run("a server that was "+before, func(t *testing.T) {
			f, _, _, srv := newFakeLab(t)
			if before == "SHUTOFF" {
				f.servers[srv.ID].VMState, f.servers[srv.ID].Status = "stopped", "SHUTOFF"
			}
			if err := f.ConfirmResize(ctx, srv.ID); !IsConflict(err) {
				t.Fatalf("ConfirmResize before any migration: err = %v, want conflict", err)
			}
			if err := f.ColdMigrate(ctx, srv.ID, "compute2"); err != nil {
				t.Fatalf("ColdMigrate: %v", err)
			}
			if err := f.ConfirmResize(ctx, srv.ID); err != nil {
				t.Fatalf("ConfirmResize: %v", err)
			}
			got, _ := f.Server(ctx, srv.ID)
			if got.Status != before || got.Host != "compute2" {
				t.Errorf("server %s on %s, want %s on compute2", got.Status, got.Host, before)
			}
			migs, _ := f.Migrations(ctx, MigrationFilter{ServerID: srv.ID})
			if len(migs) != 1 || migs[0].Status != "confirmed" {
				t.Errorf("migrations = %+v, want one confirmed", migs)
			}
			if err := f.ConfirmResize(ctx, srv.ID); !IsConflict(err) {
				t.Errorf("a second ConfirmResize: err = %v, want conflict", err)
			}
		})
	}
}

func TestFakeConfirmResizeWaitsForTheSourceCompute(t *testing.T) {
	ctx := context.Background()
	f, clock, _, srv := newFakeLab(t)
	if err := f.ColdMigrate(ctx, srv.ID, "compute2"); err != nil {
		t.Fatal(err)
	}
	f.KillCompute("compute1")
	clock.t = clock.t.Add(f.ServiceDownTime)
	if err := f.ConfirmResize(ctx, srv.ID); !IsConflict(err) {
		t.Fatalf("ConfirmResize with the source down: err = %v, want conflict", err)
	}
	f.RestartCompute("compute1")
	if err := f.ConfirmResize(ctx, srv.ID); err != nil {
		t.Fatalf("ConfirmResize once the source is back: %v", err)
	}
}

func TestFakeReboot(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name       string
		vmState    string
		taskState  string
		hard       bool
		wantErr    error
		wantStatus string
	}{
		{name: "a hard reboot of an active server ends ACTIVE", vmState: "active", hard: true, wantStatus: "ACTIVE"},
		{name: "a soft reboot of an active server ends ACTIVE", vmState: "active", wantStatus: "ACTIVE"},
		{name: "a hard reboot of a stopped server starts it", vmState: "stopped", hard: true, wantStatus: "ACTIVE"},
		{name: "a hard reboot of a server in ERROR brings it back", vmState: "error", hard: true, wantStatus: "ACTIVE"},
		{name: "a soft reboot of a stopped server is a conflict", vmState: "stopped", wantErr: ErrConflict, wantStatus: "SHUTOFF"},
		{name: "a soft reboot during a task is a conflict", vmState: "active", taskState: "powering-off", wantErr: ErrConflict, wantStatus: "ACTIVE"},
		{name: "a hard reboot may interrupt a soft one", vmState: "active", taskState: "rebooting", hard: true, wantStatus: "ACTIVE"},
		{name: "a hard reboot during a rebuild is a conflict", vmState: "active", taskState: "rebuilding", hard: true, wantErr: ErrConflict, wantStatus: "ACTIVE"},
		{name: "a server waiting for a resize confirmation cannot reboot", vmState: "resized", hard: true, wantErr: ErrConflict, wantStatus: "VERIFY_RESIZE"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, _, _, srv := newFakeLab(t)
			s := f.servers[srv.ID]
			s.VMState, s.TaskState, s.Status = tt.vmState, tt.taskState, novaStatus(tt.vmState, "")
			err := f.Reboot(ctx, srv.ID, tt.hard)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			if got, _ := f.Server(ctx, srv.ID); got.Status != tt.wantStatus {
				t.Errorf("status = %s, want %s", got.Status, tt.wantStatus)
			}
		})
	}
}

func TestFakePauseAndUnpause(t *testing.T) {
	ctx := context.Background()
	f, _, svc, srv := newFakeLab(t)
	status := func() string { s, _ := f.Server(ctx, srv.ID); return s.Status + "/" + s.TaskState }
	if err := f.Unpause(ctx, srv.ID); !errors.Is(err, ErrConflict) {
		t.Errorf("Unpause of an ACTIVE server: %v, want a conflict", err)
	}
	if err := f.Pause(ctx, srv.ID); err != nil || status() != "PAUSED/" {
		t.Fatalf("Pause: %v, %s; want PAUSED", err, status())
	}
	if err := f.Pause(ctx, srv.ID); !errors.Is(err, ErrConflict) {
		t.Errorf("Pause of a PAUSED server: %v, want a conflict", err)
	}
	if err := f.Unpause(ctx, srv.ID); err != nil || status() != "ACTIVE/" {
		t.Fatalf("Unpause: %v, %s; want ACTIVE", err, status())
	}
	// Cast to a dead compute: the task waits for it.
	f.KillCompute("compute1")
	if _, err := f.ForceDown(ctx, svc.ID); err != nil {
		t.Fatal(err)
	}
	if err := f.Pause(ctx, srv.ID); err != nil || status() != "ACTIVE/pausing" {
		t.Fatalf("Pause on a dead compute: %v, %s; want ACTIVE in task pausing", err, status())
	}
	f.RestartCompute("compute1")
	if status() != "PAUSED/" {
		t.Errorf("after the compute restarted: %s, want PAUSED", status())
	}
}

func TestFakeRebootAndStartCastToADeadComputeWaitUntilItRestarts(t *testing.T) {
	ctx := context.Background()
	f, _, svc, srv := newFakeLab(t)
	stopped := f.AddServer(Server{Name: "off", Status: "SHUTOFF", Host: "compute1", HypervisorHostname: "compute1"})
	f.KillCompute("compute1")
	if _, err := f.ForceDown(ctx, svc.ID); err != nil {
		t.Fatal(err)
	}
	if err := f.Reboot(ctx, srv.ID, true); err != nil {
		t.Fatalf("Reboot: %v (Nova accepts it and casts it to the dead compute)", err)
	}
	if err := f.StartServer(ctx, stopped.ID); err != nil {
		t.Fatalf("StartServer: %v", err)
	}
	rebooting, _ := f.Server(ctx, srv.ID)
	starting, _ := f.Server(ctx, stopped.ID)
	if rebooting.Status != "HARD_REBOOT" || rebooting.TaskState != "rebooting_hard" {
		t.Errorf("rebooted server %s (task %q), want HARD_REBOOT (rebooting_hard)", rebooting.Status, rebooting.TaskState)
	}
	if starting.Status != "SHUTOFF" || starting.TaskState != "powering-on" {
		t.Errorf("started server %s (task %q), want SHUTOFF (powering-on)", starting.Status, starting.TaskState)
	}
	if err := f.Reboot(ctx, srv.ID, true); err != nil {
		t.Errorf("a second hard reboot over the pending one: %v", err)
	}
	if err := f.StartServer(ctx, stopped.ID); !IsConflict(err) {
		t.Errorf("a second start while powering on: err = %v, want conflict", err)
	}
	f.RestartCompute("compute1")
	for _, id := range []string{srv.ID, stopped.ID} {
		if got, _ := f.Server(ctx, id); got.Status != "ACTIVE" || got.TaskState != "" {
			t.Errorf("server %s after the compute restarted: %s (task %q), want ACTIVE", got.Name, got.Status, got.TaskState)
		}
	}
}

func TestFakeStartServer(t *testing.T) {
	ctx := context.Background()
	f, _, _, srv := newFakeLab(t)
	if err := f.StartServer(ctx, srv.ID); !IsConflict(err) {
		t.Fatalf("starting an ACTIVE server: err = %v, want conflict", err)
	}
	stopped := f.AddServer(Server{Name: "off", Status: "SHUTOFF", Host: "compute2", HypervisorHostname: "compute2"})
	if err := f.StartServer(ctx, stopped.ID); err != nil {
		t.Fatalf("StartServer: %v", err)
	}
	if got, _ := f.Server(ctx, stopped.ID); got.Status != "ACTIVE" || got.VMState != "active" {
		t.Errorf("server %s (%s), want ACTIVE (active)", got.Status, got.VMState)
	}
	if err := f.StartServer(ctx, "nope"); !IsNotFound(err) {
		t.Errorf("starting an unknown server: err = %v, want not found", err)
	}
}

func TestFakeDeleteServerLeavesItsGroupAndUnbindsItsPorts(t *testing.T) {
	ctx := context.Background()
	f, _, _, srv := newFakeLab(t)
	g := f.AddServerGroup(ServerGroup{Name: "db", Policy: PolicyAntiAffinity, Members: []string{srv.ID, "other"}})
	p := f.AddPort(Port{NetworkID: "n1", DeviceID: srv.ID})
	f.KillCompute("compute1") // a local delete: the host's compute is not needed
	if err := f.DeleteServer(ctx, srv.ID); err != nil {
		t.Fatalf("DeleteServer: %v", err)
	}
	if _, err := f.Server(ctx, srv.ID); !IsNotFound(err) {
		t.Errorf("Server after delete: err = %v, want not found", err)
	}
	groups, _ := f.ServerGroups(ctx)
	if diff := cmp.Diff([]string{"other"}, groups[0].Members); groups[0].ID != g.ID || diff != "" {
		t.Errorf("group members (-want +got):\n%s", diff)
	}
	if got, _ := f.Port(ctx, p.ID); got.DeviceID != "" {
		t.Errorf("port still bound to %q", got.DeviceID)
	}
	if err := f.DeleteServer(ctx, srv.ID); !IsNotFound(err) {
		t.Errorf("second delete: err = %v, want not found", err)
	}
}

func TestFakeRecordsEveryNewCallAndInjectsFailuresIntoEach(t *testing.T) {
	ctx := context.Background()
	injected := errors.New("injected")
	calls := []struct {
		method string
		call   func(*Fake) error
		want   string
	}{
		{"ColdMigrate", func(f *Fake) error { return f.ColdMigrate(ctx, "s1", "compute2") }, "ColdMigrate s1 compute2"},
		{"ConfirmResize", func(f *Fake) error { return f.ConfirmResize(ctx, "s1") }, "ConfirmResize s1"},
		{"Reboot", func(f *Fake) error { return f.Reboot(ctx, "s1", true) }, "Reboot s1 HARD"},
		{"StartServer", func(f *Fake) error { return f.StartServer(ctx, "s1") }, "StartServer s1"},
		{"Pause", func(f *Fake) error { return f.Pause(ctx, "s1") }, "Pause s1"},
		{"Unpause", func(f *Fake) error { return f.Unpause(ctx, "s1") }, "Unpause s1"},
		{"DeleteServer", func(f *Fake) error { return f.DeleteServer(ctx, "s1") }, "DeleteServer s1"},
		{"ServerSpec", func(f *Fake) error { _, err := f.ServerSpec(ctx, "s1"); return err }, "ServerSpec s1"},
		{"CreateServer", func(f *Fake) error {
			_, err := f.CreateServer(ctx, ServerSpec{Name: "db-1", Host: "compute2"})
			return err
		}, "CreateServer db-1 compute2"},
		{"CreatePort", func(f *Fake) error { _, err := f.CreatePort(ctx, Port{NetworkID: "n1", Name: "p"}); return err }, "CreatePort n1 p"},
		{"Port", func(f *Fake) error { _, err := f.Port(ctx, "p1"); return err }, "Port p1"},
		{"ServerGroups", func(f *Fake) error { _, err := f.ServerGroups(ctx); return err }, "ServerGroups"},
	}
	for _, c := range calls {
		t.Run(c.method, func(t *testing.T) {
			f := NewFake(nil)
			f.FailNext(c.method, injected)
			if err := c.call(f); !errors.Is(err, injected) {
				t.Errorf("err = %v, want the injected failure", err)
			}
			if err := c.call(f); errors.Is(err, injected) {
				t.Errorf("the failure was injected twice")
			}
			if diff := cmp.Diff([]string{c.want, c.want}, f.Calls()); diff != "" {
				t.Errorf("calls (-want +got):\n%s", diff)
			}
		})
	}
}
