package openstack

import (
	"context"
	"slices"
	"time"
)

// Client is what computeha needs from OpenStack. [New] returns the real one; [Fake] is an
// in-memory one for unit tests of callers.
type Client interface {
	// FindComputeService returns the nova-compute service of host. It fails with ErrNotFound
	// when Nova has none, ErrAmbiguous when several match (duplicate host names across cells),
	// and ErrUnavailable when the host's cell is down.
	FindComputeService(ctx context.Context, host string) (Service, error)
	// ComputeServices lists every nova-compute service. A service of a cell that is down is
	// left out: Nova cannot tell its status.
	ComputeServices(ctx context.Context) ([]Service, error)
	// DisableService stops scheduling to the service and records reason; it returns the service
	// as Nova reports it afterwards. Force the service down first: disabling a dead host that
	// Nova still believes up blocks about a minute on an RPC to it.
	DisableService(ctx context.Context, serviceID, reason string) (Service, error)
	// EnableService lets the scheduler use the service again and clears the reason.
	EnableService(ctx context.Context, serviceID string) (Service, error)
	// ForceDown marks the service down at once, so Nova accepts evacuations from its host
	// without waiting for service_down_time.
	ForceDown(ctx context.Context, serviceID string) (Service, error)
	// UnforceDown clears forced_down. Nova refuses it (ErrEvacuationsPending) while evacuations
	// from the host are still "done", which they stay until the host's nova-compute restarts
	// and deletes the evacuated local copies.
	UnforceDown(ctx context.Context, serviceID string) (Service, error)
	// ServersOnHost lists every server Nova places on host, across all projects, with the
	// fields an HA policy needs (flavor extra specs, image properties, metadata, tags).
	ServersOnHost(ctx context.Context, host string) ([]Server, error)
	// Server returns one server, with the same fields as ServersOnHost.
	Server(ctx context.Context, serverID string) (Server, error)
	// Evacuate rebuilds the server on another host: targetHost, or one the scheduler picks when
	// targetHost is empty. Nova refuses with ErrSourceServiceUp while the source service is up
	// and not forced down. Success means Nova accepted the request; the rebuild runs after.
	Evacuate(ctx context.Context, serverID, targetHost string) error
	// ResetState sets the server's vm_state ("active" or "error") without
	// touching the instance (os-resetState), as an operator does before
	// evacuating a VM that went to ERROR.
	ResetState(ctx context.Context, serverID, state string) error
	// LiveMigrate moves a running server to targetHost ("" lets the scheduler choose) without stopping it; blockMigration false lets Nova choose ("auto"). Success means Nova accepted the request.
	LiveMigrate(ctx context.Context, serverID, targetHost string, blockMigration bool) error
	// ColdMigrate moves a server to targetHost ("" lets the scheduler choose) by stopping it
	// and starting it there (the migrate action, with host from 2.56). Success means Nova
	// accepted the request; the server then ends in VERIFY_RESIZE on its new host until
	// ConfirmResize, or back where it was if the migration failed.
	ColdMigrate(ctx context.Context, serverID, targetHost string) error
	// ConfirmResize confirms a cold migration that reached VERIFY_RESIZE: the server runs on
	// (or stays stopped on) its new host and its copy on the source is removed.
	ConfirmResize(ctx context.Context, serverID string) error
	// Reboot restarts a server in place (hard: the instance is destroyed and started again
	// from its definition, which also brings back one whose process died). Nova's state
	// stays true: the server goes REBOOT/HARD_REBOOT, then ACTIVE.
	Reboot(ctx context.Context, serverID string, hard bool) error
	// Pause stops an ACTIVE server's vCPUs: it is PAUSED, its memory kept. Unpause lets a
	// PAUSED one run again: libvirt resumes it, and qemu retries the disk writes it held back
	// (a guest qemu paused on an I/O error, which Nova still shows ACTIVE, is resumed by the
	// pair: Nova's pause of a paused domain changes nothing but its record).
	Pause(ctx context.Context, serverID string) error
	Unpause(ctx context.Context, serverID string) error
	// StartServer powers on a stopped (SHUTOFF) server (os-start).
	StartServer(ctx context.Context, serverID string) error
	// DeleteServer deletes a server. On a host whose compute service is down Nova deletes it
	// at once in its database (a local delete); ErrNotFound if it is already gone.
	DeleteServer(ctx context.Context, serverID string) error
	// ServerSpec reads everything it takes to create the server again (see [ServerSpec]).
	ServerSpec(ctx context.Context, serverID string) (ServerSpec, error)
	// CreateServer creates a server from spec, in spec.ProjectID (the client's token is
	// rescoped to that project when it is another one), on spec.Host when set (microversion
	// 2.74; the scheduler still checks it). It returns the new server's id; the build runs
	// after, and a build that finds no valid host leaves the server in ERROR. It fails with
	// ErrForbidden when the cloud user has no role in spec.ProjectID. spec.Ports must have
	// ids (create missing ones with CreatePort first).
	CreateServer(ctx context.Context, spec ServerSpec) (string, error)
	// CreatePort creates a Neutron port like p (network, fixed IPs, MAC address, security
	// groups, in p.ProjectID) and returns it with its id.
	CreatePort(ctx context.Context, p Port) (Port, error)
	// Port returns one Neutron port; ErrNotFound when it is gone.
	Port(ctx context.Context, portID string) (Port, error)
	// ServerGroups lists every server group of every project, with its members and policy.
	ServerGroups(ctx context.Context) ([]ServerGroup, error)
	// Migrations lists migration records matching filter, newest first.
	Migrations(ctx context.Context, filter MigrationFilter) ([]Migration, error)
	// Hypervisors lists compute nodes with their Placement capacity.
	Hypervisors(ctx context.Context) ([]Hypervisor, error)
	// HypervisorHosts lists compute nodes as Hypervisors does, without their capacity
	// (Resources nil): one Nova call per page, none to Placement, which Hypervisors asks twice
	// per node. For those that need only the hosts and their state.
	HypervisorHosts(ctx context.Context) ([]Hypervisor, error)
	// Aggregates lists host aggregates with their hosts, metadata and availability zone.
	Aggregates(ctx context.Context) ([]Aggregate, error)
	// Token asks Keystone whom another client's token stands for (GET /v3/auth/tokens with
	// X-Subject-Token, authorised by this client's own login): ErrUnauthorized when Keystone
	// does not take it (expired, revoked, unknown), ErrUnavailable when it cannot be asked.
	Token(ctx context.Context, token string) (TokenInfo, error)
}

