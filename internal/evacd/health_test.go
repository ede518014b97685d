package evacd

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/computeha/computeha/crm"
	"github.com/computeha/computeha/internal/clock"
	"github.com/computeha/computeha/internal/config"
	"github.com/computeha/computeha/internal/evacstate"
	"github.com/computeha/computeha/internal/health"
	"github.com/computeha/computeha/internal/history"
	"github.com/computeha/computeha/internal/openstack"
)

// judgeTable is the injected Collect+Decide: each host's evidence and raw decision as the
// test sets them; running when unset.
type judgeTable struct {
	mu    sync.Mutex
	ev    map[string]health.Evidence
	dec   map[string]health.Decision
	asked map[string]int
}

func (j *judgeTable) judge(_ *config.Health, _ health.Observations, host string) (health.Evidence, health.Decision) {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.asked[host]++
	if d, ok := j.dec[host]; ok {
		return j.ev[host], d
	}
	return running()
}

func (j *judgeTable) set(host string, ev health.Evidence, d health.Decision) {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.ev[host], j.dec[host] = ev, d
}

func nets(mgmt, tenant, storage health.Signal) map[string]health.Signal {
	return map[string]health.Signal{"mgmt": mgmt, "tenant": tenant, "storage": storage}
}

func running() (health.Evidence, health.Decision) {
	return health.Evidence{Membership: health.OK, Networks: nets(health.OK, health.OK, health.OK), Storage: health.OK, Service: health.OK},
		health.Decision{State: health.Running, Response: config.ResponseNone, Reason: health.Reason{Code: health.ReasonHealthy, Text: "running"}}
}

func isolated() (health.Evidence, health.Decision) {
	return health.Evidence{Membership: health.Lost, Networks: nets(health.Lost, health.Lost, health.Lost), Storage: health.OK, Service: health.OK},
		health.Decision{State: health.Isolated, Response: config.ResponseDisable, Reason: health.Reason{Code: health.ReasonIsolated, Text: "every network lost, heartbeat fresh"}}
}

// back is a host whose evidence is running again while Pacemaker has not reconnected it.
func back(storage, service health.Signal) (health.Evidence, health.Decision) {
	return health.Evidence{Membership: health.Lost, Networks: nets(health.OK, health.OK, health.OK), Storage: storage, Service: service},
		health.Decision{State: health.ServiceUnreachable, Response: health.ResponseRestart, Reason: health.Reason{Code: health.ReasonServiceUnreachable, Text: "answers on the network"}}
}

func serviceDown() (health.Evidence, health.Decision) {
	return health.Evidence{Membership: health.Lost, Networks: nets(health.OK, health.OK, health.OK), Storage: health.OK, Service: health.Lost},
		health.Decision{State: health.ServiceUnreachable, Response: health.ResponseRestart, Reason: health.Reason{Code: health.ReasonServiceUnreachable, Text: "service down"}}
}

func storageLost() (health.Evidence, health.Decision) {
	return health.Evidence{Membership: health.OK, Networks: nets(health.OK, health.OK, health.OK), Storage: health.Lost, Service: health.Unknown},
		health.Decision{State: health.Degraded, Response: config.ResponseFence, Networks: []string{health.StorageHeartbeat}, Reason: health.Reason{Code: health.ReasonHeartbeatLost, Text: "heartbeat stale"}}
}

func tenantLost() (health.Evidence, health.Decision) {
	return health.Evidence{Membership: health.OK, Networks: nets(health.OK, health.Lost, health.OK), Storage: health.OK, Service: health.OK},
		health.Decision{State: health.Degraded, Response: config.ResponseMigrate, Networks: []string{"tenant"}, Reason: health.Reason{Code: health.ReasonNetworksLost, Text: "tenant lost"}}
}

func dead() (health.Evidence, health.Decision) {
	return health.Evidence{Membership: health.Lost, Networks: nets(health.Lost, health.Lost, health.Lost), Storage: health.Lost, Service: health.Unknown},
		health.Decision{State: health.Dead, Response: config.ResponseFence, Reason: health.Reason{Code: health.ReasonAllLost, Text: "all lost"}}
}

// healthWorld is a daemon whose health loop the test drives tick by tick on a fake clock.
type healthWorld struct {
	*world
	judge *judgeTable
	loop  *healthLoop

	clk clock.Clock
}

func newHealthWorld(t *testing.T) *healthWorld {
	t.Helper()
	return healthWorldOf(newWorld(t, "auto", ""))
}

