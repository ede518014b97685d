package openstack

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

const svcID = "e81d66a4-ddd3-4aba-8a84-171d1cb4d339"

func TestFindComputeService(t *testing.T) {
	tests := []struct {
		name    string
		reply   string
		want    Service
		wantErr error
	}{
		{
			name:  "the one nova-compute service of the host is returned",
			reply: serviceListBody,
			want: Service{
				ID: svcID, Host: "compute1", Binary: "nova-compute", Zone: "nova", Status: "enabled", State: "up",
				UpdatedAt: time.Date(2024, 5, 1, 10, 0, 5, 0, time.UTC),
			},
		},
		{
			name: "a forced-down, disabled service keeps its reason",
			reply: `{"services": [{"id": "` + svcID + `", "binary": "nova-compute", "host": "compute1", "zone": "nova",
				"status": "disabled", "state": "down", "forced_down": true, "disabled_reason": "computeha: fenced",
				"updated_at": "2024-05-01T10:00:05.000000"}]}`,
			want: Service{
				ID: svcID, Host: "compute1", Binary: "nova-compute", Zone: "nova", Status: "disabled", State: "down",
				ForcedDown: true, DisabledReason: "computeha: fenced", UpdatedAt: time.Date(2024, 5, 1, 10, 0, 5, 0, time.UTC),
			},
		},
		{name: "a host Nova does not know is not found", reply: `{"services": []}`, wantErr: ErrNotFound},
		{
			name: "a service of another host is not taken for this one",
			reply: `{"services": [{"id": "x", "binary": "nova-compute", "host": "COMPUTE1", "zone": "nova", "status": "enabled",
				"state": "up", "forced_down": false, "disabled_reason": null, "updated_at": null}]}`,
			wantErr: ErrNotFound,
		},
		{
			name: "two services of the same host name are ambiguous",
			reply: `{"services": [
				{"id": "a", "binary": "nova-compute", "host": "compute1", "zone": "nova", "status": "enabled", "state": "up", "forced_down": false, "disabled_reason": null, "updated_at": null},
				{"id": "b", "binary": "nova-compute", "host": "compute1", "zone": "az2", "status": "enabled", "state": "up", "forced_down": false, "disabled_reason": null, "updated_at": null}]}`,
			wantErr: ErrAmbiguous,
		},
		{
			name:    "a service in a down cell is unavailable",
			reply:   `{"services": [{"binary": "nova-compute", "host": "compute1", "status": "UNKNOWN"}]}`,
			wantErr: ErrUnavailable,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newTestCloud(t)
			c.mux.HandleFunc("/compute/v2.1/os-services", func(w http.ResponseWriter, r *http.Request) {
				request{
					method: "GET", path: "/compute/v2.1/os-services", version: ComputeMicroversion,
					query: url.Values{"binary": {"nova-compute"}, "host": {"compute1"}},
				}.check(t, r)
				reply(w, http.StatusOK, tt.reply)
			})
			got, err := c.client().FindComputeService(context.Background(), "compute1")
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("service (-want +got):\n%s", diff)
			}
		})
	}
}

