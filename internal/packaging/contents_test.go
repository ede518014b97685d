package packaging

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/goreleaser/nfpm/v2/files"

	"github.com/computeha/computeha/crm"
)

// assets copies packaging/ into a temporary directory, plus extra files.
func assets(t *testing.T, extra map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.CopyFS(dir, os.DirFS(filepath.Join("..", "..", "packaging"))); err != nil {
		t.Fatal(err)
	}
	for name, body := range extra {
		if err := os.MkdirAll(filepath.Join(dir, filepath.Dir(name)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func inputs(t *testing.T, dir string) Inputs {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "computeha")
	man := filepath.Join(t.TempDir(), "computeha.8.gz")
	for _, f := range []string{bin, man} {
		if err := os.WriteFile(f, nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return Inputs{
		Binary: bin,
		Programs: []Program{
			{Kind: "fence", Name: "fence_ipmi"}, {Kind: "ocf", Name: "nova-compute"}, {Kind: "alert", Name: "computeha_alert"},
		},
		Manpages: map[string]string{"/usr/share/man/man8/computeha.8.gz": man},
		Assets:   dir,
	}
}

// layout is "TYPE DESTINATION [-> LINK]" per entry, sorted.
func layout(c files.Contents) []string {
	var out []string
	for _, f := range c {
		s := f.Type + " " + f.Destination
		if f.Type == files.TypeSymlink {
			s += " -> " + f.Source
		}
		if f.Type == "" {
			s = "file " + f.Destination
		}
		out = append(out, s)
	}
	slices.Sort(out)
	return out
}

func TestContentsOfBothFormatsDifferOnlyInTheirDocumentation(t *testing.T) {
	in := inputs(t, assets(t, nil))
	deb, err := Contents(FormatDeb, in)
	if err != nil {
		t.Fatal(err)
	}
	rpm, err := Contents(FormatRPM, in)
	if err != nil {
		t.Fatal(err)
	}
	common := []string{
		"config|noreplace /etc/computeha/bmc-password.example",
		"config|noreplace /etc/computeha/clouds.yaml.example",
		"config|noreplace /etc/computeha/evacd.yaml.example",
		"dir /etc/computeha",
		"dir /usr/lib/ocf/resource.d/computeha",
		"dir /usr/libexec/computeha",
		"file /usr/sbin/computeha",
		"file /usr/share/man/man8/computeha.8.gz",
		"symlink /usr/lib/ocf/resource.d/computeha/nova-compute -> ../../../../sbin/computeha",
		"symlink /usr/libexec/computeha/computeha_alert -> ../../sbin/computeha",
		"symlink /usr/sbin/fence_ipmi -> computeha",
		"file /usr/lib/tmpfiles.d/computeha.conf",
		"dir /usr/share/computeha",
		"dir /usr/share/computeha/prometheus",
		"file /usr/share/computeha/prometheus/computeha-rules.yml",
	}
	wantDeb := slices.Sorted(slices.Values(append(slices.Clone(common), "file /lib/systemd/system/computeha-evacd.service",
		"file /usr/share/doc/computeha/copyright", "file /usr/share/lintian/overrides/computeha")))
	wantRPM := slices.Sorted(slices.Values(append(slices.Clone(common), "file /usr/lib/systemd/system/computeha-evacd.service",
		"license /usr/share/licenses/computeha/LICENSE")))
	if diff := cmp.Diff(wantDeb, layout(deb)); diff != "" {
		t.Errorf(".deb contents (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(wantRPM, layout(rpm)); diff != "" {
		t.Errorf(".rpm contents (-want +got):\n%s", diff)
	}
}

func TestEverySystemdUnitOfTheAssetsGoesWhereEachDistributionKeepsUnits(t *testing.T) {
	in := inputs(t, assets(t, map[string]string{"systemd/computeha-test.service": "[Unit]\n"}))
	for format, want := range map[string]string{
		FormatDeb: "file /lib/systemd/system/computeha-test.service",
		FormatRPM: "file /usr/lib/systemd/system/computeha-test.service",
	} {
		c, err := Contents(format, in)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Contains(layout(c), want) {
			t.Errorf("%s contents lack %q:\n%v", format, want, layout(c))
		}
	}
	if _, err := os.Stat(filepath.Join(in.Assets, assetScriptDir, systemdReload)); err != nil {
		t.Errorf("the maintainer script for units is missing: %v", err)
	}
}

func TestTheTmpfilesSnippetIsInstalledReadableByAllWhereSystemdTmpfilesReadsIt(t *testing.T) {
	in := inputs(t, assets(t, nil))
	for _, format := range []string{FormatDeb, FormatRPM} {
		c, err := Contents(format, in)
		if err != nil {
			t.Fatal(err)
		}
		i := slices.IndexFunc(c, func(f *files.Content) bool { return f.Destination == "/usr/lib/tmpfiles.d/computeha.conf" })
		if i < 0 {
			t.Errorf("the %s contents lack /usr/lib/tmpfiles.d/computeha.conf:\n%v", format, layout(c))
			continue
		}
		got := c[i]
		if got.Type != "" || got.FileInfo == nil || got.FileInfo.Mode != 0o644 {
			t.Errorf("%s: the snippet is type %q with %+v, want a plain file of mode 0644", format, got.Type, got.FileInfo)
		}
		if got.Source != filepath.Join(in.Assets, "tmpfiles", "computeha.conf") {
			t.Errorf("%s: the snippet comes from %s, want the assets' tmpfiles/computeha.conf", format, got.Source)
		}
	}
}

func TestTheTmpfilesSnippetSharesTheRuntimeDirectoryAndSpoolWithHaclient(t *testing.T) {
	body, err := os.ReadFile(filepath.Join("..", "..", "packaging", "tmpfiles", "computeha.conf"))
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	for _, l := range strings.Split(string(body), "\n") {
		if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "#") {
			lines = append(lines, strings.Join(strings.Fields(l), " "))
		}
	}
	// The alert agent (hacluster, group haclient) connects to the alert
	// socket and spools beside it when nobody listens.
	want := []string{
		"d " + filepath.Dir(crm.DefaultAlertSocket) + " 3770 root haclient -",
		"d " + crm.SpoolDir(crm.DefaultAlertSocket) + " 3770 root haclient -",
	}
	if diff := cmp.Diff(want, lines); diff != "" {
		t.Errorf("tmpfiles.d entries (-want +got):\n%s", diff)
	}
}

func TestContentsRefuseAMissingAssetAndAnUnknownFormat(t *testing.T) {
	dir := assets(t, nil)
	if err := os.Remove(filepath.Join(dir, "copyright")); err != nil {
		t.Fatal(err)
	}
	if _, err := Contents(FormatDeb, inputs(t, dir)); err == nil {
		t.Error("a .deb without its copyright file was accepted")
	}
	if _, err := Contents("apk", inputs(t, assets(t, nil))); err == nil {
		t.Error("an unknown format was accepted")
	}
}

func TestTheAgentListFitsDebianDescriptionLines(t *testing.T) {
	var progs []Program
	for i := range 30 {
		progs = append(progs, Program{Kind: "fence", Name: fmt.Sprintf("fence_agent_number_%02d", i)})
	}
	s := agentSentence(progs)
	for _, line := range strings.Split(s, "\n") {
		if len(line) > 79 {
			t.Errorf("line of %d characters: %q", len(line), line)
		}
	}
	if got := strings.Join(strings.Fields(s), " "); !strings.Contains(got, "fence_agent_number_29.") {
		t.Errorf("the list lost agents: %q", got)
	}
}
