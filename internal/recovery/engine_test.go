package recovery

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/computeha/computeha/internal/config"
	"github.com/computeha/computeha/internal/history"
	"github.com/computeha/computeha/internal/openstack"
	"github.com/computeha/computeha/internal/reserve"
)

func TestAFencedHostsHAVMsAreEvacuatedInsideTheSegmentOnceAndTheOthersLeft(t *testing.T) {
	bubble(t, func(t *testing.T) {
		w := newWorld(t, "auto", "")
		vms := w.boot("cmp1", ha(6)...)
		others := w.boot("cmp1", vm{name: "plain", image: "img"})
		w.fenceCmp1()
		rep := w.run("cmp1", HostFenced)
		if n := rep.Count(Recovered); n != 6 {
			t.Fatalf("%d VMs recovered, want 6: %+v", n, rep)
		}
		ev := w.evacuations()
		for _, s := range vms {
			got := w.server(s.ID)
			if got.Host == "cmp1" || got.Status != "ACTIVE" || !slices.Contains([]string{"cmp2", "cmp3", "cmp4"}, got.Host) {
				t.Errorf("%s is %s on %s", s.Name, got.Status, got.Host)
			}
			if ev[s.ID] != 1 {
				t.Errorf("%s evacuated %d times, want once", s.Name, ev[s.ID])
			}
			if r := result(rep, s.Name); r.Method != Evacuate || r.To.NovaHost != got.Host {
				t.Errorf("report of %s: %+v", s.Name, r)
			}
		}
		if r := result(rep, "plain"); r.Result != Left || r.Reason.Code != CodeNoHA || ev[others[0].ID] != 0 {
			t.Errorf("a VM without HA: %+v, evacuated %d times", r, ev[others[0].ID])
		}
		// The plan spread them by free capacity: two per host.
		per := map[string]int{}
		for _, s := range vms {
			per[w.server(s.ID).Host]++
		}
		for h, n := range per {
			if n != 2 {
				t.Errorf("%s took %d VMs, want 2 each: %v", h, n, per)
			}
		}
		if got := len(w.moves(history.MoveSucceeded)); got != 6 {
			t.Errorf("%d moves recorded succeeded, want 6", got)
		}
		for _, m := range w.moves(history.MoveSucceeded) {
			if m.Method != string(Evacuate) {
				t.Errorf("move of %s recorded with method %q", m.VMName, m.Method)
			}
		}
	})
}

func TestEachVMIsRecoveredByItsClass(t *testing.T) {
	bubble(t, func(t *testing.T) {
		w := newWorld(t, "auto", "")
		vms := w.boot("cmp1",
			vm{name: "pet", ha: true, image: "img"},
			vm{name: "cattle-volume", ha: true, meta: map[string]string{"computeha_recovery": "recreate"}},
			vm{name: "cattle-image", ha: true, image: "img", meta: map[string]string{"computeha_recovery": "recreate"}},
			vm{name: "cattle-image-ok", ha: true, image: "img", meta: map[string]string{"computeha_recovery": "recreate-losing-local-data"}},
			vm{name: "leave-me", ha: true, image: "img", meta: map[string]string{"computeha_recovery": "none"}},
		)
		w.nova.SetServerSpec(vms[1].ID, openstack.ServerSpec{
			Name: "cattle-volume", ProjectID: "p1", FlavorID: "m1.small", FlavorName: "m1.small",
			BootVolume: "vol-1", Metadata: map[string]string{"computeha_recovery": "recreate"},
		})
		w.fenceCmp1()
		rep := w.run("cmp1", HostFenced)
		for _, c := range []struct {
			name   string
			method MethodName
			result Result
		}{
			{"pet", Evacuate, Recovered},
			{"cattle-volume", Recreate, Recovered},
			{"cattle-image", Evacuate, Recovered},
			{"cattle-image-ok", Recreate, Recovered},
			{"leave-me", None, Left},
		} {
			r := result(rep, c.name)
			if r.Method != c.method || r.Result != c.result {
				t.Errorf("%s: %s %s, want %s %s (%v)", c.name, r.Method, r.Result, c.method, c.result, r.Reason)
			}
		}
		if r := result(rep, "leave-me"); r.Reason.Code != CodeClassNone {
			t.Errorf("the none VM's reason: %+v", r.Reason)
		}
		if !w.decided(CodeLocalDataKept) {
			t.Error("recreating a VM with local data was not refused on record")
		}
		for _, name := range []string{"cattle-volume", "cattle-image-ok"} {
			r := result(rep, name)
			if r.ID == r.Server.ID {
				t.Errorf("%s kept its id %s: not recreated", name, r.ID)
			}
			s := w.server(r.ID)
			if s.Name != name || s.Host == "cmp1" || s.Status != "ACTIVE" || s.Flavor.OriginalName != "m1.small" {
				t.Errorf("recreated %s: %+v", name, s)
			}
			if _, err := w.nova.Server(context.Background(), r.Server.ID); !openstack.IsNotFound(err) {
				t.Errorf("the old %s is still there: %v", name, err)
			}
		}
		if !w.decided(CodeRecreated) {
			t.Error("no recreation recorded")
		}
		if s := w.server(result(rep, "leave-me").Server.ID); s.Host != "cmp1" {
			t.Errorf("the none VM moved to %s", s.Host)
		}
	})
}

func TestARunningHostGivesUpRunningVMsLiveAndStoppedOnesCold(t *testing.T) {
	bubble(t, func(t *testing.T) {
		w := newWorld(t, "auto", "")
		w.boot("cmp2",
			vm{name: "running", ha: true, image: "img"},
			vm{name: "stopped", ha: true, image: "img", status: "SHUTOFF"},
			vm{name: "no-live", ha: true, image: "img", meta: map[string]string{"computeha_recovery": "cold-migrate"}},
			vm{name: "broken", ha: true, image: "img", status: "ERROR"},
			vm{name: "plain", image: "img"},
		)
		rep := w.run("cmp2", HostDegraded)
		for _, c := range []struct {
			name, status string
			method       MethodName
		}{{"running", "ACTIVE", LiveMigrate}, {"stopped", "SHUTOFF", ColdMigrate}, {"no-live", "ACTIVE", ColdMigrate}} {
			r := result(rep, c.name)
			s := w.server(r.Server.ID)
			if r.Result != Recovered || r.Method != c.method || s.Host == "cmp2" || s.Status != c.status {
				t.Errorf("%s: %s by %s, now %s on %s; want recovered by %s, %s elsewhere", c.name, r.Result, r.Method, s.Status, s.Host, c.method, c.status)
			}
		}
		if r := result(rep, "broken"); r.Result != Left || r.Reason.Code != CodeNotMovable {
			t.Errorf("a VM in ERROR on a running host: %+v", r)
		}
		if r := result(rep, "plain"); r.Result != Left || w.server(r.Server.ID).Host != "cmp2" {
			t.Errorf("a VM without HA: %+v", r)
		}
		if n := len(w.evacuations()); n != 0 {
			t.Errorf("%d evacuations from a running host", n)
		}
	})
}

