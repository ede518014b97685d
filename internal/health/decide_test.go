package health

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/computeha/computeha/internal/config"
)

// testConfig is a validated-looking health section: networks mgmt (management), tenant and
// storage with their default responses.
func testConfig() *config.Health {
	h := config.DefaultHealth()
	h.SharedDir = "/var/lib/computeha/shared"
	h.Networks = []config.Network{
		{Name: "mgmt", Management: true, Response: config.ResponseDisable},
		{Name: "tenant", Response: config.ResponseMigrate},
		{Name: "storage", Response: config.ResponseFence},
	}
	h.Hosts = map[string]map[string]string{}
	return &h
}

// sig spells a signal in one letter, so that table rows stay readable: o ok, x lost, ? unknown.
func sig(c byte) Signal {
	switch c {
	case 'o':
		return OK
	case 'x':
		return Lost
	default:
		return Unknown
	}
}

// evidence builds the evidence about "cmp1" from a five-letter pattern: membership, mgmt,
// tenant, storage network, storage heartbeat.
func evidence(pattern string) Evidence {
	return Evidence{
		Host:       "cmp1",
		Membership: sig(pattern[0]),
		Networks:   map[string]Signal{"mgmt": sig(pattern[1]), "tenant": sig(pattern[2]), "storage": sig(pattern[3])},
		Storage:    sig(pattern[4]),
	}
}

type verdict struct {
	State    State
	Response Response
	Networks []string
	Code     ReasonCode
}

func verdictOf(d Decision) verdict {
	return verdict{State: d.State, Response: d.Response, Networks: d.Networks, Code: d.Reason.Code}
}

