package config

import (
	"time"
)

// Config is the whole configuration file.
type Config struct {
	// Cloud is the clouds.yaml entry the daemon authenticates with. Required.
	Cloud string `yaml:"cloud"`
	// CloudsYAML is the clouds.yaml to read. Empty (the default) means the usual search:
	// OS_CLIENT_CONFIG_FILE, ./clouds.yaml, ~/.config/openstack/clouds.yaml,
	// /etc/openstack/clouds.yaml.
	CloudsYAML string `yaml:"clouds_yaml"`
	// Segments maps a segment name to its definition. A failed host's VMs are recovered only
	// onto hosts of its own segment. At least one segment is required. Segments list Nova host
	// names; NovaHostDomain and NovaHosts relate them to Pacemaker's node names.
	Segments Segments `yaml:"segments"`
	// NovaHostDomain is the DNS domain appended, after a dot, to a Pacemaker node name that has
	// none, to form its Nova host name (cmp1 → cmp1.example.com): the same value as
	// fence_nova's domain and the nova-compute agent's domain. A leading dot is allowed and
	// ignored. Empty (the default) means node names are Nova host names. See [Config.NovaHost].
	NovaHostDomain string `yaml:"nova_host_domain"`
	// NovaHosts maps a Pacemaker node name to its Nova host name, for the odd host the domain
	// rule does not fit (the nova-compute agent's host parameter). An entry wins over
	// NovaHostDomain.
	NovaHosts map[string]string `yaml:"nova_hosts"`
	// Policy decides which VMs get HA.
	Policy Policy `yaml:"policy"`
	// Evacuation says how evacuations run.
	Evacuation Evacuation `yaml:"evacuation"`
	// Guard pauses recovery when too many hosts fail at once.
	Guard Guard `yaml:"guard"`
	// History is the durable record of fencing and recovery.
	History History `yaml:"history"`
	// Health judges hosts from several signals, to tell a dead host from an isolated one.
	Health Health `yaml:"health"`
	// Cells names sets of hosts that policy rules can name (policy.cells,
	// policy.recovery.cells).
	Cells Cells `yaml:"cells"`
	// Metrics is where the daemons expose Prometheus metrics.
	Metrics Metrics `yaml:"metrics"`
	// API is the HA API the evacuation daemon serves to instance monitors and projects.
	API API `yaml:"api"`
	// Instances says what the daemon does about guests that fail on hosts that run.
	Instances Instances `yaml:"instances"`
	// Alerts says where the daemon delivers its alerts.
	Alerts Alerts `yaml:"alerts"`
}

// Metrics configures the Prometheus endpoint of the evacuation daemon.
type Metrics struct {
	// Listen is the host:port the daemon serves GET /metrics on. Empty (the default) serves
	// nothing. Prefer a management address or 127.0.0.1: the metrics name hosts and projects'
	// recovery counts, and the endpoint has no authentication.
	Listen string `yaml:"listen"`
	// HostcheckListen is the host:port every host's hostcheck serves GET /metrics on: its
	// view of each peer on each network, its heartbeat's age, its cluster service. Empty (the
	// default) serves nothing. A port other than Listen's: hostcheck runs on the controllers
	// too.
	HostcheckListen string `yaml:"hostcheck_listen"`
	// CapacityInterval is how often each segment's capacity headroom is read from Nova and
	// Placement (two Placement requests per host), while Listen is set or alerts are
	// delivered: for the metrics and the alert on a segment without headroom. 0 reads none;
	// otherwise at least 30s. Default 5m.
	CapacityInterval time.Duration `yaml:"capacity_interval"`
}

