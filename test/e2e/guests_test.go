//go:build e2e

package e2e

import (
	"strings"
	"testing"
	"time"

	"github.com/computeha/computeha/internal/config"
	"github.com/computeha/computeha/test/lab"
	"github.com/computeha/computeha/test/nova"
)

// TestGuests runs real qemu guests under Nova's libvirt driver on the lab's computes (each with
// a libvirtd of its own, instance files on the shared storage): a guest boots through Nova and
// runs where Nova says; its host loses power, is fenced, and the guest boots on the other host
// from its own disk; the host comes back and the guest is left alone.
func TestGuests(t *testing.T) {
	ctx, env := upWith(t, 25*time.Minute, Options{Guests: true, Computes: 2})
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
	vms := []VM{{ID: id, Name: "guest-ha", Host: "cmp1", HA: true}}

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
	}) {
		t.FailNow()
	}

	t.Run("its host loses power: fenced, and the guest boots on the other host from its own disk", func(t *testing.T) {
		tl, err := env.PowerLoss(ctx, "cmp1", vms, 5*time.Minute, testLog{t})
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
		// boot=2: the guest read the counter its first boot wrote, so it booted from the
		// same disk, not a new one.
		line, err := env.WaitConsole(ctx, id, "up boot=2 ", 2*time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("console: %s", line)
		if ok, err := env.Runs(ctx, "cmp2", id); err != nil || !ok {
			t.Errorf("cmp2's libvirtd does not run the evacuated guest (%v)", err)
		}
	})

	t.Run("the host back, the guest runs on untouched: its disk on the shared storage is not cleaned up", func(t *testing.T) {
		if _, err := env.PowerOn(ctx, "cmp1", 5*time.Minute, testLog{t}); err != nil {
			t.Fatal(err)
		}
		// nova-compute on cmp1 has cleaned up what was evacuated from it by now (it does so
		// before it reports up); a guest whose disk it deleted would fail its next write.
		time.Sleep(10 * time.Second)
		if ok, err := env.Runs(ctx, "cmp2", id); err != nil || !ok {
			t.Errorf("the guest no longer runs on cmp2 (%v)", err)
		}
		if ok, err := env.Runs(ctx, "cmp1", id); err != nil || ok {
			t.Errorf("cmp1 runs the guest again (%v)", err)
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
