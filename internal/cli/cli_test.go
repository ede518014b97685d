package cli

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func runMain(t *testing.T, args []string, stdin string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := Main(context.Background(), args, IO{Stdin: strings.NewReader(stdin), Stdout: &out, Stderr: &errb})
	return code, out.String(), errb.String()
}

func TestCheckedInMetadataIsCurrent(t *testing.T) {
	if err := CheckMetadata(filepath.Join("..", "..", "ocf-metadata")); err != nil {
		t.Error(err)
	}
}

func TestCheckMetadataReportsStaleMissingAndExtraFiles(t *testing.T) {
	dir := t.TempDir()
	if err := WriteMetadata(dir); err != nil {
		t.Fatal(err)
	}
	if err := CheckMetadata(dir); err != nil {
		t.Fatalf("freshly written metadata fails the check: %v", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "fence_ipmi.xml"), []byte("<old/>"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(dir, "fence_libvirt.xml")); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "fence_gone.xml"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	err := CheckMetadata(dir)
	for _, want := range []string{"fence_ipmi.xml: differs", "fence_libvirt.xml: missing", "fence_gone.xml: no agent generates it"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("check error %v lacks %q", err, want)
		}
	}
}

func TestDispatchByProgramNameAndBySubcommand(t *testing.T) {
	for _, args := range [][]string{
		{"/usr/sbin/fence_ipmi", "-o", "metadata"},
		{"computeha", "fence-ipmi", "-o", "metadata"},
		{"/usr/bin/computeha", "fence-ipmi", "--action=metadata"},
	} {
		code, out, errOut := runMain(t, args, "")
		if code != 0 || !strings.Contains(out, `<resource-agent name="fence_ipmi"`) {
			t.Errorf("%q: exit %d, stdout %.60q, stderr %q", args, code, out, errOut)
		}
	}
	code, out, _ := runMain(t, []string{"fence_libvirt"}, "action=metadata\n")
	if code != 0 || !strings.Contains(out, `<resource-agent name="fence_libvirt"`) {
		t.Errorf("fence_libvirt from stdin: exit %d, %.60q", code, out)
	}
}

func TestAgentExitCodesPassThroughTheSubcommand(t *testing.T) {
	code, _, errOut := runMain(t, []string{"computeha", "fence-ipmi", "-o", "off"}, "")
	if code != 1 || !strings.Contains(errOut, "--ip") {
		t.Errorf("exit %d, stderr %q: want 1 and the missing ip named", code, errOut)
	}
}

func TestUnknownSubcommandFails(t *testing.T) {
	if code, _, _ := runMain(t, []string{"computeha", "no-such-command"}, ""); code == 0 {
		t.Errorf("an unknown subcommand exited 0")
	}
}

func TestVersion(t *testing.T) {
	code, out, _ := runMain(t, []string{"computeha", "version"}, "")
	if code != 0 || out != "computeha "+Version+"\n" {
		t.Errorf("exit %d, %q", code, out)
	}
}

func TestAgentsListsEveryFenceAgent(t *testing.T) {
	code, out, _ := runMain(t, []string{"computeha", "agents"}, "")
	if code != 0 || !strings.HasPrefix(out, "fence fence_ipmi\nfence fence_libvirt\n") {
		t.Errorf("exit %d, %q", code, out)
	}
}

func TestManpageOfAnAgent(t *testing.T) {
	code, out, _ := runMain(t, []string{"computeha", "manpage", "fence_ipmi"}, "")
	if code != 0 || !strings.HasPrefix(out, ".TH FENCE_IPMI 8") {
		t.Errorf("exit %d, %.40q", code, out)
	}
	if code, _, errOut := runMain(t, []string{"computeha", "manpage", "fence_nothing"}, ""); code != 1 || !strings.Contains(errOut, "fence_nothing") {
		t.Errorf("an unknown agent: exit %d, %q", code, errOut)
	}
}

func TestOCFAgentsAreMatchedOnlyInTheirProviderDirectory(t *testing.T) {
	for _, e := range Entries() {
		if e.Kind != KindOCF {
			continue
		}
		if _, ok := lookup("/usr/bin/" + e.Name); ok {
			t.Errorf("%s matched outside resource.d/%s", e.Name, OCFProvider)
		}
		if _, ok := lookup("/usr/lib/ocf/resource.d/" + OCFProvider + "/" + e.Name); !ok {
			t.Errorf("%s not matched in its provider directory", e.Name)
		}
	}
}

func TestStartedAsAgent(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want bool
	}{
		{[]string{"/usr/sbin/fence_ipmi", "--action=status"}, true},
		{[]string{"/usr/lib/ocf/resource.d/" + OCFProvider + "/nova-compute", "monitor"}, true},
		{[]string{"/usr/bin/computeha", "evacd"}, false},
		{[]string{"/usr/bin/computeha", "fence-ipmi"}, false},
		{[]string{"nova-compute"}, false},
		{nil, false},
	} {
		if got := StartedAsAgent(tc.args); got != tc.want {
			t.Errorf("StartedAsAgent(%q) = %v, want %v", tc.args, got, tc.want)
		}
	}
}
