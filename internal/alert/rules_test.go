package alert

import (
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"go.yaml.in/yaml/v3"
)

// The shipped rules file, as far as the daemon's rules read it.
type rulesFile struct {
	Groups []struct {
		Rules []struct {
			Alert       string            `yaml:"alert"`
			Expr        string            `yaml:"expr"`
			For         string            `yaml:"for"`
			Labels      map[string]string `yaml:"labels"`
			Annotations map[string]string `yaml:"annotations"`
		} `yaml:"rules"`
	} `yaml:"groups"`
}

// stateExpr matches the rules on the daemon's own state: METRIC{LABEL="v"} == 1 or
// METRIC{LABEL=~"v1|v2"} == 1.
var stateExpr = regexp.MustCompile(`^(computeha_host_health|computeha_recovery_phase)\{(state|phase)(=~?)"([^"]*)"\} == 1$`)

func TestRulesAreTheShippedRulesFileWordForWord(t *testing.T) {
	data, err := os.ReadFile("../../packaging/prometheus/computeha-rules.yml")
	if err != nil {
		t.Fatal(err)
	}
	var f rulesFile
	if err := yaml.Unmarshal(data, &f); err != nil {
		t.Fatal(err)
	}
	var fromFile []Rule
	for _, g := range f.Groups {
		for _, r := range g.Rules {
			if strings.Contains(r.Expr, "computeha_segment_headroom_") {
				// Below zero on any resource: the daemon reads the same headroom as a state.
				for _, metric := range []string{"vcpus", "memory_bytes", "disk_bytes"} {
					if !strings.Contains(r.Expr, "computeha_segment_headroom_"+metric+" < 0") {
						t.Errorf("%s: no condition on %s", r.Alert, metric)
					}
				}
				d, err := time.ParseDuration(r.For)
				if err != nil {
					t.Fatalf("%s: for %q: %v", r.Alert, r.For, err)
				}
				fromFile = append(fromFile, Rule{
					Name: r.Alert, Severity: r.Labels["severity"], For: d, Label: LabelSegment, Values: []string{CapacityShort},
					Summary: r.Annotations["summary"], Description: r.Annotations["description"],
				})
				continue
			}
			// One alert per host and process, or VM, whatever it is.
			if label, ok := map[string]string{
				"computeha_host_process_down == 1": LabelProcess, "computeha_vm_left_paused == 1": LabelVM, "computeha_restart_storm == 1": LabelLimit,
			}[strings.TrimSpace(r.Expr)]; ok {
				fromFile = append(fromFile, Rule{
					Name: r.Alert, Severity: r.Labels["severity"], Label: label,
					Summary: r.Annotations["summary"], Description: r.Annotations["description"],
				})
				continue
			}
			m := stateExpr.FindStringSubmatch(strings.TrimSpace(r.Expr))
			if m == nil {
				continue // Prometheus' alone: rates, absent()
			}
			metric := map[string]string{LabelState: "computeha_host_health", LabelPhase: "computeha_recovery_phase"}[m[2]]
			if metric != m[1] {
				t.Errorf("%s: label %s on %s", r.Alert, m[2], m[1])
			}
			var d time.Duration
			if r.For != "" {
				if d, err = time.ParseDuration(r.For); err != nil {
					t.Fatalf("%s: for %q: %v", r.Alert, r.For, err)
				}
			}
			values := []string{m[4]}
			if m[3] == "=~" {
				values = strings.Split(m[4], "|")
			}
			fromFile = append(fromFile, Rule{
				Name: r.Alert, Severity: r.Labels["severity"], For: d, Label: m[2], Values: values,
				Summary: r.Annotations["summary"], Description: r.Annotations["description"],
			})
		}
	}
	if len(fromFile) == 0 {
		t.Fatal("no rule of the file reads the daemon's state: the expression pattern no longer fits")
	}
	if diff := cmp.Diff(fromFile, Rules); diff != "" {
		t.Errorf("the daemon's rules differ from the shipped file's (-file +daemon):\n%s", diff)
	}
}

