package plan

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"

	"github.com/computeha/computeha/internal/config"
)

// Host is the state of one host of the segment, as Nova and Placement report it.
type Host struct {
	Name string
	// Enabled is the nova-compute service status. A reserved host is normally disabled until
	// it is taken into use, so Enabled is not required of reserved hosts.
	Enabled bool
	// Up is the nova-compute service state.
	Up bool
	// ForcedDown is the service's forced_down flag.
	ForcedDown bool
	// FreeVCPUs, FreeRAMMB and FreeDiskGB are Placement's capacity minus usage
	// (openstack.Resource.Free of VCPU, MEMORY_MB and DISK_GB).
	FreeVCPUs  int64
	FreeRAMMB  int64
	FreeDiskGB int64
	// Reserved is true while the host is held in reserve: listed in the segment's
	// reserved_hosts and not yet taken into use by an earlier recovery. A reserved host that
	// was taken into use earlier is an ordinary host (Reserved false), as in masakari.
	Reserved bool
	// Withheld is true for a reserved host disabled in Nova for another reason than being
	// held in reserve (an operator's repair, say): it is not taken into use, since taking it
	// enables it.
	Withheld bool
	// Maintenance is true for a host in computeha maintenance: never a target.
	Maintenance bool
}

// Segment is the failed host's segment.
type Segment struct {
	Name           string
	RecoveryMethod config.RecoveryMethod
	// Hosts are every host of the segment, the failed one and reserved ones included.
	// Reserved hosts are taken into use in this order.
	Hosts []Host
}

// VM is one VM to move.
type VM struct {
	ID   string
	Name string
	// VCPUs, RAMMB and DiskGB are what the VM needs on its target. Set DiskGB to 0 for a
	// volume-backed VM or when instance disks are on shared storage.
	VCPUs  int64
	RAMMB  int64
	DiskGB int64
	// Priority is the restart priority (policy.Engine.Priority); higher goes first.
	Priority int
	// Group is the id of the server group the VM is a member of ("" when none), a key of
	// Input.Groups.
	Group string
}

// Input is everything [Make] needs.
type Input struct {
	FailedHost string
	Segment    Segment
	VMs        []VM
	// Groups are the server groups of the VMs, by id.
	Groups map[string]Group
}

// GroupPolicy is a Nova server group policy.
type GroupPolicy string

// Server group policies, as Nova names them.
const (
	Affinity         GroupPolicy = "affinity"
	AntiAffinity     GroupPolicy = "anti-affinity"
	SoftAffinity     GroupPolicy = "soft-affinity"
	SoftAntiAffinity GroupPolicy = "soft-anti-affinity"
)

// Group is a server group that VMs to place are members of. Explicit targets must never break
// a hard policy, since Nova's scheduler refuses such a target (the evacuation then fails); a
// soft one is followed while the segment allows it, and a plan that cannot is recorded.
type Group struct {
	Policy GroupPolicy
	// MaxPerHost is anti-affinity's max_server_per_host (0 means 1).
	MaxPerHost int
	// Members counts, by host, the group's members that run elsewhere than the failed host
	// and are not among the VMs to place.
	Members map[string]int
}

// Reason says why a VM went where it did, or why a host was not used.
type Reason string

