package hostcheck

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"testing/fstest"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/computeha/computeha/crm"
	"github.com/computeha/computeha/fence"
	"github.com/computeha/computeha/internal/config"
	"github.com/computeha/computeha/internal/evidence"
	"github.com/computeha/computeha/internal/health"
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// clock is the one fake clock of the runtime and the device: sleeping advances it.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) sleep(_ context.Context, d time.Duration) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
	return nil
}

// cluster is a Pacemaker that answers with an empty cluster, or fails; it counts calls.
type cluster struct {
	err   error
	calls int
}

func (c *cluster) Status(context.Context) (*crm.Status, error) {
	c.calls++
	if c.err != nil {
		return nil, c.err
	}
	return &crm.Status{}, nil
}

func (c *cluster) AttributeAllNodes(context.Context, string) (map[string]string, error) {
	if c.err != nil {
		return nil, c.err
	}
	return map[string]string{}, nil
}

const healthSection = `health:
  shared_dir: /shared
  decide: 3s
  confirm: 1s
  networks:
    - {name: mgmt, management: true}
    - {name: storage}
  hosts:
    cmp1: {mgmt: 192.0.2.11, storage: 198.51.100.11}
    cmp2: {mgmt: 192.0.2.12, storage: 198.51.100.12}
    ctl1: {mgmt: 192.0.2.1, storage: 198.51.100.1}
`

// joinSection lets hosts it does not list join by gossip.
const joinSection = `health:
  shared_dir: /shared
  decide: 3s
  confirm: 1s
  gossip: {key_file: /etc/computeha/gossip.key, seeds: [ctl1]}
  networks:
    - {name: mgmt, management: true, subnet: 192.0.2.0/24}
    - {name: storage, subnet: 198.51.100.0/24}
  hosts:
    cmp1: {mgmt: 192.0.2.11, storage: 198.51.100.11}
    cmp2: {mgmt: 192.0.2.12, storage: 198.51.100.12}
    ctl1: {mgmt: 192.0.2.1, storage: 198.51.100.1}
`

