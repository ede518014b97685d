package openstack

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/google/go-cmp/cmp"
)

const (
	imageServerID  = "9168b536-cd40-4630-b43f-b259807c6e87"
	volumeServerID = "2ce4c5b3-2866-4972-93ce-77a2ea46a7f9"
	ownerID        = "e0c1d2b3a4f5469788796a5b4c3d2e1f"
	otherProject   = "0a1b2c3d4e5f46a7b8c9d0e1f2a3b4c5"
)

// imageServer is GET /servers/{id} at 2.69 (admin view) of a server booted from an image, with a
// data volume, a key pair, user data and two ports. Its addresses list the "storage" network
// first: that is its interfaces' order, which Neutron's port listing does not keep.
const imageServer = `{"server": {
	"id": "` + imageServerID + `", "name": "db-1", "status": "ACTIVE",
	"tenant_id": "6f70656e737461636b20342065766572", "user_id": "` + ownerID + `",
	"key_name": "db-key", "locked": false,
	"image": {"id": "70a599e0-31e7-49b7-b260-868f441e862b", "links": []},
	"flavor": {"vcpus": 2, "ram": 2048, "disk": 20, "ephemeral": 0, "swap": 0, "original_name": "m1.small", "extra_specs": {"evacuable": "true"}},
	"metadata": {"HA_Enabled": "True"}, "tags": ["tier-db"],
	"addresses": {
		"storage": [{"addr": "10.1.0.7", "version": 4, "OS-EXT-IPS:type": "fixed", "OS-EXT-IPS-MAC:mac_addr": "fa:16:3e:ab:cd:ef"}],
		"private": [{"addr": "10.0.0.15", "version": 4, "OS-EXT-IPS:type": "fixed", "OS-EXT-IPS-MAC:mac_addr": "fa:16:3e:12:34:56"},
		            {"addr": "203.0.113.9", "version": 4, "OS-EXT-IPS:type": "floating", "OS-EXT-IPS-MAC:mac_addr": "fa:16:3e:12:34:56"}]},
	"os-extended-volumes:volumes_attached": [{"id": "0d5e8a9b-data-4c1d-9e2f-3a4b5c6d7e8f", "delete_on_termination": false}],
	"OS-EXT-AZ:availability_zone": "nova", "OS-EXT-SRV-ATTR:host": "compute1", "OS-EXT-SRV-ATTR:hypervisor_hostname": "compute1",
	"OS-EXT-SRV-ATTR:root_device_name": "/dev/vda", "OS-EXT-SRV-ATTR:user_data": "IyEvYmluL3NoCmVjaG8gaGVsbG8K",
	"OS-EXT-STS:task_state": null, "OS-EXT-STS:vm_state": "active", "OS-EXT-STS:power_state": 1
}}`

// volumeServer boots from a volume ("image" is ""): its boot volume is the one attached on
// its root device, /dev/vda, listed second.
const volumeServer = `{"server": {
	"id": "` + volumeServerID + `", "name": "app-vol", "status": "SHUTOFF",
	"tenant_id": "0a1b2c3d", "user_id": "demo", "key_name": null, "image": "",
	"flavor": {"vcpus": 1, "ram": 512, "disk": 0, "ephemeral": 0, "swap": "", "original_name": "m1.tiny", "extra_specs": {}},
	"metadata": {}, "tags": [], "addresses": {},
	"os-extended-volumes:volumes_attached": [
		{"id": "5f4e3d2c-data-4b1a-8c9d-0e1f2a3b4c5d", "delete_on_termination": false},
		{"id": "7a6b5c4d-boot-4e2f-9a0b-1c2d3e4f5a6b", "delete_on_termination": true}],
	"OS-EXT-AZ:availability_zone": "az2", "OS-EXT-SRV-ATTR:host": "compute1", "OS-EXT-SRV-ATTR:root_device_name": "/dev/vda",
	"OS-EXT-SRV-ATTR:user_data": null, "OS-EXT-STS:task_state": null, "OS-EXT-STS:vm_state": "stopped"
}}`

const volumeAttachments = `{"volumeAttachments": [
	{"id": "5f4e3d2c-data-4b1a-8c9d-0e1f2a3b4c5d", "serverId": "` + volumeServerID + `", "volumeId": "5f4e3d2c-data-4b1a-8c9d-0e1f2a3b4c5d", "device": "/dev/vdb", "tag": null},
	{"id": "7a6b5c4d-boot-4e2f-9a0b-1c2d3e4f5a6b", "serverId": "` + volumeServerID + `", "volumeId": "7a6b5c4d-boot-4e2f-9a0b-1c2d3e4f5a6b", "device": "/dev/vda", "tag": null}]}`

