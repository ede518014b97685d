//go:build integration

package integration

import (
	"encoding/xml"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// pcmkNode is a single-node Pacemaker cluster in its own network and mount
// namespaces, where /usr/sbin holds our agents (as packages install them)
// without touching the machine's /usr/sbin.
type pcmkNode struct {
	dir   string
	netns string
}

func startPacemaker(t *testing.T) *pcmkNode {
	t.Helper()
	n := &pcmkNode{dir: t.TempDir(), netns: "chait" + strconv.Itoa(os.Getpid()%100000)}
	env := []string{"PCMK_NETNS=" + n.netns}
	start := time.Now()
	t.Cleanup(func() { harness(t, env, "pcmk.sh", "down", n.dir) })
	harness(t, env, "pcmk.sh", "up", n.dir, binDir)
	t.Logf("pacemaker node up in %s", time.Since(start).Round(time.Millisecond))
	return n
}

// exec runs a command inside the node.
func (n *pcmkNode) exec(t *testing.T, timeout time.Duration, args ...string) run {
	t.Helper()
	r := execute(t, timeout, "", filepath.Join(repoRoot, "test", "harness", "pcmk.sh"), append([]string{"exec", n.dir}, args...)...)
	t.Logf("%q: %s", args, r)
	return r
}

// fencingHistory is stonith_admin's XML history of one target.
type fencingHistory struct {
	Events []struct {
		Action string `xml:"action,attr"`
		Target string `xml:"target,attr"`
		Status string `xml:"status,attr"`
	} `xml:"list>fence_event"`
}

func TestPacemaker(t *testing.T) {
	node := startPacemaker(t)
	pw := filepath.Join(node.dir, "bmc-password")
	if err := os.WriteFile(pw, []byte(bmcPassword+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}

	t.Run("our agents are visible to Pacemaker as /usr/sbin/fence_*", func(t *testing.T) {
		for _, agent := range []string{"fence_ipmi", "fence_libvirt"} {
			r := node.exec(t, time.Minute, "stonith_admin", "--metadata", "--agent", agent)
			if r.code != 0 || !strings.Contains(r.stdout, `<resource-agent name="`+agent+`"`) {
				t.Errorf("stonith_admin --metadata --agent %s: %s", agent, r)
			}
		}
	})

	t.Run("pcs -f creates stonith devices of our agents without --force", func(t *testing.T) {
		cib := filepath.Join(node.dir, "offline-cib.xml")
		if r := node.exec(t, time.Minute, "sh", "-c", "cibadmin --empty > "+cib); r.code != 0 {
			t.Fatalf("cibadmin --empty: %s", r)
		}
		ok := [][]string{
			{
				"stonith", "create", "ipmi-c1", "fence_ipmi", "ip=192.0.2.10", "username=admin",
				"password_script=cat /etc/computeha/bmc-c1", "lanplus=1", "cipher=3", "pcmk_host_list=compute1",
			},
			{
				"stonith", "create", "ipmi-c2", "fence_ipmi", "ipaddr=192.0.2.11", "login=admin",
				"passwd_script=cat /etc/computeha/bmc-c2", "method=onoff", "power_timeout=10", "pcmk_host_list=compute2",
			},
			{"stonith", "create", "virt-c3", "fence_libvirt", "uri=qemu+tcp://192.0.2.1/system", "pcmk_host_map=compute3:c3-domain"},
		}
		for _, args := range ok {
			if r := node.exec(t, time.Minute, append([]string{"pcs", "-f", cib}, args...)...); r.code != 0 {
				t.Errorf("pcs %q: %s", args, r)
			}
		}
		bad := []struct {
			args []string
			want string
		}{
			{[]string{"stonith", "create", "no-ip", "fence_ipmi", "username=admin", "password_script=true"}, "ip"},
			{[]string{"stonith", "create", "typo", "fence_ipmi", "ip=192.0.2.10", "ipprot=623", "password_script=true"}, "ipprot"},
		}
		for _, b := range bad {
			r := node.exec(t, time.Minute, append([]string{"pcs", "-f", cib}, b.args...)...)
			if r.code == 0 || !strings.Contains(r.stderr+r.stdout, b.want) {
				t.Errorf("pcs %q should fail naming %q: %s", b.args, b.want, r)
			}
		}
		data, err := os.ReadFile(cib)
		if err != nil {
			t.Fatal(err)
		}
		for _, want := range []string{`type="fence_ipmi"`, `type="fence_libvirt"`, `name="password_script" value="cat /etc/computeha/bmc-c1"`} {
			if !strings.Contains(string(data), want) {
				t.Errorf("the CIB lacks %s", want)
			}
		}
	})

	t.Run("stonith_admin --reboot runs fence_ipmi and the BMC powers the host off and on", func(t *testing.T) {
		b := startBMC(t, "compute1", node.netns)
		if r := node.exec(t, time.Minute, "pcs", "stonith", "create", "ipmi-compute1", "fence_ipmi",
			"ip=127.0.0.1", "ipport="+strconv.Itoa(b.port), "username=admin", "password_script=cat "+pw,
			"lanplus=1", "cipher=3", "pcmk_host_list=compute1"); r.code != 0 {
			t.Fatalf("pcs stonith create: %s", r)
		}
		start := time.Now()
		if r := node.exec(t, 2*time.Minute, "stonith_admin", "--reboot", "compute1", "--timeout", "60"); r.code != 0 {
			t.Fatalf("stonith_admin --reboot: %s", r)
		}
		t.Logf("fenced (reboot) in %s", time.Since(start).Round(time.Millisecond))
		if diff := cmp.Diff([]string{"off", "on"}, b.events(t)); diff != "" {
			t.Errorf("BMC power changes (-want +got):\n%s", diff)
		}
		if got := b.power(t); got != "on" {
			t.Errorf("host power after reboot is %s", got)
		}

		r := node.exec(t, time.Minute, "stonith_admin", "--history", "compute1", "--output-as=xml")
		var h fencingHistory
		if err := xml.Unmarshal([]byte(r.stdout), &h); err != nil {
			t.Fatalf("fencing history: %v\n%s", err, r)
		}
		if len(h.Events) == 0 || h.Events[0].Action != "reboot" || h.Events[0].Status != "success" || h.Events[0].Target != "compute1" {
			t.Errorf("Pacemaker's fencing history does not record the reboot of compute1 as a success: %+v", h.Events)
		}

		if r := node.exec(t, 2*time.Minute, "stonith_admin", "--fence", "compute1", "--timeout", "60"); r.code != 0 {
			t.Fatalf("stonith_admin --fence: %s", r)
		}
		if got := b.power(t); got != "off" {
			t.Errorf("host power after --fence is %s, want off", got)
		}
	})

	t.Run("a fence_ipmi device with a wrong password fails the fencing request", func(t *testing.T) {
		b := startBMC(t, "compute2", node.netns)
		if r := node.exec(t, time.Minute, "pcs", "stonith", "create", "ipmi-compute2", "fence_ipmi",
			"ip=127.0.0.1", "ipport="+strconv.Itoa(b.port), "username=admin", "password_script=echo wrong-password",
			"lanplus=1", "cipher=3", "pcmk_host_list=compute2"); r.code != 0 {
			t.Fatalf("pcs stonith create: %s", r)
		}
		if r := node.exec(t, 2*time.Minute, "stonith_admin", "--fence", "compute2", "--timeout", "20"); r.code == 0 {
			t.Errorf("fencing with a wrong password reported success: %s", r)
		}
		if got := b.power(t); got != "on" {
			t.Errorf("host power is %s, want on", got)
		}
	})
}