const (
	// ReasonMostFree: auto placement onto the ordinary host with the most free capacity left.
	ReasonMostFree Reason = "most-free-capacity"
	// ReasonReservedHost: placed on a reserved host (reserved_host, or rh_priority's first
	// choice).
	ReasonReservedHost Reason = "reserved-host"
	// ReasonFallbackReserved: auto_priority found no ordinary host with room, so a reserved
	// host took it.
	ReasonFallbackReserved Reason = "fallback-to-reserved-host"
	// ReasonFallbackAuto: rh_priority found no reserved host with room, so an ordinary host
	// took it.
	ReasonFallbackAuto Reason = "fallback-to-auto"

	// ReasonNoRoom: no eligible host has the room the VM needs.
	ReasonNoRoom Reason = "no-room"
	// ReasonHardAffinity and ReasonHardAntiAffinity: a host has room, but none that the VM's
	// hard server group policy allows; Nova's scheduler would refuse any other.
	ReasonHardAffinity     Reason = "affinity-unsatisfiable"
	ReasonHardAntiAffinity Reason = "anti-affinity-unsatisfiable"

	// ReasonFailedHost, ReasonDisabled, ReasonDown and ReasonForcedDown say why a host is not
	// a target.
	ReasonFailedHost Reason = "failed-host"
	ReasonDisabled   Reason = "disabled"
	ReasonDown       Reason = "down"
	ReasonForcedDown Reason = "forced-down"
	// ReasonNotUsedByMethod: a reserved host under auto, or an ordinary host under
	// reserved_host.
	ReasonNotUsedByMethod Reason = "not-used-by-recovery-method"
	// ReasonWithheld: a reserved host disabled for another reason than being held in reserve.
	ReasonWithheld Reason = "reserved-host-disabled-for-another-reason"
	// ReasonMaintenance: a host in computeha maintenance.
	ReasonMaintenance Reason = "in-maintenance"
)

// Move is one planned evacuation.
type Move struct {
	VM     VM
	Target string
	Reason Reason
	// Detail is one line for logs: the target's free capacity before this VM, and the pool.
	Detail string
	// Degraded, when set, says how the target breaks the VM's soft server group policy
	// because no host that follows it has room.
	Degraded string
}

// Unplaced is a VM that does not fit anywhere.
type Unplaced struct {
	VM     VM
	Reason Reason
	Detail string
}

// Excluded is a host of the segment that cannot be a target.
type Excluded struct {
	Host   string
	Reason Reason
}

// Preflight is the capacity check: whether the segment can take every VM.
type Preflight struct {
	// Fits is true when every VM has a target.
	Fits bool
	// Warnings are lines to log and alert on; empty when Fits.
	Warnings []string
}

// Plan is the result of [Make].
type Plan struct {
	// Moves are the planned evacuations in the order to start them: priority first.
	Moves []Move
	// ReservedHostsUsed are the reserved hosts that take VMs, in the order taken. The caller
	// enables their compute service and records them as no longer reserved before evacuating.
	ReservedHostsUsed []string
	// Unplaced are the VMs that fit nowhere, in placement order.
	Unplaced []Unplaced
	// Excluded are the segment's hosts that cannot take VMs, and why.
	Excluded  []Excluded
	Preflight Preflight
}

// ErrInput is wrapped by every error [Make] returns: the input itself is inconsistent.
var ErrInput = errors.New("invalid plan input")

// target is a candidate host with its remaining capacity.
type target struct {
	name                   string
	taken                  bool // reserved host already taken into use by this plan
	moves                  int  // VMs this plan has placed here so far
	vcpus, ram, disk       int64
	scaleV, scaleR, scaleD float64 // 1 / the pool's largest initial free amount, 0 when none
}

func (t *target) fits(vm *VM) bool {
	return t.vcpus >= vm.VCPUs && t.ram >= vm.RAMMB && t.disk >= vm.DiskGB
}

// score is the free capacity left after placing vm, each resource relative to the roomiest
// host of the pool, so that no unit (MB against vCPUs) dominates.
func (t *target) score(vm *VM) float64 {
	return float64(t.vcpus-vm.VCPUs)*t.scaleV + float64(t.ram-vm.RAMMB)*t.scaleR + float64(t.disk-vm.DiskGB)*t.scaleD
}

// room is how many more VMs of vm's size the host could take after vm: the fewest over the
// resources vm needs (a volume-backed VM needs no local disk, and a host's disk then does not
// bound it). +Inf when vm needs nothing.
func (t *target) room(vm *VM) float64 {
	r := math.Inf(1)
	for _, d := range [...]struct{ free, need int64 }{{t.vcpus, vm.VCPUs}, {t.ram, vm.RAMMB}, {t.disk, vm.DiskGB}} {
		if d.need > 0 {
			r = min(r, float64(d.free-d.need)/float64(d.need))
		}
	}
	return r
}

