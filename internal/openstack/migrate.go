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

// liveMigrateBody is the os-migrateLive action at microversion 2.69: "host" null lets the
// scheduler choose; "force" no longer exists (2.68), so a named host is still checked by the
// scheduler; block_migration "auto" (2.25+) lets Nova pick block or shared-storage migration
// from the instance's storage, which a caller cannot know for every VM.
func liveMigrateBody(targetHost string, blockMigration bool) map[string]any {
	args := map[string]any{"host": nil, "block_migration": "auto"}
	if targetHost != "" {
		args["host"] = targetHost
	}
	if blockMigration {
		args["block_migration"] = true
	}
	return map[string]any{"os-migrateLive": args}
}

// LiveMigrate asks Nova to live-migrate the server to targetHost ("" lets the scheduler
// choose). blockMigration forces a block migration; false sends "auto", Nova's own choice.
// Success means Nova accepted the request (202); the migration runs after, and ends with the
// server ACTIVE on its new host, or back on its source if it failed. A 5xx is not retried:
// Nova may have started the migration.
func (c *nova) LiveMigrate(ctx context.Context, serverID, targetHost string, blockMigration bool) error {
	if serverID == "" {
		return errors.New("live-migrating: empty server id")
	}
	op := "live-migrating server " + serverID
	if targetHost != "" {
		op += " to " + targetHost
	}
	body := liveMigrateBody(targetHost, blockMigration)
	u := c.compute.ServiceURL("servers", url.PathEscape(serverID), "action")
	return c.do(ctx, "compute", op, false, func(ctx context.Context) error {
		_, err := c.compute.Post(ctx, u, body, nil, &gophercloud.RequestOpts{OkCodes: []int{202}})
		return err
	})
}

// LiveMigrate models Nova's live migration: refused (409) for a server that is not ACTIVE or
// PAUSED or has a task in progress, (400) to its own host or while its source compute service
// is down, (404) to an unknown host. It completes at once: the server is on its new host when
// LiveMigrate returns, and a "completed" live-migration record is kept. Without a target the
// fake scheduler picks as for Evacuate; when the chosen host is disabled, down or breaks a hard
// policy of the server's group, the migration is recorded as "error" and the server stays
// ACTIVE where it was, as when Nova's scheduler finds no valid host.
func (f *Fake) LiveMigrate(ctx context.Context, serverID, targetHost string, blockMigration bool) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.begin(ctx, "LiveMigrate", serverID, targetHost, fmt.Sprint(blockMigration)); err != nil {
		return err
	}
	path := "/v2.1/servers/" + serverID + "/action"
	srv, ok := f.servers[serverID]
	if !ok {
		return fakeAPIError(http.MethodPost, path, http.StatusNotFound, "Instance "+serverID+" could not be found.")
	}
	if srv.TaskState != "" || !slices.Contains([]string{"active", "paused"}, srv.VMState) {
		return fakeAPIError(http.MethodPost, path, http.StatusConflict, fmt.Sprintf(
			"Cannot 'os-migrateLive' instance %s while it is in vm_state %s, task_state %s", serverID, srv.VMState, srv.TaskState))
	}
	if targetHost != "" {
		if targetHost == srv.Host {
			return fakeAPIError(http.MethodPost, path, http.StatusBadRequest, "The target host can't be the same one.")
		}
		if _, ok := f.services[targetHost]; !ok {
			return fakeAPIError(http.MethodPost, path, http.StatusNotFound,
				fmt.Sprintf("Compute host %s could not be found.", targetHost))
		}
	}
	if src := f.services[srv.Host]; src == nil || f.view(src).State != "up" {
		return fakeAPIError(http.MethodPost, path, http.StatusBadRequest,
			fmt.Sprintf("Compute service of %s is unavailable at this time.", srv.Host))
	}
	mig := Migration{
		ID: len(f.migrations) + 1, UUID: f.uuid(), ServerID: serverID, Type: "live-migration",
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
	mig.Status, mig.DestCompute, mig.DestNode = "completed", dest, dest
	f.migrations = append(f.migrations, mig)
	srv.Host, srv.HypervisorHostname = dest, dest
	return nil
}