// API configures the HA API (internal/haapi): served by the evacuation daemon, called by
// every compute's instance monitor and by `computeha signal`.
type API struct {
	// Listen is the host:port the daemon serves the API on. Empty (the default) serves
	// nothing. 0.0.0.0:PORT with a Pacemaker IPaddr2 colocated with the evacuator gives the
	// API an address that follows the daemon.
	Listen string `yaml:"listen"`
	// URL is where the monitors and `computeha signal` reach the API: the address that
	// follows the daemon (http://VIP:PORT). Required by computeha instancemon.
	URL string `yaml:"url"`
	// MonitorRoles are the Keystone roles that may report instance and host events (a host
	// event disables a host in Nova) and signal any server. Default admin: give the monitors'
	// user a role of its own rather than "service", which every OpenStack service user has.
	MonitorRoles []string `yaml:"monitor_roles"`
	// SignalRoles may signal the servers of the project their token is scoped to (default
	// member: a reader may not have a server restarted).
	SignalRoles []string `yaml:"signal_roles"`
	// SignalWindow: a server signalled again within it after an accepted signal is
	// coalesced; more than SignalBurst signals of one server within it are refused with 429
	// (defaults 1m and 5).
	SignalWindow time.Duration `yaml:"signal_window"`
	SignalBurst  int           `yaml:"signal_burst"`
}

// Instances bounds the restarts of failed guests (their qemu died, their watchdog fired, a
// disk failed under them) on hosts that run.
type Instances struct {
	// MaxRestarts: a VM restarted this many times within RestartWindow (on its host, since it
	// last moved) is moved to another host of its segment at its next failure (a cold
	// migration) rather than restarted there again. 0: never moved. Default 3.
	MaxRestarts   int           `yaml:"max_restarts"`
	RestartWindow time.Duration `yaml:"restart_window"`
	// StormHost, StormCloud: more restarts than these within StormWindow on one host, or in
	// the whole cloud, are a storm: further failures are left alone, with an alert, until the
	// window has room again. 0: no limit. Defaults 30, 100 and 10m (20 VMs of a host failing
	// together are all restarted).
	StormHost   int           `yaml:"storm_host"`
	StormCloud  int           `yaml:"storm_cloud"`
	StormWindow time.Duration `yaml:"storm_window"`
	// Processes are the compute's provisioning processes the instance monitor keeps running
	// (libvirtd, the network agent): checked every 5 s, restarted with a growing backoff. List
	// only processes nothing else restarts (not nova-compute: its Pacemaker clone does; not a
	// service systemd restarts itself). Empty (the default): none.
	Processes []Process `yaml:"processes"`
	// ProcessGiveUp: a process down this long, its restarts failing, makes the daemon disable
	// the host in Nova (a computeha reason: nothing new is scheduled there) and raise an alert;
	// once it runs again, the daemon enables the host. Default 1m.
	ProcessGiveUp time.Duration `yaml:"process_give_up"`
	// ResumeDelay is how long a VM an I/O error paused is left paused before it is resumed
	// (policy.io_error resume): the time a storage blip is given to pass. Default 10s.
	ResumeDelay time.Duration `yaml:"resume_delay"`
	// ProcessMigrate: the daemon also live-migrates the host's HA VMs away when it disables it
	// for a process. Default false.
	ProcessMigrate bool `yaml:"process_migrate"`
}

// Process is a provisioning process of the computes.
type Process struct {
	// Name is the process name (as ps shows it, the kernel's first 15 characters or the full
	// name).
	Name string `yaml:"name"`
	// RestartCommand starts it again (sh -c), for example systemctl restart libvirtd.
	RestartCommand string `yaml:"restart_command"`
}

// Segments maps a segment name to its definition.
type Segments map[string]Segment

// RecoveryMethod says where a segment's VMs go, with masakari's meaning of each name.
type RecoveryMethod string

const (
	// RecoveryAuto spreads VMs over the segment's ordinary (non-reserved) hosts.
	RecoveryAuto RecoveryMethod = "auto"
	// RecoveryReservedHost moves VMs only onto reserved hosts, taking them into use as needed.
	RecoveryReservedHost RecoveryMethod = "reserved_host"
	// RecoveryAutoPriority is auto, falling back to reserved hosts for what does not fit.
	RecoveryAutoPriority RecoveryMethod = "auto_priority"
	// RecoveryRHPriority is reserved_host, falling back to auto for what does not fit.
	RecoveryRHPriority RecoveryMethod = "rh_priority"
)

// RecoveryMethods lists the valid recovery methods, in the order messages name them.
var RecoveryMethods = []RecoveryMethod{RecoveryAuto, RecoveryReservedHost, RecoveryAutoPriority, RecoveryRHPriority}

