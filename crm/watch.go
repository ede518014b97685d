package crm

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/user"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// EventKind names a change of cluster state.
type EventKind string

// Event kinds.
const (
	// NodeLost: the node left the cluster (or its remote connection died).
	NodeLost EventKind = "node-lost"
	// NodeUnclean: Pacemaker considers the node's state unknown and will
	// fence it.
	NodeUnclean EventKind = "node-unclean"
	// NodeFenced: a fencing operation on the node completed; OK tells
	// whether it succeeded.
	NodeFenced EventKind = "node-fenced"
	// NodeJoined: the node is (back) online.
	NodeJoined EventKind = "node-joined"
	// AttributeChanged: a node attribute was set, changed or removed
	// (Value "").
	AttributeChanged EventKind = "attribute-changed"
)

// Event sources.
const (
	SourceAlert  = "alert"  // pushed by Pacemaker through the alert agent
	SourceSpool  = "spool"  // an alert that arrived while the watcher was down
	SourcePoll   = "poll"   // seen by comparing cluster snapshots
	SourceResync = "resync" // seen at start-up against the state saved at exit
)

// Event is one change of cluster state.
type Event struct {
	Kind   EventKind
	Node   string
	Time   time.Time
	Source string
	// Fencing: the action and its result.
	Action string
	OK     bool
	Desc   string
	// Attribute: its name and new value.
	Name  string
	Value string
}

func (e Event) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s", e.Kind, e.Node)
	switch e.Kind {
	case NodeFenced:
		fmt.Fprintf(&b, " action=%s ok=%v", e.Action, e.OK)
	case AttributeChanged:
		fmt.Fprintf(&b, " %s=%q", e.Name, e.Value)
	}
	fmt.Fprintf(&b, " (%s)", e.Source)
	return b.String()
}

// WatchOptions configure a Watcher.
type WatchOptions struct {
	// Socket is the datagram socket the alert agent writes to ("" turns
	// the alert path off and leaves only the poll).
	Socket string
	// StateFile keeps the last known state across restarts of the
	// watcher, so changes made while it was down are still reported
	// ("" keeps it in memory only).
	StateFile string
	// PollInterval is how often the CIB version is checked (default 2 s).
	PollInterval time.Duration
	// Attribute selects the attributes reported (default: all but
	// Pacemaker's own, "#..." and fail-count-*/last-failure-*).
	Attribute func(name string) bool
	// FenceDedup is how close in time two reports of the same action on
	// the same target must be to be one fencing (default 2 s: the history
	// has one-second resolution and records completion, the alert the
	// moment it was raised).
	FenceDedup time.Duration
	Log        *slog.Logger
}

// Watcher reports node and attribute changes of the cluster.
type Watcher struct {
	client *Client
	opts   WatchOptions
	known  knownState
	conn   *net.UnixConn
}

type nodeView struct {
	Online  bool `json:"online"`
	Unclean bool `json:"unclean"`
}

// knownState is what the watcher has reported so far; it is what an event
// is compared with to collapse duplicates.
type knownState struct {
	Seeded  bool                         `json:"seeded"`
	Version Version                      `json:"version"`
	Nodes   map[string]nodeView          `json:"nodes"`
	Attrs   map[string]map[string]string `json:"attrs"`
	// Fence is, per target, the fencing results reported recently.
	Fence map[string][]fenceSeen `json:"fence"`
}

// fenceSeen is a fencing result already reported.
type fenceSeen struct {
	Action string    `json:"action"`
	At     time.Time `json:"at"`
}

// keepFences is how many results per target are remembered for matching.
const keepFences = 16

// NewWatcher returns a watcher of the cluster c talks to.
func NewWatcher(c *Client, opts WatchOptions) *Watcher {
	if opts.PollInterval <= 0 {
		opts.PollInterval = 2 * time.Second
	}
	if opts.FenceDedup <= 0 {
		opts.FenceDedup = 2 * time.Second
	}
	if opts.Attribute == nil {
		opts.Attribute = defaultAttribute
	}
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	opts.Log = opts.Log.With("component", "crm-watch")
	return &Watcher{client: c, opts: opts, known: emptyState()}
}

func emptyState() knownState {
	return knownState{Nodes: map[string]nodeView{}, Attrs: map[string]map[string]string{}, Fence: map[string][]fenceSeen{}}
}