// healthWorldOf drives w's daemon's health loop. The health section names nodes cmp1-cmp4 and
// ctl1, whatever Nova calls them.
func healthWorldOf(w *world) *healthWorld {
	h := config.DefaultHealth()
	h.SharedDir = "/var/lib/computeha/shared"
	h.Networks = []config.Network{
		{Name: "mgmt", Management: true, Response: config.ResponseDisable},
		{Name: "tenant", Response: config.ResponseMigrate},
		{Name: "storage", Response: config.ResponseFence},
	}
	h.Hosts = map[string]map[string]string{}
	for i, n := range []string{"cmp1", "cmp2", "cmp3", "cmp4", "ctl1"} {
		h.Hosts[n] = map[string]string{"mgmt": fmt.Sprintf("192.0.2.%d", i+1), "tenant": fmt.Sprintf("198.51.100.%d", i+1), "storage": fmt.Sprintf("203.0.113.%d", i+1)}
	}
	w.cfg.Health = h
	hw := &healthWorld{
		world: w,
		judge: &judgeTable{ev: map[string]health.Evidence{}, dec: map[string]health.Decision{}, asked: map[string]int{}},
		clk:   clock.Real{}, // the bubble's
	}
	for _, n := range []string{"cmp1", "cmp2", "cmp3", "cmp4"} {
		hw.cluster.AddNode(n, crm.Node{Type: crm.NodeRemote, Online: true})
	}
	hw.cluster.AddNode("ctl1", crm.Node{Type: crm.NodeMember, Online: true, IsDC: true})
	d := New(Options{
		Config: w.cfg, Cluster: w.cluster, Nova: w.nova, History: w.store, Owner: "ctl1",
		Clock: hw.clk, Poll: time.Millisecond,
		Observer: ObserverFunc(func(context.Context) (health.Observations, error) { return health.Observations{Now: hw.clock()}, nil }),
		Judge:    hw.judge.judge,
	})
	w.daemon = d
	hw.loop = newHealthLoop(d)
	return hw
}

func (hw *healthWorld) clock() time.Time { return hw.clk.Now() }

// step advances the clock by d, runs one round and waits for the responses it started.
func (hw *healthWorld) step(d time.Duration) {
	time.Sleep(d) // the bubble's time
	hw.loop.tick(context.Background())
	hw.loop.wait()
}

// steps runs n rounds one second apart.
func (hw *healthWorld) steps(n int) {
	for range n {
		hw.step(time.Second)
	}
}

// novaCalls lists the fake Nova's calls of the given methods.
func (hw *healthWorld) novaCalls(methods ...string) []string {
	var out []string
	for _, c := range hw.nova.Calls() {
		if slices.Contains(methods, strings.Fields(c)[0]) {
			out = append(out, c)
		}
	}
	return out
}

