package fence

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// fakeClock is a clock that only moves when the code under test sleeps.
type fakeClock struct {
	now   time.Time
	slept []time.Duration
}

func (c *fakeClock) Now() time.Time { return c.now }

func (c *fakeClock) Sleep(ctx context.Context, d time.Duration) error {
	c.slept = append(c.slept, d)
	c.now = c.now.Add(d)
	return ctx.Err()
}

// total is how long the code under test slept.
func (c *fakeClock) total() time.Duration {
	var t time.Duration
	for _, d := range c.slept {
		t += d
	}
	return t
}

type result struct {
	code           int
	stdout, stderr string
	clock          *fakeClock
}

func invoke(t *testing.T, a *Agent, args []string, stdin string) result {
	t.Helper()
	var out, errb bytes.Buffer
	clk := &fakeClock{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	code := Main(context.Background(), a, Env{
		Args: args, Stdin: strings.NewReader(stdin), Stdout: &out, Stderr: &errb,
		Version: "test", Now: clk.Now, Sleep: clk.Sleep,
	})
	return result{code: code, stdout: out.String(), stderr: errb.String(), clock: clk}
}

const creds = "username=admin\npassword=s3cr3t-pw\n"

func TestActions(t *testing.T) {
	tests := []struct {
		name      string
		stdin     string
		setup     func(d *FakeDevice)
		wantCode  int
		wantOut   string
		wantErr   string // substring of stderr
		wantState State
		wantCalls []string
	}{
		{
			name:      "status of a powered target prints ON and exits 0",
			stdin:     "action=status\nplug=n1\n" + creds,
			wantCode:  0,
			wantOut:   "Status: ON\n",
			wantState: On,
			wantCalls: []string{"status"},
		},
		{
			name:      "status of a target that is off prints OFF and exits 2",
			stdin:     "action=status\nplug=n1\n" + creds,
			setup:     func(d *FakeDevice) { d.Plugs["n1"] = Off },
			wantCode:  2,
			wantOut:   "Status: OFF\n",
			wantState: Off,
			wantCalls: []string{"status"},
		},
		{
			name:      "off powers the target off and confirms it before reporting success",
			stdin:     "action=off\nplug=n1\n" + creds,
			setup:     func(d *FakeDevice) { d.Lag = 3 },
			wantCode:  0,
			wantOut:   "Success: Powered OFF\n",
			wantState: Off,
			wantCalls: []string{"status", "off", "status", "status", "status", "status"},
		},
		{
			name:      "off of a target that is already off changes nothing",
			stdin:     "action=off\nplug=n1\n" + creds,
			setup:     func(d *FakeDevice) { d.Plugs["n1"] = Off },
			wantCode:  0,
			wantOut:   "Success: Already OFF\n",
			wantState: Off,
			wantCalls: []string{"status"},
		},
		{
			name:      "on of a target that is already on changes nothing",
			stdin:     "action=on\nplug=n1\n" + creds,
			wantCode:  0,
			wantOut:   "Success: Already ON\n",
			wantState: On,
			wantCalls: []string{"status"},
		},
		{
			name:      "off fails when the device never reports the target off",
			stdin:     "action=off\nplug=n1\npower_timeout=2\n" + creds,
			setup:     func(d *FakeDevice) { d.Stuck[false] = true },
			wantCode:  1,
			wantErr:   "Failed: Timed out waiting to power OFF",
			wantState: On,
		},
		{
			name:      "reboot powers off, confirms, then powers on",
			stdin:     "action=reboot\nplug=n1\n" + creds,
			wantCode:  0,
			wantOut:   "Success: Rebooted\n",
			wantState: On,
			wantCalls: []string{"status", "off", "status", "on", "status"},
		},
		{
			name:      "reboot of a target that is off only powers it on",
			stdin:     "action=reboot\nplug=n1\n" + creds,
			setup:     func(d *FakeDevice) { d.Plugs["n1"] = Off },
			wantCode:  0,
			wantOut:   "Success: Rebooted\n",
			wantState: On,
			wantCalls: []string{"status", "on", "status"},
		},
		{
			name:      "reboot succeeds once the target is off even if it never comes back on",
			stdin:     "action=reboot\nplug=n1\npower_timeout=1\n" + creds,
			setup:     func(d *FakeDevice) { d.Stuck[true] = true },
			wantCode:  0,
			wantOut:   "Success: Rebooted\n",
			wantErr:   "Timed out waiting to power ON",
			wantState: Off,
		},
		{
			name:      "reboot fails when the target cannot be confirmed off",
			stdin:     "action=reboot\nplug=n1\npower_timeout=1\n" + creds,
			setup:     func(d *FakeDevice) { d.Stuck[false] = true },
			wantCode:  1,
			wantErr:   "Failed: Timed out waiting to power OFF",
			wantState: On,
		},
		{
			name:      "reboot with the cycle method sends one power cycle",
			stdin:     "action=reboot\nplug=n1\nmode=cycle\n" + creds,
			wantCode:  0,
			wantOut:   "Success: Rebooted\n",
			wantState: On,
			wantCalls: []string{"status", "cycle"},
		},
		{
			name:      "on retries the power request retry_on more times",
			stdin:     "action=on\nplug=n1\nretry_on=2\n" + creds,
			setup:     func(d *FakeDevice) { d.Plugs["n1"] = Off; d.SetErr = errors.New("busy") },
			wantCode:  1,
			wantErr:   "Failed: Timed out waiting to power ON",
			wantState: Off,
			wantCalls: []string{"status", "on", "on", "on"},
		},
		{
			name:      "a device that cannot tell the state fails status with exit 1",
			stdin:     "action=status\nplug=n1\n" + creds,
			setup:     func(d *FakeDevice) { d.StatusErr = errors.New("no answer") },
			wantCode:  1,
			wantErr:   "Unable to obtain correct plug status",
			wantState: On,
		},
		{
			name:      "an unknown plug fails with exit 1",
			stdin:     "action=status\nplug=nope\n" + creds,
			wantCode:  1,
			wantErr:   "no such plug",
			wantState: On,
		},
		{
			name:      "list prints every plug with its alias",
			stdin:     "action=list\n" + creds,
			wantCode:  0,
			wantOut:   "n1,alias-n1\nn2,alias-n2\n",
			wantState: On,
			wantCalls: []string{"list"},
		},
		{
			name:      "list-status adds each plug's power state",
			stdin:     "action=list-status\n" + creds,
			setup:     func(d *FakeDevice) { d.Plugs["n2"] = Off },
			wantCode:  0,
			wantOut:   "n1,alias-n1,ON\nn2,alias-n2,OFF\n",
			wantState: On,
		},
		{
			name:      "monitor of a device with plugs lists them and prints nothing",
			stdin:     "action=monitor\n" + creds,
			wantCode:  0,
			wantState: On,
			wantCalls: []string{"list"},
		},
		{
			name:      "an action name is not case sensitive and meta-data is metadata's alias",
			stdin:     "action=STATUS\nplug=n1\n" + creds,
			wantCode:  0,
			wantOut:   "Status: ON\n",
			wantState: On,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dev := NewFakeDevice("n1", "n2")
			if tt.setup != nil {
				tt.setup(dev)
			}
			r := invoke(t, FakeAgent(dev, nil, nil), nil, tt.stdin)
			if r.code != tt.wantCode {
				t.Errorf("exit code = %d, want %d (stderr %q)", r.code, tt.wantCode, r.stderr)
			}
			if r.stdout != tt.wantOut {
				t.Errorf("stdout = %q, want %q", r.stdout, tt.wantOut)
			}
			if tt.wantErr != "" && !strings.Contains(r.stderr, tt.wantErr) {
				t.Errorf("stderr = %q, want it to contain %q", r.stderr, tt.wantErr)
			}
			if tt.wantErr == "" && r.stderr != "" {
				t.Errorf("unexpected stderr %q", r.stderr)
			}
			if got := dev.Plugs["n1"]; got != tt.wantState {
				t.Errorf("n1 is %s, want %s", got, tt.wantState)
			}
			if tt.wantCalls != nil {
				if diff := cmp.Diff(tt.wantCalls, dev.Calls); diff != "" {
					t.Errorf("device calls (-want +got):\n%s", diff)
				}
			}
			if len(dev.Calls) > 0 && !dev.Closed() {
				t.Errorf("the device session was not closed")
			}
		})
	}
}

