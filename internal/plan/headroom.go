package plan

// Resources are amounts of the three resource classes recovery places by.
type Resources struct {
	VCPUs  int64
	RAMMB  int64
	DiskGB int64
}

// Capacity is one host of a segment as [Headroom] sees it.
type Capacity struct {
	Name string
	// Target tells whether the host may take a failed host's VMs: up and enabled, or up and
	// held in reserve (a reserved host is disabled until it is taken into use).
	Target bool
	// Free is Placement's capacity minus usage; Used is what the host's VMs take.
	Free, Used Resources
}

// Headroom tells, for each resource, what a segment has left after losing the one host whose
// loss costs it most: over every host h, the free capacity of the other target hosts minus
// what h's VMs use, and the least of those. Zero or more: the segment can take any one host's
// VMs (N+1); below zero: some host's VMs would not all fit. worst names, per resource, the
// host whose loss leaves the least ("" without hosts). Over-allocated hosts count as having
// nothing free, never less.
func Headroom(hosts []Capacity) (h Resources, worst [3]string) {
	var free Resources
	for _, c := range hosts {
		if c.Target {
			free.VCPUs += max(c.Free.VCPUs, 0)
			free.RAMMB += max(c.Free.RAMMB, 0)
			free.DiskGB += max(c.Free.DiskGB, 0)
		}
	}
	first := true
	for _, c := range hosts {
		others := free
		if c.Target {
			others.VCPUs -= max(c.Free.VCPUs, 0)
			others.RAMMB -= max(c.Free.RAMMB, 0)
			others.DiskGB -= max(c.Free.DiskGB, 0)
		}
		left := Resources{others.VCPUs - c.Used.VCPUs, others.RAMMB - c.Used.RAMMB, others.DiskGB - c.Used.DiskGB}
		for i, pair := range [3][2]*int64{{&h.VCPUs, &left.VCPUs}, {&h.RAMMB, &left.RAMMB}, {&h.DiskGB, &left.DiskGB}} {
			if first || *pair[1] < *pair[0] {
				*pair[0], worst[i] = *pair[1], c.Name
			}
		}
		first = false
	}
	return h, worst
}