// Make plans the recovery of in.VMs. It returns an error wrapping [ErrInput] only when the
// input is inconsistent (unknown recovery method, the failed host not in the segment, a
// repeated host or VM, negative sizes); a segment without room is not an error but a
// Preflight warning and Unplaced VMs.
func Make(in Input) (*Plan, error) {
	if err := check(in); err != nil {
		return nil, err
	}
	p := &Plan{}
	var ordinary, reserved []*target
	method := in.Segment.RecoveryMethod
	for _, h := range in.Segment.Hosts {
		if r := exclusion(h, in.FailedHost, method); r != "" {
			p.Excluded = append(p.Excluded, Excluded{Host: h.Name, Reason: r})
			continue
		}
		t := &target{name: h.Name, vcpus: h.FreeVCPUs, ram: h.FreeRAMMB, disk: h.FreeDiskGB}
		if h.Reserved {
			reserved = append(reserved, t)
		} else {
			ordinary = append(ordinary, t)
		}
	}
	setScales(ordinary)
	setScales(reserved)

	groups := newGroupState(in.Groups)
	p.Moves = make([]Move, 0, len(in.VMs))
	for _, i := range order(in.VMs) {
		vm := &in.VMs[i]
		g := groups.of(vm)
		place := func(g *groupState) (t *target, reason Reason, newlyTaken bool) {
			switch method {
			case config.RecoveryAuto:
				t, reason = mostFreeFit(ordinary, vm, g), ReasonMostFree
			case config.RecoveryReservedHost:
				t, newlyTaken = firstFit(reserved, vm, p, g)
				reason = ReasonReservedHost
			case config.RecoveryAutoPriority:
				if t, reason = mostFreeFit(ordinary, vm, g), ReasonMostFree; t == nil {
					t, newlyTaken = firstFit(reserved, vm, p, g)
					reason = ReasonFallbackReserved
				}
			case config.RecoveryRHPriority:
				if t, newlyTaken = firstFit(reserved, vm, p, g); t != nil {
					reason = ReasonReservedHost
				} else {
					t, reason = mostFreeFit(ordinary, vm, g), ReasonFallbackAuto
				}
			}
			return t, reason, newlyTaken
		}
		t, reason, newlyTaken := place(g)
		if t == nil {
			u := Unplaced{VM: *vm, Reason: ReasonNoRoom, Detail: noRoomDetail(vm, method, ordinary, reserved)}
			if g != nil && g.hard() && anyFits(ordinary, reserved, vm, method) {
				u.Reason, u.Detail = g.unsatisfiable(), g.why(vm)
			}
			p.Unplaced = append(p.Unplaced, u)
			continue
		}
		detail := fmt.Sprintf("%s had %d vCPU, %d MB RAM, %d GB disk free", t.name, t.vcpus, t.ram, t.disk)
		if newlyTaken {
			detail = "reserved host " + detail + "; taken into use"
		}
		m := Move{VM: *vm, Target: t.name, Reason: reason, Detail: detail}
		if g != nil {
			m.Degraded = g.degraded(t.name)
			g.place(t.name)
		}
		p.Moves = append(p.Moves, m)
		t.vcpus -= vm.VCPUs
		t.ram -= vm.RAMMB
		t.disk -= vm.DiskGB
		t.moves++
	}
	p.Preflight = preflight(in, p)
	return p, nil
}

// mostFreeFit returns the host of pool with the most room left after placing vm (in VMs of
// its size) per VM placed there (vm included), then the most capacity left, among those with
// room that vm's group allows, those its soft policy prefers first; ties go to the earlier
// host. Dividing the room by the VMs placed spreads them over the hosts in proportion to how
// many each can take: a target takes its moves one after the other (Nova's compute claims
// them under one lock), so the busiest target sets the finish time, and two nearly equal
// hosts take half each rather than all but one to the host a few MB roomier.
func mostFreeFit(pool []*target, vm *VM, g *groupState) *target {
	var best *target
	var bestShare, bestScore float64
	bestRank := 0
	for _, t := range pool {
		if !t.fits(vm) || !g.allows(t.name) {
			continue
		}
		r, share, s := g.rank(t.name), t.room(vm)/float64(t.moves+1), t.score(vm)
		if best == nil || r < bestRank || r == bestRank && (share > bestShare || share == bestShare && s > bestScore) {
			best, bestShare, bestScore, bestRank = t, share, s, r
		}
	}
	return best
}