func TestOffWaitsNoLongerThanPowerTimeout(t *testing.T) {
	dev := NewFakeDevice("n1")
	dev.Stuck[false] = true
	r := invoke(t, FakeAgent(dev, nil, nil), nil, "action=off\nplug=n1\npower_timeout=3\n"+creds)
	if r.code != 1 {
		t.Fatalf("exit code = %d, want 1", r.code)
	}
	waited := r.clock.total()
	if waited < 3*time.Second || waited > 3*time.Second+pollInterval {
		t.Errorf("waited %s for the power change, want power_timeout (3s)", waited)
	}
}

func TestDelayIsAppliedBeforeOffAndRebootOnly(t *testing.T) {
	for action, want := range map[string]bool{"off": true, "reboot": true, "on": false, "status": false} {
		t.Run(action, func(t *testing.T) {
			dev := NewFakeDevice("n1")
			r := invoke(t, FakeAgent(dev, nil, nil), nil, "action="+action+"\nplug=n1\ndelay=7\n"+creds)
			if r.code > 2 {
				t.Fatalf("exit %d: %s", r.code, r.stderr)
			}
			got := len(r.clock.slept) > 0 && r.clock.slept[0] == 7*time.Second
			if got != want {
				t.Errorf("delayed = %v, want %v (sleeps %v)", got, want, r.clock.slept)
			}
		})
	}
}

