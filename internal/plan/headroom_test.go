package plan

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestHeadroomIsWhatIsLeftAfterLosingTheCostliestHost(t *testing.T) {
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
			got, worst := Headroom(tt.hosts)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("headroom (-want +got):\n%s", diff)
			}
			if worst != tt.worst {
				t.Errorf("worst = %v, want %v", worst, tt.worst)
			}
		})
	}
}
