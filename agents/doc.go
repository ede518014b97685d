// Package agents is the runtime of computeha's OCF resource agents
// (ocf:computeha:<name>), as Pacemaker's executor and ocf-tester call them.
//
// An agent is an Agent value: its identity, a tagged parameter struct and a
// function that opens the Resource for one invocation. The runtime does
// everything the OCF 1.1 API asks of an agent around that:
//
//   - the action comes as the first argument; parameters come from the
//     environment as OCF_RESKEY_<name>, meta attributes as
//     OCF_RESKEY_CRM_meta_<name> (times in milliseconds), plus
//     OCF_RESOURCE_INSTANCE, OCF_RESOURCE_TYPE, OCF_ROOT, OCF_CHECK_LEVEL
//     and HA_RSCTMP (default /run/resource-agents);
//   - the same struct tags that decode the parameters render the meta-data
//     XML, which validates against resource-agents' ra-api-1.dtd;
//   - every action is bounded by the operation timeout
//     (OCF_RESKEY_CRM_meta_timeout) minus a small margin, so that the agent
//     reports why it failed instead of being killed silently;
//   - messages go to stderr ("LEVEL: text") and to the local syslog when
//     there is one; the reason of a failure is printed once as
//     "ocf-exit-reason:<text>".
//
// Main is the only place where an error becomes an exit code. Agents return
// errors made with the helpers of this package (Generic, Configured, Args,
// Installed, NotRunning, Degraded, ...) or plain wrapped errors, which are
// OCF_ERR_GENERIC.
//
// Exit codes by situation:
//
//	no or unknown action                        2 OCF_ERR_ARGS (usage on stderr)
//	a parameter of the wrong type, or a
//	required parameter missing                  6 OCF_ERR_CONFIGURED
//	a value not usable on this node (a file
//	that is not here)                           2 OCF_ERR_ARGS
//	a required program missing                  5 OCF_ERR_INSTALLED; on a probe 7
//	an OCF action the agent does not implement  3 OCF_ERR_UNIMPLEMENTED
//	a managed process gone (crashed)            1 OCF_ERR_GENERIC; on a probe 7
//
// A probe is a monitor with an interval of 0 or none: Pacemaker 2.1 gives its
// probes no interval. A monitor run by hand without one gets a probe's answers.
//
// A stop never fails because of the configuration or a missing program: a
// failed stop gets the node fenced, so stop logs those problems and stops
// what it can.
package agents
