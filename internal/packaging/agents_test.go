package packaging

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParseAgentsPlacesEveryKindWherePacemakerLooks(t *testing.T) {
	progs, err := ParseAgents(strings.NewReader("fence fence_ipmi\nocf nova-compute\n\nalert computeha_alert\n"))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, p := range progs {
		dst, err := p.Path()
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, dst+" "+p.Manpage())
	}
	want := []string{
		"/usr/sbin/fence_ipmi /usr/share/man/man8/fence_ipmi.8.gz",
		"/usr/lib/ocf/resource.d/computeha/nova-compute /usr/share/man/man7/ocf_computeha_nova-compute.7.gz",
		"/usr/libexec/computeha/computeha_alert ",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("paths (-want +got):\n%s", diff)
	}
}

func TestParseAgentsRejectsWhatWouldMisplaceOrDropAProgram(t *testing.T) {
	tests := []struct {
		name, input, want string
	}{
		{"an unknown kind is an error, not a program left out", "daemon evacd\n", `unknown kind "daemon"`},
		{"a line without a name is an error", "fence\n", "want KIND NAME"},
		{"a name with a slash could escape its directory", "fence ../../bin/sh\n", "not a usable program name"},
		{"the same program twice is an error", "fence fence_x\nfence fence_x\n", "listed twice"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseAgents(strings.NewReader(tt.input))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %v, want one containing %q", err, tt.want)
			}
		})
	}
}
