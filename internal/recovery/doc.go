// Package recovery is computeha's one executor for "these VMs must run again, somewhere
// allowed". Every way the daemon moves or restarts a VM goes through it: the evacuation of a
// fenced host, the migration off a host that lost a network, and restarts in place.
//
// A recovery ([Engine.Run] of a [Job]) reads the VMs of the source host ([Reads]), decides for
// each whether it gets HA and how it is recovered ([policy.Engine.Decide] and Class, then the
// [Method] the situation allows), plans targets inside the host's failover segment (free
// capacity, reserved hosts, server groups), runs the moves in restart tiers under bounds per
// target host ([Limits]), retries a failed move on another host, confirms each VM running, and
// records every decision and move ([Recorder]). The [Report] says what became of every VM, with
// a typed [Result] and a [Reason].
//
// Methods are one small type each, behind one interface: evacuate, live-migrate, cold-migrate,
// restart, recreate and none. Adding one is a file and its tests.
//
// Safety stays with the caller: the engine evacuates from whatever host it is given, so the
// daemon calls it only for a host whose fencing is confirmed, in a quorate partition, past the
// mass-failure guard.
package recovery
