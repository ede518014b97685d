package packaging

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// readScript is the script at path, or "" for no script.
func readScript(t *testing.T, path string) string {
	t.Helper()
	if path == "" {
		return ""
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := exec.Command("sh", "-n", path).Run(); err != nil {
		t.Errorf("sh -n %s: %v\n%s", filepath.Base(path), err, b)
	}
	return string(b)
}

// commands are the lines of a script that are neither comments nor blank,
// trimmed.
func commands(script string) []string {
	var out []string
	for _, l := range strings.Split(script, "\n") {
		if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "#") {
			out = append(out, l)
		}
	}
	return out
}

func TestMaintainerScriptsHoldWhatTheShippedSnippetsAndUnitsNeed(t *testing.T) {
	tmpfiles := []string{
		"set -e",
		"if command -v systemd-tmpfiles >/dev/null 2>&1; then",
		`systemd-tmpfiles ${DPKG_ROOT:+--root="$DPKG_ROOT"} --create computeha.conf || true`,
		"fi",
	}
	reload := []string{
		"set -e",
		"if [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then",
		"systemctl daemon-reload >/dev/null 2>&1 || true",
		"fi",
	}
	for _, tc := range []struct {
		name         string
		remove       []string // asset globs removed first
		post, postrm []string
	}{
		{
			name:   "with snippets and units, install creates the directories and reloads units, removal reloads units",
			post:   append(append([]string{}, tmpfiles...), reload...),
			postrm: reload,
		},
		{
			name:   "with snippets only, install creates the directories and removal runs nothing",
			remove: []string{"systemd/*.service"},
			post:   tmpfiles,
		},
		{
			name:   "with units only, both reload units",
			remove: []string{"tmpfiles/*.conf"},
			post:   reload,
			postrm: reload,
		},
		{
			name:   "with neither, the package has no script at all",
			remove: []string{"systemd/*.service", "tmpfiles/*.conf"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := assets(t, nil)
			for _, g := range tc.remove {
				matches, _ := filepath.Glob(filepath.Join(dir, g))
				for _, m := range matches {
					if err := os.Remove(m); err != nil {
						t.Fatal(err)
					}
				}
			}
			s, err := MaintainerScripts(dir, t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			for name, c := range map[string]struct {
				path string
				want []string
			}{"post-install": {s.PostInstall, tc.post}, "post-removal": {s.PostRemove, tc.postrm}} {
				got := readScript(t, c.path)
				if c.want == nil {
					if c.path != "" {
						t.Errorf("a %s script was written:\n%s", name, got)
					}
					continue
				}
				if !strings.HasPrefix(got, "#!/bin/sh\n") || strings.Count(got, "#!") != 1 {
					t.Errorf("the %s script does not start with the one #!/bin/sh line:\n%s", name, got)
				}
				if diff := cmp.Diff(c.want, commands(got)); diff != "" {
					t.Errorf("%s commands (-want +got):\n%s", name, diff)
				}
			}
		})
	}
}

func TestMaintainerScriptsRefuseAFragmentThatExits(t *testing.T) {
	dir := assets(t, map[string]string{"scripts/tmpfiles-create.sh": "#!/bin/sh\nset -e\nexit 0\n"})
	if _, err := MaintainerScripts(dir, t.TempDir()); err == nil || !strings.Contains(err.Error(), "tmpfiles-create.sh exits") {
		t.Errorf("MaintainerScripts = %v, want an error naming the fragment that exits", err)
	}
}

func TestTheTmpfilesFragmentCreatesEverySnippet(t *testing.T) {
	script, err := os.ReadFile(filepath.Join("..", "..", "packaging", assetScriptDir, tmpfilesCreate))
	if err != nil {
		t.Fatal(err)
	}
	snippets, err := Tmpfiles(filepath.Join("..", "..", "packaging"))
	if err != nil || len(snippets) == 0 {
		t.Fatalf("no tmpfiles.d snippet in packaging/tmpfiles (%v)", err)
	}
	for _, s := range snippets {
		if !strings.Contains(string(script), "--create "+filepath.Base(s)) {
			t.Errorf("%s does not create the directories of %s", tmpfilesCreate, filepath.Base(s))
		}
	}
}

// The post-install script runs wherever the package goes: without
// systemd-tmpfiles, and where it rejects lines (exit 65, as for a group
// that does not exist yet), the install must go on.
func TestThePostInstallScriptNeverFailsTheInstallOverTmpfiles(t *testing.T) {
	s, err := MaintainerScripts(assets(t, nil), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name     string
		tmpfiles string // the fake systemd-tmpfiles, "" for none
		want     string // what it was called with
	}{
		{name: "systemd-tmpfiles creating the directories is called with the snippet", tmpfiles: "exit 0", want: "--create computeha.conf\n"},
		{name: "systemd-tmpfiles rejecting the snippet's lines does not fail it", tmpfiles: "exit 65", want: "--create computeha.conf\n"},
		{name: "a host without systemd-tmpfiles does not fail it"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			bin := t.TempDir()
			log := filepath.Join(t.TempDir(), "calls")
			if tc.tmpfiles != "" {
				fake := "#!/bin/sh\necho \"$@\" >>\"$CALLS\"\n" + tc.tmpfiles + "\n"
				if err := os.WriteFile(filepath.Join(bin, "systemd-tmpfiles"), []byte(fake), 0o755); err != nil {
					t.Fatal(err)
				}
			}
			sh, err := exec.LookPath("sh")
			if err != nil {
				t.Fatal(err)
			}
			cmd := exec.Command(sh, s.PostInstall, "configure")
			// Only the fake on PATH: neither the real systemd-tmpfiles
			// nor systemctl can run.
			cmd.Env = []string{"PATH=" + bin, "CALLS=" + log}
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("the post-install script failed: %v\n%s", err, out)
			}
			got, err := os.ReadFile(log)
			if err != nil && !os.IsNotExist(err) {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, string(got)); diff != "" {
				t.Errorf("systemd-tmpfiles calls (-want +got):\n%s", diff)
			}
		})
	}
}
