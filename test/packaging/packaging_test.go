//go:build packaging

// Package packaging proves the .deb and .rpm packages the way an operator
// meets them: the .deb is installed with apt into a clean Debian 12 root
// that has Pacemaker, pcs and resource-agents (and no fence-agents), where
// pcs, stonith_admin, crm_resource and man must find every agent, and
// purging it must leave nothing behind; its tmpfiles.d snippet must give
// the alert agent, run as hacluster, a runtime directory it can spool
// into; lintian must pass it; the .rpm must hold the same files, links,
// requirements and scripts.
//
// It needs root, debootstrap, lintian, rpm and systemd-tmpfiles, and fails
// (never skips) without them. The Debian root is built once per machine by rootfs.sh and
// cached in COMPUTEHA_TEST_CACHE (default /var/cache/computeha-test); each
// run works on a throw-away overlay of it (sandbox.sh).
package packaging

import (
	"bufio"
	"bytes"
	"context"
	"encoding/xml"
	"fmt"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

const binaryPath = "/usr/sbin/computeha"

// pacemakerActions are the lines stonith_admin --metadata adds to a fence
// agent's metadata.
var pacemakerActions = regexp.MustCompile(`(?m)^\s*<action name="(start|stop)" timeout="[^"]*"/>\n`)

var repoRoot = func() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
}()

type result struct {
	code           int
	stdout, stderr string
}

func (r result) String() string {
	return fmt.Sprintf("exit %d\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
}

// execute runs a command and returns its result; failing to start it at all
// ends the test.
func execute(t *testing.T, timeout time.Duration, stdin []byte, name string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = repoRoot
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	r := result{stdout: out.String(), stderr: errb.String()}
	if ee, ok := err.(*exec.ExitError); ok {
		r.code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("%s %q: %v", name, args, err)
	}
	if ctx.Err() != nil {
		t.Fatalf("%s %q: timed out after %s\n%s", name, args, timeout, r)
	}
	return r
}

// must runs a command that has to succeed and returns its stdout.
func must(t *testing.T, timeout time.Duration, name string, args ...string) string {
	t.Helper()
	r := execute(t, timeout, nil, name, args...)
	if r.code != 0 {
		t.Fatalf("%s %q: %s", name, args, r)
	}
	return r.stdout
}

// packages are the .deb and .rpm built from this checkout the way make
// packages builds them: make build, then mkpackages.
type packages struct {
	deb, rpm string
}

func buildPackages(t *testing.T) packages {
	t.Helper()
	start := time.Now()
	dir := t.TempDir()
	bin := filepath.Join(dir, "bin")
	must(t, 5*time.Minute, "make", "--no-print-directory", "build", "BIN="+bin)
	out := must(t, 5*time.Minute, "go", "run", "./cmd/mkpackages", "-bin", filepath.Join(bin, "computeha"), "-out", filepath.Join(dir, "dist"))
	var p packages
	for _, line := range strings.Fields(out) {
		switch {
		case strings.HasSuffix(line, ".deb"):
			p.deb = line
		case strings.HasSuffix(line, ".rpm"):
			p.rpm = line
		}
	}
	if p.deb == "" || p.rpm == "" {
		t.Fatalf("mkpackages printed %q, want a .deb and a .rpm", out)
	}
	t.Logf("packages built in %s: %s, %s", time.Since(start).Round(time.Millisecond), filepath.Base(p.deb), filepath.Base(p.rpm))
	return p
}

// sandbox is a throw-away overlay on the cached Debian root, mounted in a
// private mount namespace held by one process.
type sandbox struct {
	dir    string
	holder *exec.Cmd
	mntNS  string
}

func startSandbox(t *testing.T) *sandbox {
	t.Helper()
	cache := os.Getenv("COMPUTEHA_TEST_CACHE")
	if cache == "" {
		cache = "/var/cache/computeha-test"
	}
	start := time.Now()
	lower := strings.TrimSpace(must(t, 30*time.Minute, filepath.Join(repoRoot, "test/packaging/rootfs.sh"), cache))
	t.Logf("Debian root %s ready in %s", lower, time.Since(start).Round(time.Millisecond))

	dir, err := os.MkdirTemp("", "computeha-pkgtest-")
	if err != nil {
		t.Fatal(err)
	}
	s := &sandbox{dir: dir}
	s.holder = exec.Command("unshare", "--mount", "--propagation", "private", "--",
		filepath.Join(repoRoot, "test/packaging/sandbox.sh"), lower, dir)
	// The holder dies with the test process even if the test is killed, and
	// its namespace, with every mount in it, goes with it.
	s.holder.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	s.holder.Stderr = os.Stderr
	stdout, err := s.holder.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := s.holder.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.stop(t) })
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if strings.TrimSpace(line) != "ready" {
		t.Fatalf("sandbox.sh did not get ready: %q %v", line, err)
	}
	s.mntNS, err = os.Readlink(fmt.Sprintf("/proc/%d/ns/mnt", s.holder.Process.Pid))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// stop kills every process of the sandbox's mount namespace (the holder and