func TestAnAntiAffinityMemberNeverJoinsAnotherAndAnUnsatisfiableOneIsReportedNotMoved(t *testing.T) {
	bubble(t, func(t *testing.T) {
		w := newWorld(t, "auto", "")
		a := w.boot("cmp1", vm{name: "a1", ha: true, image: "img"}, vm{name: "lonely", ha: true, image: "img"})
		b := w.boot("cmp2", vm{name: "a2", ha: true, image: "img"})
		l2 := w.boot("cmp2", vm{name: "l2", image: "img"})
		l3 := w.boot("cmp3", vm{name: "l3", image: "img"})
		l4 := w.boot("cmp4", vm{name: "l4", image: "img"})
		w.roomy("cmp2", 64) // the roomiest host is the one the plan must not pick
		w.nova.AddServerGroup(openstack.ServerGroup{ID: "g-anti", Name: "anti", ProjectID: "p1", Policy: openstack.PolicyAntiAffinity, Members: []string{a[0].ID, b[0].ID}})
		w.nova.AddServerGroup(openstack.ServerGroup{
			ID: "g-full", Name: "full", ProjectID: "p1", Policy: openstack.PolicyAntiAffinity,
			Members: []string{a[1].ID, l2[0].ID, l3[0].ID, l4[0].ID},
		})
		w.fenceCmp1()
		rep := w.run("cmp1", HostFenced)
		if r := result(rep, "a1"); r.Result != Recovered || r.To.NovaHost == "cmp2" {
			t.Errorf("anti-affinity member a1: %+v, want recovered anywhere but cmp2", r)
		}
		r := result(rep, "lonely")
		if r.Result != Unrecoverable || r.Reason.Code != Code("anti-affinity-unsatisfiable") {
			t.Errorf("a member every host refuses: %+v, want unrecoverable", r)
		}
		if n := w.evacuations()[a[1].ID]; n != 0 {
			t.Errorf("the unrecoverable member was evacuated %d times", n)
		}
		if s := w.server(a[1].ID); s.Host != "cmp1" {
			t.Errorf("the unrecoverable member is on %s", s.Host)
		}
	})
}

func TestAGroupMemberBootedSinceTheLastRefreshCountsInThePlan(t *testing.T) {
	bubble(t, func(t *testing.T) {
		w := newWorld(t, "auto", "", "  refresh: 1m")
		a := w.boot("cmp1", vm{name: "a1", ha: true, image: "img"})
		b := w.boot("cmp2", vm{name: "a2", image: "img"})
		w.nova.AddServerGroup(openstack.ServerGroup{ID: "g", Name: "anti", ProjectID: "p1", Policy: openstack.PolicyAntiAffinity, Members: []string{a[0].ID, b[0].ID}})
		if err := w.eng.Refresh(t.Context()); err != nil {
			t.Fatal(err)
		}
		// Booted into the group after the refresh, on the host the plan would pick otherwise.
		c := w.boot("cmp3", vm{name: "a3", image: "img"})
		w.roomy("cmp3", 64)
		w.nova.AddServerGroup(openstack.ServerGroup{ID: "g", Name: "anti", ProjectID: "p1", Policy: openstack.PolicyAntiAffinity, Members: []string{a[0].ID, b[0].ID, c[0].ID}})
		w.fenceCmp1()
		rep := w.run("cmp1", HostFenced)
		if r := result(rep, "a1"); r.Result != Recovered || r.To.NovaHost != "cmp4" {
			t.Errorf("a1: %+v, want recovered on cmp4, the only host without a member", r)
		}
	})
}

func TestAHostDisabledSinceTheLastRefreshIsNoTarget(t *testing.T) {
	bubble(t, func(t *testing.T) {
		w := newWorld(t, "auto", "", "  refresh: 1m")
		vms := w.boot("cmp1", ha(3)...)
		w.roomy("cmp3", 64) // the plan's pick while cmp3 is enabled
		if err := w.eng.Refresh(t.Context()); err != nil {
			t.Fatal(err)
		}
		svc, err := w.nova.FindComputeService(t.Context(), "cmp3")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.nova.DisableService(t.Context(), svc.ID, "operator: repair"); err != nil {
			t.Fatal(err)
		}
		w.fenceCmp1()
		rep := w.run("cmp1", HostFenced)
		for _, v := range vms {
			if r := result(rep, v.Name); r.Result != Recovered || r.To.NovaHost == "cmp3" {
				t.Errorf("%s: %+v, want recovered, not on cmp3 disabled after the refresh", v.Name, r)
			}
		}
		// Nova refuses a rebuild on a disabled host: planned there, a VM would be recovered
		// all the same, on its retry.
		if w.decided(CodeRetryElsewhere) {
			t.Error("a move was retried elsewhere: it was sent to the disabled host first")
		}
		for _, m := range w.moves(history.MoveSucceeded) {
			if m.Attempts != 1 {
				t.Errorf("move %+v took %d attempts, want 1", m, m.Attempts)
			}
		}
		if n := w.count("ComputeServices"); n != 1 {
			t.Errorf("%d listings of the compute services, want 1 (the hypervisors from the refresh)", n)
		}
	})
}

func TestTwoSoftAntiAffinityMembersEndOnTwoHosts(t *testing.T) {
	bubble(t, func(t *testing.T) {
		w := newWorld(t, "auto", "")
		vms := w.boot("cmp1", ha(2)...)
		w.roomy("cmp2", 64)
		w.nova.AddServerGroup(openstack.ServerGroup{ID: "g", ProjectID: "p1", Policy: openstack.PolicySoftAntiAffinity, Members: []string{vms[0].ID, vms[1].ID}})
		w.fenceCmp1()
		w.run("cmp1", HostFenced)
		if h0, h1 := w.server(vms[0].ID).Host, w.server(vms[1].ID).Host; h0 == h1 {
			t.Errorf("both soft-anti-affinity members on %s", h0)
		}
	})
}

func TestAFailedMoveIsRetriedOnAnotherSegmentHost(t *testing.T) {
	bubble(t, func(t *testing.T) {
		w := newWorld(t, "auto", "")
		vms := w.boot("cmp1", ha(1)...)
		w.roomy("cmp2", 64)
		w.fenceCmp1()
		w.nova.FailNext("Evacuate", errors.New("injected: rebuild failed"))
		rep := w.run("cmp1", HostFenced)
		r := result(rep, vms[0].Name)
		if r.Result != Recovered || r.To.NovaHost == "cmp2" {
			t.Errorf("after a failure on cmp2: %+v, want recovered elsewhere", r)
		}
		if !w.decided(CodeRetryElsewhere) {
			t.Error("the retry's new target was not recorded")
		}
		if m := w.moves(history.MoveSucceeded); len(m) != 1 || m[0].Attempts != 2 {
			t.Errorf("moves %+v, want one succeeded on its second attempt", m)
		}
	})
}

