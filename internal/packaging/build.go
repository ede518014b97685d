package packaging

import (
	"bytes"
	"compress/gzip"
	"context"
	"debug/elf"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/goreleaser/chglog"
	"github.com/goreleaser/nfpm/v2"
	"github.com/goreleaser/nfpm/v2/deb"
	"github.com/goreleaser/nfpm/v2/rpm"
)

// Options of Build.
type Options struct {
	Binary     string   // the built computeha, runnable on this machine
	Assets     string   // the packaging/ directory
	OutDir     string   // where the packages go (created if missing)
	Formats    []string // FormatDeb, FormatRPM
	Maintainer string   // "Name <address>"
	// MTime is the time stamp of every file and of the package itself, so
	// that the same commit gives the same packages (SourceDate).
	MTime  time.Time
	Logger *slog.Logger
}

const (
	homepage = "https://github.com/computeha/computeha"
	licence  = "Apache-2.0"
	// synopsis and description are the package descriptions; the list of
	// agents is appended from the binary.
	synopsis    = "high availability for OpenStack compute hosts and their VMs"
	description = `computeha keeps OpenStack virtual machines running when a compute host
fails, without their owners re-architecting them. It runs inside a
Pacemaker cluster as fence agents, OCF resource agents and alert agents,
all served by one binary. It fences a failed host, and confirms it is
off, before anything of it restarts elsewhere.`
)

// Build writes one package per format into OutDir and returns their paths.
func Build(ctx context.Context, o Options) ([]string, error) {
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log = log.With("component", "packaging")
	if len(o.Formats) == 0 {
		return nil, errors.New("no package format asked for")
	}
	for _, f := range o.Formats {
		if f != FormatDeb && f != FormatRPM {
			return nil, fmt.Errorf("unknown package format %q (want %s or %s)", f, FormatDeb, FormatRPM)
		}
	}
	if strings.TrimSpace(o.Maintainer) == "" {
		return nil, errors.New("a maintainer is required")
	}
	arch, err := BinaryArch(o.Binary)
	if err != nil {
		return nil, err
	}
	describe, err := BinaryVersion(ctx, o.Binary)
	if err != nil {
		return nil, err
	}
	version, err := PackageVersion(describe)
	if err != nil {
		return nil, err
	}
	out, err := run(ctx, o.Binary, "agents")
	if err != nil {
		return nil, err
	}
	progs, err := ParseAgents(bytes.NewReader(out))
	if err != nil {
		return nil, err
	}
	log.Info("packaging", "version", version, "git_describe", describe, "arch", arch, "programs", len(progs))

	stage, err := os.MkdirTemp("", "computeha-packaging-")
	if err != nil {
		return nil, fmt.Errorf("staging directory: %w", err)
	}
	defer os.RemoveAll(stage)

	manpages, err := renderManpages(ctx, log, o.Binary, progs, stage)
	if err != nil {
		return nil, err
	}
	changelog := filepath.Join(stage, "changelog.yaml")
	if err := writeChangelog(filepath.Join(o.Assets, "changelog.yaml"), changelog, version, describe, o.Maintainer, o.MTime); err != nil {
		return nil, err
	}
	scripts, err := MaintainerScripts(o.Assets, stage)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(o.OutDir, 0o755); err != nil {
		return nil, fmt.Errorf("output directory: %w", err)
	}

	in := Inputs{Binary: o.Binary, Programs: progs, Manpages: manpages, Assets: o.Assets}
	var paths []string
	for _, format := range o.Formats {
		contents, err := Contents(format, in)
		if err != nil {
			return nil, err
		}
		info := &nfpm.Info{
			Name:          Name,
			Arch:          arch,
			Platform:      "linux",
			Version:       version,
			VersionSchema: "none", // PackageVersion already made it valid for both
			Release:       "1",
			Section:       "admin",
			Priority:      "optional",
			Maintainer:    o.Maintainer,
			Vendor:        "computeha",
			Homepage:      homepage,
			License:       licence,
			Description:   synopsis + "\n" + description + "\n\n" + agentSentence(progs),
			Changelog:     changelog,
			MTime:         o.MTime,
			Overridables: nfpm.Overridables{
				Depends:  Depends(format),
				Contents: contents,
				Umask:    0o022,
				RPM:      nfpm.RPM{Group: "Applications/System", BuildHost: "computeha", Summary: synopsis},
			},
		}
		if format == FormatRPM {
			// RPM shows the summary above the description already.
			info.Description = description + "\n\n" + agentSentence(progs)
		}
		info.Scripts = scripts
		var packager nfpm.Packager = deb.Default
		if format == FormatRPM {
			packager = rpm.DefaultRPM
		}
		name := filepath.Join(o.OutDir, packager.ConventionalFileName(info))
		if err := writePackage(packager, info, name); err != nil {
			return nil, fmt.Errorf("building the %s package: %w", format, err)
		}
		log.Info("wrote package", "format", format, "path", name)
		paths = append(paths, name)
	}
	return paths, nil
}