// anything a package script may have left running), which unmounts all of
// it, checks that nothing of it is mounted on the machine, and removes it.
func (s *sandbox) stop(t *testing.T) {
	for attempt := 0; attempt < 50; attempt++ {
		members := s.members()
		if len(members) == 0 {
			break
		}
		for _, pid := range members {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
		time.Sleep(100 * time.Millisecond)
	}
	_ = s.holder.Process.Kill()
	_ = s.holder.Wait()
	if left := s.members(); len(left) > 0 {
		t.Errorf("processes %v are still in the sandbox's mount namespace; leaving %s in place", left, s.dir)
		return
	}
	mounts, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Error(err)
		return
	}
	if strings.Contains(string(mounts), s.dir) {
		t.Errorf("something is still mounted under %s; leaving it in place", s.dir)
		return
	}
	if err := os.RemoveAll(s.dir); err != nil {
		t.Error(err)
	}
}

// members are the live processes in the sandbox's mount namespace.
func (s *sandbox) members() []int {
	if s.mntNS == "" {
		return nil
	}
	var pids []int
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		var pid int
		if _, err := fmt.Sscanf(e.Name(), "%d", &pid); err != nil {
			continue
		}
		if ns, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/mnt", pid)); err == nil && ns == s.mntNS {
			stat, _ := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
			if i := bytes.LastIndexByte(stat, ')'); i > 0 && len(stat) > i+2 && stat[i+2] == 'Z' {
				continue
			}
			pids = append(pids, pid)
		}
	}
	return pids
}

// run executes a command inside the root, with a clean environment.
func (s *sandbox) run(t *testing.T, stdin []byte, env []string, args ...string) result {
	t.Helper()
	full := []string{
		fmt.Sprintf("--mount=/proc/%d/ns/mnt", s.holder.Process.Pid), "--",
		"chroot", filepath.Join(s.dir, "merged"),
		"/usr/bin/env", "-i", "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
		"HOME=/root", "LANG=C.UTF-8", "DEBIAN_FRONTEND=noninteractive",
	}
	full = append(append(full, env...), args...)
	r := execute(t, 5*time.Minute, stdin, "nsenter", full...)
	return r
}

func (s *sandbox) must(t *testing.T, args ...string) string {
	t.Helper()
	r := s.run(t, nil, nil, args...)
	if r.code != 0 {
		t.Fatalf("in the root, %q: %s", args, r)
	}
	return r.stdout
}

// fileList is every path of the root except the kernel file systems, the
// package managers' bookkeeping and man-db's cache, which installing
// anything changes (leftovers there are looked for by name instead).
func (s *sandbox) fileList(t *testing.T) []string {
	t.Helper()
	out := s.must(t, "find", "/", "-xdev",
		"(", "-path", "/tmp", "-o", "-path", "/root", "-o", "-path", "/var/lib/dpkg", "-o", "-path", "/var/lib/apt",
		"-o", "-path", "/var/cache/apt", "-o", "-path", "/var/cache/debconf", "-o", "-path", "/var/log",
		"-o", "-path", "/var/cache/man", "-o", "-path", "/var/cache/ldconfig", ")", "-prune", "-o", "-print")
	list := strings.Split(strings.TrimSpace(out), "\n")
	slices.Sort(list)
	return list
}