func (hw *healthWorld) service(t *testing.T, host string) openstack.Service {
	t.Helper()
	s, err := hw.nova.FindComputeService(context.Background(), host)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// hostEvents lists host's history events of kind, as "summary [code]".
func (hw *healthWorld) hostEvents(t *testing.T, host string, kind history.Kind) []string {
	t.Helper()
	evs, err := hw.store.Query(context.Background(), history.Filter{Host: host, Kind: kind})
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range evs {
		out = append(out, e.Summary+" ["+string(e.Reason.Code)+"]")
	}
	return out
}

// noEvacuation fails when anything was evacuated or forced down: a health decision never does.
func (hw *healthWorld) noEvacuation(t *testing.T) {
	t.Helper()
	if c := hw.novaCalls("Evacuate", "ForceDown"); len(c) > 0 {
		t.Errorf("a health decision evacuated or forced down: %v", c)
	}
}

func TestAnIsolatedHostIsDisabledOnlyOnceConfirmedAndNeverFenced(t *testing.T) {
	bubble(t, func(t *testing.T) {
		hw := newHealthWorld(t)
		hw.steps(3) // every host confirmed running
		hw.judge.setFn("cmp1", isolated)
		hw.cluster.SetNode("cmp1", func(n *crm.Node) { n.Online, n.Unclean = false, true })

		hw.step(time.Second) // raw isolated, not confirmed
		hw.step(time.Second) // held 1 s of the 2 s
		if c := hw.novaCalls("DisableService"); len(c) != 0 {
			t.Fatalf("disabled before the state was confirmed: %v", c)
		}
		if e := hw.hostEvents(t, "cmp1", history.KindDecision); len(e) != 1 {
			t.Fatalf("decisions before confirmation: %v; want only the first running", e)
		}
		hw.steps(5)
		svc := hw.service(t, "cmp1")
		if svc.Enabled() || svc.DisabledReason != "computeha: health: isolated" {
			t.Errorf("cmp1's service after the isolation was confirmed: %+v", svc)
		}
		if c := hw.novaCalls("DisableService"); len(c) != 1 {
			t.Errorf("DisableService calls: %v, want exactly one", c)
		}
		if fences, confirms := hw.cluster.Fences(), hw.cluster.Confirms(); len(fences)+len(confirms) != 0 {
			t.Errorf("an isolated host was fenced %v or confirmed %v", fences, confirms)
		}
		hw.noEvacuation(t)
		want := []string{"cmp1 is running: none [healthy]", "cmp1 is isolated: disable [isolated]", "disabled cmp1 in Nova [health-disabled]"}
		if diff := cmp.Diff(want, hw.hostEvents(t, "cmp1", history.KindDecision)); diff != "" {
			t.Errorf("cmp1's decisions in the history (-want +got):\n%s", diff)
		}
		if diff := cmp.Diff([]string{"cmp1 is isolated [isolated]"}, hw.hostEvents(t, "cmp1", history.KindAlert)); diff != "" {
			t.Errorf("alerts (-want +got):\n%s", diff)
		}
		if got := hw.loop.d.AlertState().Health; got["cmp1"] != "isolated" || got["cmp2"] != "running" {
			t.Errorf("the alerts' view of the hosts: %v", got)
		}
	})
}

func TestARecoveredHostIsConfirmedToPacemakerOnlyWhenEveryCheckPasses(t *testing.T) {
	for _, tt := range []struct {
		name        string
		back        func() (health.Evidence, health.Decision)
		setup       func(hw *healthWorld)
		wantConfirm bool
	}{
		{
			name: "a host back with management, a fresh heartbeat and its service up is confirmed",
			back: func() (health.Evidence, health.Decision) { return back(health.OK, health.OK) }, wantConfirm: true,
		},
		{
			name: "a host whose storage signal is unknown is not confirmed",
			back: func() (health.Evidence, health.Decision) { return back(health.Unknown, health.OK) },
		},
		{
			name: "a host whose cluster service is still down is not confirmed",
			back: func() (health.Evidence, health.Decision) { return back(health.OK, health.Lost) },
		},
		{
			name: "a host whose management network is still lost is not confirmed",
			back: func() (health.Evidence, health.Decision) {
				ev, d := back(health.OK, health.OK)
				ev.Networks["mgmt"] = health.Lost
				d.State, d.Response = health.ManagementLost, config.ResponseDisable
				return ev, d
			},
		},
		{
			name:  "a host Pacemaker fenced during the isolation is not confirmed",
			back:  func() (health.Evidence, health.Decision) { return back(health.OK, health.OK) },
			setup: func(hw *healthWorld) { hw.cluster.Fenced("cmp1", hw.clock()) },
		},
		{
			// Its own confirmation earlier in the trouble, or an operator's, ran no device.
			name: "a host confirmed by hand during the trouble is confirmed again",
			back: func() (health.Evidence, health.Decision) { return back(health.OK, health.OK) },
			setup: func(hw *healthWorld) {
				hw.cluster.AddFencing(crm.FenceEvent{Action: "off", Target: "cmp1", Status: "success", Delegate: crm.ManualDelegate, Completed: hw.clock()})
			},
			wantConfirm: true,
		},
		{
			name: "a host whose recovery ended during the trouble is not confirmed",
			back: func() (health.Evidence, health.Decision) { return back(health.OK, health.OK) },
			setup: func(hw *healthWorld) {
				_ = hw.cluster.SetAttribute(context.Background(), "cmp1", evacstate.Attribute,
					evacstate.State{Phase: evacstate.Done, Since: hw.clock()}.String(), crm.Permanent)
			},
		},
		{
			name: "a host whose recovery is not over is not confirmed, however old its mark",
			back: func() (health.Evidence, health.Decision) { return back(health.OK, health.OK) },
			setup: func(hw *healthWorld) {
				_ = hw.cluster.SetAttribute(context.Background(), "cmp1", evacstate.Attribute,
					evacstate.State{Phase: evacstate.Failed, Since: hw.clock().Add(-time.Hour)}.String(), crm.Permanent)
			},
		},
		{
			// Its pacemaker-remoted died (and was restarted) long after an earlier power loss
			// whose recovery left the mark done: Pacemaker waits for a fencing the gate refuses.
			name: "a host whose last recovery ended before the trouble is confirmed",
			back: func() (health.Evidence, health.Decision) { return back(health.OK, health.OK) },
			setup: func(hw *healthWorld) {
				_ = hw.cluster.SetAttribute(context.Background(), "cmp1", evacstate.Attribute,
					evacstate.State{Phase: evacstate.Done, Since: hw.clock().Add(-time.Hour)}.String(), crm.Permanent)
			},
			wantConfirm: true,
		},
		{
			name:  "a host Pacemaker no longer shows unclean is not confirmed",
			back:  func() (health.Evidence, health.Decision) { return back(health.OK, health.OK) },
			setup: func(hw *healthWorld) { hw.cluster.SetNode("cmp1", func(n *crm.Node) { n.Unclean = false }) },
		},
	} {
		t.Run(tt.name, func(t *testing.T) {
			bubble(t, func(t *testing.T) {
				hw := newHealthWorld(t)
				hw.steps(3)
				hw.judge.setFn("cmp1", isolated)
				hw.cluster.SetNode("cmp1", func(n *crm.Node) { n.Online, n.Unclean = false, true })
				hw.steps(5)
				if tt.setup != nil {
					tt.setup(hw)
				}
				hw.judge.setFn("cmp1", tt.back)
				hw.steps(6)
				confirms := hw.cluster.Confirms()
				if got := len(confirms) > 0; got != tt.wantConfirm {
					t.Fatalf("confirmations %v, want confirmed %v", confirms, tt.wantConfirm)
				}
				if tt.wantConfirm {
					if len(confirms) != 1 {
						t.Errorf("confirmed %d times, want once", len(confirms))
					}
					ev := hw.hostEvents(t, "cmp1", history.KindFencing)
					if len(ev) != 1 || !strings.Contains(ev[0], "[confirm-fenced]") {
						t.Errorf("fencing events %v, want the confirmation with its reason", ev)
					}
				}
				if fences := hw.cluster.Fences(); len(fences) != 0 {
					t.Errorf("fenced: %v", fences)
				}
				hw.noEvacuation(t)
			})
		})
	}
}

func (j *judgeTable) setFn(host string, f func() (health.Evidence, health.Decision)) {
	ev, d := f()
	j.set(host, ev, d)
}

func TestARunningHostIsEnabledAgainOnlyWhenTheDisableWasTheIsolations(t *testing.T) {
	for _, tt := range []struct {
		name        string
		before      string // the service's disabled reason before the isolation ("" enabled)
		wantEnabled bool
		wantReason  string
	}{
		{name: "the isolation's own disable is undone", wantEnabled: true},
		{name: "an operator's disable stays", before: "hardware maintenance", wantReason: "hardware maintenance"},
		{name: "an evacuation's disable stays", before: "computeha: evacuated by computeha at 2026-03-01T09:00:00Z", wantReason: "computeha: evacuated by computeha at 2026-03-01T09:00:00Z"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			bubble(t, func(t *testing.T) {
				hw := newHealthWorld(t)
				if tt.before != "" {
					_, _ = hw.nova.DisableService(context.Background(), hw.service(t, "cmp1").ID, tt.before)
				}
				hw.steps(3)
				hw.judge.setFn("cmp1", isolated)
				hw.cluster.SetNode("cmp1", func(n *crm.Node) { n.Online, n.Unclean = false, true })
				hw.steps(5)
				hw.judge.setFn("cmp1", func() (health.Evidence, health.Decision) { return back(health.OK, health.OK) })
				hw.steps(5)
				// The confirmation lets Pacemaker reconnect it.
				hw.cluster.SetNode("cmp1", func(n *crm.Node) { n.Online, n.Unclean = true, false })
				hw.judge.setFn("cmp1", running)
				hw.steps(5)
				svc := hw.service(t, "cmp1")
				if svc.Enabled() != tt.wantEnabled || svc.DisabledReason != tt.wantReason {
					t.Errorf("cmp1's service: enabled %v reason %q; want enabled %v reason %q", svc.Enabled(), svc.DisabledReason, tt.wantEnabled, tt.wantReason)
				}
				enables := hw.novaCalls("EnableService")
				if want := map[bool]int{true: 1, false: 0}[tt.wantEnabled]; len(enables) != want {
					t.Errorf("EnableService calls %v, want %d", enables, want)
				}
			})
		})
	}
}

