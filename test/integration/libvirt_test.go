//go:build integration

package integration

import (
	"context"
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"

	golibvirt "github.com/digitalocean/go-libvirt"
)

// libvirtLab is a private libvirtd (test driver) and a connection to it that
// stays open for the whole test: the test:///default driver keeps its state
// only while at least one client is connected.
type libvirtLab struct {
	uri string
	lv  *golibvirt.Libvirt
}

func startLibvirt(t *testing.T) *libvirtLab {
	t.Helper()
	dir := t.TempDir()
	sock := strings.TrimSpace(harness(t, nil, "libvirtd.sh", "start", dir))
	t.Cleanup(func() { harness(t, nil, "libvirtd.sh", "stop", dir) })
	uri := "test+unix:///default?socket=" + url.QueryEscape(sock)
	u, err := url.Parse(uri)
	if err != nil {
		t.Fatal(err)
	}
	lv, err := golibvirt.ConnectToURI(u)
	if err != nil {
		t.Fatalf("connecting to %s: %v", uri, err)
	}
	t.Cleanup(func() { _ = lv.Disconnect() })
	return &libvirtLab{uri: uri, lv: lv}
}

// define creates and starts a test-driver domain.
func (l *libvirtLab) define(t *testing.T, name, uuid string) {
	t.Helper()
	xml := fmt.Sprintf(`<domain type="test"><name>%s</name><uuid>%s</uuid><memory>65536</memory>`+
		`<vcpu>1</vcpu><os><type>hvm</type></os></domain>`, name, uuid)
	dom, err := l.lv.DomainDefineXML(xml)
	if err != nil {
		t.Fatalf("define %s: %v", name, err)
	}
	if err := l.lv.DomainCreate(dom); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
}

// state is what libvirtd itself says of a domain.
func (l *libvirtLab) state(t *testing.T, name string) golibvirt.DomainState {
	t.Helper()
	dom, err := l.lv.DomainLookupByName(name)
	if err != nil {
		t.Fatal(err)
	}
	st, _, err := l.lv.DomainGetState(dom, 0)
	if err != nil {
		t.Fatal(err)
	}
	return golibvirt.DomainState(st)
}

func (l *libvirtLab) fence(t *testing.T, stdin string) run {
	t.Helper()
	r := execute(t, time.Minute, "uri="+l.uri+"\n"+stdin, agentPath("fence_libvirt"))
	t.Logf("fence_libvirt %q: %s", strings.ReplaceAll(stdin, "\n", " "), r)
	return r
}

const (
	vm1UUID = "4dea22b3-1d52-d8f3-2516-782e98ab3fa0"
	vm2UUID = "5ec0fa54-86ab-4b0c-9a8f-2c9d0b6c8a11"
)

