package status

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/computeha/computeha/crm"
	"github.com/computeha/computeha/internal/config"
	"github.com/computeha/computeha/internal/evacdsock"
	"github.com/computeha/computeha/internal/evacstate"
	"github.com/computeha/computeha/internal/openstack"
	"github.com/computeha/computeha/internal/reserve"
)

var now = time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)

// world: segment lab of cmp1..cmp3 with cmp3 reserved (held in reserve); cmp1 holds an HA VM
// and another; cmp2 was fenced and its recovery runs; the daemon runs on ctl2.
func world(t *testing.T) (Sources, *crm.Fake, *openstack.Fake) {
	t.Helper()
	cfg, err := config.Parse([]byte(`
cloud: test
segments:
  lab:
    hosts: [cmp1, cmp2, cmp3]
    recovery_method: auto_priority
    reserved_hosts: [cmp3]
policy:
  default: off
  flavor_key: evacuable
`))
	if err != nil {
		t.Fatal(err)
	}
	n := openstack.NewFake(func() time.Time { return now })
	for _, h := range []string{"cmp1", "cmp2", "cmp3"} {
		n.AddCompute(h, "nova")
		n.SetResources(h, map[string]openstack.Resource{
			"VCPU": {Total: 8, AllocationRatio: 1}, "MEMORY_MB": {Total: 16384, AllocationRatio: 1}, "DISK_GB": {Total: 100, AllocationRatio: 1},
		})
	}
	svc, _ := n.FindComputeService(context.Background(), "cmp3")
	_, _ = n.DisableService(context.Background(), svc.ID, "reserved for failover")
	svc, _ = n.FindComputeService(context.Background(), "cmp2")
	_, _ = n.ForceDown(context.Background(), svc.ID)
	_, _ = n.DisableService(context.Background(), svc.ID, "computeha: fenced by fence_nova")
	n.AddServer(openstack.Server{Name: "ha", Host: "cmp1", Flavor: openstack.Flavor{ExtraSpecs: map[string]string{"evacuable": "true"}}})
	n.AddServer(openstack.Server{Name: "plain", Host: "cmp1"})
	c := crm.NewFake(func() time.Time { return now }, "ctl1", "ctl2", "cmp1", "cmp3")
	c.AddNode("cmp2", crm.Node{Online: false})
	if err := (evacstate.Marks{Attrs: c}).Set(context.Background(), "cmp2", evacstate.State{Phase: evacstate.Running, Owner: "ctl2", Since: now}); err != nil {
		t.Fatal(err)
	}
	return Sources{
		Config: cfg, Cluster: evacuatorOn{c, "ctl2"}, Nova: n, Now: func() time.Time { return now },
		Daemon: func(context.Context) (evacdsock.Health, error) {
			return evacdsock.Health{OK: true, Jobs: map[string]string{"cmp2": "recovering: 1 of 2 VMs"}}, nil
		},
	}, c, n
}

// evacuatorOn is the fake cluster with the evacuator resource running on a node.
type evacuatorOn struct {
	*crm.Fake
	node string
}

func (e evacuatorOn) Status(ctx context.Context) (*crm.Status, error) {
	st, err := e.Fake.Status(ctx)
	if err == nil {
		st.DC = "ctl1"
		st.Resources = append(st.Resources, crm.Resource{ID: "evacuator", Agent: EvacuatorAgent, Active: true, Nodes: []string{e.node}})
	}
	return st, err
}