func TestBadInputFailsClearlyWithoutContactingTheDevice(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		stdin   string
		wantErr string
	}{
		{"an unknown action", nil, "action=explode\nplug=n1\n" + creds, "Unrecognised action 'explode'"},
		{"a line that is not key=value", nil, "action=off\nplug=n1\njustaword\n" + creds, "line 3 of standard input is not of the form key=value"},
		{"a missing required plug", nil, "action=off\n" + creds, "You have to enter a value for --plug"},
		{"a missing password", nil, "action=off\nplug=n1\nusername=admin\n", "You have to enter password or password script"},
		{"a number that is not a number", nil, "action=off\nplug=n1\ncount=many\n" + creds, "--count (\"many\") is not a valid integer"},
		{"a time that is not a time", nil, "action=off\nplug=n1\npower_timeout=-3\n" + creds, "--power-timeout (\"-3\") is not a valid time in seconds"},
		{"a boolean that is not a boolean", nil, "action=off\nplug=n1\nverbose=maybe\n" + creds, "--verbose (\"maybe\") is not a valid boolean"},
		{"a value outside a select's choices", nil, "action=off\nplug=n1\nmode=sideways\n" + creds, "not one of the valid values: onoff, cycle"},
		{"an unknown long option", []string{"--frobnicate=1"}, "", "option --frobnicate not recognized"},
		{"an unknown short option", []string{"-Z"}, "", "option -Z not recognized"},
		{"an option without its value", []string{"-o", "off", "--plug"}, "", "option --plug requires argument"},
		{"a boolean option given a value", []string{"--verbose=1"}, "", "option --verbose must not have an argument"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dev := NewFakeDevice("n1")
			r := invoke(t, FakeAgent(dev, nil, nil), tt.args, tt.stdin)
			if r.code != 1 {
				t.Errorf("exit code = %d, want 1", r.code)
			}
			if !strings.Contains(r.stderr, tt.wantErr) {
				t.Errorf("stderr = %q, want it to contain %q", r.stderr, tt.wantErr)
			}
			if len(dev.Calls) != 0 {
				t.Errorf("the device was contacted: %v", dev.Calls)
			}
		})
	}
}