// imageServerPorts: the "private" port is older, so Neutron lists it first.
const imageServerPorts = `{"ports": [
	{"id": "11111111-priv-4aaa-8bbb-cccccccccccc", "name": "", "network_id": "net-private", "project_id": "6f70656e737461636b20342065766572",
	 "mac_address": "fa:16:3e:12:34:56", "device_id": "` + imageServerID + `", "security_groups": ["sg-default"],
	 "fixed_ips": [{"subnet_id": "subnet-private", "ip_address": "10.0.0.15"}], "created_at": "2024-05-01T09:00:01Z"},
	{"id": "22222222-stor-4aaa-8bbb-cccccccccccc", "name": "storage", "network_id": "net-storage", "project_id": "6f70656e737461636b20342065766572",
	 "mac_address": "fa:16:3e:ab:cd:ef", "device_id": "` + imageServerID + `", "security_groups": [],
	 "fixed_ips": [{"subnet_id": "subnet-storage", "ip_address": "10.1.0.7"}], "created_at": "2024-05-01T09:00:02Z"}]}`

// specCloud serves what ServerSpec reads: the two servers, flavors on two pages, the server
// groups, the volume attachments of the volume-backed server and the ports. flavors2 is the
// second flavor page.
func specCloud(t *testing.T, flavors2 string) *testCloud {
	t.Helper()
	c := newTestCloud(t)
	c.mux.HandleFunc("/compute/v2.1/servers/"+imageServerID, func(w http.ResponseWriter, r *http.Request) {
		request{method: "GET", path: "/compute/v2.1/servers/" + imageServerID, version: ComputeMicroversion}.check(t, r)
		reply(w, http.StatusOK, imageServer)
	})
	c.mux.HandleFunc("/compute/v2.1/servers/"+volumeServerID, func(w http.ResponseWriter, r *http.Request) {
		reply(w, http.StatusOK, volumeServer)
	})
	c.mux.HandleFunc("/compute/v2.1/servers/"+imageServerID+"/os-volume_attachments", func(w http.ResponseWriter, r *http.Request) {
		t.Error("the attachments of a server booted from an image were read")
		reply(w, http.StatusOK, `{"volumeAttachments": []}`)
	})
	c.mux.HandleFunc("/compute/v2.1/servers/"+volumeServerID+"/os-volume_attachments", func(w http.ResponseWriter, r *http.Request) {
		request{method: "GET", path: "/compute/v2.1/servers/" + volumeServerID + "/os-volume_attachments", version: ComputeMicroversion}.check(t, r)
		reply(w, http.StatusOK, volumeAttachments)
	})
	c.mux.HandleFunc("/compute/v2.1/flavors/detail", func(w http.ResponseWriter, r *http.Request) {
		q := url.Values{"is_public": {"None"}, "limit": {"200"}}
		body := `{"flavors": [{"id": "1", "name": "m1.tiny", "vcpus": 1, "ram": 512, "disk": 1, "OS-FLV-EXT-DATA:ephemeral": 0, "os-flavor-access:is_public": true}],
			"flavors_links": [{"href": "http://nova.internal:8774/v2.1/flavors/detail?is_public=None&limit=200&marker=1", "rel": "next"}]}`
		if m := r.URL.Query().Get("marker"); m != "" {
			q.Set("marker", "1")
			body = flavors2
		}
		request{method: "GET", path: "/compute/v2.1/flavors/detail", query: q, version: ComputeMicroversion}.check(t, r)
		reply(w, http.StatusOK, body)
	})
	c.mux.HandleFunc("/compute/v2.1/os-server-groups", func(w http.ResponseWriter, r *http.Request) {
		reply(w, http.StatusOK, serverGroupPages[r.URL.Query().Get("offset")])
	})
	c.mux.HandleFunc("/network/v2.0/ports", func(w http.ResponseWriter, r *http.Request) {
		switch dev := r.URL.Query().Get("device_id"); dev {
		case imageServerID:
			request{method: "GET", path: "/network/v2.0/ports", query: url.Values{"device_id": {dev}}}.check(t, r)
			reply(w, http.StatusOK, imageServerPorts)
		default:
			reply(w, http.StatusOK, `{"ports": []}`)
		}
	})
	return c
}

const flavorsPage2 = `{"flavors": [{"id": "6c8e2f1a-small", "name": "m1.small", "vcpus": 2, "ram": 2048, "disk": 20}]}`