// firstFit returns the reserved host already taken into use that has room (the first of
// those its group prefers), and otherwise takes the next one with room into use
// (newlyTaken), recording it in p.
func firstFit(pool []*target, vm *VM, p *Plan, g *groupState) (t *target, newlyTaken bool) {
	for _, taken := range []bool{true, false} {
		var best *target
		for _, c := range pool {
			if c.taken != taken || !c.fits(vm) || !g.allows(c.name) {
				continue
			}
			if best == nil || g.rank(c.name) < g.rank(best.name) {
				best = c
			}
		}
		if best == nil {
			continue
		}
		if !taken {
			best.taken = true
			p.ReservedHostsUsed = append(p.ReservedHostsUsed, best.name)
		}
		return best, !taken
	}
	return nil, false
}

// anyFits tells whether some host of the pools the method uses has room for vm, its group
// aside.
func anyFits(ordinary, reserved []*target, vm *VM, method config.RecoveryMethod) bool {
	var pools [][]*target
	switch method {
	case config.RecoveryAuto:
		pools = [][]*target{ordinary}
	case config.RecoveryReservedHost:
		pools = [][]*target{reserved}
	default:
		pools = [][]*target{ordinary, reserved}
	}
	for _, pool := range pools {
		for _, t := range pool {
			if t.fits(vm) {
				return true
			}
		}
	}
	return false
}

func setScales(pool []*target) {
	var v, r, d int64
	for _, t := range pool {
		v, r, d = max(v, t.vcpus), max(r, t.ram), max(d, t.disk)
	}
	inv := func(x int64) float64 {
		if x <= 0 {
			return 0
		}
		return 1 / float64(x)
	}
	for _, t := range pool {
		t.scaleV, t.scaleR, t.scaleD = inv(v), inv(r), inv(d)
	}
}

// exclusion returns why h cannot be a target under method, or "" if it can.
func exclusion(h Host, failed string, method config.RecoveryMethod) Reason {
	switch {
	case h.Name == failed:
		return ReasonFailedHost
	case h.Maintenance:
		return ReasonMaintenance
	case h.ForcedDown:
		return ReasonForcedDown
	case !h.Up:
		return ReasonDown
	case h.Reserved && method == config.RecoveryAuto:
		return ReasonNotUsedByMethod
	case h.Reserved && h.Withheld:
		return ReasonWithheld
	case !h.Reserved && method == config.RecoveryReservedHost:
		return ReasonNotUsedByMethod
	case !h.Reserved && !h.Enabled:
		// Reserved hosts are kept disabled until taken into use; ordinary ones must be enabled.
		return ReasonDisabled
	}
	return ""
}

// order returns the indexes of vms sorted by priority (highest first), then size (largest
// first: RAM, vCPUs, disk), then input order. Sorting indexes rather than the VMs avoids
// moving their strings around, which dominated the cost.
func order(vms []VM) []int {
	out := make([]int, len(vms))
	for i := range out {
		out[i] = i
	}
	slices.SortStableFunc(out, func(i, j int) int {
		a, b := &vms[i], &vms[j]
		switch {
		case a.Priority != b.Priority:
			return cmpDesc(int64(a.Priority), int64(b.Priority))
		case a.RAMMB != b.RAMMB:
			return cmpDesc(a.RAMMB, b.RAMMB)
		case a.VCPUs != b.VCPUs:
			return cmpDesc(a.VCPUs, b.VCPUs)
		default:
			return cmpDesc(a.DiskGB, b.DiskGB)
		}
	})
	return out
}