func defaultAttribute(name string) bool {
	return !strings.HasPrefix(name, "#") && !strings.HasPrefix(name, "fail-count-") &&
		!strings.HasPrefix(name, "last-failure-") && name != "shutdown" && name != "terminate"
}

// Listen opens the alert socket (Run does it when needed); calling it
// before Run lets a caller know the socket is ready.
func (w *Watcher) Listen() error {
	if w.opts.Socket == "" || w.conn != nil {
		return nil
	}
	dir := filepath.Dir(w.opts.Socket)
	gid, haveGroup := HaclientGID()
	// Pacemaker runs alert agents as hacluster: the socket and the spool
	// are shared with the haclient group, and with nobody else.
	mode := os.FileMode(0o700)
	if haveGroup {
		mode = SharedDirMode
	}
	for _, d := range []string{dir, SpoolDir(w.opts.Socket)} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return fmt.Errorf("alert socket directory: %w", err)
		}
		if haveGroup {
			if err := os.Chown(d, -1, gid); err != nil {
				return fmt.Errorf("alert socket directory: %w", err)
			}
		}
		if err := os.Chmod(d, mode); err != nil {
			return fmt.Errorf("alert socket directory: %w", err)
		}
	}
	if err := os.Remove(w.opts.Socket); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("stale alert socket: %w", err)
	}
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: w.opts.Socket, Net: "unixgram"})
	if err != nil {
		return fmt.Errorf("alert socket: %w", err)
	}
	if haveGroup {
		if err := os.Chown(w.opts.Socket, -1, gid); err != nil {
			conn.Close()
			return err
		}
		if err := os.Chmod(w.opts.Socket, 0o660); err != nil {
			conn.Close()
			return err
		}
	}
	w.conn = conn
	return nil
}

// SharedDirMode is the mode of the directories computeha shares with Pacemaker's haclient
// group (the alert socket's and the spool): setgid, so what is made in them stays in the
// group, and sticky, so that the alert agent cannot remove or replace root's sockets.
const SharedDirMode = 0o770 | os.ModeSetgid | os.ModeSticky

// HaclientGID is the group Pacemaker runs its daemons and agents in (alert agents too), if
// the host has it.
func HaclientGID() (int, bool) {
	g, err := user.LookupGroup("haclient")
	if err != nil {
		return 0, false
	}
	gid, err := strconv.Atoi(g.Gid)
	return gid, err == nil
}

// Run reports changes on out until ctx ends. At start it loads the state
// saved by the previous run, replays spooled alerts, and compares a fresh
// snapshot with what was known, so nothing that happened while it was down
// is lost; then it reports alerts as they arrive and polls the CIB version
// as a backstop. Each change is reported once, whichever path sees it
// first.
func (w *Watcher) Run(ctx context.Context, out chan<- Event) error {
	if err := w.loadState(); err != nil {
		w.opts.Log.Warn("ignoring the saved watch state", "error", err)
		w.known = emptyState()
	}
	if err := w.Listen(); err != nil {
		return err
	}
	alerts := make(chan AlertRecord, 256)
	if w.conn != nil {
		defer w.conn.Close()
		go w.readAlerts(ctx, alerts)
	}
	if w.opts.Socket != "" {
		recs, files, bad := readSpool(SpoolDir(w.opts.Socket))
		for _, err := range bad {
			w.opts.Log.Warn("unreadable spooled alert", "error", err)
		}
		for _, r := range recs {
			if err := w.emit(ctx, out, w.applyAlert(r, SourceSpool)); err != nil {
				return err
			}
		}
		if err := w.saveState(); err != nil {
			return err
		}
		for _, f := range files {
			_ = os.Remove(f)
		}
	}
	if err := w.poll(ctx, out, true); err != nil && ctx.Err() == nil {
		w.opts.Log.Warn("first snapshot failed; retrying at the next poll", "error", err)
	}
	tick := time.NewTicker(w.opts.PollInterval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case r := <-alerts:
			if err := w.emit(ctx, out, w.applyAlert(r, SourceAlert)); err != nil {
				return err
			}
			if err := w.saveState(); err != nil {
				w.opts.Log.Warn("saving the watch state failed", "error", err)
			}
		case <-tick.C:
			if err := w.poll(ctx, out, false); err != nil && ctx.Err() == nil {
				w.opts.Log.Warn("poll failed", "error", err)
			}
		}
	}
}