func TestLostStorageWhilePacemakerSeesTheHostAsksForFencingOnceAndEvacuatesNothing(t *testing.T) {
	// The daemon asks for the action Pacemaker's own fencing of the host will ask for, so
	// that the fencer merges the two requests.
	for _, tt := range []struct{ stonithAction, want string }{
		{"", "reboot"}, {"reboot", "reboot"}, {"off", "off"}, {"poweroff", "off"},
	} {
		t.Run("stonith-action="+tt.stonithAction, func(t *testing.T) {
			bubble(t, func(t *testing.T) {
				hw := newHealthWorld(t)
				if tt.stonithAction != "" {
					hw.cluster.SetProperty("stonith-action", tt.stonithAction)
				}
				hw.steps(3)
				hw.judge.setFn("cmp2", storageLost)
				hw.steps(2)
				if fences := hw.cluster.Fences(); len(fences) != 0 {
					t.Fatalf("fenced before the state was confirmed: %v", fences)
				}
				hw.steps(6)
				fences := hw.cluster.Fences()
				if diff := cmp.Diff([]string{"cmp2 " + tt.want}, fences); diff != "" {
					t.Errorf("fencing requests (-want +got):\n%s", diff)
				}
				want := []string{"asking Pacemaker to fence cmp2 (" + tt.want + ") [health-fence]", "fencing of cmp2 requested by the health check succeeded [health-fenced]"}
				if diff := cmp.Diff(want, hw.hostEvents(t, "cmp2", history.KindFencing)); diff != "" {
					t.Errorf("fencing events (-want +got):\n%s", diff)
				}
				if svc := hw.service(t, "cmp2"); !svc.Enabled() {
					t.Errorf("the health loop disabled cmp2 itself: %+v", svc)
				}
				hw.noEvacuation(t)
			})
		})
	}
}

