package openstack

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"

	"github.com/gophercloud/gophercloud/v2"
)

// serverAction posts one action that starts work on a server to /servers/{id}/action. Such an
// action must not run twice (see the package doc), so it is retried only when Nova cannot have
// seen the first attempt.
func (c *nova) serverAction(ctx context.Context, op, serverID string, body any, okCodes ...int) error {
	u := c.compute.ServiceURL("servers", url.PathEscape(serverID), "action")
	return c.do(ctx, "compute", op, false, func(ctx context.Context) error {
		_, err := c.compute.Post(ctx, u, body, nil, &gophercloud.RequestOpts{OkCodes: okCodes})
		return err
	})
}

// ColdMigrate sends the migrate action: {"migrate": {"host": H}} (2.56+), or {"migrate": null}
// for the scheduler's choice. A 5xx is not retried: Nova may have started the migration.
func (c *nova) ColdMigrate(ctx context.Context, serverID, targetHost string) error {
	if serverID == "" {
		return errors.New("cold-migrating: empty server id")
	}
	op := "cold-migrating server " + serverID
	var args any // null: the scheduler chooses
	if targetHost != "" {
		op += " to " + targetHost
		args = map[string]any{"host": targetHost}
	}
	return c.serverAction(ctx, op, serverID, map[string]any{"migrate": args}, http.StatusAccepted)
}

// ConfirmResize sends confirmResize; Nova answers 204. Not retried on 5xx: a second confirm of
// a migration already confirming is refused, which would hide that the first one went through.
func (c *nova) ConfirmResize(ctx context.Context, serverID string) error {
	if serverID == "" {
		return errors.New("confirming a resize: empty server id")
	}
	return c.serverAction(ctx, "confirming the migration of server "+serverID, serverID,
		map[string]any{"confirmResize": nil}, http.StatusNoContent)
}

// Reboot sends the reboot action with type HARD or SOFT. Not retried on 5xx: a second reboot
// of a server already rebooting would restart it twice.
func (c *nova) Reboot(ctx context.Context, serverID string, hard bool) error {
	if serverID == "" {
		return errors.New("rebooting: empty server id")
	}
	kind := "SOFT"
	if hard {
		kind = "HARD"
	}
	return c.serverAction(ctx, "rebooting server "+serverID+" ("+kind+")", serverID,
		map[string]any{"reboot": map[string]string{"type": kind}}, http.StatusAccepted)
}

// StartServer sends os-start. Not retried on 5xx: the server may be powering on already, and
// Nova refuses a second start (409) while it does.
func (c *nova) StartServer(ctx context.Context, serverID string) error {
	if serverID == "" {
		return errors.New("starting a server: empty server id")
	}
	return c.serverAction(ctx, "starting server "+serverID, serverID,
		map[string]any{"os-start": nil}, http.StatusAccepted)
}

// Pause sends the pause action (202): Nova stops the server's vCPUs and keeps it PAUSED. Not
// retried on 5xx: Nova refuses a second pause (409) while the first one runs.
func (c *nova) Pause(ctx context.Context, serverID string) error {
	if serverID == "" {
		return errors.New("pausing a server: empty server id")
	}
	return c.serverAction(ctx, "pausing server "+serverID, serverID, map[string]any{"pause": nil}, http.StatusAccepted)
}

// Unpause sends the unpause action (202): Nova lets a PAUSED server's vCPUs run again. Not
// retried on 5xx, as Pause.
func (c *nova) Unpause(ctx context.Context, serverID string) error {
	if serverID == "" {
		return errors.New("unpausing a server: empty server id")
	}
	return c.serverAction(ctx, "unpausing server "+serverID, serverID, map[string]any{"unpause": nil}, http.StatusAccepted)
}

// DeleteServer sends DELETE /servers/{id}. Deleting is idempotent, so it is retried like a read;
// a retry after a first attempt that went through finds the server gone (ErrNotFound), which
// is the outcome the caller asked for.
func (c *nova) DeleteServer(ctx context.Context, serverID string) error {
	if serverID == "" {
		return errors.New("deleting a server: empty server id")
	}
	u := c.compute.ServiceURL("servers", url.PathEscape(serverID))
	return c.do(ctx, "compute", "deleting server "+serverID, true, func(ctx context.Context) error {
		_, err := c.compute.Delete(ctx, u, &gophercloud.RequestOpts{OkCodes: []int{http.StatusNoContent}})
		return err
	})
}

