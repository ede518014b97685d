package instancemon

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
api:
  url: http://192.0.2.200:8787
`

func run(t *testing.T, action string, env ...string) (int, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := agents.Main(context.Background(), NewAgent(), agents.Env{
		Args:     []string{action},
		Environ:  append([]string{"HA_RSCTMP=" + t.TempDir(), "OCF_RESOURCE_INSTANCE=im", "OCF_RESKEY_CRM_meta_on_node=cmp1"}, env...),
		Stdout:   &out,
		Stderr:   &errb,
		Syslog:   func(string) (agents.Syslogger, error) { return nil, os.ErrNotExist },
		LookPath: func(name string) (string, error) { return "/usr/sbin/" + name, nil },
	})
	return code, errb.String()
}

func TestValidateAllNeedsTheAPIsURLAndALibvirtURI(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	valid := write("valid.yaml", validConfig)
	noURL := write("nourl.yaml", strings.Replace(validConfig, "api:\n  url: http://192.0.2.200:8787\n", "", 1))
	for _, tc := range []struct {
		name, config, uri string
		code              int
		reason            string
	}{
		{"a configuration with api.url is valid", valid, "qemu:///system", 0, ""},
		{"without api.url the monitor has nowhere to report: a configuration error", noURL, "qemu:///system", agents.ErrConfigured, "api.url is not set"},
		{"a libvirt URI that is no URI is a configuration error", valid, "qemu://%zz", agents.ErrConfigured, "uri:"},
		{"a configuration file that is not on this node is an argument error", filepath.Join(dir, "missing.yaml"), "qemu:///system", agents.ErrArgs, "no such file"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, stderr := run(t, "validate-all", "OCF_RESKEY_config="+tc.config, "OCF_RESKEY_uri="+tc.uri)
			if code != tc.code || !strings.Contains(stderr, tc.reason) {
				t.Errorf("validate-all = %d, stderr %q; want %d with %q", code, stderr, tc.code, tc.reason)
			}
		})
	}
}

func TestMonitorOfAStoppedProcessIsNotRunning(t *testing.T) {
	code, stderr := run(t, "monitor", "OCF_RESKEY_config=/nonexistent", "OCF_RESKEY_socket="+filepath.Join(t.TempDir(), "im.sock"), "OCF_RESKEY_CRM_meta_interval=0")
	if code != agents.NotRunningCode {
		t.Errorf("monitor = %d (%s), want %d", code, stderr, agents.NotRunningCode)
	}
}