func TestServerSpecOfAServerBootedFromAnImage(t *testing.T) {
	c := specCloud(t, flavorsPage2)
	got, err := c.client().ServerSpec(context.Background(), imageServerID)
	if err != nil {
		t.Fatalf("ServerSpec: %v", err)
	}
	want := ServerSpec{
		Name: "db-1", ProjectID: "6f70656e737461636b20342065766572", UserID: ownerID,
		FlavorID: "6c8e2f1a-small", FlavorName: "m1.small", ImageID: "70a599e0-31e7-49b7-b260-868f441e862b",
		DataVolumes: []string{"0d5e8a9b-data-4c1d-9e2f-3a4b5c6d7e8f"}, LocalDisks: true,
		Metadata: map[string]string{"HA_Enabled": "True"}, Tags: []string{"tier-db"},
		KeyName: "db-key", KeyOwner: ownerID, UserData: "IyEvYmluL3NoCmVjaG8gaGVsbG8K",
		AvailabilityZone: "nova", Group: "616fb98f-46ca-475e-917e-2563e5a8cd19",
		Ports: []Port{
			{
				ID: "22222222-stor-4aaa-8bbb-cccccccccccc", Name: "storage", NetworkID: "net-storage", ProjectID: "6f70656e737461636b20342065766572",
				MACAddress: "fa:16:3e:ab:cd:ef", FixedIPs: []FixedIP{{SubnetID: "subnet-storage", IPAddress: "10.1.0.7"}},
				SecurityGroups: []string{}, DeviceID: imageServerID,
			},
			{
				ID: "11111111-priv-4aaa-8bbb-cccccccccccc", NetworkID: "net-private", ProjectID: "6f70656e737461636b20342065766572",
				MACAddress: "fa:16:3e:12:34:56", FixedIPs: []FixedIP{{SubnetID: "subnet-private", IPAddress: "10.0.0.15"}},
				SecurityGroups: []string{"sg-default"}, DeviceID: imageServerID,
			},
		},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("spec (-want +got):\n%s", diff)
	}
}

func TestServerSpecOfAServerBootedFromAVolume(t *testing.T) {
	c := specCloud(t, flavorsPage2)
	got, err := c.client().ServerSpec(context.Background(), volumeServerID)
	if err != nil {
		t.Fatalf("ServerSpec: %v", err)
	}
	want := ServerSpec{
		Name: "app-vol", ProjectID: "0a1b2c3d", UserID: "demo", FlavorID: "1", FlavorName: "m1.tiny",
		BootVolume: "7a6b5c4d-boot-4e2f-9a0b-1c2d3e4f5a6b", BootVolumeDeleteOnTerminate: true,
		DataVolumes: []string{"5f4e3d2c-data-4b1a-8c9d-0e1f2a3b4c5d"},
		Metadata:    map[string]string{}, Tags: []string{}, AvailabilityZone: "az2",
		Group: "a3e8d6b8-0c1e-4f0e-8c43-3c5f2a1b0d9e",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("spec (-want +got):\n%s", diff)
	}
}

func TestServerSpecFailsClearlyWhenTheFlavorIsGone(t *testing.T) {
	c := specCloud(t, `{"flavors": [{"id": "2", "name": "m1.medium"}]}`)
	_, err := c.client().ServerSpec(context.Background(), imageServerID)
	if !IsNotFound(err) || !strings.Contains(err.Error(), `no flavor is named "m1.small" any more`) {
		t.Fatalf("err = %v, want not found naming the flavor", err)
	}
}

func TestServerSpecOfAServerInADownCellIsUnavailable(t *testing.T) {
	c := newTestCloud(t)
	c.mux.HandleFunc("/compute/v2.1/servers/"+imageServerID, func(w http.ResponseWriter, r *http.Request) {
		reply(w, http.StatusOK, `{"server": {"id": "`+imageServerID+`", "status": "UNKNOWN", "tenant_id": "0a1b2c3d"}}`)
	})
	if _, err := c.client().ServerSpec(context.Background(), imageServerID); !IsUnavailable(err) {
		t.Fatalf("err = %v, want unavailable", err)
	}
}

// createdServer is Nova's 202 answer to POST /servers.
const createdServer = `{"server": {"id": "c5a0e4b2-7f1d-4e3c-9a8b-6d5e4f3a2b1c", "links": [], "OS-DCF:diskConfig": "MANUAL",
	"security_groups": [{"name": "default"}], "adminPass": "kJ9vG4pX2mQ7"}}`

// imageSpec is the spec of imageServer to create again on compute2, in the login's project.
func imageSpec() ServerSpec {
	return ServerSpec{
		Name: "db-1", ProjectID: testProjectID, UserID: ownerID,
		FlavorID: "6c8e2f1a-small", FlavorName: "m1.small", ImageID: "70a599e0-31e7-49b7-b260-868f441e862b",
		DataVolumes: []string{"0d5e8a9b-data-4c1d-9e2f-3a4b5c6d7e8f"}, LocalDisks: true,
		Metadata: map[string]string{"HA_Enabled": "True"}, Tags: []string{"tier-db"},
		KeyName: "db-key", KeyOwner: testUserID, UserData: "IyEvYmluL3NoCmVjaG8gaGVsbG8K",
		AvailabilityZone: "nova", Group: "616fb98f-46ca-475e-917e-2563e5a8cd19",
		Ports: []Port{{ID: "22222222-stor-4aaa-8bbb-cccccccccccc"}, {ID: "11111111-priv-4aaa-8bbb-cccccccccccc"}},
		Host:  "compute2",
	}
}