// --- fake -----------------------------------------------------------------------------------

// Task states the fake leaves a server in while its compute cannot act on the request.
const (
	taskRebooting     = "rebooting"
	taskRebootingHard = "rebooting_hard"
	taskPoweringOn    = "powering-on"
)

// hardRebootTasks are the task states Nova lets a hard reboot interrupt (task_states.ALLOW_REBOOT).
var hardRebootTasks = []string{
	"", taskRebooting, "reboot_pending", "reboot_started", "resuming", taskRebootingHard,
	"unpausing", "pausing", "suspending",
}

// novaStatus is the API status Nova shows for a vm_state and task_state (the part of
// nova.api.openstack.common's state map that the fake's servers can reach).
func novaStatus(vmState, taskState string) string {
	switch vmState {
	case "active":
		switch taskState {
		case taskRebooting, "reboot_pending", "reboot_started":
			return "REBOOT"
		case taskRebootingHard, "reboot_pending_hard", "reboot_started_hard":
			return "HARD_REBOOT"
		}
		return "ACTIVE"
	case "stopped":
		return "SHUTOFF"
	case "resized":
		return "VERIFY_RESIZE"
	case "paused":
		return "PAUSED"
	case "suspended":
		return "SUSPENDED"
	case "error":
		return "ERROR"
	}
	return "UNKNOWN"
}

// computeGone tells whether host's nova-compute cannot act on a request cast to it: it is dead,
// or forced down (which computeha does only after fencing the host).
func (f *Fake) computeGone(host string) bool {
	s := f.services[host]
	return s == nil || s.dead || s.ForcedDown
}

// invalidState is Nova's 409 for an action the server's state does not allow.
func invalidState(path, action string, srv *Server) error {
	return fakeAPIError(http.MethodPost, path, http.StatusConflict, fmt.Sprintf(
		"Cannot '%s' instance %s while it is in vm_state %s, task_state %s", action, srv.ID, srv.VMState, srv.TaskState))
}

func serverNotFound(method, path, id string) error {
	return fakeAPIError(method, path, http.StatusNotFound, "Instance "+id+" could not be found.")
}

// ColdMigrate models Nova's cold migration (the migrate action): refused (409) unless the
// server is ACTIVE or SHUTOFF with no task, (409) while its source compute service is down, as
// Nova needs that service to stop and send the server, (400) to its own host or to a host Nova
// does not know. It completes at once: the server is on its new host in VERIFY_RESIZE with a
// "finished" migration record until ConfirmResize. When the chosen host is disabled, down, or
// breaks a hard policy of the server's group, the migration is recorded as "error" and the
// server stays where it was, as when Nova's scheduler finds no valid host.
func (f *Fake) ColdMigrate(ctx context.Context, serverID, targetHost string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.begin(ctx, "ColdMigrate", serverID, targetHost); err != nil {
		return err
	}
	path := "/v2.1/servers/" + serverID + "/action"
	srv, ok := f.servers[serverID]
	if !ok {
		return serverNotFound(http.MethodPost, path, serverID)
	}
	// Nova checks in this order: the state, the source service, then the target host.
	if srv.TaskState != "" || !slices.Contains([]string{"active", "stopped"}, srv.VMState) {
		return invalidState(path, "migrate", srv)
	}
	if src := f.services[srv.Host]; src == nil || f.view(src).State != "up" {
		return fakeAPIError(http.MethodPost, path, http.StatusConflict, "Service is unavailable at this time.")
	}
	if targetHost != "" {
		if targetHost == srv.Host {
			return fakeAPIError(http.MethodPost, path, http.StatusBadRequest, "Cannot migrate to the host where the server exists.")
		}
		if _, ok := f.services[targetHost]; !ok {
			return fakeAPIError(http.MethodPost, path, http.StatusBadRequest,
				fmt.Sprintf("Compute host %s could not be found.", targetHost))
		}
	}
	mig := Migration{
		ID: len(f.migrations) + 1, UUID: f.uuid(), ServerID: serverID, Type: "migration",
		SourceCompute: srv.Host, SourceNode: srv.HypervisorHostname,
		CreatedAt: f.now(), UpdatedAt: f.now(),
	}
	dest := targetHost
	if dest == "" {
		dest = f.pickHost(serverID, srv.Host, "")
	}
	if !f.canHost(dest, serverID) {
		mig.Status = "error"
		f.migrations = append(f.migrations, mig)
		return nil
	}
	mig.Status, mig.DestCompute, mig.DestNode = "finished", dest, dest
	f.migrations = append(f.migrations, mig)
	f.resized[serverID] = srv.VMState
	srv.Host, srv.HypervisorHostname = dest, dest
	srv.VMState = "resized"
	srv.Status = novaStatus(srv.VMState, srv.TaskState)
	return nil
}

