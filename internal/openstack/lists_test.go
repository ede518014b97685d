package openstack

import (
	"context"
	"net/http"
	"net/url"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// Two pages of GET /servers/detail at 2.69, shaped as Nova sends them (admin view). The next
// link names a host the client cannot reach: only its marker may be used.
const serversPage1 = `{"servers": [{
	"id": "9168b536-cd40-4630-b43f-b259807c6e87", "name": "db-1", "status": "ACTIVE",
	"tenant_id": "6f70656e737461636b20342065766572", "user_id": "admin", "hostId": "2091634baaccdc4c5a1d57069c833e402921df696b7f970791b12ec6",
	"host_status": "UP", "locked": false, "locked_reason": null, "description": null,
	"created": "2024-05-01T09:00:00Z", "updated": "2024-05-01T09:00:10Z", "key_name": null,
	"accessIPv4": "", "accessIPv6": "", "addresses": {}, "config_drive": "", "progress": 0,
	"image": {"id": "70a599e0-31e7-49b7-b260-868f441e862b", "links": [{"href": "http://nova.internal:8774/images/70a599e0-31e7-49b7-b260-868f441e862b", "rel": "bookmark"}]},
	"flavor": {"vcpus": 2, "ram": 2048, "disk": 20, "ephemeral": 0, "swap": 0, "original_name": "m1.small",
		"extra_specs": {"evacuable": "true", "hw:cpu_policy": "shared"}},
	"metadata": {"HA_Enabled": "True"}, "tags": ["tier-db"], "trusted_image_certificates": null,
	"security_groups": [{"name": "default"}], "os-extended-volumes:volumes_attached": [],
	"OS-DCF:diskConfig": "MANUAL", "OS-EXT-AZ:availability_zone": "nova",
	"OS-EXT-SRV-ATTR:host": "compute1", "OS-EXT-SRV-ATTR:hypervisor_hostname": "compute1",
	"OS-EXT-SRV-ATTR:instance_name": "instance-00000001", "OS-EXT-SRV-ATTR:hostname": "db-1",
	"OS-EXT-SRV-ATTR:reservation_id": "r-ov3q80zj", "OS-EXT-SRV-ATTR:launch_index": 0,
	"OS-EXT-SRV-ATTR:kernel_id": "", "OS-EXT-SRV-ATTR:ramdisk_id": "", "OS-EXT-SRV-ATTR:root_device_name": "/dev/vda",
	"OS-EXT-SRV-ATTR:user_data": null, "OS-EXT-STS:power_state": 1, "OS-EXT-STS:task_state": null,
	"OS-EXT-STS:vm_state": "active", "OS-SRV-USG:launched_at": "2024-05-01T09:00:09.000000", "OS-SRV-USG:terminated_at": null,
	"links": [{"href": "http://nova.internal:8774/v2.1/servers/9168b536-cd40-4630-b43f-b259807c6e87", "rel": "self"}]
}],
"servers_links": [{"href": "http://nova.internal:8774/v2.1/servers/detail?all_tenants=1&host=compute1&limit=200&marker=9168b536-cd40-4630-b43f-b259807c6e87", "rel": "next"}]}`

const serversPage2 = `{"servers": [{
	"id": "2ce4c5b3-2866-4972-93ce-77a2ea46a7f9", "name": "app-vol", "status": "SHUTOFF",
	"tenant_id": "6f70656e737461636b20342065766572", "user_id": "demo", "locked": true,
	"image": "",
	"flavor": {"vcpus": 1, "ram": 512, "disk": 0, "ephemeral": 0, "swap": "", "original_name": "m1.tiny", "extra_specs": {}},
	"metadata": {}, "tags": [],
	"OS-EXT-AZ:availability_zone": "nova", "OS-EXT-SRV-ATTR:host": "compute1", "OS-EXT-SRV-ATTR:hypervisor_hostname": "compute1",
	"OS-EXT-STS:task_state": null, "OS-EXT-STS:vm_state": "stopped", "OS-EXT-STS:power_state": 4,
	"fault": {"code": 500, "created": "2024-05-01T08:00:00Z", "message": "Conflict updating instance 2ce4c5b3-2866-4972-93ce-77a2ea46a7f9. Expected: {'task_state': ['rebuilding']}. Actual: {'task_state': None}"}
}, {
	"id": "5d2a0f8a-0c4f-4a7e-8f52-3b1c5d6e7f80", "name": "web-1", "status": "ACTIVE",
	"tenant_id": "0a1b2c3d", "user_id": "demo", "locked": false,
	"image": {"id": "70a599e0-31e7-49b7-b260-868f441e862b", "links": []},
	"flavor": {"vcpus": 1, "ram": 512, "disk": 1, "ephemeral": 0, "swap": 0, "original_name": "m1.tiny", "extra_specs": {}},
	"metadata": {}, "tags": [],
	"OS-EXT-AZ:availability_zone": "az2", "OS-EXT-SRV-ATTR:host": "compute1", "OS-EXT-SRV-ATTR:hypervisor_hostname": "compute1",
	"OS-EXT-STS:task_state": "powering-off", "OS-EXT-STS:vm_state": "active"
}, {
	"id": "8e8d3c0a-7c1f-4b0e-9f0a-1a2b3c4d5e6f", "status": "UNKNOWN", "tenant_id": "0a1b2c3d",
	"created": "2024-05-01T08:00:00Z", "links": []
}], "servers_links": []}`

const glanceImage = `{"id": "70a599e0-31e7-49b7-b260-868f441e862b", "name": "cirros-0.6.2", "status": "active",
	"visibility": "public", "protected": false, "os_hidden": false, "checksum": "c8fc807773e5354afe61636071771906",
	"os_hash_algo": "sha512", "os_hash_value": "1103b92ce8ad966e41235a4de260deb791ff571670c0342666c8582fbb9caefe6af07ebb11d34f44f8414b609b29c1bdf1d72ffa6faa39c88e8721d09847952b",
	"owner": "8538a3f13f9541b28c2620eb19065e45", "size": 21430272, "virtual_size": 117440512, "min_ram": 0, "min_disk": 0,
	"container_format": "bare", "disk_format": "qcow2", "created_at": "2024-04-30T12:00:00Z", "updated_at": "2024-04-30T12:00:01Z",
	"tags": [], "self": "/v2/images/70a599e0-31e7-49b7-b260-868f441e862b", "file": "/v2/images/70a599e0-31e7-49b7-b260-868f441e862b/file",
	"schema": "/v2/schemas/image", "stores": "file",
	"evacuable": "true", "hw_disk_bus": "virtio", "os_distro": "cirros"}`

func TestServersOnHostFollowsPagesAndDecodesWhatAPolicyNeeds(t *testing.T) {
	c := newTestCloud(t)
	var pages, images atomic.Int32
	c.mux.HandleFunc("/compute/v2.1/servers/detail", func(w http.ResponseWriter, r *http.Request) {
		q := url.Values{"all_tenants": {"1"}, "host": {"compute1"}, "limit": {"200"}}
		body := serversPage1
		if pages.Add(1) == 2 {
			q.Set("marker", "9168b536-cd40-4630-b43f-b259807c6e87")
			body = serversPage2
		}
		request{method: "GET", path: "/compute/v2.1/servers/detail", query: q, version: ComputeMicroversion}.check(t, r)
		reply(w, http.StatusOK, body)
	})
	c.mux.HandleFunc("/image/v2/images/70a599e0-31e7-49b7-b260-868f441e862b", func(w http.ResponseWriter, r *http.Request) {
		images.Add(1)
		request{method: "GET", path: "/image/v2/images/70a599e0-31e7-49b7-b260-868f441e862b"}.check(t, r)
		reply(w, http.StatusOK, glanceImage)
	})

	cl := c.client()
	got, err := cl.ServersOnHost(context.Background(), "compute1")
	if err != nil {
		t.Fatalf("ServersOnHost: %v", err)
	}
	imageProps := map[string]string{"evacuable": "true", "hw_disk_bus": "virtio", "os_distro": "cirros"}
	want := []Server{
		{
			ID: "9168b536-cd40-4630-b43f-b259807c6e87", Name: "db-1", Status: "ACTIVE", VMState: "active", PowerState: PowerRunning,
			Host: "compute1", HypervisorHostname: "compute1", ProjectID: "6f70656e737461636b20342065766572", UserID: "admin",
			AvailabilityZone: "nova",
			Flavor: Flavor{
				OriginalName: "m1.small", VCPUs: 2, RAMMB: 2048, DiskGB: 20,
				ExtraSpecs: map[string]string{"evacuable": "true", "hw:cpu_policy": "shared"},
			},
			ImageID: "70a599e0-31e7-49b7-b260-868f441e862b", ImageProperties: imageProps,
			Metadata: map[string]string{"HA_Enabled": "True"}, Tags: []string{"tier-db"},
		},
		{
			ID: "2ce4c5b3-2866-4972-93ce-77a2ea46a7f9", Name: "app-vol", Status: "SHUTOFF", VMState: "stopped", PowerState: PowerShutdown,
			Host: "compute1", HypervisorHostname: "compute1", ProjectID: "6f70656e737461636b20342065766572", UserID: "demo",
			AvailabilityZone: "nova", Locked: true,
			Flavor:   Flavor{OriginalName: "m1.tiny", VCPUs: 1, RAMMB: 512, ExtraSpecs: map[string]string{}},
			Metadata: map[string]string{}, Tags: []string{},
			Fault: "Conflict updating instance 2ce4c5b3-2866-4972-93ce-77a2ea46a7f9. Expected: {'task_state': ['rebuilding']}. Actual: {'task_state': None}",
		},
		{
			ID: "5d2a0f8a-0c4f-4a7e-8f52-3b1c5d6e7f80", Name: "web-1", Status: "ACTIVE", VMState: "active", TaskState: "powering-off",
			Host: "compute1", HypervisorHostname: "compute1", ProjectID: "0a1b2c3d", UserID: "demo", AvailabilityZone: "az2",
			Flavor:  Flavor{OriginalName: "m1.tiny", VCPUs: 1, RAMMB: 512, DiskGB: 1, ExtraSpecs: map[string]string{}},
			ImageID: "70a599e0-31e7-49b7-b260-868f441e862b", ImageProperties: imageProps,
			Metadata: map[string]string{}, Tags: []string{},
		},
		{ID: "8e8d3c0a-7c1f-4b0e-9f0a-1a2b3c4d5e6f", Status: "UNKNOWN", ProjectID: "0a1b2c3d", Partial: true},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("servers (-want +got):\n%s", diff)
	}
	if n := pages.Load(); n != 2 {
		t.Errorf("pages requested = %d, want 2", n)
	}
	if n := images.Load(); n != 1 {
		t.Errorf("image requests = %d, want 1 for two servers of the same image", n)
	}
	// A second listing (a recovery watching its servers) reuses the image.
	pages.Store(0)
	if _, err := cl.ServersOnHost(context.Background(), "compute1"); err != nil {
		t.Fatal(err)
	}
	if n := images.Load(); n != 1 {
		t.Errorf("image requests after a second listing = %d, want still 1 (cached)", n)
	}
}

func TestServerWhoseImageIsDeletedHasNoImageProperties(t *testing.T) {
	c := newTestCloud(t)
	const id = "9168b536-cd40-4630-b43f-b259807c6e87"
	c.mux.HandleFunc("/compute/v2.1/servers/"+id, func(w http.ResponseWriter, r *http.Request) {
		request{method: "GET", path: "/compute/v2.1/servers/" + id, version: ComputeMicroversion}.check(t, r)
		reply(w, http.StatusOK, `{"server": {"id": "`+id+`", "name": "db-1", "status": "ACTIVE",
			"image": {"id": "gone", "links": []}, "flavor": {"vcpus": 1, "ram": 512, "disk": 1, "ephemeral": 0, "swap": 0, "original_name": "m1.tiny", "extra_specs": {}},
			"OS-EXT-SRV-ATTR:host": "compute2", "OS-EXT-STS:vm_state": "active", "OS-EXT-STS:task_state": null}}`)
	})
	c.mux.HandleFunc("/image/v2/images/gone", func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusNotFound)
		_, _ = w.Write([]byte("404 Not Found\n\nNo image found with ID gone\n\n"))
	})
	got, err := c.client().Server(context.Background(), id)
	if err != nil {
		t.Fatalf("Server: %v", err)
	}
	if got.Host != "compute2" || got.ImageID != "gone" || got.ImageProperties != nil {
		t.Errorf("server = %+v, want host compute2, image gone, no properties", got)
	}
}

