//go:build integration

package integration

import (
	"fmt"
	"maps"
	"net"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// ipmiStep is one call of a fence agent against a BMC, and what must follow.
type ipmiStep struct {
	name      string
	opts      map[string]string // added to (or, with "", removed from) the base options
	wantCode  int
	wantOut   string // stdout of fence_ipmi, exactly
	wantPower string
	// wantEvents are the power changes the BMC must carry out in this step.
	wantEvents []string
}

var ipmiSteps = []ipmiStep{
	{
		name: "status of a powered host", opts: map[string]string{"action": "status"},
		wantCode: 0, wantOut: "Status: ON\n", wantPower: "on",
	},
	{
		name: "off", opts: map[string]string{"action": "off"},
		wantCode: 0, wantOut: "Success: Powered OFF\n", wantPower: "off", wantEvents: []string{"off"},
	},
	{
		name: "status after off", opts: map[string]string{"action": "status"},
		wantCode: 2, wantOut: "Status: OFF\n", wantPower: "off",
	},
	{
		name: "off again", opts: map[string]string{"action": "off"},
		wantCode: 0, wantOut: "Success: Already OFF\n", wantPower: "off",
	},
	{
		name: "on", opts: map[string]string{"action": "on"},
		wantCode: 0, wantOut: "Success: Powered ON\n", wantPower: "on", wantEvents: []string{"on"},
	},
	{
		name: "reboot powers off then on", opts: map[string]string{"action": "reboot"},
		wantCode: 0, wantOut: "Success: Rebooted\n", wantPower: "on", wantEvents: []string{"off", "on"},
	},
	{
		name: "reboot with method cycle", opts: map[string]string{"action": "reboot", "method": "cycle"},
		wantCode: 0, wantOut: "Success: Rebooted\n", wantPower: "on", wantEvents: []string{"off", "on"},
	},
	{
		name: "monitor", opts: map[string]string{"action": "monitor"},
		wantCode: 0, wantOut: "", wantPower: "on",
	},
	{
		name: "list on a single-host device", opts: map[string]string{"action": "list"},
		wantCode: 0, wantOut: "", wantPower: "on",
	},
	{
		name: "status over IPMI 1.5 (lan)", opts: map[string]string{"action": "status", "lanplus": "", "cipher": ""},
		wantCode: 0, wantOut: "Status: ON\n", wantPower: "on",
	},
	{
		name: "status at operator privilege", opts: map[string]string{"action": "status", "privlvl": "operator"},
		wantCode: 0, wantOut: "Status: ON\n", wantPower: "on",
	},
	{
		name: "off with a wrong password fails", opts: map[string]string{"action": "off", "password_script": "", "password": wrongPassword},
		wantCode: 1, wantPower: "on",
	},
}

const wrongPassword = "Wr0ng-Secret-77"

// booleans are flags without a value on the command line.
var booleans = map[string]bool{"lanplus": true, "verbose": true}

func stdinOf(opts map[string]string) string {
	var b strings.Builder
	for _, k := range slices.Sorted(maps.Keys(opts)) {
		fmt.Fprintf(&b, "%s=%s\n", k, opts[k])
	}
	return b.String()
}

func argsOf(opts map[string]string) []string {
	var args []string
	for _, k := range slices.Sorted(maps.Keys(opts)) {
		long := "--" + strings.ReplaceAll(k, "_", "-")
		if booleans[k] {
			if opts[k] == "1" {
				args = append(args, long)
			}
			continue
		}
		args = append(args, long+"="+opts[k])
	}
	return args
}

// runSteps drives one agent through the steps against a fresh BMC, with the
// options on stdin (as Pacemaker's fencer sends them) or on the command line
// (as an operator types them), and returns what each step gave.
func runSteps(t *testing.T, agent string, viaStdin bool) []run {
	t.Helper()
	b := startBMC(t, "bmc", "")
	base := map[string]string{
		"ip": "127.0.0.1", "ipport": strconv.Itoa(b.port), "username": "admin",
		"password_script": "cat " + passwordFile(t), "lanplus": "1", "cipher": "3",
	}
	var results []run
	for _, s := range ipmiSteps {
		opts := maps.Clone(base)
		for k, v := range s.opts {
			if v == "" {
				delete(opts, k)
			} else {
				opts[k] = v
			}
		}
		before := len(b.events(t))
		var r run
		if viaStdin {
			r = execute(t, time.Minute, stdinOf(opts), agentPath(agent))
		} else {
			r = execute(t, time.Minute, "", agentPath(agent), argsOf(opts)...)
		}
		t.Logf("%s / %s: %s", agent, s.name, r)
		if r.code != s.wantCode {
			t.Errorf("%s: %s: exit %d, want %d\n%s", agent, s.name, r.code, s.wantCode, r)
		}
		if s.opts["method"] == "cycle" {
			// ipmi_sim carries out a cycle as off then, a second later, on:
			// the agent may return before the "on" (as fence_ipmilan warns).
			waitEvents(t, b, before, s.wantEvents)
		}
		if got := b.power(t); got != s.wantPower {
			t.Errorf("%s: %s: BMC power %s, want %s", agent, s.name, got, s.wantPower)
		}
		evs := slices.Clip(b.events(t)[before:])
		if len(evs) == 0 {
			evs = nil
		}
		if diff := cmp.Diff(s.wantEvents, evs); diff != "" {
			t.Errorf("%s: %s: BMC power changes (-want +got):\n%s", agent, s.name, diff)
		}
		if agent == "fence_ipmi" && s.wantCode == 0 && r.stdout != s.wantOut {
			t.Errorf("%s: %s: stdout %q, want %q", agent, s.name, r.stdout, s.wantOut)
		}
		for _, secret := range []string{bmcPassword, wrongPassword} {
			if strings.Contains(r.stdout+r.stderr, secret) {
				t.Errorf("%s: %s: a password appears in the output:\n%s", agent, s.name, r)
			}
		}
		results = append(results, r)
	}
	return results
}

func waitEvents(t *testing.T, b *bmc, before int, want []string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for len(b.events(t))-before < len(want) && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}
}

