package openstack

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/google/go-cmp/cmp"
)

const portID = "b7a9e1d2-6c3f-4e5a-9b8c-0d1e2f3a4b5c"

// neutronPort is a port as Neutron shows it, bound to a server.
const neutronPort = `{"port": {"id": "` + portID + `", "name": "db-1-eth0",
	"network_id": "3a1e5c7b-9d2f-4e6a-8b0c-1d2e3f4a5b6c", "tenant_id": "6f70656e737461636b20342065766572",
	"project_id": "6f70656e737461636b20342065766572", "mac_address": "fa:16:3e:12:34:56", "admin_state_up": true,
	"status": "ACTIVE", "device_owner": "compute:nova", "device_id": "9168b536-cd40-4630-b43f-b259807c6e87",
	"fixed_ips": [{"subnet_id": "c0ffee00-1111-4222-8333-444455556666", "ip_address": "10.0.0.15"}],
	"security_groups": ["d1e2f3a4-0000-4000-8000-000000000001"], "binding:host_id": "compute1",
	"created_at": "2024-05-01T09:00:01Z", "updated_at": "2024-05-01T09:00:09Z", "revision_number": 4}}`

func TestCreatePort(t *testing.T) {
	tests := []struct {
		name      string
		port      Port
		wantBody  string
		status    int
		reply     string
		want      Port
		wantErr   error
		wantCalls int32
	}{
		{
			name: "every field that makes the port the same again is sent and the answer decoded",
			port: Port{
				Name: "db-1-eth0", NetworkID: "3a1e5c7b-9d2f-4e6a-8b0c-1d2e3f4a5b6c", ProjectID: "6f70656e737461636b20342065766572",
				MACAddress: "fa:16:3e:12:34:56", SecurityGroups: []string{"d1e2f3a4-0000-4000-8000-000000000001"},
				FixedIPs: []FixedIP{{SubnetID: "c0ffee00-1111-4222-8333-444455556666", IPAddress: "10.0.0.15"}},
			},
			wantBody: `{"port": {"network_id": "3a1e5c7b-9d2f-4e6a-8b0c-1d2e3f4a5b6c", "project_id": "6f70656e737461636b20342065766572",
				"mac_address": "fa:16:3e:12:34:56", "name": "db-1-eth0", "security_groups": ["d1e2f3a4-0000-4000-8000-000000000001"],
				"fixed_ips": [{"subnet_id": "c0ffee00-1111-4222-8333-444455556666", "ip_address": "10.0.0.15"}]}}`,
			status: http.StatusCreated, reply: neutronPort, wantCalls: 1,
			want: Port{
				ID: portID, Name: "db-1-eth0", NetworkID: "3a1e5c7b-9d2f-4e6a-8b0c-1d2e3f4a5b6c", ProjectID: "6f70656e737461636b20342065766572",
				MACAddress: "fa:16:3e:12:34:56", SecurityGroups: []string{"d1e2f3a4-0000-4000-8000-000000000001"},
				FixedIPs: []FixedIP{{SubnetID: "c0ffee00-1111-4222-8333-444455556666", IPAddress: "10.0.0.15"}},
				DeviceID: "9168b536-cd40-4630-b43f-b259807c6e87",
			},
		},
		{
			name:     "an empty list of security groups is sent, so the port gets none rather than the default",
			port:     Port{NetworkID: "n1", SecurityGroups: []string{}},
			wantBody: `{"port": {"network_id": "n1", "security_groups": []}}`,
			status:   http.StatusCreated, reply: neutronPort, wantCalls: 1,
		},
		{
			name:     "an address another port holds is a conflict, and a 409 is not retried",
			port:     Port{NetworkID: "n1", FixedIPs: []FixedIP{{SubnetID: "s1", IPAddress: "10.0.0.15"}}},
			wantBody: `{"port": {"network_id": "n1", "fixed_ips": [{"subnet_id": "s1", "ip_address": "10.0.0.15"}]}}`,
			status:   http.StatusConflict,
			reply:    `{"NeutronError": {"type": "IpAddressAlreadyAllocated", "message": "IP address 10.0.0.15 already allocated in subnet s1", "detail": ""}}`,
			wantErr:  ErrConflict, wantCalls: 1,
		},
		{
			name:     "a 500 may have created the port, so it is not sent twice",
			port:     Port{NetworkID: "n1"},
			wantBody: `{"port": {"network_id": "n1"}}`,
			status:   http.StatusInternalServerError, reply: `{"NeutronError": {"type": "HTTPInternalServerError", "message": "Request Failed: internal server error", "detail": ""}}`,
			wantErr: ErrUnavailable, wantCalls: 1,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newTestCloud(t)
			var calls atomic.Int32
			c.mux.HandleFunc("/network/v2.0/ports", func(w http.ResponseWriter, r *http.Request) {
				calls.Add(1)
				request{method: "POST", path: "/network/v2.0/ports", body: tt.wantBody}.check(t, r)
				reply(w, tt.status, tt.reply)
			})
			got, err := c.client().CreatePort(context.Background(), tt.port)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			if n := calls.Load(); n != tt.wantCalls {
				t.Errorf("requests = %d, want %d", n, tt.wantCalls)
			}
			if tt.want.ID != "" {
				if diff := cmp.Diff(tt.want, got); diff != "" {
					t.Errorf("port (-want +got):\n%s", diff)
				}
			}
		})
	}
}