func TestMigrationsFilterAndFollowPages(t *testing.T) {
	c := newTestCloud(t)
	var pages atomic.Int32
	c.mux.HandleFunc("/compute/v2.1/os-migrations", func(w http.ResponseWriter, r *http.Request) {
		q := url.Values{
			"host": {"compute1"}, "migration_type": {"evacuation"}, "status": {"done"}, "limit": {"200"},
			"changes-since": {"2024-05-01T09:59:00Z"},
		}
		body := `{"migrations": [{"id": 12, "uuid": "12341d4b-346a-40d0-83c6-5f4f6892b650", "instance_uuid": "9168b536-cd40-4630-b43f-b259807c6e87",
			"migration_type": "evacuation", "status": "done", "source_compute": "compute1", "source_node": "compute1",
			"source_region": "RegionOne", "dest_compute": "compute2", "dest_node": "compute2", "dest_host": "192.0.2.12", "dest_region": "RegionOne",
			"old_instance_type_id": 1, "new_instance_type_id": 1, "created_at": "2024-05-01T10:01:00.000000", "updated_at": "2024-05-01T10:01:02.000000"}],
			"migrations_links": [{"href": "http://nova.internal:8774/v2.1/os-migrations?limit=200&marker=12341d4b-346a-40d0-83c6-5f4f6892b650", "rel": "next"}]}`
		if pages.Add(1) == 2 {
			q.Set("marker", "12341d4b-346a-40d0-83c6-5f4f6892b650")
			body = `{"migrations": [{"id": 11, "uuid": "0b3e9f2c-1d4a-4e5f-8a6b-7c8d9e0f1a2b", "instance_uuid": "2ce4c5b3-2866-4972-93ce-77a2ea46a7f9",
				"migration_type": "evacuation", "status": "done", "source_compute": "compute1", "source_node": "compute1",
				"dest_compute": null, "dest_node": null, "dest_host": null, "created_at": "2024-05-01T10:00:59.000000", "updated_at": null}]}`
		}
		request{method: "GET", path: "/compute/v2.1/os-migrations", query: q, version: ComputeMicroversion}.check(t, r)
		reply(w, http.StatusOK, body)
	})
	got, err := c.client().Migrations(context.Background(), MigrationFilter{
		Host: "compute1", Type: "evacuation", Status: "done",
		ChangedSince: time.Date(2024, 5, 1, 11, 59, 0, 0, time.FixedZone("CEST", 2*3600)),
	})
	if err != nil {
		t.Fatalf("Migrations: %v", err)
	}
	want := []Migration{
		{
			ID: 12, UUID: "12341d4b-346a-40d0-83c6-5f4f6892b650", ServerID: "9168b536-cd40-4630-b43f-b259807c6e87",
			Type: "evacuation", Status: "done", SourceCompute: "compute1", SourceNode: "compute1", DestCompute: "compute2", DestNode: "compute2",
			CreatedAt: time.Date(2024, 5, 1, 10, 1, 0, 0, time.UTC), UpdatedAt: time.Date(2024, 5, 1, 10, 1, 2, 0, time.UTC),
		},
		{
			ID: 11, UUID: "0b3e9f2c-1d4a-4e5f-8a6b-7c8d9e0f1a2b", ServerID: "2ce4c5b3-2866-4972-93ce-77a2ea46a7f9",
			Type: "evacuation", Status: "done", SourceCompute: "compute1", SourceNode: "compute1",
			CreatedAt: time.Date(2024, 5, 1, 10, 0, 59, 0, time.UTC),
		},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("migrations (-want +got):\n%s", diff)
	}
}