func TestEvaluate(t *testing.T) {
	s := Snapshot{
		Health:    map[string]string{"cmp1": "isolated", "cmp2": "running", "cmp3": "dead"},
		Phases:    map[string]string{"cmp3": "recovering", "cmp4": "failed"},
		Capacity:  map[string]string{"rack-a": CapacityOK, "rack-b": CapacityShort},
		Processes: map[string][]string{"cmp2": {"nova-compute", "libvirtd"}},
	}
	got := Evaluate(Rules, s, map[string]string{"cluster": "east"})
	var names []string
	for _, a := range got {
		names = append(names, a.Name()+" "+a.Labels[LabelHost])
	}
	want := []string{
		"ComputehaHostIsolated cmp1", "ComputehaHostDead cmp3", "ComputehaRecoveryFailed cmp4", "ComputehaSegmentNoHeadroom ",
		"ComputehaHostProcessDown cmp2", "ComputehaHostProcessDown cmp2",
	}
	if diff := cmp.Diff(want, names); diff != "" {
		t.Fatalf("alerts (-want +got):\n%s", diff)
	}
	wantFirst := Alert{
		Labels: map[string]string{"alertname": "ComputehaHostIsolated", "severity": "critical", "host": "cmp1", "state": "isolated", "cluster": "east"},
		Annotations: map[string]string{
			"summary": "cmp1 is isolated: its VMs still run, it is not fenced",
			"description": "The health check judged cmp1 isolated. computeha does not fence a host whose VMs may " +
				"still run; it answers as configured (alert, disable or migrate). Restore its networks.",
		},
	}
	if diff := cmp.Diff(wantFirst, got[0]); diff != "" {
		t.Errorf("isolated alert (-want +got):\n%s", diff)
	}
	if got[2].Labels[LabelPhase] != "failed" || got[2].Annotations["description"] != "computeha history --host cmp4 lists the VMs and why." {
		t.Errorf("failed alert: %+v", got[2])
	}
	wantSeg := map[string]string{"alertname": "ComputehaSegmentNoHeadroom", "severity": "warning", "segment": "rack-b", "cluster": "east"}
	if diff := cmp.Diff(wantSeg, got[3].Labels); diff != "" || got[3].Annotations["summary"] != "Segment rack-b no longer meets its admission policy" {
		t.Errorf("segment alert %v (-want +got):\n%s", got[3].Annotations, diff)
	}
	wantProc := map[string]string{"alertname": "ComputehaHostProcessDown", "severity": "critical", "host": "cmp2", "process": "libvirtd", "cluster": "east"}
	if diff := cmp.Diff(wantProc, got[4].Labels); diff != "" || got[4].Annotations["summary"] != "libvirtd cannot be restarted on cmp2: the host is disabled in Nova" {
		t.Errorf("process alert %v (-want +got):\n%s", got[4].Annotations, diff)
	}
	if got[5].Labels[LabelProcess] != "nova-compute" {
		t.Errorf("second process alert: %v", got[5].Labels)
	}
}

func TestExpandLeavesUnknownAndBrokenTemplatesReadable(t *testing.T) {
	l := map[string]string{"host": "h"}
	for in, want := range map[string]string{
		"{{ $labels.host }} x {{ $labels.host }}": "h x h",
		"{{ $labels.none }}!":                     "!",
		"a {{ $labels.host":                       "a {{ $labels.host",
	} {
		if got := expand(in, l); got != want {
			t.Errorf("expand(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestBookFiresAfterForAndResolvesOnce(t *testing.T) {
	b := NewBook(Rules)
	t0 := time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC)
	degraded := Evaluate(Rules, Snapshot{Health: map[string]string{"cmp1": "degraded"}}, nil)
	isolated := Evaluate(Rules, Snapshot{Health: map[string]string{"cmp2": "isolated"}}, nil)
	both := slices.Concat(degraded, isolated)
	status := func(as []Alert) []string {
		var out []string
		for _, a := range as {
			out = append(out, a.Name()+" "+a.Status()+" "+a.StartsAt.Sub(t0).String())
		}
		return out
	}
	steps := []struct {
		at      time.Duration
		holding []Alert
		want    []string
	}{
		{0, both, []string{"ComputehaHostIsolated firing 0s"}},
		{time.Minute, both, nil},
		{2 * time.Minute, both, []string{"ComputehaHostDegraded firing 0s"}}, // its For is 2m
		{3 * time.Minute, degraded, []string{"ComputehaHostIsolated resolved 0s"}},
		{4 * time.Minute, degraded, nil},
		{5 * time.Minute, both, []string{"ComputehaHostIsolated firing 5m0s"}}, // a new episode
		{6 * time.Minute, nil, []string{"ComputehaHostDegraded resolved 0s", "ComputehaHostIsolated resolved 5m0s"}},
		// A condition shorter than its For never fires, and starts over.
		{7 * time.Minute, degraded, nil},
		{8 * time.Minute, nil, nil},
		{9 * time.Minute, degraded, nil},
		{10 * time.Minute, degraded, nil},
		{11 * time.Minute, degraded, []string{"ComputehaHostDegraded firing 9m0s"}},
	}
	for _, s := range steps {
		got := b.Update(t0.Add(s.at), s.holding)
		if diff := cmp.Diff(s.want, status(got)); diff != "" {
			t.Errorf("at %s (-want +got):\n%s", s.at, diff)
		}
		for _, a := range got {
			if a.Status() == Resolved && !a.EndsAt.Equal(t0.Add(s.at)) {
				t.Errorf("at %s: %s resolved with endsAt %s", s.at, a.Name(), a.EndsAt)
			}
		}
	}
	if f := b.Firing(); len(f) != 1 || f[0].Name() != "ComputehaHostDegraded" {
		t.Errorf("Firing = %v", status(f))
	}
}
