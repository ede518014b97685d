// Package lab drives the Pacemaker lab of test/lab/lab from Go tests: a
// multi-node Pacemaker/Corosync cluster with pacemaker-remote compute nodes
// and an ipmi_sim BMC per node, each node in its own namespaces on this
// machine. The script does all the work (and needs root); this package only
// runs it and decodes what it prints, so a lab started here can be inspected
// and torn down with the script by hand, and the other way round.
package lab

import (
	"bytes"
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"
)

// Node kinds as printed by "lab nodes".
const (
	Controller = "controller" // full Pacemaker/Corosync node
	Compute    = "compute"    // pacemaker-remote node
)

// SharedDir is where every node mounts the lab's shared storage: a directory
// of the storage server, reached over the storage network only (sshfs).
const SharedDir = "/var/lib/computeha/shared"

// The lab's networks (test/lab/lab gives node h the address .h on each).
const (
	MgmtSubnet    = "192.168.1.0/24"
	StorageSubnet = "192.168.2.0/24"
	TenantSubnet  = "192.168.3.0/24"
)

// DefaultPrefix names the namespaces of a lab started without a prefix.
const DefaultPrefix = "chalab"

// Options configure Up. Zero values take the script's defaults.
type Options struct {
	Controllers int    // default 3
	Computes    int    // default 3
	Dir         string // state and logs; default $LAB_DIR or /tmp/chalab
	Bin         string // directory of computeha and its agents; default: make build
	// Prefix names the lab's namespaces (PREFIX-fabric, PREFIX-ctl1, ...), so
	// that two labs can run side by side; default $LAB_PREFIX or "chalab".
	Prefix string
	// Libvirt gives every compute a libvirtd of its own, started at each of
	// its boots (lab up --libvirt), for nova-compute's libvirt driver.
	Libvirt bool
	// Log receives the script's progress messages (stderr); nil drops them.
	Log io.Writer
}

// Lab is a running lab.
type Lab struct {
	script string
	dir    string
	prefix string
	log    io.Writer
}

// Node is one line of "lab nodes".
type Node struct {
	Name      string
	Kind      string // Controller or Compute
	Mgmt      string // management address (corosync, pacemaker-remote)
	Storage   string
	Tenant    string
	BMC       string // address:port of the node's IPMI BMC
	HolderPID int    // 0 when the node's namespaces are gone
	// Shared is where the node mounts the shared storage (SharedDir); empty
	// for a lab started by a version of the script without shared storage.
	Shared string
}

// Script is the path of the lab script in this source tree.
func Script() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "lab")
}

// Up starts a lab and returns once the cluster has settled. On error the
// script has already removed what it started.
func Up(ctx context.Context, o Options) (*Lab, error) {
	l := &Lab{script: Script(), dir: o.Dir, prefix: o.Prefix, log: o.Log}
	if l.dir == "" {
		l.dir = os.Getenv("LAB_DIR")
	}
	if l.dir == "" {
		l.dir = "/tmp/chalab"
	}
	if l.prefix == "" {
		l.prefix = os.Getenv("LAB_PREFIX")
	}
	if l.prefix == "" {
		l.prefix = DefaultPrefix
	}
	args := []string{}
	if o.Controllers > 0 {
		args = append(args, "--controllers", strconv.Itoa(o.Controllers))
	}
	if o.Computes > 0 {
		args = append(args, "--computes", strconv.Itoa(o.Computes))
	}
	if o.Bin != "" {
		args = append(args, "--bin", o.Bin)
	}
	if o.Libvirt {
		args = append(args, "--libvirt")
	}
	if _, err := l.run(ctx, "up", args...); err != nil {
		return nil, err
	}
	return l, nil
}

// Dir is the lab's directory (logs under nodes/NODE/log, BMCs under bmc/,
// the storage server under storage/).
func (l *Lab) Dir() string { return l.dir }

