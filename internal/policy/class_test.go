package policy

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/computeha/computeha/internal/config"
)

func classPolicy() config.Policy {
	p := config.Default().Policy
	p.Recovery.Cells = map[string]config.Class{"cell1": config.ClassNone, "cell2": config.ClassEvacuate}
	p.Recovery.Aggregates = map[string]config.Class{"web": config.ClassRecreate}
	p.Recovery.AvailabilityZones = map[string]config.Class{"az1": config.ClassColdMigrate}
	p.Recovery.Projects = map[string]config.Class{"cattle": config.ClassRecreate, "pets": config.ClassEvacuate}
	return p
}

func TestClass(t *testing.T) {
	tests := []struct {
		name string
		vm   VM
		want ClassDecision
	}{
		{
			"a VM nothing names is evacuated, the default",
			VM{ProjectID: "other"},
			ClassDecision{Value: config.ClassEvacuate, Level: LevelDefault, Reason: "no finer level names a recovery class; policy.recovery.default is evacuate"},
		},
		{
			"a cell rule overrides the default",
			VM{Cells: []string{"cell1"}},
			ClassDecision{Value: config.ClassNone, Level: LevelCell, Reason: "cell cell1 is none in policy.recovery.cells"},
		},
		{
			"an aggregate rule overrides the cell",
			VM{Cells: []string{"cell1"}, Aggregates: []string{"web"}},
			ClassDecision{Value: config.ClassRecreate, Level: LevelAggregate, Reason: "aggregate web is recreate in policy.recovery.aggregates"},
		},
		{
			"an availability zone rule overrides the aggregate",
			VM{Aggregates: []string{"web"}, AvailabilityZone: "az1"},
			ClassDecision{Value: config.ClassColdMigrate, Level: LevelAvailabilityZone, Reason: "availability zone az1 is cold-migrate in policy.recovery.availability_zones"},
		},
		{
			"project X: recreate",
			VM{AvailabilityZone: "az1", ProjectID: "cattle"},
			ClassDecision{Value: config.ClassRecreate, Level: LevelProject, Reason: "project cattle is recreate in policy.recovery.projects"},
		},
		{
			"a flavor's extra spec overrides the project, in any case",
			VM{ProjectID: "cattle", FlavorExtraSpecs: map[string]string{"computeha:recovery": " Evacuate "}},
			ClassDecision{Value: config.ClassEvacuate, Level: LevelFlavor, Reason: `flavor extra spec computeha:recovery=" Evacuate "`},
		},
		{
			"the image overrides the flavor",
			VM{FlavorExtraSpecs: map[string]string{"computeha:recovery": "evacuate"}, ImageProperties: map[string]string{"computeha_recovery": "recreate-losing-local-data"}},
			ClassDecision{Value: config.ClassRecreateLosingLocalData, Level: LevelImage, Reason: `image property computeha_recovery="recreate-losing-local-data"`},
		},
		{
			"this VM: none, by its metadata",
			VM{ProjectID: "cattle", Metadata: map[string]string{"computeha_recovery": "none"}},
			ClassDecision{Value: config.ClassNone, Level: LevelInstance, Reason: `instance metadata computeha_recovery="none"`},
		},
		{
			"a tag names the class as key=class",
			VM{Tags: []string{"web", "computeha_recovery=recreate"}},
			ClassDecision{Value: config.ClassRecreate, Level: LevelInstance, Reason: `instance tag "computeha_recovery=recreate"`},
		},
		{
			"a value that is no class is warned about and the next coarser level decides",
			VM{ProjectID: "pets", FlavorExtraSpecs: map[string]string{"computeha:recovery": "rebuild"}},
			ClassDecision{
				Value: config.ClassEvacuate, Level: LevelProject,
				Reason:  `project pets is evacuate in policy.recovery.projects; ignored: flavor extra spec computeha:recovery="rebuild" is not a recovery class`,
				Ignored: []string{`flavor extra spec computeha:recovery="rebuild" is not a recovery class`},
			},
		},
		{
			"metadata and a tag that disagree are both ignored",
			VM{Metadata: map[string]string{"computeha_recovery": "none"}, Tags: []string{"computeha_recovery=recreate"}},
			ClassDecision{
				Value: config.ClassEvacuate, Level: LevelDefault,
				Reason:  `no finer level names a recovery class; policy.recovery.default is evacuate; ignored: instance metadata computeha_recovery="none" and instance tag "computeha_recovery=recreate" disagree`,
				Ignored: []string{`instance metadata computeha_recovery="none" and instance tag "computeha_recovery=recreate" disagree`},
			},
		},
		{
			"cells that disagree are ignored",
			VM{Cells: []string{"cell1", "cell2"}},
			ClassDecision{
				Value: config.ClassEvacuate, Level: LevelDefault,
				Reason:  "no finer level names a recovery class; policy.recovery.default is evacuate; ignored: cell cell1 is none in policy.recovery.cells, cell cell2 is evacuate in policy.recovery.cells disagree",
				Ignored: []string{"cell cell1 is none in policy.recovery.cells, cell cell2 is evacuate in policy.recovery.cells disagree"},
			},
		},
		{
			"a bare tag names no class and is ignored",
			VM{Tags: []string{"computeha_recovery"}},
			ClassDecision{
				Value: config.ClassEvacuate, Level: LevelDefault,
				Reason:  `no finer level names a recovery class; policy.recovery.default is evacuate; ignored: instance tag "computeha_recovery" names no recovery class (key=class)`,
				Ignored: []string{`instance tag "computeha_recovery" names no recovery class (key=class)`},
			},
		},
	}
	e := New(classPolicy(), nil)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, e.Class(tt.vm)); diff != "" {
				t.Errorf("class (-want +got):\n%s", diff)
			}
		})
	}
}