func TestCreateServer(t *testing.T) {
	volumeSpec := ServerSpec{
		Name: "app-vol", ProjectID: testProjectID, FlavorID: "1",
		BootVolume: "7a6b5c4d-boot-4e2f-9a0b-1c2d3e4f5a6b", BootVolumeDeleteOnTerminate: true,
		DataVolumes: []string{"5f4e3d2c-data-4b1a-8c9d-0e1f2a3b4c5d"},
	}
	tests := []struct {
		name      string
		spec      ServerSpec
		wantBody  string // "" when no request may be sent
		status    int
		reply     string
		wantErr   error
		wantCalls int32
	}{
		{
			name: "a server booted from an image is created with every field of its spec, its image first among its block devices",
			spec: imageSpec(),
			wantBody: `{"server": {"name": "db-1", "flavorRef": "6c8e2f1a-small", "imageRef": "70a599e0-31e7-49b7-b260-868f441e862b",
				"block_device_mapping_v2": [
					{"uuid": "70a599e0-31e7-49b7-b260-868f441e862b", "source_type": "image", "destination_type": "local", "boot_index": 0, "delete_on_termination": true},
					{"uuid": "0d5e8a9b-data-4c1d-9e2f-3a4b5c6d7e8f", "source_type": "volume", "destination_type": "volume", "boot_index": -1, "delete_on_termination": false}],
				"networks": [{"port": "22222222-stor-4aaa-8bbb-cccccccccccc"}, {"port": "11111111-priv-4aaa-8bbb-cccccccccccc"}],
				"key_name": "db-key", "user_data": "IyEvYmluL3NoCmVjaG8gaGVsbG8K", "availability_zone": "nova", "host": "compute2",
				"metadata": {"HA_Enabled": "True"}, "tags": ["tier-db"]},
				"os:scheduler_hints": {"group": "616fb98f-46ca-475e-917e-2563e5a8cd19"}}`,
			status: http.StatusAccepted, reply: createdServer, wantCalls: 1,
		},
		{
			name: "a server booted from a volume keeps that volume when deleted again, and without ports has networks none",
			spec: volumeSpec,
			wantBody: `{"server": {"name": "app-vol", "flavorRef": "1", "networks": "none",
				"block_device_mapping_v2": [
					{"uuid": "7a6b5c4d-boot-4e2f-9a0b-1c2d3e4f5a6b", "source_type": "volume", "destination_type": "volume", "boot_index": 0, "delete_on_termination": false},
					{"uuid": "5f4e3d2c-data-4b1a-8c9d-0e1f2a3b4c5d", "source_type": "volume", "destination_type": "volume", "boot_index": -1, "delete_on_termination": false}]}}`,
			status: http.StatusAccepted, reply: createdServer, wantCalls: 1,
		},
		{
			name: "a port without an id is refused before anything is sent",
			spec: ServerSpec{Name: "x", ProjectID: testProjectID, FlavorID: "1", ImageID: "i", Ports: []Port{{NetworkID: "n1"}}},
		},
		{
			name: "a spec with neither an image nor a boot volume is refused before anything is sent",
			spec: ServerSpec{Name: "x", ProjectID: testProjectID, FlavorID: "1"},
		},
		{
			name:     "a host Nova does not know is a bad request",
			spec:     ServerSpec{Name: "x", ProjectID: testProjectID, FlavorID: "1", ImageID: "i", Host: "compute9"},
			wantBody: `{"server": {"name": "x", "flavorRef": "1", "imageRef": "i", "networks": "none", "host": "compute9"}}`,
			status:   http.StatusBadRequest, reply: `{"badRequest": {"code": 400, "message": "Compute host compute9 could not be found."}}`,
			wantErr: ErrBadRequest, wantCalls: 1,
		},
		{
			name:     "a 500 may have created the server, so it is not sent twice",
			spec:     ServerSpec{Name: "x", ProjectID: testProjectID, FlavorID: "1", ImageID: "i"},
			wantBody: `{"server": {"name": "x", "flavorRef": "1", "imageRef": "i", "networks": "none"}}`,
			status:   http.StatusInternalServerError, reply: `{"computeFault": {"code": 500, "message": "Unexpected API Error."}}`,
			wantErr: ErrUnavailable, wantCalls: 1,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newTestCloud(t)
			var calls atomic.Int32
			c.mux.HandleFunc("/compute/v2.1/servers", func(w http.ResponseWriter, r *http.Request) {
				calls.Add(1)
				if tt.wantBody == "" {
					t.Errorf("a request was sent: %s %s", r.Method, r.URL.Path)
				}
				request{method: "POST", path: "/compute/v2.1/servers", version: CreateServerMicroversion, body: tt.wantBody}.check(t, r)
				if p := c.projectOf(r); p != testProjectID {
					t.Errorf("created with a token of project %q, want the login's", p)
				}
				reply(w, tt.status, tt.reply)
			})
			id, err := c.client().CreateServer(context.Background(), tt.spec)
			if tt.wantBody == "" {
				if err == nil {
					t.Fatal("CreateServer: no error")
				}
				return
			}
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			if tt.wantErr == nil && id != "c5a0e4b2-7f1d-4e3c-9a8b-6d5e4f3a2b1c" {
				t.Errorf("id = %q, want the one Nova answered", id)
			}
			if n := calls.Load(); n != tt.wantCalls {
				t.Errorf("requests = %d, want %d", n, tt.wantCalls)
			}
			if n := c.rescopeCount(); n != 0 {
				t.Errorf("rescopes = %d, want none for the login's own project", n)
			}
		})
	}
}

