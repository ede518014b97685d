// Package openstack is computeha's narrow interface to OpenStack: the few Nova, Placement,
// Glance, Neutron and Keystone calls host recovery needs, built on gophercloud v2.
//
// # Contract
//
// [New] logs in once, from a clouds.yaml entry, and the returned [Client] reuses that one provider
// client (and its token) for every call. A Keystone login costs ~1.8 s on a loaded control plane,
// so logging in per call would dominate recovery time. When a token expires, the first request
// that gets 401 logs in again (gophercloud's AllowReauth) and is sent once more.
//
// Processes that live a few seconds each (an agent's monitor, every few seconds on every
// compute) set [Options.LoginFile]: the login is kept there (mode 0600) with its catalog, and
// the next process takes it up instead of logging in, for ten minutes and while the token is
// valid for five more, if it was kept for the same credentials (a salted digest) in a file of
// its own user that no one else may read or write; a token refused before its expiry is
// replaced by one new login, kept in turn. Keystone checks a password with a deliberately slow
// hash: on a lab of 24 computes, monitors that each logged in were most of Keystone's work,
// and slowed every Nova call.
//
// [NewLazy] returns a [Lazy] client that logs in on first use instead, and again on the next
// use after a failed login, so a daemon can start while Keystone is down; [Lazy.Ready] logs
// in ahead of the first call.
//
// Every method is safe for concurrent use. Each HTTP attempt runs under its own timeout
// ([Options.CallTimeout]) inside the caller's context, and failed attempts are retried with bounded
// exponential backoff ([RetryPolicy]):
//
//   - Reads (GET) and service updates (PUT /os-services/{id}, idempotent: the same body twice
//     leaves the same state) are retried on connection errors, attempt timeouts, 429 and
//     500/502/503/504.
//   - Server deletion (DELETE, idempotent: a second one finds the server gone, ErrNotFound) and
//     os-resetState are retried as reads. So is the request of a token scoped to another project.
//   - Evacuate (POST, not idempotent: a second evacuate of a server already rebuilding elsewhere
//     would be refused or, worse, start another rebuild) is retried only when Nova cannot have
//     seen it: a failed dial, 429, or 503. The same holds for every other action that starts
//     work (live and cold migration, resize confirmation, reboot, start), for server creation
//     (a second server), port creation (a second port, which would take the same address) and
//     key pair import.
//   - No other 4xx is retried. That includes 409: every Nova conflict these calls can meet (a
//     server locked, or in a task state such as "rebuilding" or "powering-off") is state that a
//     retry within seconds does not change, so the caller must decide.
//
// Errors wrap sentinel kinds that callers test with [errors.Is] or the Is* helpers:
// [ErrNotFound], [ErrAmbiguous], [ErrBadRequest], [ErrConflict], [ErrUnauthorized],
// [ErrForbidden], [ErrUnavailable], and two Nova refusals that recovery logic reacts to:
// [ErrSourceServiceUp] (evacuate refused because Nova still sees the source compute up) and
// [ErrEvacuationsPending] (unforcing refused while "done" evacuations of the host remain).
// [*APIError] carries the status code, Nova's message and the request id. Error text never
// contains credentials or tokens.
//
// # Microversions
//
// Every compute request carries X-OpenStack-Nova-API-Version and OpenStack-API-Version:
// compute [ComputeMicroversion] (2.69). One version for all calls keeps the wire format of each
// call fixed and testable; 2.69 is the lowest that gives all of these:
//
//   - 2.53: services and hypervisors are addressed by UUID, and PUT /os-services/{id} takes
//     status, disabled_reason and forced_down in one body (used by Disable/Enable/ForceDown).
//   - 2.14: evacuate takes no onSharedStorage and answers 200 with an empty body (Evacuate).
//   - 2.26: servers carry their tags; 2.47: servers embed their flavor with extra_specs, so an
//     HA policy (flavor extra spec evacuable=true) needs no flavor lookups (ServersOnHost).
//   - 2.59: migrations carry a UUID and are paged with limit/marker (Migrations).
//   - 2.68: evacuate no longer takes force, so a target host is always checked by the scheduler.
//   - 2.69: servers and services in a cell that is down are returned as partial records with
//     status UNKNOWN instead of being left out. A recovery that silently misses servers would
//     leave them dead, so ServersOnHost reports them ([Server.Partial]) and FindComputeService
//     fails with [ErrUnavailable].
//   - 2.3: servers show their user data and root device name to admins; 2.10: an admin reads
//     another user's key pair (ServerSpec, and CreateServer's key pair copy); 2.56: the migrate
//     action takes a host (ColdMigrate); 2.64: server groups have one policy and rules
//     (ServerGroups).
//
// CreateServer alone is sent at [CreateServerMicroversion] (2.74): it is the first that takes a
// requested "host" the scheduler still checks (group policies, capacity, enabled state), where
// the older availability_zone "zone:host" form skips the scheduler. The request is sent with a
// copy of the compute client carrying 2.74, since gophercloud sets the version header from the
// client and not from the request; every other call keeps 2.69. 2.74 also accepts everything
// the create body uses from earlier versions (tags 2.52, networks "none" 2.37).
//
// 2.88 removes the capacity fields from hypervisors; capacity comes from Placement anyway (see
// below), so it does not matter, but 2.69 keeps them readable for debugging. Nova Stein (2019)
// and later support 2.69; Debian 12's Zed supports up to 2.93.
//
// Placement requests carry OpenStack-API-Version: placement [PlacementMicroversion] (1.14).
// Inventories and usages have the same shape since 1.0; 1.14 is pinned so the format never
// drifts with the server's default.
//
// # Capacity: Placement, not the hypervisor fields
//
// [Client.Hypervisors] reads each compute node's inventories and usages from Placement (the
// resource provider UUID is the hypervisor id from 2.53). The hypervisor API's vcpus/memory_mb
// fields ignore allocation ratios and reserved amounts, so a host with 16.0 CPU overcommit looks
// full long before the scheduler would refuse it. Placement is what the scheduler decides on,
// so choosing evacuation targets by Placement's free capacity avoids NoValidHost surprises.
//
// # Image properties: Glance
//
// Nova's images proxy (/images) is gone from 2.36, so image properties (e.g. evacuable=true)
// come from Glance v2 (GET /v2/images/{id}), once per distinct image per ServersOnHost call.
// Servers booted from a volume have no image id and no image properties here.
//
// # Recreating a server: Neutron, and Keystone rescoping
//
// A server whose host is gone for good can be created again from what [Client.ServerSpec]
// reads. Its ports come from Neutron v2.0 (the catalog's network endpoint; a cloud without one
// fails only the port calls): a recreated server takes its ports back by id when they survived,
// or new ones made with [Client.CreatePort] at the same addresses.
//
// Nova creates a server in the project of the token that asks, so [Client.CreateServer] in
// another project than the login's asks Keystone for a token of the same user scoped to that
// project (the "token" method: no password is sent again), once per project, and keeps it
// with its own re-login. Keystone refuses when the user has no role there; CreateServer then
// fails with [ErrForbidden], and the refusal is remembered for a minute. An application
// credential cannot be rescoped: with one, servers can only be recreated in its own project.
// Key pairs belong to users, and Nova looks a key name up among the creating user's: a key pair
// of another user is copied (its public key, read as admin) under a derived name.
package openstack
