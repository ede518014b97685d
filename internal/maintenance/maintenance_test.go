package maintenance

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/computeha/computeha/crm"
	"github.com/computeha/computeha/internal/evacstate"
	"github.com/computeha/computeha/internal/openstack"
)

var (
	since = time.Date(2026, 12, 4, 10, 0, 0, 0, time.UTC)
	until = time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)
)

func TestAWindowRoundTripsThroughItsAttributeValue(t *testing.T) {
	for _, w := range []Window{
		{Since: since},
		{Since: since, Until: until, By: "alice", Reason: "RAM swap; ticket=4521"},
	} {
		got, err := Parse(w.String())
		if err != nil {
			t.Fatalf("%q: %v", w.String(), err)
		}
		if diff := cmp.Diff(w, got); diff != "" {
			t.Errorf("%q (-want +got):\n%s", w.String(), diff)
		}
	}
	for _, bad := range []string{"", "until=2026-12-04T12:00:00Z", "since=yesterday", "since"} {
		if _, err := Parse(bad); err == nil {
			t.Errorf("%q parsed", bad)
		}
	}
	if w := (Window{Since: since, Until: until}); w.Over(until.Add(-time.Second)) || !w.Over(until) || (Window{Since: since}).Over(until.AddDate(1, 0, 0)) {
		t.Error("Over: a window ends at its until, and one without never")
	}
}

func TestAnUnreadableWindowCountsAsMaintenance(t *testing.T) {
	f := crm.NewFake(nil, "cmp1", "cmp2")
	_ = f.SetAttribute(context.Background(), "cmp1", Attribute, "since=noon", crm.Permanent)
	cib, _ := f.CIB(context.Background())
	got := Of(cib)
	if w, ok := got["cmp1"]; !ok || !strings.Contains(w.Reason, "unreadable") {
		t.Errorf("windows %+v: an unreadable value must keep HA off", got)
	}
	if _, ok := got["cmp2"]; ok {
		t.Error("cmp2 has no window")
	}
}

// failingAttrs fails every read.
type failingAttrs struct{}

func (failingAttrs) Attribute(context.Context, string, string, crm.Lifetime) (string, error) {
	return "", errors.New("attrd unreachable")
}

func TestReadTellsNoWindowAnUnreadableOneAndAFailedRead(t *testing.T) {
	ctx := context.Background()
	f := crm.NewFake(nil, "cmp1", "cmp2", "cmp3")
	_ = f.SetAttribute(ctx, "cmp1", Attribute, "since=noon", crm.Permanent)
	_ = f.SetAttribute(ctx, "cmp2", Attribute, Window{Since: time.Date(2026, 12, 1, 8, 0, 0, 0, time.UTC), Reason: "PSU"}.String(), crm.Permanent)
	if w, err := Read(ctx, f, "cmp1"); err != nil || w == nil || !strings.Contains(w.Reason, "unreadable") {
		t.Errorf("cmp1 (unreadable value): %+v, %v; want a window that keeps HA off", w, err)
	}
	if w, err := Read(ctx, f, "cmp2"); err != nil || w == nil || w.Reason != "PSU" {
		t.Errorf("cmp2: %+v, %v; want its window", w, err)
	}
	if w, err := Read(ctx, f, "cmp3"); err != nil || w != nil {
		t.Errorf("cmp3 (no attribute): %+v, %v; want none", w, err)
	}
	if w, err := Read(ctx, failingAttrs{}, "cmp1"); err == nil || w != nil {
		t.Errorf("a failed read: %+v, %v; want an error", w, err)
	}
}

func hostsOn(t *testing.T) (Hosts, *crm.Fake, *openstack.Fake) {
	t.Helper()
	c := crm.NewFake(nil, "ctl1", "cmp1", "cmp2")
	n := openstack.NewFake(nil)
	n.AddCompute("cmp1", "nova")
	n.AddCompute("cmp2", "nova")
	return Hosts{Cluster: c, Nova: n, NovaHost: func(s string) string { return s }}, c, n
}

