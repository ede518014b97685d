// Package maintenance is computeha's host maintenance: a window during which a compute host's
// HA is off. Its health responses and alerts are suspended (recorded as such), a failure of it
// recovers nothing (recorded), it is no recovery target and no reserved host, and its
// nova-compute is disabled. The window lives in the permanent node attribute [Attribute], so it
// holds cluster-wide and survives the daemon moving or restarting:
//
//	since=2026-12-04T10:00:00Z;until=2026-12-04T12:00:00Z;by=alice;reason=RAM%20swap
//
// until is optional (the window lasts until `computeha maintenance exit`); the evacuation
// daemon ends a window whose until has passed. Pacemaker's own node standby and maintenance
// keep their meaning beside it.
package maintenance

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/computeha/computeha/crm"
	"github.com/computeha/computeha/internal/evacstate"
	"github.com/computeha/computeha/internal/openstack"
)

// Attribute is the permanent node attribute holding a host's maintenance window.
const Attribute = "computeha-maintenance"

// Window is a host's maintenance.
type Window struct {
	Since time.Time
	// Until ends it; zero: until an operator ends it.
	Until  time.Time
	By     string
	Reason string
}

// String renders the attribute value.
func (w Window) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "since=%s", w.Since.UTC().Format(time.RFC3339))
	if !w.Until.IsZero() {
		fmt.Fprintf(&b, ";until=%s", w.Until.UTC().Format(time.RFC3339))
	}
	if w.By != "" {
		fmt.Fprintf(&b, ";by=%s", url.QueryEscape(w.By))
	}
	if w.Reason != "" {
		fmt.Fprintf(&b, ";reason=%s", url.QueryEscape(w.Reason))
	}
	return b.String()
}

// Parse reads an attribute value. Unknown fields are tolerated (a newer writer's); a value
// without since, or with a field that does not parse, is an error.
func Parse(v string) (Window, error) {
	var w Window
	for _, part := range strings.Split(strings.TrimSpace(v), ";") {
		k, raw, ok := strings.Cut(part, "=")
		if !ok {
			return Window{}, fmt.Errorf("maintenance window %q: field %q is not key=value", v, part)
		}
		val, err := url.QueryUnescape(raw)
		if err != nil {
			return Window{}, fmt.Errorf("maintenance window %q: %s: %w", v, k, err)
		}
		switch k {
		case "since", "until":
			t, err := time.Parse(time.RFC3339, val)
			if err != nil {
				return Window{}, fmt.Errorf("maintenance window %q: %s: %w", v, k, err)
			}
			if k == "since" {
				w.Since = t
			} else {
				w.Until = t
			}
		case "by":
			w.By = val
		case "reason":
			w.Reason = val
		}
	}
	if w.Since.IsZero() {
		return Window{}, fmt.Errorf("maintenance window %q: no since", v)
	}
	return w, nil
}

// Over tells whether the window has ended by now.
func (w Window) Over(now time.Time) bool { return !w.Until.IsZero() && !now.Before(w.Until) }

// Describe is the window in a line: "by alice: RAM swap, until 12:00:00Z".
func (w Window) Describe() string {
	s := "in maintenance"
	if w.By != "" {
		s += " (by " + w.By + ")"
	}
	if w.Reason != "" {
		s += ": " + w.Reason
	}
	if !w.Until.IsZero() {
		s += ", until " + w.Until.UTC().Format(time.RFC3339)
	}
	return s
}

// DisabledReason is the reason the host's nova-compute is disabled with while in maintenance.
func (w Window) DisabledReason() string {
	r := evacstate.MaintenanceReasonPrefix + " " + w.Since.UTC().Format(time.RFC3339)
	if w.Reason != "" {
		r += " " + w.Reason
	}
	return r
}

// Of reads every host's window from the CIB (crm_mon leaves out the attributes of offline
// nodes: a host that failed in maintenance must still be known to be in it). A value that does
// not parse counts as a window of unknown end, with the error as its reason: the safe side is
// to keep HA off until an operator looks.
func Of(cib *crm.CIB) map[string]Window {
	out := map[string]Window{}
	for _, n := range cib.Nodes {
		if w, ok := FromValue(n.Attributes[Attribute]); ok {
			out[n.Name] = w
		}
	}
	return out
}

// FromValue is the window a node attribute's value holds: none when it is empty; a value that
// does not parse counts as a window of unknown end, with the error as its reason.
func FromValue(v string) (Window, bool) {
	if strings.TrimSpace(v) == "" {
		return Window{}, false
	}
	w, err := Parse(v)
	if err != nil {
		w = Window{Reason: "unreadable window: " + err.Error()}
	}
	return w, true
}

// Read reads node's window from its attribute: nil when it has none.
func Read(ctx context.Context, attrs interface {
	Attribute(ctx context.Context, node, name string, l crm.Lifetime) (string, error)
}, node string,
) (*Window, error) {
	v, err := attrs.Attribute(ctx, node, Attribute, crm.Permanent)
	if errors.Is(err, crm.ErrNoSuchObject) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("maintenance of %s: %w", node, err)
	}
	if w, ok := FromValue(v); ok {
		return &w, nil
	}
	return nil, nil
}