// A remote node whose connection Pacemaker holds is fenced by Pacemaker itself, its connection
// failed: asked of the fencer, the fencing would be followed by Pacemaker's own.
func TestLostStorageOfARemoteNodeHasPacemakerFenceItThroughItsConnection(t *testing.T) {
	bubble(t, func(t *testing.T) {
		hw := newHealthWorld(t)
		hw.cluster.SetRemoteConnection("cmp2", true)
		hw.steps(3)
		hw.judge.setFn("cmp2", storageLost)
		hw.steps(8)
		if diff := cmp.Diff([]string{"cmp2 connection"}, hw.cluster.Fences()); diff != "" {
			t.Errorf("fencing requests (-want +got):\n%s", diff)
		}
		want := []string{"asking Pacemaker to fence cmp2 (its connection on ctl1 failed) [health-fence]", "fencing of cmp2 requested by the health check succeeded [health-fenced]"}
		if diff := cmp.Diff(want, hw.hostEvents(t, "cmp2", history.KindFencing)); diff != "" {
			t.Errorf("fencing events (-want +got):\n%s", diff)
		}
		hw.noEvacuation(t)
	})
}

// The fencing drops the host's connection: the same trouble is then seen as another fence
// decision (no longer a member, other networks named). It asks for no second fencing.
func TestADecisionThatStillSaysFenceAfterTheFencingAsksForNoOther(t *testing.T) {
	bubble(t, func(t *testing.T) {
		hw := newHealthWorld(t)
		hw.cluster.SetRemoteConnection("cmp2", true)
		hw.steps(3)
		hw.judge.setFn("cmp2", storageLost)
		hw.steps(8)
		hw.cluster.SetRemoteConnection("cmp2", false)
		hw.judge.setFn("cmp2", func() (health.Evidence, health.Decision) {
			return health.Evidence{Membership: health.Lost, Networks: nets(health.OK, health.OK, health.Lost), Storage: health.Lost, Service: health.Unknown},
				health.Decision{State: health.Degraded, Response: config.ResponseFence, Networks: []string{"storage"}, Reason: health.Reason{Code: health.ReasonNetworksLost, Text: "storage lost, not a member"}}
		})
		hw.steps(8)
		if diff := cmp.Diff([]string{"cmp2 connection"}, hw.cluster.Fences()); diff != "" {
			t.Errorf("fencing requests (-want +got):\n%s", diff)
		}
		// Running again, and then the same trouble: fenced again.
		hw.judge.setFn("cmp2", running)
		hw.steps(8)
		hw.judge.setFn("cmp2", storageLost)
		hw.steps(8)
		if got := len(hw.cluster.Fences()); got != 2 {
			t.Errorf("%d fencing requests once the host ran again and lost its storage again, want 2: %v", got, hw.cluster.Fences())
		}
	})
}

func TestAFencingPacemakerRefusesIsAskedAgainLaterNotEveryRound(t *testing.T) {
	bubble(t, func(t *testing.T) {
		hw := newHealthWorld(t)
		hw.cluster.FenceErr = fmt.Errorf("stonith_admin: %w", crm.ErrTimeout)
		hw.steps(3)
		hw.judge.setFn("cmp2", storageLost)
		hw.steps(10)
		if fences := hw.cluster.Fences(); len(fences) != 1 {
			t.Fatalf("fencing requests within 10 s: %v, want one", fences)
		}
		hw.step(health.Retry)
		if fences := hw.cluster.Fences(); len(fences) != 2 {
			t.Errorf("fencing requests after the retry delay: %v, want two", fences)
		}
	})
}

func TestADeadHostIsOnlyRecordedSincePacemakerFencesIt(t *testing.T) {
	bubble(t, func(t *testing.T) {
		hw := newHealthWorld(t)
		hw.steps(3)
		hw.judge.setFn("cmp3", dead)
		hw.cluster.SetNode("cmp3", func(n *crm.Node) { n.Online, n.Unclean = false, true })
		hw.steps(8)
		if fences, confirms := hw.cluster.Fences(), hw.cluster.Confirms(); len(fences)+len(confirms) != 0 {
			t.Errorf("a dead host got fencing %v or confirmations %v from the health loop", fences, confirms)
		}
		if c := hw.novaCalls("DisableService", "EnableService", "LiveMigrate"); len(c) != 0 {
			t.Errorf("Nova calls for a dead host: %v", c)
		}
		want := []string{"cmp3 is running: none [healthy]", "cmp3 is dead: fence (Pacemaker fences it) [all-signals-lost]"}
		if diff := cmp.Diff(want, hw.hostEvents(t, "cmp3", history.KindDecision)); diff != "" {
			t.Errorf("decisions (-want +got):\n%s", diff)
		}
		hw.noEvacuation(t)
	})
}

