package openstack

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/gophercloud/gophercloud/v2"
)

// Fake is an in-memory Client for unit tests of callers. It models the Nova behaviour that a
// recovery depends on and that a naive mock hides:
//
//   - a compute host that stops heartbeating (KillCompute) stays "up" until ServiceDownTime has
//     passed on the injected clock, unless it is forced down;
//   - Evacuate is refused with ErrSourceServiceUp (400, as Nova) while the source service is up;
//   - an evacuation leaves a "done" migration that turns "completed" only when the source's
//     nova-compute restarts (RestartCompute), and UnforceDown is refused with
//     ErrEvacuationsPending (400, as Nova) while such "done" records remain;
//   - DisableService of a dead host that Nova still believes up is counted as blocked
//     (BlockedDisables), since real Nova then waits about a minute on an RPC to it;
//   - Evacuate to an unknown host is ErrNotFound, to the source host ErrBadRequest, and of a
//     server with a task in progress ErrConflict;
//   - a reboot or a start cast to a compute that is dead or forced down is accepted and never
//     done: the server stays in its task state until RestartCompute;
//   - a hard server group policy refuses hosts, for an explicit target as for the scheduler's
//     pick, with the outcome Nova gives when no host is valid.
//
// Evacuations complete at once: the server is on its new host, in its previous status, as soon
// as Evacuate returns. Without a target, the fake picks the enabled, up host with the fewest
// servers (the real scheduler's choice is less even), preferring hosts that keep a soft group
// policy. With no such host the migration is recorded as "error" and the server stays, in
// ERROR, as when Nova's scheduler finds no valid host; a later evacuation that succeeds brings
// it back in the status it had before. Cold migrations, live migrations and server creations
// complete at once too.
//
// Flavors are known by id (AddFlavor); AddServer makes the flavor of a server known under its
// name when no flavor of that name is, as a cloud where the server's flavor still exists.
// Neutron ports are kept in memory (AddPort, CreatePort). Key pairs are not stored: CreateServer
// takes any key name, a key pair of another user under the name the real client copies it to.
type Fake struct {
	mu    sync.Mutex
	now   func() time.Time
	seq   int
	calls []string
	fail  map[string][]error

	// ServiceDownTime is Nova's service_down_time (default 60 s).
	ServiceDownTime time.Duration
	// UserID is the user the fake client logs in as: servers it creates belong to it, and key
	// pairs of other users are copied to it (default "computeha").
	UserID string

	services        map[string]*fakeService // by host
	servers         map[string]*Server      // by id
	migrations      []Migration
	aggregates      []Aggregate
	blockedDisables int
	// beforeNoHost keeps the status of a server an evacuation without a valid host put in ERROR.
	beforeNoHost map[string][2]string
	// holdEvacuations leaves accepted evacuations under way; held are their migrations' indexes.
	holdEvacuations bool
	// toDead are the indexes of the evacuation migrations sent to a nova-compute that had died
	// (still seen up): their rebuild waits in its queue until it starts again.
	toDead     []int
	toDeadHost map[int]string // where each was cast
	held       []int

	flavors map[string]Flavor     // by id
	groups  []*ServerGroup        // in the order they were added
	ports   []*Port               // in the order they were created
	specs   map[string]ServerSpec // SetServerSpec, by server id
	// boot keeps what CreateServer was given that a Server does not show.
	boot map[string]fakeBoot
	// resized keeps the vm_state a cold-migrated server had, for ConfirmResize to restore.
	resized map[string]string
	// tokens are the Keystone tokens Token takes (SetToken).
	tokens map[string]TokenInfo
}

// fakeBoot is what a server was created with beyond what Server carries.
type fakeBoot struct {
	// bootVolume is never deleted with the server: CreateServer maps it so.
	bootVolume        string
	dataVolumes       []string
	keyName, keyOwner string
	userData          string
	ports             []string // in the order of the create request
}

type fakeService struct {
	Service
	dead   bool
	deadAt time.Time
	res    map[string]Resource
}

var _ Client = (*Fake)(nil)

// NewFake returns an empty fake whose notion of time is now (time.Now if nil).
func NewFake(now func() time.Time) *Fake {
	if now == nil {
		now = time.Now
	}
	return &Fake{
		now:             now,
		ServiceDownTime: 60 * time.Second,
		fail:            map[string][]error{},
		UserID:          "computeha",
		services:        map[string]*fakeService{},
		servers:         map[string]*Server{},
		beforeNoHost:    map[string][2]string{},
		toDeadHost:      map[int]string{},
		flavors:         map[string]Flavor{},
		specs:           map[string]ServerSpec{},
		boot:            map[string]fakeBoot{},
		resized:         map[string]string{},
	}
}