func TestUnknownKeysAreIgnoredAndNodenameIsKeptApart(t *testing.T) {
	dev := NewFakeDevice("n1")
	var got FakeParams
	r := invoke(t, FakeAgent(dev, nil, &got), nil, "action=status\nplug=n1\nnodename=pcmk-node-1\npcmk_whatever=3\n"+creds)
	if got.Nodename != "pcmk-node-1" {
		t.Errorf("nodename = %q, want pcmk-node-1", got.Nodename)
	}
	if r.code != 0 {
		t.Fatalf("exit code = %d: %s", r.code, r.stderr)
	}
	if !strings.Contains(r.stderr, "Ignoring unknown option 'pcmk_whatever'") {
		t.Errorf("no warning for the unknown key: %q", r.stderr)
	}
	if strings.Contains(r.stderr, "nodename") {
		t.Errorf("nodename should be ignored silently: %q", r.stderr)
	}
}

func TestCommandLineAndStdinGiveTheSameOptions(t *testing.T) {
	var fromArgs, fromStdin FakeParams
	argv := []string{"-o", "status", "--plug=n1", "-l", "admin", "--password", "pw1234", "--count", "5", "-v", "--power-timeout=2.5"}
	stdin := "action=status\nport=n1\nlogin=admin\npasswd=\"pw1234\"\ncount=5\nverbose=yes\npower-timeout=2.5\n"
	if r := invoke(t, FakeAgent(NewFakeDevice("n1"), nil, &fromArgs), argv, ""); r.code != 0 {
		t.Fatalf("argv: exit %d: %s", r.code, r.stderr)
	}
	if r := invoke(t, FakeAgent(NewFakeDevice("n1"), nil, &fromStdin), nil, stdin); r.code != 0 {
		t.Fatalf("stdin: exit %d: %s", r.code, r.stderr)
	}
	if diff := cmp.Diff(fromArgs, fromStdin); diff != "" {
		t.Errorf("options differ (-argv +stdin):\n%s", diff)
	}
	want := FakeParams{
		Plug: "n1", Count: 5, Mode: "onoff",
		Credentials: Credentials{Username: "admin", Password: "pw1234"},
		Common: Common{
			Action: "status", Verbose: true, LoginTimeout: 5 * time.Second, PowerTimeout: 2500 * time.Millisecond,
			ShellTimeout: 3 * time.Second, RetryOn: 1,
		},
	}
	if diff := cmp.Diff(want, fromArgs); diff != "" {
		t.Errorf("decoded options (-want +got):\n%s", diff)
	}
}

func TestPasswordNeverLeaks(t *testing.T) {
	const pw = "hunter2-very-secret"
	leaky := errors.New("auth failed for admin:" + pw + " at device")
	dir := t.TempDir()
	debug := filepath.Join(dir, "debug.log")
	r := invoke(t, FakeAgent(NewFakeDevice("n1"), leaky, nil), nil,
		"action=off\nplug=n1\nusername=admin\npassword="+pw+"\nverbose=1\ndebug_file="+debug+"\n")
	if r.code != 1 {
		t.Fatalf("exit code = %d, want 1", r.code)
	}
	if !strings.Contains(r.stderr, "Unable to connect/login to fencing device") {
		t.Errorf("stderr %q lacks the login failure", r.stderr)
	}
	logged, err := os.ReadFile(debug)
	if err != nil {
		t.Fatal(err)
	}
	for where, text := range map[string]string{"stdout": r.stdout, "stderr": r.stderr, "debug file": string(logged)} {
		if strings.Contains(text, pw) {
			t.Errorf("the password appears in %s: %q", where, text)
		}
	}
	if !strings.Contains(string(logged), "password=****") {
		t.Errorf("debug file should list the options with the password masked: %q", logged)
	}
}

func TestPasswordScriptSuppliesThePassword(t *testing.T) {
	var got FakeParams
	r := invoke(t, FakeAgent(NewFakeDevice("n1"), nil, &got), nil,
		"action=status\nplug=n1\nusername=admin\npassword_script=printf 'from-script\\nsecond line'\n")
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	if got.Password != "from-script" {
		t.Errorf("password = %q, want the script's first line", got.Password)
	}
}