func TestHypervisorsCarryPlacementCapacity(t *testing.T) {
	c := newTestCloud(t)
	const (
		node1 = "1bb62a04-c576-402c-8147-9e89757a09e3"
		node2 = "c3d4e5f6-0000-4000-8000-000000000002"
	)
	c.mux.HandleFunc("/compute/v2.1/os-hypervisors/detail", func(w http.ResponseWriter, r *http.Request) {
		request{method: "GET", path: "/compute/v2.1/os-hypervisors/detail", query: url.Values{"limit": {"200"}}, version: ComputeMicroversion}.check(t, r)
		reply(w, http.StatusOK, `{"hypervisors": [
			{"id": "`+node1+`", "hypervisor_hostname": "compute1", "state": "up", "status": "enabled", "host_ip": "192.0.2.11",
			 "hypervisor_type": "fake", "hypervisor_version": 1000, "running_vms": 3, "current_workload": 0,
			 "vcpus": 2, "vcpus_used": 3, "memory_mb": 8192, "memory_mb_used": 2048, "free_ram_mb": 6144,
			 "local_gb": 100, "local_gb_used": 3, "free_disk_gb": 97, "disk_available_least": 0,
			 "cpu_info": {"arch": "x86_64", "model": "", "vendor": "", "features": [], "topology": {"cores": 1, "threads": 1, "sockets": 2}},
			 "service": {"host": "compute1", "id": "`+svcID+`", "disabled_reason": null}},
			{"id": "`+node2+`", "hypervisor_hostname": "compute2", "state": "down", "status": "disabled", "running_vms": 0,
			 "service": {"host": "compute2", "id": "x", "disabled_reason": "maintenance"}}]}`)
	})
	c.mux.HandleFunc("/placement/resource_providers/"+node1+"/inventories", func(w http.ResponseWriter, r *http.Request) {
		request{method: "GET", path: "/placement/resource_providers/" + node1 + "/inventories", version: PlacementMicroversion}.check(t, r)
		reply(w, http.StatusOK, `{"resource_provider_generation": 7, "inventories": {
			"VCPU": {"total": 2, "reserved": 0, "min_unit": 1, "max_unit": 2, "step_size": 1, "allocation_ratio": 16.0},
			"MEMORY_MB": {"total": 8192, "reserved": 512, "min_unit": 1, "max_unit": 8192, "step_size": 1, "allocation_ratio": 1.5},
			"DISK_GB": {"total": 100, "reserved": 0, "min_unit": 1, "max_unit": 100, "step_size": 1, "allocation_ratio": 1.0}}}`)
	})
	c.mux.HandleFunc("/placement/resource_providers/"+node1+"/usages", func(w http.ResponseWriter, r *http.Request) {
		request{method: "GET", path: "/placement/resource_providers/" + node1 + "/usages", version: PlacementMicroversion}.check(t, r)
		reply(w, http.StatusOK, `{"resource_provider_generation": 7, "usages": {"VCPU": 3, "MEMORY_MB": 2048, "DISK_GB": 3}}`)
	})
	c.mux.HandleFunc("/placement/resource_providers/"+node2+"/inventories", func(w http.ResponseWriter, r *http.Request) {
		reply(w, http.StatusNotFound, `{"errors": [{"status": 404, "title": "Not Found", "detail": "No resource provider with uuid `+node2+` found", "code": "placement.undefined_code", "request_id": "req-1"}]}`)
	})
	got, err := c.client().Hypervisors(context.Background())
	if err != nil {
		t.Fatalf("Hypervisors: %v", err)
	}
	want := []Hypervisor{
		{
			ID: node1, Hostname: "compute1", ServiceHost: "compute1", State: "up", Status: "enabled", RunningVMs: 3,
			Resources: map[string]Resource{
				"VCPU":      {Total: 2, AllocationRatio: 16, MaxUnit: 2, Used: 3},
				"MEMORY_MB": {Total: 8192, Reserved: 512, AllocationRatio: 1.5, MaxUnit: 8192, Used: 2048},
				"DISK_GB":   {Total: 100, AllocationRatio: 1, MaxUnit: 100, Used: 3},
			},
		},
		{ID: node2, Hostname: "compute2", ServiceHost: "compute2", State: "down", Status: "disabled", DisabledReason: "maintenance"},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("hypervisors (-want +got):\n%s", diff)
	}
	// 2 vCPUs at 16.0 overcommit with 3 used: the scheduler still has 29 to give, although the
	// hypervisor API's vcpus_used (3) > vcpus (2) reads as full.
	if free := got[0].Resources["VCPU"].Free(); free != 29 {
		t.Errorf("free VCPU = %d, want 29", free)
	}
	if free := got[0].Resources["MEMORY_MB"].Free(); free != 9472 {
		t.Errorf("free MEMORY_MB = %d, want (8192-512)*1.5-2048 = 9472", free)
	}
}

