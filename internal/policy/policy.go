// Package policy decides, per VM, whether it gets HA, how it is recovered (its recovery
// class), and with which restart priority.
//
// The levels, coarse to fine, are: the default, the cells of the VM's host, its aggregates,
// its availability zone, its project (these five from the configuration), its flavor's extra
// spec, its image's property, and its own metadata or tags. The finest level that says
// something wins. A level whose value is not a boolean, or whose sources disagree (two aggregates, or
// metadata and a tag), does not speak: the decision falls back to the next coarser level, and
// its Reason and Ignored say what was ignored and why, so a typo never turns HA on silently.
//
// The package is pure: the caller fills [VM] from Nova (the flavor embedded in the server,
// the image's properties from Glance, the host's aggregates) and gets a [Decision] back.
package policy

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/computeha/computeha/internal/config"
)

// VM is what the policy looks at. Nil maps and slices are fine.
type VM struct {
	ID        string
	Name      string
	ProjectID string
	// AvailabilityZone of the VM's host.
	AvailabilityZone string
	// Cells are the names of the configured cells the VM's host is in.
	Cells []string
	// Aggregates are the names of the host aggregates the VM's host is in.
	Aggregates []string
	// FlavorExtraSpecs are the extra specs of the flavor embedded in the server.
	FlavorExtraSpecs map[string]string
	// ImageProperties are the image's properties; nil for a volume-backed server.
	ImageProperties map[string]string
	// Metadata is the instance metadata.
	Metadata map[string]string
	// Tags are the instance tags.
	Tags []string
}

// Level names where a decision came from.
type Level string

// The levels, coarse to fine.
const (
	LevelDefault          Level = "default"
	LevelCell             Level = "cell"
	LevelAggregate        Level = "aggregate"
	LevelAvailabilityZone Level = "availability_zone"
	LevelProject          Level = "project"
	LevelFlavor           Level = "flavor"
	LevelImage            Level = "image"
	LevelInstance         Level = "instance"
)

// Levels lists the levels coarse to fine.
var Levels = []Level{
	LevelDefault, LevelCell, LevelAggregate, LevelAvailabilityZone, LevelProject, LevelFlavor, LevelImage, LevelInstance,
}

// Decision is the HA verdict for one VM.
type Decision struct {
	// HA is true when the VM is to be recovered.
	HA bool
	// Level is the level that decided.
	Level Level
	// Reason is one line for logs and the history: what decided, then what was ignored.
	// For example: `flavor extra spec evacuable="false"; ignored: image property
	// evacuable="maybe" is not a boolean`.
	Reason string
	// Ignored lists, finest first, the values that were ignored (malformed or conflicting);
	// each deserves a warning, since someone meant to say something there.
	Ignored []string
}

// Engine applies one policy. Build it with [New]; it is safe for concurrent use.
type Engine struct {
	pol      config.Policy
	priority []string
}

// New returns an engine for the policy section of a validated configuration and the restart
// priority property names (config evacuation.restart_priority).
func New(pol config.Policy, restartPriority []string) *Engine {
	return &Engine{pol: pol, priority: slices.Clone(restartPriority)}
}

// verdict is what one level says: nothing (!spoke), or on/off because of what.
type verdict struct {
	spoke   bool
	ha      bool
	because string
}

// Decide returns the HA decision for vm.
func (e *Engine) Decide(vm VM) Decision {
	var ignored []string
	levels := []struct {
		level Level
		eval  func(VM, *[]string) verdict
	}{
		{LevelInstance, e.instance},
		{LevelImage, func(vm VM, ig *[]string) verdict {
			return fromMap(vm.ImageProperties, e.pol.ImageKey, "image property", ig)
		}},
		{LevelFlavor, func(vm VM, ig *[]string) verdict {
			return fromMap(vm.FlavorExtraSpecs, e.pol.FlavorKey, "flavor extra spec", ig)
		}},
		{LevelProject, func(vm VM, _ *[]string) verdict {
			return fromRule(e.pol.Projects, vm.ProjectID, "project", "policy.projects")
		}},
		{LevelAvailabilityZone, func(vm VM, _ *[]string) verdict {
			return fromRule(e.pol.AvailabilityZones, vm.AvailabilityZone, "availability zone", "policy.availability_zones")
		}},
		{LevelAggregate, e.aggregates},
		{LevelCell, func(vm VM, ig *[]string) verdict {
			return fromRules(e.pol.Cells, vm.Cells, "cell", "policy.cells", ig)
		}},
	}
	for _, l := range levels {
		if v := l.eval(vm, &ignored); v.spoke {
			return decision(v.ha, l.level, v.because, ignored)
		}
	}
	return decision(e.pol.Default, LevelDefault, "no finer level sets HA; policy.default is "+onOff(e.pol.Default), ignored)
}

func decision(ha bool, level Level, because string, ignored []string) Decision {
	reason := because
	if len(ignored) > 0 {
		reason += "; ignored: " + strings.Join(ignored, "; ")
	}
	return Decision{HA: ha, Level: level, Reason: reason, Ignored: ignored}
}

