// Package crm is computeha's typed access to Pacemaker. It knows nothing
// about evacuation or VMs: it reads cluster state, node attributes and
// fencing history, requests fencing, and reports node state changes.
//
// It talks to Pacemaker through its command-line tools with --output-as=xml
// (cibadmin prints XML on its own) and through Pacemaker alerts, never
// through libraries linked into the process. It keeps these parts apart:
//
//   - Decoders (DecodeStatus, DecodeCIB, DecodeFencingHistory, ...) are pure
//     functions from XML to plain structs. They ignore elements and
//     attributes they do not know, because Pacemaker adds some in every
//     release, and they fail clearly on broken XML or on a result whose
//     status code reports an error.
//   - Runner executes the tools: injected paths and command prefix (a test
//     runs them inside a lab node), context timeouts, and Pacemaker's exit
//     codes mapped to errors that errors.Is can test (ErrNotConnected,
//     ErrNoSuchObject, ...).
//   - Client combines the two into operations: status, CIB, attributes,
//     fencing, standby and maintenance.
//   - Watcher turns alerts (pushed by the alert agent, "computeha_alert")
//     and a cheap poll of the CIB version into a stream of typed Events,
//     with duplicates collapsed and nothing lost across its own restarts.
package crm