func TestADeadHostPacemakerStoppedFencingIsFencedByTheDaemonAfterAMinute(t *testing.T) {
	for _, tt := range []struct {
		name      string
		unclean   bool
		wantFence []string
	}{
		{name: "still unclean a minute after the decision: fenced once", unclean: true, wantFence: []string{"cmp3 reboot"}},
		{name: "fenced by Pacemaker (offline and clean): left alone", unclean: false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			bubble(t, func(t *testing.T) {
				hw := newHealthWorld(t)
				hw.steps(3)
				hw.judge.setFn("cmp3", dead)
				hw.cluster.SetNode("cmp3", func(n *crm.Node) { n.Online, n.Unclean = false, tt.unclean })
				hw.steps(50)
				if fences := hw.cluster.Fences(); len(fences) != 0 {
					t.Fatalf("fenced %v within 50 s of the failure, while Pacemaker may be fencing", fences)
				}
				hw.steps(30)
				fences := hw.cluster.Fences()
				if diff := cmp.Diff(tt.wantFence, fences); diff != "" {
					t.Errorf("fencing requests (-want +got):\n%s", diff)
				}
				alerts := hw.hostEvents(t, "cmp3", history.KindAlert)
				if got := len(alerts); got != len(tt.wantFence) || (got == 1 && !strings.Contains(alerts[0], "dead-not-fenced")) {
					t.Errorf("alerts %v, want %d saying why the daemon fences", alerts, len(tt.wantFence))
				}
				hw.noEvacuation(t)
			})
		})
	}
}

func TestALostTenantNetworkLiveMigratesTheHAVMsInsideTheSegmentThenDisablesTheHost(t *testing.T) {
	bubble(t, func(t *testing.T) {
		hw := newHealthWorld(t)
		hw.boot("cmp1", 3, true)
		hw.boot("cmp1", 2, false)
		hw.steps(3)
		hw.judge.setFn("cmp1", tenantLost)
		hw.steps(6)

		for id, s := range hw.servers {
			got := hw.hostOf(t, id)
			ha := strings.HasSuffix(s.Name, "hatrue")
			switch {
			case ha && (got.Host == "cmp1" || got.Status != "ACTIVE" || !slices.Contains([]string{"cmp2", "cmp3", "cmp4"}, got.Host)):
				t.Errorf("HA VM %s is %s on %s, want ACTIVE on another host of the segment", s.Name, got.Status, got.Host)
			case !ha && got.Host != "cmp1":
				t.Errorf("non-HA VM %s moved to %s", s.Name, got.Host)
			}
		}
		if n := len(hw.novaCalls("LiveMigrate")); n != 3 {
			t.Errorf("%d live migrations, want 3", n)
		}
		moves, err := hw.store.Moves(context.Background(), history.Filter{Host: "cmp1"})
		if err != nil {
			t.Fatal(err)
		}
		ok, left := 0, 0
		for _, m := range moves {
			switch {
			case m.Result == history.MoveSucceeded && m.From == "cmp1" && m.To != "" && m.To != "cmp1" && !m.End.IsZero() && m.Method == "live-migrate":
				ok++
			case m.Result == history.MoveSkipped && m.To == "" && strings.HasPrefix(m.Error, "no HA"):
				left++ // the VMs without HA, left where they are, on record
			}
		}
		if ok != 3 || left != 2 || len(moves) != 5 {
			t.Errorf("moves in the history: %+v; want 3 live migrations from cmp1 and the 2 VMs without HA left", moves)
		}
		svc := hw.service(t, "cmp1")
		if svc.Enabled() || svc.DisabledReason != "computeha: health: tenant network lost" || svc.ForcedDown {
			t.Errorf("cmp1's service after the migration: %+v", svc)
		}
		incs, err := hw.store.Incidents(context.Background(), history.Filter{Host: "cmp1"})
		if err != nil || len(incs) != 1 || incs[0].Outcome != history.OutcomeRecovered {
			t.Errorf("incidents: %+v (%v)", incs, err)
		}
		hw.noEvacuation(t)

		// The tenant network comes back: the migrate response's disable stays for an operator.
		hw.judge.setFn("cmp1", running)
		hw.steps(5)
		if hw.service(t, "cmp1").Enabled() {
			t.Errorf("cmp1 was enabled again after a migration")
		}
	})
}