func TestPortIsReadAndAGonePortIsNotFound(t *testing.T) {
	c := newTestCloud(t)
	c.mux.HandleFunc("/network/v2.0/ports/"+portID, func(w http.ResponseWriter, r *http.Request) {
		request{method: "GET", path: "/network/v2.0/ports/" + portID}.check(t, r)
		reply(w, http.StatusOK, neutronPort)
	})
	c.mux.HandleFunc("/network/v2.0/ports/gone", func(w http.ResponseWriter, r *http.Request) {
		reply(w, http.StatusNotFound, `{"NeutronError": {"type": "PortNotFound", "message": "Port gone could not be found.", "detail": ""}}`)
	})
	cl := c.client()
	got, err := cl.Port(context.Background(), portID)
	if err != nil {
		t.Fatalf("Port: %v", err)
	}
	if got.ID != portID || got.DeviceID != "9168b536-cd40-4630-b43f-b259807c6e87" || len(got.FixedIPs) != 1 {
		t.Errorf("port = %+v, want the one Neutron answered", got)
	}
	_, err = cl.Port(context.Background(), "gone")
	if !IsNotFound(err) {
		t.Fatalf("Port of a gone port: err = %v, want not found", err)
	}
	var ae *APIError
	if !errors.As(err, &ae) || ae.Service != "network" || ae.Message != "Port gone could not be found." {
		t.Errorf("err = %#v, want Neutron's message from the network service", ae)
	}
}

func TestPortCallsFailWithoutANetworkEndpointButTheLoginDoesNot(t *testing.T) {
	c := newTestCloud(t)
	c.locked(func() { c.noNetwork = true })
	c.mux.HandleFunc("/compute/v2.1/os-services", func(w http.ResponseWriter, r *http.Request) {
		reply(w, http.StatusOK, serviceListBody)
	})
	cl := c.client()
	if _, err := cl.FindComputeService(context.Background(), "compute1"); err != nil {
		t.Fatalf("FindComputeService: %v", err)
	}
	if _, err := cl.Port(context.Background(), portID); err == nil || !strings.Contains(err.Error(), "no network endpoint") {
		t.Errorf("Port without a network endpoint: err = %v, want one naming the missing endpoint", err)
	}
	if _, err := cl.CreatePort(context.Background(), Port{NetworkID: "n1"}); err == nil {
		t.Error("CreatePort without a network endpoint: no error")
	}
}

func TestFakeCreatePortRefusesAnAddressOrMACAnotherPortHolds(t *testing.T) {
	ctx := context.Background()
	f := NewFake(nil)
	held := f.AddPort(Port{
		NetworkID: "n1", MACAddress: "fa:16:3e:12:34:56", DeviceID: "s1",
		FixedIPs: []FixedIP{{SubnetID: "sub1", IPAddress: "10.0.0.15"}},
	})
	tests := []struct {
		name    string
		port    Port
		wantErr error
	}{
		{name: "the same address on the same subnet is a conflict", port: Port{NetworkID: "n1", FixedIPs: []FixedIP{{SubnetID: "sub1", IPAddress: "10.0.0.15"}}}, wantErr: ErrConflict},
		{name: "the same MAC address on the same network is a conflict", port: Port{NetworkID: "n1", MACAddress: "FA:16:3E:12:34:56"}, wantErr: ErrConflict},
		{name: "the same address on another subnet is fine", port: Port{NetworkID: "n2", FixedIPs: []FixedIP{{SubnetID: "sub2", IPAddress: "10.0.0.15"}}}},
		{name: "the same MAC address on another network is fine", port: Port{NetworkID: "n2", MACAddress: "fa:16:3e:12:34:56"}},
		{name: "a port without a network is a bad request", port: Port{Name: "p"}, wantErr: ErrBadRequest},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := f.CreatePort(ctx, tt.port)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			if err != nil {
				return
			}
			if got.ID == "" || got.ID == held.ID || got.DeviceID != "" || got.NetworkID != tt.port.NetworkID {
				t.Errorf("port = %+v, want a new, unbound port on %s", got, tt.port.NetworkID)
			}
			if read, err := f.Port(ctx, got.ID); err != nil || read.ID != got.ID {
				t.Errorf("Port(%s) = %+v, %v", got.ID, read, err)
			}
		})
	}
	_, err := f.Port(ctx, "gone")
	var ae *APIError
	if !IsNotFound(err) || !errors.As(err, &ae) || ae.Service != "network" {
		t.Errorf("Port of an unknown port: err = %v, want not found from the network service", err)
	}
}