// Service is a nova-compute service as GET /os-services reports it.
type Service struct {
	ID             string // UUID (microversion 2.53+)
	Host           string
	Binary         string
	Zone           string
	Status         string // "enabled" or "disabled": may the scheduler use it
	State          string // "up" or "down": Nova's liveness view, "down" when forced down
	ForcedDown     bool
	DisabledReason string
	UpdatedAt      time.Time // last heartbeat Nova recorded; zero if never
}

// Enabled reports whether the scheduler may place servers on the service.
func (s Service) Enabled() bool { return s.Status == "enabled" }

// Up reports whether Nova considers the service alive.
func (s Service) Up() bool { return s.State == "up" }

// Power states of a server (nova.compute.power_state).
const (
	PowerRunning  = 1
	PowerPaused   = 3
	PowerShutdown = 4
)

// Server is what an HA policy needs to know about one server.
type Server struct {
	ID        string
	Name      string
	Status    string // ACTIVE, SHUTOFF, ERROR, REBUILD, ... ; UNKNOWN when Partial
	VMState   string // OS-EXT-STS:vm_state: active, stopped, error, ...
	TaskState string // OS-EXT-STS:task_state, "" when none
	// PowerState is OS-EXT-STS:power_state, what the hypervisor last said (PowerRunning,
	// PowerPaused, ...; 0 when not known). Nova updates it on the hypervisor's events: a
	// VM qemu paused on an I/O error is ACTIVE with PowerPaused.
	PowerState         int
	Host               string // OS-EXT-SRV-ATTR:host
	HypervisorHostname string // OS-EXT-SRV-ATTR:hypervisor_hostname
	ProjectID          string
	UserID             string
	AvailabilityZone   string
	Flavor             Flavor
	ImageID            string            // "" for servers booted from a volume
	ImageProperties    map[string]string // from Glance; nil when there is no image or it is gone
	Metadata           map[string]string
	Tags               []string
	Locked             bool
	// Fault is the message of the server's last fault, "" when it has none.
	Fault string
	// Partial is true when the server's cell is down: Nova knows only ID, Status (UNKNOWN),
	// ProjectID and its creation time, and the server cannot be acted on until the cell returns.
	Partial bool
}

