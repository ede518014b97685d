package crm

import (
	"encoding/xml"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"
)

// NodeType tells cluster members from remote and guest nodes.
type NodeType string

// Node types as crm_mon reports them.
const (
	NodeMember NodeType = "member"
	NodeRemote NodeType = "remote"
	NodePing   NodeType = "ping"
)

// Node is one node as crm_mon sees it.
type Node struct {
	Name          string
	ID            string
	Type          NodeType
	Online        bool
	Standby       bool
	StandbyOnFail bool
	Maintenance   bool
	Pending       bool
	// Connecting: a remote node whose connection Pacemaker is starting. crm_mon reads such a
	// node online from the start's first moment, and a fenced host that is off reads so for
	// the length of every reconnection attempt; the node is online (Online) only once its
	// connection has started.
	Connecting       bool
	Unclean          bool
	Shutdown         bool
	ExpectedUp       bool
	IsDC             bool
	Health           string
	ResourcesRunning int
}

// Resource is one primitive resource (clone and group members included,
// with Parent naming the clone or group).
type Resource struct {
	ID      string
	Parent  string
	Agent   string // e.g. "stonith:fence_ipmi", "ocf:pacemaker:remote"
	Role    string
	Active  bool
	Failed  bool
	Managed bool
	Blocked bool
	Nodes   []string // where it runs
}

// FenceEvent is one fencing operation from a fencing history.
type FenceEvent struct {
	Action   string // off, reboot, on
	Target   string
	Client   string
	Origin   string
	Delegate string // the node that executed it
	Status   string // success, failed, pending
	// ExitReason is Pacemaker's explanation of a failure, when it gives one.
	ExitReason string
	Completed  time.Time // zero while pending
}

// Succeeded tells whether the operation completed successfully.
func (e FenceEvent) Succeeded() bool { return e.Status == "success" }

// ManualDelegate is the delegate Pacemaker records for a fencing confirmed by hand
// (stonith_admin --confirm): no device ran.
const ManualDelegate = "a human"

// Manual tells whether the fencing was confirmed by hand rather than done by a device.
func (e FenceEvent) Manual() bool { return e.Delegate == ManualDelegate }

// Status is the cluster as crm_mon --output-as=xml reports it.
type Status struct {
	DC string // name of the DC; empty when there is none
	// Quorate tells whether the partition crm_mon talked to has quorum.
	Quorate bool
	// Options are the cluster options crm_mon summarises.
	StonithEnabled  bool
	MaintenanceMode bool
	Nodes           []Node
	Resources       []Resource
	// Attributes are node attributes by node name, then attribute name.
	// crm_mon merges transient and permanent ones; the CIB tells them apart.
	Attributes map[string]map[string]string
	// Fencing is the fencing history crm_mon includes, newest first.
	Fencing []FenceEvent
	// Failures are the failed resource actions Pacemaker still counts (until they expire
	// or are cleaned up).
	Failures []Failure
}

// Failure is one failed resource action as crm_mon lists it.
type Failure struct {
	OpKey    string // the operation key, RESOURCE_TASK_INTERVAL
	Resource string // the resource ("" if OpKey does not say; an anonymous clone's instances share its name)
	Task     string // start, stop, monitor, ...
	Interval string // the operation's interval in milliseconds, "0" for a one-time action
	Node     string
	// ExitStatus is the agent's result by name (error, not running, ...); Status is the
	// execution's (Done, Timed Out, ...); ExitReason explains it when the agent did.
	ExitStatus, Status, ExitReason string
}

// Node returns the node called name.
func (s *Status) Node(name string) (Node, bool) {
	for _, n := range s.Nodes {
		if n.Name == name {
			return n, true
		}
	}
	return Node{}, false
}