// Prefix is the common prefix of the lab's network namespaces.
func (l *Lab) Prefix() string { return l.prefix }

// Down stops and removes everything of the lab. It is safe to call twice.
func (l *Lab) Down(ctx context.Context) error {
	_, err := l.run(ctx, "down")
	return err
}

// Nodes lists the lab's nodes in the order ctl1..ctlN, cmp1..cmpM.
func (l *Lab) Nodes(ctx context.Context) ([]Node, error) {
	out, err := l.run(ctx, "nodes")
	if err != nil {
		return nil, err
	}
	return parseNodes(out)
}

func parseNodes(out string) ([]Node, error) {
	var nodes []Node
	for line := range strings.Lines(out) {
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		// The 8th column, the shared storage's mount point, is printed only
		// for labs that have shared storage.
		if len(f) != 7 && len(f) != 8 {
			return nil, fmt.Errorf("unexpected line from lab nodes: %q", line)
		}
		n := Node{Name: f[0], Kind: f[1], Mgmt: f[2], Storage: f[3], Tenant: f[4], BMC: f[5]}
		if len(f) == 8 {
			n.Shared = f[7]
		}
		if f[6] != "-" {
			pid, err := strconv.Atoi(f[6])
			if err != nil {
				return nil, fmt.Errorf("bad holder pid in %q: %w", line, err)
			}
			n.HolderPID = pid
		}
		nodes = append(nodes, n)
	}
	return nodes, nil
}

// Exec runs a command inside a node. code is the command's exit status
// (125 if the node's namespaces are gone); err is set only when the command
// could not be run or ctx ended.
func (l *Lab) Exec(ctx context.Context, node string, args ...string) (stdout, stderr string, code int, err error) {
	return l.ExecInput(ctx, node, nil, args...)
}

// ExecInput is Exec with stdin.
func (l *Lab) ExecInput(ctx context.Context, node string, stdin io.Reader, args ...string) (stdout, stderr string, code int, err error) {
	cmd := exec.CommandContext(ctx, l.script, append([]string{"exec", "--dir", l.dir, node}, args...)...)
	cmd.Env = l.env()
	cmd.Stdin = stdin
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err = cmd.Run()
	if ee, ok := errors.AsType[*exec.ExitError](err); ok && ctx.Err() == nil {
		return out.String(), errb.String(), ee.ExitCode(), nil
	}
	if err != nil {
		return out.String(), errb.String(), -1, fmt.Errorf("lab exec %s %q: %w", node, args, err)
	}
	return out.String(), errb.String(), 0, nil
}

// Cut takes a node's link to a network (mgmt, storage or tenant) down on
// the switch side; Heal brings it back.
func (l *Lab) Cut(ctx context.Context, node, network string) error {
	_, err := l.run(ctx, "cut", node, network)
	return err
}

// Heal reverses Cut.
func (l *Lab) Heal(ctx context.Context, node, network string) error {
	_, err := l.run(ctx, "heal", node, network)
	return err
}

// StorageDown takes the shared storage server's link down on the switch
// side: it stops answering every node at once, as a failed NFS server or
// Ceph cluster would. StorageUp brings it back.
func (l *Lab) StorageDown(ctx context.Context) error {
	_, err := l.run(ctx, "storage", "down")
	return err
}

// StorageUp reverses StorageDown.
func (l *Lab) StorageUp(ctx context.Context) error {
	_, err := l.run(ctx, "storage", "up")
	return err
}

// StorageStatus is "up", "down" (after StorageDown) or "stopped" (its sshd
// is not running).
func (l *Lab) StorageStatus(ctx context.Context) (string, error) {
	out, err := l.run(ctx, "storage", "status")
	return strings.TrimSpace(out), err
}

// Power sends "on" or "off" to the node's BMC over IPMI, or reads its power
// ("status"); it returns "on" or "off" for status and "" otherwise.
func (l *Lab) Power(ctx context.Context, node, action string) (string, error) {
	out, err := l.run(ctx, "power", node, action)
	return strings.TrimSpace(out), err
}