// TestDecideFollowsTheDecisionTable walks every row of the design's decision table, and the
// combinations around each row where one signal is unknown.
func TestDecideFollowsTheDecisionTable(t *testing.T) {
	tests := []struct {
		name    string
		pattern string // membership, mgmt, tenant, storage network, heartbeat
		service Signal
		downFor time.Duration
		want    verdict
	}{
		// Membership OK.
		{
			"a member answering everywhere is running", "ooooo", OK, 0,
			verdict{Running, config.ResponseNone, nil, ReasonHealthy},
		},
		{
			"a member whose management network alone does not answer is judged management-lost before Pacemaker notices", "oxooo", OK, 0,
			verdict{ManagementLost, config.ResponseDisable, []string{"mgmt"}, ReasonManagementLost},
		},
		{
			"a member that answers on no network and writes no heartbeat (a power loss Pacemaker has not seen) is dead, not degraded", "oxxxx", OK, 0,
			verdict{Dead, config.ResponseFence, nil, ReasonAllLost},
		},
		{
			"a member cut from management and tenant (an isolation Pacemaker has not seen) is not migrated", "oxxoo", OK, 0,
			verdict{ManagementLost, config.ResponseDisable, []string{"mgmt"}, ReasonManagementLost},
		},
		{
			"a member whose management network is silent but whose other signals point to a crashed service waits for Pacemaker", "oxoox", OK, 0,
			verdict{Undecided, config.ResponseAlert, nil, ReasonMembershipAhead},
		},
		{
			"a member with unknown networks and heartbeat is still running", "o????", Unknown, 0,
			verdict{Running, config.ResponseNone, nil, ReasonHealthy},
		},
		{
			"a member that lost the tenant network is degraded and migrated", "ooxoo", OK, 0,
			verdict{Degraded, config.ResponseMigrate, []string{"tenant"}, ReasonNetworksLost},
		},
		{
			"a member that lost tenant and storage networks gets the strongest response, fence", "ooxxx", OK, 0,
			verdict{Degraded, config.ResponseFence, []string{"tenant", "storage", StorageHeartbeat}, ReasonNetworksLost},
		},
		{
			"a member whose heartbeat alone is stale while others' are fresh is only alerted on (its writer may have crashed)", "ooo?x", OK, 0,
			verdict{Degraded, config.ResponseAlert, []string{StorageHeartbeat}, ReasonHeartbeatLost},
		},
		{
			"a member whose heartbeat is stale while its storage network answers is only alerted on", "oooox", Unknown, 0,
			verdict{Degraded, config.ResponseAlert, []string{StorageHeartbeat}, ReasonHeartbeatLost},
		},

		// Membership lost: dead.
		{
			"a host that lost membership, every network and its heartbeat is dead and fenced", "xxxxx", Unknown, 0,
			verdict{Dead, config.ResponseFence, nil, ReasonAllLost},
		},

		// Membership lost: service unreachable.
		{
			"a host whose management ping answers while membership is lost has lost its cluster service", "xoooo", Lost, 10 * time.Second,
			verdict{ServiceUnreachable, ResponseRestart, nil, ReasonServiceUnreachable},
		},
		{
			"service unreachable with other networks unknown", "xo??o", OK, 0,
			verdict{ServiceUnreachable, ResponseRestart, nil, ReasonServiceUnreachable},
		},
		{
			"service unreachable with a stale heartbeat (management ping answers)", "xooox", Unknown, 0,
			verdict{ServiceUnreachable, ResponseRestart, nil, ReasonServiceUnreachable},
		},
		{
			"service unreachable when only a non-management network answers and the heartbeat is stale", "xxoxx", Unknown, 0,
			verdict{ServiceUnreachable, ResponseRestart, []string{"storage"}, ReasonServiceUnreachable},
		},
		{
			"service unreachable with the storage unknown (management ping answers)", "xooo?", Unknown, 0,
			verdict{ServiceUnreachable, ResponseRestart, nil, ReasonServiceUnreachable},
		},
		{
			"service unreachable names the other networks lost too, but still restarts", "xoxoo", Lost, time.Second,
			verdict{ServiceUnreachable, ResponseRestart, []string{"tenant"}, ReasonServiceUnreachable},
		},
		{
			"a host answering on management that lost its storage network (response fence) is fenced, service or not", "xooxx", OK, 0,
			verdict{Degraded, config.ResponseFence, []string{"storage"}, ReasonNetworksLost},
		},
		{
			"a lost network answered by less than fencing leaves the service to be restarted", "xoxoo", OK, 0,
			verdict{ServiceUnreachable, ResponseRestart, []string{"tenant"}, ReasonServiceUnreachable},
		},
		{
			"a service down for just under the restart timeout is still restarted", "xoooo", Lost, 59 * time.Second,
			verdict{ServiceUnreachable, ResponseRestart, nil, ReasonServiceUnreachable},
		},
		{
			"a service down for the restart timeout is fenced", "xoooo", Lost, 60 * time.Second,
			verdict{ServiceUnreachable, config.ResponseFence, nil, ReasonRestartTimedOut},
		},
		{
			"a long down time in a record that says the service is ok does not escalate", "xoooo", OK, time.Hour,
			verdict{ServiceUnreachable, ResponseRestart, nil, ReasonServiceUnreachable},
		},

		// Membership lost: isolated and management-lost.
		{
			"a host cut from every network but writing its heartbeat is isolated: disable, never fence", "xxxxo", OK, 0,
			verdict{Isolated, config.ResponseDisable, nil, ReasonIsolated},
		},
		{
			"a host that lost only the management network gets that network's response", "xxooo", OK, 0,
			verdict{ManagementLost, config.ResponseDisable, []string{"mgmt"}, ReasonManagementLost},
		},
		{
			"management lost with some other network lost and one answering is still management-lost", "xxoxo", OK, 0,
			verdict{ManagementLost, config.ResponseDisable, []string{"mgmt"}, ReasonManagementLost},
		},
		{
			"management lost with one network answering and one unknown is management-lost", "xxo?o", OK, 0,
			verdict{ManagementLost, config.ResponseDisable, []string{"mgmt"}, ReasonManagementLost},
		},

		// Unknown is never dead.
		{
			"membership unknown with everything else lost is unknown, not dead", "?xxxx", Unknown, 0,
			verdict{Undecided, config.ResponseAlert, nil, ReasonMembershipUnknown},
		},
		{
			"membership unknown with everything else fine is unknown", "?oooo", OK, 0,
			verdict{Undecided, config.ResponseAlert, nil, ReasonMembershipUnknown},
		},
		{
			"everything lost but the storage unknown is unknown, not dead", "xxxx?", Unknown, 0,
			verdict{Undecided, config.ResponseAlert, nil, ReasonEvidenceUnknown},
		},
		{
			"everything lost but the management ping unknown is unknown, not dead", "x?xxx", Unknown, 0,
			verdict{Undecided, config.ResponseAlert, nil, ReasonEvidenceUnknown},
		},
		{
			"everything lost but one network unknown is unknown, not dead", "xxx?x", Unknown, 0,
			verdict{Undecided, config.ResponseAlert, nil, ReasonEvidenceUnknown},
		},
		{
			"every network unknown with membership and heartbeat lost is unknown, not dead", "x???x", Unknown, 0,
			verdict{Undecided, config.ResponseAlert, nil, ReasonEvidenceUnknown},
		},
		{
			"every network lost, some unknown, with a fresh heartbeat is unknown, not isolated", "xx?xo", OK, 0,
			verdict{Undecided, config.ResponseAlert, nil, ReasonEvidenceUnknown},
		},
		{
			"management lost and another network answering with the storage unknown is unknown", "xxoo?", Unknown, 0,
			verdict{Undecided, config.ResponseAlert, nil, ReasonEvidenceUnknown},
		},
		{
			"management unknown and other networks answering with a fresh heartbeat is unknown", "x?ooo", OK, 0,
			verdict{Undecided, config.ResponseAlert, nil, ReasonEvidenceUnknown},
		},
		{
			"nothing known at all is unknown", "?????", Unknown, 0,
			verdict{Undecided, config.ResponseAlert, nil, ReasonMembershipUnknown},
		},
	}
	cfg := testConfig()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ev := evidence(tt.pattern)
			ev.Service, ev.ServiceDownFor = tt.service, tt.downFor
			d := Decide(cfg, ev)
			if diff := cmp.Diff(tt.want, verdictOf(d)); diff != "" {
				t.Errorf("decision (-want +got):\n%s\nreason: %s", diff, d.Reason.Text)
			}
			if d.Host != "cmp1" {
				t.Errorf("Host = %q, want cmp1", d.Host)
			}
			if d.Fence() != (tt.want.Response == config.ResponseFence) {
				t.Errorf("Fence() = %v with response %s", d.Fence(), d.Response)
			}
			for _, s := range []string{
				"cmp1", "membership " + ev.Membership.String(), "network mgmt " + ev.Networks["mgmt"].String(),
				"network tenant", "network storage", "storage heartbeat " + ev.Storage.String(), "service ",
			} {
				if !strings.Contains(d.Reason.Text, s) {
					t.Errorf("reason %q does not name %q", d.Reason.Text, s)
				}
			}
		})
	}
}

// TestUnknownIsNeverDead tries every combination of signals and checks that a host is judged
// dead, or fenced at all, only on positive evidence.
func TestUnknownIsNeverDead(t *testing.T) {
	cfg := testConfig()
	letters := "ox?"
	for i := range 243 { // 3^5 patterns
		var p [5]byte
		n := i
		for j := range p {
			p[j] = letters[n%3]
			n /= 3
		}
		for _, svc := range []Signal{Unknown, OK, Lost} {
			ev := evidence(string(p[:]))
			ev.Service = svc
			d := Decide(cfg, ev)
			if d.State == Dead && strings.ContainsRune(string(p[:]), '?') {
				t.Errorf("%s (service %s): dead with unknown evidence: %s", p, svc, d.Reason.Text)
			}
			if d.Fence() {
				membershipLostAndAllGone := string(p[:]) == "xxxxx"
				memberWithLoss := p[0] == 'o' && (p[3] == 'x' || p[4] == 'x')
				// Answering on management, with the storage network (response fence) lost.
				storageNetworkLost := p[1] == 'o' && p[3] == 'x'
				if !membershipLostAndAllGone && !memberWithLoss && !storageNetworkLost {
					t.Errorf("%s (service %s): fenced: %s", p, svc, d.Reason.Text)
				}
			}
			if (d.State == Isolated || d.State == ManagementLost || d.State == Undecided) && d.Fence() {
				t.Errorf("%s: %s fenced", p, d.State)
			}
		}
	}
}