// The wire format of crm_mon --output-as=xml (Pacemaker 2.1 schema
// api/crm_mon-2.x). Attributes are strings so unknown spellings of
// booleans decode instead of failing.
type xmlResult struct {
	XMLName xml.Name     `xml:"pacemaker-result"`
	Summary xmlSummary   `xml:"summary"`
	Nodes   []xmlNode    `xml:"nodes>node"`
	Rsc     xmlRscList   `xml:"resources"`
	Attrs   []xmlAttrSet `xml:"node_attributes>node"`
	Fencing []xmlFence   `xml:"fence_history>fence_event"`
	Failed  []xmlFailure `xml:"failures>failure"`
	List    []xmlFence   `xml:"list>fence_event"`
	Attr    []xmlAttr    `xml:"attribute"`
	Status  *xmlStatus   `xml:"status"`
}

// xmlFailure names no resource: its operation key is RESOURCE_TASK_INTERVAL.
type xmlFailure struct {
	OpKey      string `xml:"op_key,attr"`
	Node       string `xml:"node,attr"`
	Task       string `xml:"task,attr"`
	Interval   string `xml:"interval,attr"`
	ExitStatus string `xml:"exitstatus,attr"`
	Status     string `xml:"status,attr"`
	ExitReason string `xml:"exitreason,attr"`
}

type xmlStatus struct {
	Code    string   `xml:"code,attr"`
	Message string   `xml:"message,attr"`
	Errors  []string `xml:"errors>error"`
}

type xmlSummary struct {
	DC struct {
		Present    string `xml:"present,attr"`
		Name       string `xml:"name,attr"`
		WithQuorum string `xml:"with_quorum,attr"`
	} `xml:"current_dc"`
	Options struct {
		StonithEnabled  string `xml:"stonith-enabled,attr"`
		MaintenanceMode string `xml:"maintenance-mode,attr"`
	} `xml:"cluster_options"`
}

type xmlNode struct {
	Name             string `xml:"name,attr"`
	ID               string `xml:"id,attr"`
	Type             string `xml:"type,attr"`
	Online           string `xml:"online,attr"`
	Standby          string `xml:"standby,attr"`
	StandbyOnFail    string `xml:"standby_onfail,attr"`
	Maintenance      string `xml:"maintenance,attr"`
	Pending          string `xml:"pending,attr"`
	Unclean          string `xml:"unclean,attr"`
	Shutdown         string `xml:"shutdown,attr"`
	ExpectedUp       string `xml:"expected_up,attr"`
	IsDC             string `xml:"is_dc,attr"`
	Health           string `xml:"health,attr"`
	ResourcesRunning string `xml:"resources_running,attr"`
}

type xmlRscList struct {
	Resources []xmlResource `xml:"resource"`
	Clones    []xmlRscGroup `xml:"clone"`
	Groups    []xmlRscGroup `xml:"group"`
	Bundles   []xmlRscGroup `xml:"bundle"`
}

type xmlRscGroup struct {
	ID string `xml:"id,attr"`
	xmlRscList
}

type xmlResource struct {
	ID      string `xml:"id,attr"`
	Agent   string `xml:"resource_agent,attr"`
	Role    string `xml:"role,attr"`
	Active  string `xml:"active,attr"`
	Failed  string `xml:"failed,attr"`
	Managed string `xml:"managed,attr"`
	Blocked string `xml:"blocked,attr"`
	Nodes   []struct {
		Name string `xml:"name,attr"`
	} `xml:"node"`
}

type xmlAttrSet struct {
	Name  string    `xml:"name,attr"`
	Attrs []xmlAttr `xml:"attribute"`
}

type xmlAttr struct {
	Name  string `xml:"name,attr"`
	Value string `xml:"value,attr"`
	Host  string `xml:"host,attr"`
	Scope string `xml:"scope,attr"`
}

type xmlFence struct {
	Action     string `xml:"action,attr"`
	Target     string `xml:"target,attr"`
	Client     string `xml:"client,attr"`
	Origin     string `xml:"origin,attr"`
	Delegate   string `xml:"delegate,attr"`
	Status     string `xml:"status,attr"`
	ExitReason string `xml:"exit-reason,attr"`
	Completed  string `xml:"completed,attr"`
}

