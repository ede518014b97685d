//go:build integration

package integration

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// raAPIDir holds resource-agents' ra-api-1.dtd; the meta-data's DOCTYPE
// names it relatively, so xmllint validates from there, as ocf-tester does.
const raAPIDir = "/usr/share/resource-agents"

// ocfAgents lists the OCF agents the binary serves.
func ocfAgents(t *testing.T) []string {
	t.Helper()
	out, err := exec.Command(filepath.Join(binDir, "computeha"), "agents").Output()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if kind, name, _ := strings.Cut(line, " "); kind == "ocf" {
			names = append(names, name)
		}
	}
	if len(names) == 0 {
		t.Fatal("the binary serves no OCF agent")
	}
	return names
}

func ocfAgentPath(name string) string { return filepath.Join(binDir, "resource.d", "computeha", name) }

func TestEveryOCFAgentsMetadataIsValidAndCheckedIn(t *testing.T) {
	for _, name := range ocfAgents(t) {
		t.Run(name, func(t *testing.T) {
			r := execute(t, time.Minute, "", ocfAgentPath(name), "meta-data")
			if r.code != 0 {
				t.Fatalf("meta-data: %s", r)
			}
			lint := exec.Command("xmllint", "--noout", "--valid", "-")
			lint.Dir = raAPIDir
			lint.Stdin = strings.NewReader(r.stdout)
			if out, err := lint.CombinedOutput(); err != nil {
				t.Errorf("meta-data of %s is not valid against ra-api-1.dtd: %v\n%s", name, err, out)
			}
			want, err := os.ReadFile(filepath.Join(repoRoot, "ocf-metadata", name+".xml"))
			if err != nil || string(want) != r.stdout {
				t.Errorf("meta-data differs from ocf-metadata/%s.xml (run make metadata): %v", name, err)
			}
		})
	}
}

// TestMetadataRunsAsNobody is ocf-tester's permission check: Pacemaker may
// ask for meta-data as an unprivileged user.
func TestMetadataRunsAsNobody(t *testing.T) {
	dir, err := os.MkdirTemp("", "computeha-nobody-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	bin, err := os.ReadFile(filepath.Join(binDir, "computeha"))
	if err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "computeha", "nova-compute")
	if err := os.MkdirAll(filepath.Dir(link), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "computeha-bin"), bin, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(dir, "computeha-bin"), link); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	r := execute(t, time.Minute, "", "su", "nobody", "-s", "/bin/sh", "-c", link+" meta-data")
	if r.code != 0 || !strings.Contains(r.stdout, `<resource-agent name="nova-compute"`) {
		t.Errorf("meta-data as nobody: %s", r)
	}
}