func TestAServiceThatDoesNotComeBackGetsTheHostFencedAfterTheRestartTimeout(t *testing.T) {
	for _, tt := range []struct {
		name      string
		unclean   bool
		wantFence bool
	}{
		{name: "Pacemaker wants the host fenced: it is fenced once the timeout passed", unclean: true, wantFence: true},
		{name: "Pacemaker shows the host offline but clean: it is left and an alert says why", unclean: false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			bubble(t, func(t *testing.T) {
				hw := newHealthWorld(t)
				hw.steps(3)
				hw.judge.setFn("cmp4", serviceDown)
				hw.cluster.SetNode("cmp4", func(n *crm.Node) { n.Online, n.Unclean = false, tt.unclean })
				hw.steps(50)
				if fences := hw.cluster.Fences(); len(fences) != 0 {
					t.Fatalf("fenced %v within 50 s, before the restart timeout", fences)
				}
				hw.steps(20)
				fences := hw.cluster.Fences()
				if tt.wantFence {
					if diff := cmp.Diff([]string{"cmp4 reboot"}, fences); diff != "" {
						t.Errorf("fencing after the restart timeout (-want +got):\n%s", diff)
					}
				} else {
					if len(fences) != 0 {
						t.Errorf("fenced %v a host Pacemaker does not want fenced", fences)
					}
					if a := hw.hostEvents(t, "cmp4", history.KindAlert); len(a) != 1 || !strings.Contains(a[0], "restart-timeout-clean") {
						t.Errorf("alerts %v, want one saying why it is not fenced", a)
					}
				}
				hw.noEvacuation(t)
			})
		})
	}
}

func TestNothingIsDoneWithoutQuorumAndTheResponseFollowsWhenItReturns(t *testing.T) {
	bubble(t, func(t *testing.T) {
		hw := newHealthWorld(t)
		hw.steps(3)
		hw.cluster.SetQuorate(false)
		hw.judge.setFn("cmp1", isolated)
		hw.steps(10)
		if c := hw.novaCalls("DisableService"); len(c) != 0 {
			t.Fatalf("acted without quorum: %v", c)
		}
		if g := hw.hostEvents(t, "cmp1", history.KindGuard); len(g) != 1 {
			t.Errorf("guard events %v, want one", g)
		}
		hw.cluster.SetQuorate(true)
		hw.steps(1)
		if c := hw.novaCalls("DisableService"); len(c) != 1 {
			t.Errorf("after quorum returned, DisableService calls %v, want one", c)
		}
	})
}

func TestAHostInMaintenanceIsSkippedAndRecordedOnce(t *testing.T) {
	for _, tt := range []struct {
		name   string
		set    func(hw *healthWorld)
		others bool // the other hosts are judged
	}{
		{"a node in maintenance", func(hw *healthWorld) { hw.cluster.SetNode("cmp1", func(n *crm.Node) { n.Maintenance = true }) }, true},
		{"a node in standby", func(hw *healthWorld) { hw.cluster.SetNode("cmp1", func(n *crm.Node) { n.Standby = true }) }, true},
		{"a cluster in maintenance mode", func(hw *healthWorld) { hw.cluster.SetMaintenanceMode(true) }, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			bubble(t, func(t *testing.T) {
				hw := newHealthWorld(t)
				tt.set(hw)
				hw.judge.setFn("cmp1", isolated)
				hw.steps(10)
				if c := hw.novaCalls("DisableService"); len(c) != 0 {
					t.Errorf("acted on a host in maintenance: %v", c)
				}
				if m := hw.hostEvents(t, "cmp1", history.KindMaintenance); len(m) != 1 || !strings.Contains(m[0], "suspended") {
					t.Errorf("maintenance events %v, want one", m)
				}
				// Alerts are ignored in maintenance: the host has no state to raise one on.
				if got := hw.loop.d.AlertState().Health; tt.others && got["cmp2"] != "running" {
					t.Errorf("the alerts' view of the hosts: %v, want cmp2 running", got)
				} else if s, ok := got["cmp1"]; ok {
					t.Errorf("cmp1 in maintenance has state %q for the alerts", s)
				}
			})
		})
	}
}

func TestAFlappingHostTriggersNoResponse(t *testing.T) {
	bubble(t, func(t *testing.T) {
		hw := newHealthWorld(t)
		hw.steps(3)
		for i := range 20 {
			if i%2 == 0 {
				hw.judge.setFn("cmp1", isolated)
			} else {
				hw.judge.setFn("cmp1", running)
			}
			hw.step(time.Second)
		}
		if c := hw.novaCalls("DisableService", "EnableService"); len(c) != 0 {
			t.Errorf("a host flapping faster than the confirmation time got %v", c)
		}
		if d := hw.hostEvents(t, "cmp1", history.KindDecision); len(d) != 1 {
			t.Errorf("decisions %v, want only the first running", d)
		}
	})
}

func TestOnlyComputesOfASegmentAreJudged(t *testing.T) {
	bubble(t, func(t *testing.T) {
		hw := newHealthWorld(t)
		hw.steps(3)
		hw.judge.mu.Lock()
		defer hw.judge.mu.Unlock()
		if n := hw.judge.asked["ctl1"]; n != 0 {
			t.Errorf("the controller ctl1 was judged %d times", n)
		}
		if n := hw.judge.asked["cmp1"]; n != 3 {
			t.Errorf("cmp1 was judged %d times in 3 rounds", n)
		}
	})
}

