package recovery

import (
	"context"
	"log/slog"
	"maps"
	"sync"
	"time"

	"github.com/computeha/computeha/internal/clock"
	"github.com/computeha/computeha/internal/config"
	"github.com/computeha/computeha/internal/evacstate"
	"github.com/computeha/computeha/internal/openstack"
	"github.com/computeha/computeha/internal/plan"
)

// SegmentCapacity is the capacity of seg's hosts that Nova knows, for plan.HeadroomFor: the
// targets a recovery may use are the hosts up and enabled, and the reserved ones held in
// reserve.
func SegmentCapacity(seg config.Segment, hvs []openstack.Hypervisor) []plan.Capacity {
	in := map[string]bool{}
	for _, h := range seg.Hosts {
		in[h] = true
	}
	reserve := map[string]bool{}
	for _, h := range seg.ReservedHosts {
		reserve[h] = true
	}
	var out []plan.Capacity
	for _, hv := range hvs {
		if !in[hv.ServiceHost] {
			continue
		}
		res := func(class string) (free, used int64) {
			r, ok := hv.Resources[class]
			if !ok {
				return 0, 0
			}
			return r.Free(), r.Used
		}
		fc, uc := res("VCPU")
		fm, um := res("MEMORY_MB")
		fd, ud := res("DISK_GB")
		up, enabled := hv.State == "up", hv.Status == "enabled"
		held := reserve[hv.ServiceHost] && !enabled && evacstate.HeldInReserve(hv.DisabledReason)
		out = append(out, plan.Capacity{
			Name: hv.ServiceHost,
			// A reserved host is disabled until taken into use: it is a target all the same,
			// unless it is disabled for another reason (withheld: no recovery takes it).
			Target:   up && (enabled || held),
			Reserved: held,
			Free:     plan.Resources{VCPUs: fc, RAMMB: fm, DiskGB: fd},
			Used:     plan.Resources{VCPUs: uc, RAMMB: um, DiskGB: ud},
		})
	}
	return out
}

// Headroom keeps each segment's headroom (plan.HeadroomFor) for the metrics and the alerts:
// what the segment has left under its admission policy (by default, after losing its
// costliest host). A failed refresh keeps the last values. Safe for concurrent use.
type Headroom struct {
	mu sync.Mutex
	by map[string]plan.Resources // by segment
}

// HypervisorReader reads Nova's hypervisors with their capacity ([openstack.Client] has it).
type HypervisorReader interface {
	Hypervisors(ctx context.Context) ([]openstack.Hypervisor, error)
}

// Refresh computes every segment of segs's headroom from Nova's hypervisors and capacity.
func (h *Headroom) Refresh(ctx context.Context, segs config.Segments, nova HypervisorReader) error {
	hvs, err := nova.Hypervisors(ctx)
	if err != nil {
		return err
	}
	out := make(map[string]plan.Resources, len(segs))
	for name, seg := range segs {
		out[name], _ = plan.HeadroomFor(seg.AdmissionPolicy(), SegmentCapacity(seg, hvs))
	}
	h.mu.Lock()
	h.by = out
	h.mu.Unlock()
	return nil
}

// Keep refreshes h every interval until ctx ends, each refresh within a minute, the
// segments resolved anew each time. A failed refresh keeps the last values and is logged.
func (h *Headroom) Keep(ctx context.Context, every time.Duration, clk clock.Clock, log *slog.Logger,
	segments func(ctx context.Context) (config.Segments, error), nova HypervisorReader,
) {
	for {
		rctx, cancel := context.WithTimeout(ctx, time.Minute)
		segs, err := segments(rctx)
		if err == nil {
			err = h.Refresh(rctx, segs, nova)
		}
		cancel()
		if err != nil && ctx.Err() == nil {
			log.Warn("capacity: reading the segments' capacity failed; the last values stay", "error", err)
		}
		if clk.Sleep(ctx, every) != nil {
			return
		}
	}
}

// Segments is the last headroom of each segment.
func (h *Headroom) Segments() map[string]plan.Resources {
	h.mu.Lock()
	defer h.mu.Unlock()
	return maps.Clone(h.by)
}

// Short tells, for each segment, whether some resource's headroom is below zero.
func (h *Headroom) Short() map[string]bool {
	out := map[string]bool{}
	for seg, r := range h.Segments() {
		out[seg] = r.VCPUs < 0 || r.RAMMB < 0 || r.DiskGB < 0
	}
	return out
}
