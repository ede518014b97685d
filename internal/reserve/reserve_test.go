package reserve

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/computeha/computeha/crm"
	"github.com/computeha/computeha/internal/config"
	"github.com/computeha/computeha/internal/evacstate"
	"github.com/computeha/computeha/internal/openstack"
)

var now = time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)

type pool struct {
	Pool
	nova    *openstack.Fake
	cluster *crm.Fake
}

// newPool: segment a of cmp1..cmp5 with reserved cmp4 and cmp5; segment b (an aggregate) of
// cmp6..cmp7 with reserved cmp7. Every service enabled and empty.
func newPool(t *testing.T) pool {
	t.Helper()
	cfg, err := config.Parse([]byte(`
cloud: test
segments:
  a:
    hosts: [cmp1, cmp2, cmp3, cmp4, cmp5]
    recovery_method: rh_priority
    reserved_hosts: [cmp4, cmp5]
  b:
    aggregate: agg-b
    recovery_method: reserved_host
    reserved_hosts: [cmp7]
    reserved_return: auto
`))
	if err != nil {
		t.Fatal(err)
	}
	n := openstack.NewFake(func() time.Time { return now })
	for _, h := range []string{"cmp1", "cmp2", "cmp3", "cmp4", "cmp5", "cmp6", "cmp7"} {
		n.AddCompute(h, "nova")
	}
	n.AddAggregate(openstack.Aggregate{ID: 1, Name: "agg-b", Hosts: []string{"cmp6", "cmp7"}})
	c := crm.NewFake(func() time.Time { return now }, "ctl1", "cmp1", "cmp2", "cmp3", "cmp4", "cmp5", "cmp6", "cmp7")
	return pool{Pool: Pool{Config: cfg, Nova: n, Cluster: c, Now: func() time.Time { return now }}, nova: n, cluster: c}
}

func (p pool) disable(t *testing.T, host, reason string) {
	t.Helper()
	svc, err := p.nova.FindComputeService(context.Background(), host)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.nova.DisableService(context.Background(), svc.ID, reason); err != nil {
		t.Fatal(err)
	}
}

func (p pool) use(t *testing.T, host string) {
	t.Helper()
	if err := p.cluster.SetAttribute(context.Background(), host, UsedAttribute, "2026-12-04T11:00:00Z", crm.Permanent); err != nil {
		t.Fatal(err)
	}
}

