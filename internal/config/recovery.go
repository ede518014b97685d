package config

import (
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"
	"time"
)

// Class is how an HA VM is recovered: the recovery class the policy gives it, at the same
// levels that decide whether it gets HA at all (policy.recovery).
type Class string

// Recovery classes. Which Nova operation carries one out depends on what happened: a fenced
// host's VMs can only be rebuilt elsewhere (evacuate), a running host that must give its VMs
// up moves them (live or cold migration).
const (
	// ClassEvacuate keeps the VM, its identity and, on shared or volume storage, its disks:
	// evacuated from a fenced host; from a running host live-migrated when it runs, cold-
	// migrated when it is stopped. The default.
	ClassEvacuate Class = "evacuate"
	// ClassColdMigrate is evacuate, but a running host gives the VM up by a cold migration
	// even when it runs (a VM that cannot be live-migrated: passthrough devices, say).
	ClassColdMigrate Class = "cold-migrate"
	// ClassRecreate deletes the VM and creates it again from the same specification (name,
	// flavor, image or boot volume, metadata, key pair, server group, ports): for "cattle"
	// whose owners chose it. A VM that keeps data on its host's disks (a root disk made from
	// an image, an ephemeral disk) is evacuated instead, since recreating it would lose them.
	ClassRecreate Class = "recreate"
	// ClassRecreateLosingLocalData is recreate even for a VM with data on its host's disks:
	// the operator says, explicitly, that the data may be lost.
	ClassRecreateLosingLocalData Class = "recreate-losing-local-data"
	// ClassNone leaves the VM where it is; the decision is recorded.
	ClassNone Class = "none"
)

// Classes lists the recovery classes, in the order messages name them.
var Classes = []Class{ClassEvacuate, ClassColdMigrate, ClassRecreate, ClassRecreateLosingLocalData, ClassNone}

// Valid tells whether c is a known class.
func (c Class) Valid() bool { return oneOf(c, Classes) }

// Choices gives each HA VM one of a set of named values (a recovery class, what is done about
// an I/O error) at the levels of the HA policy: the default, its host's cell, aggregates and
// availability zone, its project (these from the configuration), its flavor's extra spec, its
// image's property and its own metadata or tag. The finest level that names a known value
// wins; a value that is not one is warned about and the next coarser level decides.
type Choices[T ~string] struct {
	// Default is the value when no finer level names one.
	Default T `yaml:"default"`
	// Cells, Aggregates, AvailabilityZones and Projects map a name to a value.
	Cells             map[string]T `yaml:"cells"`
	Aggregates        map[string]T `yaml:"aggregates"`
	AvailabilityZones map[string]T `yaml:"availability_zones"`
	Projects          map[string]T `yaml:"projects"`
	// FlavorKey is the flavor extra spec naming the value.
	FlavorKey string `yaml:"flavor_key"`
	// ImageKey is the image property naming the value.
	ImageKey string `yaml:"image_key"`
	// MetadataKey is the instance metadata key naming the value.
	MetadataKey string `yaml:"metadata_key"`
	// TagKey is the instance tag naming the value, as key=value.
	TagKey string `yaml:"tag_key"`
}

// RecoveryPolicy gives each HA VM its recovery class (policy.recovery).
type RecoveryPolicy = Choices[Class]

// Section says what one per-level section of the policy is: where it is, what its values are
// and its defaults. The configuration checks a section by it and the policy reads it by it.
type Section[T ~string] struct {
	// Field is its name under policy: "recovery".
	Field string
	// Noun is what a value is, for messages: "recovery class"; Short names it in a tag's
	// key=value: "class".
	Noun, Short string
	// Values are the known values, in the order messages name them; Default is the default.
	Values  []T
	Default T
	// FlavorKey is the default flavor extra spec, Key the default image property, metadata
	// key and tag.
	FlavorKey, Key string
}

// RecoverySection is policy.recovery.
var RecoverySection = Section[Class]{
	Field: "recovery", Noun: "recovery class", Short: "class", Values: Classes, Default: DefaultClass,
	FlavorKey: DefaultRecoveryFlavorKey, Key: DefaultRecoveryPolicyKey,
}

// Defaults is a section with every default and no rule.
func (s Section[T]) Defaults() Choices[T] {
	return Choices[T]{Default: s.Default, FlavorKey: s.FlavorKey, ImageKey: s.Key, MetadataKey: s.Key, TagKey: s.Key}
}

// ANoun is the noun with its article: "a recovery class", "an I/O-error action".
func (s Section[T]) ANoun() string {
	if strings.ContainsRune("AEIOUaeiou", rune(s.Noun[0])) {
		return "an " + s.Noun
	}
	return "a " + s.Noun
}

// Parse reads a value from a property (case and surrounding spaces ignored).
func (s Section[T]) Parse(v string) (T, error) {
	t := T(strings.ToLower(strings.TrimSpace(v)))
	if oneOf(t, s.Values) {
		return t, nil
	}
	return "", fmt.Errorf("%q is not %s (%s)", v, s.ANoun(), list(s.Values))
}

// Cell is a named set of compute hosts: Nova does not expose its cells through its API, so
// the configuration says which hosts each one holds, as a list or a Nova aggregate. Policy
// rules can name cells (policy.cells, policy.recovery.cells).
type Cell struct {
	// Hosts are Nova host names. Exactly one of Hosts and Aggregate is set.
	Hosts []string `yaml:"hosts"`
	// Aggregate names a Nova host aggregate whose hosts form the cell.
	Aggregate string `yaml:"aggregate"`
}

