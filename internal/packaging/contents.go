package packaging

import (
	"fmt"
	"maps"
	"os"
	"path"
	"path/filepath"
	"slices"

	"github.com/goreleaser/nfpm/v2/files"
)

// Formats the packager builds.
const (
	FormatDeb = "deb"
	FormatRPM = "rpm"
)

// Name is the package name in both formats.
const Name = "computeha"

// Inputs is everything a package is made of, already on disk.
type Inputs struct {
	Binary   string    // the built computeha
	Programs []Program // what computeha agents printed
	// Manpages maps an installed man page path (…/man8/x.8.gz) to the
	// gzipped file to install there.
	Manpages map[string]string
	Assets   string // the packaging/ directory
}

// Assets of packaging/ that contents draws on.
const (
	assetLicence   = "LICENSE"
	assetCopyright = "copyright"
	assetOverrides = "lintian-overrides"
	assetConfigDir = "etc"
	assetUnitDir   = "systemd"
	assetScriptDir = "scripts"
	assetTmpfiles  = "tmpfiles"
	assetRules     = "prometheus"
	// systemdReload is the maintainer script fragment (dpkg
	// postinst/postrm, rpm %post/%postun) that packages with systemd units
	// get.
	systemdReload = "systemd-reload.sh"
	// tmpfilesCreate is the fragment (dpkg postinst, rpm %post) that
	// packages with tmpfiles.d snippets get: it creates their directories
	// at install time, since the boot that would create them may be far
	// off.
	tmpfilesCreate = "tmpfiles-create.sh"
)

// RulesDir is where the Prometheus alert rules for computeha's metrics go.
const RulesDir = "/usr/share/computeha/prometheus"

// ConfigDir is where the example configuration goes.
const ConfigDir = "/etc/computeha"

// UnitDir is where systemd units go: Debian 12 still ships units in /lib
// (the /usr merge of package contents is not done there), RPM distributions
// in /usr/lib.
func UnitDir(format string) string {
	if format == FormatDeb {
		return "/lib/systemd/system"
	}
	return "/usr/lib/systemd/system"
}

// TmpfilesDir is where tmpfiles.d snippets go, in both formats: the
// vendor directory systemd-tmpfiles reads (on Debian 12 too), leaving
// /etc/tmpfiles.d to the administrator's overrides.
const TmpfilesDir = "/usr/lib/tmpfiles.d"

// Tmpfiles lists the tmpfiles.d snippets of the assets directory.
func Tmpfiles(assets string) ([]string, error) {
	snippets, err := filepath.Glob(filepath.Join(assets, assetTmpfiles, "*.conf"))
	if err != nil {
		return nil, fmt.Errorf("listing tmpfiles.d snippets: %w", err)
	}
	return snippets, nil
}

// Units lists the systemd units of the assets directory.
func Units(assets string) ([]string, error) {
	units, err := filepath.Glob(filepath.Join(assets, assetUnitDir, "*.service"))
	if err != nil {
		return nil, fmt.Errorf("listing systemd units: %w", err)
	}
	return units, nil
}