func TestAMoveThatKeepsFailingIsReportedFailedAfterItsRetries(t *testing.T) {
	bubble(t, func(t *testing.T) {
		w := newWorld(t, "auto", "")
		vms := w.boot("cmp1", ha(1)...)
		w.fenceCmp1()
		for range 3 {
			w.nova.FailNext("Evacuate", openstack.ErrConflict)
		}
		rep := w.run("cmp1", HostFenced)
		if r := result(rep, vms[0].Name); r.Result != Failed || r.Reason.Code != CodeMoveFailed {
			t.Errorf("%+v, want failed", r)
		}
		if n := w.evacuations()[vms[0].ID]; n != 3 {
			t.Errorf("%d evacuation requests, want 3 (the first and two retries)", n)
		}
	})
}

func TestANovaOutageDelaysTheRecoveryWithoutFailingIt(t *testing.T) {
	bubble(t, func(t *testing.T) {
		w := newWorld(t, "auto", "")
		vms := w.boot("cmp1", ha(2)...)
		w.fenceCmp1()
		for range 5 {
			w.nova.FailNext("Evacuate", fmt.Errorf("%w: connection refused", openstack.ErrUnavailable))
		}
		rep := w.run("cmp1", HostFenced)
		if n := rep.Count(Recovered); n != len(vms) {
			t.Errorf("%d of %d recovered across the outage", n, len(vms))
		}
	})
}

func TestAnEvacuationAlreadyInFlightIsWaitedForNotAskedAgain(t *testing.T) {
	bubble(t, func(t *testing.T) {
		w := newWorld(t, "auto", "")
		vms := w.boot("cmp1", ha(2)...)
		w.fenceCmp1()
		rep := w.runFromEarlierReads(func(r *Reads) {
			// A daemon before this one asked for the first VM's evacuation, which Nova was
			// still running when these reads were made; it completes meanwhile.
			r.Migrations = append([]openstack.Migration{{ID: 99, ServerID: vms[0].ID, Type: "evacuation", Status: "rebuilding", SourceCompute: "cmp1", DestCompute: "cmp3"}}, r.Migrations...)
			if err := w.nova.Evacuate(context.Background(), vms[0].ID, "cmp3"); err != nil {
				t.Fatal(err)
			}
		})
		if n := w.evacuations()[vms[0].ID]; n != 1 {
			t.Errorf("the VM in flight was evacuated %d times in all, want once", n)
		}
		if r := result(rep, vms[0].Name); r.Result != Recovered || r.To.NovaHost != "cmp3" {
			t.Errorf("%+v", r)
		}
		if !w.decided(CodeResumed) {
			t.Error("resuming was not recorded")
		}
	})
}

// TestAnEvacuationAnEarlierDaemonAskedUnseenIsNotAFailure: a daemon killed as it asked for a
// VM's evacuation; Nova went on, but the reads of the daemon that resumes saw neither the move
// nor its record. Its own request is refused (the VM is no longer on the failed host): the VM
// is recovered where the earlier request sent it, not failed, and asked no more.
func TestAnEvacuationAnEarlierDaemonAskedUnseenIsNotAFailure(t *testing.T) {
	bubble(t, func(t *testing.T) {
		w := newWorld(t, "auto", "")
		vms := w.boot("cmp1", ha(2)...)
		w.fenceCmp1()
		rep := w.runFromEarlierReads(func(*Reads) {
			if err := w.nova.Evacuate(context.Background(), vms[0].ID, "cmp3"); err != nil {
				t.Fatal(err)
			}
		})
		if r := result(rep, vms[0].Name); r.Result != Recovered || r.To.NovaHost != "cmp3" {
			t.Errorf("%+v, want recovered on cmp3, where the earlier request sent it", r)
		}
		if n := w.evacuations()[vms[0].ID]; n != 2 {
			t.Errorf("%d evacuation requests in all, want 2 (the earlier one, and this daemon's refused one)", n)
		}
		if n := rep.Count(Recovered); n != len(vms) {
			t.Errorf("%d of %d recovered", n, len(vms))
		}
	})
}

// TestAnEvacuationAnEarlierDaemonAskedThatEndedDuringTheReadsIsNotAFailure: the reads of the
// daemon that resumes are made together, and under load the listing of the servers may be
// older than that of the migrations: the VM still shows on the failed host while the record of
// an earlier daemon's evacuation of it already says done. Its own request is refused (the VM
// is no longer there): the VM is recovered where the earlier request sent it, at once.
func TestAnEvacuationAnEarlierDaemonAskedThatEndedDuringTheReadsIsNotAFailure(t *testing.T) {
	bubble(t, func(t *testing.T) {
		w := newWorld(t, "auto", "")
		vms := w.boot("cmp1", ha(2)...)
		w.fenceCmp1()
		start := time.Now()
		rep := w.runFromEarlierReads(w.movedMeanwhile(vms[0].ID))
		if r := result(rep, vms[0].Name); r.Result != Recovered || r.To.NovaHost != "cmp3" {
			t.Errorf("%+v, want recovered on cmp3, where the earlier request sent it", r)
		}
		if n := w.evacuations()[vms[0].ID]; n != 2 {
			t.Errorf("%d evacuation requests in all, want 2 (the earlier one, and this daemon's refused one)", n)
		}
		if took := time.Since(start); took >= w.cfg.Evacuation.ConfirmTimeout {
			t.Errorf("the recovery took %s: the VM already recovered was waited for until the confirmation timeout", took)
		}
	})
}

// movedMeanwhile is what an earlier daemon did while the reads were made: it had the VM id
// evacuated to cmp3, which Nova completed, and the reads' migrations are listed after that
// while their servers' listing still shows the VM on cmp1.
func (w *world) movedMeanwhile(id string) func(r *Reads) {
	return func(r *Reads) {
		ctx := context.Background()
		if err := w.nova.Evacuate(ctx, id, "cmp3"); err != nil {
			w.t.Fatal(err)
		}
		for w.server(id).Host != "cmp3" {
			time.Sleep(time.Second)
		}
		migs, err := w.nova.Migrations(ctx, openstack.MigrationFilter{Host: "cmp1"})
		if err != nil {
			w.t.Fatal(err)
		}
		r.Migrations = migs
	}
}

