package policy

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/computeha/computeha/internal/config"
)

func testPolicy() config.Policy {
	p := config.Default().Policy
	p.Aggregates = map[string]bool{"batch": false, "gold": true}
	p.AvailabilityZones = map[string]bool{"scratch": false, "prod": true}
	p.Projects = map[string]bool{"p-off": false, "p-on": true}
	return p
}

func TestDecide(t *testing.T) {
	// A VM on which every level speaks, alternating on/off from coarse to fine, so each
	// case can silence the finer levels and check that the next one wins.
	tests := []struct {
		name   string
		policy func(*config.Policy)
		vm     VM
		want   Decision
	}{
		{
			"a VM nothing says anything about follows the default",
			nil,
			VM{},
			Decision{HA: true, Level: LevelDefault, Reason: "no finer level sets HA; policy.default is on"},
		},
		{
			"a default of off applies to a VM nothing else names",
			func(p *config.Policy) { p.Default = false },
			VM{Aggregates: []string{"unlisted"}, AvailabilityZone: "nova", ProjectID: "p-x"},
			Decision{HA: false, Level: LevelDefault, Reason: "no finer level sets HA; policy.default is off"},
		},
		{
			"an aggregate rule overrides the default",
			nil,
			VM{Aggregates: []string{"unlisted", "batch"}},
			Decision{HA: false, Level: LevelAggregate, Reason: "aggregate batch is off in policy.aggregates"},
		},
		{
			"aggregates that disagree are ignored and the default decides",
			func(p *config.Policy) { p.Default = false },
			VM{Aggregates: []string{"gold", "batch"}},
			Decision{
				HA: false, Level: LevelDefault,
				Reason:  "no finer level sets HA; policy.default is off; ignored: aggregate gold is on in policy.aggregates, aggregate batch is off in policy.aggregates disagree",
				Ignored: []string{"aggregate gold is on in policy.aggregates, aggregate batch is off in policy.aggregates disagree"},
			},
		},
		{
			"an availability zone rule overrides an aggregate",
			nil,
			VM{Aggregates: []string{"batch"}, AvailabilityZone: "prod"},
			Decision{HA: true, Level: LevelAvailabilityZone, Reason: "availability zone prod is on in policy.availability_zones"},
		},
		{
			"a project rule overrides the availability zone",
			nil,
			VM{Aggregates: []string{"gold"}, AvailabilityZone: "prod", ProjectID: "p-off"},
			Decision{HA: false, Level: LevelProject, Reason: "project p-off is off in policy.projects"},
		},
		{
			"a flavor extra spec overrides the project",
			nil,
			VM{ProjectID: "p-off", FlavorExtraSpecs: map[string]string{"evacuable": "true", "hw:cpu_policy": "dedicated"}},
			Decision{HA: true, Level: LevelFlavor, Reason: `flavor extra spec evacuable="true"`},
		},
		{
			"an image property overrides the flavor",
			nil,
			VM{
				FlavorExtraSpecs: map[string]string{"evacuable": "true"},
				ImageProperties:  map[string]string{"evacuable": "False"},
			},
			Decision{HA: false, Level: LevelImage, Reason: `image property evacuable="False"`},
		},
		{
			"instance metadata overrides the image",
			nil,
			VM{
				ImageProperties: map[string]string{"evacuable": "false"},
				Metadata:        map[string]string{"HA_Enabled": "True"},
			},
			Decision{HA: true, Level: LevelInstance, Reason: `instance metadata HA_Enabled="True"`},
		},
		{
			"a bare instance tag turns HA on over every coarser level",
			func(p *config.Policy) { p.Default = false },
			VM{
				Aggregates: []string{"batch"}, AvailabilityZone: "scratch", ProjectID: "p-off",
				FlavorExtraSpecs: map[string]string{"evacuable": "no"},
				ImageProperties:  map[string]string{"evacuable": "no"},
				Tags:             []string{"web", "evacuable"},
			},
			Decision{HA: true, Level: LevelInstance, Reason: `instance tag "evacuable"`},
		},
		{
			"an instance tag with a value turns HA off",
			nil,
			VM{Tags: []string{"Evacuable=No"}},
			Decision{HA: false, Level: LevelInstance, Reason: `instance tag "Evacuable=No"`},
		},
		{
			"metadata and a tag that agree decide at the instance level, metadata named",
			nil,
			VM{Metadata: map[string]string{"HA_Enabled": "false"}, Tags: []string{"evacuable=off"}},
			Decision{HA: false, Level: LevelInstance, Reason: `instance metadata HA_Enabled="false"`},
		},
		{
			"metadata and a tag that disagree are ignored and the image decides",
			nil,
			VM{
				ImageProperties: map[string]string{"evacuable": "no"},
				Metadata:        map[string]string{"HA_Enabled": "True"},
				Tags:            []string{"evacuable=false"},
			},
			Decision{
				HA: false, Level: LevelImage,
				Reason:  `image property evacuable="no"; ignored: instance metadata HA_Enabled="True" and instance tag "evacuable=false" disagree`,
				Ignored: []string{`instance metadata HA_Enabled="True" and instance tag "evacuable=false" disagree`},
			},
		},
		{
			"two spellings of the metadata key that disagree are ignored",
			nil,
			VM{ProjectID: "p-off", Metadata: map[string]string{"HA_Enabled": "true", "ha_enabled": "false"}},
			Decision{
				HA: false, Level: LevelProject,
				Reason:  `project p-off is off in policy.projects; ignored: instance metadata HA_Enabled="true", instance metadata ha_enabled="false" disagree`,
				Ignored: []string{`instance metadata HA_Enabled="true", instance metadata ha_enabled="false" disagree`},
			},
		},
		{
			"booleans are read in any case and with yes/no and on/off",
			nil,
			VM{Metadata: map[string]string{"ha_enabled": " YES "}},
			Decision{HA: true, Level: LevelInstance, Reason: `instance metadata ha_enabled=" YES "`},
		},
		{
			"a malformed metadata value never turns HA on: the flavor decides and the reason says so",
			nil,
			VM{
				FlavorExtraSpecs: map[string]string{"evacuable": "false"},
				Metadata:         map[string]string{"HA_Enabled": "sure"},
			},
			Decision{
				HA: false, Level: LevelFlavor,
				Reason:  `flavor extra spec evacuable="false"; ignored: instance metadata HA_Enabled="sure" is not a boolean`,
				Ignored: []string{`instance metadata HA_Enabled="sure" is not a boolean`},
			},
		},
		{
			"malformed values at several levels are all reported, finest first",
			func(p *config.Policy) { p.Default = false },
			VM{
				FlavorExtraSpecs: map[string]string{"evacuable": ""},
				ImageProperties:  map[string]string{"evacuable": "ture"},
				Tags:             []string{"evacuable=2"},
			},
			Decision{
				HA: false, Level: LevelDefault,
				Reason: `no finer level sets HA; policy.default is off; ignored: instance tag "evacuable=2" has a value that is not a boolean; ` +
					`image property evacuable="ture" is not a boolean; flavor extra spec evacuable="" is not a boolean`,
				Ignored: []string{
					`instance tag "evacuable=2" has a value that is not a boolean`,
					`image property evacuable="ture" is not a boolean`,
					`flavor extra spec evacuable="" is not a boolean`,
				},
			},
		},
		{
			"a malformed spelling next to a valid one: the valid one speaks and the other is reported",
			nil,
			VM{FlavorExtraSpecs: map[string]string{"Evacuable": "maybe", "evacuable": "0"}},
			Decision{
				HA: false, Level: LevelFlavor,
				Reason:  `flavor extra spec evacuable="0"; ignored: flavor extra spec Evacuable="maybe" is not a boolean`,
				Ignored: []string{`flavor extra spec Evacuable="maybe" is not a boolean`},
			},
		},
		{
			"configured keys replace the conventional ones",
			func(p *config.Policy) { p.FlavorKey = "ha:enabled"; p.MetadataKey = "ha" },
			VM{
				FlavorExtraSpecs: map[string]string{"evacuable": "false", "ha:enabled": "true"},
				Metadata:         map[string]string{"HA_Enabled": "false"},
			},
			Decision{HA: true, Level: LevelFlavor, Reason: `flavor extra spec ha:enabled="true"`},
		},
		{
			"a tag that only starts with the key is not the key",
			func(p *config.Policy) { p.Default = false },
			VM{Tags: []string{"evacuable-later", "not-evacuable"}},
			Decision{HA: false, Level: LevelDefault, Reason: "no finer level sets HA; policy.default is off"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := testPolicy()
			if tt.policy != nil {
				tt.policy(&p)
			}
			got := New(p, nil).Decide(tt.vm)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Decide (-want +got):\n%s", diff)
			}
		})
	}
}

