package openstack

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"
)

// The fuzz targets below serve each input as the body of Nova's or Placement's 200 answer and
// call the real client method, so what is fuzzed is the whole path from the HTTP body to this
// package's types: gophercloud's reading of the body, getJSON, and our own JSON types and
// conversions (flexInt, the image field, timestamps, next links).

// fuzzNova is a cloud whose Keystone is testCloud's and whose services answer every GET with
// the body a fuzz input set for its route. One login serves a whole fuzzing run.
type fuzzNova struct {
	client Client
	mu     sync.Mutex
	bodies map[string][]byte // by route, see fuzzRoute
}

// handlerTransport carries each request to a handler in-process, through an
// httptest.ResponseRecorder. A listening server would leave its connections' goroutines
// running between calls, and the coverage they add at random makes the fuzzer chase inputs
// that are not new, minimizing them for a minute each.
type handlerTransport struct{ h http.Handler }

func (t handlerTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	rec := httptest.NewRecorder()
	t.h.ServeHTTP(rec, r)
	resp := rec.Result()
	resp.Request = r
	return resp, nil
}

// newFuzzNova logs in to the cloud. It plays newTestCloud's part, which needs a *testing.T,
// for a whole fuzz target.
func newFuzzNova(f *testing.F) *fuzzNova {
	f.Helper()
	n := &fuzzNova{}
	// The server never listens: only its URL is used, by the catalog writeToken writes.
	c := &testCloud{
		srv:    &httptest.Server{URL: "http://cloud.test"},
		tokens: map[string]bool{}, projects: map[string]bool{}, tokenProject: map[string]string{},
	}
	// No ServeMux: it would clean or redirect the odd paths ids from the fuzz input make.
	cloud := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost && r.URL.Path == "/identity/v3/auth/tokens" {
			c.login(w, r)
			return
		}
		n.serve(w, r)
	})
	clouds := filepath.Join(f.TempDir(), "clouds.yaml")
	yaml := fmt.Sprintf("clouds:\n  lab:\n    auth:\n      auth_url: %s/identity/v3\n%s    region_name: RegionOne\n    interface: internal\n",
		c.srv.URL, passwordAuth)
	if err := os.WriteFile(clouds, []byte(yaml), 0o600); err != nil {
		f.Fatal(err)
	}
	// One attempt: a body that fails to decode is not retried, whatever it looks like.
	cl, err := New(context.Background(), Options{
		Cloud: "lab", CloudsFile: clouds, HTTPClient: &http.Client{Transport: handlerTransport{cloud}},
		Retry: RetryPolicy{Attempts: 1}, CallTimeout: 5 * time.Second,
	})
	if err != nil {
		f.Fatalf("New: %v", err)
	}
	n.client = cl
	return n
}

// fuzzRoute names the answer a request gets.
func fuzzRoute(r *http.Request) string {
	p := r.URL.Path
	switch {
	case p == "/compute/v2.1/servers/detail":
		return "servers"
	case strings.HasPrefix(p, "/compute/v2.1/servers/"):
		return "server"
	case p == "/compute/v2.1/os-services":
		return "services"
	case p == "/compute/v2.1/os-migrations":
		return "migrations"
	case p == "/compute/v2.1/os-hypervisors/detail":
		return "hypervisors"
	case p == "/compute/v2.1/os-aggregates":
		return "aggregates"
	case p == "/compute/v2.1/os-server-groups" && r.URL.Query().Get("offset") == "0":
		return "server_groups"
	case p == "/compute/v2.1/os-server-groups":
		return "server_groups past the first page"
	case strings.HasPrefix(p, "/placement/resource_providers/") && strings.HasSuffix(p, "/inventories"):
		return "inventories"
	case strings.HasPrefix(p, "/placement/resource_providers/") && strings.HasSuffix(p, "/usages"):
		return "usages"
	case strings.HasPrefix(p, "/image/v2/images/"):
		return "image"
	}
	return p
}

// fixedBodies answer the routes no fuzz input sets.
var fixedBodies = map[string]string{
	"image":                             glanceImage,
	"server_groups past the first page": `{"server_groups": []}`,
}

// glanceImageProperties are the properties of glanceImage, which every image id gets.
var glanceImageProperties = map[string]string{"evacuable": "true", "hw_disk_bus": "virtio", "os_distro": "cirros"}

