package config

import (
	"fmt"
	"strconv"
	"strings"
)

// AdmissionKind names an admission-control policy.
type AdmissionKind string

// Admission-control policies.
const (
	// AdmissionHosts (n+K): the segment takes the VMs of the K hosts whose loss costs it most.
	AdmissionHosts AdmissionKind = "hosts"
	// AdmissionPercent (P%): P percent of the segment's capacity stays free.
	AdmissionPercent AdmissionKind = "percent"
	// AdmissionReserved: the segment's reserved hosts alone take the VMs of its busiest host.
	AdmissionReserved AdmissionKind = "reserved"
)

// DefaultAdmission is a segment's admission-control policy unless it sets one.
const DefaultAdmission = "n+1"

// Admission is a segment's admission-control policy: how much failure it must be able to
// absorb, checked against Placement's inventories and allocations (plan.HeadroomFor).
type Admission struct {
	Kind AdmissionKind
	// Hosts is K of n+K; Percent is P of P%.
	Hosts, Percent int
}

// ParseAdmission reads a policy: "n+K" (K from 1), "P%" (P from 1 to 99) or "reserved".
func ParseAdmission(s string) (Admission, error) {
	t := strings.ToLower(strings.TrimSpace(s))
	switch {
	case t == "reserved":
		return Admission{Kind: AdmissionReserved}, nil
	case strings.HasPrefix(t, "n+"):
		k, err := strconv.Atoi(t[2:])
		if err != nil || k < 1 {
			return Admission{}, fmt.Errorf("%q: n+K needs a whole number of hosts K of 1 or more, such as n+1", s)
		}
		return Admission{Kind: AdmissionHosts, Hosts: k}, nil
	case strings.HasSuffix(t, "%"):
		p, err := strconv.Atoi(strings.TrimSpace(t[:len(t)-1]))
		if err != nil || p < 1 || p > 99 {
			return Admission{}, fmt.Errorf("%q: a percentage of capacity kept free is a whole number from 1%% to 99%%", s)
		}
		return Admission{Kind: AdmissionPercent, Percent: p}, nil
	}
	return Admission{}, fmt.Errorf("%q is not an admission policy: n+K (such as n+1), P%% (such as 25%%) or reserved", s)
}

// String is the policy as the configuration writes it.
func (a Admission) String() string {
	switch a.Kind {
	case AdmissionHosts:
		return "n+" + strconv.Itoa(a.Hosts)
	case AdmissionPercent:
		return strconv.Itoa(a.Percent) + "%"
	case AdmissionReserved:
		return "reserved"
	}
	return ""
}

// AdmissionPolicy is the segment's admission-control policy (DefaultAdmission when unset or,
// in a configuration that did not validate, unreadable).
func (s Segment) AdmissionPolicy() Admission {
	a, err := ParseAdmission(s.Admission)
	if s.Admission == "" || err != nil {
		a, _ = ParseAdmission(DefaultAdmission)
	}
	return a
}