func TestPasswordScriptFailureIsAClearError(t *testing.T) {
	dev := NewFakeDevice("n1")
	r := invoke(t, FakeAgent(dev, nil, nil), nil, "action=status\nplug=n1\nusername=admin\npassword_script=exit 3\n")
	if r.code != 1 || !strings.Contains(r.stderr, "password script failed") {
		t.Errorf("exit %d, stderr %q: want 1 and a password script error", r.code, r.stderr)
	}
	if len(dev.Calls) != 0 {
		t.Errorf("the device was contacted: %v", dev.Calls)
	}
}

func TestValidateAllChecksWithoutConnecting(t *testing.T) {
	connected := false
	a := FakeAgent(NewFakeDevice("n1"), nil, nil)
	inner := a.Connect
	a.Connect = func(ctx context.Context, p Params, l *slog.Logger) (Device, error) {
		connected = true
		return inner(ctx, p, l)
	}
	if r := invoke(t, a, nil, "action=validate-all\nplug=n1\n"+creds); r.code != 0 {
		t.Errorf("valid options: exit %d: %s", r.code, r.stderr)
	}
	if r := invoke(t, a, nil, "action=validate-all\nplug=n1\n"); r.code != 1 {
		t.Errorf("missing password: exit %d, want 1", r.code)
	}
	if connected {
		t.Errorf("validate-all contacted the device")
	}
}

func TestLoginFailureExitsOne(t *testing.T) {
	r := invoke(t, FakeAgent(nil, errors.New("connection refused"), nil), nil, "action=status\nplug=n1\n"+creds)
	if r.code != 1 || !strings.Contains(r.stderr, "Unable to connect/login to fencing device: connection refused") {
		t.Errorf("exit %d, stderr %q", r.code, r.stderr)
	}
}

func TestFabricAgentTurnsRebootIntoOff(t *testing.T) {
	dev := NewFakeDevice("n1")
	a := FakeAgent(dev, nil, nil)
	a.Fabric = true
	r := invoke(t, a, nil, "action=reboot\nplug=n1\n"+creds)
	if r.code != 0 || r.stdout != "Success: Powered OFF\n" || dev.Plugs["n1"] != Off {
		t.Errorf("exit %d, stdout %q, state %s: want a plain off", r.code, r.stdout, dev.Plugs["n1"])
	}
	var md bytes.Buffer
	if err := a.WriteMetadata(&md); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(md.String(), `<action name="on" automatic="1">`) || strings.Contains(md.String(), `"reboot"`) {
		t.Errorf("fabric metadata must list on as automatic and no reboot:\n%s", md.String())
	}
	if !strings.Contains(md.String(), `<content type="string" default="off">`) {
		t.Errorf("fabric agents default to off")
	}
}

func TestMetadataNeedsNoOtherOption(t *testing.T) {
	for _, in := range []struct {
		args  []string
		stdin string
	}{{[]string{"-o", "metadata"}, ""}, {nil, "action=meta-data\n"}} {
		r := invoke(t, FakeAgent(nil, nil, nil), in.args, in.stdin)
		if r.code != 0 || !strings.HasPrefix(r.stdout, "<?xml") || r.stderr != "" {
			t.Errorf("exit %d, stdout %.40q, stderr %q", r.code, r.stdout, r.stderr)
		}
	}
}

func TestMetadataDescribesEveryParameterOnce(t *testing.T) {
	var md bytes.Buffer
	if err := FakeAgent(nil, nil, nil).WriteMetadata(&md); err != nil {
		t.Fatal(err)
	}
	s := md.String()
	for _, want := range []string{
		`<parameter name="plug" unique="0" required="1" obsoletes="port">`,
		`<parameter name="port" unique="0" required="1" deprecated="1">`,
		`<getopt mixed="-n, --plug=[id]">`,
		`<content type="select" default="onoff">`,
		`<option value="cycle"></option>`,
		`<content type="second" default="20">`,
		`<getopt mixed="-p, --password=[password]">`,
		`<action name="list-status"></action>`,
		`<action name="on" automatic="0">`,
	} {
		if !strings.Contains(s, want) {
			t.Errorf("metadata lacks %s", want)
		}
	}
	if !strings.Contains(s, "<parameters>\n\t\t<parameter name=\"action\"") {
		t.Errorf("the action should be the first parameter")
	}
}

