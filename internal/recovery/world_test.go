package recovery

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/computeha/computeha/crm"
	"github.com/computeha/computeha/internal/clock"
	"github.com/computeha/computeha/internal/config"
	"github.com/computeha/computeha/internal/history"
	"github.com/computeha/computeha/internal/openstack"
)

// world is a cloud of four computes in one segment, a Pacemaker that knows them, and an
// engine. Tests run it inside a synctest bubble (bubble): its clock is the bubble's, which
// moves only when every goroutine of the test waits, so a recovery of minutes runs in
// microseconds and no wait depends on the machine's load.
type world struct {
	t       *testing.T
	cfg     *config.Config
	nova    *openstack.Fake
	cluster *crm.Fake
	clock   clock.Clock
	rec     *MemRecorder
	eng     *Engine
}

// bubble runs f in a synctest bubble.
func bubble(t *testing.T, f func(t *testing.T)) {
	t.Helper()
	synctest.Test(t, f)
}

const worldConfig = `
cloud: test
segments:
  seg-a:
    hosts: [cmp1, cmp2, cmp3, cmp4]
    recovery_method: %s
    reserved_hosts: [%s]
policy:
  default: off
  flavor_key: evacuable
evacuation:
  concurrency: 4
  retries: 2
  retry_backoff: {initial: 1s, max: 2s}
  confirm_timeout: 1m
`

func newWorld(t *testing.T, method, reserved string, extra ...string) *world {
	t.Helper()
	cfg, err := config.Parse([]byte(fmt.Sprintf(worldConfig, method, reserved) + strings.Join(extra, "\n")))
	if err != nil {
		t.Fatal(err)
	}
	c := clock.Real{}
	w := &world{
		t: t, cfg: cfg, nova: openstack.NewFake(c.Now), cluster: crm.NewFake(c.Now, "cmp1", "cmp2", "cmp3", "cmp4"),
		clock: c, rec: NewMemRecorder(c.Now),
	}
	for _, h := range []string{"cmp1", "cmp2", "cmp3", "cmp4"} {
		w.nova.AddCompute(h, "nova")
		w.roomy(h, 16)
	}
	if reserved != "" {
		s, _ := w.nova.FindComputeService(context.Background(), reserved)
		_, _ = w.nova.DisableService(context.Background(), s.ID, "reserved for failover")
	}
	w.eng = New(Options{Config: cfg, Nova: w.nova, Cluster: w.cluster, Clock: c, Poll: time.Second})
	return w
}

// roomy gives host vcpus vCPUs, 2 GB of RAM each, and 500 GB of disk.
func (w *world) roomy(host string, vcpus int64) {
	w.nova.SetResources(host, map[string]openstack.Resource{
		"VCPU":      {Total: vcpus, AllocationRatio: 1},
		"MEMORY_MB": {Total: vcpus * 2048, AllocationRatio: 1},
		"DISK_GB":   {Total: 500, AllocationRatio: 1},
	})
}

// vm describes a server to boot.
type vm struct {
	name   string
	ha     bool
	status string
	image  string // "" for a volume-backed server
	meta   map[string]string
	prio   int
}

func (w *world) boot(host string, vms ...vm) []openstack.Server {
	var out []openstack.Server
	for _, v := range vms {
		specs := map[string]string{}
		if v.ha {
			specs["evacuable"] = "true"
		}
		meta := map[string]string{}
		for k, val := range v.meta {
			meta[k] = val
		}
		if v.prio != 0 {
			meta["restart_priority"] = fmt.Sprint(v.prio)
		}
		s := w.nova.AddServer(openstack.Server{
			Name: v.name, Host: host, ProjectID: "p1", Status: v.status, ImageID: v.image, Metadata: meta,
			Flavor: openstack.Flavor{OriginalName: "m1.small", VCPUs: 1, RAMMB: 512, DiskGB: 1, ExtraSpecs: specs},
		})
		out = append(out, s)
	}
	return out
}

// ha is n HA VMs named haN, image-backed.
func ha(n int) []vm {
	out := make([]vm, n)
	for i := range out {
		out[i] = vm{name: fmt.Sprintf("ha%d", i), ha: true, image: "img"}
	}
	return out
}

// fenceCmp1 takes cmp1, the host the tests fail, down in Nova as fence_nova does (forced
// down, disabled).
func (w *world) fenceCmp1() {
	const host = "cmp1"
	w.nova.KillCompute(host)
	s, _ := w.nova.FindComputeService(context.Background(), host)
	_, _ = w.nova.ForceDown(context.Background(), s.ID)
	_, _ = w.nova.DisableService(context.Background(), s.ID, "computeha: fenced")
}

func (w *world) run(source string, sit Situation) Report {
	w.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Hour) // the bubble's time
	defer cancel()
	rep, err := w.eng.Run(ctx, Job{Source: NewNames(w.cfg, nil).ByNode(source), Situation: sit, Recorder: w.rec})
	if err != nil {
		w.t.Fatalf("recovery of %s: %v", source, err)
	}
	return rep
}

// runFromEarlierReads runs the recovery of cmp1, fenced, from reads made before meanwhile
// changed Nova (and may change the reads): what a daemon that resumes sees of the requests of
// the daemon before it.
func (w *world) runFromEarlierReads(meanwhile func(r *Reads)) Report {
	w.t.Helper()
	const source = "cmp1"
	src := NewNames(w.cfg, nil).ByNode(source)
	r, err := w.eng.Read(context.Background(), src)
	if err != nil {
		w.t.Fatal(err)
	}
	meanwhile(r)
	rep, err := w.eng.Run(context.Background(), Job{Source: src, Situation: HostFenced, Reads: r, Recorder: w.rec})
	if err != nil {
		w.t.Fatalf("recovery of %s: %v", source, err)
	}
	return rep
}

func (w *world) server(id string) openstack.Server {
	w.t.Helper()
	s, err := w.nova.Server(context.Background(), id)
	if err != nil {
		w.t.Fatal(err)
	}
	return s
}

// evacuations counts the evacuation requests per server.
func (w *world) evacuations() map[string]int {
	out := map[string]int{}
	for _, c := range w.nova.Calls() {
		if f := strings.Fields(c); len(f) >= 2 && f[0] == "Evacuate" {
			out[f[1]]++
		}
	}
	return out
}

// count is how many calls of method were made.
func (w *world) count(method string) int {
	n := 0
	for _, c := range w.nova.Calls() {
		if f := strings.Fields(c); len(f) >= 1 && f[0] == method {
			n++
		}
	}
	return n
}

// result is the report of the VM named name.
func result(rep Report, name string) VMReport {
	for _, v := range rep.VMs {
		if v.Server.Name == name {
			return v
		}
	}
	return VMReport{}
}

// decided reports whether the recorder holds an event with code.
func (w *world) decided(code Code) bool {
	for _, e := range w.rec.Events() {
		if e.Reason.Code == code {
			return true
		}
	}
	return false
}

func (w *world) moves(result history.MoveResult) []history.Move {
	var out []history.Move
	for _, m := range w.rec.Moves() {
		if m.Result == result {
			out = append(out, m)
		}
	}
	return out
}