// The same, for a VM in ERROR: Nova rebuilds it as ERROR, and the earlier request's record said
// done; it is recovered where it went, as it is, not failed for its status.
func TestAnErrorVMAnEarlierDaemonMovedIsRecoveredAsItIs(t *testing.T) {
	bubble(t, func(t *testing.T) {
		w := newWorld(t, "auto", "")
		vms := w.boot("cmp1", vm{name: "broken", ha: true, status: "ERROR"}, vm{name: "ok", ha: true})
		w.fenceCmp1()
		rep := w.runFromEarlierReads(w.movedMeanwhile(vms[0].ID))
		if s := w.server(vms[0].ID); s.Status != "ERROR" {
			t.Fatalf("the fake rebuilt the ERROR VM as %s; this test needs Nova's ERROR", s.Status)
		}
		if r := result(rep, "broken"); r.Result != Recovered || r.To.NovaHost != "cmp3" {
			t.Errorf("%+v, want recovered on cmp3 as it is", r)
		}
	})
}

func TestReservedHostsAreTakenIntoUseAndRecordedOnTheirNodes(t *testing.T) {
	bubble(t, func(t *testing.T) {
		w := newWorld(t, "reserved_host", "cmp4")
		vms := w.boot("cmp1", ha(3)...)
		w.fenceCmp1()
		w.run("cmp1", HostFenced)
		for _, s := range vms {
			if h := w.server(s.ID).Host; h != "cmp4" {
				t.Errorf("%s on %s, want the reserved host cmp4", s.Name, h)
			}
		}
		if v, err := w.cluster.Attribute(context.Background(), "cmp4", reserve.UsedAttribute, 1); err != nil || v == "" {
			t.Errorf("cmp4's use not recorded on its node: %q, %v", v, err)
		}
		if svc, _ := w.nova.FindComputeService(context.Background(), "cmp4"); !svc.Enabled() {
			t.Error("the reserved host taken into use is still disabled")
		}
		if !w.decided(CodeReservedHostUsed) {
			t.Error("not recorded in the history")
		}
	})
}

func TestAnERRORVMIsResetThenEvacuatedOrLeftAsConfigured(t *testing.T) {
	for _, c := range []struct {
		setting string
		want    Result
	}{{"reset-state-then-evacuate", Recovered}, {"skip", Left}} {
		t.Run(c.setting, func(t *testing.T) {
			bubble(t, func(t *testing.T) {
				w := newWorld(t, "auto", "", "  error_vms: "+c.setting)
				vms := w.boot("cmp1", vm{name: "broken", ha: true, image: "img", status: "ERROR"})
				w.fenceCmp1()
				rep := w.run("cmp1", HostFenced)
				r := result(rep, "broken")
				if r.Result != c.want {
					t.Fatalf("%+v, want %s", r, c.want)
				}
				if c.want == Recovered && w.server(vms[0].ID).Status != "ACTIVE" {
					t.Errorf("recovered, but %s", w.server(vms[0].ID).Status)
				}
			})
		})
	}
}

func TestHostsBeingRecoveredAreNeverTargets(t *testing.T) {
	bubble(t, func(t *testing.T) {
		w := newWorld(t, "auto", "")
		vms := w.boot("cmp1", ha(4)...)
		w.roomy("cmp2", 64)
		w.fenceCmp1()
		w.eng.o.Failing = func() map[string]bool { return map[string]bool{"cmp1": true, "cmp2": true} }
		w.run("cmp1", HostFenced)
		for _, s := range vms {
			if h := w.server(s.ID).Host; h == "cmp2" || h == "cmp1" {
				t.Errorf("%s on %s, a host being recovered", s.Name, h)
			}
		}
	})
}

func TestAHostInNoSegmentIsAnError(t *testing.T) {
	bubble(t, func(t *testing.T) {
		w := newWorld(t, "auto", "")
		w.nova.AddCompute("elsewhere", "nova")
		_, err := w.eng.Run(context.Background(), Job{Source: Host{Node: "elsewhere", NovaHost: "elsewhere"}, Situation: HostFenced})
		if !errors.Is(err, ErrNoSegment) {
			t.Errorf("err = %v, want ErrNoSegment", err)
		}
	})
}

func TestReadsMadeAheadAreUsedWhileFreshAndReadAgainWhenOld(t *testing.T) {
	bubble(t, func(t *testing.T) {
		w := newWorld(t, "auto", "")
		w.boot("cmp1", ha(1)...)
		w.fenceCmp1()
		src := NewNames(w.cfg, nil).ByNode("cmp1")
		r, err := w.eng.Read(context.Background(), src)
		if err != nil {
			t.Fatal(err)
		}
		n, hv := w.count("ServersOnHost"), w.count("Hypervisors")
		if _, err := w.eng.Run(context.Background(), Job{Source: src, Situation: HostFenced, Reads: r}); err != nil {
			t.Fatal(err)
		}
		if got, gotHV := w.count("ServersOnHost"), w.count("Hypervisors"); got != n || gotHV != hv {
			t.Errorf("fresh reads made ahead were read again (%d listings of the source's servers, want %d; %d of hypervisors, want %d)", got, n, gotHV, hv)
		}
		r.At = w.clock.Now().Add(-DefaultMaxAge - 1)
		if _, err := w.eng.Run(context.Background(), Job{Source: src, Situation: HostFenced, Reads: r}); err != nil {
			t.Fatal(err)
		}
		if w.count("ServersOnHost") == n {
			t.Error("old reads were used instead of reading again")
		}
	})
}

// stuckNova is the fake Nova, but the evacuation of one server blocks until released.
type stuckNova struct {
	*openstack.Fake
	stuck   string
	release chan struct{}
}