// namedAfter lists every path of the root named after the package or one
// of its programs, bookkeeping included.
func (s *sandbox) namedAfter(t *testing.T, progs []program) []string {
	t.Helper()
	find := []string{"find", "/", "-xdev", "("}
	for i, p := range append(progs, program{name: "computeha"}) {
		if i > 0 {
			find = append(find, "-o")
		}
		find = append(find, "-name", "*"+p.name+"*")
	}
	find = append(find, ")", "-print")
	list := strings.Fields(s.must(t, find...))
	slices.Sort(list)
	return list
}

// program is one line of computeha agents.
type program struct{ kind, name string }

func (p program) path() string {
	switch p.kind {
	case "fence":
		return "/usr/sbin/" + p.name
	case "ocf":
		return "/usr/lib/ocf/resource.d/computeha/" + p.name
	case "alert":
		return "/usr/libexec/computeha/" + p.name
	}
	return ""
}

func parsePrograms(t *testing.T, out string) []program {
	t.Helper()
	var progs []program
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		f := strings.Fields(line)
		if len(f) != 2 {
			t.Fatalf("computeha agents printed %q", line)
		}
		p := program{f[0], f[1]}
		if p.path() == "" {
			t.Fatalf("computeha agents printed an unknown kind: %q", line)
		}
		progs = append(progs, p)
	}
	return progs
}

// agentMetadata is the part of fence and OCF metadata that says which
// parameters a resource must be given.
type agentMetadata struct {
	Name       string `xml:"name,attr"`
	Parameters []struct {
		Name       string `xml:"name,attr"`
		Required   string `xml:"required,attr"`
		Deprecated string `xml:"deprecated,attr"`
		Content    struct {
			Type    string `xml:"type,attr"`
			Default string `xml:"default,attr"`
			Options []struct {
				Value string `xml:"value,attr"`
			} `xml:"option"`
		} `xml:"content"`
	} `xml:"parameters>parameter"`
}

// requiredArgs are name=value arguments for every required, non-deprecated
// parameter, with a value of the right type. skip names parameters that
// Pacemaker supplies itself.
func requiredArgs(t *testing.T, metadata string, skip ...string) []string {
	t.Helper()
	var m agentMetadata
	if err := xml.Unmarshal([]byte(metadata), &m); err != nil {
		t.Fatalf("metadata does not parse: %v\n%s", err, metadata)
	}
	var args []string
	for _, p := range m.Parameters {
		if p.Required != "1" || p.Deprecated == "1" || slices.Contains(skip, p.Name) {
			continue
		}
		v := p.Content.Default
		switch {
		case v != "":
		case len(p.Content.Options) > 0:
			v = p.Content.Options[0].Value
		case p.Content.Type == "boolean", p.Content.Type == "integer", p.Content.Type == "second", p.Content.Type == "timeout":
			v = "1"
		default:
			v = "192.0.2.10"
		}
		args = append(args, p.Name+"="+v)
	}
	return args
}