func TestManpageListsOptionsAndActions(t *testing.T) {
	r := invoke(t, FakeAgent(nil, nil, nil), []string{"-o", "manpage"}, "")
	for _, want := range []string{".TH FENCE_FAKE 8", `\-\-power\-timeout`, "deprecated port", ".B list\\-status"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("manpage lacks %q", want)
		}
	}
}

func TestHelpAndVersion(t *testing.T) {
	r := invoke(t, FakeAgent(nil, nil, nil), []string{"--help"}, "")
	if r.code != 0 || !strings.Contains(r.stdout, "--power-timeout=[seconds]") {
		t.Errorf("help: exit %d, %q", r.code, r.stdout)
	}
	r = invoke(t, FakeAgent(nil, nil, nil), []string{"-V"}, "")
	if r.code != 0 || r.stdout != "fence_fake test\n" {
		t.Errorf("version: exit %d, %q", r.code, r.stdout)
	}
}

func TestScriptCommandRunsPlainCommandsDirectlyAndTheRestThroughTheShell(t *testing.T) {
	tests := []struct {
		script    string
		wantShell bool
	}{
		{"cat /etc/computeha/bmc-pw", false},
		{"printf secret", false},
		{"printf 'two words'", true},
		{"cat $HOME/pw", true},
		{"cat /a/*", true},
		{"vault read -field=pw secret/bmc | head -1", true},
		{"PW=1 printf x", true},
		{"  ", true},
	}
	for _, tt := range tests {
		cmd := scriptCommand(context.Background(), tt.script)
		if gotShell := cmd.Args[0] == "/bin/sh"; gotShell != tt.wantShell {
			t.Errorf("%q: through the shell = %v, want %v (args %q)", tt.script, gotShell, tt.wantShell, cmd.Args)
		}
	}
	for _, script := range []string{"printf from-script", "printf 'from-script'"} {
		out, err := scriptCommand(context.Background(), script).Output()
		if err != nil || string(out) != "from-script" {
			t.Errorf("%q printed %q (%v), want from-script", script, out, err)
		}
	}
}

func TestAnAgentsOwnDefaultReplacesTheCommonOneInUseAndInMetadata(t *testing.T) {
	dev := NewFakeDevice("n1")
	dev.Stuck[false] = true
	a := FakeAgent(dev, nil, nil)
	a.Defaults = map[string]string{"power_timeout": "4"}
	r := invoke(t, a, nil, "action=off\nplug=n1\n"+creds)
	if r.code != 1 {
		t.Fatalf("exit code = %d, want 1", r.code)
	}
	waited := r.clock.total()
	if waited < 4*time.Second || waited > 4*time.Second+pollInterval {
		t.Errorf("waited %s for the power change, want the agent's power_timeout (4s)", waited)
	}
	var md bytes.Buffer
	if err := a.WriteMetadata(&md); err != nil {
		t.Fatal(err)
	}
	want := "<parameter name=\"power_timeout\" unique=\"0\" required=\"0\">\n\t\t\t<getopt mixed=\"--power-timeout=[seconds]\"></getopt>\n\t\t\t<content type=\"second\" default=\"4\">"
	if !strings.Contains(md.String(), want) {
		t.Errorf("metadata lacks the agent's default:\n%s", want)
	}
}

func TestADefaultForAParameterTheAgentLacksIsRefusedAtOnce(t *testing.T) {
	a := FakeAgent(nil, nil, nil)
	a.Defaults = map[string]string{"no_such_timeout": "4"}
	defer func() {
		if recover() == nil {
			t.Error("no panic for a default of an unknown parameter")
		}
	}()
	a.spec()
}
