package config

import (
	"errors"
	"net/netip"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// healthYAML is a valid configuration whose health section is health (indented by the caller).
func healthYAML(health string) string {
	return "cloud: x\nsegments: {s: {hosts: [c1, c2]}}\nhealth:\n" + health
}

const threeHosts = `  hosts:
    h1: {mgmt: 10.0.0.1, tenant: 10.1.0.1}
    h2: {mgmt: 10.0.0.2, tenant: 10.1.0.2}
    h3: {mgmt: 10.0.0.3, tenant: 10.1.0.3}
`

func TestHealthSectionDefaultsAndNetworkResponses(t *testing.T) {
	c, err := Parse([]byte(healthYAML(`  networks:
    - {name: mgmt, management: true}
    - {name: tenant}
    - {name: storage}
    - {name: backup, response: alert}
  hosts:
    h1: {mgmt: 10.0.0.1, tenant: 10.1.0.1, storage: 10.2.0.1, backup: 10.3.0.1}
    h2: {mgmt: 10.0.0.2, tenant: 10.1.0.2, storage: 10.2.0.2, backup: 10.3.0.2}
    h3: {mgmt: 10.0.0.3, tenant: 10.1.0.3, storage: 10.2.0.3, backup: "fd00::3"}
`)))
	if err != nil {
		t.Fatal(err)
	}
	want := DefaultHealth()
	want.Networks = []Network{
		{Name: "mgmt", Management: true, Response: ResponseDisable},
		{Name: "tenant", Response: ResponseMigrate},
		{Name: "storage", Response: ResponseFence},
		{Name: "backup", Response: ResponseAlert},
	}
	if diff := cmp.Diff(want.Networks, c.Health.Networks); diff != "" {
		t.Errorf("networks (-want +got):\n%s", diff)
	}
	want.Hosts = c.Health.Hosts
	if diff := cmp.Diff(want, c.Health); diff != "" {
		t.Errorf("health (-want +got):\n%s", diff)
	}
	if !c.Health.Enabled() {
		t.Error("Enabled() = false with networks configured")
	}
	if got := c.Health.ManagementNetwork(); got != "mgmt" {
		t.Errorf("ManagementNetwork() = %q, want mgmt", got)
	}
	if diff := cmp.Diff([]string{"h1", "h2", "h3"}, c.Health.HostNames()); diff != "" {
		t.Errorf("HostNames (-want +got):\n%s", diff)
	}
	if a, ok := c.Health.Address("h3", "backup"); !ok || a != netip.MustParseAddr("fd00::3") {
		t.Errorf("Address(h3, backup) = %v, %v; want fd00::3, true", a, ok)
	}
	if _, ok := c.Health.Address("h3", "nowhere"); ok {
		t.Error("Address(h3, nowhere) found an address")
	}
}

func TestAnAbsentHealthSectionTurnsTheChecksOff(t *testing.T) {
	c, err := Parse([]byte("cloud: x\nsegments: {s: {hosts: [c1, c2]}}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if c.Health.Enabled() || c.Health.ManagementNetwork() != "" {
		t.Errorf("health is on without networks: %+v", c.Health)
	}
}

func TestNetworkResponseOrDefault(t *testing.T) {
	tests := []struct {
		name string
		n    Network
		want Response
	}{
		{"the management network defaults to disable", Network{Name: "mgmt", Management: true}, ResponseDisable},
		{"a network named storage defaults to fence", Network{Name: "storage"}, ResponseFence},
		{"any other network defaults to migrate", Network{Name: "tenant"}, ResponseMigrate},
		{"a configured response wins over the default", Network{Name: "storage", Response: ResponseAlert}, ResponseAlert},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.n.ResponseOrDefault(); got != tt.want {
				t.Errorf("ResponseOrDefault() = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestHealthSectionValidation(t *testing.T) {
	nets := "  networks:\n    - {name: mgmt, management: true}\n    - {name: tenant}\n"
	tests := []struct {
		name   string
		health string
		want   []string // the problems, in order; nil means valid
	}{
		{"a complete section is valid", nets + threeHosts, nil},
		{
			"hosts without networks are refused, since they would be silently ignored",
			threeHosts,
			[]string{"health.networks: hosts are listed but no network is"},
		},
		{
			"durations must be positive and the skew not negative",
			"  interval: 0s\n  stale_after: -1s\n  clock_skew: -1s\n  confirm: 0s\n  restart_timeout: 0s\n  rejoin_grace: -1s\n  decide: 0s\n" + nets + threeHosts,
			[]string{
				"health.interval: must be positive, got 0s",
				"health.stale_after: must be positive, got -1s",
				"health.confirm: must be positive, got 0s",
				"health.restart_timeout: must be positive, got 0s",
				"health.decide: must be positive, got 0s",
				"health.clock_skew: -1s is negative",
				"health.rejoin_grace: -1s is negative",
			},
		},
		{
			"a heartbeat that goes stale within two intervals is refused",
			"  interval: 2s\n  stale_after: 3s\n" + nets + threeHosts,
			[]string{"health.stale_after: 3s is shorter than two intervals (4s); one late write would count as lost"},
		},
		{
			"probe failures below one are refused",
			"  probe_failures: 0\n" + nets + threeHosts,
			[]string{"health.probe_failures: 0 is below 1"},
		},
		{
			"fence_hostcheck must gather evidence for longer than a decision takes to confirm",
			"  confirm: 5s\n  decide: 5s\n" + nets + threeHosts,
			[]string{"health.decide: 5s is not longer than confirm (5s); fence_hostcheck could never confirm a decision"},
		},
		{
			"a watchdog section with a valid device, timeouts and observers is valid",
			"  watchdog: {device: /dev/watchdog, timeout: 5s, self_fence_after: 5s, observers: [h1, h2], margin: 2s}\n" + nets + threeHosts,
			nil,
		},
		{
			"a watchdog whose arithmetic cannot keep a condemned host from running is refused",
			"  watchdog: {device: watchdog, timeout: 1s, self_fence_after: 2s, observers: [h1, h9, h1], margin: 500ms}\n" + nets + threeHosts,
			[]string{
				`health.watchdog.device: watchdog "watchdog": not a watchdog device (an absolute path under /dev, or file:/PATH)`,
				"health.watchdog.timeout: 1s is below 2s",
				"health.watchdog.self_fence_after: 2s is shorter than three intervals (3s)",
				"health.watchdog.self_fence_after: 2s is not longer than it takes to find a peer lost (4 probes: 4s)",
				"health.watchdog.margin: 500ms is shorter than two intervals (2s): a host could still be running when fence_gossip calls it off",
				`health.watchdog.observers[1]: "h9" is not one of health.hosts`,
				`health.watchdog.observers[2]: "h1" is listed twice`,
			},
		},
		{
			"a watchdog needs observers",
			"  watchdog: {device: file:/run/wd}\n" + nets + threeHosts,
			[]string{"health.watchdog.observers: required: the hosts (the controllers) whose contact keeps a host without storage alive"},
		},
		{
			"gossip with a key file, its seeds defaulting to the watchdog's observers, is valid",
			"  watchdog: {device: file:/run/wd, observers: [h1]}\n  gossip: {key_file: /etc/computeha/gossip.key}\n" + nets + threeHosts,
			nil,
		},
		{
			"seeds without a key are refused: gossip is never sent in clear",
			"  gossip: {port: 7946, seeds: [h1]}\n" + nets + threeHosts,
			[]string{"health.gossip: key_file is required: gossip is never sent in clear"},
		},
		{
			"gossip's port and seeds are checked",
			"  gossip: {key_file: /k, port: 70000, seeds: [h1, h9, h1]}\n" + nets + threeHosts,
			[]string{
				"health.gossip.port: 70000 is not a port",
				`health.gossip.seeds[1]: "h9" is not one of health.hosts`,
				`health.gossip.seeds[2]: "h1" is listed twice`,
			},
		},
		{
			"gossip needs a seed with an address on every network",
			"  gossip: {key_file: /k, seeds: [h4]}\n" + nets + threeHosts + "    h4: {mgmt: 10.0.0.4}\n",
			[]string{"health.networks[1]: no seed (health.gossip.seeds) has an address on tenant: its gossip could never be joined"},
		},
		{
			"gossip needs seeds when there are no observers to default to",
			"  gossip: {key_file: /k}\n" + nets + threeHosts,
			[]string{"health.gossip.seeds: required without health.watchdog.observers: the hosts every member joins through"},
		},
		{
			"with the gossip and subnets, only the seeds need be listed: the others join",
			"  gossip: {key_file: /k, seeds: [h1]}\n  networks:\n    - {name: mgmt, management: true, subnet: 10.0.0.0/24}\n    - {name: tenant, subnet: 10.1.0.0/16}\n" +
				"  hosts:\n    h1: {mgmt: 10.0.0.1, tenant: 10.1.0.1}\n",
			nil,
		},
		{
			"subnets are checked: a prefix, no host bits, the gossip on, the listed addresses in it",
			"  networks:\n    - {name: mgmt, management: true, subnet: 10.0.0.1/24}\n    - {name: tenant, subnet: 10.1.0.0/16}\n    - {name: storage, subnet: ten}\n" +
				"  hosts:\n    h1: {mgmt: 10.0.0.1, tenant: 10.2.0.1, storage: 10.3.0.1}\n    h2: {mgmt: 10.0.0.2, tenant: 10.1.0.2, storage: 10.3.0.2}\n    h3: {mgmt: 10.0.0.3, tenant: 10.1.0.3, storage: 10.3.0.3}\n",
			[]string{
				`health.networks[0].subnet: "10.0.0.1/24" has host bits set; the network is 10.0.0.0/24`,
				"health.networks[1].subnet: set, but the hosts do not gossip (health.gossip.key_file): a host not listed in health.hosts would be known to nobody",
				`health.networks[2].subnet: "ten" is not a prefix such as 192.0.2.0/24`,
				"health.hosts.h1.tenant: 10.2.0.1 is not in the network's subnet 10.1.0.0/16",
			},
		},
		{
			"an empty restart command is refused",
			"  restart_command: \" \"\n" + nets + threeHosts,
			[]string{"health.restart_command: must not be empty"},
		},
		{
			"networks need a unique name fit for a node attribute",
			"  networks:\n    - {name: mgmt, management: true}\n    - {name: mgmt}\n    - {name: \"\"}\n    - {name: \"ten ant\"}\n" + threeHosts,
			[]string{
				`health.networks[1].name: "mgmt" is listed twice`,
				"health.networks[2].name: required",
				`health.networks[3].name: "ten ant" may hold only letters, digits, '.', '_' and '-' (it names a node attribute)`,
				"health.networks[3]: 0 hosts have an address on ten ant; at least 3 are needed to tell a lost host from a lost link",
				"health.hosts.h1.tenant: no such network",
				"health.hosts.h2.tenant: no such network",
				"health.hosts.h3.tenant: no such network",
			},
		},
		{
			"an unknown response is refused with the choices",
			"  networks:\n    - {name: mgmt, management: true}\n    - {name: tenant, response: reboot}\n" + threeHosts,
			[]string{`health.networks[1].response: "reboot" is not one of none, alert, disable, migrate, fence`},
		},
		{
			"the management network's loss is never answered by migrate nor fence",
			"  networks:\n    - {name: mgmt, management: true, response: migrate}\n    - {name: tenant}\n" + threeHosts,
			[]string{"health.networks[0].response: migrate needs the management network, so it cannot answer its loss"},
		},
		{
			"fencing a host that lost only the management network is refused",
			"  networks:\n    - {name: mgmt, management: true, response: fence}\n    - {name: tenant}\n" + threeHosts,
			[]string{"health.networks[0].response: a host that lost only the management network is never fenced; use disable, alert or none"},
		},
		{
			"exactly one management network is required",
			"  networks:\n    - {name: mgmt}\n    - {name: tenant}\n" + threeHosts,
			[]string{"health.networks: exactly one network must be the management network (management: true), found 0"},
		},
		{
			"two management networks are refused",
			"  networks:\n    - {name: mgmt, management: true}\n    - {name: tenant, management: true}\n" + threeHosts,
			[]string{"health.networks: exactly one network must be the management network (management: true), found 2"},
		},
		{
			"networks without hosts are refused",
			nets,
			[]string{"health.hosts: required: each host's address on each network (with the gossip, at least the seeds' and the observers')"},
		},
		{
			"a network with fewer than three hosts could never prove a loss",
			nets + "  hosts:\n    h1: {mgmt: 10.0.0.1, tenant: 10.1.0.1}\n    h2: {mgmt: 10.0.0.2, tenant: 10.1.0.2}\n    h3: {mgmt: 10.0.0.3}\n",
			[]string{"health.networks[1]: 2 hosts have an address on tenant; at least 3 are needed to tell a lost host from a lost link"},
		},
		{
			"every host needs a management address, a node name and IP addresses on known networks",
			nets + `  hosts:
    h1: {mgmt: 10.0.0.1, tenant: 10.1.0.1}
    h2: {mgmt: 10.0.0.2, tenant: 10.1.0.2}
    h3: {mgmt: 10.0.0.3, tenant: 10.1.0.3}
    h4: {tenant: 10.1.0.4}
    "h=5": {mgmt: 10.0.0.5, dmz: 10.9.0.5, tenant: host5.example}
`,
			[]string{
				"health.hosts.h4: no address on the management network mgmt",
				`health.hosts: "h=5" is not a node name (empty, or holds '=' or a space)`,
				"health.hosts.h=5.dmz: no such network",
				`health.hosts.h=5.tenant: "host5.example" is not an IP address`,
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Parse([]byte(healthYAML(tt.health)))
			if tt.want == nil {
				if err != nil {
					t.Fatalf("a valid section was refused: %v", err)
				}
				if !c.Health.Enabled() {
					t.Error("health is off")
				}
				return
			}
			var ce *Error
			if !errors.As(err, &ce) {
				t.Fatalf("err = %v, want a *config.Error", err)
			}
			if diff := cmp.Diff(tt.want, ce.Problems); diff != "" {
				t.Errorf("problems (-want +got):\n%s", diff)
			}
		})
	}
}

func TestDefaultHealthHoldsTheDocumentedDefaults(t *testing.T) {
	want := Health{
		Interval: time.Second, StaleAfter: 4 * time.Second, ClockSkew: 2 * time.Second, ProbeFailures: 3,
		Confirm: 2 * time.Second, RestartTimeout: time.Minute, RejoinGrace: 30 * time.Second, RestartCommand: "systemctl restart pacemaker_remote",
		Decide:   15 * time.Second,
		Watchdog: Watchdog{Timeout: 10 * time.Second, SelfFenceAfter: 10 * time.Second, Margin: 2 * time.Second},
	}
	if diff := cmp.Diff(want, DefaultHealth()); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}