func TestOnlyTheCreateRequestIsSentAt274(t *testing.T) {
	c := newTestCloud(t)
	c.mux.HandleFunc("/compute/v2.1/servers", func(w http.ResponseWriter, r *http.Request) {
		request{
			method: "POST", path: "/compute/v2.1/servers", version: CreateServerMicroversion,
			body: `{"server": {"name": "x", "flavorRef": "1", "imageRef": "i", "networks": "none"}}`,
		}.check(t, r)
		reply(w, http.StatusAccepted, createdServer)
	})
	c.mux.HandleFunc("/compute/v2.1/servers/c5a0e4b2-7f1d-4e3c-9a8b-6d5e4f3a2b1c/action", func(w http.ResponseWriter, r *http.Request) {
		request{method: "POST", path: r.URL.Path, version: ComputeMicroversion, body: `{"os-start": null}`}.check(t, r)
		w.WriteHeader(http.StatusAccepted)
	})
	cl := c.client()
	for range 2 {
		id, err := cl.CreateServer(context.Background(), ServerSpec{Name: "x", FlavorID: "1", ImageID: "i"})
		if err != nil {
			t.Fatalf("CreateServer: %v", err)
		}
		if err := cl.StartServer(context.Background(), id); err != nil {
			t.Fatalf("StartServer: %v", err)
		}
	}
}

// createInProject registers a POST /servers that expects a token of project and counts calls.
func createInProject(t *testing.T, c *testCloud, project string, calls *atomic.Int32) {
	t.Helper()
	c.mux.HandleFunc("/compute/v2.1/servers", func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		if p := c.projectOf(r); p != project {
			t.Errorf("created with a token of project %q, want %q", p, project)
		}
		if got := r.Header.Get("X-OpenStack-Nova-API-Version"); got != CreateServerMicroversion {
			t.Errorf("microversion = %q, want %q", got, CreateServerMicroversion)
		}
		reply(w, http.StatusAccepted, createdServer)
	})
}

func TestCreateServerInAnotherProjectRescopesOnceAndReusesTheToken(t *testing.T) {
	c := newTestCloud(t)
	c.locked(func() { c.projects[otherProject] = true })
	var calls atomic.Int32
	createInProject(t, c, otherProject, &calls)
	cl := c.client()
	spec := ServerSpec{Name: "x", ProjectID: otherProject, FlavorID: "1", ImageID: "i"}
	for range 2 {
		if _, err := cl.CreateServer(context.Background(), spec); err != nil {
			t.Fatalf("CreateServer: %v", err)
		}
	}
	if n := c.rescopeCount(); n != 1 {
		t.Errorf("rescopes = %d, want 1 for two creates in the same project", n)
	}
	if n := c.loginCount(); n != 1 {
		t.Errorf("logins = %d, want 1", n)
	}

	// Every token expires: the rescoped one is refused, its renewal with the expired login
	// token too; the login logs in again, the token is rescoped from it and the create sent again.
	c.expireTokens()
	if _, err := cl.CreateServer(context.Background(), spec); err != nil {
		t.Fatalf("CreateServer after the tokens expired: %v", err)
	}
	if n := c.loginCount(); n != 2 {
		t.Errorf("logins = %d, want 2 (the first and one after the tokens expired)", n)
	}
	if n := c.rescopeCount(); n != 3 {
		t.Errorf("rescopes = %d, want 3 (the first, one refused with the expired login token, one with the new)", n)
	}
	// The attempt with the expired token is refused before it reaches Nova's handler.
	if n := calls.Load(); n != 3 {
		t.Errorf("create requests that reached Nova = %d, want 3", n)
	}
}

func TestCreateServerInAProjectWithoutARoleIsForbiddenAndNotAskedAgainAtOnce(t *testing.T) {
	c := newTestCloud(t)
	var calls atomic.Int32
	createInProject(t, c, otherProject, &calls)
	cl := c.client()
	spec := ServerSpec{Name: "x", ProjectID: otherProject, FlavorID: "1", ImageID: "i"}
	_, err := cl.CreateServer(context.Background(), spec)
	if !errors.Is(err, ErrForbidden) || errors.Is(err, ErrUnauthorized) {
		t.Fatalf("err = %v, want forbidden (not unauthorized: the credentials are fine)", err)
	}
	if want := "the cloud user has no role in project " + otherProject; !strings.Contains(err.Error(), want) {
		t.Errorf("err = %v, want it to say %q", err, want)
	}
	if strings.Contains(err.Error(), testPassword) || strings.Contains(err.Error(), "gAAAAAB") {
		t.Errorf("error text shows a secret: %v", err)
	}
	if n := c.rescopeCount(); n != 2 {
		t.Errorf("rescopes = %d, want 2 (once more after a fresh login, in case the login's token had expired)", n)
	}
	if _, err := cl.CreateServer(context.Background(), spec); !errors.Is(err, ErrForbidden) {
		t.Fatalf("second create: err = %v, want forbidden", err)
	}
	if n := c.rescopeCount(); n != 2 {
		t.Errorf("rescopes after a second create = %d, want still 2 (the refusal is remembered)", n)
	}
	if n := calls.Load(); n != 0 {
		t.Errorf("create requests = %d, want none", n)
	}
}