func writeConfig(t *testing.T, health string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "evacd.yaml")
	doc := "cloud: x\nsegments:\n  seg-a:\n    hosts: [cmp1, cmp2]\n" + health
	if err := os.WriteFile(p, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func decision(host string, state health.State, resp health.Response, text string) health.Decision {
	return health.Decision{Host: host, State: state, Response: resp, Reason: health.Reason{Code: health.ReasonCode(state), Text: text}}
}

func dead(host string) health.Decision {
	return decision(host, health.Dead, config.ResponseFence, host+" is dead: every signal is lost; fence")
}

func member(host string) health.Decision {
	d := decision(host, health.Running, config.ResponseNone, host+" is running")
	d.Member = true
	return d
}

// storageLostNonMember is a host that lost its storage network and whose connection the
// daemon failed to have Pacemaker fence it: no member, degraded, fence.
func storageLostNonMember(host string) health.Decision {
	return decision(host, health.Degraded, config.ResponseFence, host+" is degraded: lost storage, and its cluster service is unreachable; response fence")
}

func isolated(host string) health.Decision {
	return decision(host, health.Isolated, config.ResponseDisable, host+" is isolated: its storage heartbeat is fresh; disable, never fence")
}

// script decides from a list, one decision per round (the last one repeats), and records
// the hosts it was asked about and when.
type script struct {
	decisions []func(host string) health.Decision
	clk       *clock
	hosts     []string
	at        []time.Duration
}

func (s *script) decide(_ *config.Health, obs health.Observations, host string) health.Decision {
	s.hosts = append(s.hosts, host)
	s.at = append(s.at, obs.Now.Sub(t0))
	i := min(len(s.hosts)-1, len(s.decisions)-1)
	return s.decisions[i](host)
}

type result struct {
	code           int
	stdout, stderr string
	took           time.Duration
}

func run(t *testing.T, deps Deps, clk *clock, args ...string) result {
	t.Helper()
	var out, errb bytes.Buffer
	start := clk.now()
	code := fence.Main(context.Background(), NewAgent(deps), fence.Env{
		Args: args, Stdin: strings.NewReader(""), Stdout: &out, Stderr: &errb,
		Now: clk.now, Sleep: clk.sleep,
	})
	return result{code: code, stdout: out.String(), stderr: errb.String(), took: clk.now().Sub(start)}
}

func TestOffWaitsForAConfirmedDecisionToFence(t *testing.T) {
	cfg := writeConfig(t, healthSection)
	tests := []struct {
		name       string
		decisions  []func(string) health.Decision
		action     string
		wantCode   int
		wantStdout string
		wantStderr []string
		// The fake clock: how long the agent waited.
		minTook, maxTook time.Duration
	}{
		{
			name:       "a host dead from the start is fenced once the decision held for confirm (1s)",
			decisions:  []func(string) health.Decision{dead},
			action:     "off",
			wantCode:   0,
			wantStdout: "Success: Powered OFF\n",
			minTook:    time.Second, maxTook: 1500 * time.Millisecond,
		},
		{
			name:       "reboot passes the gate the same way and closes it again",
			decisions:  []func(string) health.Decision{dead},
			action:     "reboot",
			wantCode:   0,
			wantStdout: "Success: Rebooted\n",
			minTook:    time.Second, maxTook: 1500 * time.Millisecond,
		},
		{
			name:       "a host Pacemaker still has as a member (a failed stop, a fencing asked for) is let through at once",
			decisions:  []func(string) health.Decision{member},
			action:     "off",
			wantCode:   0,
			wantStdout: "Success: Powered OFF\n",
			minTook:    0, maxTook: 500 * time.Millisecond,
		},
		{
			name:       "a host no longer a member that lost a network answered by fencing is fenced once the decision is confirmed",
			decisions:  []func(string) health.Decision{storageLostNonMember},
			action:     "off",
			wantCode:   0,
			wantStdout: "Success: Powered OFF\n",
			minTook:    time.Second, maxTook: 1500 * time.Millisecond,
		},
		{
			name:       "a host that turns dead after two rounds is fenced confirm later",
			decisions:  []func(string) health.Decision{isolated, isolated, dead},
			action:     "off",
			wantCode:   0,
			wantStdout: "Success: Powered OFF\n",
			minTook:    2 * time.Second, maxTook: 2500 * time.Millisecond,
		},
		{
			name:      "an isolated host is refused at the deadline (decide 3s), naming its state and why",
			decisions: []func(string) health.Decision{isolated},
			action:    "off",
			wantCode:  1,
			wantStderr: []string{
				"refusing to fence cmp1 after 3s: cmp1 is isolated: its storage heartbeat is fresh; disable, never fence",
				"Failed: Timed out waiting to power OFF",
			},
			minTook: 3 * time.Second, maxTook: 3500 * time.Millisecond,
		},
		{
			name: "a decision flapping faster than confirm never allows fencing",
			decisions: []func(string) health.Decision{
				dead, isolated, dead, isolated, dead, isolated, dead, isolated, dead, isolated,
			},
			action:     "off",
			wantCode:   1,
			wantStderr: []string{"refusing to fence cmp1: no decision held for 1s within 3s; the latest: cmp1 is"},
			minTook:    3 * time.Second, maxTook: 3500 * time.Millisecond,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clk := &clock{t: t0}
			s := &script{decisions: tt.decisions, clk: clk}
			deps := Deps{Cluster: &cluster{}, Storage: &evidence.Storage{FS: fstest.MapFS{}}, Decide: s.decide, Now: clk.now}
			r := run(t, deps, clk, "--action="+tt.action, "--plug=cmp1", "--config="+cfg)
			if r.code != tt.wantCode || r.stdout != tt.wantStdout {
				t.Errorf("exit %d, stdout %q; want %d, %q\nstderr: %s", r.code, r.stdout, tt.wantCode, tt.wantStdout, r.stderr)
			}
			for _, w := range tt.wantStderr {
				if !strings.Contains(r.stderr, w) {
					t.Errorf("stderr lacks %q:\n%s", w, r.stderr)
				}
			}
			if r.took < tt.minTook || r.took > tt.maxTook {
				t.Errorf("the agent answered after %s, want within [%s, %s]", r.took, tt.minTook, tt.maxTook)
			}
			for i := 1; i < len(s.at); i++ {
				if gap := s.at[i] - s.at[i-1]; gap < roundInterval {
					t.Errorf("rounds %d and %d only %s apart, want at least %s", i-1, i, gap, roundInterval)
				}
			}
			if len(s.hosts) == 0 || s.hosts[0] != "cmp1" {
				t.Errorf("judged hosts %v, want cmp1", s.hosts)
			}
		})
	}
}

