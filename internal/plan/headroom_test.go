package plan

import (
	"testing"

	"github.com/computeha/computeha/internal/config"

	"github.com/google/go-cmp/cmp"
)

func TestNPlusOneHeadroomIsWhatIsLeftAfterLosingTheCostliestHost(t *testing.T) {
	n1 := config.Admission{Kind: config.AdmissionHosts, Hosts: 1}
	r := func(c, m, d int64) Resources { return Resources{VCPUs: c, RAMMB: m, DiskGB: d} }
	tests := []struct {
		name  string
		hosts []Capacity
		want  Resources
		worst [3]string
	}{
		{"no host", nil, Resources{}, [3]string{}},
		{
			// Losing a: b and c have 10+4 vCPUs for its 8 (6 left); losing b: 12+4 for 2 (14);
			// losing c: 12+10 for 12 (10). RAM: losing c, 4000+1000 for 8000 (-3000).
			"three hosts",
			[]Capacity{
				{Name: "a", Target: true, Free: r(12, 4000, 100), Used: r(8, 2000, 50)},
				{Name: "b", Target: true, Free: r(10, 1000, 100), Used: r(2, 1000, 10)},
				{Name: "c", Target: true, Free: r(4, 1000, 0), Used: r(12, 8000, 200)},
			},
			r(6, -3000, 0),
			[3]string{"a", "c", "c"},
		},
		{
			// The disabled host takes nothing but can still fail (4 left), the reserve takes its
			// share; losing the reserve itself leaves the least (2).
			"a disabled host and a reserve",
			[]Capacity{
				{Name: "a", Target: true, Free: r(2, 0, 0), Used: r(4, 0, 0)},
				{Name: "off", Target: false, Free: r(100, 0, 0), Used: r(6, 0, 0)},
				{Name: "spare", Target: true, Free: r(8, 0, 0)},
			},
			r(2, 0, 0),
			[3]string{"spare", "a", "a"},
		},
		{
			"an over-allocated host gives nothing, and takes nothing away",
			[]Capacity{
				{Name: "a", Target: true, Free: r(-5, 0, 0), Used: r(20, 0, 0)},
				{Name: "b", Target: true, Free: r(30, 0, 0), Used: r(1, 0, 0)},
			},
			r(-1, 0, 0),
			[3]string{"b", "a", "a"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, worst := HeadroomFor(n1, tt.hosts)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("headroom (-want +got):\n%s", diff)
			}
			if worst != tt.worst {
				t.Errorf("worst = %v, want %v", worst, tt.worst)
			}
		})
	}
}

func TestHeadroomUnderEachAdmissionPolicy(t *testing.T) {
	r := func(c int64) Resources { return Resources{VCPUs: c, RAMMB: 1000 * c, DiskGB: c} }
	hosts := []Capacity{
		{Name: "a", Target: true, Free: r(12), Used: r(8)},
		{Name: "b", Target: true, Free: r(10), Used: r(2)},
		{Name: "c", Target: true, Free: r(4), Used: r(12)},
		{Name: "spare", Target: true, Reserved: true, Free: r(16)},
	}
	policy := func(s string) config.Admission {
		a, err := config.ParseAdmission(s)
		if err != nil {
			t.Fatal(err)
		}
		return a
	}
	tests := []struct {
		policy string
		want   int64
		worst  string
	}{
		// Free 42 in all. Costs: a 20, b 12, c 16, spare 16.
		{"n+1", 42 - 20, "a"},
		{"n+2", 42 - 20 - 16, "a,c"}, // c and spare cost 16 alike: the first listed
		{"n+3", 42 - 20 - 16 - 16, "a,c,spare"},
		// Capacity 20+12+16+16 = 64: 25% is 16; 10% is 6.4, rounded up to 7.
		{"25%", 42 - 16, ""},
		{"10%", 42 - 7, ""},
		// The reserve has 16 free; the busiest other host uses 12.
		{"reserved", 16 - 12, "c"},
	}
	for _, tt := range tests {
		h, worst := HeadroomFor(policy(tt.policy), hosts)
		// RAM is the vCPUs a thousandfold, but for the rounding up of 10% of 64 vCPUs.
		wantRAM := 1000 * tt.want
		if tt.policy == "10%" {
			wantRAM = 42000 - 6400
		}
		if h.VCPUs != tt.want || h.RAMMB != wantRAM || worst[0] != tt.worst {
			t.Errorf("%s: headroom %+v (worst %q), want %d vCPUs (worst %q)", tt.policy, h, worst[0], tt.want, tt.worst)
		}
	}
}