func (f *Fake) uuid() string {
	f.seq++
	return fmt.Sprintf("00000000-0000-4000-8000-%012d", f.seq)
}

// AddCompute adds an enabled, up nova-compute service (and its hypervisor) on host.
func (f *Fake) AddCompute(host, zone string) Service {
	f.mu.Lock()
	defer f.mu.Unlock()
	s := &fakeService{Service: Service{
		ID: f.uuid(), Host: host, Binary: "nova-compute", Zone: zone,
		Status: "enabled", State: "up", UpdatedAt: f.now(),
	}}
	f.services[host] = s
	return s.Service
}

// SetResources sets the Placement view of host's capacity that Hypervisors reports.
func (f *Fake) SetResources(host string, res map[string]Resource) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if s, ok := f.services[host]; ok {
		s.res = maps.Clone(res)
	}
}

// AddServer adds a server; an empty ID gets one generated, an empty Status is ACTIVE. A flavor
// name no known flavor has is made known with the server's flavor under the name as its id.
func (f *Fake) AddServer(s Server) Server {
	f.mu.Lock()
	defer f.mu.Unlock()
	if s.ID == "" {
		s.ID = f.uuid()
	}
	if s.Status == "" {
		s.Status = "ACTIVE"
	}
	if s.VMState == "" {
		s.VMState = map[string]string{"ACTIVE": "active", "SHUTOFF": "stopped", "ERROR": "error", "PAUSED": "paused"}[s.Status]
	}
	if name := s.Flavor.OriginalName; name != "" && f.flavorID(name) == "" {
		f.flavors[name] = cloneFlavor(s.Flavor)
	}
	f.servers[s.ID] = &s
	return cloneServer(s)
}

// AddFlavor makes a flavor known under id; its name is fl.OriginalName.
func (f *Fake) AddFlavor(id string, fl Flavor) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.flavors[id] = cloneFlavor(fl)
}

// DeleteFlavor forgets a flavor, as when an operator deletes it: ServerSpec of servers built
// from it then fails with ErrNotFound.
func (f *Fake) DeleteFlavor(id string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.flavors, id)
}

// flavorID returns the id of the flavor named name ("" when none); the smallest id when
// several are, so the answer does not change from call to call.
func (f *Fake) flavorID(name string) string {
	for _, id := range slices.Sorted(maps.Keys(f.flavors)) {
		if f.flavors[id].OriginalName == name {
			return id
		}
	}
	return ""
}

func cloneFlavor(fl Flavor) Flavor {
	fl.ExtraSpecs = maps.Clone(fl.ExtraSpecs)
	return fl
}

// SetServerSpec makes ServerSpec of serverID return spec instead of what the fake derives
// from the server: for boot volumes, key pairs or user data of servers added with AddServer.
func (f *Fake) SetServerSpec(serverID string, spec ServerSpec) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.specs[serverID] = cloneSpec(spec)
}

// AddAggregate adds a host aggregate.
func (f *Fake) AddAggregate(a Aggregate) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.aggregates = append(f.aggregates, a)
}

// KillCompute makes host's nova-compute stop heartbeating now.
func (f *Fake) KillCompute(host string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if s, ok := f.services[host]; ok && !s.dead {
		s.dead, s.deadAt = true, f.now()
	}
}