func TestListTellsEachReservedHostsState(t *testing.T) {
	p := newPool(t)
	p.disable(t, "cmp4", "reserved for failover")
	p.disable(t, "cmp5", "PSU replacement")
	p.use(t, "cmp7")
	p.nova.AddServer(openstack.Server{Name: "vm1", Host: "cmp7"})
	got, err := p.List(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	type row struct {
		Segment, Node string
		State         State
		Servers       int
		Note          string
	}
	var rows []row
	for _, h := range got {
		rows = append(rows, row{h.Segment, h.Node, h.State, h.Servers, h.Note})
	}
	want := []row{
		{"a", "cmp4", InReserve, 0, ""},
		{"a", "cmp5", Withheld, 0, "disabled for another reason (PSU replacement): no recovery takes it"},
		{"b", "cmp7", InUse, 1, ""},
	}
	if diff := cmp.Diff(want, rows); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	if !got[2].UsedSince.Equal(time.Date(2026, 12, 4, 11, 0, 0, 0, time.UTC)) {
		t.Errorf("cmp7 used since %s", got[2].UsedSince)
	}
}

func TestAReservedHostEnabledWithoutUseIsExposed(t *testing.T) {
	p := newPool(t)
	h, err := p.Find(context.Background(), "cmp4")
	if err != nil {
		t.Fatal(err)
	}
	if h.State != Exposed || !strings.Contains(h.Note, "the scheduler may place VMs on it") {
		t.Errorf("%+v, want exposed", h)
	}
}

func TestReturnGivesAnEmptiedHostBackDisabledAndForgetsItsUse(t *testing.T) {
	p := newPool(t)
	p.use(t, "cmp4")
	h, err := p.Return(context.Background(), "cmp4")
	if err != nil {
		t.Fatal(err)
	}
	if h.State != InReserve || !h.UsedSince.IsZero() {
		t.Errorf("returned host %+v, want in reserve", h)
	}
	svc, _ := p.nova.FindComputeService(context.Background(), "cmp4")
	if svc.Enabled() || !strings.HasPrefix(svc.DisabledReason, evacstate.ReserveReasonPrefix) || !strings.Contains(svc.DisabledReason, "segment a") {
		t.Errorf("service %+v, want disabled as held in reserve", svc)
	}
	if evacstate.DisabledByUs(svc.DisabledReason) {
		t.Error("fence_nova or the nova-compute agent would enable the returned host again")
	}
	if _, err := p.cluster.Attribute(context.Background(), "cmp4", UsedAttribute, crm.Permanent); !errors.Is(err, crm.ErrNoSuchObject) {
		t.Errorf("the use is still recorded (%v)", err)
	}
	// What a recovery reads next: a reserved host held in reserve, to take again.
	if again, _ := p.Find(context.Background(), "cmp4"); again.State != InReserve {
		t.Errorf("read again: %+v", again)
	}
}

func TestReturnRefusesWhatItCannotGiveBackAndChangesNothing(t *testing.T) {
	for _, tt := range []struct {
		name, host string
		setup      func(t *testing.T, p pool)
		want       error
	}{
		{"an ordinary host", "cmp1", func(*testing.T, pool) {}, ErrNotReserved},
		{"an unknown host", "cmp9", func(*testing.T, pool) {}, ErrNotReserved},
		{"a host held in reserve already", "cmp4", func(t *testing.T, p pool) { p.disable(t, "cmp4", "") }, ErrNotInUse},
		{"a host in use that still holds a server", "cmp7", func(t *testing.T, p pool) {
			p.use(t, "cmp7")
			p.nova.AddServer(openstack.Server{Name: "vm1", Host: "cmp7"})
		}, ErrNotEmpty},
	} {
		t.Run(tt.name, func(t *testing.T) {
			p := newPool(t)
			tt.setup(t, p)
			before, _ := p.List(context.Background())
			_, err := p.Return(context.Background(), tt.host)
			if !errors.Is(err, tt.want) {
				t.Fatalf("error %v, want %v", err, tt.want)
			}
			after, _ := p.List(context.Background())
			if diff := cmp.Diff(before, after); diff != "" {
				t.Errorf("changed (-before +after):\n%s", diff)
			}
		})
	}
}

func TestReturnKeepsAnOperatorsDisable(t *testing.T) {
	p := newPool(t)
	p.use(t, "cmp5")
	p.disable(t, "cmp5", "PSU replacement")
	h, err := p.Return(context.Background(), "cmp5")
	if err != nil {
		t.Fatal(err)
	}
	svc, _ := p.nova.FindComputeService(context.Background(), "cmp5")
	if svc.DisabledReason != "PSU replacement" || h.State != Withheld {
		t.Errorf("service %+v, host %+v: the operator's reason must stay, and the host be withheld", svc, h)
	}
}

// landing is Nova where a server lands on the host while it is being disabled.
type landing struct{ *openstack.Fake }

func (l landing) DisableService(ctx context.Context, id, reason string) (openstack.Service, error) {
	svc, err := l.Fake.DisableService(ctx, id, reason)
	l.AddServer(openstack.Server{Name: "late", Host: svc.Host})
	return svc, err
}

func TestAServerLandingWhileTheHostIsReturnedEnablesItAgain(t *testing.T) {
	p := newPool(t)
	p.use(t, "cmp4")
	p.Nova = landing{p.nova}
	if _, err := p.Return(context.Background(), "cmp4"); !errors.Is(err, ErrNotEmpty) {
		t.Fatalf("error %v, want not empty", err)
	}
	svc, _ := p.nova.FindComputeService(context.Background(), "cmp4")
	if !svc.Enabled() {
		t.Errorf("the host in use was left disabled: %+v", svc)
	}
	if v, _ := p.cluster.Attribute(context.Background(), "cmp4", UsedAttribute, crm.Permanent); v == "" {
		t.Error("the use was forgotten")
	}
}