// truthy reads Pacemaker's booleans: "true"/"false", "1"/"0", "yes"/"no",
// "on"/"off"; anything else (absent included) is false.
func truthy(s string) bool {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "true", "1", "yes", "on", "y":
		return true
	}
	return false
}

// fenceTimeLayouts are the spellings of completion times seen in
// Pacemaker 2.1 output.
var fenceTimeLayouts = []string{"2006-01-02 15:04:05Z07:00", "2006-01-02 15:04:05Z", time.RFC3339}

func parseFenceTime(s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	for _, l := range fenceTimeLayouts {
		if t, err := time.Parse(l, s); err == nil {
			return t.UTC(), nil
		}
	}
	return time.Time{}, fmt.Errorf("unrecognised time %q", s)
}

// decodeResult reads a pacemaker-result document and fails when its
// status reports an error.
func decodeResult(r io.Reader, what string) (*xmlResult, error) {
	var res xmlResult
	dec := xml.NewDecoder(r)
	if err := dec.Decode(&res); err != nil {
		return nil, fmt.Errorf("decode %s: %w", what, err)
	}
	if res.Status != nil {
		code, err := strconv.Atoi(res.Status.Code)
		if err != nil {
			return nil, fmt.Errorf("decode %s: status code %q is not a number", what, res.Status.Code)
		}
		if code != 0 {
			return nil, &ToolError{Tool: what, Code: ExitCode(code), Message: resultMessage(res.Status)}
		}
	}
	return &res, nil
}

func resultMessage(s *xmlStatus) string {
	msg := s.Message
	if len(s.Errors) > 0 {
		msg += ": " + strings.Join(s.Errors, "; ")
	}
	return msg
}

// DecodeStatus decodes the output of crm_mon --output-as=xml.
func DecodeStatus(r io.Reader) (*Status, error) {
	res, err := decodeResult(r, "crm_mon")
	if err != nil {
		return nil, err
	}
	if res.XMLName.Local != "pacemaker-result" {
		return nil, fmt.Errorf("decode crm_mon: not a pacemaker-result document")
	}
	st := &Status{
		Quorate:         truthy(res.Summary.DC.WithQuorum),
		StonithEnabled:  truthy(res.Summary.Options.StonithEnabled),
		MaintenanceMode: truthy(res.Summary.Options.MaintenanceMode),
		Attributes:      map[string]map[string]string{},
	}
	if truthy(res.Summary.DC.Present) {
		st.DC = res.Summary.DC.Name
	}
	for _, n := range res.Nodes {
		if n.Name == "" {
			return nil, fmt.Errorf("decode crm_mon: a node without a name")
		}
		running, _ := strconv.Atoi(n.ResourcesRunning)
		typ := NodeType(n.Type)
		if typ == "" {
			typ = NodeMember
		}
		st.Nodes = append(st.Nodes, Node{
			Name: n.Name, ID: n.ID, Type: typ,
			Online: truthy(n.Online), Standby: truthy(n.Standby), StandbyOnFail: truthy(n.StandbyOnFail),
			Maintenance: truthy(n.Maintenance), Pending: truthy(n.Pending), Unclean: truthy(n.Unclean),
			Shutdown: truthy(n.Shutdown), ExpectedUp: truthy(n.ExpectedUp), IsDC: truthy(n.IsDC),
			Health: n.Health, ResourcesRunning: running,
		})
	}
	st.Resources = flattenResources(res.Rsc, "")
	for i, n := range st.Nodes {
		if n.Type == NodeRemote && n.Online && connectionStarting(st.Resources, n) {
			st.Nodes[i].Online, st.Nodes[i].Connecting = false, true
		}
	}
	for _, set := range res.Attrs {
		m := st.Attributes[set.Name]
		if m == nil {
			m = map[string]string{}
			st.Attributes[set.Name] = m
		}
		for _, a := range set.Attrs {
			m[a.Name] = a.Value
		}
	}
	st.Fencing, err = fenceEvents(res.Fencing)
	if err != nil {
		return nil, fmt.Errorf("decode crm_mon: %w", err)
	}
	for _, f := range res.Failed {
		st.Failures = append(st.Failures, Failure{
			OpKey: f.OpKey, Resource: failedResource(f), Task: f.Task, Interval: f.Interval, Node: f.Node,
			ExitStatus: f.ExitStatus, Status: f.Status, ExitReason: f.ExitReason,
		})
	}
	return st, nil
}

