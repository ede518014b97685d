package crm

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"
)

// Client performs operations on the cluster through the tools.
type Client struct {
	Runner *Runner
}

// NewClient returns a client using r (nil: the tools found on PATH).
func NewClient(r *Runner) *Client {
	if r == nil {
		r = &Runner{}
	}
	return &Client{Runner: r}
}

// Status reads the cluster state, fencing history included.
func (c *Client) Status(ctx context.Context) (*Status, error) {
	out, err := c.Runner.Run(ctx, "crm_mon", "--one-shot", "--output-as=xml", "--include=all")
	if err != nil {
		return nil, err
	}
	return DecodeStatus(bytes.NewReader(out))
}

// CIB reads the whole CIB.
func (c *Client) CIB(ctx context.Context) (*CIB, error) {
	out, err := c.Runner.Run(ctx, "cibadmin", "--query")
	if err != nil {
		return nil, err
	}
	return DecodeCIB(bytes.NewReader(out))
}

// Version reads the CIB's version: the cheap "did anything change" check.
func (c *Client) Version(ctx context.Context) (Version, error) {
	// Only the root element: the version without the rest of the CIB.
	out, err := c.Runner.Run(ctx, "cibadmin", "--query", "--xpath", "/cib", "--no-children")
	if err != nil {
		return Version{}, err
	}
	return DecodeVersion(bytes.NewReader(out))
}

// Lifetime tells where a node attribute lives.
type Lifetime int

// Attribute lifetimes.
const (
	// Transient attributes live in the status section, through attrd: they
	// vanish when the node leaves the cluster or the cluster restarts. Every
	// change is written to the CIB, and a change of the status section aborts
	// the DC's transition in progress: an attribute that changes often can keep
	// Pacemaker from ever running its transition (a fencing, for one).
	Transient Lifetime = iota
	// Permanent attributes live in the configuration section: they survive
	// every restart.
	Permanent
	// Private attributes are held by attrd only, never written to the CIB, so
	// changing one never aborts a transition; they are lost when the cluster
	// restarts, and only attrd_updater reads them (not crm_mon, not cibadmin).
	// attrd decides privacy when it creates the attribute: setting as Private
	// an attribute attrd already holds as Transient keeps it Transient (CIB
	// writes included) until attrd forgets it, when the whole cluster has
	// stopped (attrd peers hand their attributes to a restarting one).
	Private
)

// attrd reports whether l is held by attrd (attrd_updater) rather than
// crm_attribute.
func (l Lifetime) attrd() bool { return l == Transient || l == Private }

// SetAttribute sets a node attribute.
func (c *Client) SetAttribute(ctx context.Context, node, name, value string, l Lifetime) error {
	var err error
	switch l {
	case Transient:
		_, err = c.Runner.Run(ctx, "attrd_updater", "--name", name, "--update", value, "--node", node)
	case Private:
		// --private takes effect only when this update creates the attribute.
		_, err = c.Runner.Run(ctx, "attrd_updater", "--private", "--name", name, "--update", value, "--node", node)
	default:
		_, err = c.Runner.Run(ctx, "crm_attribute", "--node", node, "--name", name, "--update", value, "--lifetime", "forever")
	}
	if err != nil {
		return fmt.Errorf("set node attribute %s=%s on %s: %w", name, value, node, err)
	}
	return nil
}

// Attribute reads a node attribute; ErrNoSuchObject when it is not set.
func (c *Client) Attribute(ctx context.Context, node, name string, l Lifetime) (string, error) {
	var out []byte
	var err error
	if l.attrd() {
		out, err = c.Runner.Run(ctx, "attrd_updater", "--query", "--name", name, "--node", node, "--output-as=xml")
	} else {
		out, err = c.Runner.Run(ctx, "crm_attribute", "--node", node, "--name", name, "--query", "--lifetime", "forever", "--output-as=xml")
	}
	if err != nil {
		return "", fmt.Errorf("read node attribute %s of %s: %w", name, node, err)
	}
	vals, err := DecodeAttributes(bytes.NewReader(out))
	if err != nil {
		return "", err
	}
	for _, v := range vals {
		// attrd keeps a deleted attribute with an empty value (for a private
		// one, until the cluster restarts); for callers it is gone.
		if v.Name == name && (v.Node == "" || v.Node == node) && (v.Value != "" || !l.attrd()) {
			return v.Value, nil
		}
	}
	return "", fmt.Errorf("read node attribute %s of %s: %w", name, node, ErrNoSuchObject)
}