// keypairCloud plays Nova's key pairs: the owner's key pair db-key and the login user's own,
// imported ones.
type keypairCloud struct {
	mu      sync.Mutex
	own     map[string]string // name → public key, of the login's user
	imports int
}

const ownerPublicKey = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIG4rT3vTt99Ox5kndS4HmgTrKBT8SKzhK4rhGkEVGlCI owner@laptop"

func (k *keypairCloud) register(t *testing.T, c *testCloud) {
	c.mux.HandleFunc("GET /compute/v2.1/os-keypairs/{name}", func(w http.ResponseWriter, r *http.Request) {
		name := r.PathValue("name")
		if r.URL.Query().Get("user_id") == ownerID {
			request{method: "GET", path: "/compute/v2.1/os-keypairs/db-key", query: url.Values{"user_id": {ownerID}}, version: ComputeMicroversion}.check(t, r)
			reply(w, http.StatusOK, `{"keypair": {"name": "db-key", "public_key": "`+ownerPublicKey+`\n", "type": "ssh",
				"fingerprint": "1e:2c:9b:56:79:4b:45:77:f9:ca:7a:98:2c:b0:d5:3c", "user_id": "`+ownerID+`", "id": 7, "deleted": false,
				"created_at": "2024-04-30T12:00:00.000000", "updated_at": null, "deleted_at": null}}`)
			return
		}
		k.mu.Lock()
		pk, ok := k.own[name]
		k.mu.Unlock()
		if !ok {
			reply(w, http.StatusNotFound, `{"itemNotFound": {"code": 404, "message": "Keypair `+name+` not found for user `+testUserID+`"}}`)
			return
		}
		reply(w, http.StatusOK, `{"keypair": {"name": "`+name+`", "public_key": "`+pk+`", "type": "ssh", "user_id": "`+testUserID+`"}}`)
	})
	c.mux.HandleFunc("POST /compute/v2.1/os-keypairs", func(w http.ResponseWriter, r *http.Request) {
		request{
			method: "POST", path: "/compute/v2.1/os-keypairs", version: ComputeMicroversion,
			body: `{"keypair": {"name": "computeha-e0c1d2b3-db-key", "public_key": "` + ownerPublicKey + `\n", "type": "ssh"}}`,
		}.check(t, r)
		k.mu.Lock()
		k.imports++
		k.own["computeha-e0c1d2b3-db-key"] = ownerPublicKey
		k.mu.Unlock()
		reply(w, http.StatusCreated, `{"keypair": {"name": "computeha-e0c1d2b3-db-key", "type": "ssh", "user_id": "`+testUserID+`"}}`)
	})
}