func TestParseBool(t *testing.T) {
	for _, s := range []string{"true", "True", "TRUE", "yes", "Yes", "on", "ON", "1", "y", "t", " true\n"} {
		if b, err := ParseBool(s); err != nil || !b {
			t.Errorf("ParseBool(%q) = %v, %v; want true", s, b, err)
		}
	}
	for _, s := range []string{"false", "False", "no", "NO", "off", "0", "n", "f"} {
		if b, err := ParseBool(s); err != nil || b {
			t.Errorf("ParseBool(%q) = %v, %v; want false", s, b, err)
		}
	}
	for _, s := range []string{"", "maybe", "2", "truee", "enabled"} {
		if _, err := ParseBool(s); err == nil {
			t.Errorf("ParseBool(%q) accepted a non-boolean", s)
		}
	}
}

func TestPriority(t *testing.T) {
	tests := []struct {
		name  string
		names []string
		vm    VM
		want  Priority
	}{
		{
			"a VM with no priority has 0",
			[]string{"restart_priority"},
			VM{Metadata: map[string]string{"other": "5"}},
			Priority{Source: "no restart priority set"},
		},
		{
			"instance metadata wins over the flavor",
			[]string{"restart_priority"},
			VM{
				Metadata:         map[string]string{"restart_priority": "10"},
				FlavorExtraSpecs: map[string]string{"restart_priority": "99"},
			},
			Priority{Value: 10, Source: `instance metadata restart_priority="10"`},
		},
		{
			"the flavor gives the priority when the VM has none, negative values included",
			[]string{"restart_priority"},
			VM{FlavorExtraSpecs: map[string]string{"Restart_Priority": " -3 "}},
			Priority{Value: -3, Source: `flavor extra spec Restart_Priority=" -3 "`},
		},
		{
			"the image is read last",
			[]string{"restart_priority"},
			VM{ImageProperties: map[string]string{"restart_priority": "7"}},
			Priority{Value: 7, Source: `image property restart_priority="7"`},
		},
		{
			"a malformed value is skipped, reported, and the next source is used",
			[]string{"restart_priority"},
			VM{
				Metadata:         map[string]string{"restart_priority": "high"},
				FlavorExtraSpecs: map[string]string{"restart_priority": "4"},
			},
			Priority{
				Value: 4, Source: `flavor extra spec restart_priority="4"`,
				Ignored: []string{`instance metadata restart_priority="high" is not an integer`},
			},
		},
		{
			"several names are tried in order within each source",
			[]string{"restart_priority", "evacuation_priority"},
			VM{Metadata: map[string]string{"evacuation_priority": "2"}, FlavorExtraSpecs: map[string]string{"restart_priority": "9"}},
			Priority{Value: 2, Source: `instance metadata evacuation_priority="2"`},
		},
		{
			"no configured names means every VM has 0",
			nil,
			VM{Metadata: map[string]string{"restart_priority": "10"}},
			Priority{Source: "no restart priority set"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := New(testPolicy(), tt.names).Priority(tt.vm)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Priority (-want +got):\n%s", diff)
			}
		})
	}
}

func TestNewCopiesThePriorityNames(t *testing.T) {
	names := []string{"restart_priority"}
	e := New(testPolicy(), names)
	names[0] = "changed"
	if got := e.Priority(VM{Metadata: map[string]string{"restart_priority": "1"}}); got.Value != 1 {
		t.Errorf("Priority = %+v; the engine saw the caller's later change", got)
	}
}