// Flavor is the flavor embedded in a server (microversion 2.47+): a copy taken at boot, so it
// stays right even if the flavor is later deleted or changed.
type Flavor struct {
	OriginalName string
	VCPUs        int
	RAMMB        int
	DiskGB       int
	EphemeralGB  int
	SwapMB       int
	ExtraSpecs   map[string]string
}

// MigrationFilter selects migrations. Empty fields do not filter.
type MigrationFilter struct {
	// Host matches migrations whose source or destination compute is Host.
	Host string
	// Type is "evacuation", "live-migration", "migration" or "resize".
	Type string
	// Status is e.g. "accepted", "pre-migrating", "done", "completed", "failed", "error".
	Status string
	// ServerID keeps only the migrations of one server.
	ServerID string
	// ChangedSince keeps only the migrations updated at or after it (changes-since, 2.59+):
	// a host's whole past is not listed again at every look.
	ChangedSince time.Time
}

// Migration is one record of GET /os-migrations.
//
// An evacuation goes accepted → pre-migrating → rebuilding → done, and becomes "completed" only
// when the source host's nova-compute starts again and cleans up; "failed"/"error" if it failed.
type Migration struct {
	ID            int
	UUID          string
	ServerID      string
	Type          string
	Status        string
	SourceCompute string
	SourceNode    string
	DestCompute   string
	DestNode      string
	CreatedAt     time.Time
	UpdatedAt     time.Time
}

// Hypervisor is one compute node.
type Hypervisor struct {
	ID          string // UUID, also the node's Placement resource provider UUID
	Hostname    string // hypervisor_hostname (the node name)
	ServiceHost string // the nova-compute host that manages it
	State       string // "up" or "down"
	Status      string // "enabled" or "disabled"
	// DisabledReason is the nova-compute service's disabled reason ("" when none).
	DisabledReason string
	RunningVMs     int
	// Resources maps a Placement resource class (VCPU, MEMORY_MB, DISK_GB, ...) to its
	// inventory and usage. Nil when Placement has no provider for the node (it never reported).
	Resources map[string]Resource
}

// Resource is one resource class of a compute node as Placement sees it.
type Resource struct {
	Total           int64
	Reserved        int64
	AllocationRatio float64
	MaxUnit         int64 // the largest amount one server may take
	Used            int64
}

// Capacity is what the scheduler may allocate in all: (Total - Reserved) × AllocationRatio.
func (r Resource) Capacity() int64 {
	return int64(float64(r.Total-r.Reserved) * r.AllocationRatio)
}

// Free is Capacity minus what is allocated; negative when over-allocated.
func (r Resource) Free() int64 { return r.Capacity() - r.Used }

// Aggregate is a host aggregate.
type Aggregate struct {
	ID               int
	UUID             string
	Name             string
	AvailabilityZone string // "" when the aggregate defines none
	Hosts            []string
	Metadata         map[string]string
}

// HostsByAggregate maps each aggregate's name to its hosts (config.Config.ResolveSegments and
// the cells' input).
func HostsByAggregate(aggs []Aggregate) map[string][]string {
	out := make(map[string][]string, len(aggs))
	for _, a := range aggs {
		out[a.Name] = slices.Clone(a.Hosts)
	}
	return out
}

