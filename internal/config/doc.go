// Package config reads and checks the evacuation daemon's YAML configuration.
//
// The file names the cloud to talk to, the failover segments (which hosts may take over each
// other's VMs, and how), how Pacemaker's node names map to Nova's host names
// ([Config.NovaHost], [Config.Node]), the HA policy, how evacuations run, the mass-failure guard and where
// the recovery history is kept. [Load] reads a file, rejects unknown keys with their line
// numbers, fills in the defaults documented on each field, and runs [Config.Validate], which
// reports every problem at once, each naming the field it is about.
//
// The package does no I/O other than reading the configuration file itself and, on request,
// the DSN file ([History.ReadDSN]). Segments defined by an aggregate are checked again once the
// daemon knows the aggregate's hosts ([Config.ResolveSegments]).
package config
