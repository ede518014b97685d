//go:build e2e

package e2e

import (
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/computeha/computeha/internal/config"
	"github.com/computeha/computeha/internal/openstack"
	"github.com/computeha/computeha/test/lab"
	"github.com/computeha/computeha/test/nova"
)

// TestGuests runs real qemu guests under Nova's libvirt driver on the lab's computes (each with
// a libvirtd of its own, instance files on the shared storage): a guest boots through Nova and
// runs where Nova says; its host loses power, is fenced, and the guest boots on the other host
// from its own disk; the host comes back and the guest is left alone.
func TestGuests(t *testing.T) {
	// Two controllers: the qemu guests (TCG on most machines) need the cores more.
	ctx, env := upWith(t, 25*time.Minute, Options{Guests: true, Computes: 2, Controllers: 2})
	image, err := env.Admin.ImageID(ctx, nova.GuestImage)
	if err != nil {
		t.Fatal(err)
	}
	id, err := env.Admin.BootWith(ctx, nova.BootOpts{
		Name: "guest-ha", Host: "cmp1", Flavor: nova.FlavorGuest, Image: image,
		Metadata: map[string]string{config.DefaultMetadataKey: "true"},
	})
	if err != nil {
		t.Fatal(err)
	}
	booted := time.Now()
	if host, err := env.Admin.Wait(ctx, id); err != nil || host != "cmp1" {
		t.Fatalf("guest-ha: on %q, %v", host, err)
	}
	t.Logf("guest-ha ACTIVE on cmp1 %s after the request", time.Since(booted).Round(time.Millisecond))

	if !t.Run("booted through Nova, the guest runs in its host's libvirtd from the shared storage", func(t *testing.T) {
		line, err := env.WaitConsole(ctx, id, "up boot=1 ", 2*time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("console: %s (%s after the request)", line, time.Since(booted).Round(time.Millisecond))
		if ok, err := env.Runs(ctx, "cmp1", id); err != nil || !ok {
			t.Errorf("cmp1's libvirtd does not run the guest's domain (%v)", err)
		}
		if ok, err := env.Runs(ctx, "cmp2", id); err != nil || ok {
			t.Errorf("cmp2's libvirtd runs the guest's domain too, or could not be asked (%v)", err)
		}
		// The other host sees the instance's disk: the storage is shared.
		if _, _, code, err := env.Lab.Exec(ctx, "cmp2", "test", "-s", lab.SharedDir+"/nova-instances/"+id+"/disk"); err != nil || code != 0 {
			t.Errorf("cmp2 does not see the guest's disk on the shared storage: exit %d, %v", code, err)
		}
		// cmp1's root logs in to cmp2 by key, as Nova's cold migration does.
		addr, err := env.mgmtAddr(ctx, "cmp2")
		if err != nil {
			t.Fatal(err)
		}
		if _, errOut, code, err := env.Lab.Exec(ctx, "cmp1", "ssh", addr, "true"); err != nil || code != 0 {
			t.Errorf("ssh from cmp1 to cmp2 (%s): exit %d, %v: %s", addr, code, err, errOut)
		}
	}) {
		t.FailNow()
	}

	t.Run("qemu of an HA VM killed with SIGKILL: the same VM runs again on the same host", func(t *testing.T) {
		before, err := env.VMFailures(ctx, "cmp1")
		if err != nil {
			t.Fatal(err)
		}
		killed := time.Now()
		if err := env.KillQemu(ctx, "cmp1", id); err != nil {
			t.Fatal(err)
		}
		back, err := env.WaitRunning(ctx, "cmp1", id, 2*time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		line, err := env.WaitConsole(ctx, id, "up boot=2 ", 2*time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("killed -> running again on cmp1 and ACTIVE in Nova: %s; the guest's own boot then: %s (%s after the kill)",
			back.Sub(killed).Round(time.Millisecond), line, time.Since(killed).Round(time.Second))
		after, err := env.VMFailures(ctx, "cmp1")
		if err != nil {
			t.Fatal(err)
		}
		if len(after) != len(before)+1 || after[len(after)-1].ReasonCode != "vm-crashed" {
			t.Errorf("history: %+v; want one new failure vm-crashed", after[len(before):])
		}
	})

	t.Run("libvirtd killed, a guest's qemu dying meanwhile: libvirtd is restarted, the monitor reconnects and the guest runs again", func(t *testing.T) {
		name, err := env.DomainName(ctx, "cmp1", id)
		if err != nil {
			t.Fatal(err)
		}
		if err := env.Lab.Kill(ctx, "cmp1", "libvirtd"); err != nil {
			t.Fatal(err)
		}
		killed := time.Now()
		if err := env.KillDomainQemu(ctx, "cmp1", name); err != nil {
			t.Fatal(err)
		}
		// The instance monitor restarts libvirtd (instances.processes), then finds the guest
		// stopped on reconnecting.
		if _, err := env.WaitRunning(ctx, "cmp1", id, 2*time.Minute); err != nil {
			t.Fatal(err)
		}
		t.Logf("running again %s after libvirtd and the guest's qemu were killed", time.Since(killed).Round(time.Millisecond))
		if _, err := env.WaitConsole(ctx, id, "up boot=3 ", 2*time.Minute); err != nil {
			t.Fatal(err)
		}
		evs, err := env.VMFailures(ctx, "cmp1")
		if err != nil || len(evs) == 0 || !strings.Contains(evs[len(evs)-1].ReasonText, "reconnecting") {
			t.Errorf("history: %+v, %v; want the last failure found on reconnecting to libvirtd", evs, err)
		}
	})

	t.Run("libvirtd that cannot be restarted: its host is disabled in Nova, and enabled again once it runs", func(t *testing.T) {
		// A libvirtd.conf libvirtd refuses to start with.
		if _, errOut, code, err := env.Lab.Exec(ctx, "cmp1", "sh", "-c", "echo 'max_clients = \"none\"' >>/etc/libvirt/libvirtd.conf"); err != nil || code != 0 {
			t.Fatalf("breaking libvirtd's configuration: exit %d, %v: %s", code, err, errOut)
		}
		if err := env.Lab.Kill(ctx, "cmp1", "libvirtd"); err != nil {
			t.Fatal(err)
		}
		killed := time.Now()
		svc, err := env.waitService(ctx, "cmp1", 2*time.Minute, func(s openstack.Service) bool {
			return !s.Enabled() && strings.HasPrefix(s.DisabledReason, "computeha: process libvirtd")
		})
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("cmp1 disabled in Nova %s after libvirtd died: %q", time.Since(killed).Round(time.Second), svc.DisabledReason)
		// The alert's metric (the shipped rule ComputehaHostProcessDown reads it).
		if err := env.WaitDaemonMetric(ctx, `computeha_host_process_down{host="cmp1",process="libvirtd"}`, func(v float64) bool { return v == 1 }, 30*time.Second); err != nil {
			t.Error(err)
		}
		if _, errOut, code, err := env.Lab.Exec(ctx, "cmp1", "sed", "-i", "/^max_clients = \"none\"$/d", "/etc/libvirt/libvirtd.conf"); err != nil || code != 0 {
			t.Fatalf("repairing libvirtd's configuration: exit %d, %v: %s", code, err, errOut)
		}
		fixed := time.Now()
		if _, err := env.waitService(ctx, "cmp1", 3*time.Minute, func(s openstack.Service) bool { return s.Enabled() && s.State == "up" }); err != nil {
			t.Fatal(err)
		}
		t.Logf("cmp1 enabled again %s after libvirtd's configuration was repaired", time.Since(fixed).Round(time.Second))
		if err := env.WaitDaemonMetricGone(ctx, `computeha_host_process_down{host="cmp1",process="libvirtd"}`, 30*time.Second); err != nil {
			t.Error(err)
		}
		if _, err := env.WaitRunning(ctx, "cmp1", id, time.Minute); err != nil {
			t.Error(err)
		}
		evs, err := env.History(ctx, "cmp1", "alert")
		if err != nil || !slices.ContainsFunc(evs, func(e HistoryEvent) bool { return e.ReasonCode == "process-down" }) {
			t.Errorf("no process-down alert in cmp1's history (%v)", err)
		}
	})

	// Restarted twice on cmp1 above (GuestMaxRestarts): its next failure moves it.
	home, other := "cmp1", "cmp2"
	t.Run("killed again beyond the limit of restarts: it runs on another host of its segment", func(t *testing.T) {
		killed := time.Now()
		if err := env.KillQemu(ctx, "cmp1", id); err != nil {
			t.Fatal(err)
		}
		if _, err := env.WaitRunning(ctx, "cmp2", id, 3*time.Minute); err != nil {
			t.Fatal(err)
		}
		home, other = "cmp2", "cmp1"
		line, err := env.WaitConsole(ctx, id, "up boot=4 ", 2*time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("killed -> running on cmp2 after %s: %s", time.Since(killed).Round(time.Millisecond), line)
		if ok, err := env.Runs(ctx, "cmp1", id); err != nil || ok {
			t.Errorf("cmp1 runs it too (%v)", err)
		}
		moves, err := env.HistoryMoves(ctx, "cmp1")
		if err != nil {
			t.Fatal(err)
		}
		if last := moves[len(moves)-1]; last.VMID != id || last.Method != "cold-migrate" || last.Result != "succeeded" {
			t.Errorf("the last move of cmp1: %+v; want guest-ha cold-migrated", last)
		}
	})

	t.Run("openstack server stop of an HA VM: it stays stopped, and nothing is taken for a failure", func(t *testing.T) {
		before, err := env.VMFailures(ctx, home)
		if err != nil {
			t.Fatal(err)
		}
		if err := env.Admin.Stop(ctx, id); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(2 * time.Minute)
		for {
			s, err := env.Nova.Server(ctx, id)
			if err == nil && s.Status == "SHUTOFF" && s.TaskState == "" {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("not SHUTOFF within 2 minutes: %+v, %v", s, err)
			}
			time.Sleep(500 * time.Millisecond)
		}
		// Long enough for a report, a restart and Nova's own power-state sync.
		time.Sleep(20 * time.Second)
		if s, err := env.Nova.Server(ctx, id); err != nil || s.Status != "SHUTOFF" {
			t.Errorf("after 20 s: %s, %v; want it still SHUTOFF", s.Status, err)
		}
		if ok, err := env.Runs(ctx, home, id); err != nil || ok {
			t.Errorf("%s runs the stopped guest again (%v)", home, err)
		}
		if after, err := env.VMFailures(ctx, home); err != nil || len(after) != len(before) {
			t.Errorf("history: %d failures before, %d after (%v); want no new failure", len(before), len(after), err)
		}
		if err := env.Admin.Start(ctx, id); err != nil {
			t.Fatal(err)
		}
		if _, err := env.WaitRunning(ctx, home, id, 2*time.Minute); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("a guest that stops feeding its watchdog is restarted", func(t *testing.T) {
		hang, err := env.Admin.ImageID(ctx, nova.GuestHangImage)
		if err != nil {
			t.Fatal(err)
		}
		hid, err := env.Admin.BootWith(ctx, nova.BootOpts{
			Name: "guest-hang", Host: "cmp2", Flavor: nova.FlavorGuest, Image: hang,
			Metadata: map[string]string{config.DefaultMetadataKey: "true"},
		})
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = env.Admin.Delete(ctx, hid) }()
		if _, err := env.Admin.Wait(ctx, hid); err != nil {
			t.Fatal(err)
		}
		if _, err := env.WaitConsole(ctx, hid, "hanging", 2*time.Minute); err != nil {
			t.Fatal(err)
		}
		hung := time.Now()
		// The watchdog fires 15 s after the last feed and pauses the guest; it boots again.
		line, err := env.WaitConsole(ctx, hid, "up boot=2 ", 2*time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("hung -> %s, %s later", line, time.Since(hung).Round(time.Second))
		found := false
		evs, err := env.VMFailures(ctx, "cmp2")
		for _, ev := range evs {
			found = found || ev.ReasonCode == "vm-watchdog"
		}
		if err != nil || !found {
			t.Errorf("no vm-watchdog failure in cmp2's history (%v): %+v", err, evs)
		}
	})

	// guest-ha runs on home at boot=5. Its disk moves to a small volume of home's that then
	// fills up: qemu pauses it on the ENOSPC of its next write (QEMU's werror=enospc).
	t.Run("an I/O error pauses an HA VM: resumed where it is once its storage has room again (the default), left paused with an alert or restarted where its policy says so", func(t *testing.T) {
		if err := env.MoveDiskToSmallVolume(ctx, home, id, 64); err != nil {
			t.Fatal(err)
		}
		defer func() {
			if err := env.DropSmallVolume(ctx, home); err != nil {
				t.Error(err)
			}
		}()
		before, err := env.VMFailures(ctx, home)
		if err != nil {
			t.Fatal(err)
		}
		fill := func() time.Duration {
			t.Helper()
			if err := env.FillVolume(ctx, home); err != nil {
				t.Fatal(err)
			}
			filled := time.Now()
			if _, err := env.WaitDomainState(ctx, home, id, "paused (I/O error)", time.Minute); err != nil {
				t.Fatal(err)
			}
			return time.Since(filled).Round(time.Millisecond)
		}
		took := fill()
		if err := env.FreeVolume(ctx, home); err != nil {
			t.Fatal(err)
		}
		freed := time.Now()
		// Resumed through Nova (paused there, then unpaused) after instances.resume_delay.
		st, err := env.WaitDomainState(ctx, home, id, "running", time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("paused on an I/O error %s after its storage filled; %s %s after the storage had room again", took, st, time.Since(freed).Round(time.Millisecond))
		if _, err := env.WaitRunning(ctx, home, id, 30*time.Second); err != nil {
			t.Error(err)
		}
		// It ran on: no new boot, and the guest never saw the failed writes.
		time.Sleep(4 * time.Second)
		if log, err := env.Admin.ConsoleLog(ctx, id); err != nil {
			t.Error(err)
		} else if lines := guestLines(log); strings.Contains(lines, "up boot=6 ") || strings.Contains(lines, "disk write failed") {
			t.Errorf("the resumed guest booted again or saw a failed write: %s", lines)
		}
		after, err := env.VMFailures(ctx, home)
		if err != nil {
			t.Fatal(err)
		}
		if len(after) != len(before)+1 || after[len(after)-1].ReasonCode != "vm-io-error" {
			t.Errorf("history: %+v; want one new failure vm-io-error", after[len(before):])
		}
		moves, err := env.HistoryMoves(ctx, home)
		if err != nil {
			t.Fatal(err)
		}
		if last := moves[len(moves)-1]; last.VMID != id || last.Method != "resume" || last.Result != "succeeded" {
			t.Errorf("the last move of %s: %+v; want guest-ha resumed", home, last)
		}

		// Its own policy (instance metadata) says leave-paused: the storage fills up again, and
		// it stays paused, with an alert, until an operator frees the storage and resumes it.
		if err := env.Admin.SetMetadata(ctx, id, map[string]string{config.DefaultIOErrorPolicyKey: string(config.IOErrorLeavePaused)}); err != nil {
			t.Fatal(err)
		}
		fill()
		if err := env.WaitDaemonMetric(ctx, fmt.Sprintf(`computeha_vm_left_paused{host=%q,vm="guest-ha (%s)"}`, home, id), func(v float64) bool { return v == 1 }, 30*time.Second); err != nil {
			t.Error(err)
		}
		time.Sleep(3 * time.Second)
		if st, err := env.DomainState(ctx, home, id); err != nil || !strings.HasPrefix(st, "paused (I/O error)") {
			t.Errorf("left paused by its policy: %q, %v; want still paused on its I/O error", st, err)
		}
		if err := env.FreeVolume(ctx, home); err != nil {
			t.Fatal(err)
		}
		if _, errOut, code, err := env.Lab.Exec(ctx, home, "virsh", "-c", "qemu:///system", "resume", id); err != nil || code != 0 {
			t.Fatalf("virsh resume on %s: exit %d, %v: %s", home, code, err, errOut)
		}
		if _, err := env.WaitDomainState(ctx, home, id, "running", 30*time.Second); err != nil {
			t.Fatal(err)
		}

		// Its own policy says restart: the storage fills up again, and it boots again, from its
		// disk on the shared storage, which Nova's definition names.
		if err := env.Admin.SetMetadata(ctx, id, map[string]string{config.DefaultIOErrorPolicyKey: string(config.IOErrorRestart)}); err != nil {
			t.Fatal(err)
		}
		filled := time.Now()
		took = fill()
		line, err := env.WaitConsole(ctx, id, "up boot=6 ", 2*time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := env.WaitRunning(ctx, home, id, time.Minute); err != nil {
			t.Fatal(err)
		}
		t.Logf("paused %s after its storage filled again; restarted: %s (%s after the fill)", took, line, time.Since(filled).Round(time.Second))
		if moves, err = env.HistoryMoves(ctx, home); err != nil {
			t.Fatal(err)
		}
		if last := moves[len(moves)-1]; last.VMID != id || last.Method != "restart" || last.Result != "succeeded" {
			t.Errorf("the last move of %s: %+v; want guest-ha restarted", home, last)
		}
	})

	t.Run("a project member's signal recovers its own server; another project's is not found; a bad request changes nothing", func(t *testing.T) {
		demo, err := env.Plane.ClientAs(ctx, nova.CloudDemo)
		if err != nil {
			t.Fatal(err)
		}
		did, err := demo.BootWith(ctx, nova.BootOpts{
			Name: "guest-demo", Flavor: nova.FlavorGuest, Image: image,
			Metadata: map[string]string{config.DefaultMetadataKey: "true"},
		})
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = env.Admin.Delete(ctx, did) }()
		host, err := env.Admin.Wait(ctx, did)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := env.WaitConsole(ctx, did, "up boot=1 ", 2*time.Minute); err != nil {
			t.Fatal(err)
		}
		signal := func(server string) (string, int) {
			out, errOut, code, err := env.Lab.Exec(ctx, "ctl1", filepath.Join(env.Bin, "computeha"), "signal", server,
				"--reason", "the application's health check failed", "--url", APIURL(),
				"--os-cloud", nova.CloudDemo, "--clouds-yaml", env.Plane.CloudsYAML())
			if err != nil {
				t.Fatal(err)
			}
			return strings.TrimSpace(out + errOut), code
		}
		if out, code := signal(id); code == 0 || !strings.Contains(out, "404") {
			t.Errorf("demo signalling admin's server: exit %d: %s; want refused, not found", code, out)
		}
		// Garbage, straight to the API with demo's token: 4xx, nothing done.
		hc := &http.Client{Transport: nova.NetNSTransport(CloudNS())}
		for _, body := range []string{`{"reason": 5}`, `not json`, `{"reason": "x", "force": true}`} {
			req, _ := http.NewRequestWithContext(ctx, http.MethodPost, APIURL()+"/v1/servers/"+did+"/signal", strings.NewReader(body))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("X-Auth-Token", demo.Token())
			resp, err := hc.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(b), `"error"`) {
				t.Errorf("body %s: %d %s; want 400 with a JSON error", body, resp.StatusCode, b)
			}
		}
		// Given the time a taken signal needs to be recorded (the gathering, a read of Nova).
		time.Sleep(5 * time.Second)
		if evs, err := env.VMFailures(ctx, host); err != nil || slices.ContainsFunc(evs, func(e HistoryEvent) bool { return e.ReasonCode == "vm-signal" }) {
			t.Errorf("history after refused signals: %+v, %v; want no signal", evs, err)
		}
		out, code := signal(did)
		if code != 0 || !strings.HasPrefix(out, "accepted") {
			t.Fatalf("demo signalling its own server: exit %d: %s", code, out)
		}
		line, err := env.WaitConsole(ctx, did, "up boot=2 ", 2*time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("signalled -> %s", line)
		if _, err := env.WaitRunning(ctx, host, did, time.Minute); err != nil {
			t.Error(err)
		}
	})

	// Idle guests (their boot sector halts the CPU): real qemu guests under Nova, at little cost.
	t.Run("20 HA VMs whose qemu die all at once all run again", func(t *testing.T) {
		const n = 20
		idle, err := env.Admin.ImageID(ctx, nova.GuestIdleImage)
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		defer func() {
			for _, id := range ids {
				_ = env.Admin.Delete(ctx, id)
			}
		}()
		asked := time.Now()
		for i := range n {
			id, err := env.Admin.BootWith(ctx, nova.BootOpts{
				Name: fmt.Sprintf("burst-%02d", i), Host: other, Flavor: nova.FlavorGuest, Image: idle,
				Metadata: map[string]string{config.DefaultMetadataKey: "true"},
			})
			if err != nil {
				t.Fatal(err)
			}
			ids = append(ids, id)
		}
		for _, id := range ids {
			if _, err := env.WaitRunning(ctx, other, id, 5*time.Minute); err != nil {
				t.Fatal(err)
			}
		}
		t.Logf("%d idle guests running on %s, %s after they were asked for", n, other, time.Since(asked).Round(time.Second))
		killed := time.Now()
		if err := env.KillAllQemu(ctx, other); err != nil {
			t.Fatal(err)
		}
		for _, id := range ids {
			if _, err := env.WaitRunning(ctx, other, id, 5*time.Minute); err != nil {
				t.Fatal(err)
			}
		}
		t.Logf("all %d running again on %s and ACTIVE in Nova %s after the kill", n, other, time.Since(killed).Round(100*time.Millisecond))
		moves, err := env.HistoryMoves(ctx, other)
		if err != nil {
			t.Fatal(err)
		}
		restarted := map[string]bool{}
		for _, m := range moves {
			if slices.Contains(ids, m.VMID) && m.Method == "restart" && m.Result == "succeeded" && m.Start.After(killed) {
				restarted[m.VMID] = true
			}
		}
		if len(restarted) != n {
			t.Errorf("the history has %d of the %d VMs restarted after the kill; want each", len(restarted), n)
		}
	})

	t.Run("its host loses power: fenced, and the guest boots on the other host from its own disk", func(t *testing.T) {
		tl, err := env.PowerLoss(ctx, home, []VM{{ID: id, Name: "guest-ha", Host: home, HA: true}}, 5*time.Minute, testLog{t})
		if err != nil {
			t.Fatal(err)
		}
		t.Log(tl.Summary())
		for _, v := range tl.Violations {
			t.Error(v)
		}
		if tl.AllActive == 0 {
			t.Fatal("the guest was not ACTIVE elsewhere within 5 minutes")
		}
		// boot=7 (after the restarts, the move, the stop and the I/O error above): the guest
		// read the counter its earlier boots wrote, so it booted from the same disk, not a new
		// one.
		line, err := env.WaitConsole(ctx, id, "up boot=7 ", 2*time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("console: %s", line)
		if ok, err := env.Runs(ctx, other, id); err != nil || !ok {
			t.Errorf("%s's libvirtd does not run the evacuated guest (%v)", other, err)
		}
	})

	t.Run("the host back, the guest runs on untouched: its disk on the shared storage is not cleaned up", func(t *testing.T) {
		if _, err := env.PowerOn(ctx, home, 5*time.Minute, testLog{t}); err != nil {
			t.Fatal(err)
		}
		// nova-compute on the host back has cleaned up what was evacuated from it by now (it
		// does so before it reports up); a guest whose disk it deleted would fail its next
		// write.
		time.Sleep(10 * time.Second)
		if ok, err := env.Runs(ctx, other, id); err != nil || !ok {
			t.Errorf("the guest no longer runs on %s (%v)", other, err)
		}
		if ok, err := env.Runs(ctx, home, id); err != nil || ok {
			t.Errorf("%s runs the guest again (%v)", home, err)
		}
		log, err := env.Admin.ConsoleLog(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if lines := guestLines(log); strings.Contains(lines, "disk write failed") {
			t.Errorf("the guest's disk failed under it: %s", lines)
		}
	})
}