// Errors of [Hosts]' actions. Nothing was changed when one is returned.
var (
	ErrNoSuchNode       = errors.New("no such Pacemaker node")
	ErrUnderRecovery    = errors.New("its recovery is not over")
	ErrInMaintenance    = errors.New("already in maintenance")
	ErrNotInMaintenance = errors.New("not in maintenance")
)

// Cluster is what [Hosts] reads and changes in Pacemaker ([crm.Client] and [crm.Fake] have it).
type Cluster interface {
	evacstate.Attributes
	Status(ctx context.Context) (*crm.Status, error)
	CIB(ctx context.Context) (*crm.CIB, error)
}

// Nova is what [Hosts] changes in Nova ([openstack.Client] has it).
type Nova interface {
	FindComputeService(ctx context.Context, host string) (openstack.Service, error)
	DisableService(ctx context.Context, serviceID, reason string) (openstack.Service, error)
	EnableService(ctx context.Context, serviceID string) (openstack.Service, error)
}

// Hosts puts hosts into maintenance and takes them out.
type Hosts struct {
	Cluster Cluster
	Nova    Nova
	// NovaHost maps a node name to its Nova host name (config.Config.NovaHost).
	NovaHost func(node string) string
}

// Result is what an action did.
type Result struct {
	Window  Window
	Service openstack.Service
	// Kept says the service's disable was someone else's and was left as it was.
	Kept bool
}

// Enter puts node into maintenance with w: the window is written first (from then on nothing
// recovers it), then its nova-compute is disabled with [Window.DisabledReason]; a service
// already disabled for another reason keeps it. A host under recovery is refused: its VMs
// are being moved because it failed, and letting it back is the recovery's to decide.
func (h Hosts) Enter(ctx context.Context, node string, w Window) (Result, error) {
	if err := h.known(ctx, node); err != nil {
		return Result{}, err
	}
	st, err := (evacstate.Marks{Attrs: h.Cluster}).Get(ctx, node)
	if err != nil {
		return Result{}, err
	}
	if st.Blocking() {
		return Result{}, fmt.Errorf("%s: %w (it is %s)", node, ErrUnderRecovery, st.Phase)
	}
	if cur, err := Read(ctx, h.Cluster, node); err != nil {
		return Result{}, err
	} else if cur != nil {
		return Result{}, fmt.Errorf("%s: %w (%s)", node, ErrInMaintenance, cur.Describe())
	}
	svc, err := h.Nova.FindComputeService(ctx, h.NovaHost(node))
	if err != nil {
		return Result{}, fmt.Errorf("compute service of %s: %w", node, err)
	}
	if err := h.Cluster.SetAttribute(ctx, node, Attribute, w.String(), crm.Permanent); err != nil {
		return Result{}, fmt.Errorf("record the maintenance of %s: %w", node, err)
	}
	res := Result{Window: w, Service: svc}
	if !svc.Enabled() {
		res.Kept = true
		return res, nil
	}
	if res.Service, err = h.Nova.DisableService(ctx, svc.ID, w.DisabledReason()); err != nil {
		return res, fmt.Errorf("%s is in maintenance, but disabling it in Nova failed: %w", node, err)
	}
	return res, nil
}

// Exit ends node's maintenance: its nova-compute is enabled again if maintenance disabled it
// (a disable of anyone else stays), then the window is removed.
func (h Hosts) Exit(ctx context.Context, node string) (Result, error) {
	if err := h.known(ctx, node); err != nil {
		return Result{}, err
	}
	cur, err := Read(ctx, h.Cluster, node)
	if err != nil {
		return Result{}, err
	}
	if cur == nil {
		return Result{}, fmt.Errorf("%s: %w", node, ErrNotInMaintenance)
	}
	svc, err := h.Nova.FindComputeService(ctx, h.NovaHost(node))
	if err != nil {
		return Result{}, fmt.Errorf("compute service of %s: %w", node, err)
	}
	res := Result{Window: *cur, Service: svc, Kept: true}
	if !svc.Enabled() && strings.HasPrefix(svc.DisabledReason, evacstate.MaintenanceReasonPrefix) {
		if res.Service, err = h.Nova.EnableService(ctx, svc.ID); err != nil {
			return res, fmt.Errorf("enable %s: %w", node, err)
		}
		res.Kept = false
	}
	if err := h.Cluster.DeleteAttribute(ctx, node, Attribute, crm.Permanent); err != nil && !errors.Is(err, crm.ErrNoSuchObject) {
		return res, fmt.Errorf("remove the maintenance of %s: %w", node, err)
	}
	return res, nil
}

// List is every host in maintenance, by node name.
func (h Hosts) List(ctx context.Context) (map[string]Window, error) {
	cib, err := h.Cluster.CIB(ctx)
	if err != nil {
		return nil, fmt.Errorf("reading the CIB: %w", err)
	}
	return Of(cib), nil
}

func (h Hosts) known(ctx context.Context, node string) error {
	st, err := h.Cluster.Status(ctx)
	if err != nil {
		return fmt.Errorf("cluster status: %w", err)
	}
	if _, ok := st.Node(node); !ok {
		return fmt.Errorf("%s: %w", node, ErrNoSuchNode)
	}
	return nil
}