func TestACellRuleDecidesHAOverTheDefaultAndUnderAggregates(t *testing.T) {
	p := testPolicy()
	p.Default = false
	p.Cells = map[string]bool{"cell1": true}
	e := New(p, nil)
	if d := e.Decide(VM{Cells: []string{"cell1"}}); !d.HA || d.Level != LevelCell {
		t.Errorf("a VM of cell1: %+v, want HA on at the cell level", d)
	}
	if d := e.Decide(VM{Cells: []string{"cell1"}, Aggregates: []string{"batch"}}); d.HA || d.Level != LevelAggregate {
		t.Errorf("a VM of cell1 on a batch aggregate host: %+v, want off at the aggregate level", d)
	}
}

func TestIOErrorActionByLevel(t *testing.T) {
	p := config.Default().Policy
	p.IOError.Aggregates = map[string]config.IOErrorAction{"local-ssd": config.IOErrorMove}
	p.IOError.Projects = map[string]config.IOErrorAction{"db": config.IOErrorLeavePaused}
	e := New(p, nil)
	tests := []struct {
		name string
		vm   VM
		want IOErrorDecision
	}{
		{
			"a VM nothing names is resumed, the default",
			VM{ProjectID: "other"},
			IOErrorDecision{Value: config.IOErrorResume, Level: LevelDefault, Reason: "no finer level names an I/O-error action; policy.io_error.default is resume"},
		},
		{
			"an aggregate rule",
			VM{Aggregates: []string{"local-ssd"}},
			IOErrorDecision{Value: config.IOErrorMove, Level: LevelAggregate, Reason: "aggregate local-ssd is move in policy.io_error.aggregates"},
		},
		{
			"the project overrides the aggregate",
			VM{Aggregates: []string{"local-ssd"}, ProjectID: "db"},
			IOErrorDecision{Value: config.IOErrorLeavePaused, Level: LevelProject, Reason: "project db is leave-paused in policy.io_error.projects"},
		},
		{
			"the flavor overrides the project, in any case",
			VM{ProjectID: "db", FlavorExtraSpecs: map[string]string{"computeha:io_error": " Restart"}},
			IOErrorDecision{Value: config.IOErrorRestart, Level: LevelFlavor, Reason: `flavor extra spec computeha:io_error=" Restart"`},
		},
		{
			"the VM's own tag, key=action",
			VM{ProjectID: "db", Tags: []string{"computeha_io_error=resume"}},
			IOErrorDecision{Value: config.IOErrorResume, Level: LevelInstance, Reason: `instance tag "computeha_io_error=resume"`},
		},
		{
			"metadata that is no action is warned about and the next coarser level decides",
			VM{ProjectID: "db", Metadata: map[string]string{"computeha_io_error": "pause"}},
			IOErrorDecision{
				Value: config.IOErrorLeavePaused, Level: LevelProject,
				Reason:  `project db is leave-paused in policy.io_error.projects; ignored: instance metadata computeha_io_error="pause" is not an I/O-error action`,
				Ignored: []string{`instance metadata computeha_io_error="pause" is not an I/O-error action`},
			},
		},
		{
			"a bare tag names no action",
			VM{Tags: []string{"computeha_io_error"}},
			IOErrorDecision{
				Value: config.IOErrorResume, Level: LevelDefault,
				Reason:  `no finer level names an I/O-error action; policy.io_error.default is resume; ignored: instance tag "computeha_io_error" names no I/O-error action (key=action)`,
				Ignored: []string{`instance tag "computeha_io_error" names no I/O-error action (key=action)`},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, e.IOError(tt.vm)); diff != "" {
				t.Errorf("I/O-error action (-want +got):\n%s", diff)
			}
		})
	}
}