func (n *stuckNova) Evacuate(ctx context.Context, id, target string) error {
	if id == n.stuck {
		select {
		case <-n.release:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return n.Fake.Evacuate(ctx, id, target)
}

func TestTiersSendALowerPriorityOnlyOnceTheHigherOneRunsOrItsTimeoutPassed(t *testing.T) {
	tiers := "  tiers: {enabled: true, timeout: 2m, ready_delay: 10s}"
	t.Run("every VM of tier 1 runs before tier 2 is asked for", func(t *testing.T) {
		bubble(t, func(t *testing.T) {
			w := newWorld(t, "auto", "", tiers)
			w.boot("cmp1", vm{name: "db1", ha: true, image: "img", prio: 10}, vm{name: "db2", ha: true, image: "img", prio: 10},
				vm{name: "web1", ha: true, image: "img", prio: 1}, vm{name: "web2", ha: true, image: "img"})
			w.fenceCmp1()
			rep := w.run("cmp1", HostFenced)
			if n := rep.Count(Recovered); n != 4 {
				t.Fatalf("%d recovered, want 4", n)
			}
			order := w.evacuationOrder()
			if i, j := slices.Index(order, "db2"), slices.Index(order, "web1"); max(slices.Index(order, "db1"), i) > j || j > slices.Index(order, "web2") {
				t.Errorf("evacuations asked in the order %v, want db1 and db2, then web1, then web2", order)
			}
			if n := count(w.rec.Codes(), CodeTierReady); n != 2 {
				t.Errorf("%d tiers recorded ready, want 2 (tier 1 then tier 2)", n)
			}
			for _, m := range w.rec.Moves() {
				if strings.HasPrefix(m.VMName, "web") {
					for _, d := range w.rec.Moves() {
						if strings.HasPrefix(d.VMName, "db") && m.Start.Before(d.End.Add(10*time.Second)) {
							t.Errorf("%s began at %s, before %s had run for the ready delay (ended %s)", m.VMName, m.Start, d.VMName, d.End)
						}
					}
				}
			}
		})
	})
	t.Run("a stuck VM of tier 1 holds tier 2 back only for the tier timeout", func(t *testing.T) {
		bubble(t, func(t *testing.T) {
			w := newWorld(t, "auto", "", tiers)
			vms := w.boot("cmp1", vm{name: "db1", ha: true, image: "img", prio: 10}, vm{name: "stuck", ha: true, image: "img", prio: 10},
				vm{name: "web1", ha: true, image: "img"})
			w.fenceCmp1()
			n := &stuckNova{Fake: w.nova, stuck: vms[1].ID, release: make(chan struct{})}
			w.eng = New(Options{Config: w.cfg, Nova: n, Cluster: w.cluster, Clock: w.clock, Poll: time.Second})
			start := w.clock.Now()
			done := make(chan Report)
			go func() { done <- w.run("cmp1", HostFenced) }()
			waitFor(t, func() bool { return slices.Contains(w.evacuationOrder(), "web1") })
			if took := w.clock.Now().Sub(start); took < 2*time.Minute {
				t.Errorf("tier 2 began %s after the start, before the 2m tier timeout", took)
			}
			if count(w.rec.Codes(), CodeTierTimeout) != 1 {
				t.Error("the tier timeout was not recorded")
			}
			close(n.release)
			rep := <-done
			if got := rep.Count(Recovered); got != 3 {
				t.Errorf("%d recovered once the stuck one was let go, want 3", got)
			}
		})
	})
}

// evacuationOrder names the evacuated VMs in the order their evacuations were asked.
func (w *world) evacuationOrder() []string {
	var out []string
	for _, c := range w.nova.Calls() {
		if f := strings.Fields(c); len(f) >= 2 && f[0] == "Evacuate" {
			for _, m := range w.rec.Moves() {
				if m.VMID == f[1] {
					out = append(out, m.VMName)
				}
			}
		}
	}
	return out
}

func count[T comparable](s []T, v T) int {
	n := 0
	for _, x := range s {
		if x == v {
			n++
		}
	}
	return n
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	// The bubble's hour: time moves only while everything waits.
	for range 3600 {
		if cond() {
			return
		}
		time.Sleep(time.Second)
	}
	t.Fatal("condition not met within an hour of the bubble's time")
}

func TestEvacuationsAreConfirmedFromTheSourcesMigrationsNotOneReadPerVM(t *testing.T) {
	bubble(t, func(t *testing.T) {
		w := newWorld(t, "auto", "")
		w.boot("cmp1", ha(20)...)
		w.fenceCmp1()
		rep := w.run("cmp1", HostFenced)
		if n := rep.Count(Recovered); n != 20 {
			t.Fatalf("%d of 20 recovered", n)
		}
		if n := w.count("Server"); n != 0 {
			t.Errorf("%d reads of single servers to confirm 20 evacuations, want 0", n)
		}
		// Evacuations are followed by the source's migration records: the servers are listed
		// once, by the reads, and never to confirm.
		if n := w.count("ServersOnHost"); n != 1 {
			t.Errorf("%d listings of a host's servers, want 1 (the reads)", n)
		}
		t.Logf("%d listings of the source's migrations", w.count("Migrations"))
	})
}

// slowRecorder is a history whose every durable write takes d, as a disk under load does.
type slowRecorder struct {
	*MemRecorder
	d time.Duration
}

func (r slowRecorder) Record(ctx context.Context, e history.Event) error {
	if e.Time.IsZero() {
		e.Time = time.Now()
	}
	time.Sleep(r.d)
	return r.MemRecorder.Record(ctx, e)
}

func (r slowRecorder) RecordAll(ctx context.Context, es []history.Event) error {
	time.Sleep(r.d)
	return r.MemRecorder.RecordAll(ctx, es)
}

func (r slowRecorder) StartMove(ctx context.Context, m history.Move) (int64, error) {
	if m.Start.IsZero() {
		m.Start = time.Now()
	}
	time.Sleep(r.d)
	return r.MemRecorder.StartMove(ctx, m)
}

func (r slowRecorder) FinishMove(ctx context.Context, id int64, out history.MoveOutcome) error {
	time.Sleep(r.d)
	return r.MemRecorder.FinishMove(ctx, id, out)
}

func TestTheFirstMoveDoesNotWaitForThePlansRecordsToBeWritten(t *testing.T) {
	bubble(t, func(t *testing.T) {
		w := newWorld(t, "auto", "")
		w.boot("cmp1", ha(20)...)
		w.boot("cmp1", vm{name: "plain", image: "img"})
		w.fenceCmp1()
		const write = 50 * time.Millisecond
		w.rec = NewMemRecorder(time.Now)
		begin := time.Now()
		rep, err := w.eng.Run(t.Context(), Job{Source: NewNames(w.cfg, nil).ByNode("cmp1"), Situation: HostFenced, Recorder: slowRecorder{w.rec, write}})
		if err != nil {
			t.Fatal(err)
		}
		if n := rep.Count(Recovered); n != 20 {
			t.Fatalf("%d VMs recovered, want 20", n)
		}
		var first time.Time
		for _, m := range w.rec.Moves() {
			if m.Result == history.MoveSucceeded && (first.IsZero() || m.Start.Before(first)) {
				first = m.Start
			}
		}
		// 21 decisions and a skipped move are written before the recovery ends, not before
		// the first move begins.
		if d := first.Sub(begin); d >= write {
			t.Errorf("the first move began %s after the recovery, behind the writes of its decisions (%s each)", d, write)
		}
		placed := 0
		for _, e := range w.rec.Events(history.KindDecision) {
			if strings.Contains(e.Summary, " goes to ") {
				placed++
				if e.Time.After(first) {
					t.Errorf("decision %q stamped %s, after the first move (%s)", e.Summary, e.Time, first)
				}
			}
		}
		if placed != 20 || !w.decided(CodeNoHA) || len(w.moves(history.MoveSkipped)) != 1 {
			t.Errorf("%d placements recorded (want 20), no-HA decided %v, %d skipped moves (want 1)", placed, w.decided(CodeNoHA), len(w.moves(history.MoveSkipped)))
		}
	})
}

func TestAnEvacuationRefusedWhileNovaSeesTheSourceUpIsAskedAgainOnTheSameTarget(t *testing.T) {
	bubble(t, func(t *testing.T) {
		w := newWorld(t, "auto", "")
		vms := w.boot("cmp1", ha(3)...)
		// Marked by something other than fence_nova: Nova still sees cmp1 up.
		w.nova.KillCompute("cmp1")
		rep := w.run("cmp1", HostFenced)
		if n := rep.Count(Recovered); n != 3 {
			t.Fatalf("%d VMs recovered, want 3: %+v", n, rep)
		}
		targets := map[string][]string{}
		for _, c := range w.nova.Calls() {
			if f := strings.Fields(c); len(f) == 3 && f[0] == "Evacuate" {
				targets[f[1]] = append(targets[f[1]], f[2])
			}
		}
		for _, s := range vms {
			got := targets[s.ID]
			if len(got) == 0 || slices.ContainsFunc(got, func(h string) bool { return h != got[0] }) {
				t.Errorf("%s was asked to go to %v: a refusal about the source moved it elsewhere", s.Name, got)
			}
			if h := w.server(s.ID).Host; h != got[len(got)-1] {
				t.Errorf("%s is on %s, asked for %v", s.Name, h, got)
			}
		}
		if w.decided(CodeRetryElsewhere) {
			t.Errorf("a retry elsewhere was recorded: %v", w.rec.Codes())
		}
		if s, _ := w.nova.FindComputeService(t.Context(), "cmp1"); !s.ForcedDown {
			t.Errorf("cmp1 is not forced down in Nova: %+v", s)
		}
	})
}

func TestTheReadsEveryRecoveryMakesAlikeAreRefreshedAheadAndServeWhileFresh(t *testing.T) {
	for _, tc := range []struct {
		name    string
		refresh string
		// listings of hypervisors by a recovery right after a refresh, and after twice the
		// refresh interval with no refresh in between
		fresh, stale int
	}{
		{"every 10s", "  refresh: 10s", 0, 1},
		{"off", "  refresh: 0s", 1, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			bubble(t, func(t *testing.T) {
				w := newWorld(t, "auto", "")
				cfg, err := config.Parse([]byte(fmt.Sprintf(worldConfig, "auto", "") + tc.refresh))
				if err != nil {
					t.Fatal(err)
				}
				w.cfg = cfg
				w.eng = New(Options{Config: cfg, Nova: w.nova, Cluster: w.cluster, Clock: w.clock, Poll: time.Second})
				w.boot("cmp1", ha(2)...)
				w.fenceCmp1()
				src := NewNames(w.cfg, nil).ByNode("cmp1")
				if err := w.eng.Refresh(t.Context()); err != nil {
					t.Fatal(err)
				}
				// A host enabled after the refresh is seen by the next one, not before.
				time.Sleep(3 * time.Second)
				before := w.count("Hypervisors")
				if _, err := w.eng.Read(t.Context(), src); err != nil {
					t.Fatal(err)
				}
				if got := w.count("Hypervisors") - before; got != tc.fresh {
					t.Errorf("a recovery 3s after a refresh listed the hypervisors %d times, want %d", got, tc.fresh)
				}
				time.Sleep(20 * time.Second)
				before = w.count("Hypervisors")
				r, err := w.eng.Read(t.Context(), src)
				if err != nil {
					t.Fatal(err)
				}
				if got := w.count("Hypervisors") - before; got != tc.stale {
					t.Errorf("a recovery 23s after a refresh listed the hypervisors %d times, want %d", got, tc.stale)
				}
				if len(r.Servers) != 2 || len(r.Hypervisors) != 4 || r.SegmentName != "seg-a" {
					t.Errorf("reads: %d servers (want 2), %d hypervisors (want 4), segment %q", len(r.Servers), len(r.Hypervisors), r.SegmentName)
				}
			})
		})
	}
}

func TestAnEvacuationNovaStillCarriesOutIsWaitedForAndNeverAskedAgain(t *testing.T) {
	for _, tc := range []struct {
		name    string
		release time.Duration // after the recovery begins; 0: never
		want    Result
	}{
		// confirm_timeout is 1m: released within the waits that follow the first timeout.
		{"Nova finishes after three timeouts", 3*time.Minute + 30*time.Second, Recovered},
		{"Nova never finishes", 0, Failed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			bubble(t, func(t *testing.T) {
				w := newWorld(t, "auto", "")
				vms := w.boot("cmp1", ha(3)...)
				w.fenceCmp1()
				w.nova.HoldEvacuations()
				if tc.release > 0 {
					go func() {
						time.Sleep(tc.release)
						w.nova.ReleaseEvacuations()
					}()
				}
				rep := w.run("cmp1", HostFenced)
				for _, s := range vms {
					r := result(rep, s.Name)
					if r.Result != tc.want {
						t.Errorf("%s: %s (%s), want %s", s.Name, r.Result, r.Reason.Text, tc.want)
					}
					if tc.want == Failed && r.Reason.Code != CodeStillMoving {
						t.Errorf("%s failed with code %q, want %q", s.Name, r.Reason.Code, CodeStillMoving)
					}
				}
				// One request each: Nova accepts a second evacuation while the first still
				// runs, and the VM would be rebuilt twice.
				for id, n := range w.evacuations() {
					if n != 1 {
						t.Errorf("%s: %d evacuation requests, want 1", id, n)
					}
				}
				if !w.decided(CodeStillMoving) || w.decided(CodeRetryElsewhere) {
					t.Errorf("recorded codes %v: want the wait recorded, and no retry elsewhere", w.rec.Codes())
				}
			})
		})
	}
}