// instance reads the metadata key and the tags; they must agree to speak.
func (e *Engine) instance(vm VM, ignored *[]string) verdict {
	md := fromMap(vm.Metadata, e.pol.MetadataKey, "instance metadata", ignored)
	tag := fromTags(vm.Tags, e.pol.TagKey, ignored)
	switch {
	case md.spoke && tag.spoke && md.ha != tag.ha:
		*ignored = append(*ignored, fmt.Sprintf("%s and %s disagree", md.because, tag.because))
		return verdict{}
	case md.spoke:
		return md
	default:
		return tag
	}
}

// fromMap reads key (case-insensitively: HA_Enabled, ha_enabled) from m. Several spellings of
// the key with different values do not speak.
func fromMap(m map[string]string, key, what string, ignored *[]string) verdict {
	var found []verdict
	var bad []string
	for _, k := range sortedKeys(m) {
		if !strings.EqualFold(k, key) {
			continue
		}
		because := fmt.Sprintf("%s %s=%q", what, k, m[k])
		b, err := ParseBool(m[k])
		if err != nil {
			bad = append(bad, because+" is not a boolean")
			continue
		}
		found = append(found, verdict{spoke: true, ha: b, because: because})
	}
	*ignored = append(*ignored, bad...)
	return agree(found, ignored)
}

// fromTags reads the tag key ("evacuable" means on) or key=value ("evacuable=false").
func fromTags(tags []string, key string, ignored *[]string) verdict {
	var found []verdict
	for _, t := range tags {
		k, v, hasValue := strings.Cut(t, "=")
		if !strings.EqualFold(strings.TrimSpace(k), key) {
			continue
		}
		because := fmt.Sprintf("instance tag %q", t)
		b := true
		if hasValue {
			var err error
			if b, err = ParseBool(v); err != nil {
				*ignored = append(*ignored, because+" has a value that is not a boolean")
				continue
			}
		}
		found = append(found, verdict{spoke: true, ha: b, because: because})
	}
	return agree(found, ignored)
}

// agree returns the common verdict of found, or none (noting the conflict) if they differ.
func agree(found []verdict, ignored *[]string) verdict {
	if len(found) == 0 {
		return verdict{}
	}
	for _, f := range found[1:] {
		if f.ha != found[0].ha {
			parts := make([]string, len(found))
			for i, f := range found {
				parts[i] = f.because
			}
			*ignored = append(*ignored, strings.Join(parts, ", ")+" disagree")
			return verdict{}
		}
	}
	return found[0]
}

func fromRule(rules map[string]bool, name, what, field string) verdict {
	if name == "" {
		return verdict{}
	}
	on, ok := rules[name]
	if !ok {
		return verdict{}
	}
	return verdict{spoke: true, ha: on, because: fmt.Sprintf("%s %s is %s in %s", what, name, onOff(on), field)}
}

// aggregates: every rule that names one of the host's aggregates must agree.
func (e *Engine) aggregates(vm VM, ignored *[]string) verdict {
	return fromRules(e.pol.Aggregates, vm.Aggregates, "aggregate", "policy.aggregates", ignored)
}

// fromRules: every rule that names one of names (a host's aggregates, its cells) must agree.
func fromRules(rules map[string]bool, names []string, what, field string, ignored *[]string) verdict {
	var found []verdict
	seen := map[string]bool{}
	for _, a := range names {
		if seen[a] {
			continue
		}
		seen[a] = true
		if v := fromRule(rules, a, what, field); v.spoke {
			found = append(found, v)
		}
	}
	return agree(found, ignored)
}

// ParseBool reads the booleans of both conventions, in any case and with surrounding spaces:
// true/false, yes/no, on/off, 1/0 (y/n and t/f too, as oslo's bool_from_string does).
func ParseBool(s string) (bool, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "true", "yes", "on", "1", "y", "t":
		return true, nil
	case "false", "no", "off", "0", "n", "f":
		return false, nil
	}
	return false, fmt.Errorf("%q is not a boolean (true/false, yes/no, on/off, 1/0)", s)
}

func onOff(b bool) string {
	if b {
		return "on"
	}
	return "off"
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// Priority is a VM's restart priority.
type Priority struct {
	// Value: higher restarts first; 0 when nothing sets it.
	Value int
	// Source says where Value came from, e.g. `instance metadata restart_priority="10"`, or
	// "no restart priority set" for the default.
	Source string
	// Ignored lists values that were not integers and so were skipped.
	Ignored []string
}

// Priority returns vm's restart priority: the first configured property name found, looked up
// in instance metadata, then flavor extra specs, then image properties (the VM's own setting
// before the shared ones). Names match case-insensitively. A value that is not an integer is
// skipped, and the search goes on.
func (e *Engine) Priority(vm VM) Priority {
	var ignored []string
	for _, src := range []struct {
		what string
		m    map[string]string
	}{{"instance metadata", vm.Metadata}, {"flavor extra spec", vm.FlavorExtraSpecs}, {"image property", vm.ImageProperties}} {
		for _, name := range e.priority {
			for _, k := range sortedKeys(src.m) {
				if !strings.EqualFold(k, name) {
					continue
				}
				source := fmt.Sprintf("%s %s=%q", src.what, k, src.m[k])
				v, err := strconv.Atoi(strings.TrimSpace(src.m[k]))
				if err != nil {
					ignored = append(ignored, source+" is not an integer")
					continue
				}
				return Priority{Value: v, Source: source, Ignored: ignored}
			}
		}
	}
	return Priority{Source: "no restart priority set", Ignored: ignored}
}