func service(t *testing.T, n *openstack.Fake, host string) openstack.Service {
	t.Helper()
	s, err := n.FindComputeService(context.Background(), host)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestEnterDisablesAndExitEnablesAgain(t *testing.T) {
	h, c, n := hostsOn(t)
	w := Window{Since: since, Until: until, By: "alice", Reason: "RAM swap"}
	res, err := h.Enter(context.Background(), "cmp1", w)
	if err != nil || res.Kept {
		t.Fatalf("enter: %+v, %v", res, err)
	}
	svc := service(t, n, "cmp1")
	if svc.Enabled() || !strings.HasPrefix(svc.DisabledReason, evacstate.MaintenanceReasonPrefix) || !strings.Contains(svc.DisabledReason, "RAM swap") {
		t.Errorf("service %+v", svc)
	}
	if evacstate.DisabledByUs(svc.DisabledReason) || evacstate.HeldInReserve(svc.DisabledReason) {
		t.Error("fence_nova or the nova-compute agent would enable a host in maintenance, or a recovery take it as a reserved host")
	}
	if got, _ := h.List(context.Background()); !cmp.Equal(got, map[string]Window{"cmp1": w}) {
		t.Errorf("list %+v", got)
	}
	if _, err := h.Enter(context.Background(), "cmp1", w); !errors.Is(err, ErrInMaintenance) {
		t.Errorf("entering twice: %v", err)
	}
	res, err = h.Exit(context.Background(), "cmp1")
	if err != nil || res.Kept || !service(t, n, "cmp1").Enabled() {
		t.Fatalf("exit: %+v, %v", res, err)
	}
	if v, _ := c.Attribute(context.Background(), "cmp1", Attribute, crm.Permanent); v != "" {
		t.Errorf("window left: %q", v)
	}
	if _, err := h.Exit(context.Background(), "cmp1"); !errors.Is(err, ErrNotInMaintenance) {
		t.Errorf("exiting twice: %v", err)
	}
}

func TestAnOperatorsDisableIsKeptOnTheWayInAndOut(t *testing.T) {
	h, _, n := hostsOn(t)
	if _, err := n.DisableService(context.Background(), service(t, n, "cmp2").ID, "PSU replacement"); err != nil {
		t.Fatal(err)
	}
	res, err := h.Enter(context.Background(), "cmp2", Window{Since: since})
	if err != nil || !res.Kept {
		t.Fatalf("enter: %+v, %v", res, err)
	}
	if res, err = h.Exit(context.Background(), "cmp2"); err != nil || !res.Kept {
		t.Fatalf("exit: %+v, %v", res, err)
	}
	if svc := service(t, n, "cmp2"); svc.Enabled() || svc.DisabledReason != "PSU replacement" {
		t.Errorf("the operator's disable was changed: %+v", svc)
	}
}

func TestEnterRefusesWhatItMustNotTouchAndChangesNothing(t *testing.T) {
	for _, tt := range []struct {
		name, node string
		want       error
	}{
		{"an unknown host", "cmp9", ErrNoSuchNode},
		{"a host under recovery", "cmp1", ErrUnderRecovery},
	} {
		t.Run(tt.name, func(t *testing.T) {
			h, c, n := hostsOn(t)
			_ = (evacstate.Marks{Attrs: c}).Set(context.Background(), "cmp1", evacstate.State{Phase: evacstate.Running, Since: since})
			if _, err := h.Enter(context.Background(), tt.node, Window{Since: since}); !errors.Is(err, tt.want) {
				t.Fatalf("error %v, want %v", err, tt.want)
			}
			if got, _ := h.List(context.Background()); len(got) != 0 {
				t.Errorf("windows %+v", got)
			}
			if !service(t, n, "cmp1").Enabled() {
				t.Error("cmp1 disabled")
			}
		})
	}
}