// AggregateHostsOf returns a reader of nova's aggregates as [HostsByAggregate] maps them
// (config.Config.ReadSegments takes one).
func AggregateHostsOf(nova interface {
	Aggregates(ctx context.Context) ([]Aggregate, error)
},
) func(ctx context.Context) (map[string][]string, error) {
	return func(ctx context.Context) (map[string][]string, error) {
		aggs, err := nova.Aggregates(ctx)
		if err != nil {
			return nil, err
		}
		return HostsByAggregate(aggs), nil
	}
}

// ServerSpec is what [Client.CreateServer] needs to create a server again as it was: a
// recreated server keeps its name, project, flavor, image or boot volume, metadata, tags,
// key pair, user data, server group, availability zone and, through its ports, its fixed
// addresses.
type ServerSpec struct {
	// Name, ProjectID and UserID of the server (the new one is owned by ProjectID; UserID is
	// whoever the client logs in as).
	Name      string
	ProjectID string
	UserID    string
	// FlavorID is the flavor to create it with: the id of the flavor whose name is the
	// embedded flavor's original name. ServerSpec fails with ErrNotFound when that flavor no
	// longer exists (a server cannot be created from an embedded copy).
	FlavorID   string
	FlavorName string
	// ImageID is the image a server booted from an image was built from; "" when it booted
	// from a volume.
	ImageID string
	// BootVolume is the volume a server booted from a volume boots from, and whether Nova
	// deletes that volume when the server is deleted (then it cannot be recreated from it).
	BootVolume                  string
	BootVolumeDeleteOnTerminate bool
	// DataVolumes are the other volumes attached to the server.
	DataVolumes []string
	// LocalDisks tells whether the server keeps data on disks of its host: a root disk made
	// from an image, an ephemeral disk. Recreating such a server loses that data.
	LocalDisks bool
	Metadata   map[string]string
	Tags       []string
	// KeyName is the server's key pair; KeyOwner the user it belongs to (key pairs are per
	// user: CreateServer copies the public key under the client's user when it is another).
	KeyName  string
	KeyOwner string
	// UserData is the base64 user data given at boot ("" when none).
	UserData         string
	AvailabilityZone string
	// Group is the id of the server group the server is a member of ("" when none).
	Group string
	// Ports are the server's Neutron ports, in attachment order; none means the server was
	// booted with networks "none".
	Ports []Port
	// Host, when set, is where CreateServer asks Nova to build the server.
	Host string
}

// Port is a Neutron port.
type Port struct {
	ID             string
	Name           string
	NetworkID      string
	ProjectID      string
	MACAddress     string
	FixedIPs       []FixedIP
	SecurityGroups []string // ids
	DeviceID       string   // the server it is bound to, "" when none
}

// FixedIP is an address of a port on a subnet.
type FixedIP struct {
	SubnetID  string
	IPAddress string
}

// ServerGroup is a Nova server group (microversion 2.64: one policy, and rules).
type ServerGroup struct {
	ID        string
	Name      string
	ProjectID string
	// Policy is affinity, anti-affinity, soft-affinity or soft-anti-affinity.
	Policy string
	// MaxServerPerHost is the anti-affinity rule max_server_per_host (0 when unset: 1).
	MaxServerPerHost int
	Members          []string // server ids
}

// Server group policies.
const (
	PolicyAffinity         = "affinity"
	PolicyAntiAffinity     = "anti-affinity"
	PolicySoftAffinity     = "soft-affinity"
	PolicySoftAntiAffinity = "soft-anti-affinity"
)

// Hard tells whether the scheduler refuses a host that breaks the policy (affinity,
// anti-affinity); the soft ones are only preferences.
func (g ServerGroup) Hard() bool {
	return g.Policy == PolicyAffinity || g.Policy == PolicyAntiAffinity
}