// writePackage writes through a temporary file, so that a failed build
// leaves no truncated package behind.
func writePackage(p nfpm.Packager, info *nfpm.Info, name string) error {
	f, err := os.CreateTemp(filepath.Dir(name), ".tmp-"+filepath.Base(name))
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	if err := p.Package(nfpm.WithDefaults(info), f); err != nil {
		f.Close()
		return err
	}
	if err := f.Chmod(0o644); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), name)
}

func agentSentence(progs []Program) string {
	if len(progs) == 0 {
		return "This build serves no agents."
	}
	names := make([]string, len(progs))
	for i, p := range progs {
		names[i] = p.Name
	}
	return wrap("Agents: "+strings.Join(names, ", ")+".", 79)
}

// wrap breaks text at spaces into lines of at most width characters, as
// Debian's description lines must be.
func wrap(text string, width int) string {
	var lines []string
	line := ""
	for _, w := range strings.Fields(text) {
		if line != "" && len(line)+1+len(w) > width {
			lines = append(lines, line)
			line = w
			continue
		}
		if line != "" {
			line += " "
		}
		line += w
	}
	return strings.Join(append(lines, line), "\n")
}

// renderManpages asks the binary for its own man page and every fence and
// OCF agent's, and gzips them into dir. The result maps installed path to
// file. The binary's and the fence agents' pages are required (they are
// commands in /usr/sbin); an OCF agent without one is only warned about,
// since nothing runs it by hand, and the packaging test reports it.
func renderManpages(ctx context.Context, log *slog.Logger, binary string, progs []Program, dir string) (map[string]string, error) {
	type page struct {
		name     string
		optional bool
	}
	pages := map[string]page{"/usr/share/man/man8/" + Name + ".8.gz": {name: Name}}
	for _, p := range progs {
		if dst := p.Manpage(); dst != "" {
			pages[dst] = page{name: p.Name, optional: p.Kind == "ocf"}
		}
	}
	out := map[string]string{}
	for dst, pg := range pages {
		name := pg.name
		roff, err := run(ctx, binary, "manpage", name)
		if err != nil && pg.optional {
			log.Warn("no man page for the OCF agent; packaging without it", "agent", name, "err", err)
			continue
		}
		if err != nil {
			return nil, err
		}
		if !bytes.HasPrefix(roff, []byte(".TH ")) {
			return nil, fmt.Errorf("the man page of %s does not start with .TH", name)
		}
		file := filepath.Join(dir, filepath.Base(dst))
		if err := writeGzip(file, roff); err != nil {
			return nil, fmt.Errorf("man page of %s: %w", name, err)
		}
		out[dst] = file
	}
	return out, nil
}

// writeGzip compresses at the highest level without a name or time stamp in
// the header (Debian policy; keeps builds reproducible).
func writeGzip(name string, data []byte) error {
	var b bytes.Buffer
	z, err := gzip.NewWriterLevel(&b, gzip.BestCompression)
	if err != nil {
		return err
	}
	if _, err := z.Write(data); err != nil {
		return err
	}
	if err := z.Close(); err != nil {
		return err
	}
	return os.WriteFile(name, b.Bytes(), 0o644)
}