func TestTheNodeNamedByTheFencerIsJudgedRatherThanThePlug(t *testing.T) {
	cfg := writeConfig(t, healthSection)
	clk := &clock{t: t0}
	s := &script{decisions: []func(string) health.Decision{dead}, clk: clk}
	deps := Deps{Cluster: &cluster{}, Storage: &evidence.Storage{FS: fstest.MapFS{}}, Decide: s.decide, Now: clk.now}
	var out, errb bytes.Buffer
	code := fence.Main(context.Background(), NewAgent(deps), fence.Env{
		Stdin:  strings.NewReader(fmt.Sprintf("action=off\nport=bmc-plug-7\nnodename=cmp2\nconfig=%s\n", cfg)),
		Stdout: &out, Stderr: &errb, Now: clk.now, Sleep: clk.sleep,
	})
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	if s.hosts[0] != "cmp2" {
		t.Errorf("judged %v, want cmp2 (the nodename)", s.hosts)
	}
}

func TestFencingIsRefusedWhenThereIsNoEvidence(t *testing.T) {
	good := writeConfig(t, healthSection)
	noHealth := writeConfig(t, "")
	tests := []struct {
		name       string
		config     string
		cluster    *cluster
		plug       string
		wantStderr string
		// How long the agent may take on the fake clock.
		maxTook time.Duration
	}{
		{
			name:       "a configuration that cannot be read refuses at once",
			config:     filepath.Join(t.TempDir(), "missing.yaml"),
			cluster:    &cluster{},
			plug:       "cmp1",
			wantStderr: "Failed: no host can be judged: config: open",
		},
		{
			name:       "a configuration without a health section refuses at once",
			config:     noHealth,
			cluster:    &cluster{},
			plug:       "cmp1",
			wantStderr: "configures no health checks (health.networks is empty)",
		},
		{
			name:       "a host the configuration does not list is refused at once",
			config:     good,
			cluster:    &cluster{},
			plug:       "cmp9",
			wantStderr: "refusing to fence cmp9: it is not one of the hosts of",
		},
		{
			name:       "a host not listed that may join but never did is refused at the deadline",
			config:     writeConfig(t, joinSection),
			cluster:    &cluster{},
			plug:       "cmp9",
			wantStderr: "refusing to fence cmp9: it is not listed in health.hosts and never joined",
			maxTook:    3500 * time.Millisecond,
		},
		{
			name:       "a cluster that does not answer is retried, then refused at the deadline",
			config:     good,
			cluster:    &cluster{err: &crm.ToolError{Tool: "crm_mon", Code: crm.ExitDisconnect, Message: "Connection refused"}},
			plug:       "cmp1",
			wantStderr: "refusing to fence cmp1: the evidence could not be gathered within 3s: cluster state: crm_mon: Connection refused",
			maxTook:    3500 * time.Millisecond,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clk := &clock{t: t0}
			s := &script{decisions: []func(string) health.Decision{dead}, clk: clk}
			deps := Deps{Cluster: tt.cluster, Storage: &evidence.Storage{FS: fstest.MapFS{}}, Decide: s.decide, Now: clk.now}
			r := run(t, deps, clk, "--action=off", "--plug="+tt.plug, "--config="+tt.config)
			if r.code != 1 || !strings.Contains(r.stderr, tt.wantStderr) {
				t.Errorf("exit %d, want 1 with %q in stderr:\n%s", r.code, tt.wantStderr, r.stderr)
			}
			if r.took > tt.maxTook {
				t.Errorf("refused after %s, want within %s", r.took, tt.maxTook)
			}
			if len(s.hosts) != 0 {
				t.Errorf("a decision was taken without evidence: %v", s.hosts)
			}
		})
	}
}