func (w *Watcher) readAlerts(ctx context.Context, alerts chan<- AlertRecord) {
	buf := make([]byte, 64*1024)
	for {
		n, err := w.conn.Read(buf)
		if err != nil {
			if ctx.Err() == nil && !errors.Is(err, net.ErrClosed) {
				w.opts.Log.Warn("alert socket read failed", "error", err)
			}
			return
		}
		var r AlertRecord
		if err := json.Unmarshal(buf[:n], &r); err != nil {
			w.opts.Log.Warn("malformed alert datagram", "error", err)
			continue
		}
		select {
		case alerts <- r:
		case <-ctx.Done():
			return
		}
	}
}

func (w *Watcher) emit(ctx context.Context, out chan<- Event, evs []Event) error {
	for _, e := range evs {
		w.opts.Log.Debug("event", "event", e.String())
		select {
		case out <- e:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

// applyAlert updates the known state with one alert and returns the
// events it makes (none when the change was already reported).
func (w *Watcher) applyAlert(r AlertRecord, source string) []Event {
	k := &w.known
	switch r.Kind {
	case "node":
		prev, seen := k.Nodes[r.Node]
		switch r.Desc {
		case "lost":
			if seen && !prev.Online {
				return nil
			}
			k.Nodes[r.Node] = nodeView{Online: false, Unclean: prev.Unclean}
			return []Event{{Kind: NodeLost, Node: r.Node, Time: r.Time, Source: source}}
		case "member":
			if seen && prev.Online {
				return nil
			}
			k.Nodes[r.Node] = nodeView{Online: true}
			return []Event{{Kind: NodeJoined, Node: r.Node, Time: r.Time, Source: source}}
		}
	case "fencing":
		return w.fenced(r.Node, fenceAction(r), r.RC == "0", r.Desc, r.Time, source)
	case "attribute":
		if !w.opts.Attribute(r.AttrName) {
			return nil
		}
		return w.attribute(r.Node, r.AttrName, r.AttrValue, r.Time, source)
	}
	return nil
}

// fenced records a fencing result. A successful fencing of a node still
// known online means it was lost: that is reported first, so consumers see
// lost before fenced whichever path was faster.
func (w *Watcher) fenced(target, action string, ok bool, desc string, at time.Time, source string) []Event {
	k := &w.known
	if w.fenceSeen(target, action, at) {
		return nil
	}
	seen := append(k.Fence[target], fenceSeen{Action: action, At: at})
	if len(seen) > keepFences {
		seen = seen[len(seen)-keepFences:]
	}
	k.Fence[target] = seen
	var evs []Event
	if prev := k.Nodes[target]; ok && prev.Online {
		evs = append(evs, Event{Kind: NodeLost, Node: target, Time: at, Source: source})
	}
	if ok {
		k.Nodes[target] = nodeView{Online: false, Unclean: false}
	}
	return append(evs, Event{Kind: NodeFenced, Node: target, Time: at, Source: source, Action: action, OK: ok, Desc: desc})
}

// fenceSeen tells whether this result was reported already (by the other
// path).
func (w *Watcher) fenceSeen(target, action string, at time.Time) bool {
	for _, f := range w.known.Fence[target] {
		d := at.Sub(f.At)
		if f.Action == action && d <= w.opts.FenceDedup && d >= -w.opts.FenceDedup {
			return true
		}
	}
	return false
}

// fenceActionRE finds the action in a fencing alert's description,
// "Operation reboot of cmp1 by ctl2 for ...: OK": CRM_alert_task holds the
// notification type (st_notify_fence), not the action.
var fenceActionRE = regexp.MustCompile(`^Operation (\S+) of `)

func fenceAction(r AlertRecord) string {
	if m := fenceActionRE.FindStringSubmatch(r.Desc); m != nil {
		return m[1]
	}
	return r.Task
}

func (w *Watcher) attribute(node, name, value string, at time.Time, source string) []Event {
	m := w.known.Attrs[node]
	if m == nil {
		m = map[string]string{}
		w.known.Attrs[node] = m
	}
	if old, seen := m[name]; (seen && old == value) || (!seen && value == "") {
		return nil
	}
	if value == "" {
		delete(m, name)
	} else {
		m[name] = value
	}
	return []Event{{Kind: AttributeChanged, Node: node, Time: at, Source: source, Name: name, Value: value}}
}

// poll compares a fresh snapshot with the known state when the CIB
// version moved (always when force is set).
func (w *Watcher) poll(ctx context.Context, out chan<- Event, force bool) error {
	v, err := w.client.Version(ctx)
	if err != nil {
		return err
	}
	if !force && v == w.known.Version {
		return nil
	}
	st, err := w.client.Status(ctx)
	if err != nil {
		return err
	}
	source := SourcePoll
	if force {
		source = SourceResync
	}
	var evs []Event
	if w.known.Seeded {
		evs = w.diff(st, time.Now().UTC(), source)
	} else {
		w.seed(st)
	}
	w.known.Version = v
	if err := w.emit(ctx, out, evs); err != nil {
		return err
	}
	return w.saveState()
}

// seed takes a snapshot as the baseline: the first run reports changes
// from now on, not the state the cluster is already in.
func (w *Watcher) seed(st *Status) {
	w.known = emptyState()
	w.known.Seeded = true
	for _, n := range st.Nodes {
		w.known.Nodes[n.Name] = nodeView{Online: n.Online, Unclean: n.Unclean}
	}
	for node, attrs := range st.Attributes {
		for name, value := range attrs {
			if w.opts.Attribute(name) {
				w.attribute(node, name, value, time.Time{}, "")
			}
		}
	}
	for _, f := range st.Fencing {
		if !f.Completed.IsZero() && !w.fenceSeen(f.Target, f.Action, f.Completed) {
			w.known.Fence[f.Target] = append(w.known.Fence[f.Target], fenceSeen{Action: f.Action, At: f.Completed})
		}
	}
}

// diff turns the differences between st and the known state into events,
// fencing first per node so the order is lost, fenced, joined.
func (w *Watcher) diff(st *Status, now time.Time, source string) []Event {
	var evs []Event
	fencing := slices.Clone(st.Fencing)
	slices.SortFunc(fencing, func(a, b FenceEvent) int { return a.Completed.Compare(b.Completed) })
	for _, f := range fencing {
		if f.Completed.IsZero() || (f.Status != "success" && f.Status != "failed") {
			continue
		}
		evs = append(evs, w.fenced(f.Target, f.Action, f.Succeeded(), f.ExitReason, f.Completed, source)...)
	}
	for _, n := range st.Nodes {
		prev, seen := w.known.Nodes[n.Name]
		cur := nodeView{Online: n.Online, Unclean: n.Unclean}
		switch {
		case (!seen || prev.Online) && !cur.Online && (seen || cur.Unclean):
			evs = append(evs, Event{Kind: NodeLost, Node: n.Name, Time: now, Source: source})
		case (!seen || !prev.Online) && cur.Online:
			evs = append(evs, Event{Kind: NodeJoined, Node: n.Name, Time: now, Source: source})
		}
		if cur.Unclean && (!seen || !prev.Unclean) {
			evs = append(evs, Event{Kind: NodeUnclean, Node: n.Name, Time: now, Source: source})
		}
		w.known.Nodes[n.Name] = cur
	}
	nodes := map[string]bool{}
	for node, attrs := range st.Attributes {
		nodes[node] = true
		for name, value := range attrs {
			if w.opts.Attribute(name) {
				evs = append(evs, w.attribute(node, name, value, now, source)...)
			}
		}
	}
	for node, attrs := range w.known.Attrs {
		for name := range attrs {
			if _, still := st.Attributes[node][name]; !still {
				evs = append(evs, w.attribute(node, name, "", now, source)...)
			}
		}
	}
	return evs
}

func (w *Watcher) loadState() error {
	if w.opts.StateFile == "" {
		return nil
	}
	b, err := os.ReadFile(w.opts.StateFile)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	s := emptyState()
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("%s: %w", w.opts.StateFile, err)
	}
	if s.Nodes == nil || s.Attrs == nil || s.Fence == nil {
		return fmt.Errorf("%s: incomplete state", w.opts.StateFile)
	}
	w.known = s
	return nil
}

// saveState writes the known state atomically, so a crash leaves the old
// or the new state, never half of one.
func (w *Watcher) saveState() error {
	if w.opts.StateFile == "" {
		return nil
	}
	b, err := json.Marshal(w.known)
	if err != nil {
		return err
	}
	tmp := w.opts.StateFile + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return fmt.Errorf("save watch state: %w", err)
	}
	if err := os.Rename(tmp, w.opts.StateFile); err != nil {
		return fmt.Errorf("save watch state: %w", err)
	}
	return nil
}