func cmpDesc(a, b int64) int {
	switch {
	case a > b:
		return -1
	case a < b:
		return 1
	}
	return 0
}

func noRoomDetail(vm *VM, method config.RecoveryMethod, ordinary, reserved []*target) string {
	var pool []*target
	switch method {
	case config.RecoveryAuto:
		pool = ordinary
	case config.RecoveryReservedHost:
		pool = reserved
	default:
		pool = append(slices.Clone(ordinary), reserved...)
	}
	need := fmt.Sprintf("needs %d vCPU, %d MB RAM, %d GB disk", vm.VCPUs, vm.RAMMB, vm.DiskGB)
	if len(pool) == 0 {
		return need + "; no host of the segment is eligible under " + string(method)
	}
	var v, r, d int64
	for _, t := range pool {
		v, r, d = max(v, t.vcpus), max(r, t.ram), max(d, t.disk)
	}
	return fmt.Sprintf("%s; the largest free amounts on eligible hosts are %d vCPU, %d MB RAM, %d GB disk", need, v, r, d)
}

func preflight(in Input, p *Plan) Preflight {
	if len(p.Unplaced) == 0 {
		return Preflight{Fits: true}
	}
	ids := make([]string, len(p.Unplaced))
	for i, u := range p.Unplaced {
		ids[i] = u.VM.ID
	}
	w := []string{fmt.Sprintf("segment %s cannot take %d of the %d VMs of %s (recovery method %s): %s",
		in.Segment.Name, len(p.Unplaced), len(in.VMs), in.FailedHost, in.Segment.RecoveryMethod, strings.Join(ids, ", "))}
	for _, e := range p.Excluded {
		if e.Reason != ReasonFailedHost && e.Reason != ReasonNotUsedByMethod {
			w = append(w, fmt.Sprintf("host %s is not a target: %s", e.Host, e.Reason))
		}
	}
	return Preflight{Warnings: w}
}

func check(in Input) error {
	var problems []string
	if in.FailedHost == "" {
		problems = append(problems, "no failed host")
	}
	if !slices.Contains(config.RecoveryMethods, in.Segment.RecoveryMethod) {
		problems = append(problems, fmt.Sprintf("segment %s: unknown recovery method %q", in.Segment.Name, in.Segment.RecoveryMethod))
	}
	hosts := map[string]bool{}
	for _, h := range in.Segment.Hosts {
		if h.Name == "" {
			problems = append(problems, fmt.Sprintf("segment %s: a host has no name", in.Segment.Name))
		} else if hosts[h.Name] {
			problems = append(problems, fmt.Sprintf("segment %s: host %s is listed twice", in.Segment.Name, h.Name))
		}
		hosts[h.Name] = true
	}
	if in.FailedHost != "" && !hosts[in.FailedHost] {
		problems = append(problems, fmt.Sprintf("failed host %s is not in segment %s", in.FailedHost, in.Segment.Name))
	}
	for id, g := range in.Groups {
		switch g.Policy {
		case Affinity, AntiAffinity, SoftAffinity, SoftAntiAffinity:
		default:
			problems = append(problems, fmt.Sprintf("server group %s: unknown policy %q", id, g.Policy))
		}
	}
	ids := map[string]bool{}
	for _, vm := range in.VMs {
		if _, ok := in.Groups[vm.Group]; vm.Group != "" && !ok {
			problems = append(problems, fmt.Sprintf("VM %s: server group %s is not among the groups", vm.ID, vm.Group))
		}
		switch {
		case vm.ID == "":
			problems = append(problems, "a VM has no ID")
		case ids[vm.ID]:
			problems = append(problems, fmt.Sprintf("VM %s is listed twice", vm.ID))
		}
		ids[vm.ID] = true
		if vm.VCPUs < 0 || vm.RAMMB < 0 || vm.DiskGB < 0 {
			problems = append(problems, fmt.Sprintf("VM %s has a negative size", vm.ID))
		}
	}
	if len(problems) > 0 {
		return fmt.Errorf("%w: %s", ErrInput, strings.Join(problems, "; "))
	}
	return nil
}