// Two hosts fail seconds apart: the first one's VMs are sent to the second while Nova still
// sees it up. Once the second is being recovered, the VMs it never rebuilt are asked again
// elsewhere (their "rebuilding" state reset first), at once, not after the confirmation
// timeout; the rebuild the dead host finds queued when it comes back builds nothing.
func TestVMsSentToAHostThatFailsBeforeRebuildingThemAreEvacuatedAgain(t *testing.T) {
	bubble(t, func(t *testing.T) {
		w := newWorld(t, "auto", "")
		vms := w.boot("cmp1", ha(2)...)
		for _, h := range []string{"cmp3", "cmp4"} {
			s, _ := w.nova.FindComputeService(context.Background(), h)
			_, _ = w.nova.DisableService(context.Background(), s.ID, "operator: busy")
		}
		w.fenceCmp1()
		w.nova.KillCompute("cmp2") // dead, still seen up
		var cmp2Failing atomic.Bool
		w.eng.o.Failing = func() map[string]bool {
			return map[string]bool{"cmp1": true, "cmp2": cmp2Failing.Load()}
		}
		go func() {
			time.Sleep(5 * time.Second)
			// cmp2's fencing: fence_nova forces it down, and its recovery begins; an
			// operator lets cmp3 take VMs again.
			s, _ := w.nova.FindComputeService(context.Background(), "cmp2")
			_, _ = w.nova.ForceDown(context.Background(), s.ID)
			s, _ = w.nova.FindComputeService(context.Background(), "cmp3")
			_, _ = w.nova.EnableService(context.Background(), s.ID)
			cmp2Failing.Store(true)
		}()
		start := time.Now()
		rep := w.run("cmp1", HostFenced)
		if took := time.Since(start); took >= w.cfg.Evacuation.ConfirmTimeout {
			t.Errorf("the recovery took %s, want well under the confirmation timeout %s", took, w.cfg.Evacuation.ConfirmTimeout)
		}
		for _, v := range vms {
			if r := result(rep, v.Name); r.Result != Recovered || r.To.NovaHost != "cmp3" {
				t.Errorf("%s: %+v, want recovered onto cmp3", v.Name, r)
			}
			if n := w.evacuations()[v.ID]; n != 2 {
				t.Errorf("%s: %d evacuation requests, want 2 (to cmp2, lost; then again)", v.Name, n)
			}
		}
		if w.count("ResetState") != len(vms) {
			t.Errorf("%d state resets, want one per VM left rebuilding", w.count("ResetState"))
		}
		if !w.decided(CodeTargetFailed) {
			t.Errorf("no %s decision recorded", CodeTargetFailed)
		}
		for _, v := range vms {
			if r := result(rep, v.Name); r.LostOn.NovaHost != "cmp2" {
				t.Errorf("%s: lost on %+v, want cmp2 (its request waits in cmp2's queue)", v.Name, r.LostOn)
			}
		}
		// cmp2 back runs what waits in its queue: nothing is built there (Nova's rebuild finds
		// the VM no longer rebuilding), though Nova sets the VM ERROR (the daemon resets it).
		w.nova.RestartCompute("cmp2")
		for _, v := range vms {
			if s := w.server(v.ID); s.Host != "cmp3" {
				t.Errorf("%s is on %s once cmp2 is back, want cmp3", v.Name, s.Host)
			}
		}
	})
}

