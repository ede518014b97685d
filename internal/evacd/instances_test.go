package evacd

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/computeha/computeha/internal/haapi"
	"github.com/computeha/computeha/internal/history"
	"github.com/computeha/computeha/internal/instancemon"
	"github.com/computeha/computeha/internal/openstack"
)

// startDaemon runs the world's daemon until the test ends.
func (w *world) startDaemon(t *testing.T) {
	t.Helper()
	w.daemon = New(Options{
		Config: w.cfg, Cluster: w.cluster, Nova: w.nova, History: w.store, Metrics: w.metrics, Owner: "ctl1",
		Poll: 10 * time.Millisecond, Reconcile: 20 * time.Millisecond, ReserveEvery: 50 * time.Millisecond,
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.daemon.Run(ctx, nil) }()
	t.Cleanup(func() { cancel(); <-done })
	deadline := time.Now().Add(5 * time.Second)
	for {
		if _, err := w.daemon.InstanceFailed(ctx, instancemon.Event{Server: "none", Host: "cmp1", Kind: instancemon.Crashed}, haapi.Caller{}); err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("the daemon does not take failures")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func (w *world) ids(host string) []string {
	var out []string
	for id, s := range w.servers {
		if s.Host == host {
			out = append(out, id)
		}
	}
	return out
}

func reboots(nova *openstack.Fake) []string {
	var out []string
	for _, c := range nova.Calls() {
		if strings.HasPrefix(c, "Reboot ") || strings.HasPrefix(c, "StartServer ") {
			out = append(out, c)
		}
	}
	return out
}

func must(t *testing.T, what string, cond func() bool) {
	t.Helper()
	if !waitFor(10*time.Second, cond) {
		t.Fatalf("%s: not within 10 s", what)
	}
}

func TestAGuestThatCrashedIsRestartedWhereItIsInAnIncidentOfItsOwn(t *testing.T) {
	w := newWorld(t, "auto", "")
	w.boot("cmp1", 1, true)
	w.boot("cmp1", 1, false)
	w.startDaemon(t)
	ctx := t.Context()
	var ha, plain string
	for id, s := range w.servers {
		if s.Flavor.ExtraSpecs["evacuable"] == "true" {
			ha = id
		} else {
			plain = id
		}
	}
	for _, id := range []string{ha, plain} {
		ans, err := w.daemon.InstanceFailed(ctx, instancemon.Event{Server: id, Host: "cmp1", Kind: instancemon.Crashed, Reason: "failed", Time: time.Now()}, haapi.Caller{UserName: "instancemon"})
		if err != nil || ans.Status != haapi.Accepted {
			t.Fatalf("report of %s: %+v, %v", id, ans, err)
		}
	}
	// Reported again while its restart is under way: coalesced.
	if ans, err := w.daemon.InstanceFailed(ctx, instancemon.Event{Server: ha, Host: "cmp1", Kind: instancemon.Crashed, Time: time.Now()}, haapi.Caller{}); err != nil || ans.Status != haapi.Coalesced {
		t.Errorf("the same failure again: %+v, %v; want coalesced", ans, err)
	}
	must(t, "the incident closed", func() bool {
		incs, _ := w.store.Incidents(ctx, history.Filter{})
		return len(incs) == 1 && !incs[0].Closed.IsZero()
	})
	if got := reboots(w.nova); len(got) != 1 || got[0] != "Reboot "+ha+" HARD" {
		t.Errorf("Nova was asked %q; want one hard reboot of the HA VM", got)
	}
	incs, _ := w.store.Incidents(ctx, history.Filter{})
	if incs[0].Outcome != history.OutcomeRecovered || incs[0].Host != "cmp1" {
		t.Errorf("incident %+v", incs[0])
	}
	evs, _ := w.store.Query(ctx, history.Filter{})
	var sawFailure, sawLeft bool
	for _, e := range evs {
		sawFailure = sawFailure || e.Kind == history.KindFailure && e.Reason.Code == "vm-crashed" && strings.Contains(string(e.Details), ha)
		sawLeft = sawLeft || e.Kind == history.KindDecision && strings.Contains(e.Summary, plain) && strings.Contains(e.Summary, "not an HA VM")
	}
	if !sawFailure || !sawLeft {
		t.Errorf("history: failure of the HA VM %v, the other left %v:\n%v", sawFailure, sawLeft, evs)
	}
}

func TestWhatNovaDidOnPurposeIsNoFailure(t *testing.T) {
	w := newWorld(t, "auto", "")
	add := func(status, task string) string {
		s := w.nova.AddServer(openstack.Server{
			Name: "vm-" + status + task, Host: "cmp1", ProjectID: "p1", Status: status, TaskState: task,
			Flavor: openstack.Flavor{VCPUs: 1, RAMMB: 512, DiskGB: 1, ExtraSpecs: map[string]string{"evacuable": "true"}},
		})
		w.servers[s.ID] = s
		return s.ID
	}
	stopped, migrating, moved, crashedThenStopped := add("SHUTOFF", ""), add("ACTIVE", "migrating"), add("ACTIVE", ""), add("SHUTOFF", "")
	w.startDaemon(t)
	ctx := t.Context()
	for _, c := range []struct {
		name, id, host string
		kind           instancemon.Kind
		want           haapi.Status
	}{
		{"a guest stopped through Nova", stopped, "cmp1", instancemon.Stopped, haapi.Ignored},
		{"a guest Nova is migrating", migrating, "cmp1", instancemon.Stopped, haapi.Ignored},
		{"a guest that runs on another host now", moved, "cmp2", instancemon.Crashed, haapi.Ignored},
		{"a crash Nova noticed and stopped the guest for", crashedThenStopped, "cmp1", instancemon.Crashed, haapi.Accepted},
		{"a deleted guest", "11111111-2222-3333-4444-555555555555", "cmp1", instancemon.Crashed, haapi.Ignored},
	} {
		ans, err := w.daemon.InstanceFailed(ctx, instancemon.Event{Server: c.id, Host: c.host, Kind: c.kind, Time: time.Now()}, haapi.Caller{})
		if err != nil || ans.Status != c.want {
			t.Errorf("%s: %+v, %v; want %s", c.name, ans, err, c.want)
		}
	}
	must(t, "the crashed guest started", func() bool { return len(reboots(w.nova)) == 1 })
	if got := reboots(w.nova); got[0] != "StartServer "+crashedThenStopped {
		t.Errorf("Nova was asked %q; want the crashed guest Nova stopped started again", got)
	}
}

func TestASignalRestartsTheServerLikeAFailure(t *testing.T) {
	w := newWorld(t, "auto", "")
	w.boot("cmp2", 1, true)
	w.startDaemon(t)
	id := w.ids("cmp2")[0]
	s, _ := w.nova.Server(t.Context(), id)
	ans, err := w.daemon.Signal(t.Context(), s, "app health check failed", haapi.Caller{UserName: "alice", ProjectName: "demo"})
	if err != nil || ans.Status != haapi.Accepted {
		t.Fatalf("signal: %+v, %v", ans, err)
	}
	must(t, "the signalled VM restarted", func() bool { return len(reboots(w.nova)) == 1 })
	must(t, "the incident closed", func() bool {
		incs, _ := w.store.Incidents(t.Context(), history.Filter{})
		return len(incs) == 1 && !incs[0].Closed.IsZero()
	})
	evs, _ := w.store.Query(t.Context(), history.Filter{})
	found := false
	for _, e := range evs {
		found = found || e.Reason.Code == "vm-signal" && strings.Contains(e.Reason.Text, "app health check failed") &&
			strings.Contains(string(e.Details), fmt.Sprintf("%q", "alice of project demo"))
	}
	if !found {
		t.Errorf("no signal recorded with its reason and who sent it: %v", evs)
	}
}

func (w *world) vmFailed(t *testing.T, id, host string) {
	t.Helper()
	ans, err := w.daemon.InstanceFailed(t.Context(), instancemon.Event{Server: id, Host: host, Kind: instancemon.Crashed, Time: time.Now()}, haapi.Caller{})
	if err != nil || ans.Status != haapi.Accepted {
		t.Fatalf("report of %s on %s: %+v, %v", id, host, ans, err)
	}
}

func closedIncidents(t *testing.T, w *world) int {
	t.Helper()
	incs, err := w.store.Incidents(t.Context(), history.Filter{})
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, in := range incs {
		if !in.Closed.IsZero() {
			n++
		}
	}
	return n
}

func TestAVMThatFailsTooOftenWhereItIsMovesToAnotherHostOfItsSegment(t *testing.T) {
	w := newWorld(t, "auto", "")
	w.cfg.Instances.MaxRestarts, w.cfg.Instances.RestartWindow = 2, time.Hour
	w.boot("cmp1", 1, true)
	id := w.ids("cmp1")[0]
	w.startDaemon(t)
	for i := 1; i <= 3; i++ {
		w.vmFailed(t, id, "cmp1")
		must(t, fmt.Sprintf("failure %d handled", i), func() bool { return closedIncidents(t, w) == i })
	}
	var got []string
	for _, c := range w.nova.Calls() {
		if strings.HasPrefix(c, "Reboot ") || strings.HasPrefix(c, "ColdMigrate ") {
			got = append(got, strings.Fields(c)[0])
		}
	}
	if strings.Join(got, " ") != "Reboot Reboot ColdMigrate" {
		t.Errorf("Nova was asked %v; want two restarts, then a cold migration", got)
	}
	if s := w.hostOf(t, id); s.Host == "cmp1" || s.Status != "ACTIVE" {
		t.Errorf("after its third failure the VM is %s on %s; want ACTIVE on another host", s.Status, s.Host)
	}
	// Failing on its new host, it is restarted there: its restarts on cmp1 are cmp1's story.
	w.vmFailed(t, id, w.hostOf(t, id).Host)
	must(t, "the failure on its new host handled", func() bool { return closedIncidents(t, w) == 4 })
	if n := len(reboots(w.nova)); n != 3 {
		t.Errorf("%d restarts in all, want 3: failing on its new host, it is restarted there", n)
	}
}

func TestARestartStormOnAHostLeavesTheFailuresPastItsLimitWithAnAlert(t *testing.T) {
	w := newWorld(t, "auto", "")
	w.cfg.Instances.StormHost, w.cfg.Instances.StormWindow = 2, 10*time.Minute
	w.boot("cmp1", 3, true)
	w.startDaemon(t)
	for _, id := range w.ids("cmp1") {
		w.vmFailed(t, id, "cmp1")
	}
	must(t, "the batch handled", func() bool { return closedIncidents(t, w) == 1 })
	if n := len(reboots(w.nova)); n != 2 {
		t.Errorf("%d restarts, want 2 (storm_host)", n)
	}
	evs, _ := w.store.Query(t.Context(), history.Filter{Kind: history.KindAlert})
	left := 0
	for _, e := range evs {
		if e.Reason.Code == ReasonRestartStorm {
			left++
		}
	}
	if left != 1 {
		t.Errorf("%d VMs left for a storm, want 1: %v", left, evs)
	}
	if got := w.daemon.AlertState().Storms; !slices.Equal(got["cmp1"], []string{"storm_host"}) || len(got) != 1 {
		t.Errorf("the alerts' storms: %v; want cmp1's storm_host", got)
	}
	want := `# HELP computeha_restart_storm 1 for each host whose failed VMs were left alone lately for a restart storm, labelled with the limit reached (instances.storm_host, storm_cloud), for instances.storm_window after the last one.
# TYPE computeha_restart_storm gauge
computeha_restart_storm{host="cmp1",limit="storm_host"} 1
`
	if err := testutil.GatherAndCompare(w.metrics.Registry(), strings.NewReader(want), "computeha_restart_storm"); err != nil {
		t.Error(err)
	}
}

// A daemon that starts takes the restart storms of the last storm_window from the history.
func TestADaemonTakingOverAlertsForTheRestartStormsOfTheWindow(t *testing.T) {
	w := newWorld(t, "auto", "")
	w.cfg.Instances.StormWindow = 10 * time.Minute
	ctx := t.Context()
	for _, e := range []struct {
		host, limit string
		ago         time.Duration
	}{{"cmp1", "storm_host", time.Minute}, {"cmp2", "storm_cloud", 20 * time.Minute}} {
		if err := w.store.Record(ctx, history.Event{
			Time: time.Now().Add(-e.ago), Host: e.host, Kind: history.KindAlert, Summary: "left, a restart storm",
			Reason: history.Reason{Code: ReasonRestartStorm}, Details: history.DetailsOf(map[string]any{"limit": e.limit}),
		}); err != nil {
			t.Fatal(err)
		}
	}
	w.startDaemon(t)
	if got := w.daemon.AlertState().Storms; !slices.Equal(got["cmp1"], []string{"storm_host"}) || len(got) != 1 {
		t.Errorf("the alerts' storms: %v; want cmp1's alone (cmp2's is older than storm_window)", got)
	}
}

func TestAProcessThatCannotBeRestartedDisablesItsHostUntilItRunsAgain(t *testing.T) {
	w := newWorld(t, "auto", "")
	w.startDaemon(t)
	ctx := t.Context()
	svc := func(host string) openstack.Service {
		s, err := w.nova.FindComputeService(ctx, host)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	report := func(host string, st instancemon.ProcessState) haapi.Answer {
		ans, err := w.daemon.HostProcess(ctx, instancemon.HostEvent{Host: host, Process: "libvirtd", State: st, Detail: "down for 1m0s", Time: time.Now()}, haapi.Caller{UserName: "instancemon"})
		if err != nil {
			t.Fatal(err)
		}
		return ans
	}
	if ans := report("cmp1", instancemon.ProcessFailed); ans.Status != haapi.Accepted {
		t.Fatalf("failed: %+v", ans)
	}
	if s := svc("cmp1"); s.Enabled() || s.DisabledReason != "computeha: process libvirtd cannot be restarted on cmp1" {
		t.Errorf("cmp1 after the failure: %s, %q", s.Status, s.DisabledReason)
	}
	if ans := report("cmp1", instancemon.ProcessRecovered); ans.Status != haapi.Accepted || !svc("cmp1").Enabled() {
		t.Errorf("recovered: %+v, cmp1 %s", ans, svc("cmp1").Status)
	}
	// Nova's own disable (libvirt lost) is taken over; an operator's is left alone.
	_, _ = w.nova.DisableService(ctx, svc("cmp2").ID, "AUTO: Connection to libvirt lost: 1")
	_, _ = w.nova.DisableService(ctx, svc("cmp3").ID, "operator: new disks")
	if ans := report("cmp2", instancemon.ProcessFailed); ans.Status != haapi.Accepted || !strings.HasPrefix(svc("cmp2").DisabledReason, ProcessReasonPrefix) {
		t.Errorf("Nova's own disable: %+v, %q", ans, svc("cmp2").DisabledReason)
	}
	for _, st := range []instancemon.ProcessState{instancemon.ProcessFailed, instancemon.ProcessRecovered} {
		if ans := report("cmp3", st); ans.Status != haapi.Ignored || svc("cmp3").DisabledReason != "operator: new disks" {
			t.Errorf("%s on a host an operator disabled: %+v, %q", st, ans, svc("cmp3").DisabledReason)
		}
	}
	evs, _ := w.store.Query(ctx, history.Filter{Host: "cmp1"})
	var alert, enabled bool
	for _, e := range evs {
		alert = alert || e.Kind == history.KindAlert && e.Reason.Code == ReasonProcessDown
		enabled = enabled || e.Reason.Code == ReasonProcessRecovered
	}
	if !alert || !enabled {
		t.Errorf("history of cmp1: alert %v, enabled %v: %v", alert, enabled, evs)
	}
}

func TestAHostStaysDisabledWhileAnyOfItsProcessesIsDown(t *testing.T) {
	w := newWorld(t, "auto", "")
	w.startDaemon(t)
	ctx := t.Context()
	report := func(p string, st instancemon.ProcessState) {
		t.Helper()
		if _, err := w.daemon.HostProcess(ctx, instancemon.HostEvent{Host: "cmp1", Process: p, State: st, Time: time.Now()}, haapi.Caller{}); err != nil {
			t.Fatal(err)
		}
	}
	svc := func() openstack.Service {
		s, _ := w.nova.FindComputeService(ctx, "cmp1")
		return s
	}
	report("libvirtd", instancemon.ProcessFailed)
	report("neutron-openvswitch-agent", instancemon.ProcessFailed)
	if r := svc().DisabledReason; r != "computeha: process libvirtd, neutron-openvswitch-agent cannot be restarted on cmp1" {
		t.Errorf("reason %q", r)
	}
	// An alert and a metric per process down.
	if got := w.daemon.AlertState().Processes; !slices.Equal(got["cmp1"], []string{"libvirtd", "neutron-openvswitch-agent"}) || len(got) != 1 {
		t.Errorf("the alerts' processes: %v", got)
	}
	want := `
# HELP computeha_host_process_down 1 for each provisioning process (instances.processes) of a host that cannot be restarted: the host is disabled in Nova until it runs again.
# TYPE computeha_host_process_down gauge
computeha_host_process_down{host="cmp1",process="libvirtd"} 1
computeha_host_process_down{host="cmp1",process="neutron-openvswitch-agent"} 1
`
	if err := testutil.GatherAndCompare(w.metrics.Registry(), strings.NewReader(want), "computeha_host_process_down"); err != nil {
		t.Error(err)
	}
	report("libvirtd", instancemon.ProcessRecovered)
	if s := svc(); s.Enabled() || s.DisabledReason != "computeha: process neutron-openvswitch-agent cannot be restarted on cmp1" {
		t.Errorf("with the agent still down: %s %q; want disabled for it", s.Status, s.DisabledReason)
	}
	report("neutron-openvswitch-agent", instancemon.ProcessRecovered)
	if !svc().Enabled() {
		t.Errorf("every process back: %q; want enabled", svc().DisabledReason)
	}
	if got := w.daemon.AlertState().Processes; len(got) != 0 {
		t.Errorf("every process back, the alerts' processes: %v", got)
	}
	if n, err := testutil.GatherAndCount(w.metrics.Registry(), "computeha_host_process_down"); err != nil || n != 0 {
		t.Errorf("every process back: %d series of computeha_host_process_down, %v", n, err)
	}
}

// A daemon that takes over learns the hosts disabled for their processes from Nova's reasons,
// and forgets one whose reason an operator replaced.
func TestADaemonTakingOverAlertsForTheProcessesNovasReasonsName(t *testing.T) {
	w := newWorld(t, "auto", "")
	w.cfg.API.Listen = "127.0.0.1:0"
	ctx := t.Context()
	s2, _ := w.nova.FindComputeService(ctx, "cmp2")
	s3, _ := w.nova.FindComputeService(ctx, "cmp3")
	_, _ = w.nova.DisableService(ctx, s2.ID, processReason([]string{"libvirtd"}, "cmp2"))
	_, _ = w.nova.DisableService(ctx, s3.ID, "operator: computeha: process libvirtd")
	w.startDaemon(t)
	deadline := time.Now().Add(5 * time.Second)
	for got := w.daemon.AlertState().Processes; !slices.Equal(got["cmp2"], []string{"libvirtd"}) || len(got) != 1; got = w.daemon.AlertState().Processes {
		if time.Now().After(deadline) {
			t.Fatalf("the alerts' processes: %v; want cmp2's libvirtd alone", got)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestAWatchdogResetAndAnIOErrorReportedToTheGuestAreNoFailureToRestart(t *testing.T) {
	w := newWorld(t, "auto", "")
	w.boot("cmp1", 2, true)
	w.startDaemon(t)
	ids := w.ids("cmp1")
	for i, e := range []instancemon.Event{
		{Server: ids[0], Host: "cmp1", Kind: instancemon.Watchdog, Action: "reset"},
		{Server: ids[1], Host: "cmp1", Kind: instancemon.IOError, Reason: "eio", Action: "report"},
	} {
		e.Time = time.Now()
		if ans, err := w.daemon.InstanceFailed(t.Context(), e, haapi.Caller{}); err != nil || ans.Status != haapi.Ignored {
			t.Errorf("%d: %+v, %v; want ignored", i, ans, err)
		}
	}
}

// A batch whose restarts take long does not hold back the next one, and the storm bound counts
// the restarts the batches still running decided.
func TestABatchOfFailuresIsRestartedWhileAnEarlierOneStillRuns(t *testing.T) {
	w := newWorld(t, "auto", "")
	w.cfg.Instances.StormHost, w.cfg.Instances.StormWindow = 2, 10*time.Minute
	w.boot("cmp1", 3, true)
	ids := w.ids("cmp1")
	w.startDaemon(t)
	w.nova.KillCompute("cmp1") // the reboots cast to it wait for its nova-compute
	w.vmFailed(t, ids[0], "cmp1")
	must(t, "the first restart asked", func() bool { return len(reboots(w.nova)) == 1 })
	w.vmFailed(t, ids[1], "cmp1")
	must(t, "the second restart asked while the first one waits", func() bool { return len(reboots(w.nova)) == 2 })
	if n := closedIncidents(t, w); n != 0 {
		t.Fatalf("%d incidents closed while both restarts wait", n)
	}
	// storm_host is 2: both restarts decided, neither over, the third failure is left.
	w.vmFailed(t, ids[2], "cmp1")
	must(t, "the third failure left for a restart storm", func() bool {
		evs, _ := w.store.Query(t.Context(), history.Filter{Kind: history.KindAlert})
		return slices.ContainsFunc(evs, func(e history.Event) bool { return e.Reason.Code == ReasonRestartStorm })
	})
	if n := len(reboots(w.nova)); n != 2 {
		t.Errorf("%d restarts asked, want 2 (storm_host)", n)
	}
	w.nova.RestartCompute("cmp1")
	must(t, "both batches handled", func() bool { return closedIncidents(t, w) == 2 })
}

// A VM qemu paused on an I/O error goes by policy.io_error: resumed after resume_delay (paused
// then unpaused in Nova), restarted, moved, or left paused with an alert; a VM resumed
// max_restarts times is left paused, with an alert.
func TestAVMPausedByAnIOErrorGoesByItsIOErrorPolicy(t *testing.T) {
	w := newWorld(t, "auto", "")
	w.cfg.Instances.MaxRestarts, w.cfg.Instances.RestartWindow = 2, time.Hour
	w.cfg.Instances.ResumeDelay = 300 * time.Millisecond
	ids := map[string]string{}
	for _, action := range []string{"resume", "restart", "move", "leave-paused"} {
		s := w.nova.AddServer(openstack.Server{
			Name: "vm-" + action, Host: "cmp1", ProjectID: "p1",
			Flavor:   openstack.Flavor{VCPUs: 1, RAMMB: 512, DiskGB: 1, ExtraSpecs: map[string]string{"evacuable": "true"}},
			Metadata: map[string]string{"computeha_io_error": action},
		})
		w.servers[s.ID] = s
		ids[action] = s.ID
	}
	w.startDaemon(t)
	ioError := func(id string) {
		t.Helper()
		e := instancemon.Event{Server: id, Host: "cmp1", Kind: instancemon.IOError, Reason: "enospc", Action: "pause", Device: "/x/disk", Time: time.Now()}
		if ans, err := w.daemon.InstanceFailed(t.Context(), e, haapi.Caller{}); err != nil || ans.Status != haapi.Accepted {
			t.Fatalf("report of %s: %+v, %v", id, ans, err)
		}
	}
	calls := func(prefix string) []string {
		var out []string
		for _, c := range w.nova.Calls() {
			if strings.HasPrefix(c, prefix+" ") {
				out = append(out, strings.Fields(c)[1])
			}
		}
		return out
	}
	leftPaused := func() []string {
		evs, _ := w.store.Query(t.Context(), history.Filter{Kind: history.KindAlert})
		var out []string
		for _, e := range evs {
			if e.Reason.Code == ReasonLeftPaused {
				out = append(out, e.Summary)
			}
		}
		return out
	}
	reported := time.Now()
	for _, action := range []string{"resume", "restart", "move", "leave-paused"} {
		ioError(ids[action])
	}
	must(t, "the batch handled", func() bool { return closedIncidents(t, w) == 1 })
	if d := time.Since(reported); d < w.cfg.Instances.ResumeDelay {
		t.Errorf("handled %s after the report: the resume did not wait resume_delay", d)
	}
	if got := calls("Pause"); !slices.Equal(got, []string{ids["resume"]}) {
		t.Errorf("paused in Nova: %v; want the VM whose policy is resume", got)
	}
	if got := calls("Unpause"); !slices.Equal(got, []string{ids["resume"]}) {
		t.Errorf("unpaused in Nova: %v; want the VM whose policy is resume", got)
	}
	if got := calls("Reboot"); !slices.Equal(got, []string{ids["restart"]}) {
		t.Errorf("rebooted: %v; want the VM whose policy is restart", got)
	}
	if got := calls("ColdMigrate"); !slices.Equal(got, []string{ids["move"]}) {
		t.Errorf("cold-migrated: %v; want the VM whose policy is move", got)
	}
	if s := w.hostOf(t, ids["move"]); s.Host == "cmp1" || s.Status != "ACTIVE" {
		t.Errorf("the moved VM is %s on %s; want ACTIVE on another host", s.Status, s.Host)
	}
	if got := leftPaused(); len(got) != 1 || !strings.Contains(got[0], "vm-leave-paused") {
		t.Errorf("left-paused alerts %q; want one, for vm-leave-paused", got)
	}
	// The storage still full: paused again, twice more. Resumed once more (max_restarts 2),
	// then left paused.
	for i := 2; i <= 3; i++ {
		ioError(ids["resume"])
		if i == 2 {
			must(t, "the second pause handled", func() bool { return closedIncidents(t, w) == 2 })
		}
	}
	must(t, "the third pause left paused", func() bool { return len(leftPaused()) == 2 })
	if got := calls("Unpause"); len(got) != 2 {
		t.Errorf("%d unpauses; want 2: the third pause is left", len(got))
	}
	if got := leftPaused(); !strings.Contains(got[len(got)-1], "the error persists") {
		t.Errorf("the last alert: %q; want it to say the error persists", got[len(got)-1])
	}
}

// A VM left paused is in the alerts and the metrics while Nova has it paused where it was
// left; a daemon that starts learns the VMs left paused from the history, and keeps those Nova
// still has paused.
func TestAVMLeftPausedIsAlertedWhileNovaHasItPaused(t *testing.T) {
	w := newWorld(t, "auto", "")
	w.cfg.API.Listen = "127.0.0.1:0"
	ctx := t.Context()
	add := func(name string, power int) openstack.Server {
		s := w.nova.AddServer(openstack.Server{
			Name: name, Host: "cmp1", ProjectID: "p1", PowerState: power,
			Flavor:   openstack.Flavor{VCPUs: 1, RAMMB: 512, DiskGB: 1, ExtraSpecs: map[string]string{"evacuable": "true"}},
			Metadata: map[string]string{"computeha_io_error": "leave-paused"},
		})
		w.servers[s.ID] = s
		return s
	}
	// Left paused by a daemon before this one: one is still paused, one was resumed since.
	still, resumed := add("still", openstack.PowerPaused), add("resumed", openstack.PowerRunning)
	for _, s := range []openstack.Server{still, resumed} {
		if err := w.store.Record(ctx, history.Event{
			Host: "cmp1", Kind: history.KindAlert, Summary: s.Name + " left paused", Reason: history.Reason{Code: ReasonLeftPaused},
			Details: history.DetailsOf(map[string]any{"vm_id": s.ID, "vm_name": s.Name}),
		}); err != nil {
			t.Fatal(err)
		}
	}
	fresh := add("fresh", openstack.PowerPaused)
	w.startDaemon(t)
	label := func(s openstack.Server) string { return s.Name + " (" + s.ID + ")" }
	must(t, "the VM still paused in the alerts, the resumed one not", func() bool {
		return slices.Equal(w.daemon.AlertState().Paused["cmp1"], []string{label(still)})
	})
	e := instancemon.Event{Server: fresh.ID, Host: "cmp1", Kind: instancemon.IOError, Reason: "eio", Action: "pause", Time: time.Now()}
	if ans, err := w.daemon.InstanceFailed(ctx, e, haapi.Caller{}); err != nil || ans.Status != haapi.Accepted {
		t.Fatalf("report: %+v, %v", ans, err)
	}
	must(t, "the VM just left paused in the alerts", func() bool {
		return slices.Equal(w.daemon.AlertState().Paused["cmp1"], []string{label(fresh), label(still)})
	})
	want := fmt.Sprintf(`# HELP computeha_vm_left_paused 1 for each HA VM an I/O error paused that computeha left paused (policy.io_error leave-paused, or resumed too often), until it is no longer paused there.
# TYPE computeha_vm_left_paused gauge
computeha_vm_left_paused{host="cmp1",vm=%q} 1
computeha_vm_left_paused{host="cmp1",vm=%q} 1
`, label(fresh), label(still))
	if err := testutil.GatherAndCompare(w.metrics.Registry(), strings.NewReader(want), "computeha_vm_left_paused"); err != nil {
		t.Error(err)
	}
}

// qemu pausing a VM again at once after its resume (its storage still full) is reported while
// the resume runs, and coalesced into it: the daemon checks Nova after each resume, and takes
// a VM paused again for a new failure, resumed within the bounds, then left paused.
func TestAVMPausedAgainRightAfterItsResumeIsNotLost(t *testing.T) {
	w := newWorld(t, "auto", "")
	w.cfg.Instances.MaxRestarts, w.cfg.Instances.RestartWindow = 2, time.Hour
	w.cfg.Instances.ResumeDelay = 100 * time.Millisecond
	s := w.nova.AddServer(openstack.Server{
		Name: "full", Host: "cmp1", ProjectID: "p1", PowerState: openstack.PowerPaused,
		Flavor: openstack.Flavor{VCPUs: 1, RAMMB: 512, DiskGB: 1, ExtraSpecs: map[string]string{"evacuable": "true"}},
	})
	w.servers[s.ID] = s
	w.startDaemon(t)
	// The storage stays full: each unpause is followed by a pause, as libvirt tells Nova.
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		seen := 0
		for {
			select {
			case <-stop:
				return
			case <-time.After(5 * time.Millisecond):
			}
			n := 0
			for _, c := range w.nova.Calls() {
				if strings.HasPrefix(c, "Unpause ") {
					n++
				}
			}
			if n > seen {
				seen = n
				w.nova.SetPowerState(s.ID, openstack.PowerPaused)
			}
		}
	}()
	e := instancemon.Event{Server: s.ID, Host: "cmp1", Kind: instancemon.IOError, Reason: "enospc", Action: "pause", Time: time.Now()}
	if ans, err := w.daemon.InstanceFailed(t.Context(), e, haapi.Caller{}); err != nil || ans.Status != haapi.Accepted {
		t.Fatalf("report: %+v, %v", ans, err)
	}
	deadline := time.Now().Add(3*ResumeCheck + 5*time.Second)
	for !slices.Equal(w.daemon.AlertState().Paused["cmp1"], []string{"full (" + s.ID + ")"}) {
		if time.Now().After(deadline) {
			t.Fatalf("not left paused: alerts %v, Nova calls %q", w.daemon.AlertState().Paused, w.nova.Calls())
		}
		time.Sleep(20 * time.Millisecond)
	}
	unpauses := 0
	for _, c := range w.nova.Calls() {
		if strings.HasPrefix(c, "Unpause ") {
			unpauses++
		}
	}
	if unpauses != 2 {
		t.Errorf("%d unpauses; want 2 (max_restarts) before it is left paused", unpauses)
	}
	// Found again by a listing (the monitor reconnecting finds it still paused): alerted once
	// only.
	e.Time, e.Source = time.Now(), instancemon.FromReconcile
	if ans, err := w.daemon.InstanceFailed(t.Context(), e, haapi.Caller{}); err != nil || ans.Status != haapi.Ignored {
		t.Errorf("a listing's report of the VM left paused: %+v, %v; want ignored", ans, err)
	}
	// An I/O error event is a new pause (someone resumed it since): taken.
	e.Time, e.Source = time.Now(), instancemon.FromEvent
	if ans, err := w.daemon.InstanceFailed(t.Context(), e, haapi.Caller{}); err != nil || ans.Status != haapi.Accepted {
		t.Errorf("an event of the VM left paused: %+v, %v; want it taken", ans, err)
	}
}

// A resume is neither a restart nor a move: the restarts before it still count toward
// max_restarts.
func TestAResumeDoesNotResetAVMsRestarts(t *testing.T) {
	w := newWorld(t, "auto", "")
	w.cfg.Instances.MaxRestarts, w.cfg.Instances.RestartWindow = 2, time.Hour
	w.cfg.Instances.ResumeDelay = 50 * time.Millisecond
	w.boot("cmp1", 1, true)
	id := w.ids("cmp1")[0]
	w.startDaemon(t)
	for i, kind := range []instancemon.Kind{instancemon.Crashed, instancemon.IOError, instancemon.Crashed, instancemon.Crashed} {
		e := instancemon.Event{Server: id, Host: "cmp1", Kind: kind, Time: time.Now()}
		if kind == instancemon.IOError {
			e.Reason, e.Action = "enospc", "pause"
		}
		if ans, err := w.daemon.InstanceFailed(t.Context(), e, haapi.Caller{}); err != nil || ans.Status != haapi.Accepted {
			t.Fatalf("report %d: %+v, %v", i, ans, err)
		}
		must(t, fmt.Sprintf("failure %d handled", i+1), func() bool { return closedIncidents(t, w) == i+1 })
	}
	var got []string
	for _, c := range w.nova.Calls() {
		switch f := strings.Fields(c)[0]; f {
		case "Reboot", "Pause", "Unpause", "ColdMigrate":
			got = append(got, f)
		}
	}
	if strings.Join(got, " ") != "Reboot Pause Unpause Reboot ColdMigrate" {
		t.Errorf("Nova was asked %v; want a restart, a resume, a restart, then a cold migration (two restarts since it last moved)", got)
	}
}

// The monitor's request may time out while Nova's service update, which calls the host's
// compute, still runs: the update is done to its end, and the retry that finds the host
// enabled clears the alert's view.
func TestAProcessReportWhoseRequestEndsEarlyIsCarriedOutAndItsRetryClearsTheAlert(t *testing.T) {
	w := newWorld(t, "auto", "")
	w.startDaemon(t)
	gone, cancel := context.WithCancel(t.Context())
	cancel()
	report := func(ctx context.Context, st instancemon.ProcessState) haapi.Answer {
		t.Helper()
		ans, err := w.daemon.HostProcess(ctx, instancemon.HostEvent{Host: "cmp1", Process: "libvirtd", State: st, Time: time.Now()}, haapi.Caller{})
		if err != nil {
			t.Fatalf("%s: %v", st, err)
		}
		return ans
	}
	if ans := report(gone, instancemon.ProcessFailed); ans.Status != haapi.Accepted {
		t.Fatalf("failed, its request gone: %+v", ans)
	}
	svc, _ := w.nova.FindComputeService(t.Context(), "cmp1")
	if svc.Enabled() || !slices.Equal(w.daemon.AlertState().Processes["cmp1"], []string{"libvirtd"}) {
		t.Fatalf("cmp1 %s, alerts %v; want it disabled and alerted", svc.Status, w.daemon.AlertState().Processes)
	}
	// Enabled in Nova by a recovered report whose answer was lost.
	if _, err := w.nova.EnableService(t.Context(), svc.ID); err != nil {
		t.Fatal(err)
	}
	if ans := report(t.Context(), instancemon.ProcessRecovered); ans.Status != haapi.Ignored {
		t.Errorf("the retry: %+v; want ignored", ans)
	}
	if got := w.daemon.AlertState().Processes; len(got) != 0 {
		t.Errorf("alerts' processes after the retry: %v; want none", got)
	}
}