func TestNetworkResponsesFollowTheConfiguration(t *testing.T) {
	for _, r := range config.Responses {
		t.Run("a member that lost a network configured "+string(r)+" gets "+string(r), func(t *testing.T) {
			cfg := testConfig()
			cfg.Networks[1].Response = r
			d := Decide(cfg, evidence("ooxoo"))
			want := verdict{Degraded, r, []string{"tenant"}, ReasonNetworksLost}
			if diff := cmp.Diff(want, verdictOf(d)); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
		t.Run("a stale heartbeat alone is alerted on whatever the storage network's response "+string(r), func(t *testing.T) {
			cfg := testConfig()
			cfg.Networks[2].Response = r
			d := Decide(cfg, evidence("oooox"))
			want := verdict{Degraded, config.ResponseAlert, []string{StorageHeartbeat}, ReasonHeartbeatLost}
			if diff := cmp.Diff(want, verdictOf(d)); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
		t.Run("a management-lost host configured "+string(r)+" is never fenced nor migrated", func(t *testing.T) {
			cfg := testConfig()
			cfg.Networks[0].Response = r
			d := Decide(cfg, evidence("xxooo"))
			want := r
			if r == config.ResponseFence || r == config.ResponseMigrate {
				want = config.ResponseDisable
			}
			if d.State != ManagementLost || d.Response != want {
				t.Errorf("got %s/%s, want %s/%s", d.State, d.Response, ManagementLost, want)
			}
		})
		for _, r2 := range config.Responses {
			t.Run("tenant "+string(r)+" and storage "+string(r2)+" lost together give the stronger", func(t *testing.T) {
				cfg := testConfig()
				cfg.Networks[1].Response = r
				cfg.Networks[2].Response = r2
				d := Decide(cfg, evidence("ooxxo"))
				want := r
				if strength(r2) > strength(r) {
					want = r2
				}
				if d.Response != want {
					t.Errorf("response %s, want %s (%s)", d.Response, want, d.Reason.Text)
				}
			})
		}
	}
	t.Run("without a storage network a stale heartbeat of a member is alerted on, not fenced", func(t *testing.T) {
		cfg := testConfig()
		cfg.Networks = cfg.Networks[:2]
		d := Decide(cfg, evidence("oooox"))
		if diff := cmp.Diff(verdict{Degraded, config.ResponseAlert, []string{StorageHeartbeat}, ReasonHeartbeatLost}, verdictOf(d)); diff != "" {
			t.Errorf("(-want +got):\n%s", diff)
		}
	})
	t.Run("networks without a configured response get their defaults", func(t *testing.T) {
		cfg := testConfig()
		for i := range cfg.Networks {
			cfg.Networks[i].Response = ""
		}
		got := []Response{Decide(cfg, evidence("ooxoo")).Response, Decide(cfg, evidence("oooxo")).Response, Decide(cfg, evidence("xxooo")).Response}
		want := []Response{config.ResponseMigrate, config.ResponseFence, config.ResponseDisable}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("tenant, storage, management (-want +got):\n%s", diff)
		}
	})
	t.Run("a zero restart timeout never escalates", func(t *testing.T) {
		cfg := testConfig()
		cfg.RestartTimeout = 0
		ev := evidence("xoooo")
		ev.Service, ev.ServiceDownFor = Lost, time.Hour
		if d := Decide(cfg, ev); d.Response != ResponseRestart {
			t.Errorf("response %s, want restart", d.Response)
		}
	})
}

func TestStrongest(t *testing.T) {
	tests := []struct {
		name string
		in   []Response
		want Response
	}{
		{"nothing is none", nil, config.ResponseNone},
		{"fence beats everything", []Response{config.ResponseAlert, config.ResponseFence, config.ResponseMigrate}, config.ResponseFence},
		{"migrate beats disable", []Response{config.ResponseDisable, config.ResponseMigrate}, config.ResponseMigrate},
		{"disable beats alert", []Response{config.ResponseAlert, config.ResponseDisable}, config.ResponseDisable},
		{"alert beats none", []Response{config.ResponseNone, config.ResponseAlert}, config.ResponseAlert},
		{"a value that is no network response counts as alert", []Response{config.ResponseNone, "reboot"}, "reboot"},
		{"a value that is no network response loses to disable", []Response{"reboot", config.ResponseDisable}, config.ResponseDisable},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Strongest(tt.in...); got != tt.want {
				t.Errorf("Strongest(%v) = %s, want %s", tt.in, got, tt.want)
			}
		})
	}
}

var now0 = time.Date(2025, 11, 21, 12, 0, 0, 0, time.UTC)

func rec(host string, age time.Duration, service string) Record {
	return Record{Host: host, Seq: 7, Time: now0.Add(-age), Service: service}
}

// cluster is the observations of a healthy five-host cluster (three controllers, two
// computes) on networks mgmt, tenant and storage; tests break it.
func cluster() Observations {
	hosts := []string{"ctl1", "ctl2", "ctl3", "cmp1", "cmp2"}
	obs := Observations{
		Now:     now0,
		Members: map[string]bool{},
		Reach:   map[string]map[string]map[string]Signal{},
		Records: map[string]Record{},
	}
	for _, h := range hosts {
		obs.Members[h] = true
		obs.Records[h] = rec(h, 500*time.Millisecond, ServiceOK)
		obs.Reach[h] = map[string]map[string]Signal{}
		for _, n := range []string{"mgmt", "tenant", "storage"} {
			view := map[string]Signal{}
			for _, p := range hosts {
				if p != h {
					view[p] = OK
				}
			}
			obs.Reach[h][n] = view
		}
	}
	return obs
}

// cut makes host unreachable on the networks from every other host and the reverse, as a
// pulled cable does.
func cut(obs Observations, host string, networks ...string) {
	for o, nets := range obs.Reach {
		for _, n := range networks {
			if o == host {
				for p := range nets[n] {
					nets[n][p] = Lost
				}
				continue
			}
			if _, ok := nets[n][host]; ok {
				nets[n][host] = Lost
			}
		}
	}
}

// TestCollectAndDecideTellFailuresApart plays the failure scenarios the health checks exist
// for, from raw observations to the decision.
func TestCollectAndDecideTellFailuresApart(t *testing.T) {
	tests := []struct {
		name  string
		fault func(Observations) Observations
		want  verdict
	}{
		{
			"a healthy compute is running", func(o Observations) Observations { return o },
			verdict{Running, config.ResponseNone, nil, ReasonHealthy},
		},
		{"a compute that loses power is dead and fenced", func(o Observations) Observations {
			o.Members["cmp1"] = false
			cut(o, "cmp1", "mgmt", "tenant", "storage")
			o.Records["cmp1"] = rec("cmp1", 10*time.Second, ServiceOK)
			return o
		}, verdict{Dead, config.ResponseFence, nil, ReasonAllLost}},
		{"a compute whose kernel hangs (no heartbeat file at all since a reinstall) is dead", func(o Observations) Observations {
			o.Members["cmp1"] = false
			cut(o, "cmp1", "mgmt", "tenant", "storage")
			delete(o.Records, "cmp1")
			return o
		}, verdict{Dead, config.ResponseFence, nil, ReasonAllLost}},
		{"a compute whose pacemaker_remoted crashed answers pings: restart", func(o Observations) Observations {
			o.Members["cmp1"] = false
			r := rec("cmp1", time.Second, ServiceDown)
			r.ServiceDownSince = now0.Add(-5 * time.Second)
			o.Records["cmp1"] = r
			return o
		}, verdict{ServiceUnreachable, ResponseRestart, nil, ReasonServiceUnreachable}},
		{"a compute whose pacemaker_remoted stays down past the restart timeout is fenced", func(o Observations) Observations {
			o.Members["cmp1"] = false
			r := rec("cmp1", time.Second, ServiceDown)
			r.ServiceDownSince = now0.Add(-61 * time.Second)
			o.Records["cmp1"] = r
			return o
		}, verdict{ServiceUnreachable, config.ResponseFence, nil, ReasonRestartTimedOut}},
		{"a compute whose management cable is pulled keeps its VMs: disable", func(o Observations) Observations {
			o.Members["cmp1"] = false
			cut(o, "cmp1", "mgmt")
			return o
		}, verdict{ManagementLost, config.ResponseDisable, []string{"mgmt"}, ReasonManagementLost}},
		{"a compute cut from every network but still on shared storage (another path) is isolated", func(o Observations) Observations {
			o.Members["cmp1"] = false
			cut(o, "cmp1", "mgmt", "tenant", "storage")
			return o
		}, verdict{Isolated, config.ResponseDisable, nil, ReasonIsolated}},
		{"a compute that lost its tenant network is migrated", func(o Observations) Observations {
			cut(o, "cmp1", "tenant")
			return o
		}, verdict{Degraded, config.ResponseMigrate, []string{"tenant"}, ReasonNetworksLost}},
		{"a compute that lost its storage network and heartbeat is fenced", func(o Observations) Observations {
			cut(o, "cmp1", "storage")
			o.Records["cmp1"] = rec("cmp1", 30*time.Second, ServiceOK)
			return o
		}, verdict{Degraded, config.ResponseFence, []string{"storage", StorageHeartbeat}, ReasonNetworksLost}},
		{"a compute that loses power while the shared storage is down for everyone is unknown, not dead", func(o Observations) Observations {
			o.Members["cmp1"] = false
			cut(o, "cmp1", "mgmt", "tenant", "storage")
			for h := range o.Records {
				o.Records[h] = rec(h, time.Minute, ServiceOK)
			}
			return o
		}, verdict{Undecided, config.ResponseAlert, nil, ReasonEvidenceUnknown}},
		{"a compute that loses power while the reader cannot read the shared directory is unknown", func(o Observations) Observations {
			o.Members["cmp1"] = false
			cut(o, "cmp1", "mgmt", "tenant", "storage")
			o.Records = nil
			o.StorageErr = errors.New("read /var/lib/computeha/shared: timed out after 2s")
			return o
		}, verdict{Undecided, config.ResponseAlert, nil, ReasonEvidenceUnknown}},
		{"a compute the whole cluster sees lost while Pacemaker cannot be read is unknown", func(o Observations) Observations {
			o.Members = nil
			cut(o, "cmp1", "mgmt", "tenant", "storage")
			o.Records["cmp1"] = rec("cmp1", time.Minute, ServiceOK)
			return o
		}, verdict{Undecided, config.ResponseAlert, nil, ReasonMembershipUnknown}},
		{"the storage being down for everyone does not degrade a member", func(o Observations) Observations {
			for h := range o.Records {
				o.Records[h] = rec(h, time.Minute, ServiceOK)
			}
			return o
		}, verdict{Running, config.ResponseNone, nil, ReasonHealthy}},
		{"another compute whose own tenant link is down does not make this one lost", func(o Observations) Observations {
			cut(o, "cmp2", "tenant")
			return o
		}, verdict{Running, config.ResponseNone, nil, ReasonHealthy}},
	}
	cfg := testConfig()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := Decide(cfg, Collect(cfg, tt.fault(cluster()), "cmp1"))
			if diff := cmp.Diff(tt.want, verdictOf(d)); diff != "" {
				t.Errorf("decision (-want +got):\n%s\nreason: %s", diff, d.Reason.Text)
			}
		})
	}
}