// writeChangelog copies the released versions of src into dst, with an
// entry for version first when it is not one of them, so that the newest
// entry always names the packaged version.
func writeChangelog(src, dst, version, describe, maintainer string, when time.Time) error {
	if _, err := os.Stat(src); err != nil {
		return fmt.Errorf("changelog: %w", err)
	}
	entries, err := chglog.Parse(src)
	if err != nil {
		return fmt.Errorf("changelog: %w", err)
	}
	known := false
	for _, e := range entries {
		known = known || e.Semver == version
	}
	if !known {
		entries = append(chglog.ChangeLogEntries{{
			Semver:   version,
			Date:     when.UTC(),
			Packager: maintainer,
			ChangeLogOverridables: chglog.ChangeLogOverridables{
				Deb: &chglog.ChangelogDeb{Urgency: "medium", Distributions: []string{"unstable"}},
			},
			Changes: chglog.ChangeLogChanges{{Note: "Build of an unreleased commit (git describe: " + describe + ")."}},
		}}, entries...)
	}
	for _, e := range entries {
		if e.Deb == nil {
			e.Deb = &chglog.ChangelogDeb{Urgency: "medium", Distributions: []string{"unstable"}}
		}
		// The Debian changelog names the full version, revision included.
		if !strings.Contains(e.Semver, "-") {
			e.Semver += "-1"
		}
	}
	if err := entries.Save(dst); err != nil {
		return fmt.Errorf("changelog: %w", err)
	}
	return nil
}

// BinaryVersion is the version built into the binary (computeha version
// prints "computeha VERSION").
func BinaryVersion(ctx context.Context, binary string) (string, error) {
	out, err := run(ctx, binary, "version")
	if err != nil {
		return "", err
	}
	v, ok := strings.CutPrefix(strings.TrimSpace(string(out)), "computeha ")
	if !ok || v == "" {
		return "", fmt.Errorf("%s version printed %q, want \"computeha VERSION\"", binary, out)
	}
	return v, nil
}

// BinaryArch is the Debian architecture name of the binary's machine (nfpm
// maps it to RPM's).
func BinaryArch(binary string) (string, error) {
	f, err := elf.Open(binary)
	if err != nil {
		return "", fmt.Errorf("reading %s: %w", binary, err)
	}
	defer f.Close()
	switch f.Machine {
	case elf.EM_X86_64:
		return "amd64", nil
	case elf.EM_AARCH64:
		return "arm64", nil
	case elf.EM_386:
		return "386", nil
	case elf.EM_PPC64:
		return "ppc64le", nil
	case elf.EM_S390:
		return "s390x", nil
	}
	return "", fmt.Errorf("%s: unsupported machine %v", binary, f.Machine)
}

// SourceDate is the time stamp for the packages: SOURCE_DATE_EPOCH when set
// (the reproducible-builds convention), else the time of the commit
// checked out in dir.
func SourceDate(ctx context.Context, dir string) (time.Time, error) {
	if s := os.Getenv("SOURCE_DATE_EPOCH"); s != "" {
		sec, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return time.Time{}, fmt.Errorf("SOURCE_DATE_EPOCH=%q is not a number of seconds: %w", s, err)
		}
		return time.Unix(sec, 0).UTC(), nil
	}
	cmd := exec.CommandContext(ctx, "git", "log", "-1", "--format=%ct")
	cmd.Dir = dir
	out, err := cmd.Output()
	if err != nil {
		return time.Time{}, fmt.Errorf("commit time (set SOURCE_DATE_EPOCH outside git): %w", err)
	}
	sec, err := strconv.ParseInt(strings.TrimSpace(string(out)), 10, 64)
	if err != nil {
		return time.Time{}, fmt.Errorf("commit time %q: %w", out, err)
	}
	return time.Unix(sec, 0).UTC(), nil
}

func run(ctx context.Context, binary string, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, binary, args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w: %s", filepath.Base(binary), strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return out, nil
}