func TestPackages(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatal("the packaging test needs root: it installs the package into a chroot")
	}
	testStart := time.Now()
	pkgs := buildPackages(t)
	debList := debFiles(t, pkgs.deb)

	t.Run("lintian finds no error and no warning in the .deb", func(t *testing.T) {
		start := time.Now()
		r := execute(t, 5*time.Minute, nil, "lintian", "--fail-on", "error,warning", "--display-level", ">=warning", pkgs.deb)
		t.Logf("lintian (%s):\n%s%s", time.Since(start).Round(time.Millisecond), r.stdout, r.stderr)
		if r.code != 0 {
			t.Errorf("lintian failed: %s", r)
		}
	})

	t.Run("the .rpm holds the same files and links as the .deb, requires Pacemaker and runs only the scripts units need", func(t *testing.T) {
		rpmList := rpmFiles(t, pkgs.rpm)
		if diff := cmp.Diff(comparable(debList), comparable(rpmList)); diff != "" {
			t.Errorf("files of the .deb and the .rpm differ (-deb +rpm):\n%s", diff)
		}
		requires := must(t, time.Minute, "rpm", "-qRp", pkgs.rpm)
		for _, want := range []string{"pacemaker >= 2.1", "pacemaker-cli >= 2.1"} {
			if !slices.Contains(strings.Split(requires, "\n"), want) {
				t.Errorf("the .rpm does not require %q:\n%s", want, requires)
			}
		}
		if strings.Contains(requires, "fence-agents") {
			t.Errorf("the .rpm requires fence-agents, which nothing needs:\n%s", requires)
		}
		scripts := must(t, time.Minute, "rpm", "-qp", "--scripts", pkgs.rpm)
		units, _ := filepath.Glob(filepath.Join(repoRoot, "packaging/systemd/*.service"))
		snippets, _ := filepath.Glob(filepath.Join(repoRoot, "packaging/tmpfiles/*.conf"))
		if len(units) == 0 && len(snippets) == 0 && strings.TrimSpace(scripts) != "" {
			t.Errorf("the .rpm has scripts although it ships no systemd unit and no tmpfiles.d snippet:\n%s", scripts)
		}
		if len(units) > 0 && !strings.Contains(scripts, "systemctl daemon-reload") {
			t.Errorf("the .rpm ships units but no script reloads systemd:\n%s", scripts)
		}
		if len(units) == 0 && strings.Contains(scripts, "systemctl daemon-reload") {
			t.Errorf("the .rpm ships no unit but a script reloads systemd:\n%s", scripts)
		}
		for _, s := range snippets {
			if !strings.Contains(scripts, "systemd-tmpfiles ${DPKG_ROOT:+--root=\"$DPKG_ROOT\"} --create "+filepath.Base(s)) {
				t.Errorf("the .rpm ships %s but no script creates its directories:\n%s", filepath.Base(s), scripts)
			}
			if _, ok := rpmList["/usr/lib/tmpfiles.d/"+filepath.Base(s)]; !ok {
				t.Errorf("the .rpm lacks the tmpfiles.d snippet %s", filepath.Base(s))
			}
		}
		for _, u := range units {
			if _, ok := rpmList["/usr/lib/systemd/system/"+filepath.Base(u)]; !ok {
				t.Errorf("the .rpm lacks the unit %s", filepath.Base(u))
			}
		}
	})

	root := startSandbox(t)
	before := root.fileList(t)
	// The programs as the freshly built binary lists them, before it is in
	// the root.
	namedBefore := root.namedAfter(t, parsePrograms(t, must(t, time.Minute, filepath.Join(filepath.Dir(filepath.Dir(pkgs.deb)), "bin", "computeha"), "agents")))
	deb, err := os.ReadFile(pkgs.deb)
	if err != nil {
		t.Fatal(err)
	}
	if r := root.run(t, deb, nil, "sh", "-c", "cat > /tmp/computeha.deb"); r.code != 0 {
		t.Fatalf("copying the .deb into the root: %s", r)
	}
	start := time.Now()
	// Offline: everything the package depends on is in the root already, so
	// a missing dependency fails here instead of being fetched.
	if r := root.run(t, nil, nil, "apt-get", "-o", "Acquire::http::Proxy=http://0.0.0.0:9", "install", "-y", "--no-install-recommends", "/tmp/computeha.deb"); r.code != 0 {
		t.Fatalf("apt-get install of the .deb: %s", r)
	}
	t.Logf("apt-get install took %s", time.Since(start).Round(time.Millisecond))
	progs := parsePrograms(t, root.must(t, binaryPath, "agents"))

	t.Run("every program of computeha agents is a symlink to the binary where Pacemaker looks for it", func(t *testing.T) {
		for _, p := range progs {
			got := strings.TrimSpace(root.must(t, "readlink", "-f", p.path()))
			if got != binaryPath {
				t.Errorf("%s resolves to %q, want %s", p.path(), got, binaryPath)
			}
		}
	})

	t.Run("pcs creates a stonith device of every fence agent without --force", func(t *testing.T) {
		root.must(t, "sh", "-c", "cibadmin --empty > /root/cib.xml")
		for _, p := range progs {
			if p.kind != "fence" {
				continue
			}
			meta := root.must(t, "stonith_admin", "--metadata", "--agent", p.name)
			// Pacemaker's fencer passes the action and the target itself.
			args := requiredArgs(t, meta, "action", "plug", "port")
			args = append([]string{"-f", "/root/cib.xml", "stonith", "create", "dev-" + p.name, p.name}, args...)
			args = append(args, "pcmk_host_list=compute1")
			if r := root.run(t, nil, nil, append([]string{"pcs"}, args...)...); r.code != 0 {
				t.Errorf("pcs %q: %s", args, r)
			}
		}
		cib := root.must(t, "cat", "/root/cib.xml")
		for _, p := range progs {
			if p.kind == "fence" && !strings.Contains(cib, `type="`+p.name+`"`) {
				t.Errorf("the CIB has no stonith device of type %s", p.name)
			}
		}
	})

	t.Run("pcs creates a resource of every OCF agent without --force", func(t *testing.T) {
		root.must(t, "sh", "-c", "cibadmin --empty > /root/cib-ocf.xml")
		for _, p := range progs {
			if p.kind != "ocf" {
				continue
			}
			meta := root.must(t, "crm_resource", "--show-metadata", "ocf:computeha:"+p.name)
			args := append([]string{"-f", "/root/cib-ocf.xml", "resource", "create", "rsc-" + p.name, "ocf:computeha:" + p.name}, requiredArgs(t, meta)...)
			if r := root.run(t, nil, nil, append([]string{"pcs"}, args...)...); r.code != 0 {
				t.Errorf("pcs %q: %s", args, r)
			}
		}
	})

	t.Run("every agent prints metadata that validates against the schemas, also through Pacemaker", func(t *testing.T) {
		for _, p := range progs {
			var own, viaPacemaker string
			var validate []string
			switch p.kind {
			case "fence":
				own = root.must(t, p.path(), "-o", "metadata")
				viaPacemaker = root.must(t, "stonith_admin", "--metadata", "--agent", p.name)
				validate = []string{"xmllint", "--noout", "--relaxng", "/usr/local/share/computeha-test/metadata.rng", "-"}
				// stonith_admin appends start and stop actions with a
				// timeout, which fence-agents' own schema does not allow:
				// Debian's fence_ipmilan fails the same way. Everything
				// else must validate.
				viaPacemaker = pacemakerActions.ReplaceAllString(viaPacemaker, "")
			case "ocf":
				own = root.must(t, "sh", "-c", `OCF_ROOT=/usr/lib/ocf exec "$0" meta-data`, p.path())
				viaPacemaker = root.must(t, "crm_resource", "--show-metadata", "ocf:computeha:"+p.name)
				validate = []string{"xmllint", "--noout", "--valid", "--path", "/usr/share/resource-agents", "-"}
			default:
				continue
			}
			for source, meta := range map[string]string{"the agent": own, "Pacemaker": viaPacemaker} {
				if r := root.run(t, []byte(meta), nil, validate...); r.code != 0 {
					t.Errorf("metadata of %s from %s does not validate: %s\n%s", p.name, source, r, meta)
				}
			}
		}
	})

	t.Run("man shows the page of the binary and of every fence and OCF agent, and groff has no warning", func(t *testing.T) {
		pages := map[string]string{"computeha": "computeha"}
		for _, p := range progs {
			switch p.kind {
			case "fence":
				pages[p.name] = p.name
			case "ocf":
				// resource-agents' convention: the page is named
				// ocf_<provider>_<agent>, and so is its NAME line.
				pages["ocf_computeha_"+p.name] = "ocf_computeha_" + p.name
			}
		}
		for page, name := range pages {
			r := root.run(t, nil, []string{"MANPAGER=cat", "MANWIDTH=100"}, "man", page)
			if r.code != 0 {
				t.Errorf("man %s: %s", page, r)
				continue
			}
			lines := strings.Split(r.stdout, "\n")
			i := slices.IndexFunc(lines, func(l string) bool { return strings.TrimSpace(l) == "NAME" })
			if i < 0 || i+1 >= len(lines) || !strings.HasPrefix(strings.TrimSpace(lines[i+1]), name+" - ") {
				t.Errorf("man %s has no NAME line for %s:\n%s", page, name, r.stdout)
			}
			w := root.run(t, nil, []string{"MANPAGER=cat", "MANWIDTH=100", "MANROFFSEQ="}, "man", "--warnings=w", page)
			if w.code != 0 || strings.TrimSpace(w.stderr) != "" {
				t.Errorf("man --warnings %s complains: %s", page, w)
			}
		}
	})

	t.Run("the tmpfiles.d snippet is installed and makes the runtime directory one where the alert agent, as hacluster, spools alerts", func(t *testing.T) {
		snippet := "/usr/lib/tmpfiles.d/computeha.conf"
		want, err := os.ReadFile(filepath.Join(repoRoot, "packaging/tmpfiles/computeha.conf"))
		if err != nil {
			t.Fatal(err)
		}
		if got := root.must(t, "stat", "-c", "%a %U %G %F", snippet); got != "644 root root regular file\n" {
			t.Errorf("%s is %q, want a regular file of mode 644 owned by root", snippet, got)
		}
		if got := root.must(t, "cat", snippet); got != string(want) {
			t.Errorf("%s differs from packaging/tmpfiles/computeha.conf (-want +got):\n%s", snippet, cmp.Diff(string(want), got))
		}
		if !strings.Contains(root.must(t, "dpkg-query", "-L", "computeha"), snippet+"\n") {
			t.Errorf("dpkg does not list %s as the package's", snippet)
		}
		// The root has no systemd, so the postinst had no systemd-tmpfiles
		// to run; the machine's (Debian 12's, like a controller's) applies
		// the installed snippet to the root, as the boot would, resolving
		// haclient in the root's /etc/group.
		merged := filepath.Join(root.dir, "merged")
		if r := execute(t, time.Minute, nil, "nsenter", fmt.Sprintf("--mount=/proc/%d/ns/mnt", root.holder.Process.Pid), "--",
			"systemd-tmpfiles", "--create", "--root="+merged, "computeha.conf"); r.code != 0 {
			t.Fatalf("systemd-tmpfiles --create --root=%s computeha.conf: %s", merged, r)
		}
		for _, d := range []string{"/run/computeha", "/run/computeha/spool"} {
			if got := root.must(t, "stat", "-c", "%a %U %G", d); got != "3770 root haclient\n" {
				t.Errorf("%s is %q, want 3770 root haclient", d, strings.TrimSpace(got))
			}
		}
		// With no evacuation daemon listening, the agent spools the alert.
		var agent string
		for _, p := range progs {
			if p.kind == "alert" {
				agent = p.path()
			}
		}
		if agent == "" {
			t.Fatal("computeha agents lists no alert agent")
		}
		env := []string{"CRM_alert_kind=node", "CRM_alert_node=compute1", "CRM_alert_desc=lost", "CRM_alert_recipient=/run/computeha/alert.sock"}
		if r := root.run(t, nil, env, "setpriv", "--reuid=hacluster", "--regid=haclient", "--init-groups", agent); r.code != 0 {
			t.Errorf("the alert agent as hacluster: %s", r)
		}
		if spooled := root.must(t, "find", "/run/computeha/spool", "-name", "*.json", "-user", "hacluster", "-group", "haclient"); strings.TrimSpace(spooled) == "" {
			t.Error("the alert agent run as hacluster spooled nothing into /run/computeha/spool")
		}
	})

	t.Run("the example configuration is installed as conffiles", func(t *testing.T) {
		conffiles := root.must(t, "dpkg-query", "--showformat=${Conffiles}\n", "--show", "computeha")
		examples, _ := filepath.Glob(filepath.Join(repoRoot, "packaging/etc/*"))
		if len(examples) == 0 {
			t.Fatal("packaging/etc holds no example")
		}
		for _, e := range examples {
			if !strings.Contains(conffiles, "/etc/computeha/"+filepath.Base(e)+" ") {
				t.Errorf("/etc/computeha/%s is not a conffile:\n%s", filepath.Base(e), conffiles)
			}
		}
	})

	t.Run("the Prometheus alert rules are installed readable by all, and promtool accepts them as installed", func(t *testing.T) {
		rules := "/usr/share/computeha/prometheus/computeha-rules.yml"
		if got := root.must(t, "stat", "-c", "%a %U %G %F", rules); got != "644 root root regular file\n" {
			t.Errorf("%s is %q, want a regular file of mode 644 owned by root", rules, got)
		}
		// promtool is the machine's (Debian's prometheus package), checking the file in the root.
		if r := execute(t, time.Minute, nil, "nsenter", fmt.Sprintf("--mount=/proc/%d/ns/mnt", root.holder.Process.Pid), "--",
			"promtool", "check", "rules", filepath.Join(root.dir, "merged", rules)); r.code != 0 || !strings.Contains(r.stdout, "SUCCESS") {
			t.Errorf("promtool check rules %s: %s", rules, r)
		}
	})

	t.Run("apt-get purge leaves no file of the package behind", func(t *testing.T) {
		if r := root.run(t, nil, nil, "apt-get", "purge", "-y", "computeha"); r.code != 0 {
			t.Fatalf("apt-get purge: %s", r)
		}
		if diff := cmp.Diff(before, root.fileList(t)); diff != "" {
			t.Errorf("the root differs from before the install (-before +after purge):\n%s", diff)
		}
		// Where the file list does not look: dpkg's own records and
		// man-db's cache must not keep anything named after us either.
		root.must(t, "rm", "-f", "/tmp/computeha.deb")
		if diff := cmp.Diff(namedBefore, root.namedAfter(t, progs)); diff != "" {
			t.Errorf("after purge, paths named after the package remain (-before +after purge):\n%s", diff)
		}
	})
	t.Logf("packaging test body took %s", time.Since(testStart).Round(time.Millisecond))
}

