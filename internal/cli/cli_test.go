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
	if code != 0 || out != "fence_ipmi\nfence_libvirt\n" {
		t.Errorf("exit %d, %q", code, out)
	}
}
