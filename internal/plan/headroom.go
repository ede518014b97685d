package plan

import (
	"cmp"
	"slices"
	"strings"

	"github.com/computeha/computeha/internal/config"
)

// Resources are amounts of the three resource classes recovery places by.
type Resources struct {
	VCPUs  int64
	RAMMB  int64
	DiskGB int64
}

// Capacity is one host of a segment as [HeadroomFor] sees it.
type Capacity struct {
	Name string
	// Target tells whether the host may take a failed host's VMs: up and enabled, or up and
	// held in reserve (a reserved host is disabled until it is taken into use).
	Target bool
	// Reserved tells whether the host is held in reserve (disabled until a recovery takes
	// it): the reserved admission policy counts only such hosts as room.
	Reserved bool
	// Free is Placement's capacity minus usage; Used is what the host's VMs take.
	Free, Used Resources
}

// HeadroomFor tells, for each resource, what a segment has left under its admission policy a;
// below zero, the segment no longer meets it. worst names, per resource, the hosts the policy
// weighs against (the costliest to lose, or the busiest), "" when none.
//   - n+K: the free capacity of the target hosts, less what the K hosts whose loss costs most
//     take away: their own free capacity and their VMs (K=1 is [Headroom]);
//   - P%: the free capacity of the target hosts, less P percent of the segment's capacity
//     (free and used, every host);
//   - reserved: the free capacity of the hosts held in reserve, less what the busiest other
//     host's VMs use.
func HeadroomFor(a config.Admission, hosts []Capacity) (h Resources, worst [3]string) {
	pick := [3]func(Resources) int64{
		func(r Resources) int64 { return r.VCPUs },
		func(r Resources) int64 { return r.RAMMB },
		func(r Resources) int64 { return r.DiskGB },
	}
	var left [3]int64
	for i, get := range pick {
		var free, capacity int64
		for _, c := range hosts {
			if c.Target {
				free += max(get(c.Free), 0)
			}
			capacity += max(get(c.Free), 0) + get(c.Used)
		}
		switch a.Kind {
		case config.AdmissionPercent:
			left[i] = free - (capacity*int64(a.Percent)+99)/100
		case config.AdmissionReserved:
			var room, busiest int64
			for _, c := range hosts {
				if c.Reserved && c.Target {
					room += max(get(c.Free), 0)
				} else if u := get(c.Used); u > busiest || worst[i] == "" {
					busiest, worst[i] = u, c.Name
				}
			}
			left[i] = room - busiest
		default: // n+K
			k := max(a.Hosts, 1)
			costs := make([]Capacity, len(hosts))
			copy(costs, hosts)
			cost := func(c Capacity) int64 {
				n := get(c.Used)
				if c.Target {
					n += max(get(c.Free), 0)
				}
				return n
			}
			slices.SortStableFunc(costs, func(x, y Capacity) int { return cmp.Compare(cost(y), cost(x)) })
			left[i] = free
			var names []string
			for _, c := range costs[:min(k, len(costs))] {
				left[i] -= cost(c)
				names = append(names, c.Name)
			}
			worst[i] = strings.Join(names, ",")
		}
	}
	return Resources{VCPUs: left[0], RAMMB: left[1], DiskGB: left[2]}, worst
}