func TestCollect(t *testing.T) {
	type ev struct {
		Membership, Mgmt, Tenant, StorageNet, Heartbeat, Service Signal
		DownFor                                                  time.Duration
	}
	tests := []struct {
		name   string
		change func(*config.Health, Observations) Observations
		want   ev
	}{
		{
			"a healthy host's evidence is all ok", func(_ *config.Health, o Observations) Observations { return o },
			ev{OK, OK, OK, OK, OK, OK, 0},
		},
		{"a host Pacemaker does not list has unknown membership", func(_ *config.Health, o Observations) Observations {
			delete(o.Members, "cmp1")
			return o
		}, ev{Unknown, OK, OK, OK, OK, OK, 0}},
		{"one observer seeing the host is enough for ok, whatever the others say", func(_ *config.Health, o Observations) Observations {
			cut(o, "cmp1", "tenant")
			o.Reach["ctl2"]["tenant"]["cmp1"] = OK
			return o
		}, ev{OK, OK, OK, OK, OK, OK, 0}},
		{"a loss reported by one observer that reaches another host is lost", func(_ *config.Health, o Observations) Observations {
			for _, h := range []string{"ctl1", "ctl2", "ctl3", "cmp2"} {
				delete(o.Reach[h]["tenant"], "cmp1")
			}
			o.Reach["ctl1"]["tenant"]["cmp1"] = Lost
			return o
		}, ev{OK, OK, Lost, OK, OK, OK, 0}},
		{"a loss reported by an observer that reaches nobody else proves nothing", func(_ *config.Health, o Observations) Observations {
			for _, h := range []string{"ctl2", "ctl3", "cmp2"} {
				delete(o.Reach[h]["tenant"], "cmp1")
			}
			for p := range o.Reach["ctl1"]["tenant"] {
				o.Reach["ctl1"]["tenant"][p] = Lost
			}
			return o
		}, ev{OK, OK, Unknown, OK, OK, OK, 0}},
		{"an observer reaching only itself and the host proves nothing", func(_ *config.Health, o Observations) Observations {
			o.Reach = map[string]map[string]map[string]Signal{
				"ctl1": {"tenant": {"ctl1": OK, "cmp1": Lost}},
			}
			return o
		}, ev{OK, Unknown, Unknown, Unknown, OK, OK, 0}},
		{"the view of an observer Pacemaker reports offline is stale and ignored", func(_ *config.Health, o Observations) Observations {
			cut(o, "cmp1", "tenant")
			o.Members["cmp2"] = false
			o.Reach["cmp2"]["tenant"]["cmp1"] = OK
			return o
		}, ev{OK, OK, Lost, OK, OK, OK, 0}},
		{"the host's own view of itself is ignored", func(_ *config.Health, o Observations) Observations {
			cut(o, "cmp1", "tenant")
			o.Reach["cmp1"]["tenant"]["cmp1"] = OK
			return o
		}, ev{OK, OK, Lost, OK, OK, OK, 0}},
		{"no observer at all is unknown on every network", func(_ *config.Health, o Observations) Observations {
			o.Reach = nil
			return o
		}, ev{OK, Unknown, Unknown, Unknown, OK, OK, 0}},
		{"a stale heartbeat while others are fresh is lost, and the service unknown", func(_ *config.Health, o Observations) Observations {
			o.Records["cmp1"] = rec("cmp1", 6*time.Second+time.Millisecond, ServiceDown)
			return o
		}, ev{OK, OK, OK, OK, Lost, Unknown, 0}},
		{"a heartbeat as old as stale_after plus the clock skew is still fresh", func(_ *config.Health, o Observations) Observations {
			o.Records["cmp1"] = rec("cmp1", 6*time.Second, ServiceOK)
			return o
		}, ev{OK, OK, OK, OK, OK, OK, 0}},
		{"a missing heartbeat while others are fresh is lost", func(_ *config.Health, o Observations) Observations {
			delete(o.Records, "cmp1")
			return o
		}, ev{OK, OK, OK, OK, Lost, Unknown, 0}},
		{"a missing heartbeat while nobody else's is fresh is unknown", func(_ *config.Health, o Observations) Observations {
			o.Records = map[string]Record{"ctl1": rec("ctl1", time.Hour, ServiceOK)}
			return o
		}, ev{OK, OK, OK, OK, Unknown, Unknown, 0}},
		{"every heartbeat stale (storage down for everyone) is unknown", func(_ *config.Health, o Observations) Observations {
			for h := range o.Records {
				o.Records[h] = rec(h, 10*time.Second, ServiceOK)
			}
			return o
		}, ev{OK, OK, OK, OK, Unknown, Unknown, 0}},
		{"an unreadable shared directory is unknown", func(_ *config.Health, o Observations) Observations {
			o.StorageErr = errors.New("timed out")
			return o
		}, ev{OK, OK, OK, OK, Unknown, Unknown, 0}},
		{"a heartbeat file that could not be decoded is unknown, not lost", func(_ *config.Health, o Observations) Observations {
			delete(o.Records, "cmp1")
			o.RecordErrs = map[string]error{"cmp1": errors.New("heartbeat record: unexpected EOF")}
			return o
		}, ev{OK, OK, OK, OK, Unknown, Unknown, 0}},
		{"another host's record under this host's name is unknown", func(_ *config.Health, o Observations) Observations {
			o.Records["cmp1"] = rec("cmp2", 0, ServiceOK)
			return o
		}, ev{OK, OK, OK, OK, Unknown, Unknown, 0}},
		{"without a shared directory the storage is unknown", func(c *config.Health, o Observations) Observations {
			c.SharedDir = ""
			return o
		}, ev{OK, OK, OK, OK, Unknown, Unknown, 0}},
		{"a heartbeat from the future within the clock skew is fresh", func(_ *config.Health, o Observations) Observations {
			o.Records["cmp1"] = rec("cmp1", -2*time.Second, ServiceOK)
			return o
		}, ev{OK, OK, OK, OK, OK, OK, 0}},
		{"a heartbeat further in the future than the clock skew is unknown", func(_ *config.Health, o Observations) Observations {
			o.Records["cmp1"] = rec("cmp1", -2*time.Second-time.Millisecond, ServiceOK)
			return o
		}, ev{OK, OK, OK, OK, Unknown, Unknown, 0}},
		{"only future heartbeats elsewhere do not prove the storage works", func(_ *config.Health, o Observations) Observations {
			for h := range o.Records {
				o.Records[h] = rec(h, -time.Hour, ServiceOK)
			}
			delete(o.Records, "cmp1")
			return o
		}, ev{OK, OK, OK, OK, Unknown, Unknown, 0}},
		{"a fresh record of a down service gives how long it has been down", func(_ *config.Health, o Observations) Observations {
			r := rec("cmp1", time.Second, ServiceDown)
			r.ServiceDownSince = now0.Add(-42 * time.Second)
			o.Records["cmp1"] = r
			return o
		}, ev{OK, OK, OK, OK, OK, Lost, 42 * time.Second}},
		{"a down-since ahead of the reader's clock counts as just now", func(_ *config.Health, o Observations) Observations {
			r := rec("cmp1", 0, ServiceDown)
			r.ServiceDownSince = now0.Add(time.Second)
			o.Records["cmp1"] = r
			return o
		}, ev{OK, OK, OK, OK, OK, Lost, 0}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := testConfig()
			obs := tt.change(cfg, cluster())
			e := Collect(cfg, obs, "cmp1")
			got := ev{e.Membership, e.Networks["mgmt"], e.Networks["tenant"], e.Networks["storage"], e.Storage, e.Service, e.ServiceDownFor}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("evidence (-want +got):\n%s", diff)
			}
			if e.Host != "cmp1" || len(e.Networks) != 3 {
				t.Errorf("evidence %+v: want host cmp1 and the three configured networks", e)
			}
		})
	}
}

