//go:build integration

// Package integration proves the agents against the real parts: OpenIPMI's
// ipmi_sim BMCs, libvirtd with the test driver, Debian's fence_ipmilan,
// pcs and a live Pacemaker cluster. The scripts under test/harness start and
// stop those parts; these tests need root and the packages of
// test/harness/deps.sh, and fail (never skip) without them.
package integration

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"
)

var (
	repoRoot string
	// binDir holds the freshly built computeha and a symlink per agent.
	binDir string
)

func TestMain(m *testing.M) {
	os.Exit(setup(m))
}

func setup(m *testing.M) int {
	if os.Geteuid() != 0 {
		fmt.Fprintln(os.Stderr, "integration tests need root: they start BMC simulators, libvirtd and Pacemaker")
		return 1
	}
	_, file, _, _ := runtime.Caller(0)
	repoRoot = filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
	tmp, err := os.MkdirTemp("", "computeha-it-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(tmp)
	// ocf-tester runs meta-data as nobody, who must reach the binary.
	if err := os.Chmod(tmp, 0o755); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	binDir = filepath.Join(tmp, "bin")
	build := exec.Command("go", "build", "-o", filepath.Join(binDir, "computeha"), "./cmd/computeha")
	build.Dir = repoRoot
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "building computeha: %v\n%s", err, out)
		return 1
	}
	out, err := exec.Command(filepath.Join(binDir, "computeha"), "agents").Output()
	if err != nil {
		fmt.Fprintf(os.Stderr, "computeha agents: %v\n", err)
		return 1
	}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		kind, name, _ := strings.Cut(line, " ")
		link := filepath.Join(binDir, name)
		target := "computeha"
		if kind == "ocf" {
			// OCF agents answer to their name only inside their provider
			// directory, as Pacemaker installs them.
			link = filepath.Join(binDir, "resource.d", "computeha", name)
			target = "../../computeha"
		}
		if err := os.MkdirAll(filepath.Dir(link), 0o755); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		if err := os.Symlink(target, link); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
	}
	return m.Run()
}

// agentPath is the path of one of our agents, or of a system one
// (fence_ipmilan) when it is not ours.
func agentPath(name string) string {
	if p := filepath.Join(binDir, name); fileExists(p) {
		return p
	}
	return filepath.Join("/usr/sbin", name)
}

func fileExists(p string) bool {
	_, err := os.Lstat(p)
	return err == nil
}

// run is one finished process.
type run struct {
	code           int
	stdout, stderr string
	elapsed        time.Duration
}

func (r run) String() string {
	return fmt.Sprintf("exit %d after %s\nstdout: %q\nstderr: %q", r.code, r.elapsed.Round(time.Millisecond), r.stdout, r.stderr)
}

// execute runs a command with stdin, bounded by timeout.
func execute(t *testing.T, timeout time.Duration, stdin string, name string, args ...string) run {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Stdin = strings.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	start := time.Now()
	err := cmd.Run()
	r := run{stdout: out.String(), stderr: errb.String(), elapsed: time.Since(start)}
	if ctx.Err() != nil {
		t.Fatalf("%s %q did not finish within %s", name, args, timeout)
	}
	if err != nil {
		ee, ok := err.(*exec.ExitError)
		if !ok {
			t.Fatalf("%s: %v", name, err)
		}
		r.code = ee.ExitCode()
	}
	return r
}

// harness runs a script of test/harness and fails the test if it fails.
func harness(t *testing.T, env []string, script string, args ...string) string {
	t.Helper()
	cmd := exec.Command(filepath.Join(repoRoot, "test", "harness", script), args...)
	cmd.Env = append(os.Environ(), env...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s %q: %v\nstdout: %s\nstderr: %s", script, args, err, out.String(), errb.String())
	}
	return out.String()
}

// freeUDPPort finds a UDP port nobody listens on at 127.0.0.1.
func freeUDPPort(t *testing.T) int {
	t.Helper()
	c, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return c.LocalAddr().(*net.UDPAddr).Port
}

const bmcPassword = "s3cret-bmc-Pw"

// bmc is one running ipmi_sim.
type bmc struct {
	dir, name string
	port      int
}

// startBMC starts an ipmi_sim BMC on 127.0.0.1 (inside netns when given),
// stopped when the test ends.
func startBMC(t *testing.T, name, netns string) *bmc {
	t.Helper()
	b := &bmc{dir: t.TempDir(), name: name, port: freeUDPPort(t)}
	env := []string{"BMC_PASSWORD=" + bmcPassword}
	if netns != "" {
		env = append(env, "BMC_NETNS="+netns)
	}
	harness(t, env, "bmc.sh", "start", b.dir, name, strconv.Itoa(b.port))
	t.Cleanup(func() { harness(t, nil, "bmc.sh", "stop", b.dir, name) })
	return b
}

// power reads the simulated host's power: "on" or "off".
func (b *bmc) power(t *testing.T) string {
	t.Helper()
	return strings.TrimSpace(harness(t, nil, "bmc.sh", "power", b.dir, b.name))
}

// events lists the power changes the BMC carried out, e.g. ["off", "on"].
func (b *bmc) events(t *testing.T) []string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(b.dir, b.name, "events"))
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	var evs []string
	for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		if f := strings.Fields(line); len(f) == 2 {
			evs = append(evs, f[1])
		}
	}
	return evs
}

// passwordFile writes the BMC password to a file only root can read, for
// password_script: the password then never appears on any command line.
func passwordFile(t *testing.T) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "bmc-password")
	if err := os.WriteFile(p, []byte(bmcPassword+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}