// UsesReservedHosts reports whether the method may take reserved hosts into use.
func (m RecoveryMethod) UsesReservedHosts() bool { return m != RecoveryAuto }

// Segment is a group of hosts that take over each other's VMs.
type Segment struct {
	// Hosts lists the segment's compute hosts (Nova service host names), reserved hosts
	// included. Exactly one of Hosts and Aggregate is set.
	Hosts []string `yaml:"hosts"`
	// Aggregate names a Nova host aggregate whose hosts form the segment; the daemon resolves
	// it at run time ([Config.ResolveSegments]).
	Aggregate string `yaml:"aggregate"`
	// RecoveryMethod defaults to auto.
	RecoveryMethod RecoveryMethod `yaml:"recovery_method"`
	// ReservedHosts are hosts of the segment kept empty (and disabled in Nova) to take over a
	// failed host's VMs, taken into use in this order. reserved_host and rh_priority need at
	// least one.
	ReservedHosts []string `yaml:"reserved_hosts"`
	// ReservedReturn says how a reserved host taken into use goes back to the pool once it is
	// empty again: manual (computeha reserved return; also when empty) or auto (the
	// evacuation daemon returns it).
	ReservedReturn ReservedReturn `yaml:"reserved_return"`
	// Admission is the segment's admission-control policy: n+K (the VMs of the K hosts whose
	// loss costs most fit on the others), P% (that share of its capacity stays free) or
	// reserved (its reserved hosts alone take its busiest host's VMs). Default n+1. The
	// daemon alerts when the segment no longer meets it.
	Admission string `yaml:"admission"`
}

// ReservedReturn says who gives an emptied reserved host back to the pool.
type ReservedReturn string

// Reserved-return choices.
const (
	ReservedReturnManual ReservedReturn = "manual"
	ReservedReturnAuto   ReservedReturn = "auto"
)

// ReservedReturns lists the valid choices, in the order messages name them.
var ReservedReturns = []ReservedReturn{ReservedReturnManual, ReservedReturnAuto}

// Policy holds the HA policy: the default, the property names VMs are tagged with, and rules
// by aggregate, availability zone and project. The policy package applies it.
type Policy struct {
	// Default is the HA setting of a VM no finer level speaks about. Default true, as both
	// masakari (evacuate_all_instances) and Red Hat's instance HA do.
	Default bool `yaml:"default"`
	// FlavorKey is the flavor extra spec that turns HA on or off (Red Hat convention).
	// Default "evacuable".
	FlavorKey string `yaml:"flavor_key"`
	// ImageKey is the image property that turns HA on or off (Red Hat convention).
	// Default "evacuable".
	ImageKey string `yaml:"image_key"`
	// MetadataKey is the instance metadata key that turns HA on or off (masakari
	// convention). Default "HA_Enabled".
	MetadataKey string `yaml:"metadata_key"`
	// TagKey is the instance tag that turns HA on ("evacuable") or sets it explicitly
	// ("evacuable=false"). Default "evacuable".
	TagKey string `yaml:"tag_key"`
	// Aggregates maps an aggregate name to on/off for VMs on its hosts.
	Aggregates map[string]bool `yaml:"aggregates"`
	// AvailabilityZones maps an availability zone to on/off for its VMs.
	AvailabilityZones map[string]bool `yaml:"availability_zones"`
	// Projects maps a project ID to on/off for its VMs.
	Projects map[string]bool `yaml:"projects"`
	// Cells maps a cell name (of cells) to on/off for VMs on its hosts; coarser than
	// aggregates.
	Cells map[string]bool `yaml:"cells"`
	// Recovery gives each HA VM its recovery class.
	Recovery RecoveryPolicy `yaml:"recovery"`
	// IOError gives each HA VM what is done when an I/O error pauses it.
	IOError IOErrorPolicy `yaml:"io_error"`
}

// ErrorVMs says what happens to a VM found in ERROR on a failed host.
type ErrorVMs string

const (
	// ErrorVMsEvacuate evacuates it like any other VM (Nova accepts evacuate in ERROR).
	ErrorVMsEvacuate ErrorVMs = "evacuate"
	// ErrorVMsSkip leaves it where it is.
	ErrorVMsSkip ErrorVMs = "skip"
	// ErrorVMsResetState resets its state to active first, then evacuates it.
	ErrorVMsResetState ErrorVMs = "reset-state-then-evacuate"
)