// feed observes raw decisions one second apart from start, and returns the confirmed state
// after each.
func feed(tr *Tracker, start time.Time, raws ...Decision) []State {
	var got []State
	for i, d := range raws {
		c, _ := tr.Observe(start.Add(time.Duration(i)*time.Second), d)
		got = append(got, c.State)
	}
	return got
}

func raw(s State, r Response, nets ...string) Decision {
	return Decision{Host: "cmp1", State: s, Response: r, Networks: nets, Reason: Reason{Code: ReasonCode(s), Text: string(s)}}
}

var (
	running  = raw(Running, config.ResponseNone)
	dead     = raw(Dead, config.ResponseFence)
	isolated = raw(Isolated, config.ResponseDisable)
	unreach  = raw(ServiceUnreachable, ResponseRestart)
	undec    = raw(Undecided, config.ResponseAlert)
)

// repeat returns ds n times over.
func repeat(n int, ds ...Decision) []Decision {
	var out []Decision
	for range n {
		out = append(out, ds...)
	}
	return out
}

func TestTrackerHysteresis(t *testing.T) {
	tests := []struct {
		name    string
		confirm time.Duration
		raws    []Decision
		want    []State
	}{
		{
			"a first state is confirmed only once it held for confirm", 2 * time.Second,
			[]Decision{running, running, running, running},
			[]State{Undecided, Undecided, Running, Running},
		},
		{
			"a steady change to dead is confirmed after confirm", 2 * time.Second,
			[]Decision{running, running, running, dead, dead, dead, dead},
			[]State{Undecided, Undecided, Running, Running, Running, Dead, Dead},
		},
		{
			"a steady change back to running needs the same persistence", 2 * time.Second,
			[]Decision{dead, dead, dead, running, running, running},
			[]State{Undecided, Undecided, Dead, Dead, Dead, Running},
		},
		{
			"a signal toggling every second never changes a running host", 2 * time.Second,
			append([]Decision{running, running, running}, repeat(30, dead, running)...),
			append([]State{Undecided, Undecided, Running}, repeatStates(60, Running)...),
		},
		{
			"a host flapping between dead and isolated is never confirmed either", 2 * time.Second,
			append([]Decision{running, running, running}, repeat(30, dead, isolated)...),
			append([]State{Undecided, Undecided, Running}, repeatStates(60, Running)...),
		},
		{
			"a change interrupted once starts its wait again", 3 * time.Second,
			[]Decision{running, running, running, running, dead, dead, running, dead, dead, dead, dead},
			[]State{Undecided, Undecided, Undecided, Running, Running, Running, Running, Running, Running, Running, Dead},
		},
		{
			"a zero confirm follows every raw decision", 0,
			[]Decision{running, dead, running, isolated},
			[]State{Running, Dead, Running, Isolated},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := testConfig()
			cfg.Confirm = tt.confirm
			got := feed(NewTracker(cfg), now0, tt.raws...)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("confirmed states (-want +got):\n%s", diff)
			}
		})
	}
}

