package evacd

import (
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/computeha/computeha/internal/alert"
	"github.com/computeha/computeha/internal/config"
	"github.com/computeha/computeha/internal/openstack"
)

func TestTheSegmentsHeadroomIsServedAsMetrics(t *testing.T) {
	w := newWorld(t, "auto", "cmp4") // cmp4 held in reserve: disabled, a target all the same
	w.cfg.Metrics.Listen = "127.0.0.1:0"
	w.cfg.Metrics.CapacityInterval = time.Minute
	w.nova.SetResources("cmp1", map[string]openstack.Resource{
		"VCPU":      {Total: 16, AllocationRatio: 1, Used: 10},
		"MEMORY_MB": {Total: 32768, AllocationRatio: 1, Used: 16384},
		"DISK_GB":   {Total: 500, AllocationRatio: 1, Used: 100},
	})
	w.disable(t, "cmp3") // an operator's: takes no VMs, may still fail
	names := []string{"computeha_segment_headroom_vcpus", "computeha_segment_headroom_memory_bytes", "computeha_segment_headroom_disk_bytes"}
	w.run(t, 5*time.Second, func() bool {
		n, err := testutil.GatherAndCount(w.metrics.Registry(), names...)
		return err == nil && n == 3
	})
	// Free on the targets: cmp1 6 vCPUs, 16 GiB, 400 GB; cmp2 and cmp4 16, 32 GiB, 500 GB.
	// Losing cmp1 leaves 32 vCPUs for its 10 (22), 64 GiB for its 16 (48), 1000 GB for its
	// 100 (900); losing cmp2 or cmp4 leaves 22 vCPUs, 48 GiB, 900 GB; losing cmp3 more.
	want := `
# HELP computeha_segment_headroom_disk_bytes Disk a segment has left under its admission policy (segments.NAME.admission; n+1 by default: after losing the host whose loss costs it most, its VMs placed on the segment's other hosts, reserved ones included); below 0, the segment no longer meets its policy.
# TYPE computeha_segment_headroom_disk_bytes gauge
computeha_segment_headroom_disk_bytes{segment="seg-a"} 9.663676416e+11
# HELP computeha_segment_headroom_memory_bytes Memory a segment has left under its admission policy (segments.NAME.admission; n+1 by default: after losing the host whose loss costs it most, its VMs placed on the segment's other hosts, reserved ones included); below 0, the segment no longer meets its policy.
# TYPE computeha_segment_headroom_memory_bytes gauge
computeha_segment_headroom_memory_bytes{segment="seg-a"} 5.1539607552e+10
# HELP computeha_segment_headroom_vcpus vCPUs a segment has left under its admission policy (segments.NAME.admission; n+1 by default: after losing the host whose loss costs it most, its VMs placed on the segment's other hosts, reserved ones included); below 0, the segment no longer meets its policy.
# TYPE computeha_segment_headroom_vcpus gauge
computeha_segment_headroom_vcpus{segment="seg-a"} 22
`
	if err := testutil.GatherAndCompare(w.metrics.Registry(), strings.NewReader(want), names...); err != nil {
		t.Error(err)
	}
}

func TestNoHeadroomIsReadWithoutTheMetricsEndpoint(t *testing.T) {
	w := newWorld(t, "auto", "")
	w.cfg.Metrics.CapacityInterval = time.Minute // but no listen address
	w.run(t, 200*time.Millisecond, func() bool { return false })
	if n, err := testutil.GatherAndCount(w.metrics.Registry(), "computeha_segment_headroom_vcpus"); err != nil || n != 0 {
		t.Errorf("%d headroom series without a metrics endpoint (%v)", n, err)
	}
}

func TestASegmentWithoutHeadroomIsShortForTheAlerts(t *testing.T) {
	w := newWorld(t, "auto", "")
	w.cfg.Alerts.Command = &config.AlertCommand{Argv: []string{"/bin/true"}, Timeout: time.Second} // no metrics endpoint
	for _, h := range []string{"cmp1", "cmp2", "cmp3", "cmp4"} {
		w.nova.SetResources(h, map[string]openstack.Resource{
			"VCPU":      {Total: 16, AllocationRatio: 1, Used: 12},
			"MEMORY_MB": {Total: 32768, AllocationRatio: 1},
			"DISK_GB":   {Total: 500, AllocationRatio: 1},
		})
	}
	// Losing any host: 3 × 4 vCPUs free for its 12, none left.
	w.run(t, 5*time.Second, func() bool { return w.daemon != nil && w.daemon.AlertState().Capacity["seg-a"] != "" })
	if got := w.daemon.AlertState().Capacity; got["seg-a"] != alert.CapacityOK {
		t.Errorf("capacity %v, want seg-a ok at exactly zero headroom", got)
	}
	w.nova.SetResources("cmp1", map[string]openstack.Resource{
		"VCPU":      {Total: 16, AllocationRatio: 1, Used: 13},
		"MEMORY_MB": {Total: 32768, AllocationRatio: 1},
		"DISK_GB":   {Total: 500, AllocationRatio: 1},
	})
	w.cfg.Metrics.CapacityInterval = config.MinCapacityInterval
	w.run(t, 5*time.Second, func() bool { return w.daemon != nil && w.daemon.AlertState().Capacity["seg-a"] == alert.CapacityShort })
	if got := w.daemon.AlertState().Capacity; got["seg-a"] != alert.CapacityShort {
		t.Errorf("capacity %v, want seg-a short", got)
	}
}