func TestComputeServices(t *testing.T) {
	c := newTestCloud(t)
	c.mux.HandleFunc("/compute/v2.1/os-services", func(w http.ResponseWriter, r *http.Request) {
		request{
			method: "GET", path: "/compute/v2.1/os-services", version: ComputeMicroversion,
			query: url.Values{"binary": {"nova-compute"}},
		}.check(t, r)
		reply(w, http.StatusOK, `{"services": [
			{"id": "a", "binary": "nova-compute", "host": "compute1", "zone": "nova", "status": "enabled", "state": "up", "forced_down": false, "disabled_reason": null, "updated_at": null},
			{"id": "b", "binary": "nova-compute", "host": "compute2", "zone": "nova", "status": "disabled", "state": "down", "forced_down": true, "disabled_reason": "operator: repair", "updated_at": null},
			{"id": "c", "binary": "nova-scheduler", "host": "ctl1", "zone": "internal", "status": "enabled", "state": "up", "forced_down": false, "disabled_reason": null, "updated_at": null},
			{"binary": "nova-compute", "host": "compute3", "status": "UNKNOWN"}]}`)
	})
	got, err := c.client().ComputeServices(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	want := []Service{
		{ID: "a", Host: "compute1", Binary: "nova-compute", Zone: "nova", Status: "enabled", State: "up"},
		{ID: "b", Host: "compute2", Binary: "nova-compute", Zone: "nova", Status: "disabled", State: "down", ForcedDown: true, DisabledReason: "operator: repair"},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("services (-want +got), the scheduler's and the down cell's left out:\n%s", diff)
	}
}

func TestServiceUpdatesSendTheirOwnBody(t *testing.T) {
	const updated = `{"service": {"id": "` + svcID + `", "binary": "nova-compute", "host": "compute1",
		"zone": "nova", "status": "disabled", "state": "down", "forced_down": true,
		"disabled_reason": "computeha: fenced", "updated_at": "2024-05-01T10:00:05.000000"}}`
	const refused = `{"badRequest": {"code": 400, "message": "Unable to force up host compute1 as ` +
		"`done`" + ` evacuation migration records remain associated with the host. Ensure the compute service has been restarted, allowing these records to move to ` +
		"`completed`" + ` before retrying this request."}}`
	tests := []struct {
		name     string
		call     func(Client) (Service, error)
		wantBody string
		status   int
		reply    string
		wantErr  error
	}{
		{
			name: "disable sends the status and the reason",
			call: func(c Client) (Service, error) {
				return c.DisableService(context.Background(), svcID, "computeha: fenced")
			},
			wantBody: `{"status": "disabled", "disabled_reason": "computeha: fenced"}`,
		},
		{
			name:     "enable sends only the status",
			call:     func(c Client) (Service, error) { return c.EnableService(context.Background(), svcID) },
			wantBody: `{"status": "enabled"}`,
		},
		{
			name:     "force down sends forced_down true",
			call:     func(c Client) (Service, error) { return c.ForceDown(context.Background(), svcID) },
			wantBody: `{"forced_down": true}`,
		},
		{
			name:     "unforce sends forced_down false, which gophercloud's UpdateOpts would drop",
			call:     func(c Client) (Service, error) { return c.UnforceDown(context.Background(), svcID) },
			wantBody: `{"forced_down": false}`,
		},
		{
			name:     "unforce refused while done evacuations remain is classified as such",
			call:     func(c Client) (Service, error) { return c.UnforceDown(context.Background(), svcID) },
			wantBody: `{"forced_down": false}`,
			status:   http.StatusBadRequest, reply: refused, wantErr: ErrEvacuationsPending,
		},
		{
			name:     "an unknown service id is not found",
			call:     func(c Client) (Service, error) { return c.ForceDown(context.Background(), svcID) },
			wantBody: `{"forced_down": true}`,
			status:   http.StatusNotFound, reply: `{"itemNotFound": {"code": 404, "message": "Service ` + svcID + ` not found."}}`,
			wantErr: ErrNotFound,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newTestCloud(t)
			var calls atomic.Int32
			c.mux.HandleFunc("/compute/v2.1/os-services/"+svcID, func(w http.ResponseWriter, r *http.Request) {
				calls.Add(1)
				request{method: "PUT", path: "/compute/v2.1/os-services/" + svcID, version: ComputeMicroversion, body: tt.wantBody}.check(t, r)
				if tt.status != 0 {
					reply(w, tt.status, tt.reply)
					return
				}
				reply(w, http.StatusOK, updated)
			})
			got, err := tt.call(c.client())
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			if n := calls.Load(); n != 1 {
				t.Errorf("requests = %d, want 1", n)
			}
			if tt.wantErr == nil && (got.ID != svcID || !got.ForcedDown || got.DisabledReason != "computeha: fenced") {
				t.Errorf("service = %+v, want the one Nova answered", got)
			}
		})
	}
}

func TestEvacuate(t *testing.T) {
	tests := []struct {
		name      string
		target    string
		wantBody  string
		status    int
		reply     string
		wantErr   error
		wantCalls int32
	}{
		{
			name:   "a target host is sent without onSharedStorage and the empty 200 answer is success",
			target: "compute2", wantBody: `{"evacuate": {"host": "compute2"}}`,
			status: http.StatusOK, wantCalls: 1,
		},
		{
			name:     "without a target the scheduler chooses and the body is empty",
			wantBody: `{"evacuate": {}}`, status: http.StatusOK, wantCalls: 1,
		},
		{
			name:   "a source service still up is refused and classified, not retried",
			target: "compute2", wantBody: `{"evacuate": {"host": "compute2"}}`,
			status: http.StatusBadRequest, reply: `{"badRequest": {"code": 400, "message": "Compute service of compute1 is still in use."}}`,
			wantErr: ErrSourceServiceUp, wantCalls: 1,
		},
		{
			name:     "a server with a task in progress is a conflict, not retried",
			wantBody: `{"evacuate": {}}`,
			status:   http.StatusConflict, reply: `{"conflictingRequest": {"code": 409, "message": "Cannot 'evacuate' instance 3c6a8b6e while it is in task_state rebuilding"}}`,
			wantErr: ErrConflict, wantCalls: 1,
		},
		{
			name:   "an unknown target host is not found",
			target: "compute9", wantBody: `{"evacuate": {"host": "compute9"}}`,
			status: http.StatusNotFound, reply: `{"itemNotFound": {"code": 404, "message": "Compute host compute9 could not be found."}}`,
			wantErr: ErrNotFound, wantCalls: 1,
		},
		{
			name:     "a 500 may have been acted on, so an evacuation is not sent twice",
			wantBody: `{"evacuate": {}}`,
			status:   http.StatusInternalServerError, reply: `{"computeFault": {"code": 500, "message": "Unexpected API Error."}}`,
			wantErr: ErrUnavailable, wantCalls: 1,
		},
		{
			name:     "a 503 was refused before any work, so it is retried up to the budget",
			wantBody: `{"evacuate": {}}`,
			status:   http.StatusServiceUnavailable, reply: `<html><body><h1>503 Service Unavailable</h1></body></html>`,
			wantErr: ErrUnavailable, wantCalls: 3,
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
					// Nova ≥2.14: 200, no body at all.
					w.Header().Set("Content-Length", "0")
					w.WriteHeader(tt.status)
					return
				}
				reply(w, tt.status, tt.reply)
			})
			err := c.client().Evacuate(context.Background(), id, tt.target)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			if n := calls.Load(); n != tt.wantCalls {
				t.Errorf("requests = %d, want %d", n, tt.wantCalls)
			}
		})
	}
}