func repeatStates(n int, s State) []State {
	out := make([]State, n)
	for i := range out {
		out[i] = s
	}
	return out
}

func TestTrackerReportsChangesAndKeepsTheLatestText(t *testing.T) {
	cfg := testConfig()
	tr := NewTracker(cfg)
	first, changed := tr.Observe(now0, running)
	if changed || first.Reason.Code != ReasonUnconfirmed || first.Response != config.ResponseNone || first.Fence() {
		t.Errorf("first observation = %+v, %v; want unconfirmed with response none, unchanged", first, changed)
	}
	tr.Observe(now0.Add(time.Second), running)
	if _, changed := tr.Observe(now0.Add(2*time.Second), running); !changed {
		t.Error("the first confirmation was not reported as a change")
	}
	newer := running
	newer.Reason.Text = "newer text"
	got, changed := tr.Observe(now0.Add(3*time.Second), newer)
	if changed || got.Reason.Text != "newer text" {
		t.Errorf("a new text alone: got %q, changed %v; want the new text, unchanged", got.Reason.Text, changed)
	}
	// Degraded on tenant, then on tenant and storage: a different decision, confirmed anew.
	deg := raw(Degraded, config.ResponseMigrate, "tenant")
	deg2 := raw(Degraded, config.ResponseFence, "tenant", "storage")
	states := []struct {
		d    Decision
		want Response
		ch   bool
	}{
		{deg, config.ResponseNone, false},
		{deg, config.ResponseNone, false},
		{deg, config.ResponseMigrate, true},
		{deg2, config.ResponseMigrate, false},
		{deg2, config.ResponseMigrate, false},
		{deg2, config.ResponseFence, true},
	}
	for i, s := range states {
		got, changed := tr.Observe(now0.Add(time.Duration(4+i)*time.Second), s.d)
		if got.Response != s.want || changed != s.ch {
			t.Errorf("step %d: response %s, changed %v; want %s, %v", i, got.Response, changed, s.want, s.ch)
		}
	}
	if c, ok := tr.Confirmed("cmp1"); !ok || c.Response != config.ResponseFence {
		t.Errorf("Confirmed(cmp1) = %+v, %v", c, ok)
	}
	if _, ok := tr.Confirmed("cmp9"); ok {
		t.Error("Confirmed(cmp9) found a host never observed")
	}
	tr.Forget("cmp1")
	if _, ok := tr.Confirmed("cmp1"); ok {
		t.Error("Forget(cmp1) kept the host")
	}
}