// RestartCompute starts host's nova-compute again: it heartbeats, and, as the real one does
// at start, it deletes the local copies of servers evacuated away and turns their "done"
// evacuation migrations "completed", and does the reboots and starts cast to it while it was
// down.
func (f *Fake) RestartCompute(host string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if s, ok := f.services[host]; ok {
		s.dead = false
		s.UpdatedAt = f.now()
	}
	for i, m := range f.migrations {
		if m.Type == "evacuation" && m.SourceCompute == host && m.Status == "done" {
			f.migrations[i].Status, f.migrations[i].UpdatedAt = "completed", f.now()
		}
	}
	// The rebuilds cast to it while it was dead: done if the server still waits for it; a
	// server whose state was reset since (and maybe rebuilt elsewhere) fails Nova's
	// expected-task-state check: nothing is built, the migration ends failed, and the
	// server is left in vm_state error, task rebuilding (status REBUILD) with that fault,
	// wherever it runs.
	left := f.toDead[:0]
	for _, i := range f.toDead {
		mig := &f.migrations[i]
		if f.toDeadHost[i] != host {
			left = append(left, i)
			continue
		}
		srv := f.servers[mig.ServerID]
		mig.DestCompute, mig.DestNode = host, host
		if srv != nil && srv.TaskState == "rebuilding" && srv.Host == mig.SourceCompute {
			mig.Status = "done"
			srv.Host, srv.HypervisorHostname, srv.TaskState = host, host, ""
		} else {
			mig.Status = "failed"
			if srv != nil && srv.TaskState == "" {
				// Nova saves the error state with the task it had set for the rebuild.
				srv.Status, srv.VMState, srv.TaskState = "REBUILD", "error", "rebuilding"
				srv.Fault = "Conflict updating instance " + srv.ID + ". Expected: {'task_state': ['rebuilding']}. Actual: {'task_state': None}"
			}
		}
		mig.UpdatedAt = f.now()
		delete(f.toDeadHost, i)
	}
	f.toDead = left
	f.finishPendingTasks(host)
}

// SetPowerState sets a server's power state, as Nova does on its hypervisor's events (a guest
// qemu paused on an I/O error: PowerPaused, the server still ACTIVE).
func (f *Fake) SetPowerState(serverID string, state int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if s, ok := f.servers[serverID]; ok {
		s.PowerState = state
	}
}

// FailNext makes the next call of method (e.g. "Evacuate") fail with err, once per call.
func (f *Fake) FailNext(method string, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.fail[method] = append(f.fail[method], err)
}

// ClearFailures drops the failures FailNext queued for method and not yet returned.
func (f *Fake) ClearFailures(method string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.fail, method)
}

// Calls returns the calls made so far, as "Method arg ...", oldest first.
func (f *Fake) Calls() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.calls)
}

// BlockedDisables counts DisableService calls on a dead host Nova still believed up: each
// would have blocked about a minute on a real Nova.
func (f *Fake) BlockedDisables() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.blockedDisables
}

// begin records a call and returns an injected failure, if any. Callers hold f.mu.
func (f *Fake) begin(ctx context.Context, method string, args ...string) error {
	call := method
	for _, a := range args {
		call += " " + a
	}
	f.calls = append(f.calls, call)
	if err := ctx.Err(); err != nil {
		return err
	}
	if q := f.fail[method]; len(q) > 0 {
		f.fail[method] = q[1:]
		return q[0]
	}
	return nil
}

// view is the service as Nova would report it now.
func (f *Fake) view(s *fakeService) Service {
	out := s.Service
	switch {
	case s.ForcedDown:
		out.State = "down"
	case s.dead && f.now().Sub(s.deadAt) >= f.ServiceDownTime:
		out.State = "down"
	default:
		out.State = "up"
	}
	if s.dead {
		out.UpdatedAt = s.deadAt
	} else {
		out.UpdatedAt = f.now()
	}
	return out
}

func (f *Fake) byID(id string) *fakeService {
	for _, s := range f.services {
		if s.ID == id {
			return s
		}
	}
	return nil
}

func fakeAPIError(method, path string, status int, msg string) error {
	return newAPIError("compute", gophercloudErr(method, path, status, msg))
}

func (f *Fake) FindComputeService(ctx context.Context, host string) (Service, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.begin(ctx, "FindComputeService", host); err != nil {
		return Service{}, err
	}
	s, ok := f.services[host]
	if !ok {
		return Service{}, fmt.Errorf("finding the nova-compute service of %s: %w", host, ErrNotFound)
	}
	return f.view(s), nil
}

func (f *Fake) ComputeServices(ctx context.Context) ([]Service, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.begin(ctx, "ComputeServices"); err != nil {
		return nil, err
	}
	out := make([]Service, 0, len(f.services))
	for _, h := range slices.Sorted(maps.Keys(f.services)) {
		out = append(out, f.view(f.services[h]))
	}
	return out, nil
}

func (f *Fake) update(ctx context.Context, method, id string, apply func(*fakeService) error) (Service, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.begin(ctx, method, id); err != nil {
		return Service{}, err
	}
	s := f.byID(id)
	if s == nil {
		return Service{}, fakeAPIError(http.MethodPut, "/v2.1/os-services/"+id, http.StatusNotFound,
			fmt.Sprintf("Service %s not found.", id))
	}
	if err := apply(s); err != nil {
		return Service{}, err
	}
	return f.view(s), nil
}