func TestAHostThatJoinedByGossipIsJudgedAndListed(t *testing.T) {
	cfg := writeConfig(t, joinSection)
	rec := health.Record{
		Host: "cmp9", Seq: 4, Time: t0.Add(-time.Minute), Service: health.ServiceOK,
		Addresses: map[string]string{"mgmt": "192.0.2.19"},
	}
	b, err := health.MarshalRecord(rec)
	if err != nil {
		t.Fatal(err)
	}
	fsys := fstest.MapFS{"cmp9.heartbeat": &fstest.MapFile{Data: b}}
	clk := &clock{t: t0}
	s := &script{decisions: []func(string) health.Decision{dead}, clk: clk}
	deps := Deps{Cluster: &cluster{}, Storage: &evidence.Storage{FS: fsys}, Decide: s.decide, Now: clk.now}
	if r := run(t, deps, clk, "--action=off", "--plug=cmp9", "--config="+cfg); r.code != 0 {
		t.Errorf("off of cmp9, which joined: exit %d, stderr %s", r.code, r.stderr)
	}
	if len(s.hosts) == 0 || s.hosts[0] != "cmp9" {
		t.Errorf("judged %v, want cmp9", s.hosts)
	}
	if r := run(t, deps, clk, "-o", "list", "--config="+cfg); r.code != 0 || r.stdout != "cmp1,\ncmp2,\ncmp9,\nctl1,\n" {
		t.Errorf("list: exit %d, stdout %q: want the listed hosts and cmp9", r.code, r.stdout)
	}
}

func TestTheOtherActions(t *testing.T) {
	good := writeConfig(t, healthSection)
	down := &crm.ToolError{Tool: "crm_mon", Code: crm.ExitDisconnect, Message: "Connection refused"}
	tests := []struct {
		name       string
		args       []string
		err        error
		wantCode   int
		wantStdout string
		wantStderr string
	}{
		{name: "on succeeds without asking the cluster", args: []string{"-o", "on", "-n", "cmp1"}, err: down, wantStdout: "Success: Already ON\n"},
		{name: "status is ON when the configuration loads and the cluster answers", args: []string{"-o", "status", "-n", "cmp1"}, wantStdout: "Status: ON\n"},
		{name: "status fails when the cluster does not answer", args: []string{"-o", "status", "-n", "cmp1"}, err: down, wantCode: 1, wantStderr: "Connection refused"},
		{name: "monitor succeeds when the cluster answers", args: []string{"-o", "monitor"}},
		{name: "monitor fails when the cluster does not answer", args: []string{"-o", "monitor"}, err: down, wantCode: 1, wantStderr: "Connection refused"},
		{name: "list prints the configured hosts", args: []string{"-o", "list"}, wantStdout: "cmp1,\ncmp2,\nctl1,\n"},
		{name: "validate-all checks the configuration without the cluster", args: []string{"-o", "validate-all", "-n", "cmp1"}, err: down},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clk := &clock{t: t0}
			c := &cluster{err: tt.err}
			s := &script{decisions: []func(string) health.Decision{dead}, clk: clk}
			deps := Deps{Cluster: c, Storage: &evidence.Storage{FS: fstest.MapFS{}}, Decide: s.decide, Now: clk.now}
			r := run(t, deps, clk, append(tt.args, "--config="+good)...)
			if r.code != tt.wantCode || r.stdout != tt.wantStdout || !strings.Contains(r.stderr, tt.wantStderr) {
				t.Errorf("exit %d, stdout %q, stderr %q; want %d, %q, stderr with %q", r.code, r.stdout, r.stderr, tt.wantCode, tt.wantStdout, tt.wantStderr)
			}
			if len(s.hosts) != 0 {
				t.Errorf("%v judged a host", tt.args)
			}
		})
	}

	t.Run("validate-all fails on a configuration that cannot judge", func(t *testing.T) {
		clk := &clock{t: t0}
		r := run(t, Deps{Cluster: &cluster{}, Now: clk.now}, clk, "-o", "validate-all", "-n", "cmp1", "--config="+writeConfig(t, "health:\n  networks: [{name: mgmt}]\n"))
		if r.code != 1 || !strings.Contains(r.stderr, "exactly one network must be the management network") {
			t.Errorf("exit %d, stderr %q", r.code, r.stderr)
		}
	})
}