func TestHypervisorHostsListsTheNodesWithoutAskingPlacement(t *testing.T) {
	c := newTestCloud(t)
	c.mux.HandleFunc("/compute/v2.1/os-hypervisors/detail", func(w http.ResponseWriter, r *http.Request) {
		request{method: "GET", path: "/compute/v2.1/os-hypervisors/detail", query: url.Values{"limit": {"200"}}, version: ComputeMicroversion}.check(t, r)
		reply(w, http.StatusOK, `{"hypervisors": [
			{"id": "n1", "hypervisor_hostname": "compute1.example.org", "state": "up", "status": "enabled", "running_vms": 3,
			 "service": {"host": "compute1", "id": "`+svcID+`", "disabled_reason": null}},
			{"id": "n2", "hypervisor_hostname": "compute2", "state": "down", "status": "disabled", "running_vms": 0,
			 "service": {"host": "compute2", "id": "x", "disabled_reason": "maintenance"}}]}`)
	})
	placement := 0
	c.mux.HandleFunc("/placement/", func(w http.ResponseWriter, r *http.Request) {
		placement++
		reply(w, http.StatusNotFound, `{"errors": [{"status": 404, "title": "Not Found"}]}`)
	})
	got, err := c.client().HypervisorHosts(context.Background())
	if err != nil {
		t.Fatalf("HypervisorHosts: %v", err)
	}
	want := []Hypervisor{
		{ID: "n1", Hostname: "compute1.example.org", ServiceHost: "compute1", State: "up", Status: "enabled", RunningVMs: 3},
		{ID: "n2", Hostname: "compute2", ServiceHost: "compute2", State: "down", Status: "disabled", DisabledReason: "maintenance"},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("hypervisors (-want +got):\n%s", diff)
	}
	if placement != 0 {
		t.Errorf("%d Placement requests, want none", placement)
	}
}