func (f *Fake) DisableService(ctx context.Context, serviceID, reason string) (Service, error) {
	return f.update(ctx, "DisableService", serviceID, func(s *fakeService) error {
		if s.dead && f.view(s).State == "up" {
			f.blockedDisables++
		}
		s.Status, s.DisabledReason = "disabled", reason
		return nil
	})
}

func (f *Fake) EnableService(ctx context.Context, serviceID string) (Service, error) {
	return f.update(ctx, "EnableService", serviceID, func(s *fakeService) error {
		s.Status, s.DisabledReason = "enabled", ""
		return nil
	})
}

func (f *Fake) ForceDown(ctx context.Context, serviceID string) (Service, error) {
	return f.update(ctx, "ForceDown", serviceID, func(s *fakeService) error {
		s.ForcedDown = true
		return nil
	})
}

func (f *Fake) UnforceDown(ctx context.Context, serviceID string) (Service, error) {
	return f.update(ctx, "UnforceDown", serviceID, func(s *fakeService) error {
		for _, m := range f.migrations {
			if m.Type == "evacuation" && m.SourceCompute == s.Host && m.Status == "done" {
				return fakeAPIError(http.MethodPut, "/v2.1/os-services/"+serviceID, http.StatusBadRequest, fmt.Sprintf(
					"Unable to force up host %s as `done` evacuation migration records remain associated with the host. "+
						"Ensure the compute service has been restarted, allowing these records to move to `completed` "+
						"before retrying this request.", s.Host))
			}
		}
		s.ForcedDown = false
		return nil
	})
}