func TestCreateServerCopiesAnotherUsersKeyPairOnceAndReusesIt(t *testing.T) {
	c := newTestCloud(t)
	k := &keypairCloud{own: map[string]string{}}
	k.register(t, c)
	var keyNames []string
	c.mux.HandleFunc("POST /compute/v2.1/servers", func(w http.ResponseWriter, r *http.Request) {
		var body struct {
			Server struct {
				KeyName string `json:"key_name"`
			} `json:"server"`
		}
		if err := decodeBody(r, &body); err != nil {
			t.Error(err)
		}
		k.mu.Lock()
		keyNames = append(keyNames, body.Server.KeyName)
		k.mu.Unlock()
		reply(w, http.StatusAccepted, createdServer)
	})
	cl := c.client()
	spec := ServerSpec{Name: "x", FlavorID: "1", ImageID: "i", KeyName: "db-key", KeyOwner: ownerID}
	for range 2 {
		if _, err := cl.CreateServer(context.Background(), spec); err != nil {
			t.Fatalf("CreateServer: %v", err)
		}
	}
	k.mu.Lock()
	if diff := cmp.Diff([]string{"computeha-e0c1d2b3-db-key", "computeha-e0c1d2b3-db-key"}, keyNames); diff != "" {
		t.Errorf("key names created with (-want +got):\n%s", diff)
	}
	if k.imports != 1 {
		t.Errorf("imports = %d, want 1", k.imports)
	}
	// A key pair of that name holding another key was not made by us: leave it, and fail.
	k.own["computeha-e0c1d2b3-db-key"] = "ssh-ed25519 AAAAsomeoneelse"
	k.mu.Unlock()
	if _, err := cl.CreateServer(context.Background(), spec); !IsConflict(err) {
		t.Errorf("CreateServer with a clashing copy: err = %v, want conflict", err)
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if len(keyNames) != 2 || k.imports != 1 {
		t.Errorf("creates = %d, imports = %d; want still 2 and 1", len(keyNames), k.imports)
	}
}

func TestCopiedKeyNamesAreDeterministicAndFitNova(t *testing.T) {
	if got := copiedKeyName("e0c1d2b3a4f5469788796a5b4c3d2e1f", "db-key"); got != "computeha-e0c1d2b3-db-key" {
		t.Errorf("copiedKeyName = %q", got)
	}
	if got := copiedKeyName("u1", strings.Repeat("k", 300)); len(got) != 255 || !strings.HasPrefix(got, "computeha-u1-kkk") {
		t.Errorf("copiedKeyName of a long name = %q (%d characters), want 255", got, len(got))
	}
}

func decodeBody(r *http.Request, v any) error { return json.NewDecoder(r.Body).Decode(v) }

// recreateLab is the fake lab with db-1 booted from an image, in a group, with two ports.
func recreateLab(t *testing.T) (*Fake, ServerGroup, Server, []Port) {
	t.Helper()
	f, _, _, _ := newFakeLab(t)
	f.AddCompute("compute3", "az2")
	srv := f.AddServer(Server{
		Name: "web-1", Host: "compute1", HypervisorHostname: "compute1", ProjectID: "p1", UserID: ownerID,
		AvailabilityZone: "nova", ImageID: "img-1", Metadata: map[string]string{"HA_Enabled": "True"}, Tags: []string{"web"},
		Flavor: Flavor{OriginalName: "m1.small", VCPUs: 2, RAMMB: 2048, DiskGB: 20},
	})
	g := f.AddServerGroup(ServerGroup{Name: "web", Policy: PolicyAntiAffinity, Members: []string{srv.ID}})
	ports := []Port{
		f.AddPort(Port{NetworkID: "n1", DeviceID: srv.ID, FixedIPs: []FixedIP{{SubnetID: "s1", IPAddress: "10.0.0.5"}}}),
		f.AddPort(Port{NetworkID: "n2", DeviceID: srv.ID}),
	}
	return f, g, srv, ports
}

func TestFakeServerSpecIsDerivedFromWhatTheFakeKnows(t *testing.T) {
	ctx := context.Background()
	f, g, srv, ports := recreateLab(t)
	got, err := f.ServerSpec(ctx, srv.ID)
	if err != nil {
		t.Fatalf("ServerSpec: %v", err)
	}
	want := ServerSpec{
		Name: "web-1", ProjectID: "p1", UserID: ownerID, FlavorID: "m1.small", FlavorName: "m1.small", ImageID: "img-1",
		LocalDisks: true, Metadata: map[string]string{"HA_Enabled": "True"}, Tags: []string{"web"},
		AvailabilityZone: "nova", Group: g.ID, Ports: ports,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("spec (-want +got):\n%s", diff)
	}

	f.AddFlavor("b3c5e7f9-small", Flavor{OriginalName: "m1.small"})
	f.DeleteFlavor("m1.small")
	if got, _ := f.ServerSpec(ctx, srv.ID); got.FlavorID != "b3c5e7f9-small" {
		t.Errorf("flavor id = %q, want the flavor now named m1.small", got.FlavorID)
	}
	f.DeleteFlavor("b3c5e7f9-small")
	if _, err := f.ServerSpec(ctx, srv.ID); !IsNotFound(err) || !strings.Contains(err.Error(), `"m1.small"`) {
		t.Errorf("ServerSpec with the flavor gone: err = %v, want not found naming it", err)
	}

	stored := ServerSpec{Name: "web-1", BootVolume: "vol-1", KeyName: "k", KeyOwner: ownerID}
	f.SetServerSpec(srv.ID, stored)
	if got, _ := f.ServerSpec(ctx, srv.ID); !cmp.Equal(stored, got) {
		t.Errorf("spec = %+v, want the stored one", got)
	}
	if _, err := f.ServerSpec(ctx, "nope"); !IsNotFound(err) {
		t.Errorf("ServerSpec of an unknown server: err = %v, want not found", err)
	}
}

func TestFakeCreateServer(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name       string
		spec       func(spec *ServerSpec, ports []Port)
		before     func(f *Fake)
		wantErr    error
		wantHost   string
		wantStatus string
		wantBound  bool
	}{
		{
			name: "on a named host the server is ACTIVE there with its ports bound", spec: func(s *ServerSpec, _ []Port) { s.Host = "compute2" },
			wantHost: "compute2", wantStatus: "ACTIVE", wantBound: true,
		},
		{
			name: "without a host the scheduler picks one within the zone", spec: func(s *ServerSpec, _ []Port) { s.AvailabilityZone = "az2" },
			wantHost: "compute3", wantStatus: "ACTIVE", wantBound: true,
		},
		{
			name:   "a named host that is down leaves the server in ERROR without a host and its ports unbound",
			spec:   func(s *ServerSpec, _ []Port) { s.Host = "compute2" },
			before: func(f *Fake) { f.services["compute2"].ForcedDown = true }, wantStatus: "ERROR",
		},
		{
			name: "a named host in another zone is no valid host", spec: func(s *ServerSpec, _ []Port) { s.Host = "compute3" },
			wantStatus: "ERROR",
		},
		{
			name: "a named host breaking the group's anti-affinity is no valid host",
			spec: func(s *ServerSpec, _ []Port) { s.Host = "compute2" },
			before: func(f *Fake) {
				f.AddServer(Server{ID: "peer", Host: "compute2"})
				f.groups[0].Members = append(f.groups[0].Members, "peer")
			},
			wantStatus: "ERROR",
		},
		{name: "an unknown host is a bad request", spec: func(s *ServerSpec, _ []Port) { s.Host = "compute9" }, wantErr: ErrBadRequest},
		{name: "an unknown flavor is a bad request", spec: func(s *ServerSpec, _ []Port) { s.FlavorID = "m1.huge" }, wantErr: ErrBadRequest},
		{name: "an unknown group is a bad request", spec: func(s *ServerSpec, _ []Port) { s.Group = "nope" }, wantErr: ErrBadRequest},
		{name: "an unknown port is a bad request", spec: func(s *ServerSpec, _ []Port) { s.Ports = []Port{{ID: "nope"}} }, wantErr: ErrBadRequest},
		{
			name: "a port bound to another server is a conflict", spec: func(s *ServerSpec, _ []Port) { s.Host = "compute2" },
			before: func(f *Fake) { f.ports[0].DeviceID = "someone-else" }, wantErr: ErrConflict,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, g, srv, ports := recreateLab(t)
			spec, err := f.ServerSpec(ctx, srv.ID)
			if err != nil {
				t.Fatal(err)
			}
			// What a recovery does: delete the server, keeping its ports, then create it again.
			if err := f.DeleteServer(ctx, srv.ID); err != nil {
				t.Fatal(err)
			}
			if tt.before != nil {
				tt.before(f)
			}
			tt.spec(&spec, ports)
			id, err := f.CreateServer(ctx, spec)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			if err != nil {
				return
			}
			got, _ := f.Server(ctx, id)
			if got.Host != tt.wantHost || got.Status != tt.wantStatus {
				t.Errorf("server on %q (%s), want on %q (%s)", got.Host, got.Status, tt.wantHost, tt.wantStatus)
			}
			if got.Name != "web-1" || got.ProjectID != "p1" || got.UserID != "computeha" || got.ImageID != "img-1" ||
				got.Flavor.OriginalName != "m1.small" || got.Flavor.VCPUs != 2 || got.Metadata["HA_Enabled"] != "True" {
				t.Errorf("server = %+v, want the spec's fields, the client's user and the flavor m1.small", got)
			}
			groups, _ := f.ServerGroups(ctx)
			if !slices.Contains(groups[0].Members, id) || groups[0].ID != g.ID {
				t.Errorf("group members = %v, want the new server among them", groups[0].Members)
			}
			for _, p := range ports {
				gotPort, _ := f.Port(ctx, p.ID)
				if bound := gotPort.DeviceID == id; bound != tt.wantBound {
					t.Errorf("port %s bound to %q, want bound to the new server: %v", p.ID, gotPort.DeviceID, tt.wantBound)
				}
			}
		})
	}
}