func TestTrackerKeepsHostsApart(t *testing.T) {
	cfg := testConfig()
	tr := NewTracker(cfg)
	other := running
	other.Host = "cmp2"
	for i := range 5 {
		at := now0.Add(time.Duration(i) * time.Second)
		tr.Observe(at, dead)
		tr.Observe(at, other)
	}
	a, _ := tr.Confirmed("cmp1")
	b, _ := tr.Confirmed("cmp2")
	if a.State != Dead || b.State != Running {
		t.Errorf("cmp1 %s, cmp2 %s; want dead, running", a.State, b.State)
	}
}

func TestTrackerEscalatesAServiceUnreachableHostAfterTheRestartTimeout(t *testing.T) {
	cfg := testConfig() // confirm 2s, restart timeout 60s
	tr := NewTracker(cfg)
	onset := now0
	type step struct {
		at      time.Duration
		d       Decision
		want    Response
		code    ReasonCode
		changed bool
	}
	steps := []step{
		{0, unreach, config.ResponseNone, ReasonUnconfirmed, false},
		{time.Second, unreach, config.ResponseNone, ReasonUnconfirmed, false},
		{2 * time.Second, unreach, ResponseRestart, ReasonCode(ServiceUnreachable), true},
		// A blip of unknown evidence shorter than confirm neither changes the state nor
		// restarts the clock.
		{30 * time.Second, undec, ResponseRestart, ReasonCode(ServiceUnreachable), false},
		{31 * time.Second, unreach, ResponseRestart, ReasonCode(ServiceUnreachable), false},
		{59 * time.Second, unreach, ResponseRestart, ReasonCode(ServiceUnreachable), false},
		{60 * time.Second, unreach, config.ResponseFence, ReasonRestartTimedOut, true},
		{61 * time.Second, unreach, config.ResponseFence, ReasonRestartTimedOut, false},
		{62 * time.Second, running, config.ResponseFence, ReasonRestartTimedOut, false},
		{63 * time.Second, running, config.ResponseFence, ReasonRestartTimedOut, false},
		{64 * time.Second, running, config.ResponseNone, ReasonCode(Running), true},
	}
	for _, s := range steps {
		got, changed := tr.Observe(onset.Add(s.at), s.d)
		if got.Response != s.want || got.Reason.Code != s.code || changed != s.changed {
			t.Errorf("at %s: %s/%s changed %v; want %s/%s changed %v (%s)", s.at, got.Response, got.Reason.Code, changed,
				s.want, s.code, s.changed, got.Reason.Text)
		}
		since, ok := tr.Since("cmp1")
		inState := got.State == ServiceUnreachable
		if ok != inState || (ok && !since.Equal(onset)) {
			t.Errorf("at %s: Since = %s, %v; want %s, %v", s.at, since, ok, onset, inState)
		}
	}
}

func TestTrackerWithoutRestartTimeoutNeverEscalates(t *testing.T) {
	cfg := testConfig()
	cfg.RestartTimeout = 0
	tr := NewTracker(cfg)
	for i := range 600 {
		if got, _ := tr.Observe(now0.Add(time.Duration(i)*time.Second), unreach); got.Fence() {
			t.Fatalf("fenced after %ds without a restart timeout", i)
		}
	}
}

// BenchmarkDecide measures one pass of the health loop over 100 hosts, each seen by the 99
// others on three networks: Collect and Decide for every host.
func BenchmarkDecide(b *testing.B) {
	cfg := testConfig()
	obs := Observations{
		Now: now0, Members: map[string]bool{}, Reach: map[string]map[string]map[string]Signal{}, Records: map[string]Record{},
	}
	var hosts []string
	for i := range 100 {
		hosts = append(hosts, fmt.Sprintf("host%03d", i))
	}
	for _, h := range hosts {
		obs.Members[h] = true
		obs.Records[h] = rec(h, time.Second, ServiceOK)
		obs.Reach[h] = map[string]map[string]Signal{}
		for _, n := range cfg.Networks {
			view := map[string]Signal{}
			for _, p := range hosts {
				if p != h {
					view[p] = OK
				}
			}
			obs.Reach[h][n.Name] = view
		}
	}
	// One dead host, so that the loss path (every observer consulted) is measured too.
	obs.Members[hosts[7]] = false
	delete(obs.Records, hosts[7])
	for _, o := range hosts {
		for _, n := range cfg.Networks {
			if o != hosts[7] {
				obs.Reach[o][n.Name][hosts[7]] = Lost
			}
		}
	}
	b.ResetTimer()
	for b.Loop() {
		for _, h := range hosts {
			d := Decide(cfg, Collect(cfg, obs, h))
			if h == hosts[7] && d.State != Dead {
				b.Fatalf("%s: %s", h, d.Reason.Text)
			}
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(hosts)), "ns/host")
}

// member returns d as decided while Pacemaker had the host.
func member(d Decision) Decision {
	d.Member = true
	return d
}