// ConfirmResize models Nova's confirmResize: refused (409) unless the server is in
// VERIFY_RESIZE, (400) when it has no finished migration, (409) while the source compute
// service is down (it removes the source copy). The server goes back to the status it had
// before the migration, ACTIVE or SHUTOFF, and the migration record becomes "confirmed".
func (f *Fake) ConfirmResize(ctx context.Context, serverID string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.begin(ctx, "ConfirmResize", serverID); err != nil {
		return err
	}
	path := "/v2.1/servers/" + serverID + "/action"
	srv, ok := f.servers[serverID]
	if !ok {
		return serverNotFound(http.MethodPost, path, serverID)
	}
	if srv.VMState != "resized" {
		return invalidState(path, "confirmResize", srv)
	}
	mi := -1
	for i := len(f.migrations) - 1; i >= 0; i-- {
		if m := f.migrations[i]; m.ServerID == serverID && m.Status == "finished" {
			mi = i
			break
		}
	}
	if mi < 0 {
		return fakeAPIError(http.MethodPost, path, http.StatusBadRequest, "Instance has not been resized.")
	}
	if src := f.services[f.migrations[mi].SourceCompute]; src == nil || f.view(src).State != "up" {
		return fakeAPIError(http.MethodPost, path, http.StatusConflict, "Service is unavailable at this time.")
	}
	f.migrations[mi].Status, f.migrations[mi].UpdatedAt = "confirmed", f.now()
	srv.VMState = f.resized[serverID]
	if srv.VMState == "" {
		srv.VMState = "active"
	}
	delete(f.resized, serverID)
	srv.Status = novaStatus(srv.VMState, srv.TaskState)
	return nil
}

// Reboot models Nova's reboot: a soft reboot needs an ACTIVE server with no task; a hard one
// is allowed from active, stopped, paused, suspended and error, and may interrupt a reboot in
// progress; anything else is refused (409). Nova checks nothing about the host's compute and
// casts the request to it: when that compute is dead or forced down the server stays in its
// task state (REBOOT, or HARD_REBOOT) until RestartCompute, so a caller that waits times out.
// Otherwise the server is ACTIVE when Reboot returns.
func (f *Fake) Reboot(ctx context.Context, serverID string, hard bool) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	kind, task := "SOFT", taskRebooting
	if hard {
		kind, task = "HARD", taskRebootingHard
	}
	if err := f.begin(ctx, "Reboot", serverID, kind); err != nil {
		return err
	}
	path := "/v2.1/servers/" + serverID + "/action"
	srv, ok := f.servers[serverID]
	if !ok {
		return serverNotFound(http.MethodPost, path, serverID)
	}
	allowed := srv.VMState == "active" && srv.TaskState == ""
	if hard {
		allowed = slices.Contains([]string{"active", "stopped", "paused", "suspended", "error"}, srv.VMState) &&
			slices.Contains(hardRebootTasks, srv.TaskState)
	}
	if !allowed {
		return invalidState(path, "reboot", srv)
	}
	srv.TaskState = task
	if f.computeGone(srv.Host) {
		srv.Status = novaStatus(srv.VMState, srv.TaskState)
		return nil
	}
	srv.VMState, srv.TaskState = "active", ""
	srv.Status = novaStatus(srv.VMState, srv.TaskState)
	return nil
}

// Pause models Nova's pause: refused (409) unless the server is ACTIVE with no task. Cast to
// the host's compute like Reboot: when it is dead or forced down the server stays ACTIVE in
// task pausing until RestartCompute; otherwise it is PAUSED when Pause returns.
func (f *Fake) Pause(ctx context.Context, serverID string) error {
	return f.pauseOrUnpause(ctx, "Pause", "pause", serverID, "active", "pausing")
}

