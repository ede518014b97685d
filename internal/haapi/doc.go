// Package haapi is computeha's HA API: an HTTP API the evacuation daemon serves (at an
// address that follows it, an IPaddr2 colocated with the evacuator), through which instance
// monitors report guest failures and a project's members ask for the recovery of their own
// servers on an external health signal.
//
// Every request but GET /healthz carries a Keystone token (X-Auth-Token), validated against
// the cloud's Keystone, as OpenStack's own APIs do.
//
//	POST /v1/instance-events         a monitor's report of a guest failure (instancemon.Event);
//	                                 roles: MonitorRoles (admin, service)
//	POST /v1/host-events             a monitor's report of a provisioning process (libvirtd,
//	                                 the network agent) that cannot be restarted, or runs again
//	                                 (instancemon.HostEvent); roles: MonitorRoles
//	POST /v1/servers/{id}/signal     {"reason": "..."}: recover this server; any member of
//	                                 the server's project (or a MonitorRoles holder)
//	GET  /healthz                    200 "ok" (no token): for load balancers and monitors
//
// Answers are JSON. 202 {"status": "accepted"|"coalesced"|"ignored", "reason": ...} when
// the daemon took the request (what it does is its decision: a signal never bypasses
// fencing, policy or limits); errors are {"error": {"code", "title", "message"}}: 400 a body
// that is not the documented JSON (unknown fields included), 401 no token or one Keystone
// refuses, 403 a token without the role an endpoint needs, 404 an unknown path or a server
// the token's project cannot see (another project's server is not found, as in Nova), 405
// another method, 413 a body over MaxBody, 415 a body that is not application/json, 429 a
// server signalled too often (Retry-After), 503 the daemon cannot decide now (Keystone or
// Nova unreachable). A refused request changes nothing.
package haapi