func TestTrackerHoldsTheLossesOfAHostThatJustRejoined(t *testing.T) {
	storageLost := member(raw(Degraded, config.ResponseFence, "storage"))
	up := member(running)
	tests := []struct {
		name  string
		grace time.Duration
		raws  []Decision
		want  []State
	}{
		{
			// Dead for 3 s (confirmed at 2 s); back at 3 s with its storage network still seen
			// lost: held for the 10 s grace (3..12 s), then confirmed 2 s later (15 s).
			"a fenced host back with stale losses is not judged on them before the grace ends", 10 * time.Second,
			slices.Concat(repeat(3, dead), repeat(14, storageLost)),
			slices.Concat([]State{Undecided, Undecided, Dead}, repeatStates(12, Dead), []State{Degraded, Degraded}),
		},
		{
			"a host back and running is confirmed running as usual", 10 * time.Second,
			slices.Concat(repeat(3, dead), repeat(3, up)),
			[]State{Undecided, Undecided, Dead, Dead, Dead, Running},
		},
		{
			// Back at 3 s and running at once: its grace is over, so the storage loss at 5 s is
			// confirmed 2 s later (7 s), not held until 13 s.
			"a host seen running since its return is judged at once on a new loss", 10 * time.Second,
			slices.Concat(repeat(3, dead), repeat(2, up), repeat(4, storageLost)),
			[]State{Undecided, Undecided, Dead, Dead, Dead, Dead, Dead, Degraded, Degraded},
		},
		{
			// Back at 3 s, lost again at 5 s, back again at 8 s: its grace starts again (8..17 s),
			// so its service still down is confirmed at 20 s, not at 14 s as from its first return.
			"a host lost again during the grace is given a new grace when it answers again", 10 * time.Second,
			slices.Concat(repeat(3, dead), repeat(2, storageLost), repeat(3, dead), repeat(13, unreach)),
			slices.Concat([]State{Undecided, Undecided, Dead}, repeatStates(17, Dead), []State{ServiceUnreachable}),
		},
		{
			// The daemon fenced it for its storage network; powered on, it answers on its
			// management network while its cluster service starts and the other hosts still see
			// its storage network lost (Decide says degraded, fence), then it runs: dead until
			// it runs, never degraded or service-unreachable on the way.
			"a fenced host that answers before it rejoins is not judged on its boot", 10 * time.Second,
			slices.Concat(repeat(3, dead), repeat(2, raw(Degraded, config.ResponseFence, "storage")), repeat(3, unreach), repeat(3, up)),
			slices.Concat([]State{Undecided, Undecided, Dead}, repeatStates(7, Dead), []State{Running}),
		},
		{
			// Answers again at 3 s, its service never comes up: held until 13 s, confirmed 2 s later.
			"a fenced host whose service does not come back is judged once the grace ends", 10 * time.Second,
			slices.Concat(repeat(3, dead), repeat(13, unreach)),
			slices.Concat([]State{Undecided, Undecided, Dead}, repeatStates(12, Dead), []State{ServiceUnreachable}),
		},
		{
			// Back at 3 s, seen running at 6 s (not yet confirmed): the grace is over, so its
			// service lost again at 8 s is confirmed 2 s later.
			"a host back is held only until it is seen running", 10 * time.Second,
			slices.Concat(repeat(3, dead), repeat(3, unreach), repeat(2, up), repeat(3, unreach)),
			slices.Concat([]State{Undecided, Undecided, Dead}, repeatStates(5, Dead), []State{Dead, Dead, ServiceUnreachable}),
		},
		{
			"a host lost after a rejoin from service-unreachable is judged at once", 10 * time.Second,
			slices.Concat(repeat(3, up), repeat(3, unreach), repeat(2, storageLost), repeat(3, dead)),
			slices.Concat([]State{Undecided, Undecided, Running, Running, Running, ServiceUnreachable}, repeatStates(3, ServiceUnreachable), []State{ServiceUnreachable, Dead}),
		},
		{
			"a host first seen degraded (the daemon just started) is not held", 10 * time.Second,
			repeat(3, storageLost),
			[]State{Undecided, Undecided, Degraded},
		},
		{
			"a host degraded while it stays a member is not held", 10 * time.Second,
			slices.Concat(repeat(3, up), repeat(3, storageLost)),
			[]State{Undecided, Undecided, Running, Running, Running, Degraded},
		},
		{
			"a zero grace holds nothing", 0,
			slices.Concat(repeat(3, dead), repeat(3, storageLost)),
			[]State{Undecided, Undecided, Dead, Dead, Dead, Degraded},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := testConfig()
			cfg.Confirm = 2 * time.Second
			cfg.RejoinGrace = tt.grace
			got := feed(NewTracker(cfg), now0, tt.raws...)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("confirmed states (-want +got):\n%s", diff)
			}
		})
	}
}

func TestDecideTellsWhetherTheHostWasAMember(t *testing.T) {
	cfg := testConfig()
	for _, m := range []Signal{OK, Lost, Unknown} {
		ev := Evidence{Host: "cmp1", Membership: m, Networks: map[string]Signal{}}
		if got, want := Decide(cfg, ev).Member, m == OK; got != want {
			t.Errorf("membership %s: Member = %v, want %v", m, got, want)
		}
	}
}

func TestWithGossipALossReportCountsOnlyFromAnObserverReachingAPeerItProbesItself(t *testing.T) {
	cfg := testConfig()
	cfg.Watchdog.Observers = []string{"ctl1", "ctl2", "ctl3"}
	cfg.Gossip = config.Gossip{KeyFile: "/k", Port: 7946, Seeds: cfg.Watchdog.Observers}
	// cmp1, cut from tenant, still holds cmp2 alive in its gossip (it has not probed it yet)
	// and sees every controller lost there; the controllers themselves do not report (their
	// views of tenant are gone), and cmp2 says nothing of ctl1.
	obs := cluster()
	for _, o := range []string{"ctl2", "ctl3"} {
		delete(obs.Reach[o], "tenant")
	}
	obs.Reach["cmp1"]["tenant"] = map[string]Signal{"ctl1": Lost, "ctl2": Lost, "ctl3": Lost, "cmp2": OK}
	obs.Reach["ctl1"]["tenant"] = map[string]Signal{"cmp1": Lost, "cmp2": OK, "ctl2": OK, "ctl3": OK}
	obs.Reach["cmp2"]["tenant"] = map[string]Signal{"cmp1": Lost}
	if got := Collect(cfg, obs, "ctl1").Networks["tenant"]; got != Unknown {
		t.Errorf("ctl1 on tenant: %s, want unknown: cmp1's report counts only if it reaches a controller it probes", got)
	}
	// Without gossip, cmp2 was probed by cmp1 itself: the report counts.
	cfg.Gossip = config.Gossip{}
	if got := Collect(cfg, obs, "ctl1").Networks["tenant"]; got != Lost {
		t.Errorf("ctl1 on tenant without gossip: %s, want lost", got)
	}
}