// entry is one non-directory file of a package: its path and, for a
// symlink, the absolute path the link resolves to.
type entry struct {
	Path, Link string
}

// debFiles lists the .deb's files and symlinks by path (dpkg-deb -c).
func debFiles(t *testing.T, deb string) map[string]entry {
	t.Helper()
	out := must(t, time.Minute, "dpkg-deb", "-c", deb)
	files := map[string]entry{}
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		f := strings.Fields(line)
		if len(f) < 6 || strings.HasPrefix(f[0], "d") {
			continue
		}
		p := strings.TrimPrefix(f[5], ".")
		e := entry{Path: p}
		if strings.HasPrefix(f[0], "l") && len(f) == 8 && f[6] == "->" {
			e.Link = resolve(p, f[7])
		}
		files[p] = e
	}
	return files
}

// rpmFiles lists the .rpm's files and symlinks by path.
func rpmFiles(t *testing.T, rpm string) map[string]entry {
	t.Helper()
	out := must(t, time.Minute, "rpm", "-qp", "--qf", `[%{FILEMODES:perms} %{FILENAMES} %{FILELINKTOS}\n]`, rpm)
	files := map[string]entry{}
	var all []string
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		all = append(all, f[1])
		if strings.HasPrefix(f[0], "d") {
			continue
		}
		e := entry{Path: f[1]}
		if strings.HasPrefix(f[0], "l") && len(f) == 3 {
			e.Link = resolve(f[1], f[2])
		}
		files[f[1]] = e
	}
	// rpm -qlp, what operators run, must list the same paths.
	listed := strings.Split(strings.TrimSpace(must(t, time.Minute, "rpm", "-qlp", rpm)), "\n")
	slices.Sort(all)
	slices.Sort(listed)
	if diff := cmp.Diff(all, listed); diff != "" {
		t.Errorf("rpm -qlp disagrees with the file query (-query +qlp):\n%s", diff)
	}
	return files
}

func resolve(link, target string) string {
	if path.IsAbs(target) {
		return path.Clean(target)
	}
	return path.Join(path.Dir(link), target)
}

// comparable drops what differs between the formats by convention: the
// documentation (Debian's copyright, changelog.Debian.gz and lintian
// overrides; RPM's licence directory) and the systemd unit directory.
func comparable(files map[string]entry) []entry {
	var out []entry
	for _, e := range files {
		switch {
		case strings.HasPrefix(e.Path, "/usr/share/doc/computeha/"),
			strings.HasPrefix(e.Path, "/usr/share/lintian/overrides/"),
			strings.HasPrefix(e.Path, "/usr/share/licenses/computeha/"):
			continue
		}
		if strings.HasPrefix(e.Path, "/lib/systemd/system/") {
			e.Path = "/usr" + e.Path
		}
		out = append(out, e)
	}
	slices.SortFunc(out, func(a, b entry) int { return strings.Compare(a.Path, b.Path) })
	return out
}
