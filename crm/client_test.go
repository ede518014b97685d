package crm

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// fakeTools is a Runner whose every tool is one shell script: it records its name and
// arguments, one per line, then prints the testdata file given as output (if any) and exits
// with code, as Pacemaker's tools do.
type fakeTools struct {
	runner *Runner
	argv   string
}

func newFakeTools(t *testing.T, output string, code int, stderr string) *fakeTools {
	t.Helper()
	dir := t.TempDir()
	f := &fakeTools{argv: filepath.Join(dir, "argv")}
	script := filepath.Join(dir, "tool")
	body := "#!/bin/sh\nprintf '%s\\n' \"$FAKE_TOOL\" \"$@\" >> \"$FAKE_ARGV\"\n"
	if output != "" {
		abs, err := filepath.Abs(filepath.Join("testdata", output))
		if err != nil {
			t.Fatal(err)
		}
		body += "cat '" + abs + "'\n"
	}
	if stderr != "" {
		body += "echo \"$FAKE_TOOL: " + stderr + "\" >&2\n"
	}
	body += "exit " + strconv.Itoa(code) + "\n"
	if err := os.WriteFile(script, []byte(body), 0o755); err != nil {
		t.Fatal(err)
	}
	paths := map[string]string{}
	for _, tool := range Tools {
		// Each tool is a wrapper named after it that tells the script which one ran.
		link := filepath.Join(dir, tool)
		if err := os.WriteFile(link, []byte("#!/bin/sh\nFAKE_TOOL="+tool+" exec '"+script+"' \"$@\"\n"), 0o755); err != nil {
			t.Fatal(err)
		}
		paths[tool] = link
	}
	f.runner = &Runner{Paths: paths, Env: []string{"FAKE_ARGV=" + f.argv}}
	return f
}

// calls returns the commands run so far, each as "tool arg arg ...".
func (f *fakeTools) calls(t *testing.T) []string {
	t.Helper()
	b, err := os.ReadFile(f.argv)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	return []string{strings.Join(strings.Split(strings.TrimSuffix(string(b), "\n"), "\n"), " ")}
}

func TestAttributeCommandsFollowTheLifetime(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name   string
		output string
		call   func(c *Client) error
		want   string
	}{
		{
			name: "a transient attribute is set through attrd, which writes it to the CIB",
			call: func(c *Client) error { return c.SetAttribute(ctx, "cmp1", "a", "v w", Transient) },
			want: "attrd_updater --name a --update v w --node cmp1",
		},
		{
			name: "a private attribute is set through attrd with --private, so it never reaches the CIB",
			call: func(c *Client) error { return c.SetAttribute(ctx, "cmp1", "a", "v w", Private) },
			want: "attrd_updater --private --name a --update v w --node cmp1",
		},
		{
			name: "a permanent attribute is set in the configuration section",
			call: func(c *Client) error { return c.SetAttribute(ctx, "cmp1", "a", "v", Permanent) },
			want: "crm_attribute --node cmp1 --name a --update v --lifetime forever",
		},
		{
			name:   "a private attribute is read from attrd",
			output: "attrd_updater-query-all.xml",
			call: func(c *Client) error {
				_, err := c.Attribute(ctx, "node1", "computeha-reach-storage", Private)
				return err
			},
			want: "attrd_updater --query --name computeha-reach-storage --node node1 --output-as=xml",
		},
		{
			name: "a private attribute is deleted in attrd",
			call: func(c *Client) error { return c.DeleteAttribute(ctx, "cmp1", "a", Private) },
			want: "attrd_updater --name a --delete --node cmp1",
		},
		{
			name:   "an attribute of every node is read from attrd in one query",
			output: "attrd_updater-query-all.xml",
			call: func(c *Client) error {
				_, err := c.AttributeAllNodes(ctx, "computeha-reach-storage")
				return err
			},
			want: "attrd_updater --query --all --name computeha-reach-storage --output-as=xml",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeTools(t, tt.output, 0, "")
			if err := tt.call(NewClient(f.runner)); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff([]string{tt.want}, f.calls(t)); diff != "" {
				t.Errorf("commands (-want +got):\n%s", diff)
			}
		})
	}
}

func TestAttributeAllNodes(t *testing.T) {
	tests := []struct {
		name    string
		output  string
		code    int
		stderr  string
		want    map[string]string
		wantErr error
	}{
		{
			name:   "every node's value is returned by node name, and a deleted one (kept empty by attrd) is left out",
			output: "attrd_updater-query-all.xml",
			want:   map[string]string{"node1": "cmp1=ok cmp2=lost", "cmp1": "cmp2=lost node1=ok"},
		},
		{
			name:   "an attribute attrd has never held is no values, not an error",
			output: "attrd_updater-query-all-missing.xml",
			code:   int(ExitConfig),
			want:   map[string]string{},
		},
		{
			name:    "attrd not answering is an error",
			code:    int(ExitDisconnect),
			stderr:  "Could not connect to attrd: Connection refused",
			wantErr: ErrNotConnected,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeTools(t, tt.output, tt.code, tt.stderr)
			got, err := NewClient(f.runner).AttributeAllNodes(context.Background(), "computeha-reach-storage")
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("values (-want +got):\n%s", diff)
			}
		})
	}
}

func TestToolErrorsNameTheToolOnce(t *testing.T) {
	tests := []struct {
		name   string
		output string
		stderr string
		want   string
	}{
		{
			name:   "a message on stderr",
			stderr: "Could not update a=v: Connection refused (111)",
			want:   "set node attribute a=v on cmp1: attrd_updater: Could not update a=v: Connection refused (111) (exit status 102)",
		},
		{
			name:   "a message in the XML result",
			output: "attrd_updater-update-disconnected.xml",
			want:   "set node attribute a=v on cmp1: attrd_updater: Not connected: Could not update a=v: Connection refused (111) (exit status 102)",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeTools(t, tt.output, int(ExitDisconnect), tt.stderr)
			err := NewClient(f.runner).SetAttribute(context.Background(), "cmp1", "a", "v", Private)
			if err == nil || err.Error() != tt.want {
				t.Errorf("err = %v, want %s", err, tt.want)
			}
			if !errors.Is(err, ErrNotConnected) {
				t.Errorf("err = %v, want ErrNotConnected", err)
			}
		})
	}
}
