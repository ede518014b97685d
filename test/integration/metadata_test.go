//go:build integration

package integration

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// fenceSchema is the RELAX NG schema fence-agents validates its own
// agents' metadata with (Debian's fence-agents package).
const fenceSchema = "/usr/share/cluster/relaxng/metadata.rng"

func xmllintRelaxNG(t *testing.T, file string) {
	t.Helper()
	out, err := exec.Command("xmllint", "--noout", "--relaxng", fenceSchema, file).CombinedOutput()
	if err != nil {
		t.Errorf("%s does not validate against %s: %v\n%s", file, fenceSchema, err, out)
	}
}

func TestCheckedInMetadataValidatesAgainstTheFenceAgentsSchema(t *testing.T) {
	files, err := filepath.Glob(filepath.Join(repoRoot, "ocf-metadata", "fence_*.xml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no fence metadata under ocf-metadata/ (%v)", err)
	}
	for _, f := range files {
		xmllintRelaxNG(t, f)
	}
}

func TestAgentsPrintTheirCheckedInMetadata(t *testing.T) {
	for _, agent := range []string{"fence_ipmi", "fence_libvirt"} {
		want, err := os.ReadFile(filepath.Join(repoRoot, "ocf-metadata", agent+".xml"))
		if err != nil {
			t.Fatal(err)
		}
		for _, how := range []struct {
			args  []string
			stdin string
		}{{[]string{"-o", "metadata"}, ""}, {nil, "action=meta-data\n"}} {
			r := execute(t, time.Minute, how.stdin, agentPath(agent), how.args...)
			if r.code != 0 || r.stdout != string(want) {
				t.Errorf("%s %q: exit %d, metadata differs from ocf-metadata/%s.xml", agent, how.args, r.code, agent)
			}
		}
		live := filepath.Join(t.TempDir(), agent+".xml")
		r := execute(t, time.Minute, "", agentPath(agent), "-o", "metadata")
		if err := os.WriteFile(live, []byte(r.stdout), 0o644); err != nil {
			t.Fatal(err)
		}
		xmllintRelaxNG(t, live)
	}
}

// TestBadInputIsRefusedClearly drives the real binary with broken input:
// each case must exit 1 with a message that says what is wrong.
func TestBadInputIsRefusedClearly(t *testing.T) {
	tests := []struct {
		name    string
		agent   string
		args    []string
		stdin   string
		wantErr string
	}{
		{"an unknown action", "fence_ipmi", nil, "action=smash\nip=127.0.0.1\npassword=x\n", "Unrecognised action 'smash'"},
		{"a malformed stdin line", "fence_ipmi", nil, "action=status\nip 127.0.0.1\n", "line 2 of standard input is not of the form key=value"},
		{"a missing address", "fence_ipmi", []string{"-o", "status", "-l", "admin", "-S", "true"}, "", "You have to enter a value for --ip"},
		{"a missing password", "fence_ipmi", nil, "action=status\nip=127.0.0.1\n", "You have to enter password or password script"},
		{"a port that is not a number", "fence_ipmi", nil, "action=status\nip=127.0.0.1\nipport=six\npassword=x\n", "--ipport (\"six\") is not a valid integer"},
		{"a port out of range", "fence_ipmi", nil, "action=status\nip=127.0.0.1\nipport=70000\npassword=x\n", "ipport 70000 is not a UDP port"},
		{"a cipher suite that does not exist", "fence_ipmi", nil, "action=status\nip=127.0.0.1\nlanplus=1\ncipher=42\npassword=x\n", "cipher \"42\" is not an IPMI cipher suite id"},
		{"an unsupported Kg key", "fence_ipmi", nil, "action=status\nip=127.0.0.1\nhexadecimal_kg=0011\npassword=x\n", "hexadecimal_kg is not supported"},
		{"a method that does not exist", "fence_ipmi", []string{"-o", "reboot", "-a", "127.0.0.1", "-p", "x", "--method=gently"}, "", "not one of the valid values: onoff, cycle"},
		{"a time that is not a number", "fence_ipmi", nil, "action=off\nip=127.0.0.1\npower_timeout=soon\npassword=x\n", "not a valid time in seconds"},
		{"an unknown option on the command line", "fence_libvirt", []string{"--plug=vm1", "--colour=blue"}, "", "option --colour not recognized"},
		{"a URI that is not a URI", "fence_libvirt", nil, "action=status\nplug=vm1\nuri=::nope\n", "is not a libvirt connection URI"},
		{"a URI with a password in it", "fence_libvirt", nil, "action=status\nplug=vm1\nuri=qemu+ssh://root:pw@h/system\n", "must not carry a password"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := execute(t, time.Minute, tt.stdin, agentPath(tt.agent), tt.args...)
			if r.code != 1 || !strings.Contains(r.stderr, tt.wantErr) {
				t.Errorf("want exit 1 and %q on stderr, got %s", tt.wantErr, r)
			}
			if r.elapsed > 2*time.Second {
				t.Errorf("refusing bad input took %s", r.elapsed)
			}
		})
	}
}