func TestGatherShowsTheWholePicture(t *testing.T) {
	src, _, _ := world(t)
	r, err := Gather(context.Background(), src)
	if err != nil {
		t.Fatal(err)
	}
	if !r.Quorate || r.DC != "ctl1" || !cmp.Equal(r.Daemon.Nodes, []string{"ctl2"}) {
		t.Errorf("cluster: quorate %v, DC %q, daemon on %v", r.Quorate, r.DC, r.Daemon.Nodes)
	}
	if len(r.Segments) != 1 {
		t.Fatalf("segments %+v", r.Segments)
	}
	want := []Host{
		{Node: "cmp1", NovaHost: "cmp1", Pacemaker: "online", Nova: "enabled up", VMs: 2, HAVMs: 1},
		{Node: "cmp2", NovaHost: "cmp2", Pacemaker: "offline", Nova: "disabled down (forced)", DisabledReason: "computeha: fenced by fence_nova", Recovery: "running"},
		{Node: "cmp3", NovaHost: "cmp3", Pacemaker: "online", Nova: "disabled up", DisabledReason: "reserved for failover", Reserve: string(reserve.InReserve)},
	}
	if diff := cmp.Diff(want, r.Segments[0].Hosts); diff != "" {
		t.Errorf("hosts (-want +got):\n%s", diff)
	}
	// Losing cmp1 (2 VMs of 0 size in the fake) leaves cmp3's room: the reserved host counts.
	if h := r.Segments[0].Headroom; h.VCPUs != 8 || h.RAMMB != 16384 || h.DiskGB != 100 {
		t.Errorf("headroom %+v, want the reserved host's room", h)
	}
	wantRec := []Recovery{{Host: "cmp2", Phase: "running", Since: now, Step: "recovering: 1 of 2 VMs"}}
	if diff := cmp.Diff(wantRec, r.Recoveries); diff != "" {
		t.Errorf("recoveries (-want +got):\n%s", diff)
	}
	if !cmp.Equal(r.Guard.Failing, []string{"cmp2"}) || r.Guard.Window != "10m0s" {
		t.Errorf("guard %+v", r.Guard)
	}
	if s := r.Summary(); s != "ok" {
		t.Errorf("summary %q: a recovery that runs needs nobody", s)
	}
}

func TestTheSummaryNamesWhatNeedsAnOperator(t *testing.T) {
	src, c, n := world(t)
	c.SetQuorate(false)
	_ = (evacstate.Marks{Attrs: c}).Set(context.Background(), "cmp2", evacstate.State{Phase: evacstate.Failed, Since: now, Reason: "1 VMs not recovered"})
	svc, _ := n.FindComputeService(context.Background(), "cmp3")
	_, _ = n.EnableService(context.Background(), svc.ID)
	src.Cluster = c // no evacuator running
	r, err := Gather(context.Background(), src)
	if err != nil {
		t.Fatal(err)
	}
	s := r.Summary()
	for _, want := range []string{"no quorum", "the evacuation daemon runs nowhere", "recovery of cmp2 failed", "reserved host cmp3 exposed"} {
		if !strings.Contains(s, want) {
			t.Errorf("summary %q lacks %q", s, want)
		}
	}
}

func TestNovaUnreachableLeavesTheClustersPictureWithTheProblemSaid(t *testing.T) {
	src, _, n := world(t)
	for range 50 {
		n.FailNext("FindComputeService", errors.New("503 Service Unavailable"))
		n.FailNext("Hypervisors", errors.New("503 Service Unavailable"))
	}
	r, err := Gather(context.Background(), src)
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Problems) == 0 || !strings.Contains(r.Summary(), "503") {
		t.Errorf("problems %v, summary %q", r.Problems, r.Summary())
	}
	if len(r.Recoveries) != 1 || r.Segments[0].Hosts[1].Pacemaker != "offline" {
		t.Errorf("the cluster's part is lost: %+v", r)
	}
}

func TestAClusterThatCannotBeReadIsAnError(t *testing.T) {
	src, _, _ := world(t)
	src.Cluster = broken{}
	if _, err := Gather(context.Background(), src); err == nil {
		t.Error("no error")
	}
}

type broken struct{ evacuatorOn }

func (broken) Status(context.Context) (*crm.Status, error) {
	return nil, errors.New("crm_mon: connection refused")
}