// ErrorVMsChoices lists the valid ErrorVMs values, in the order messages name them.
var ErrorVMsChoices = []ErrorVMs{ErrorVMsEvacuate, ErrorVMsSkip, ErrorVMsResetState}

// Evacuation says how evacuations run.
type Evacuation struct {
	// Concurrency bounds the evacuations in flight at once. Default 8: Nova's API accepts
	// about five evacuations a second on a small control plane, so more only queue there.
	Concurrency int `yaml:"concurrency"`
	// Retries is how many times a failed evacuation is retried. Default 3; 0 disables.
	Retries int `yaml:"retries"`
	// RetryBackoff is the wait between retries.
	RetryBackoff Backoff `yaml:"retry_backoff"`
	// ErrorVMs is what to do with VMs in ERROR. Default evacuate, as masakari does.
	ErrorVMs ErrorVMs `yaml:"error_vms"`
	// RestartPriority names the properties holding a VM's restart priority, looked up in
	// instance metadata, then flavor extra specs, then image properties; higher restarts
	// first, and a VM without one has priority 0. Default ["restart_priority"].
	RestartPriority []string `yaml:"restart_priority"`
	// ConfirmTimeout bounds the wait for an evacuated VM to be confirmed running on its
	// target. Default 5m.
	ConfirmTimeout time.Duration `yaml:"confirm_timeout"`
	// PerHostConcurrency is how many moves one target host takes at once when it starts
	// taking them (as Nova's max_concurrent_builds bounds builds per compute): the bound
	// grows by one with each move that succeeds there, up to twice this, and halves with each
	// that fails. Default 10.
	PerHostConcurrency int `yaml:"per_host_concurrency"`
	// Tiers turn restart priorities into restart tiers.
	Tiers Tiers `yaml:"tiers"`
	// Refresh is how often the daemon rereads Nova's hypervisors, aggregates and server
	// groups while it runs, so that a recovery plans from reads this recent instead of
	// waiting for them (the failed host's servers and migrations are always read when it
	// fails). 0 reads everything when a recovery begins. Default 10s.
	Refresh time.Duration `yaml:"refresh"`
}

// Backoff is an exponential backoff: Initial, doubling up to Max.
type Backoff struct {
	// Initial is the first wait. Default 2s.
	Initial time.Duration `yaml:"initial"`
	// Max caps the wait. Default 30s.
	Max time.Duration `yaml:"max"`
}

// Guard holds the mass-failure thresholds: beyond them recovery pauses and an alert is raised
// instead, because many hosts "failing" together is more often the network or the monitoring
// than the hosts.
type Guard struct {
	// MaxHosts is the most hosts that may fail within Window and still be recovered.
	// Default 3.
	MaxHosts int `yaml:"max_hosts"`
	// Window is the period over which failures are counted. Default 10m.
	Window time.Duration `yaml:"window"`
	// MaxSegmentFraction is the largest fraction (0 < f <= 1) of one segment's hosts that may
	// fail within Window and still be recovered. Default 0.5.
	MaxSegmentFraction float64 `yaml:"max_segment_fraction"`
}

// Driver is a history database driver.
type Driver string

const (
	// DriverSQLite keeps the history in a local SQLite file.
	DriverSQLite Driver = "sqlite"
	// DriverMySQL keeps it in a MySQL/MariaDB database shared by the cluster.
	DriverMySQL Driver = "mysql"
)

// Drivers lists the valid history drivers, in the order messages name them.
var Drivers = []Driver{DriverSQLite, DriverMySQL}

// History says where the durable record of fencing and recovery is kept.
type History struct {
	// Driver is sqlite (the default) or mysql.
	Driver Driver `yaml:"driver"`
	// DSN is the data source name: a file path for sqlite (default
	// /var/lib/computeha/history.db), a go-sql-driver DSN for mysql. A DSN with a password
	// is refused here; put it in DSNFile. At most one of DSN and DSNFile is set.
	DSN string `yaml:"dsn"`
	// DSNFile is a root-only file whose content (trailing newline removed) is the DSN, so
	// that the database password stays out of this file.
	DSNFile string `yaml:"dsn_file"`
	// Retention is how long what ended is kept: the daemon deletes, every
	// history.PruneEvery, the incidents closed longer ago (with their events and moves)
	// and the older records of no incident. An open incident is never cut.
	// 0 (the default) keeps everything; otherwise at least MinRetention.
	Retention time.Duration `yaml:"retention"`
}