// Kill sends SIGKILL to the named daemon (its /proc comm) of one node.
func (l *Lab) Kill(ctx context.Context, node, daemon string) error {
	_, err := l.run(ctx, "kill", node, daemon)
	return err
}

// Freeze hangs a node as a hung kernel would: links down, every process
// stopped. Thaw reverses it.
func (l *Lab) Freeze(ctx context.Context, node string) error {
	_, err := l.run(ctx, "freeze", node)
	return err
}

// Thaw reverses Freeze.
func (l *Lab) Thaw(ctx context.Context, node string) error {
	_, err := l.run(ctx, "thaw", node)
	return err
}

// BMCEvents are the power changes the node's BMC carried out, oldest first:
// "on" or "off" each.
func (l *Lab) BMCEvents(node string) ([]string, error) {
	log, err := l.BMCEventLog(node)
	if err != nil {
		return nil, err
	}
	evs := make([]string, 0, len(log))
	for _, ev := range log {
		evs = append(evs, ev.What)
	}
	return evs, nil
}

// BMCEvent is one power change the node's BMC carried out.
type BMCEvent struct {
	At   time.Time
	What string // "on" or "off"
}

// BMCEventLog is BMCEvents with the time of each change.
func (l *Lab) BMCEventLog(node string) ([]BMCEvent, error) {
	data, err := os.ReadFile(filepath.Join(l.dir, "bmc", node, "events"))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading BMC events of %s: %w", node, err)
	}
	var evs []BMCEvent
	for line := range strings.Lines(string(data)) {
		f := strings.Fields(line)
		if len(f) != 2 {
			continue
		}
		secs, err := strconv.ParseFloat(f[0], 64)
		if err != nil {
			return nil, fmt.Errorf("BMC events of %s: bad time in %q", node, line)
		}
		evs = append(evs, BMCEvent{At: time.UnixMilli(int64(secs * 1000)), What: f[1]})
	}
	return evs, nil
}

// BMC makes the node's BMC unreachable on its network ("down": a BMC that lost its own
// power, or a cut IPMI network) or reachable again ("up"); "status" reads which. The node's
// power and its watchdog are untouched.
func (l *Lab) BMC(ctx context.Context, node, action string) (string, error) {
	out, err := l.run(ctx, "bmc", node, action)
	return strings.TrimSpace(out), err
}

// CrmMonXML runs crm_mon --output-as=xml on the first controller that
// answers.
func (l *Lab) CrmMonXML(ctx context.Context) ([]byte, error) {
	out, err := l.onController(ctx, "crm_mon", "-1", "--output-as=xml")
	return []byte(out), err
}

// onController runs a Pacemaker tool on the first controller where it
// succeeds (a controller may be powered off or fenced).
func (l *Lab) onController(ctx context.Context, args ...string) (string, error) {
	nodes, err := l.Nodes(ctx)
	if err != nil {
		return "", err
	}
	var errs []error
	for _, n := range nodes {
		if n.Kind != Controller || n.HolderPID == 0 {
			continue
		}
		stdout, stderr, code, err := l.Exec(ctx, n.Name, args...)
		if err != nil {
			return "", err
		}
		if code == 0 {
			return stdout, nil
		}
		errs = append(errs, fmt.Errorf("%s: exit %d: %s", n.Name, code, strings.TrimSpace(stderr)))
	}
	return "", fmt.Errorf("%q failed on every controller: %w", args, errors.Join(errs...))
}

// State is the part of crm_mon's XML the lab's tests look at.
type State struct {
	Summary struct {
		CurrentDC struct {
			Present bool   `xml:"present,attr"`
			Name    string `xml:"name,attr"`
		} `xml:"current_dc"`
	} `xml:"summary"`
	Nodes     []NodeState     `xml:"nodes>node"`
	Resources []ResourceState `xml:"resources>resource"`
}