// Unpause models Nova's unpause: refused (409) unless the server is PAUSED with no task;
// otherwise as Pause, back to ACTIVE.
func (f *Fake) Unpause(ctx context.Context, serverID string) error {
	return f.pauseOrUnpause(ctx, "Unpause", "unpause", serverID, "paused", "unpausing")
}

func (f *Fake) pauseOrUnpause(ctx context.Context, call, action, serverID, from, task string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.begin(ctx, call, serverID); err != nil {
		return err
	}
	path := "/v2.1/servers/" + serverID + "/action"
	srv, ok := f.servers[serverID]
	if !ok {
		return serverNotFound(http.MethodPost, path, serverID)
	}
	if srv.VMState != from || srv.TaskState != "" {
		return invalidState(path, action, srv)
	}
	srv.TaskState = task
	if !f.computeGone(srv.Host) {
		finishPauseTask(srv)
	}
	srv.Status = novaStatus(srv.VMState, srv.TaskState)
	return nil
}

// finishPauseTask is the compute's side of a pause or an unpause: the server PAUSED, or
// ACTIVE again, as the hypervisor then says.
func finishPauseTask(srv *Server) {
	switch srv.TaskState {
	case "pausing":
		srv.VMState, srv.TaskState, srv.PowerState = "paused", "", PowerPaused
	case "unpausing":
		srv.VMState, srv.TaskState, srv.PowerState = "active", "", PowerRunning
	}
}

// StartServer models Nova's os-start: refused (409) unless the server is SHUTOFF with no
// task. Like Reboot, the request is cast to the host's compute: when it is dead or forced down
// the server stays SHUTOFF in task powering-on until RestartCompute; otherwise it is ACTIVE
// when StartServer returns.
func (f *Fake) StartServer(ctx context.Context, serverID string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.begin(ctx, "StartServer", serverID); err != nil {
		return err
	}
	path := "/v2.1/servers/" + serverID + "/action"
	srv, ok := f.servers[serverID]
	if !ok {
		return serverNotFound(http.MethodPost, path, serverID)
	}
	if srv.VMState != "stopped" || srv.TaskState != "" {
		return invalidState(path, "start", srv)
	}
	if srv.Host == "" {
		return fakeAPIError(http.MethodPost, path, http.StatusConflict, "Instance "+serverID+" is not ready.")
	}
	if f.computeGone(srv.Host) {
		srv.TaskState = taskPoweringOn
		return nil
	}
	srv.VMState, srv.Status = "active", "ACTIVE"
	return nil
}

// DeleteServer models Nova's delete, allowed in any state (a server on a dead host is deleted
// in Nova's database at once): the server is gone, it leaves its server group, and its ports
// are unbound (kept, as Nova keeps ports it did not create).
func (f *Fake) DeleteServer(ctx context.Context, serverID string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.begin(ctx, "DeleteServer", serverID); err != nil {
		return err
	}
	if _, ok := f.servers[serverID]; !ok {
		return serverNotFound(http.MethodDelete, "/v2.1/servers/"+serverID, serverID)
	}
	delete(f.servers, serverID)
	delete(f.specs, serverID)
	delete(f.boot, serverID)
	delete(f.resized, serverID)
	delete(f.beforeNoHost, serverID)
	for _, g := range f.groups {
		g.Members = slices.DeleteFunc(g.Members, func(m string) bool { return m == serverID })
	}
	for _, p := range f.ports {
		if p.DeviceID == serverID {
			p.DeviceID = ""
		}
	}
	return nil
}

// finishPendingTasks is what a nova-compute does at start for the servers of its host that
// wait on it (nova.compute.manager._init_instance): a reboot or a start cast while it was down
// is done again, and the server ends ACTIVE.
func (f *Fake) finishPendingTasks(host string) {
	for _, srv := range f.servers {
		if srv.Host != host {
			continue
		}
		switch srv.TaskState {
		case taskRebooting, taskRebootingHard, taskPoweringOn:
			srv.VMState, srv.TaskState = "active", ""
		case "pausing", "unpausing":
			finishPauseTask(srv)
		}
		srv.Status = novaStatus(srv.VMState, srv.TaskState)
	}
}