func (f *Fake) ServersOnHost(ctx context.Context, host string) ([]Server, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.begin(ctx, "ServersOnHost", host); err != nil {
		return nil, err
	}
	var out []Server
	for _, s := range f.servers {
		if s.Host == host {
			out = append(out, cloneServer(*s))
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}

func (f *Fake) Server(ctx context.Context, serverID string) (Server, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.begin(ctx, "Server", serverID); err != nil {
		return Server{}, err
	}
	s, ok := f.servers[serverID]
	if !ok {
		return Server{}, fakeAPIError(http.MethodGet, "/v2.1/servers/"+serverID, http.StatusNotFound,
			"Instance "+serverID+" could not be found.")
	}
	return cloneServer(*s), nil
}

// ResetState sets the server's state as Nova's os-resetState does.
func (f *Fake) ResetState(ctx context.Context, serverID, state string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.begin(ctx, "ResetState", serverID, state); err != nil {
		return err
	}
	srv, ok := f.servers[serverID]
	if !ok {
		return fakeAPIError(http.MethodPost, "/v2.1/servers/"+serverID+"/action", http.StatusNotFound, "Instance "+serverID+" could not be found.")
	}
	srv.VMState, srv.TaskState = state, ""
	srv.Status = map[string]string{"active": "ACTIVE", "error": "ERROR"}[state]
	if state == "active" {
		srv.Fault = "" // Nova shows a fault only on a server in ERROR
	}
	return nil
}

func (f *Fake) Evacuate(ctx context.Context, serverID, targetHost string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.begin(ctx, "Evacuate", serverID, targetHost); err != nil {
		return err
	}
	path := "/v2.1/servers/" + serverID + "/action"
	srv, ok := f.servers[serverID]
	if !ok {
		return fakeAPIError(http.MethodPost, path, http.StatusNotFound, "Instance "+serverID+" could not be found.")
	}
	if srv.TaskState != "" || !slices.Contains([]string{"active", "stopped", "error"}, srv.VMState) {
		return fakeAPIError(http.MethodPost, path, http.StatusConflict, fmt.Sprintf(
			"Cannot 'evacuate' instance %s while it is in vm_state %s, task_state %s", serverID, srv.VMState, srv.TaskState))
	}
	// Nova's API checks the target host before the source service.
	if targetHost != "" {
		if targetHost == srv.Host {
			return fakeAPIError(http.MethodPost, path, http.StatusBadRequest,
				"The target host can't be the same one.")
		}
		if _, ok := f.services[targetHost]; !ok {
			return fakeAPIError(http.MethodPost, path, http.StatusNotFound,
				fmt.Sprintf("Compute host %s could not be found.", targetHost))
		}
	}
	src := f.services[srv.Host]
	if src != nil && f.view(src).State == "up" {
		return fakeAPIError(http.MethodPost, path, http.StatusBadRequest,
			fmt.Sprintf("Compute service of %s is still in use.", srv.Host))
	}
	mig := Migration{
		ID: len(f.migrations) + 1, UUID: f.uuid(), ServerID: serverID, Type: "evacuation",
		SourceCompute: srv.Host, SourceNode: srv.HypervisorHostname,
		CreatedAt: f.now(), UpdatedAt: f.now(),
	}
	dest := targetHost
	if dest == "" {
		dest = f.pickHost(serverID, srv.Host, "")
	}
	if !f.canHost(dest, serverID) {
		mig.Status = "error" // the scheduler found no valid host
		f.migrations = append(f.migrations, mig)
		if _, seen := f.beforeNoHost[serverID]; !seen {
			f.beforeNoHost[serverID] = [2]string{srv.Status, srv.VMState}
		}
		srv.Status, srv.VMState = "ERROR", "error"
		return nil
	}
	mig.Status, mig.DestCompute, mig.DestNode = "done", dest, dest
	if d := f.services[dest]; d != nil && d.dead {
		// Nova's scheduler still sees the dead host up: the rebuild is cast to a queue nobody
		// reads, the server stays "rebuilding" on its source. The record is as the API created
		// it: its destination only when one was asked for, never saved since (no updated_at,
		// so left out of listings with changes-since).
		mig.Status, mig.UpdatedAt = "accepted", time.Time{}
		if targetHost == "" {
			mig.DestCompute, mig.DestNode = "", ""
		}
		srv.TaskState = "rebuilding"
		f.toDead = append(f.toDead, len(f.migrations))
		f.toDeadHost[len(f.migrations)] = dest
		f.migrations = append(f.migrations, mig)
		return nil
	}
	if f.holdEvacuations {
		// A loaded Nova: the rebuild has not begun, and the server shows nothing of it yet.
		// The record is as the API created it: never saved since, so without updated_at, and
		// left out of listings with changes-since, as Nova's database leaves it out.
		mig.Status, mig.UpdatedAt = "accepted", time.Time{}
		f.held = append(f.held, len(f.migrations))
		f.migrations = append(f.migrations, mig)
		return nil
	}
	// Nova's compute takes the instance's first "accepted" evacuation for its own: with a lost
	// one (sent to a dead host) still accepted, that one is recorded done here, and the new
	// one stays accepted for good.
	for _, i := range f.toDead {
		if old := &f.migrations[i]; old.ServerID == serverID && old.Status == "accepted" {
			old.Status, old.DestCompute, old.DestNode, old.UpdatedAt = "done", dest, dest, f.now()
			mig.Status, mig.UpdatedAt = "accepted", time.Time{}
			break
		}
	}
	f.migrations = append(f.migrations, mig)
	srv.Host, srv.HypervisorHostname = dest, dest
	if st, ok := f.beforeNoHost[serverID]; ok {
		srv.Status, srv.VMState = st[0], st[1]
		delete(f.beforeNoHost, serverID)
	}
	return nil
}

// TakeOver makes host, the destination of server id's evacuation sent to a dead
// nova-compute, have begun the rebuild before it died: Nova places the server there, still
// rebuilding, and the rebuild is no longer in its queue.
func (f *Fake) TakeOver(serverID, host string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if srv := f.servers[serverID]; srv != nil {
		srv.Host, srv.HypervisorHostname = host, host
	}
	f.toDead = slices.DeleteFunc(f.toDead, func(i int) bool { return f.migrations[i].ServerID == serverID && f.toDeadHost[i] == host })
}

// HoldEvacuations makes the evacuations accepted from now on stay under way (their migrations
// "accepted" and never updated, their servers where they were), as on a loaded Nova, until
// ReleaseEvacuations completes them.
func (f *Fake) HoldEvacuations() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.holdEvacuations = true
}

// ReleaseEvacuations completes the evacuations held so far, and holds no more.
func (f *Fake) ReleaseEvacuations() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.holdEvacuations = false
	for _, i := range f.held {
		mig := &f.migrations[i]
		mig.Status, mig.UpdatedAt = "done", f.now()
		if srv := f.servers[mig.ServerID]; srv != nil {
			srv.Host, srv.HypervisorHostname = mig.DestCompute, mig.DestNode
		}
	}
	f.held = nil
}