// NodeState is one node in crm_mon's XML.
type NodeState struct {
	Name    string `xml:"name,attr"`
	Type    string `xml:"type,attr"` // member or remote
	Online  bool   `xml:"online,attr"`
	Unclean bool   `xml:"unclean,attr"`
	Pending bool   `xml:"pending,attr"`
}

// ResourceState is one primitive resource in crm_mon's XML.
type ResourceState struct {
	ID     string `xml:"id,attr"`
	Agent  string `xml:"resource_agent,attr"`
	Role   string `xml:"role,attr"`
	Active bool   `xml:"active,attr"`
	Failed bool   `xml:"failed,attr"`
	Nodes  []struct {
		Name string `xml:"name,attr"`
	} `xml:"node"`
}

// Node returns the named node's state, if crm_mon lists it.
func (s *State) Node(name string) (NodeState, bool) {
	for _, n := range s.Nodes {
		if n.Name == name {
			return n, true
		}
	}
	return NodeState{}, false
}

// Resource returns the named resource's state, if crm_mon lists it.
func (s *State) Resource(id string) (ResourceState, bool) {
	for _, r := range s.Resources {
		if r.ID == id {
			return r, true
		}
	}
	return ResourceState{}, false
}

// DecodeState decodes crm_mon --output-as=xml.
func DecodeState(r io.Reader) (*State, error) {
	var s struct {
		State
		XMLName xml.Name `xml:"pacemaker-result"`
	}
	if err := xml.NewDecoder(r).Decode(&s); err != nil {
		return nil, fmt.Errorf("decoding crm_mon XML: %w", err)
	}
	return &s.State, nil
}

// ClusterState runs crm_mon on a controller and decodes it.
func (l *Lab) ClusterState(ctx context.Context) (*State, error) {
	out, err := l.CrmMonXML(ctx)
	if err != nil {
		return nil, err
	}
	return DecodeState(bytes.NewReader(out))
}

// FenceEvent is one entry of Pacemaker's fencing history.
type FenceEvent struct {
	Action    string `xml:"action,attr"`
	Target    string `xml:"target,attr"`
	Status    string `xml:"status,attr"` // success, failed, pending
	Delegate  string `xml:"delegate,attr"`
	Completed string `xml:"completed,attr"`
}

// FenceHistory is the fencing history of one node (stonith_admin --history).
func (l *Lab) FenceHistory(ctx context.Context, node string) ([]FenceEvent, error) {
	out, err := l.onController(ctx, "stonith_admin", "--history", node, "--output-as=xml")
	if err != nil {
		return nil, err
	}
	var h struct {
		Events []FenceEvent `xml:"list>fence_event"`
	}
	if err := xml.Unmarshal([]byte(out), &h); err != nil {
		return nil, fmt.Errorf("decoding the fencing history of %s: %w", node, err)
	}
	return h.Events, nil
}

// run runs one lab command with --dir and returns its stdout. Errors carry
// the script's stderr (the script never prints secrets).
func (l *Lab) run(ctx context.Context, verb string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, l.script, append([]string{verb, "--dir", l.dir}, args...)...)
	cmd.Env = l.env()
	var out, errb bytes.Buffer
	cmd.Stdout = &out
	if l.log != nil {
		cmd.Stderr = io.MultiWriter(&errb, l.log)
	} else {
		cmd.Stderr = &errb
	}
	if err := cmd.Run(); err != nil {
		return out.String(), fmt.Errorf("lab %s %q: %w: %s", verb, args, err, lastLines(errb.String(), 15))
	}
	return out.String(), nil
}

// env is the script's environment: ours, with the lab's prefix.
func (l *Lab) env() []string {
	return append(os.Environ(), "LAB_PREFIX="+l.prefix)
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
