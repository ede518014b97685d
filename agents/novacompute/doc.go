// Package novacompute is the OCF resource agent ocf:computeha:nova-compute:
// a clone on the compute nodes that runs nova-compute and keeps Nova's view
// of it right.
//
// start waits (polling, bounded by the operation timeout) until no
// evacuation from this host is pending, because nova-compute deletes the
// local copies of evacuated instances when it starts; then starts
// nova-compute (through systemd, or start_command), and waits until Nova
// reports the service up, unsetting forced_down and enabling it on the way.
// Nova refuses to unset forced_down while finished evacuations of the host
// are not yet confirmed by its restarted nova-compute, so that call is
// retried until it is accepted, or fails the start 30 s after the
// nova-compute running here reported (it confirms them only as it starts:
// Pacemaker restarts it once the failure expires, with failure-timeout).
//
// monitor answers, bounding every call by the operation timeout:
//
//	nova-compute cleanly stopped                    7 OCF_NOT_RUNNING
//	nova-compute died (state left behind)           7 on a probe, else 1 OCF_ERR_GENERIC
//	running; Nova: up, not forced down, enabled     0
//	running; Nova: forced down, or disabled         1 OCF_ERR_GENERIC (Pacemaker restarts it,
//	                                                  and start puts Nova right)
//	running; Nova: down, while another compute is up 1 OCF_ERR_GENERIC
//	running; Nova: down, and no compute is up       190 OCF_DEGRADED (a control-plane outage:
//	                                                  restarting every compute would not help)
//	running; Nova has no service for the host       1 OCF_ERR_GENERIC (check the host parameter)
//	running; Nova API unreachable or too slow       190 OCF_DEGRADED, with the reason
//
// stop stops nova-compute and succeeds when it is not running. It never
// talks to Nova.
//
// Nova and the evacuation state are reached through the Nova and
// EvacuationState interfaces, built per invocation by the functions of
// Deps. Production wires them; tests use FakeNova and FakeEvacuation.
package novacompute