func TestFenceLibvirtAgainstLibvirtd(t *testing.T) {
	lab := startLibvirt(t)
	lab.define(t, "vm1", vm1UUID)
	lab.define(t, "vm2", vm2UUID)

	events, err := lab.lv.LifecycleEvents(context.Background())
	if err != nil {
		t.Fatal(err)
	}

	steps := []struct {
		name     string
		stdin    string
		wantCode int
		wantOut  string
		domain   string
		want     golibvirt.DomainState
	}{
		{"status of a running domain", "action=status\nplug=vm1\n", 0, "Status: ON\n", "vm1", golibvirt.DomainRunning},
		{"off destroys the domain", "action=off\nplug=vm1\n", 0, "Success: Powered OFF\n", "vm1", golibvirt.DomainShutoff},
		{"status after off", "action=status\nplug=vm1\n", 2, "Status: OFF\n", "vm1", golibvirt.DomainShutoff},
		{"off again", "action=off\nport=vm1\n", 0, "Success: Already OFF\n", "vm1", golibvirt.DomainShutoff},
		{"on starts the domain", "action=on\nplug=vm1\n", 0, "Success: Powered ON\n", "vm1", golibvirt.DomainRunning},
		{"reboot by UUID", "action=reboot\nplug=" + vm2UUID + "\n", 0, "Success: Rebooted\n", "vm2", golibvirt.DomainRunning},
		{"the other domain was not touched by vm1's fencing", "action=status\nplug=test\n", 0, "Status: ON\n", "test", golibvirt.DomainRunning},
		{"monitor", "action=monitor\n", 0, "", "vm1", golibvirt.DomainRunning},
		{"an unknown domain fails", "action=off\nplug=no-such-vm\n", 1, "", "vm1", golibvirt.DomainRunning},
		{"off without a plug fails", "action=off\n", 1, "", "vm1", golibvirt.DomainRunning},
	}
	for _, s := range steps {
		r := lab.fence(t, s.stdin)
		if r.code != s.wantCode {
			t.Errorf("%s: exit %d, want %d\n%s", s.name, r.code, s.wantCode, r)
		}
		if s.wantCode == 0 && r.stdout != s.wantOut {
			t.Errorf("%s: stdout %q, want %q", s.name, r.stdout, s.wantOut)
		}
		if got := lab.state(t, s.domain); got != s.want {
			t.Errorf("%s: libvirtd says %s is in state %d, want %d", s.name, s.domain, got, s.want)
		}
	}
	if r := lab.fence(t, "action=off\nplug=no-such-vm\n"); !strings.Contains(r.stderr, "no such plug") {
		t.Errorf("an unknown domain should be named as such: %s", r)
	}

	// libvirtd's own lifecycle events show vm2's reboot as a stop then a start.
	var vm2 []golibvirt.DomainEventType
	timeout := time.After(5 * time.Second)
collect:
	for {
		select {
		case ev := <-events:
			if ev.Dom.Name == "vm2" {
				vm2 = append(vm2, golibvirt.DomainEventType(ev.Event))
			}
		case <-timeout:
			break collect
		}
		if len(vm2) == 2 {
			break
		}
	}
	if len(vm2) != 2 || vm2[0] != golibvirt.DomainEventStopped || vm2[1] != golibvirt.DomainEventStarted {
		t.Errorf("vm2 lifecycle events = %v, want stopped (%d) then started (%d)", vm2, golibvirt.DomainEventStopped, golibvirt.DomainEventStarted)
	}
}

func TestFenceLibvirtListsDomains(t *testing.T) {
	lab := startLibvirt(t)
	lab.define(t, "vm1", vm1UUID)
	r := lab.fence(t, "action=list\n")
	if r.code != 0 || !strings.Contains(r.stdout, "vm1,"+vm1UUID+"\n") || !strings.Contains(r.stdout, "test,") {
		t.Errorf("list: %s", r)
	}
	dom, err := lab.lv.DomainLookupByName("vm1")
	if err != nil {
		t.Fatal(err)
	}
	if err := lab.lv.DomainDestroy(dom); err != nil {
		t.Fatal(err)
	}
	r = lab.fence(t, "action=list-status\n")
	if r.code != 0 || !strings.Contains(r.stdout, "vm1,"+vm1UUID+",OFF\n") || !strings.Contains(r.stdout, ",ON\n") {
		t.Errorf("list-status: %s", r)
	}
}

func TestFenceLibvirtFromTheCommandLine(t *testing.T) {
	lab := startLibvirt(t)
	lab.define(t, "vm1", vm1UUID)
	r := execute(t, time.Minute, "", agentPath("fence_libvirt"), "--uri="+lab.uri, "-n", "vm1", "-o", "off")
	if r.code != 0 || lab.state(t, "vm1") != golibvirt.DomainShutoff {
		t.Errorf("off from the command line: %s", r)
	}
}

func TestFenceLibvirtUnreachableDaemonFailsFast(t *testing.T) {
	uri := "test+unix:///default?socket=" + url.QueryEscape(t.TempDir()+"/nothing-here")
	r := execute(t, time.Minute, "action=status\nplug=vm1\nuri="+uri+"\n", agentPath("fence_libvirt"))
	if r.code != 1 || !strings.Contains(r.stderr, "Unable to connect/login to fencing device") {
		t.Errorf("%s", r)
	}
	if r.elapsed > 6*time.Second {
		t.Errorf("took %s, more than login_timeout", r.elapsed)
	}
}