// A VM the failed target had already taken (its rebuild begun there) is that host's recovery's:
// never asked again from the source, where a second request could start a second copy.
func TestAVMTheFailedTargetHadTakenIsLeftToItsRecovery(t *testing.T) {
	bubble(t, func(t *testing.T) {
		w := newWorld(t, "auto", "")
		vms := w.boot("cmp1", ha(1)...)
		for _, h := range []string{"cmp3", "cmp4"} {
			s, _ := w.nova.FindComputeService(context.Background(), h)
			_, _ = w.nova.DisableService(context.Background(), s.ID, "operator: busy")
		}
		w.fenceCmp1()
		w.nova.KillCompute("cmp2")
		var cmp2Failing atomic.Bool
		w.eng.o.Failing = func() map[string]bool {
			return map[string]bool{"cmp1": true, "cmp2": cmp2Failing.Load()}
		}
		go func() {
			time.Sleep(3 * time.Second)
			// cmp2 took the VM just before it died: Nova has it there, still rebuilding.
			w.nova.TakeOver(vms[0].ID, "cmp2")
			cmp2Failing.Store(true)
		}()
		rep := w.run("cmp1", HostFenced)
		r := result(rep, vms[0].Name)
		if r.Result != Failed || r.Reason.Code != CodeHandedOver {
			t.Errorf("%+v, want failed, %s", r, CodeHandedOver)
		}
		if n := w.evacuations()[vms[0].ID]; n != 1 {
			t.Errorf("%d evacuation requests, want 1", n)
		}
	})
}

func TestKeepFreshRefreshesEveryIntervalAndLogsAFailureOnceWhenItBeginsAndEnds(t *testing.T) {
	bubble(t, func(t *testing.T) {
		w := newWorld(t, "auto", "", "  refresh: 1m")
		var logs strings.Builder
		w.eng = New(Options{
			Config: w.cfg, Nova: w.nova, Cluster: w.cluster, Clock: w.clock, Poll: time.Second,
			Log: slog.New(slog.NewTextHandler(&logs, nil)),
		})
		forbidden := errors.New("403 forbidden")
		w.nova.FailNext("Hypervisors", forbidden)
		w.nova.FailNext("Hypervisors", forbidden)
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan struct{})
		go func() {
			defer close(done)
			w.eng.KeepFresh(ctx, 10*time.Second)
		}()
		time.Sleep(35 * time.Second) // refreshes at 0, 10, 20 and 30 s
		synctest.Wait()
		cancel()
		<-done
		n := 0
		for _, c := range w.nova.Calls() {
			if strings.HasPrefix(c, "Hypervisors") {
				n++
			}
		}
		if n != 4 {
			t.Errorf("%d hypervisor listings in 35 s, want 4 (one every 10 s)", n)
		}
		if got := strings.Count(logs.String(), "failed; recoveries read them when they begin"); got != 1 {
			t.Errorf("the failure logged %d times, want once:\n%s", got, logs.String())
		}
		if got := strings.Count(logs.String(), "works again"); got != 1 {
			t.Errorf("the end of the failure logged %d times, want once:\n%s", got, logs.String())
		}
	})
}

func TestFailedVMsAreRestartedWhereTheyAreAndNoOtherVMOfTheHostIsTouched(t *testing.T) {
	bubble(t, func(t *testing.T) {
		w := newWorld(t, "auto", "")
		srvs := w.boot("cmp2",
			vm{name: "crashed", ha: true, image: "img"},
			vm{name: "stopped-by-nova-after-its-crash", ha: true, image: "img", status: "SHUTOFF"},
			vm{name: "recreate-class", ha: true, image: "img", meta: map[string]string{"computeha_recovery": "recreate"}},
			vm{name: "not-ha", image: "img"},
			vm{name: "healthy", ha: true, image: "img"},
		)
		failed := map[string]bool{}
		for _, s := range srvs[:4] {
			failed[s.ID] = true
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Hour)
		defer cancel()
		rep, err := w.eng.Run(ctx, Job{Source: NewNames(w.cfg, nil).ByNode("cmp2"), Situation: VMFailed, VMs: failed, Recorder: w.rec})
		if err != nil {
			t.Fatal(err)
		}
		if len(rep.VMs) != 4 {
			t.Fatalf("%d VMs in the report, want the 4 failed ones", len(rep.VMs))
		}
		for _, name := range []string{"crashed", "stopped-by-nova-after-its-crash", "recreate-class"} {
			r := result(rep, name)
			s := w.server(r.Server.ID)
			if r.Result != Recovered || r.Method != Restart || s.Host != "cmp2" || s.Status != "ACTIVE" {
				t.Errorf("%s: %s by %s, now %s on %s; want restarted on cmp2, ACTIVE", name, r.Result, r.Method, s.Status, s.Host)
			}
		}
		if r := result(rep, "not-ha"); r.Result != Left || r.Reason.Code != CodeNoHA {
			t.Errorf("a failed VM without HA: %+v", r)
		}
		var reboots, starts []string
		for _, c := range w.nova.Calls() {
			switch {
			case strings.HasPrefix(c, "Reboot "):
				reboots = append(reboots, c)
			case strings.HasPrefix(c, "StartServer "):
				starts = append(starts, c)
			}
		}
		if len(reboots) != 2 || len(starts) != 1 || slices.ContainsFunc(reboots, func(c string) bool { return strings.Contains(c, srvs[4].ID) }) {
			t.Errorf("reboots %q, starts %q: want two hard reboots and one start, the healthy VM untouched", reboots, starts)
		}
	})
}

