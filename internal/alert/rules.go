package alert

import (
	"maps"
	"slices"
	"strings"
	"text/template"
	"time"
)

// Snapshot is the daemon's state the rules read, at one instant.
type Snapshot struct {
	// Health maps each judged host to its confirmed health state (health.State's values).
	Health map[string]string
	// Phases maps each host under recovery to its phase (fencing, reading, paused,
	// recovering, failed).
	Phases map[string]string
	// Capacity maps each segment whose capacity is known to CapacityShort when some
	// resource's headroom is below zero, CapacityOK otherwise.
	Capacity map[string]string
	// Processes maps each host disabled in Nova because provisioning processes of it cannot
	// be restarted to those processes.
	Processes map[string][]string
	// Paused maps each host to the HA VMs an I/O error paused there that are left paused
	// ("name (id)").
	Paused map[string][]string
	// Storms maps each host whose failed VMs were left alone lately for a restart storm to
	// the limits reached (storm_host, storm_cloud).
	Storms map[string][]string
}

// Capacity values of a Snapshot.
const (
	CapacityOK    = "ok"
	CapacityShort = "short"
)

// Rule raises an alert for each host whose health state (Label "state") or recovery phase
// (Label "phase") is one of Values, each segment (Label "segment") whose capacity is, each
// process of a host that cannot be restarted (Label "process", any process: Values is
// empty), each VM left paused after an I/O error (Label "vm"), or each restart storm limit a
// host reached (Label "limit"), once that has held for For.
type Rule struct {
	Name     string
	Severity string
	For      time.Duration
	Label    string // "state", "phase" or "segment"
	Values   []string
	// Summary and Description are Prometheus annotation templates; only {{ $labels.NAME }}
	// is expanded.
	Summary, Description string
}

// The labels the rules set on their alerts besides alertname and severity.
const (
	LabelHost    = "host"
	LabelState   = "state"
	LabelPhase   = "phase"
	LabelSegment = "segment"
	LabelProcess = "process"
	LabelVM      = "vm"
	LabelLimit   = "limit"
)

// Rules are the alerts the daemon raises itself: the shipped rules file's alerts on
// computeha_host_health, computeha_recovery_phase and computeha_segment_headroom_*, word for
// word.
var Rules = []Rule{
	{
		Name: "ComputehaHostIsolated", Severity: Critical, Label: LabelState, Values: []string{"isolated", "management-lost"},
		Summary: "{{ $labels.host }} is {{ $labels.state }}: its VMs still run, it is not fenced",
		Description: "The health check judged {{ $labels.host }} {{ $labels.state }}. computeha does not fence " +
			"a host whose VMs may still run; it answers as configured (alert, disable or migrate). " +
			"Restore its networks.",
	},
	{
		Name: "ComputehaHostDegraded", Severity: Warning, For: 2 * time.Minute, Label: LabelState,
		Values:  []string{"degraded", "service-unreachable", "unknown"},
		Summary: "{{ $labels.host }} is {{ $labels.state }}",
		Description: "{{ $labels.host }} has been {{ $labels.state }} for 2 minutes: a network is lost, its " +
			"cluster service is down, or the evidence is missing.",
	},
	{
		Name: "ComputehaHostDead", Severity: Critical, Label: LabelState, Values: []string{"dead"},
		Summary:     "{{ $labels.host }} is dead: it is fenced and its VMs recovered",
		Description: "Follow the recovery with computeha history --host {{ $labels.host }}.",
	},
	{
		Name: "ComputehaFencingNotConfirmed", Severity: Critical, For: 5 * time.Minute, Label: LabelPhase, Values: []string{"fencing"},
		Summary: "{{ $labels.host }}'s fencing is not confirmed after 5 minutes: its VMs wait",
		Description: "No VM of {{ $labels.host }} is recovered until Pacemaker confirms its fencing. Check the " +
			"fencing devices (stonith_admin --history {{ $labels.host }}).",
	},
	{
		Name: "ComputehaRecoveryPaused", Severity: Critical, Label: LabelPhase, Values: []string{"paused"},
		Summary: "The recovery of {{ $labels.host }} is paused by the mass-failure guard",
		Description: "Too many hosts failed at once. When it is safe, let it go on with " +
			"computeha guard release {{ $labels.host }}.",
	},
	{
		Name: "ComputehaRecoveryFailed", Severity: Critical, Label: LabelPhase, Values: []string{"failed"},
		Summary:     "The recovery of {{ $labels.host }} failed: some of its VMs are not running",
		Description: "computeha history --host {{ $labels.host }} lists the VMs and why.",
	},
	{
		Name: "ComputehaSegmentNoHeadroom", Severity: Warning, For: 15 * time.Minute, Label: LabelSegment, Values: []string{CapacityShort},
		Summary: "Segment {{ $labels.segment }} no longer meets its admission policy",
		Description: "Were the failures its admission policy plans for to happen now (by default, its costliest " +
			"host failing), some VMs would fit on no other host of segment {{ $labels.segment }}, reserved " +
			"hosts included. Add capacity or reserved hosts. computeha status shows the policy and the headroom.",
	},
	{
		Name: "ComputehaHostProcessDown", Severity: Critical, Label: LabelProcess,
		Summary: "{{ $labels.process }} cannot be restarted on {{ $labels.host }}: the host is disabled in Nova",
		Description: "The instance monitor of {{ $labels.host }} gave up restarting {{ $labels.process }} " +
			"(instances.processes). Nothing new is scheduled there; computeha enables the host again once " +
			"the process runs. computeha history --host {{ $labels.host }} says what failed.",
	},
	{
		Name: "ComputehaVMLeftPaused", Severity: Warning, Label: LabelVM,
		Summary: "VM {{ $labels.vm }} on {{ $labels.host }} is left paused after an I/O error",
		Description: "A write to a disk of VM {{ $labels.vm }} failed (its storage full or failing) and qemu paused it; " +
			"computeha left it paused, as its policy.io_error says or because resuming it did not help. " +
			"Fix its storage, then resume, restart or move it. computeha history --host {{ $labels.host }} says what was seen.",
	},
	{
		Name: "ComputehaRestartStorm", Severity: Critical, Label: LabelLimit,
		Summary: "Failed VMs of {{ $labels.host }} are left alone: a restart storm ({{ $labels.limit }})",
		Description: "More failed VMs were restarted lately than instances.{{ $labels.limit }} allows (on " +
			"{{ $labels.host }}, or in the whole cloud for storm_cloud), so computeha leaves the next failures of " +
			"{{ $labels.host }} alone until the window has room again. computeha history --host {{ $labels.host }} says which VMs.",
	},
}