// AttributeAllNodes reads one Transient or Private attribute of every node
// from attrd, by node name. Nodes where it is not set are absent: an
// attribute attrd has never heard of is an empty map, not an error, and so
// is one whose values were all deleted (attrd keeps those as empty values).
func (c *Client) AttributeAllNodes(ctx context.Context, name string) (map[string]string, error) {
	out, err := c.Runner.Run(ctx, "attrd_updater", "--query", "--all", "--name", name, "--output-as=xml")
	if errors.Is(err, ErrNoSuchObject) {
		return map[string]string{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read node attribute %s of every node: %w", name, err)
	}
	vals, err := DecodeAttributes(bytes.NewReader(out))
	if err != nil {
		return nil, fmt.Errorf("read node attribute %s of every node: %w", name, err)
	}
	m := make(map[string]string, len(vals))
	for _, v := range vals {
		if v.Name == name && v.Node != "" && v.Value != "" {
			m[v.Node] = v.Value
		}
	}
	return m, nil
}

// DeleteAttribute removes a node attribute; removing one that is not set
// succeeds.
func (c *Client) DeleteAttribute(ctx context.Context, node, name string, l Lifetime) error {
	var err error
	if l.attrd() {
		_, err = c.Runner.Run(ctx, "attrd_updater", "--name", name, "--delete", "--node", node)
	} else {
		_, err = c.Runner.Run(ctx, "crm_attribute", "--node", node, "--name", name, "--delete", "--lifetime", "forever")
	}
	if err != nil && !errors.Is(err, ErrNoSuchObject) {
		return fmt.Errorf("delete node attribute %s of %s: %w", name, node, err)
	}
	return nil
}

// FenceAction is what fencing does to the target.
type FenceAction string

// Fencing actions.
const (
	FenceOff    FenceAction = "off"
	FenceReboot FenceAction = "reboot"
)

// FenceAction is the action Pacemaker's own fencing of a lost node asks for: the cluster
// option stonith-action ("reboot" by default; "poweroff" is the old name of "off"; Pacemaker
// takes a value it does not know for the default). A request for the same action as one the
// fencer is running for the same node is merged into it: the devices run once.
func (c *CIB) FenceAction() FenceAction {
	switch c.Properties["stonith-action"] {
	case "off", "poweroff":
		return FenceOff
	}
	return FenceReboot
}

// Fence asks Pacemaker's fencer to fence node and waits for the result,
// at most timeout.
func (c *Client) Fence(ctx context.Context, node string, action FenceAction, timeout time.Duration) error {
	flag := "--fence"
	if action == FenceReboot {
		flag = "--reboot"
	}
	secs := max(1, int(timeout/time.Second))
	r := *c.Runner
	r.Timeout = timeout + 10*time.Second
	if _, err := r.Run(ctx, "stonith_admin", flag, node, "--timeout", strconv.Itoa(secs)); err != nil {
		return fmt.Errorf("fence %s (%s): %w", node, action, err)
	}
	return nil
}

// ConfirmFenced tells Pacemaker's fencer that node is safely down without running any fence
// device (stonith_admin --confirm): Pacemaker records a successful "off" and stops retrying
// the node's fencing, so an unclean node that is in fact healthy can rejoin. It is a manual
// override of fencing: the caller must know the node holds nothing that others may take over.
func (c *Client) ConfirmFenced(ctx context.Context, node string) error {
	if node == "" {
		return errors.New("confirm fencing: empty node name")
	}
	if _, err := c.Runner.Run(ctx, "stonith_admin", "--confirm", node); err != nil {
		return fmt.Errorf("confirm %s fenced: %w", node, err)
	}
	return nil
}

// FencingHistory lists the fencing operations on node ("" for every node),
// newest first, as the fencer remembers them (in memory only: the history
// is gone after the whole cluster restarts).
func (c *Client) FencingHistory(ctx context.Context, node string) ([]FenceEvent, error) {
	if node == "" {
		node = "*"
	}
	out, err := c.Runner.Run(ctx, "stonith_admin", "--history", node, "--output-as=xml")
	if err != nil {
		return nil, fmt.Errorf("fencing history of %s: %w", node, err)
	}
	return DecodeFencingHistory(bytes.NewReader(out))
}

// SetStandby puts node into standby (no resources run there) or back.
func (c *Client) SetStandby(ctx context.Context, node string, on bool) error {
	return c.setNodeFlag(ctx, node, "standby", on)
}

// SetMaintenance puts node into maintenance (Pacemaker leaves its
// resources alone) or back.
func (c *Client) SetMaintenance(ctx context.Context, node string, on bool) error {
	return c.setNodeFlag(ctx, node, "maintenance", on)
}

func (c *Client) setNodeFlag(ctx context.Context, node, name string, on bool) error {
	if on {
		return c.SetAttribute(ctx, node, name, "true", Permanent)
	}
	return c.DeleteAttribute(ctx, node, name, Permanent)
}

// Quorum reports whether the local partition has quorum, and its DC.
func (c *Client) Quorum(ctx context.Context) (quorate bool, dc string, err error) {
	st, err := c.Status(ctx)
	if err != nil {
		return false, "", err
	}
	return st.Quorate, st.DC, nil
}
