package crm

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestTheFakeKeepsPermanentAndTransientAttributesApartAsPacemakerDoes(t *testing.T) {
	ctx := context.Background()
	f := NewFake(nil, "cmp1", "cmp2")
	if _, err := f.Attribute(ctx, "cmp1", "x", Permanent); !errors.Is(err, ErrNoSuchObject) {
		t.Fatalf("an attribute never set: %v, want ErrNoSuchObject", err)
	}
	_ = f.SetAttribute(ctx, "cmp1", "x", "perm", Permanent)
	_ = f.SetAttribute(ctx, "cmp1", "x", "trans", Transient)
	_ = f.SetAttribute(ctx, "cmp2", "x", "", Transient)
	if v, _ := f.Attribute(ctx, "cmp1", "x", Permanent); v != "perm" {
		t.Errorf("permanent x = %q", v)
	}
	cib, _ := f.CIB(ctx)
	if len(cib.Nodes) != 2 || cib.Nodes[0].Attributes["x"] != "perm" {
		t.Errorf("CIB nodes: %+v, want cmp1 with x=perm from the configuration", cib.Nodes)
	}
	all, _ := f.AttributeAllNodes(ctx, "x")
	if len(all) != 1 || all["cmp1"] != "trans" {
		t.Errorf("attrd's x: %v, want only cmp1's transient value (an empty one is no value)", all)
	}
	_ = f.DeleteAttribute(ctx, "cmp1", "x", Permanent)
	if _, err := f.Attribute(ctx, "cmp1", "x", Permanent); !errors.Is(err, ErrNoSuchObject) {
		t.Errorf("a deleted attribute: %v, want ErrNoSuchObject", err)
	}
}

func TestTheFakeRecordsFencingRequestsAndLetsTheTestActAsTheTopology(t *testing.T) {
	ctx := context.Background()
	at := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	f := NewFake(func() time.Time { return at }, "cmp1")
	f.OnFence = func(node string, _ FenceAction) error {
		f.Fenced(node, at)
		return nil
	}
	if err := f.Fence(ctx, "cmp1", FenceOff, time.Minute); err != nil {
		t.Fatal(err)
	}
	f.FenceErr = errors.New("refused")
	f.OnFence = nil
	if err := f.Fence(ctx, "cmp1", FenceOff, time.Minute); err == nil {
		t.Error("Fence with FenceErr set succeeded")
	}
	if got := f.Fences(); len(got) != 2 || got[0] != "cmp1 off" {
		t.Errorf("fences %v", got)
	}
	_ = f.ConfirmFenced(ctx, "cmp1")
	h, _ := f.FencingHistory(ctx, "cmp1")
	if len(h) != 2 || !h[0].Succeeded() || h[0].Manual() || !h[1].Manual() {
		t.Errorf("history %+v, want the topology's fencing then a manual confirmation", h)
	}
	st, _ := f.Status(ctx)
	if !st.Quorate || len(st.Fencing) != 2 || !st.Fencing[0].Manual() {
		t.Errorf("status: quorate %v, fencing newest first %+v", st.Quorate, st.Fencing)
	}
}