func TestVMsPausedByAnIOErrorAreResumedThroughNovasPauseAndUnpause(t *testing.T) {
	bubble(t, func(t *testing.T) {
		w := newWorld(t, "auto", "")
		srvs := w.boot("cmp2",
			vm{name: "paused-by-qemu", ha: true, image: "img"}, // Nova still has it ACTIVE
			vm{name: "paused-in-nova-already", ha: true, image: "img", status: "PAUSED"},
			vm{name: "healthy", ha: true, image: "img"},
		)
		ctx, cancel := context.WithTimeout(context.Background(), time.Hour)
		defer cancel()
		rep, err := w.eng.Run(ctx, Job{
			Source: NewNames(w.cfg, nil).ByNode("cmp2"), Situation: VMResume,
			VMs: map[string]bool{srvs[0].ID: true, srvs[1].ID: true}, Recorder: w.rec,
		})
		if err != nil {
			t.Fatal(err)
		}
		for _, name := range []string{"paused-by-qemu", "paused-in-nova-already"} {
			r := result(rep, name)
			s := w.server(r.Server.ID)
			if r.Result != Recovered || r.Method != Resume || s.Host != "cmp2" || s.Status != "ACTIVE" {
				t.Errorf("%s: %s by %s, now %s on %s; want resumed on cmp2, ACTIVE", name, r.Result, r.Method, s.Status, s.Host)
			}
		}
		want := []string{"Pause " + srvs[0].ID, "Unpause " + srvs[0].ID, "Unpause " + srvs[1].ID}
		var got []string
		for _, c := range w.nova.Calls() {
			if strings.HasPrefix(c, "Pause ") || strings.HasPrefix(c, "Unpause ") || strings.HasPrefix(c, "Reboot ") {
				got = append(got, c)
			}
		}
		slices.Sort(got)
		slices.Sort(want)
		if !slices.Equal(got, want) {
			t.Errorf("calls %q, want %q: each paused in Nova unless it is, then unpaused; nothing rebooted", got, want)
		}
		if moves := w.rec.Moves(); !slices.ContainsFunc(moves, func(m history.Move) bool { return m.Method == string(Resume) && m.Result == history.MoveSucceeded }) {
			t.Errorf("no succeeded resume in the history's moves: %+v", moves)
		}
	})
}

func TestAResumeWhosePauseNovaRefusesEveryTimeFails(t *testing.T) {
	bubble(t, func(t *testing.T) {
		w := newWorld(t, "auto", "")
		srvs := w.boot("cmp2", vm{name: "paused-by-qemu", ha: true, image: "img"})
		for range 10 {
			w.nova.FailNext("Pause", openstack.ErrConflict)
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Hour)
		defer cancel()
		rep, err := w.eng.Run(ctx, Job{
			Source: NewNames(w.cfg, nil).ByNode("cmp2"), Situation: VMResume,
			VMs: map[string]bool{srvs[0].ID: true}, Recorder: w.rec,
		})
		if err != nil {
			t.Fatal(err)
		}
		if r := result(rep, "paused-by-qemu"); r.Result == Recovered {
			t.Errorf("recovered although every pause was refused: %+v", r)
		}
	})
}

// A VM's qemu failing often goes with its host's nova-compute losing libvirt: Nova has the
// compute down for a while and refuses to migrate off it. The move waits for it instead of
// spending its retries at once.
func TestAMoveOffAHostThatRunsWaitsForItsComputeServiceToBeUpAgain(t *testing.T) {
	bubble(t, func(t *testing.T) {
		w := newWorld(t, "auto", "")
		srvs := w.boot("cmp2", vm{name: "crashed", ha: true, image: "img"})
		w.nova.KillCompute("cmp2")
		time.Sleep(w.nova.ServiceDownTime + time.Second) // Nova has it down now
		back := make(chan struct{})
		go func() {
			defer close(back)
			time.Sleep(45 * time.Second) // within the confirmation timeout (1m)
			w.nova.RestartCompute("cmp2")
		}()
		ctx, cancel := context.WithTimeout(context.Background(), time.Hour)
		defer cancel()
		rep, err := w.eng.Run(ctx, Job{
			Source: NewNames(w.cfg, nil).ByNode("cmp2"), Situation: VMRelocate,
			VMs: map[string]bool{srvs[0].ID: true}, Recorder: w.rec,
		})
		<-back
		if err != nil {
			t.Fatal(err)
		}
		r := result(rep, "crashed")
		if s := w.server(r.Server.ID); r.Result != Recovered || r.Method != ColdMigrate || s.Host == "cmp2" {
			t.Errorf("%s by %s, now %s on %s; want cold-migrated off cmp2 once its compute was up again", r.Result, r.Method, s.Status, s.Host)
		}
		n := 0
		for _, c := range w.nova.Calls() {
			if strings.HasPrefix(c, "ColdMigrate ") {
				n++
			}
		}
		if n != 2 {
			t.Errorf("%d cold migrations asked; want 2: one refused, one once the compute was up", n)
		}
	})
}

func TestVMsThatFailTooOftenAreMovedToAnotherHostOfTheirSegmentAndRunThere(t *testing.T) {
	bubble(t, func(t *testing.T) {
		w := newWorld(t, "auto", "")
		srvs := w.boot("cmp2",
			vm{name: "crashed-active", ha: true, image: "img"},
			vm{name: "crashed-stopped-by-nova", ha: true, image: "img", status: "SHUTOFF"},
			vm{name: "healthy", ha: true, image: "img"},
		)
		ctx, cancel := context.WithTimeout(context.Background(), time.Hour)
		defer cancel()
		rep, err := w.eng.Run(ctx, Job{
			Source: NewNames(w.cfg, nil).ByNode("cmp2"), Situation: VMRelocate,
			VMs: map[string]bool{srvs[0].ID: true, srvs[1].ID: true}, Recorder: w.rec,
		})
		if err != nil {
			t.Fatal(err)
		}
		for _, name := range []string{"crashed-active", "crashed-stopped-by-nova"} {
			r := result(rep, name)
			s := w.server(r.Server.ID)
			if r.Result != Recovered || r.Method != ColdMigrate || s.Host == "cmp2" || s.Status != "ACTIVE" {
				t.Errorf("%s: %s by %s, now %s on %s; want cold-migrated off cmp2 and ACTIVE", name, r.Result, r.Method, s.Status, s.Host)
			}
		}
		if s := w.server(srvs[2].ID); s.Host != "cmp2" {
			t.Errorf("the healthy VM moved to %s", s.Host)
		}
	})
}