// The real judgement (health.Collect and health.Decide) end to end over gathered evidence:
// cmp1 is out of the cluster, every observer has lost it on every network, and its heartbeat
// is a minute old while cmp2's is fresh.
func TestADeadHostIsFencedAndAnIsolatedOneIsNotWithTheRealJudgement(t *testing.T) {
	cfg := writeConfig(t, healthSection)
	reach := func(cmp1 string) string { return "cmp1=" + cmp1 + " cmp2=ok ctl1=ok" }
	// attrd's values: each observer's view on each network, by attribute and node.
	attrs := func(cmp1 string) map[string]map[string]string {
		a := map[string]map[string]string{}
		for _, network := range []string{"mgmt", "storage"} {
			byNode := map[string]string{}
			for _, n := range []string{"ctl1", "cmp2"} {
				byNode[n] = strings.ReplaceAll(reach(cmp1), n+"=ok", "")
			}
			a[health.ReachAttribute(network)] = byNode
		}
		return a
	}
	rec := func(host string, age time.Duration) *fstest.MapFile {
		b, err := health.MarshalRecord(health.Record{Host: host, Seq: 9, Time: t0.Add(-age), Service: health.ServiceOK})
		if err != nil {
			t.Fatal(err)
		}
		return &fstest.MapFile{Data: b}
	}
	status := &crm.Status{Nodes: []crm.Node{
		{Name: "ctl1", Type: crm.NodeMember, Online: true},
		{Name: "cmp1", Type: crm.NodeRemote, Online: false, Unclean: true},
		{Name: "cmp2", Type: crm.NodeRemote, Online: true},
	}}
	tests := []struct {
		name      string
		cmp1Age   time.Duration
		wantCode  int
		wantInErr string
	}{
		{name: "dead: all signals lost", cmp1Age: time.Minute, wantCode: 0},
		{name: "isolated: networks lost but the heartbeat is fresh", cmp1Age: 0, wantCode: 1, wantInErr: "refusing to fence cmp1 after 3s: cmp1 is isolated"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clk := &clock{t: t0}
			fsys := fstest.MapFS{"cmp1.heartbeat": rec("cmp1", tt.cmp1Age), "cmp2.heartbeat": rec("cmp2", 0)}
			deps := Deps{Cluster: staticCluster{status, attrs("lost")}, Storage: &evidence.Storage{FS: fsys}, Now: clk.now}
			r := run(t, deps, clk, "--action=off", "--plug=cmp1", "--config="+cfg)
			if r.code != tt.wantCode || !strings.Contains(r.stderr, tt.wantInErr) {
				t.Errorf("exit %d, want %d with %q:\n%s", r.code, tt.wantCode, tt.wantInErr, r.stderr)
			}
		})
	}
}

type staticCluster struct {
	st    *crm.Status
	attrs map[string]map[string]string
}

func (s staticCluster) Status(context.Context) (*crm.Status, error) { return s.st, nil }

func (s staticCluster) AttributeAllNodes(_ context.Context, name string) (map[string]string, error) {
	return s.attrs[name], nil
}

func TestMetadataDescribesTheGate(t *testing.T) {
	var out bytes.Buffer
	if err := Agent.WriteMetadata(&out); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		`<resource-agent name="fence_hostcheck"`,
		`<parameter name="config" unique="0" required="0">`,
		`<content type="string" default="/etc/computeha/evacd.yaml"></content>`,
		`<action name="on" automatic="0"></action>`,
		`<action name="reboot"></action>`,
		"never fence",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("metadata lacks %s", want)
		}
	}
	var names []string
	for _, p := range fence.SpecOf(&Params{}) {
		names = append(names, p.Name)
	}
	if diff := cmp.Diff("action plug config", strings.Join(names[:3], " ")); diff != "" {
		t.Errorf("first parameters (-want +got):\n%s", diff)
	}
}