// Contents lists the files of the package in one format. Both formats get
// the same list, except for each one's documentation conventions.
func Contents(format string, in Inputs) (files.Contents, error) {
	c := files.Contents{
		{Source: in.Binary, Destination: BinaryPath, FileInfo: &files.ContentFileInfo{Mode: 0o755}},
		{Destination: ConfigDir, Type: files.TypeDir, FileInfo: &files.ContentFileInfo{Mode: 0o755}},
	}
	// Directories that only computeha uses are owned by the package, so
	// that removing it removes them too (dpkg does that for every directory
	// it created; rpm only for directories the package lists).
	ownDirs := map[string]bool{}
	for _, p := range in.Programs {
		dst, err := p.Path()
		if err != nil {
			return nil, err
		}
		if p.Kind == "ocf" || p.Kind == "alert" {
			ownDirs[path.Dir(dst)] = true
		}
		// Relative links, as Debian policy asks for links inside /usr; the
		// agents are still found by the path they are started as.
		target, err := filepath.Rel(path.Dir(dst), BinaryPath)
		if err != nil {
			return nil, fmt.Errorf("link for %s: %w", p.Name, err)
		}
		c = append(c, &files.Content{Source: target, Destination: dst, Type: files.TypeSymlink})
	}
	for _, d := range slices.Sorted(maps.Keys(ownDirs)) {
		c = append(c, &files.Content{Destination: d, Type: files.TypeDir, FileInfo: &files.ContentFileInfo{Mode: 0o755}})
	}
	for _, dst := range slices.Sorted(maps.Keys(in.Manpages)) {
		c = append(c, &files.Content{Source: in.Manpages[dst], Destination: dst, FileInfo: &files.ContentFileInfo{Mode: 0o644}})
	}

	configs, err := filepath.Glob(filepath.Join(in.Assets, assetConfigDir, "*"))
	if err != nil {
		return nil, fmt.Errorf("listing example configuration: %w", err)
	}
	for _, f := range configs {
		c = append(c, &files.Content{
			Source: f, Destination: path.Join(ConfigDir, filepath.Base(f)),
			Type: files.TypeConfigNoReplace, FileInfo: &files.ContentFileInfo{Mode: 0o644},
		})
	}
	units, err := Units(in.Assets)
	if err != nil {
		return nil, err
	}
	for _, u := range units {
		c = append(c, &files.Content{
			Source: u, Destination: path.Join(UnitDir(format), filepath.Base(u)),
			FileInfo: &files.ContentFileInfo{Mode: 0o644},
		})
	}
	// Plain files, not configuration: an administrator overrides a snippet
	// with one of the same name in /etc/tmpfiles.d.
	snippets, err := Tmpfiles(in.Assets)
	if err != nil {
		return nil, err
	}
	for _, s := range snippets {
		c = append(c, &files.Content{
			Source: s, Destination: path.Join(TmpfilesDir, filepath.Base(s)),
			FileInfo: &files.ContentFileInfo{Mode: 0o644},
		})
	}

	// Alert rules an operator includes in Prometheus' rule_files; read-only data of the
	// package, in directories it owns.
	rules, err := filepath.Glob(filepath.Join(in.Assets, assetRules, "*.yml"))
	if err != nil {
		return nil, fmt.Errorf("listing alert rules: %w", err)
	}
	if len(rules) > 0 {
		c = append(c,
			&files.Content{Destination: path.Dir(RulesDir), Type: files.TypeDir, FileInfo: &files.ContentFileInfo{Mode: 0o755}},
			&files.Content{Destination: RulesDir, Type: files.TypeDir, FileInfo: &files.ContentFileInfo{Mode: 0o755}})
	}
	for _, r := range rules {
		c = append(c, &files.Content{
			Source: r, Destination: path.Join(RulesDir, filepath.Base(r)),
			FileInfo: &files.ContentFileInfo{Mode: 0o644},
		})
	}

	doc := "/usr/share/doc/" + Name
	switch format {
	case FormatDeb:
		// Debian points at /usr/share/common-licenses instead of shipping
		// the licence text again; nfpm adds changelog.Debian.gz itself.
		c = append(c, &files.Content{
			Source: filepath.Join(in.Assets, assetCopyright), Destination: doc + "/copyright",
			FileInfo: &files.ContentFileInfo{Mode: 0o644},
		})
		if _, err := os.Stat(filepath.Join(in.Assets, assetOverrides)); err == nil {
			c = append(c, &files.Content{
				Source: filepath.Join(in.Assets, assetOverrides), Destination: "/usr/share/lintian/overrides/" + Name,
				FileInfo: &files.ContentFileInfo{Mode: 0o644},
			})
		}
	case FormatRPM:
		c = append(c, &files.Content{
			Source: filepath.Join(in.Assets, assetLicence), Destination: "/usr/share/licenses/" + Name + "/LICENSE",
			Type: files.TypeRPMLicense, FileInfo: &files.ContentFileInfo{Mode: 0o644},
		})
	default:
		return nil, fmt.Errorf("unknown package format %q (want %s or %s)", format, FormatDeb, FormatRPM)
	}
	for _, f := range c {
		if f.Type == files.TypeSymlink || f.Type == files.TypeDir {
			continue
		}
		if _, err := os.Stat(f.Source); err != nil {
			return nil, fmt.Errorf("package file %s: %w", f.Destination, err)
		}
	}
	return c, nil
}

// Depends are the package's dependencies in the format's syntax: the
// Pacemaker daemons and its command-line tools (the agents are run by the
// first, configured with the second). Nothing needs fence-agents.
func Depends(format string) []string {
	if format == FormatDeb {
		return []string{"pacemaker (>= 2.1)", "pacemaker-cli-utils (>= 2.1)"}
	}
	return []string{"pacemaker >= 2.1", "pacemaker-cli >= 2.1"}
}
