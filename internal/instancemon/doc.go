// Package instancemon is the per-host instance monitor (computeha instancemon, run by
// ocf:computeha:instancemon on every compute): it watches the host's libvirt domains from
// outside, as black boxes, and reports each failure of a guest to the evacuation daemon,
// which decides what to do about it.
//
// What counts as a failure is decided here from libvirt's own words, never from a guest's:
// a domain stopped because its qemu process failed or crashed, a guest that panicked, a
// domain paused by an I/O error or by its watchdog, and I/O error and watchdog events
// themselves (see Classify). What Nova or an operator did on purpose through libvirt
// (destroy, migrate, save, snapshot restore, pause) is not a failure. A guest that shut
// itself down, or a domain destroyed behind Nova's back, is reported as Stopped: only Nova
// knows whether it was asked to (a stop, a delete), and the daemon asks it.
//
// The monitor never loses a failure to a slow receiver or to libvirtd going away:
//   - events are read from libvirt as they come and put into a Queue that never blocks the
//     reader: one pending report per domain (a burst of events of one domain coalesces into
//     its latest failure, with the count), delivered by a sender that retries with backoff;
//   - a connection that breaks (libvirtd killed or restarted) or stops answering (libvirtd
//     hung: pinged every PingInterval) is dropped and made again with backoff; on every new
//     connection the monitor lists every domain and compares it with what it knew: a domain
//     that ran and is now shut off after a crash, or is paused by an error, is reported
//     (Source "reconcile"), so a failure during the outage is not missed.
//
// Domains are named by their UUID, which Nova's libvirt driver sets to the instance's UUID.
package instancemon