// Evaluate returns the alerts whose condition holds in s (with no times set): one per rule and
// host, labelled alertname, severity, host, the rule's label and extra; or one per rule and
// segment, labelled alertname, severity, segment and extra.
func Evaluate(rules []Rule, s Snapshot, extra map[string]string) []Alert {
	var out []Alert
	for _, r := range rules {
		if items, ok := map[string]map[string][]string{LabelProcess: s.Processes, LabelVM: s.Paused, LabelLimit: s.Storms}[r.Label]; ok {
			out = append(out, itemAlerts(r, items, extra)...)
			continue
		}
		src := s.Health
		switch r.Label {
		case LabelPhase:
			src = s.Phases
		case LabelSegment:
			src = s.Capacity
		}
		for _, key := range slices.Sorted(maps.Keys(src)) {
			v := src[key]
			if !slices.Contains(r.Values, v) {
				continue
			}
			labels := make(map[string]string, len(extra)+4)
			maps.Copy(labels, extra)
			labels["alertname"], labels["severity"] = r.Name, r.Severity
			if r.Label == LabelSegment {
				labels[LabelSegment] = key // a segment's alert is about no host
			} else {
				labels[LabelHost], labels[r.Label] = key, v
			}
			out = append(out, Alert{Labels: labels, Annotations: map[string]string{
				"summary":     expand(r.Summary, labels),
				"description": expand(r.Description, labels),
			}})
		}
	}
	return out
}

// itemAlerts is r's alerts: one per host and item of items (a process, a VM), labelled
// r.Label.
func itemAlerts(r Rule, items map[string][]string, extra map[string]string) []Alert {
	var out []Alert
	for _, host := range slices.Sorted(maps.Keys(items)) {
		for _, it := range slices.Sorted(slices.Values(items[host])) {
			labels := make(map[string]string, len(extra)+4)
			maps.Copy(labels, extra)
			labels["alertname"], labels["severity"] = r.Name, r.Severity
			labels[LabelHost], labels[r.Label] = host, it
			out = append(out, Alert{Labels: labels, Annotations: map[string]string{
				"summary":     expand(r.Summary, labels),
				"description": expand(r.Description, labels),
			}})
		}
	}
	return out
}

// expand renders t, a Prometheus annotation template, with labels as $labels (Go's
// text/template, as Prometheus does; a label not set is empty). A template that does not
// parse or run is returned as it is.
func expand(t string, labels map[string]string) string {
	tmpl, err := template.New("annotation").Option("missingkey=zero").Parse("{{ $labels := . }}" + t)
	if err != nil {
		return t
	}
	var b strings.Builder
	if err := tmpl.Execute(&b, labels); err != nil {
		return t
	}
	return b.String()
}

// ruleFor returns the rule named name.
func ruleFor(rules []Rule, name string) (Rule, bool) {
	for _, r := range rules {
		if r.Name == name {
			return r, true
		}
	}
	return Rule{}, false
}
