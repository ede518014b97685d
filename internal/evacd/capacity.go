package evacd

import (
	"context"
	"sync"
	"time"

	"github.com/computeha/computeha/internal/plan"
	"github.com/computeha/computeha/internal/recovery"
)

// capacity keeps each segment's headroom (plan.HeadroomFor) for the metrics and the alerts:
// what the segment has left under its admission policy (by default, after losing its
// costliest host), refreshed every
// metrics.capacity_interval from Nova's hypervisors and Placement. A failed refresh keeps the
// last values and is logged.
type capacity struct {
	mu       sync.Mutex
	headroom map[string]plan.Resources // by segment
}

// short tells, for each segment, whether some resource's headroom is below zero.
func (c *capacity) short() map[string]bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make(map[string]bool, len(c.headroom))
	for seg, r := range c.headroom {
		out[seg] = r.VCPUs < 0 || r.RAMMB < 0 || r.DiskGB < 0
	}
	return out
}

// startCapacity refreshes the segments' headroom while someone reads it: the metrics are
// served, or alerts are delivered.
func (d *Daemon) startCapacity(ctx context.Context, wg *sync.WaitGroup) {
	every := d.o.Config.Metrics.CapacityInterval
	served := d.o.Metrics != nil && d.o.Config.Metrics.Listen != ""
	if every <= 0 || !served && !d.o.Config.Alerts.Any() {
		return
	}
	c := &capacity{headroom: map[string]plan.Resources{}}
	d.mu.Lock()
	d.capacity = c
	d.mu.Unlock()
	if served {
		d.serveCapacity(c)
	}
	wg.Go(func() {
		for {
			if err := d.refreshCapacity(ctx, c); err != nil && ctx.Err() == nil {
				d.o.Log.Warn("capacity: reading the segments' capacity failed; the last values stay", "error", err)
			}
			if d.clock.Sleep(ctx, every) != nil {
				return
			}
		}
	})
}

// serveCapacity registers the headroom gauges.
func (d *Daemon) serveCapacity(c *capacity) {
	gauge := func(name, help string, pick func(plan.Resources) int64, scale float64) {
		d.o.Metrics.GaugeFunc(name, help, []string{"segment"}, func() map[[2]string]float64 {
			c.mu.Lock()
			defer c.mu.Unlock()
			out := make(map[[2]string]float64, len(c.headroom))
			for seg, r := range c.headroom {
				out[[2]string{seg}] = float64(pick(r)) * scale
			}
			return out
		})
	}
	const what = " a segment has left under its admission policy (segments.NAME.admission; n+1 by default: after losing the host whose loss costs it most, its VMs placed on the segment's other hosts, reserved ones included); below 0, the segment no longer meets its policy."
	gauge("segment_headroom_vcpus", "vCPUs"+what, func(r plan.Resources) int64 { return r.VCPUs }, 1)
	gauge("segment_headroom_memory_bytes", "Memory"+what, func(r plan.Resources) int64 { return r.RAMMB }, 1<<20)
	gauge("segment_headroom_disk_bytes", "Disk"+what, func(r plan.Resources) int64 { return r.DiskGB }, 1<<30)
}

func (d *Daemon) refreshCapacity(ctx context.Context, c *capacity) error {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	segs, err := d.segments(ctx)
	if err != nil {
		return err
	}
	hvs, err := d.o.Nova.Hypervisors(ctx)
	if err != nil {
		return err
	}
	out := map[string]plan.Resources{}
	for name, seg := range segs {
		out[name], _ = plan.HeadroomFor(seg.AdmissionPolicy(), recovery.SegmentCapacity(seg, hvs))
	}
	c.mu.Lock()
	c.headroom = out
	c.mu.Unlock()
	return nil
}
