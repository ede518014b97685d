package crm

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// ErrNoConnection is returned by FenceRemote when told of no connection.
var ErrNoConnection = errors.New("no active pacemaker-remote connection")

// fenceRemotePoll is how often FenceRemote reads the fencing history while it waits.
const fenceRemotePoll = 500 * time.Millisecond

// RemoteConnection is the cluster node running node's pacemaker-remote connection resource;
// "" when node is no remote node online with its connection active on exactly one node.
func (c *Client) RemoteConnection(ctx context.Context, node string) (string, error) {
	st, err := c.Status(ctx)
	if err != nil {
		return "", err
	}
	return remoteConnection(st, node), nil
}

// FenceRemote has Pacemaker itself fence the pacemaker-remote node whose connection runs on
// where (RemoteConnection): it fails the connection resource there (crm_resource --fail),
// which Pacemaker answers as it does a connection lost (its default on-fail for a remote
// connection is to fence the node), and waits until the fencing history holds a fencing of
// node completed after the request, at most timeout.
//
// A fencing asked of the fencer (stonith_admin) while Pacemaker still holds the node's
// connection is followed by another: the power-off drops the connection seconds later, the
// operations in flight on the node fail, and Pacemaker fences the node again for them. Asked
// this way, the fencing is Pacemaker's own, and the only one.
func (c *Client) FenceRemote(ctx context.Context, node, where string, timeout time.Duration) error {
	if node == "" || where == "" {
		return fmt.Errorf("fence %q through its connection on %q: %w", node, where, ErrNoConnection)
	}
	before, err := c.FencingHistory(ctx, node)
	if err != nil {
		return err
	}
	if _, err := c.Runner.Run(ctx, "crm_resource", "--fail", "--resource", node, "--node", where); err != nil {
		return fmt.Errorf("fail the connection of %s on %s: %w", node, where, err)
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var last []FenceEvent
	for {
		if h, err := c.FencingHistory(ctx, node); err == nil {
			last = h
			if slices.ContainsFunc(h, func(e FenceEvent) bool { return e.Succeeded() && !slices.Contains(before, e) }) {
				return nil
			}
		}
		t := time.NewTimer(fenceRemotePoll)
		select {
		case <-ctx.Done():
			t.Stop()
			if ctx.Err() == context.DeadlineExceeded {
				return fmt.Errorf("fence %s through its connection: no fencing completed within %s (%s): %w", node, timeout, describeNew(last, before), ErrTimeout)
			}
			return ctx.Err()
		case <-t.C:
		}
	}
}

// remoteConnection is the node running node's pacemaker-remote connection resource, "" when
// node is no remote node online with its connection active on exactly one node.
func remoteConnection(st *Status, node string) string {
	i := slices.IndexFunc(st.Nodes, func(n Node) bool { return n.Name == node })
	if i < 0 || st.Nodes[i].Type != NodeRemote || !st.Nodes[i].Online {
		return ""
	}
	if r, ok := connectionOf(st.Resources, st.Nodes[i].ID); ok && r.Active && len(r.Nodes) == 1 {
		return r.Nodes[0]
	}
	return ""
}

// describeNew says what the fencer did of h that before did not hold, for an error.
func describeNew(h, before []FenceEvent) string {
	var parts []string
	for _, e := range h {
		if slices.Contains(before, e) {
			continue
		}
		s := e.Action + " " + e.Status
		if e.ExitReason != "" {
			s += " (" + e.ExitReason + ")"
		}
		parts = append(parts, s)
	}
	if len(parts) == 0 {
		return "none begun"
	}
	return strings.Join(parts, ", ")
}