func TestAHostThatJoinedByGossipIsJudgedFromWhenTheEvidenceNamesItOn(t *testing.T) {
	bubble(t, func(t *testing.T) {
		hw := newHealthWorld(t)
		delete(hw.loop.cfg.Hosts, "cmp4")
		// cmp4's record is read in the first round only (its file then removed, as the
		// evidence of a dead host can go); cmp9 writes one too but is no compute of a segment.
		round := 0
		hw.loop.obs = ObserverFunc(func(context.Context) (health.Observations, error) {
			round++
			obs := health.Observations{Now: hw.clock(), Records: map[string]health.Record{"cmp9": {}}}
			if round == 1 {
				obs.Records["cmp4"] = health.Record{Host: "cmp4"}
			}
			return obs, nil
		})
		hw.steps(3)
		hw.judge.mu.Lock()
		defer hw.judge.mu.Unlock()
		if n := hw.judge.asked["cmp4"]; n != 3 {
			t.Errorf("cmp4, not listed, was judged %d times in 3 rounds: want every round from the first that named it", n)
		}
		if n := hw.judge.asked["cmp9"]; n != 0 {
			t.Errorf("cmp9, no compute of a segment, was judged %d times", n)
		}
		if n := hw.judge.asked["cmp1"]; n != 3 {
			t.Errorf("cmp1 was judged %d times in 3 rounds", n)
		}
	})
}

func TestTheDaemonRunsTheHealthLoopWhenTheConfigurationEnablesIt(t *testing.T) {
	bubble(t, func(t *testing.T) {
		hw := newHealthWorld(t)
		hw.cfg.Health.Interval, hw.cfg.Health.Confirm = 5*time.Millisecond, 20*time.Millisecond
		hw.judge.setFn("cmp1", isolated)
		d := New(Options{
			Config: hw.cfg, Cluster: hw.cluster, Nova: hw.nova, History: hw.store, Owner: "ctl1", Poll: 10 * time.Millisecond,
			Observer: ObserverFunc(func(context.Context) (health.Observations, error) { return health.Observations{Now: time.Now()}, nil }),
			Judge:    hw.judge.judge,
		})
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		done := make(chan error, 1)
		go func() { done <- d.Run(ctx, nil) }()
		for ctx.Err() == nil && hw.service(t, "cmp1").Enabled() {
			time.Sleep(10 * time.Millisecond)
		}
		cancel()
		<-done
		if svc := hw.service(t, "cmp1"); svc.Enabled() || svc.DisabledReason != "computeha: health: isolated" {
			t.Errorf("cmp1's service while the daemon ran: %+v", svc)
		}
	})
}

func TestTheDefaultObserverReadsReachabilityFromAttrdAndMembershipFromCrmMon(t *testing.T) {
	bubble(t, func(t *testing.T) {
		hw := newHealthWorld(t)
		hw.cfg.Health.SharedDir = t.TempDir()
		ctx := context.Background()
		for _, a := range []struct{ node, network, value string }{
			{"ctl1", "mgmt", "cmp1=lost cmp2=ok"},
			{"cmp2", "mgmt", "cmp1=lost ctl1=ok"},
			{"cmp2", "storage", "cmp1=ok ctl1=ok"},
			// Deleted (attrd keeps it empty): no view.
			{"cmp3", "storage", ""},
			// Not a configured network: never read.
			{"cmp3", "backup", "cmp1=lost"},
		} {
			if err := hw.cluster.SetAttribute(ctx, a.node, health.ReachAttribute(a.network), a.value, crm.Private); err != nil {
				t.Fatal(err)
			}
		}
		hw.cluster.SetNode("cmp1", func(n *crm.Node) { n.Online = false })
		d := New(Options{Config: hw.cfg, Cluster: hw.cluster, Nova: hw.nova, History: hw.store, Owner: "ctl1", Clock: hw.clk})
		obs, err := newHealthLoop(d).obs.Observe(ctx)
		if err != nil {
			t.Fatal(err)
		}
		wantReach := map[string]map[string]map[string]health.Signal{
			"ctl1": {"mgmt": {"cmp1": health.Lost, "cmp2": health.OK}},
			"cmp2": {
				"mgmt":    {"cmp1": health.Lost, "ctl1": health.OK},
				"storage": {"cmp1": health.OK, "ctl1": health.OK},
			},
		}
		if diff := cmp.Diff(wantReach, obs.Reach); diff != "" {
			t.Errorf("reachability (-want +got):\n%s", diff)
		}
		wantMembers := map[string]bool{"cmp1": false, "cmp2": true, "cmp3": true, "cmp4": true, "ctl1": true}
		if diff := cmp.Diff(wantMembers, obs.Members); diff != "" {
			t.Errorf("membership (-want +got):\n%s", diff)
		}
		if obs.StorageErr != nil || !obs.Now.Equal(hw.clock()) {
			t.Errorf("storage error %v, time %s: want none, the daemon's clock", obs.StorageErr, obs.Now)
		}
	})
}
