package hostcheck

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/computeha/computeha/agents"
)

const validConfig = `cloud: x
segments:
  s:
    hosts: [cmp1, cmp2]
health:
  shared_dir: /shared
  networks:
    - name: mgmt
      management: true
  hosts:
    cmp1: {mgmt: 10.0.0.1}
    cmp2: {mgmt: 10.0.0.2}
    ctl1: {mgmt: 10.0.0.10}
`

func TestValidateAllChecksTheHealthSectionForThisNode(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	valid := write("valid.yaml", validConfig)
	noHealth := write("nohealth.yaml", "cloud: x\nsegments:\n  s:\n    hosts: [a, b]\n")
	noShared := write("noshared.yaml", strings.Replace(validConfig, "  shared_dir: /shared\n", "", 1))
	// Joining by gossip: loopback is an address every machine has; 203.0.113.0/24 (kept for
	// documentation) none has.
	joins := func(name, subnet string) string {
		doc := strings.Replace(validConfig, "      management: true\n", "      management: true\n      subnet: "+subnet+"\n", 1)
		doc = strings.NewReplacer("10.0.0.1}", "PFX.1}", "10.0.0.2}", "PFX.2}", "10.0.0.10}", "PFX.10}").Replace(doc)
		doc = strings.ReplaceAll(doc, "PFX", strings.TrimSuffix(subnet, ".0/24"))
		return write(name, doc+"  gossip: {key_file: /k, seeds: [ctl1]}\n")
	}
	joinsHere, joinsElsewhere := joins("here.yaml", "127.0.0.0/24"), joins("elsewhere.yaml", "203.0.113.0/24")
	cases := []struct {
		name   string
		config string
		node   string
		code   int
		reason string
	}{
		{"a configuration listing this node is valid", valid, "cmp1", 0, ""},
		{"a node the health section does not list is a configuration error", valid, "cmp7", agents.ErrConfigured, `host "cmp7" is not listed in health.hosts (listed: cmp1, cmp2, ctl1)`},
		{"a node not listed that may join and has an address in the management subnet is valid", joinsHere, "cmp7", 0, ""},
		{"a node not listed without an address in the management subnet is a configuration error", joinsElsewhere, "cmp7", agents.ErrConfigured, "lies in the management network's subnet 203.0.113.0/24"},
		{"a configuration without a health section is a configuration error", noHealth, "cmp1", agents.ErrConfigured, "no health section"},
		{"a health section without a shared directory is a configuration error", noShared, "cmp1", agents.ErrConfigured, "health.shared_dir is not set"},
		{"a configuration file that is not on this node is an argument error", filepath.Join(dir, "missing.yaml"), "cmp1", agents.ErrArgs, "no such file"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			code := agents.Main(context.Background(), NewAgent(), agents.Env{
				Args: []string{"validate-all"},
				Environ: []string{
					"OCF_RESKEY_config=" + tc.config, "OCF_RESKEY_CRM_meta_on_node=" + tc.node,
					"HA_RSCTMP=" + t.TempDir(), "OCF_RESOURCE_INSTANCE=hc",
				},
				Stdout: &out, Stderr: &errb,
				Syslog:   func(string) (agents.Syslogger, error) { return nil, os.ErrNotExist },
				LookPath: func(name string) (string, error) { return "/usr/sbin/" + name, nil },
			})
			if code != tc.code || !strings.Contains(errb.String(), tc.reason) {
				t.Errorf("validate-all = %d, stderr %q; want %d with %q", code, errb.String(), tc.code, tc.reason)
			}
		})
	}
}

func TestMonitorOfAStoppedProcessIsNotRunning(t *testing.T) {
	var out, errb bytes.Buffer
	code := agents.Main(context.Background(), NewAgent(), agents.Env{
		Args: []string{"monitor"},
		Environ: []string{
			"OCF_RESKEY_config=/nonexistent", "OCF_RESKEY_socket=" + filepath.Join(t.TempDir(), "h.sock"),
			"HA_RSCTMP=" + t.TempDir(), "OCF_RESOURCE_INSTANCE=hc", "OCF_RESKEY_CRM_meta_interval=0",
		},
		Stdout: &out, Stderr: &errb,
		Syslog:   func(string) (agents.Syslogger, error) { return nil, os.ErrNotExist },
		LookPath: func(name string) (string, error) { return "/usr/sbin/" + name, nil },
	})
	if code != agents.NotRunningCode {
		t.Errorf("monitor = %d (%s), want %d", code, errb.String(), agents.NotRunningCode)
	}
}
