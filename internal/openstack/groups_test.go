package openstack

import (
	"context"
	"net/http"
	"net/url"
	"sync/atomic"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// serverGroupPages are GET /os-server-groups at 2.64, by offset.
var serverGroupPages = map[string]string{
	"0": `{"server_groups": [
		{"id": "616fb98f-46ca-475e-917e-2563e5a8cd19", "name": "db", "policy": "anti-affinity",
		 "rules": {"max_server_per_host": 2}, "members": ["9168b536-cd40-4630-b43f-b259807c6e87"],
		 "project_id": "6f70656e737461636b20342065766572", "user_id": "admin"},
		{"id": "5bbcc3c4-1da2-4437-a48a-66f15b1b13f9", "name": "web", "policy": "soft-affinity",
		 "rules": {}, "members": [], "project_id": "0a1b2c3d", "user_id": "demo"}]}`,
	"2": `{"server_groups": [
		{"id": "a3e8d6b8-0c1e-4f0e-8c43-3c5f2a1b0d9e", "name": "legacy", "policy": "anti-affinity",
		 "rules": {"max_server_per_host": "3"}, "members": ["2ce4c5b3-2866-4972-93ce-77a2ea46a7f9", "5d2a0f8a-0c4f-4a7e-8f52-3b1c5d6e7f80"],
		 "project_id": "0a1b2c3d", "user_id": "demo"}]}`,
	"3": `{"server_groups": []}`,
}

func TestServerGroupsReadEveryProjectPageByPageUntilAnEmptyPage(t *testing.T) {
	c := newTestCloud(t)
	var pages atomic.Int32
	c.mux.HandleFunc("/compute/v2.1/os-server-groups", func(w http.ResponseWriter, r *http.Request) {
		pages.Add(1)
		offset := r.URL.Query().Get("offset")
		request{
			method: "GET", path: "/compute/v2.1/os-server-groups", version: ComputeMicroversion,
			query: url.Values{"all_projects": {"True"}, "limit": {"200"}, "offset": {offset}},
		}.check(t, r)
		body, ok := serverGroupPages[offset]
		if !ok {
			t.Errorf("unexpected offset %q", offset)
			body = `{"server_groups": []}`
		}
		reply(w, http.StatusOK, body)
	})
	got, err := c.client().ServerGroups(context.Background())
	if err != nil {
		t.Fatalf("ServerGroups: %v", err)
	}
	want := []ServerGroup{
		{
			ID: "616fb98f-46ca-475e-917e-2563e5a8cd19", Name: "db", ProjectID: "6f70656e737461636b20342065766572",
			Policy: PolicyAntiAffinity, MaxServerPerHost: 2, Members: []string{"9168b536-cd40-4630-b43f-b259807c6e87"},
		},
		{ID: "5bbcc3c4-1da2-4437-a48a-66f15b1b13f9", Name: "web", ProjectID: "0a1b2c3d", Policy: PolicySoftAffinity, Members: []string{}},
		{
			ID: "a3e8d6b8-0c1e-4f0e-8c43-3c5f2a1b0d9e", Name: "legacy", ProjectID: "0a1b2c3d", Policy: PolicyAntiAffinity,
			MaxServerPerHost: 3, Members: []string{"2ce4c5b3-2866-4972-93ce-77a2ea46a7f9", "5d2a0f8a-0c4f-4a7e-8f52-3b1c5d6e7f80"},
		},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("server groups (-want +got):\n%s", diff)
	}
	if n := pages.Load(); n != 3 {
		t.Errorf("pages requested = %d, want 3 (the last one empty)", n)
	}
	if !got[0].Hard() || got[1].Hard() {
		t.Errorf("Hard() = %v, %v; want anti-affinity hard and soft-affinity not", got[0].Hard(), got[1].Hard())
	}
}

func TestServerGroupsFromANovaThatIgnoresTheOffsetAreAnErrorNotALoop(t *testing.T) {
	c := newTestCloud(t)
	var pages atomic.Int32
	c.mux.HandleFunc("/compute/v2.1/os-server-groups", func(w http.ResponseWriter, r *http.Request) {
		if pages.Add(1) > 5 {
			t.Error("still paging")
		}
		reply(w, http.StatusOK, serverGroupPages["0"])
	})
	if _, err := c.client().ServerGroups(context.Background()); err == nil {
		t.Fatal("ServerGroups: no error for a repeated page")
	}
}

// groupLab is three computes: a and b, members of a group with policy, on compute1 and
// compute2 (both on compute1 for affinity), and two servers of no group on compute3, so that
// the fake scheduler without a policy would pick compute2, the least loaded host other than
// a's.
func groupLab(t *testing.T, policy string, maxPerHost int) (f *Fake, a, b Server) {
	t.Helper()
	f = NewFake(nil)
	for _, h := range []string{"compute1", "compute2", "compute3"} {
		f.AddCompute(h, "nova")
	}
	bHost := "compute2"
	if policy == PolicyAffinity || policy == PolicySoftAffinity {
		bHost = "compute1"
	}
	a = f.AddServer(Server{Name: "a", Host: "compute1", HypervisorHostname: "compute1", Flavor: Flavor{OriginalName: "m1.small"}})
	b = f.AddServer(Server{Name: "b", Host: bHost, HypervisorHostname: bHost})
	f.AddServer(Server{Name: "x", Host: "compute3", HypervisorHostname: "compute3"})
	f.AddServer(Server{Name: "y", Host: "compute3", HypervisorHostname: "compute3"})
	f.AddServerGroup(ServerGroup{Name: "g", Policy: policy, MaxServerPerHost: maxPerHost, Members: []string{a.ID, b.ID}})
	return f, a, b
}

func TestFakeHardGroupPoliciesRefuseHostsForEveryMove(t *testing.T) {
	ctx := context.Background()
	type outcome struct {
		host, status, migration string
	}
	moves := []struct {
		name string
		move func(f *Fake, id, target string) error
		// what Nova gives when no host is valid
		noHost outcome
		typ    string
		// evacuations need the source down
		killSource bool
	}{
		{
			name: "evacuate", move: func(f *Fake, id, target string) error { return f.Evacuate(ctx, id, target) },
			noHost: outcome{host: "compute1", status: "ERROR", migration: "error"}, typ: "evacuation", killSource: true,
		},
		{
			name: "live-migrate", move: func(f *Fake, id, target string) error { return f.LiveMigrate(ctx, id, target, false) },
			noHost: outcome{host: "compute1", status: "ACTIVE", migration: "error"}, typ: "live-migration",
		},
		{
			name: "cold-migrate", move: func(f *Fake, id, target string) error { return f.ColdMigrate(ctx, id, target) },
			noHost: outcome{host: "compute1", status: "ACTIVE", migration: "error"}, typ: "migration",
		},
	}
	cases := []struct {
		name    string
		policy  string
		max     int
		target  string
		wantOK  bool
		wantDst string
	}{
		{name: "anti-affinity refuses an explicit target holding another member", policy: PolicyAntiAffinity, target: "compute2"},
		{name: "anti-affinity makes the scheduler skip the host of another member", policy: PolicyAntiAffinity, wantOK: true, wantDst: "compute3"},
		{name: "anti-affinity with max_server_per_host 2 accepts a second member on a host", policy: PolicyAntiAffinity, max: 2, target: "compute2", wantOK: true, wantDst: "compute2"},
		{name: "affinity refuses a host other than the members'", policy: PolicyAffinity, target: "compute2"},
		{name: "affinity leaves the scheduler no host when the members' host is the source", policy: PolicyAffinity},
		{name: "soft anti-affinity never refuses", policy: PolicySoftAntiAffinity, target: "compute2", wantOK: true, wantDst: "compute2"},
		{name: "soft anti-affinity makes the scheduler prefer a host without members", policy: PolicySoftAntiAffinity, wantOK: true, wantDst: "compute3"},
	}
	for _, m := range moves {
		for _, tc := range cases {
			t.Run(m.name+": "+tc.name, func(t *testing.T) {
				f, a, _ := groupLab(t, tc.policy, tc.max)
				if m.killSource {
					f.KillCompute("compute1")
					f.services["compute1"].ForcedDown = true
				}
				if err := m.move(f, a.ID, tc.target); err != nil {
					t.Fatalf("%s: %v", m.name, err)
				}
				want := m.noHost
				if tc.wantOK {
					want = outcome{host: tc.wantDst, status: map[string]string{
						"evacuation": "ACTIVE", "live-migration": "ACTIVE", "migration": "VERIFY_RESIZE",
					}[m.typ], migration: map[string]string{
						"evacuation": "done", "live-migration": "completed", "migration": "finished",
					}[m.typ]}
				}
				got, _ := f.Server(ctx, a.ID)
				migs, _ := f.Migrations(ctx, MigrationFilter{ServerID: a.ID, Type: m.typ})
				var gotMig string
				if len(migs) == 1 {
					gotMig = migs[0].Status
				}
				if diff := cmp.Diff(want, outcome{host: got.Host, status: got.Status, migration: gotMig}, cmp.AllowUnexported(outcome{})); diff != "" {
					t.Errorf("outcome (-want +got):\n%s", diff)
				}
			})
		}
	}
}

func TestFakeServerGroupsAreListedWithTheirMembers(t *testing.T) {
	ctx := context.Background()
	f, a, b := groupLab(t, PolicyAntiAffinity, 0)
	got, err := f.ServerGroups(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || !got[0].Hard() {
		t.Fatalf("groups = %+v, want the one hard group", got)
	}
	if diff := cmp.Diff([]string{a.ID, b.ID}, got[0].Members); diff != "" {
		t.Errorf("members (-want +got):\n%s", diff)
	}
	got[0].Members[0] = "changed"
	if again, _ := f.ServerGroups(ctx); again[0].Members[0] != a.ID {
		t.Error("a caller changed the fake's group through the listing")
	}
}