// MinRetention is the shortest history.retention accepted: a shorter one is
// more likely a unit forgotten (30 for 30 days) than a wish.
const MinRetention = 24 * time.Hour

// Defaults of the fields the file may leave out.
const (
	DefaultPolicyKey        = "evacuable"
	DefaultMetadataKey      = "HA_Enabled"
	DefaultConcurrency      = 8
	DefaultRetries          = 3
	DefaultBackoffInitial   = 2 * time.Second
	DefaultBackoffMax       = 30 * time.Second
	DefaultConfirmTimeout   = 5 * time.Minute
	DefaultRestartPriority  = "restart_priority"
	DefaultGuardMaxHosts    = 3
	DefaultGuardWindow      = 10 * time.Minute
	DefaultSegmentFraction  = 0.5
	DefaultSQLiteDSN        = "/var/lib/computeha/history.db"
	DefaultRecoveryMethod   = RecoveryAuto
	DefaultErrorVMsHandling = ErrorVMsEvacuate
	DefaultCapacityInterval = 5 * time.Minute
	MinCapacityInterval     = 30 * time.Second
)

// Default returns a configuration holding every default and nothing else (no cloud, no
// segments), so it does not validate by itself.
func Default() *Config {
	return &Config{
		Policy: Policy{
			Default:     true,
			FlavorKey:   DefaultPolicyKey,
			ImageKey:    DefaultPolicyKey,
			MetadataKey: DefaultMetadataKey,
			TagKey:      DefaultPolicyKey,
			Recovery:    DefaultRecoveryPolicy(),
			IOError:     DefaultIOErrorPolicy(),
		},
		Evacuation: Evacuation{
			Concurrency:        DefaultConcurrency,
			Retries:            DefaultRetries,
			RetryBackoff:       Backoff{Initial: DefaultBackoffInitial, Max: DefaultBackoffMax},
			ErrorVMs:           DefaultErrorVMsHandling,
			RestartPriority:    []string{DefaultRestartPriority},
			ConfirmTimeout:     DefaultConfirmTimeout,
			PerHostConcurrency: DefaultPerHostConcurrency,
			Tiers:              Tiers{Timeout: DefaultTierTimeout},
			Refresh:            DefaultRefresh,
		},
		Guard: Guard{
			MaxHosts:           DefaultGuardMaxHosts,
			Window:             DefaultGuardWindow,
			MaxSegmentFraction: DefaultSegmentFraction,
		},
		History: History{Driver: DriverSQLite},
		Health:  DefaultHealth(),
		Alerts:  Alerts{Resend: DefaultAlertResend},
		Metrics: Metrics{CapacityInterval: DefaultCapacityInterval},
		API: API{
			MonitorRoles: []string{"admin"}, SignalRoles: []string{"member"}, SignalWindow: time.Minute, SignalBurst: 5,
		},
		Instances: Instances{
			MaxRestarts: 3, RestartWindow: time.Hour, StormHost: 30, StormCloud: 100, StormWindow: 10 * time.Minute,
			ProcessGiveUp: time.Minute, ResumeDelay: DefaultResumeDelay,
		},
	}
}

// applyDefaults fills what decoding left empty and cannot be preset by [Default]: fields of
// map values, and the sqlite DSN (which depends on the driver).
func (c *Config) applyDefaults() {
	for name, s := range c.Segments {
		if s.RecoveryMethod == "" {
			s.RecoveryMethod = DefaultRecoveryMethod
			c.Segments[name] = s
		}
	}
	c.Health.applyDefaults()
	c.Alerts.applyDefaults()
	if c.History.Driver == DriverSQLite && c.History.DSN == "" && c.History.DSNFile == "" {
		c.History.DSN = DefaultSQLiteDSN
	}
}