// pickHost is the fake scheduler: among the hosts other than source, in zone when set, that
// can take serverID (canHost: enabled, up, within a hard group policy), the one that best
// keeps a soft group policy, then the one with the fewest servers; "" when none can.
func (f *Fake) pickHost(serverID, source, zone string) string {
	load := map[string]int{}
	for _, s := range f.servers {
		load[s.Host]++
	}
	best, bestPenalty := "", 0
	for _, h := range slices.Sorted(maps.Keys(f.services)) {
		if h == source || zone != "" && f.services[h].Zone != zone || !f.canHost(h, serverID) {
			continue
		}
		p := f.softGroupPenalty(serverID, h)
		if best == "" || p < bestPenalty || p == bestPenalty && load[h] < load[best] {
			best, bestPenalty = h, p
		}
	}
	return best
}

func (f *Fake) Migrations(ctx context.Context, filter MigrationFilter) ([]Migration, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.begin(ctx, "Migrations", filter.Host, filter.Type, filter.Status, filter.ServerID); err != nil {
		return nil, err
	}
	var out []Migration
	for i := len(f.migrations) - 1; i >= 0; i-- { // newest first, as Nova sorts
		m := f.migrations[i]
		if filter.Host != "" && m.SourceCompute != filter.Host && m.DestCompute != filter.Host ||
			filter.Type != "" && m.Type != filter.Type ||
			filter.Status != "" && m.Status != filter.Status ||
			filter.ServerID != "" && m.ServerID != filter.ServerID ||
			!filter.ChangedSince.IsZero() && (m.UpdatedAt.IsZero() || m.UpdatedAt.Before(filter.ChangedSince)) {
			continue
		}
		out = append(out, m)
	}
	return out, nil
}

func (f *Fake) Hypervisors(ctx context.Context) ([]Hypervisor, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.begin(ctx, "Hypervisors"); err != nil {
		return nil, err
	}
	return f.hypervisorsLocked(), nil
}

// hypervisorsLocked is every compute with its capacity; f.mu is held.
func (f *Fake) hypervisorsLocked() []Hypervisor {
	var out []Hypervisor
	for _, h := range slices.Sorted(maps.Keys(f.services)) {
		s := f.services[h]
		n := 0
		for _, srv := range f.servers {
			if srv.Host == h {
				n++
			}
		}
		v := f.view(s)
		out = append(out, Hypervisor{
			ID: s.ID, Hostname: h, ServiceHost: h, State: v.State, Status: v.Status, DisabledReason: v.DisabledReason,
			RunningVMs: n, Resources: maps.Clone(s.res),
		})
	}
	return out
}

func (f *Fake) HypervisorHosts(ctx context.Context) ([]Hypervisor, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.begin(ctx, "HypervisorHosts"); err != nil {
		return nil, err
	}
	hvs := f.hypervisorsLocked()
	for i := range hvs {
		hvs[i].Resources = nil
	}
	return hvs, nil
}

func (f *Fake) Aggregates(ctx context.Context) ([]Aggregate, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.begin(ctx, "Aggregates"); err != nil {
		return nil, err
	}
	out := make([]Aggregate, 0, len(f.aggregates))
	for _, a := range f.aggregates {
		a.Hosts = slices.Clone(a.Hosts)
		a.Metadata = maps.Clone(a.Metadata)
		out = append(out, a)
	}
	return out, nil
}

func cloneServer(s Server) Server {
	if s.Status != "ERROR" && s.Status != "DELETED" {
		s.Fault = "" // Nova shows a server's fault only while its status is ERROR or DELETED
	}
	s.Metadata = maps.Clone(s.Metadata)
	s.ImageProperties = maps.Clone(s.ImageProperties)
	s.Flavor.ExtraSpecs = maps.Clone(s.Flavor.ExtraSpecs)
	s.Tags = slices.Clone(s.Tags)
	return s
}

// gophercloudErr is what gophercloud returns for a Nova fault, so that the fake's errors go
// through the same classification as the real client's.
func gophercloudErr(method, path string, status int, msg string) gophercloud.ErrUnexpectedResponseCode {
	key := map[int]string{400: "badRequest", 404: "itemNotFound", 409: "conflictingRequest"}[status]
	body, _ := json.Marshal(map[string]any{key: map[string]any{"code": status, "message": msg}})
	return gophercloud.ErrUnexpectedResponseCode{
		Method: method, URL: "http://nova.invalid" + path, Actual: status, Body: body,
		Expected: []int{200},
	}
}