func TestAggregatesDecode(t *testing.T) {
	c := newTestCloud(t)
	c.mux.HandleFunc("/compute/v2.1/os-aggregates", func(w http.ResponseWriter, r *http.Request) {
		request{method: "GET", path: "/compute/v2.1/os-aggregates", version: ComputeMicroversion}.check(t, r)
		reply(w, http.StatusOK, `{"aggregates": [
			{"id": 1, "uuid": "6ba28ba7-f29b-45cc-a30b-6e3a40c2fb14", "name": "segment-a", "availability_zone": "az1",
			 "hosts": ["compute1", "compute2"], "metadata": {"availability_zone": "az1", "computeha:segment": "a"},
			 "created_at": "2024-05-01T08:00:00.000000", "updated_at": null, "deleted_at": null, "deleted": false},
			{"id": 2, "uuid": "0f1e2d3c-4b5a-4968-8776-5a4b3c2d1e0f", "name": "ssd", "availability_zone": null,
			 "hosts": [], "metadata": {"ssd": "true"},
			 "created_at": "2024-05-01T08:00:00.000000", "updated_at": null, "deleted_at": null, "deleted": false}]}`)
	})
	got, err := c.client().Aggregates(context.Background())
	if err != nil {
		t.Fatalf("Aggregates: %v", err)
	}
	want := []Aggregate{
		{
			ID: 1, UUID: "6ba28ba7-f29b-45cc-a30b-6e3a40c2fb14", Name: "segment-a", AvailabilityZone: "az1",
			Hosts: []string{"compute1", "compute2"}, Metadata: map[string]string{"availability_zone": "az1", "computeha:segment": "a"},
		},
		{ID: 2, UUID: "0f1e2d3c-4b5a-4968-8776-5a4b3c2d1e0f", Name: "ssd", Hosts: []string{}, Metadata: map[string]string{"ssd": "true"}},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("aggregates (-want +got):\n%s", diff)
	}
}