func TestFakeServerCreatedFromASpecReadsBackTheSameSpec(t *testing.T) {
	ctx := context.Background()
	f, _, _, _ := newFakeLab(t)
	f.AddFlavor("1", Flavor{OriginalName: "m1.tiny", EphemeralGB: 1})
	p := f.AddPort(Port{NetworkID: "n1"})
	spec := ServerSpec{
		Name: "app-vol", ProjectID: "p1", FlavorID: "1", BootVolume: "vol-boot", DataVolumes: []string{"vol-data"},
		KeyName: "db-key", KeyOwner: ownerID, UserData: "IyEvYmluL3NoCg==", Ports: []Port{p}, Host: "compute2",
	}
	id, err := f.CreateServer(ctx, spec)
	if err != nil {
		t.Fatalf("CreateServer: %v", err)
	}
	got, err := f.ServerSpec(ctx, id)
	if err != nil {
		t.Fatalf("ServerSpec: %v", err)
	}
	p.DeviceID = id
	want := ServerSpec{
		Name: "app-vol", ProjectID: "p1", UserID: "computeha", FlavorID: "1", FlavorName: "m1.tiny",
		BootVolume: "vol-boot", DataVolumes: []string{"vol-data"}, LocalDisks: true,
		KeyName: "computeha-e0c1d2b3-db-key", KeyOwner: "computeha", UserData: "IyEvYmluL3NoCg==",
		AvailabilityZone: "nova", Ports: []Port{p},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("spec (-want +got):\n%s", diff)
	}
}