// TestFenceIPMIAgreesWithFenceIpmilan runs the same scenarios with our
// fence_ipmi and Debian's fence_ipmilan against real ipmi_sim BMCs: exit
// codes and power states must agree step by step.
func TestFenceIPMIAgreesWithFenceIpmilan(t *testing.T) {
	for _, style := range []struct {
		name     string
		viaStdin bool
	}{{"options on stdin", true}, {"options on the command line", false}} {
		t.Run(style.name, func(t *testing.T) {
			ours := runSteps(t, "fence_ipmi", style.viaStdin)
			theirs := runSteps(t, "fence_ipmilan", style.viaStdin)
			for i, s := range ipmiSteps {
				if ours[i].code != theirs[i].code {
					t.Errorf("%s: fence_ipmi exited %d, fence_ipmilan %d", s.name, ours[i].code, theirs[i].code)
				}
			}
		})
	}
}

func TestFenceIPMIWrongPasswordIsAClearFailure(t *testing.T) {
	b := startBMC(t, "bmc", "")
	r := execute(t, time.Minute, stdinOf(map[string]string{
		"action": "status", "ip": "127.0.0.1", "ipport": strconv.Itoa(b.port),
		"username": "admin", "password": wrongPassword, "lanplus": "1", "cipher": "3",
	}), agentPath("fence_ipmi"))
	if r.code != 1 {
		t.Errorf("exit %d, want 1\n%s", r.code, r)
	}
	if !strings.Contains(r.stderr, "Unable to connect/login to fencing device") {
		t.Errorf("stderr does not say the login failed:\n%s", r)
	}
	if strings.Contains(r.stderr, wrongPassword) {
		t.Errorf("the password appears in the error:\n%s", r)
	}
}

// TestFenceIPMIUnreachableBMCFailsInBoundedTime: nothing listens on the
// port (refused at once), or something takes the packets and never answers
// (a hung BMC, or one behind a dead link). The agent must give up within its
// timeouts, not hang Pacemaker.
func TestFenceIPMIUnreachableBMCFailsInBoundedTime(t *testing.T) {
	silent, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	go func() {
		buf := make([]byte, 2048)
		for {
			if _, _, err := silent.ReadFrom(buf); err != nil {
				return
			}
		}
	}()
	pw := passwordFile(t)
	for _, agent := range []string{"fence_ipmi", "fence_ipmilan"} {
		for _, c := range []struct{ action, port string }{
			{"status", strconv.Itoa(freeUDPPort(t))},
			{"off", strconv.Itoa(freeUDPPort(t))},
			{"status", strconv.Itoa(silent.LocalAddr().(*net.UDPAddr).Port)},
			{"off", strconv.Itoa(silent.LocalAddr().(*net.UDPAddr).Port)},
		} {
			action, port := c.action, c.port
			r := execute(t, 2*time.Minute, stdinOf(map[string]string{
				"action": action, "ip": "127.0.0.1", "ipport": port, "username": "admin",
				"password_script": "cat " + pw, "lanplus": "1", "cipher": "3",
				"login_timeout": "3", "power_timeout": "5",
			}), agentPath(agent))
			t.Logf("%s %s on an unreachable BMC at port %s: %s", agent, action, port, r)
			if r.code != 1 {
				t.Errorf("%s %s: exit %d, want 1", agent, action, r.code)
			}
			if agent == "fence_ipmi" && r.elapsed > 5*time.Second {
				t.Errorf("%s %s took %s, more than power_timeout (5s)", agent, action, r.elapsed)
			}
		}
	}
}

// TestFenceIPMISeveralBMCs: each agent call reaches only its own BMC.
func TestFenceIPMISeveralBMCs(t *testing.T) {
	pw := passwordFile(t)
	bmcs := []*bmc{startBMC(t, "node1", ""), startBMC(t, "node2", ""), startBMC(t, "node3", "")}
	r := execute(t, time.Minute, stdinOf(map[string]string{
		"action": "off", "ip": "127.0.0.1", "ipport": strconv.Itoa(bmcs[1].port), "username": "admin",
		"password_script": "cat " + pw, "lanplus": "1", "cipher": "3",
	}), agentPath("fence_ipmi"))
	if r.code != 0 {
		t.Fatalf("off of node2: %s", r)
	}
	for i, want := range []string{"on", "off", "on"} {
		if got := bmcs[i].power(t); got != want {
			t.Errorf("%s is %s, want %s", bmcs[i].name, got, want)
		}
	}
}
