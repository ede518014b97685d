package openstack

import (
	"context"
	"fmt"
	"net/url"
	"slices"
	"strconv"
)

// serverGroupsPageSize is well under Nova's default max_limit (1000); ServerGroups reads pages
// until an empty one, so a lower max_limit only costs more pages, never a short listing.
const serverGroupsPageSize = 200

// serverGroupJSON is a server group at 2.64: one policy, and rules.
type serverGroupJSON struct {
	ID        string   `json:"id"`
	Name      string   `json:"name"`
	ProjectID string   `json:"project_id"`
	Policy    string   `json:"policy"`
	Members   []string `json:"members"`
	Rules     struct {
		MaxServerPerHost flexInt `json:"max_server_per_host"`
	} `json:"rules"`
}

// ServerGroups reads GET /os-server-groups?all_projects=True page by page. The listing has no
// next links, only limit and offset, so it stops at the first empty page; a page that repeats
// a group already read means Nova ignored the offset, and is an error rather than a loop.
func (c *nova) ServerGroups(ctx context.Context) ([]ServerGroup, error) {
	op := "listing server groups"
	var out []ServerGroup
	seen := map[string]bool{}
	for offset := 0; ; {
		q := url.Values{
			"all_projects": {"True"},
			"limit":        {strconv.Itoa(serverGroupsPageSize)},
			"offset":       {strconv.Itoa(offset)},
		}
		var page struct {
			Groups []serverGroupJSON `json:"server_groups"`
		}
		if err := c.getJSON(ctx, c.compute, "compute", op, c.compute.ServiceURL("os-server-groups")+"?"+q.Encode(), &page); err != nil {
			return nil, err
		}
		if len(page.Groups) == 0 {
			return out, nil
		}
		for _, g := range page.Groups {
			if seen[g.ID] {
				return nil, fmt.Errorf("%s: the page at offset %d repeats group %s", op, offset, g.ID)
			}
			seen[g.ID] = true
			out = append(out, ServerGroup{
				ID: g.ID, Name: g.Name, ProjectID: g.ProjectID, Policy: g.Policy,
				MaxServerPerHost: int(g.Rules.MaxServerPerHost), Members: g.Members,
			})
		}
		offset += len(page.Groups)
	}
}

// --- fake -----------------------------------------------------------------------------------

// AddServerGroup adds a server group; an empty ID gets one generated. Members are server ids;
// servers created later with the group in their spec join it, deleted ones leave it.
func (f *Fake) AddServerGroup(g ServerGroup) ServerGroup {
	f.mu.Lock()
	defer f.mu.Unlock()
	if g.ID == "" {
		g.ID = f.uuid()
	}
	g.Members = slices.Clone(g.Members)
	f.groups = append(f.groups, &g)
	return cloneGroup(g)
}

// ServerGroups lists the fake's server groups in the order they were added.
func (f *Fake) ServerGroups(ctx context.Context) ([]ServerGroup, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.begin(ctx, "ServerGroups"); err != nil {
		return nil, err
	}
	out := make([]ServerGroup, 0, len(f.groups))
	for _, g := range f.groups {
		out = append(out, cloneGroup(*g))
	}
	return out, nil
}

func cloneGroup(g ServerGroup) ServerGroup {
	g.Members = slices.Clone(g.Members)
	return g
}

func (f *Fake) group(id string) *ServerGroup {
	for _, g := range f.groups {
		if g.ID == id {
			return g
		}
	}
	return nil
}

// groupOf returns the group serverID is a member of, nil when none.
func (f *Fake) groupOf(serverID string) *ServerGroup {
	for _, g := range f.groups {
		if slices.Contains(g.Members, serverID) {
			return g
		}
	}
	return nil
}

// groupMembersOn counts the members of g other than serverID placed on host.
func (f *Fake) groupMembersOn(g *ServerGroup, serverID, host string) int {
	n := 0
	for _, m := range g.Members {
		if s := f.servers[m]; m != serverID && s != nil && s.Host != "" && s.Host == host {
			n++
		}
	}
	return n
}

// groupAllows tells whether placing serverID on host keeps the hard policy of its group, as
// Nova's ServerGroupAntiAffinityFilter and ServerGroupAffinityFilter decide: anti-affinity
// refuses a host that already holds max_server_per_host other members (1 when unset);
// affinity refuses any host but the one of the other members, once one of them is placed.
// Soft policies never refuse.
func (f *Fake) groupAllows(serverID, host string) bool {
	g := f.groupOf(serverID)
	if g == nil {
		return true
	}
	switch g.Policy {
	case PolicyAntiAffinity:
		return f.groupMembersOn(g, serverID, host) < max(g.MaxServerPerHost, 1)
	case PolicyAffinity:
		for _, m := range g.Members {
			if s := f.servers[m]; m != serverID && s != nil && s.Host != "" && s.Host != host {
				return false
			}
		}
	}
	return true
}

// softGroupPenalty ranks host for serverID under a soft policy of its group, lower being
// better, as Nova's ServerGroupSoftAntiAffinityWeigher and ServerGroupSoftAffinityWeigher do:
// the number of other members on host for soft-anti-affinity, minus that number for
// soft-affinity, 0 otherwise.
func (f *Fake) softGroupPenalty(serverID, host string) int {
	g := f.groupOf(serverID)
	if g == nil {
		return 0
	}
	switch g.Policy {
	case PolicySoftAntiAffinity:
		return f.groupMembersOn(g, serverID, host)
	case PolicySoftAffinity:
		return -f.groupMembersOn(g, serverID, host)
	}
	return 0
}

// canHost tells whether the scheduler would accept host for serverID: a known nova-compute,
// enabled, up, and within the hard policy of the server's group.
func (f *Fake) canHost(host, serverID string) bool {
	s := f.services[host]
	return host != "" && s != nil && s.Status == "enabled" && f.view(s).State == "up" && f.groupAllows(serverID, host)
}
