package recovery

import (
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