func (n *fuzzNova) serve(w http.ResponseWriter, r *http.Request) {
	route := fuzzRoute(r)
	n.mu.Lock()
	body, ok := n.bodies[route]
	n.mu.Unlock()
	if !ok {
		fixed, known := fixedBodies[route]
		if !known {
			reply(w, http.StatusNotFound, `{"itemNotFound": {"code": 404, "message": "nothing at `+route+`"}}`)
			return
		}
		body = []byte(fixed)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(body)
}

// call sets the bodies of the routes, runs the call, and fails t if the call hangs: every
// answer is immediate, so only a loop of requests (a next link followed forever) could make
// the call last until the caller's deadline.
func (n *fuzzNova) call(t *testing.T, bodies map[string][]byte, fn func(context.Context) error) error {
	t.Helper()
	n.mu.Lock()
	n.bodies = bodies
	n.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := fn(ctx)
	if ctx.Err() != nil {
		t.Fatalf("the call ran until the caller's deadline: %v", err)
	}
	if err != nil && err.Error() == "" {
		t.Fatal("a failed call has an empty error")
	}
	return err
}

// firstValue is the JSON value at the start of body, as gophercloud reads an answer (what
// follows it is not read); it fails the test when there is none, since the call succeeded.
func firstValue(t *testing.T, body []byte) json.RawMessage {
	t.Helper()
	var v json.RawMessage
	if err := json.NewDecoder(bytes.NewReader(body)).Decode(&v); err != nil {
		t.Fatalf("the call succeeded on a body that does not start with JSON (%v): %q", err, body)
	}
	return v
}

// decodeAs decodes the answer independently of the client, into types of the test's own.
func decodeAs(t *testing.T, answer json.RawMessage, v any) {
	t.Helper()
	if err := json.Unmarshal(answer, v); err != nil {
		t.Fatalf("the client decoded an answer the test cannot (%v): %s", err, answer)
	}
}

// checkServer checks what any decoded server must satisfy: a partial server is exactly one
// whose status is UNKNOWN (a down cell), and it has image properties exactly when it has an
// image (every image here has glanceImage's).
func checkServer(t *testing.T, s Server) {
	t.Helper()
	if s.Partial != (s.Status == "UNKNOWN") {
		t.Errorf("server %q: status %q, partial %v", s.ID, s.Status, s.Partial)
	}
	switch {
	case s.ImageID == "" && s.ImageProperties != nil:
		t.Errorf("server %q has no image but image properties %v", s.ID, s.ImageProperties)
	case s.ImageID != "" && !maps.Equal(s.ImageProperties, glanceImageProperties):
		t.Errorf("server %q, image %q: image properties %v, want %v", s.ID, s.ImageID, s.ImageProperties, glanceImageProperties)
	}
}

// idStatus is the part of a list entry every check compares.
type idStatus struct {
	ID     string `json:"id"`
	Status string `json:"status"`
}

func addSeeds(f *testing.F, seeds ...string) {
	for _, s := range seeds {
		f.Add([]byte(s))
	}
}

// jsonGarbage is what a proxy, a half-written answer or another API may put in a 200 body.
var jsonGarbage = []string{
	"", " ", "null", "{}", "[]", `""`, "0", "{", `{"`, "<html><body>502 Bad Gateway</body></html>",
	`{"servers": null}`, `{"servers": [null]}`, `{"servers": {}}`, `{"servers": [], "servers": [{}]}`,
}

// FuzzServersOnHost checks that no answer to GET /servers/detail makes ServersOnHost panic or
// loop, that a failure returns no servers, and that success returns exactly the servers of
// the answer, in its order, each consistent (see checkServer).
func FuzzServersOnHost(f *testing.F) {
	addSeeds(f, serversPage1, serversPage2)
	addSeeds(f, jsonGarbage...)
	addSeeds(f,
		strings.Replace(serversPage2, `"servers_links": []`, `"servers_links": [{"href": "http://nova/servers/detail?marker=", "rel": "next"}]`, 1),
		strings.Replace(serversPage2, `"servers_links": []`, `"servers_links": [{"href": "%zz", "rel": "next"}]`, 1),
		`{"servers": [{"id": "a", "image": {"id": 7}, "flavor": {"vcpus": "2", "swap": null}}]}`,
		`{"servers": [{"id": "a", "image": "", "flavor": {"vcpus": "two"}}]}`,
		`{"servers": [{"id": "a", "image": {"id": "../../compute/v2.1/os-services"}}]} trailing`,
		`{"SERVERS": [{"ID": "a", "Status": "UNKNOWN"}]}`,
	)
	nova := newFuzzNova(f)
	f.Fuzz(func(t *testing.T, body []byte) {
		var got []Server
		err := nova.call(t, map[string][]byte{"servers": body}, func(ctx context.Context) (err error) {
			got, err = nova.client.ServersOnHost(ctx, "compute1")
			return err
		})
		if err != nil {
			if got != nil {
				t.Fatalf("a failed listing (%v) returned servers %+v", err, got)
			}
			return
		}
		var page struct {
			Servers []idStatus `json:"servers"`
		}
		decodeAs(t, firstValue(t, body), &page)
		if len(got) != len(page.Servers) {
			t.Fatalf("%d servers from an answer listing %d", len(got), len(page.Servers))
		}
		for i, s := range got {
			if s.ID != page.Servers[i].ID || s.Status != page.Servers[i].Status {
				t.Errorf("server %d is %q (%s), the answer lists %q (%s)", i, s.ID, s.Status, page.Servers[i].ID, page.Servers[i].Status)
			}
			checkServer(t, s)
		}
	})
}

// FuzzServer checks that no answer to GET /servers/{id} makes Server panic, that a failure
// returns the zero Server, and that success returns the server of the answer, consistent (see
// checkServer).
func FuzzServer(f *testing.F) {
	addSeeds(f, imageServer, volumeServer)
	addSeeds(f, jsonGarbage...)
	addSeeds(f,
		`{"server": {"id": "x", "status": "UNKNOWN"}}`, `{"server": null}`, `{"server": {"image": {}}}`,
		`{"server": {"id": "x", "image": {"id": "gone"}, "flavor": {"ram": "", "disk": "1", "swap": 1.5}}}`,
		`{"server": {"id": "x", "metadata": {"a": 1}}}`, `{"server": {"id": "x", "OS-EXT-SRV-ATTR:host": null}}`,
	)
	nova := newFuzzNova(f)
	f.Fuzz(func(t *testing.T, body []byte) {
		var got Server
		err := nova.call(t, map[string][]byte{"server": body}, func(ctx context.Context) (err error) {
			got, err = nova.client.Server(ctx, imageServerID)
			return err
		})
		if err != nil {
			if diff := cmp.Diff(Server{}, got); diff != "" {
				t.Fatalf("a failed read (%v) returned a server: %s", err, diff)
			}
			return
		}
		var answer struct {
			Server idStatus `json:"server"`
		}
		decodeAs(t, firstValue(t, body), &answer)
		if got.ID != answer.Server.ID || got.Status != answer.Server.Status {
			t.Errorf("server %q (%s), the answer shows %q (%s)", got.ID, got.Status, answer.Server.ID, answer.Server.Status)
		}
		checkServer(t, got)
	})
}

// FuzzFindComputeService checks that no answer to GET /os-services makes FindComputeService
// panic, that a failure returns the zero Service, and that success returns the one
// nova-compute service of the host asked for that the answer lists, with an id and not of a
// down cell.
func FuzzFindComputeService(f *testing.F) {
	addSeeds(f, serviceListBody)
	addSeeds(f, jsonGarbage...)
	addSeeds(f,
		`{"services": [{"id": "`+svcID+`", "binary": "nova-compute", "host": "compute1", "zone": "nova",
			"status": "disabled", "state": "down", "forced_down": true, "disabled_reason": "computeha: fenced",
			"updated_at": "2024-05-01T10:00:05.000000"}]}`,
		`{"services": [{"id": "x", "binary": "nova-compute", "host": "COMPUTE1", "status": "enabled"}]}`,
		`{"services": [{"id": "a", "binary": "nova-compute", "host": "compute1"}, {"id": "b", "binary": "nova-compute", "host": "compute1"}]}`,
		`{"services": [{"binary": "nova-compute", "host": "compute1", "status": "UNKNOWN"}]}`,
		`{"services": [{"id": "a", "binary": "nova-compute", "host": "compute1", "updated_at": "2024-05-01T12:00:05+02:00"}]}`,
		`{"services": [{"id": "a", "binary": "nova-compute", "host": "compute1", "updated_at": 5}]}`,
	)
	nova := newFuzzNova(f)
	f.Fuzz(func(t *testing.T, body []byte) {
		var got Service
		err := nova.call(t, map[string][]byte{"services": body}, func(ctx context.Context) (err error) {
			got, err = nova.client.FindComputeService(ctx, "compute1")
			return err
		})
		if err != nil {
			if got != (Service{}) {
				t.Fatalf("a failed search (%v) returned %+v", err, got)
			}
			return
		}
		if got.Host != "compute1" || got.Binary != "nova-compute" || got.ID == "" || got.Status == "UNKNOWN" {
			t.Fatalf("found %+v", got)
		}
		if !got.UpdatedAt.IsZero() && got.UpdatedAt.Location() != time.UTC {
			t.Errorf("updated_at %v is not UTC", got.UpdatedAt)
		}
		var answer struct {
			Services []struct {
				ID     string `json:"id"`
				Binary string `json:"binary"`
				Host   string `json:"host"`
			} `json:"services"`
		}
		decodeAs(t, firstValue(t, body), &answer)
		var ids []string
		for _, s := range answer.Services {
			if s.Binary == "nova-compute" && s.Host == "compute1" {
				ids = append(ids, s.ID)
			}
		}
		if len(ids) != 1 || ids[0] != got.ID {
			t.Fatalf("found service %q; the answer's services of the host: %q", got.ID, ids)
		}
	})
}

// FuzzMigrations checks that no answer to GET /os-migrations makes Migrations panic or loop,
// that a failure returns no migrations, and that success returns exactly the migrations of the
// answer, in its order, with their times in UTC.
func FuzzMigrations(f *testing.F) {
	addSeeds(f, jsonGarbage...)
	addSeeds(f,
		// TestMigrationsFilterAndFollowPages's two pages.
		`{"migrations": [{"id": 12, "uuid": "12341d4b-346a-40d0-83c6-5f4f6892b650", "instance_uuid": "9168b536-cd40-4630-b43f-b259807c6e87",
			"migration_type": "evacuation", "status": "done", "source_compute": "compute1", "source_node": "compute1",
			"source_region": "RegionOne", "dest_compute": "compute2", "dest_node": "compute2", "dest_host": "192.0.2.12", "dest_region": "RegionOne",
			"old_instance_type_id": 1, "new_instance_type_id": 1, "created_at": "2024-05-01T10:01:00.000000", "updated_at": "2024-05-01T10:01:02.000000"}],
			"migrations_links": [{"href": "http://nova.internal:8774/v2.1/os-migrations?limit=200&marker=12341d4b-346a-40d0-83c6-5f4f6892b650", "rel": "next"}]}`,
		`{"migrations": [{"id": 11, "uuid": "0b3e9f2c-1d4a-4e5f-8a6b-7c8d9e0f1a2b", "instance_uuid": "2ce4c5b3-2866-4972-93ce-77a2ea46a7f9",
			"migration_type": "evacuation", "status": "done", "source_compute": "compute1", "source_node": "compute1",
			"dest_compute": null, "dest_node": null, "dest_host": null, "created_at": "2024-05-01T10:00:59.000000", "updated_at": null}]}`,
		`{"migrations": [{"id": "12"}]}`, `{"migrations": [{"id": 1, "created_at": "2024-05-01 10:00:59", "updated_at": "2024-05-01T10:00:59+05:30"}]}`,
		`{"migrations": [], "migrations_links": [{"href": "?marker=x", "rel": "next"}]}`,
	)
	nova := newFuzzNova(f)
	f.Fuzz(func(t *testing.T, body []byte) {
		var got []Migration
		err := nova.call(t, map[string][]byte{"migrations": body}, func(ctx context.Context) (err error) {
			got, err = nova.client.Migrations(ctx, MigrationFilter{Host: "compute1", Type: "evacuation"})
			return err
		})
		if err != nil {
			if got != nil {
				t.Fatalf("a failed listing (%v) returned migrations %+v", err, got)
			}
			return
		}
		var page struct {
			Migrations []struct {
				ID   int    `json:"id"`
				UUID string `json:"uuid"`
			} `json:"migrations"`
		}
		decodeAs(t, firstValue(t, body), &page)
		if len(got) != len(page.Migrations) {
			t.Fatalf("%d migrations from an answer listing %d", len(got), len(page.Migrations))
		}
		for i, m := range got {
			if m.ID != page.Migrations[i].ID || m.UUID != page.Migrations[i].UUID {
				t.Errorf("migration %d is %d/%q, the answer lists %d/%q", i, m.ID, m.UUID, page.Migrations[i].ID, page.Migrations[i].UUID)
			}
			for _, at := range []time.Time{m.CreatedAt, m.UpdatedAt} {
				if !at.IsZero() && at.Location() != time.UTC {
					t.Errorf("migration %d: time %v is not UTC", i, at)
				}
			}
		}
	})
}

// hypervisorsSeed, inventoriesSeed and usagesSeed are TestHypervisorsCarryPlacementCapacity's
// answers.
const (
	hypervisorsSeed = `{"hypervisors": [
		{"id": "1bb62a04-c576-402c-8147-9e89757a09e3", "hypervisor_hostname": "compute1", "state": "up", "status": "enabled", "host_ip": "192.0.2.11",
		 "hypervisor_type": "fake", "hypervisor_version": 1000, "running_vms": 3, "current_workload": 0,
		 "vcpus": 2, "vcpus_used": 3, "memory_mb": 8192, "memory_mb_used": 2048, "free_ram_mb": 6144,
		 "local_gb": 100, "local_gb_used": 3, "free_disk_gb": 97, "disk_available_least": 0,
		 "cpu_info": {"arch": "x86_64", "model": "", "vendor": "", "features": [], "topology": {"cores": 1, "threads": 1, "sockets": 2}},
		 "service": {"host": "compute1", "id": "` + svcID + `", "disabled_reason": null}},
		{"id": "c3d4e5f6-0000-4000-8000-000000000002", "hypervisor_hostname": "compute2", "state": "down", "status": "disabled", "running_vms": 0,
		 "service": {"host": "compute2", "id": "x", "disabled_reason": "maintenance"}}]}`
	inventoriesSeed = `{"resource_provider_generation": 7, "inventories": {
		"VCPU": {"total": 2, "reserved": 0, "min_unit": 1, "max_unit": 2, "step_size": 1, "allocation_ratio": 16.0},
		"MEMORY_MB": {"total": 8192, "reserved": 512, "min_unit": 1, "max_unit": 8192, "step_size": 1, "allocation_ratio": 1.5},
		"DISK_GB": {"total": 100, "reserved": 0, "min_unit": 1, "max_unit": 100, "step_size": 1, "allocation_ratio": 1.0}}}`
	usagesSeed = `{"resource_provider_generation": 7, "usages": {"VCPU": 3, "MEMORY_MB": 2048, "DISK_GB": 3}}`
)

// FuzzHypervisors checks that no answers to GET /os-hypervisors/detail and to Placement's
// inventories and usages of each node make Hypervisors panic or loop, that a failure returns
// no hypervisors, and that success returns exactly the hypervisors of the answer, each with
// one resource per inventory the answer holds and the usage the answer gives it.
func FuzzHypervisors(f *testing.F) {
	f.Add([]byte(hypervisorsSeed), []byte(inventoriesSeed), []byte(usagesSeed))
	f.Add([]byte(hypervisorsSeed), []byte(`{"inventories": {}}`), []byte(`{"usages": {"VCPU": 1}}`))
	f.Add([]byte(`{"hypervisors": [{"id": ""}, {"id": "../x"}, {"id": "a/b?c"}]}`), []byte(inventoriesSeed), []byte(`{}`))
	f.Add([]byte(`{"hypervisors": [{"id": 7}]}`), []byte(inventoriesSeed), []byte(usagesSeed))
	f.Add([]byte(hypervisorsSeed), []byte(`{"inventories": {"VCPU": {"total": 1e400}}}`), []byte(usagesSeed))
	f.Add([]byte(hypervisorsSeed), []byte(`{"inventories": {"VCPU": {"total": 9223372036854775807, "allocation_ratio": -1}}}`), []byte(`{"usages": {"VCPU": -9223372036854775808}}`))
	for _, g := range jsonGarbage {
		f.Add([]byte(g), []byte(inventoriesSeed), []byte(usagesSeed))
		f.Add([]byte(hypervisorsSeed), []byte(g), []byte(g))
	}
	nova := newFuzzNova(f)
	f.Fuzz(func(t *testing.T, hypervisors, inventories, usages []byte) {
		var got []Hypervisor
		bodies := map[string][]byte{"hypervisors": hypervisors, "inventories": inventories, "usages": usages}
		err := nova.call(t, bodies, func(ctx context.Context) (err error) {
			got, err = nova.client.Hypervisors(ctx)
			return err
		})
		if err != nil {
			if got != nil {
				t.Fatalf("a failed listing (%v) returned hypervisors %+v", err, got)
			}
			return
		}
		var page struct {
			Hypervisors []struct {
				ID string `json:"id"`
			} `json:"hypervisors"`
		}
		decodeAs(t, firstValue(t, hypervisors), &page)
		if len(got) != len(page.Hypervisors) {
			t.Fatalf("%d hypervisors from an answer listing %d", len(got), len(page.Hypervisors))
		}
		if len(got) == 0 {
			return // Placement was not asked
		}
		var inv struct {
			Inventories map[string]json.RawMessage `json:"inventories"`
		}
		decodeAs(t, firstValue(t, inventories), &inv)
		var use struct {
			Usages map[string]int64 `json:"usages"`
		}
		decodeAs(t, firstValue(t, usages), &use)
		for i, h := range got {
			if h.ID != page.Hypervisors[i].ID {
				t.Errorf("hypervisor %d is %q, the answer lists %q", i, h.ID, page.Hypervisors[i].ID)
			}
			if h.Resources == nil {
				t.Errorf("hypervisor %q: no resources although Placement answered", h.ID)
			}
			if gotRC, wantRC := slices.Sorted(maps.Keys(h.Resources)), slices.Sorted(maps.Keys(inv.Inventories)); !slices.Equal(gotRC, wantRC) {
				t.Errorf("hypervisor %q: resource classes %q, the inventories %q", h.ID, gotRC, wantRC)
			}
			for rc, r := range h.Resources {
				if r.Used != use.Usages[rc] {
					t.Errorf("hypervisor %q: %s used %d, the usages say %d", h.ID, rc, r.Used, use.Usages[rc])
				}
			}
		}
	})
}

// FuzzAggregates checks that no answer to GET /os-aggregates makes Aggregates panic, that a
// failure returns no aggregates, and that success returns exactly the aggregates of the
// answer, in its order.
func FuzzAggregates(f *testing.F) {
	addSeeds(f, jsonGarbage...)
	addSeeds(f,
		// TestAggregatesDecode's answer.
		`{"aggregates": [
			{"id": 1, "uuid": "6ba28ba7-f29b-45cc-a30b-6e3a40c2fb14", "name": "segment-a", "availability_zone": "az1",
			 "hosts": ["compute1", "compute2"], "metadata": {"availability_zone": "az1", "computeha:segment": "a"},
			 "created_at": "2024-05-01T08:00:00.000000", "updated_at": null, "deleted_at": null, "deleted": false},
			{"id": 2, "uuid": "0f1e2d3c-4b5a-4968-8776-5a4b3c2d1e0f", "name": "ssd", "availability_zone": null,
			 "hosts": [], "metadata": {"ssd": "true"},
			 "created_at": "2024-05-01T08:00:00.000000", "updated_at": null, "deleted_at": null, "deleted": false}]}`,
		`{"aggregates": [{"id": 1, "hosts": null, "metadata": null}]}`, `{"aggregates": [{"hosts": [1]}]}`,
	)
	nova := newFuzzNova(f)
	f.Fuzz(func(t *testing.T, body []byte) {
		var got []Aggregate
		err := nova.call(t, map[string][]byte{"aggregates": body}, func(ctx context.Context) (err error) {
			got, err = nova.client.Aggregates(ctx)
			return err
		})
		if err != nil {
			if got != nil {
				t.Fatalf("a failed listing (%v) returned aggregates %+v", err, got)
			}
			return
		}
		var answer struct {
			Aggregates []struct {
				ID    int      `json:"id"`
				Name  string   `json:"name"`
				Hosts []string `json:"hosts"`
			} `json:"aggregates"`
		}
		decodeAs(t, firstValue(t, body), &answer)
		if len(got) != len(answer.Aggregates) {
			t.Fatalf("%d aggregates from an answer listing %d", len(got), len(answer.Aggregates))
		}
		for i, a := range got {
			w := answer.Aggregates[i]
			if a.ID != w.ID || a.Name != w.Name || !slices.Equal(a.Hosts, w.Hosts) {
				t.Errorf("aggregate %d is %d/%q with %q, the answer lists %d/%q with %q", i, a.ID, a.Name, a.Hosts, w.ID, w.Name, w.Hosts)
			}
		}
	})
}

// FuzzServerGroups checks that no first page of GET /os-server-groups (the next page is
// empty) makes ServerGroups panic or loop, that a failure returns no groups, and that success
// returns exactly the groups of the page, in its order, no group twice, each limit read as
// the number or numeric string Nova sends.
func FuzzServerGroups(f *testing.F) {
	for _, offset := range slices.Sorted(maps.Keys(serverGroupPages)) {
		f.Add([]byte(serverGroupPages[offset]))
	}
	addSeeds(f, jsonGarbage...)
	addSeeds(f,
		`{"server_groups": [{"id": "a"}, {"id": "a"}]}`, `{"server_groups": [{"id": "a", "rules": {"max_server_per_host": ""}}]}`,
		`{"server_groups": [{"id": "a", "rules": {"max_server_per_host": "x"}}]}`,
		`{"server_groups": [{"id": "a", "rules": {"max_server_per_host": 99999999999999999999}}]}`,
	)
	nova := newFuzzNova(f)
	f.Fuzz(func(t *testing.T, body []byte) {
		var got []ServerGroup
		err := nova.call(t, map[string][]byte{"server_groups": body}, func(ctx context.Context) (err error) {
			got, err = nova.client.ServerGroups(ctx)
			return err
		})
		if err != nil {
			if got != nil {
				t.Fatalf("a failed listing (%v) returned groups %+v", err, got)
			}
			return
		}
		var page struct {
			Groups []struct {
				ID    string `json:"id"`
				Rules struct {
					Max json.RawMessage `json:"max_server_per_host"`
				} `json:"rules"`
			} `json:"server_groups"`
		}
		decodeAs(t, firstValue(t, body), &page)
		if len(got) != len(page.Groups) {
			t.Fatalf("%d groups from a page listing %d", len(got), len(page.Groups))
		}
		seen := map[string]bool{}
		for i, g := range got {
			if g.ID != page.Groups[i].ID || seen[g.ID] {
				t.Errorf("group %d is %q, the page lists %q (seen before: %v)", i, g.ID, page.Groups[i].ID, seen[g.ID])
			}
			seen[g.ID] = true
			raw := strings.Trim(string(page.Groups[i].Rules.Max), `"`)
			if n, err := strconv.Atoi(raw); err == nil && n != g.MaxServerPerHost {
				t.Errorf("group %q: max_server_per_host %s read as %d", g.ID, page.Groups[i].Rules.Max, g.MaxServerPerHost)
			}
		}
	})
}

// FuzzFaultMessage checks that no error body makes faultMessage panic and that what it
// returns fits an exit reason and a log line: one line of single spaces, nothing around it,
// at most 300 bytes and "...".
func FuzzFaultMessage(f *testing.F) {
	addSeeds(f,
		// The bodies the package's tests answer errors with.
		`{"badRequest": {"code": 400, "message": "Unable to force up host compute1 as `+"`done`"+` evacuation migration records remain associated with the host."}}`,
		`{"itemNotFound": {"code": 404, "message": "Service `+svcID+` not found."}}`,
		`{"error": {"code": 401, "title": "Unauthorized", "message": "The request you have made requires authentication."}}`,
		`{"errors": [{"status": 404, "title": "Not Found", "detail": "No resource provider with uuid x found", "code": "placement.undefined_code", "request_id": "req-1"}]}`,
		`<html><body><h1>503 Service Unavailable</h1></body></html>`,
		"404 Not Found\n\nNo image found with ID gone\n\n",
		// Edges: empty lists and messages, other shapes, long and multi-byte text.
		`{"errors": []}`, `{"errors": [{"title": "T"}]}`, `{"errors": "x"}`, `{"a": {"message": ""}, "b": {"message": "m"}}`,
		`{"a": {"message": 5}}`, `{"message": "top level"}`, "", "  \t\n", "null", `"quoted"`,
		strings.Repeat("é", 200), "a"+strings.Repeat("é", 200), `{"x": {"message": "`+strings.Repeat("a\\u2028b ", 80)+`"}}`,
	)
	f.Fuzz(func(t *testing.T, body []byte) {
		msg := faultMessage(body)
		if strings.TrimFunc(msg, unicode.IsSpace) != msg {
			t.Errorf("faultMessage(%q) = %q: blanks around it", body, msg)
		}
		if strings.Contains(msg, "  ") || strings.ContainsFunc(msg, func(r rune) bool { return unicode.IsSpace(r) && r != ' ' }) {
			t.Errorf("faultMessage(%q) = %q: not one line of single spaces", body, msg)
		}
		if len(msg) > 300+len("...") {
			t.Errorf("faultMessage(%q) is %d bytes long", body, len(msg))
		}
		if utf8.Valid(body) && !utf8.ValidString(msg) {
			t.Errorf("faultMessage(%q) = %q: a character cut in two", body, msg)
		}
	})
}

// FuzzMacOrder checks that no "addresses" value makes macOrder panic, that it never returns an
// empty or repeated MAC, and that from an object that decodes whole it returns every MAC the
// object holds and no other.
func FuzzMacOrder(f *testing.F) {
	for _, body := range []string{imageServer, volumeServer} {
		var s struct {
			Server struct {
				Addresses json.RawMessage `json:"addresses"`
			} `json:"server"`
		}
		if err := json.Unmarshal([]byte(body), &s); err != nil {
			f.Fatal(err)
		}
		f.Add([]byte(s.Server.Addresses))
	}
	addSeeds(f, jsonGarbage...)
	addSeeds(f,
		`{"a": [{"OS-EXT-IPS-MAC:mac_addr": "m1"}], "a": [{"OS-EXT-IPS-MAC:mac_addr": "m2"}]}`,
		`{"a": [{"OS-EXT-IPS-MAC:mac_addr": ""}], "b": null, "c": [{}]}`, `{"a": [{"os-ext-ips-mac:MAC_ADDR": "m"}]}`,
		`{"a": [{"OS-EXT-IPS-MAC:mac_addr": "m1"}], "b": 5, "c": [{"OS-EXT-IPS-MAC:mac_addr": "m2"}]}`,
		`{"a": [{"OS-EXT-IPS-MAC:mac_addr": "m1"}], `, `{1: []}`,
	)
	f.Fuzz(func(t *testing.T, addresses []byte) {
		got := macOrder(addresses)
		seen := map[string]bool{}
		for _, m := range got {
			if m == "" || seen[m] {
				t.Fatalf("macOrder(%q) = %q: an empty or repeated MAC", addresses, got)
			}
			seen[m] = true
		}
		var whole map[string][]struct {
			MAC string `json:"OS-EXT-IPS-MAC:mac_addr"`
		}
		if err := json.Unmarshal(addresses, &whole); err != nil || whole == nil {
			return
		}
		// A network named twice is one map entry, its last list; macOrder reads both.
		want := map[string]bool{}
		for _, addrs := range whole {
			for _, a := range addrs {
				if a.MAC != "" {
					want[a.MAC] = true
				}
			}
		}
		for m := range want {
			if !seen[m] {
				t.Errorf("macOrder(%q) = %q, without %q", addresses, got, m)
			}
		}
		if !duplicateKeys(addresses) && len(seen) != len(want) {
			t.Errorf("macOrder(%q) = %q, want the MACs %q", addresses, got, slices.Sorted(maps.Keys(want)))
		}
	})
}

// duplicateKeys tells whether a JSON object names a member twice, which a Go map cannot show.
func duplicateKeys(object []byte) bool {
	dec := json.NewDecoder(bytes.NewReader(object))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return false
	}
	keys := map[string]bool{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return false
		}
		k, _ := tok.(string)
		if keys[k] {
			return true
		}
		keys[k] = true
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			return false
		}
	}
	return false
}