// ocfRun runs an OCF agent action with the given environment (on top of a
// clean one: PATH only).
func ocfRun(t *testing.T, name, action string, env ...string) run {
	t.Helper()
	cmd := exec.Command(ocfAgentPath(name), action)
	cmd.Env = append([]string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin"}, env...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	start := time.Now()
	err := cmd.Run()
	r := run{stdout: out.String(), stderr: errb.String(), elapsed: time.Since(start)}
	if err != nil {
		ee, ok := err.(*exec.ExitError)
		if !ok {
			t.Fatal(err)
		}
		r.code = ee.ExitCode()
	}
	return r
}

// TestNovaComputeAnswersWhatOcfTesterChecksBeforeStart drives the real
// binary through the steps of ocf-tester that need no Nova, in command
// mode, with state in a private HA_RSCTMP.
func TestNovaComputeAnswersWhatOcfTesterChecksBeforeStart(t *testing.T) {
	dir := t.TempDir()
	yaml := filepath.Join(dir, "clouds.yaml")
	if err := os.WriteFile(yaml, []byte("clouds: {}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	base := []string{
		"OCF_ROOT=/usr/lib/ocf", "OCF_RESOURCE_INSTANCE=nc", "HA_RSCTMP=" + dir,
		"OCF_RESKEY_cloud=overcloud", "OCF_RESKEY_clouds_yaml=" + yaml,
		"OCF_RESKEY_start_command=sleep 300", "OCF_RESKEY_CRM_meta_timeout=20000",
	}
	tests := []struct {
		name       string
		action     string
		env        []string
		wantCode   int
		wantReason string
	}{
		{"validate-all accepts a complete configuration", "validate-all", nil, 0, ""},
		{"a stopped resource monitors as not running", "monitor", []string{"OCF_RESKEY_CRM_meta_interval=10000"}, 7, ""},
		{"a probe while the programs look missing is not running", "monitor", []string{"OCF_RESKEY_CRM_meta_interval=0", "OCF_TESTER_FAIL_HAVE_BINARY=1"}, 7, ""},
		{"stopping a stopped resource succeeds", "stop", nil, 0, ""},
		{"notify is not implemented", "notify", nil, 3, "notify is not implemented"},
		{"promote is not implemented", "promote", nil, 3, "promote is not implemented"},
		{"reload-agent is not implemented", "reload-agent", nil, 3, "reload-agent is not implemented"},
		{"an unknown action is a usage error", "smash", nil, 2, `unknown action "smash"`},
		{"a clouds.yaml missing on this node is an invalid argument", "validate-all", []string{"OCF_RESKEY_clouds_yaml=" + dir + "/none"}, 2, "clouds_yaml " + dir + "/none cannot be read: no such file or directory"},
		{"a missing cloud is a configuration error", "validate-all", []string{"OCF_RESKEY_cloud="}, 6, "parameter cloud is required"},
		{"a bad boolean is a configuration error", "start", []string{"OCF_RESKEY_evacuation_wait=maybe"}, 6, `parameter evacuation_wait="maybe": not a boolean (use 1/yes/on/true or 0/no/off/false)`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := ocfRun(t, "nova-compute", tt.action, append(append([]string(nil), base...), tt.env...)...)
			var reason string
			for _, l := range strings.Split(r.stderr, "\n") {
				if s, ok := strings.CutPrefix(l, "ocf-exit-reason:"); ok {
					reason = s
				}
			}
			if r.code != tt.wantCode || reason != tt.wantReason {
				t.Errorf("want exit %d reason %q, got %s", tt.wantCode, tt.wantReason, r)
			}
			if r.elapsed > 2*time.Second {
				t.Errorf("took %s", r.elapsed)
			}
		})
	}
	if r := ocfRun(t, "nova-compute", ""); r.code != 2 || !strings.Contains(r.stderr, "usage: nova-compute {start|stop|monitor|meta-data|validate-all|usage}") {
		t.Errorf("no action: want exit 2 and the usage, got %s", r)
	}
}

// inPrivateOCFRoot runs a shell script in a private mount namespace where
// /usr/lib/ocf/resource.d also shows our agents (read-only overlay), the
// way packages install them. Nothing is created or mounted on the
// machine's own /usr: the mount exists only in the namespace and goes away
// with the script.
func inPrivateOCFRoot(t *testing.T, script string) run {
	t.Helper()
	ra := t.TempDir()
	for _, name := range ocfAgents(t) {
		link := filepath.Join(ra, "computeha", name)
		if err := os.MkdirAll(filepath.Dir(link), 0o755); err != nil {
			t.Fatal(err)
		}
		// Absolute: a relative link would resolve inside the overlay.
		if err := os.Symlink(filepath.Join(binDir, "computeha"), link); err != nil {
			t.Fatal(err)
		}
	}
	mount := "mount -t overlay overlay -o lowerdir=" + ra + ":/usr/lib/ocf/resource.d /usr/lib/ocf/resource.d\n"
	r := execute(t, 2*time.Minute, "", "unshare", "--mount", "--propagation", "private", "/bin/sh", "-ec", mount+script)
	t.Logf("%s", r)
	mi, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(mi), ra) {
		t.Fatalf("the overlay of %s leaked into the machine's mount table", ra)
	}
	return r
}

func TestPcsCreatesANovaComputeCloneWithoutForce(t *testing.T) {
	cib := filepath.Join(t.TempDir(), "cib.xml")
	if out, err := exec.Command("sh", "-c", "cibadmin --empty > "+cib).CombinedOutput(); err != nil {
		t.Fatalf("cibadmin --empty: %v\n%s", err, out)
	}
	r := inPrivateOCFRoot(t, `
pcs -f `+cib+` resource create nc ocf:computeha:nova-compute cloud=overcloud clone interleave=true
echo created
pcs -f `+cib+` resource create nc-bad ocf:computeha:nova-compute start_command=true && exit 1
echo refused-missing
pcs -f `+cib+` resource create nc-typo ocf:computeha:nova-compute cloud=x evacuaton_wait=0 && exit 1
echo refused-unknown
crm_resource --validate --class ocf --provider computeha --agent nova-compute --option cloud=x --option clouds_yaml=/nonexistent && exit 1
echo validate-refused
`)
	if r.code != 0 {
		t.Fatalf("pcs in the private OCF root: %s", r)
	}
	for _, want := range []string{"created", "refused-missing", "refused-unknown", "validate-refused"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("step %q not reached: %s", want, r)
		}
	}
	for _, want := range []string{"required resource option 'cloud' is missing", "evacuaton_wait", "invalid parameter: clouds_yaml /nonexistent cannot be read"} {
		if !strings.Contains(r.stderr+r.stdout, want) {
			t.Errorf("output lacks %q", want)
		}
	}
	data, err := os.ReadFile(cib)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`<clone id="nc-clone">`, `class="ocf" type="nova-compute" provider="computeha"`, `name="cloud" value="overcloud"`} {
		if !strings.Contains(string(data), want) {
			t.Errorf("the CIB lacks %s", want)
		}
	}
}