// Cells maps a cell name to its hosts.
type Cells map[string]Cell

// Of returns the cells host is in, by name, resolving aggregate-defined cells with
// aggregateHosts (aggregate name → its hosts).
func (cs Cells) Of(host string, aggregateHosts map[string][]string) []string {
	var out []string
	for _, name := range sortedCellNames(cs) {
		c := cs[name]
		hosts := c.Hosts
		if c.Aggregate != "" {
			hosts = aggregateHosts[c.Aggregate]
		}
		for _, h := range hosts {
			if h == host {
				out = append(out, name)
				break
			}
		}
	}
	return out
}

func sortedCellNames(cs Cells) []string {
	names := make([]string, 0, len(cs))
	for n := range cs {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Tiers turn restart priorities into restart tiers: the VMs of one priority are asked for
// only once every VM of the higher priorities runs again on its target (ACTIVE, plus
// ReadyDelay), or Timeout has passed since that tier began, so that one stuck VM never holds
// the rest back. Disabled, priorities only order the requests, all sent at once.
type Tiers struct {
	// Enabled turns tiers on. Default false.
	Enabled bool `yaml:"enabled"`
	// Timeout bounds how long one tier holds the next back. Default 5m.
	Timeout time.Duration `yaml:"timeout"`
	// ReadyDelay is how long a VM must have been ACTIVE on its target before it counts as
	// ready (the time its services take to start). Default 0.
	ReadyDelay time.Duration `yaml:"ready_delay"`
}

// Defaults of the recovery policy and tiers.
const (
	DefaultClass              = ClassEvacuate
	DefaultRecoveryFlavorKey  = "computeha:recovery"
	DefaultRecoveryPolicyKey  = "computeha_recovery"
	DefaultTierTimeout        = 5 * time.Minute
	DefaultPerHostConcurrency = 10
	DefaultRefresh            = 10 * time.Second
)

// DefaultRecoveryPolicy is the recovery policy's defaults.
func DefaultRecoveryPolicy() RecoveryPolicy { return RecoverySection.Defaults() }

// validate checks the rules of section s.
func (r Choices[T]) validate(s Section[T], cells Cells, p *problems) {
	field, valid := s.Field, s.Values
	if !oneOf(r.Default, valid) {
		p.add("policy.%s.default: %q is not one of %s", field, r.Default, list(valid))
	}
	for _, m := range []struct {
		field string
		rules map[string]T
	}{{"cells", r.Cells}, {"aggregates", r.Aggregates}, {"availability_zones", r.AvailabilityZones}, {"projects", r.Projects}} {
		for _, name := range slices.Sorted(maps.Keys(m.rules)) {
			switch {
			case strings.TrimSpace(name) == "":
				p.add("policy.%s.%s: a rule has an empty name", field, m.field)
			case !oneOf(m.rules[name], valid):
				p.add("policy.%s.%s.%s: %q is not one of %s", field, m.field, name, m.rules[name], list(valid))
			case m.field == "cells" && !hasCell(cells, name):
				p.add("policy.%s.cells.%s: no cell of that name in cells", field, name)
			}
		}
	}
	for _, k := range []struct{ field, v string }{
		{"flavor_key", r.FlavorKey}, {"image_key", r.ImageKey}, {"metadata_key", r.MetadataKey}, {"tag_key", r.TagKey},
	} {
		if strings.TrimSpace(k.v) == "" {
			p.add("policy.%s.%s: must not be empty", field, k.field)
		}
	}
	if strings.Contains(r.TagKey, "=") {
		p.add("policy.%s.tag_key: %q must not contain '='; tags are read as key=%s", field, r.TagKey, s.Short)
	}
}

func hasCell(cells Cells, name string) bool {
	_, ok := cells[name]
	return ok
}

func (cs Cells) validate(p *problems) {
	for _, name := range sortedCellNames(cs) {
		c := cs[name]
		f := "cells." + name
		if strings.TrimSpace(name) == "" {
			p.add("cells: a cell has an empty name")
			f = `cells.""`
		}
		switch {
		case len(c.Hosts) > 0 && c.Aggregate != "":
			p.add("%s: set either hosts or aggregate, not both", f)
		case len(c.Hosts) == 0 && c.Aggregate == "":
			p.add("%s: needs hosts (a list) or aggregate (a Nova aggregate name)", f)
		}
		seen := map[string]bool{}
		for i, h := range c.Hosts {
			switch {
			case strings.TrimSpace(h) == "":
				p.add("%s.hosts[%d]: empty host name", f, i)
			case seen[h]:
				p.add("%s.hosts: %q is listed twice", f, h)
			}
			seen[h] = true
		}
	}
}

func (t Tiers) validate(p *problems) {
	if t.Timeout <= 0 {
		p.add("evacuation.tiers.timeout: must be positive, got %s", t.Timeout)
	}
	if t.ReadyDelay < 0 {
		p.add("evacuation.tiers.ready_delay: %s is negative", t.ReadyDelay)
	}
	if t.ReadyDelay >= t.Timeout && t.Timeout > 0 {
		p.add("evacuation.tiers.ready_delay: %s is not shorter than the tier timeout %s: no tier could ever be ready", t.ReadyDelay, t.Timeout)
	}
}

// String is the class's name.
func (c Class) String() string { return string(c) }