func TestResetStateSendsOSResetState(t *testing.T) {
	const id = "3c6a8b6e-3f0e-4b43-9b6a-0d1c2b3a4f5e"
	c := newTestCloud(t)
	var calls atomic.Int32
	c.mux.HandleFunc("/compute/v2.1/servers/"+id+"/action", func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		request{
			method: "POST", path: "/compute/v2.1/servers/" + id + "/action", version: ComputeMicroversion,
			body: `{"os-resetState": {"state": "active"}}`,
		}.check(t, r)
		w.Header().Set("Content-Length", "0")
		w.WriteHeader(http.StatusAccepted)
	})
	cl := c.client()
	if err := cl.ResetState(context.Background(), id, "active"); err != nil {
		t.Fatal(err)
	}
	if n := calls.Load(); n != 1 {
		t.Errorf("requests = %d, want 1", n)
	}
	if err := cl.ResetState(context.Background(), id, "deleted"); err == nil || calls.Load() != 1 {
		t.Errorf("a state other than active or error was sent (err %v)", err)
	}
}

func TestRetriesOfReads(t *testing.T) {
	tests := []struct {
		name      string
		statuses  []int // answered in turn; the last repeats
		wantErr   error
		wantCalls int32
	}{
		{name: "a 503 then success succeeds on the second attempt", statuses: []int{503, 200}, wantCalls: 2},
		{name: "a 502 and a 504 then success succeeds on the third attempt", statuses: []int{502, 504, 200}, wantCalls: 3},
		{name: "a 400 is not retried", statuses: []int{400}, wantErr: ErrBadRequest, wantCalls: 1},
		{name: "a 403 is not retried", statuses: []int{403}, wantErr: ErrForbidden, wantCalls: 1},
		{name: "a 500 every time gives up after the attempt budget", statuses: []int{500}, wantErr: ErrUnavailable, wantCalls: 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newTestCloud(t)
			var calls atomic.Int32
			c.mux.HandleFunc("/compute/v2.1/os-services", func(w http.ResponseWriter, r *http.Request) {
				n := int(calls.Add(1))
				status := tt.statuses[min(n, len(tt.statuses))-1]
				if status == 200 {
					reply(w, http.StatusOK, serviceListBody)
					return
				}
				reply(w, status, `{"computeFault": {"code": 500, "message": "Unexpected API Error. Please report this at http://bugs.launchpad.net/nova/ and attach the Nova API log if possible."}}`)
			})
			_, err := c.client().FindComputeService(context.Background(), "compute1")
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			if n := calls.Load(); n != tt.wantCalls {
				t.Errorf("requests = %d, want %d", n, tt.wantCalls)
			}
		})
	}
}

func TestAnAttemptThatHangsTimesOutAndIsRetried(t *testing.T) {
	c := newTestCloud(t)
	var calls atomic.Int32
	c.mux.HandleFunc("/compute/v2.1/os-services", func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1) == 1 {
			<-r.Context().Done() // never answers the first attempt
			return
		}
		reply(w, http.StatusOK, serviceListBody)
	})
	cl, err := New(context.Background(), Options{
		Cloud: "lab", CloudsFile: c.cloudsYAML(passwordAuth), Retry: fastRetry, CallTimeout: 200 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cl.FindComputeService(context.Background(), "compute1"); err != nil {
		t.Fatalf("FindComputeService: %v", err)
	}
	if n := calls.Load(); n != 2 {
		t.Errorf("requests = %d, want 2", n)
	}
}

func TestCallerContextEndsTheRetries(t *testing.T) {
	c := newTestCloud(t)
	c.mux.HandleFunc("/compute/v2.1/os-services", func(w http.ResponseWriter, r *http.Request) {
		reply(w, http.StatusServiceUnavailable, `{}`)
	})
	cl, err := New(context.Background(), Options{
		Cloud: "lab", CloudsFile: c.cloudsYAML(passwordAuth),
		Retry: RetryPolicy{Attempts: 100, BaseDelay: 50 * time.Millisecond, MaxDelay: 50 * time.Millisecond},
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 150*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err = cl.FindComputeService(ctx, "compute1")
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want the caller's deadline", err)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("returned after %s, want soon after the caller's 150 ms deadline", d)
	}
}