// connectionStarting tells whether remote node n's connection resource is being started:
// crm_mon's role "Starting", a start recorded as pending.
func connectionStarting(rs []Resource, n Node) bool {
	r, ok := connectionOf(rs, n.ID)
	return ok && r.Role == "Starting"
}

// connectionOf is the pacemaker-remote connection resource of the remote node of id (the
// resource of the same id).
func connectionOf(rs []Resource, id string) (Resource, bool) {
	i := slices.IndexFunc(rs, func(r Resource) bool { return r.ID == id && strings.HasSuffix(r.Agent, ":pacemaker:remote") })
	if i < 0 {
		return Resource{}, false
	}
	return rs[i], true
}

// failedResource is the resource a failure's operation key names: the key less "_TASK_INTERVAL",
// or, for a notification, less "_pre_notify_..." or "_post_notify_...". A key of another form
// names none (the failure is kept all the same: one odd entry must not hide the others).
func failedResource(f xmlFailure) string {
	if rsc, ok := strings.CutSuffix(f.OpKey, "_"+f.Task+"_"+f.Interval); ok {
		return rsc
	}
	if f.Task == "notify" {
		for _, when := range []string{"_pre_notify_", "_post_notify_"} {
			if i := strings.LastIndex(f.OpKey, when); i > 0 {
				return f.OpKey[:i]
			}
		}
	}
	return ""
}

func flattenResources(l xmlRscList, parent string) []Resource {
	var out []Resource
	for _, r := range l.Resources {
		rs := Resource{
			ID: r.ID, Parent: parent, Agent: r.Agent, Role: r.Role,
			Active: truthy(r.Active), Failed: truthy(r.Failed), Managed: truthy(r.Managed), Blocked: truthy(r.Blocked),
		}
		for _, n := range r.Nodes {
			rs.Nodes = append(rs.Nodes, n.Name)
		}
		out = append(out, rs)
	}
	for _, groups := range [][]xmlRscGroup{l.Clones, l.Groups, l.Bundles} {
		for _, g := range groups {
			out = append(out, flattenResources(g.xmlRscList, g.ID)...)
		}
	}
	return out
}

func fenceEvents(in []xmlFence) ([]FenceEvent, error) {
	var out []FenceEvent
	for _, f := range in {
		t, err := parseFenceTime(f.Completed)
		if err != nil {
			return nil, fmt.Errorf("fence event for %s: %w", f.Target, err)
		}
		out = append(out, FenceEvent{
			Action: f.Action, Target: f.Target, Client: f.Client, Origin: f.Origin,
			Delegate: f.Delegate, Status: f.Status, ExitReason: f.ExitReason, Completed: t,
		})
	}
	return out, nil
}

// DecodeFencingHistory decodes stonith_admin --history ... --output-as=xml.
func DecodeFencingHistory(r io.Reader) ([]FenceEvent, error) {
	res, err := decodeResult(r, "stonith_admin --history")
	if err != nil {
		return nil, err
	}
	evs, err := fenceEvents(res.List)
	if err != nil {
		return nil, fmt.Errorf("decode fencing history: %w", err)
	}
	return evs, nil
}

// AttributeValue is one node attribute value as the attribute tools print it.
type AttributeValue struct {
	Name  string
	Value string
	Node  string // attrd_updater names the node; crm_attribute does not
}

// DecodeAttributes decodes attrd_updater -Q or crm_attribute --query output.
func DecodeAttributes(r io.Reader) ([]AttributeValue, error) {
	res, err := decodeResult(r, "attribute query")
	if err != nil {
		return nil, err
	}
	var out []AttributeValue
	for _, a := range res.Attr {
		out = append(out, AttributeValue{Name: a.Name, Value: a.Value, Node: a.Host})
	}
	return out, nil
}
