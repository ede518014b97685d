package policy

import (
	"fmt"
	"strings"

	"github.com/computeha/computeha/internal/config"
)

// Choice is what a per-level section of the policy (policy.recovery, policy.io_error) gives a
// VM, and where it came from.
type Choice[T ~string] struct {
	Value T
	// Level is the level that decided.
	Level Level
	// Reason is one line: what decided, then what was ignored, e.g. `project p1 is recreate in
	// policy.recovery.projects; ignored: flavor extra spec computeha:recovery="rebuild" is not
	// a recovery class`.
	Reason string
	// Ignored lists, finest first, the values that were ignored (not a known value, or sources
	// of one level that disagree); each deserves a warning.
	Ignored []string
}

// ClassDecision is an HA VM's recovery class and where it came from.
type ClassDecision = Choice[config.Class]

// IOErrorDecision is what is done about an HA VM an I/O error paused, and where it came from.
type IOErrorDecision = Choice[config.IOErrorAction]

// Class returns vm's recovery class: the finest level that names a known class wins, as for
// HA itself. It does not look at whether the VM gets HA: ask [Engine.Decide] first.
func (e *Engine) Class(vm VM) ClassDecision {
	return choose(vm, e.pol.Recovery, config.RecoverySection)
}

// IOError returns what is done about vm when an I/O error pauses it (policy.io_error), by the
// same levels. It does not look at whether the VM gets HA: ask [Engine.Decide] first.
func (e *Engine) IOError(vm VM) IOErrorDecision {
	return choose(vm, e.pol.IOError, config.IOErrorSection)
}

// choiceVerdict is what one level says.
type choiceVerdict[T ~string] struct {
	spoke   bool
	value   T
	because string
}

// choose walks the levels of c, finest first; the first that names a known value wins.
func choose[T ~string](vm VM, c config.Choices[T], s config.Section[T]) Choice[T] {
	var ignored []string
	rules := func(m map[string]T, names []string, what, level string) func(*[]string) choiceVerdict[T] {
		return func(ig *[]string) choiceVerdict[T] {
			return fromValueRules(m, names, what, "policy."+s.Field+"."+level, ig)
		}
	}
	levels := []struct {
		level Level
		eval  func(*[]string) choiceVerdict[T]
	}{
		{LevelInstance, func(ig *[]string) choiceVerdict[T] {
			md := fromValueMap(vm.Metadata, c.MetadataKey, "instance metadata", s, ig)
			tag := fromValueTags(vm.Tags, c.TagKey, s, ig)
			switch {
			case md.spoke && tag.spoke && md.value != tag.value:
				*ig = append(*ig, fmt.Sprintf("%s and %s disagree", md.because, tag.because))
				return choiceVerdict[T]{}
			case md.spoke:
				return md
			default:
				return tag
			}
		}},
		{LevelImage, func(ig *[]string) choiceVerdict[T] {
			return fromValueMap(vm.ImageProperties, c.ImageKey, "image property", s, ig)
		}},
		{LevelFlavor, func(ig *[]string) choiceVerdict[T] {
			return fromValueMap(vm.FlavorExtraSpecs, c.FlavorKey, "flavor extra spec", s, ig)
		}},
		{LevelProject, rules(c.Projects, []string{vm.ProjectID}, "project", "projects")},
		{LevelAvailabilityZone, rules(c.AvailabilityZones, []string{vm.AvailabilityZone}, "availability zone", "availability_zones")},
		{LevelAggregate, rules(c.Aggregates, vm.Aggregates, "aggregate", "aggregates")},
		{LevelCell, rules(c.Cells, vm.Cells, "cell", "cells")},
	}
	for _, l := range levels {
		if v := l.eval(&ignored); v.spoke {
			return choice(v.value, l.level, v.because, ignored)
		}
	}
	def := c.Default
	if def == "" {
		def = s.Default // not loaded through config
	}
	return choice(def, LevelDefault, fmt.Sprintf("no finer level names %s; policy.%s.default is %s", s.ANoun(), s.Field, def), ignored)
}

func choice[T ~string](v T, level Level, because string, ignored []string) Choice[T] {
	reason := because
	if len(ignored) > 0 {
		reason += "; ignored: " + strings.Join(ignored, "; ")
	}
	return Choice[T]{Value: v, Level: level, Reason: reason, Ignored: ignored}
}

// fromValueMap reads key (case-insensitively) from m; several spellings with different values
// do not speak.
func fromValueMap[T ~string](m map[string]string, key, what string, s config.Section[T], ignored *[]string) choiceVerdict[T] {
	var found []choiceVerdict[T]
	for _, k := range sortedKeys(m) {
		if !strings.EqualFold(k, key) {
			continue
		}
		because := fmt.Sprintf("%s %s=%q", what, k, m[k])
		v, err := s.Parse(m[k])
		if err != nil {
			*ignored = append(*ignored, because+" is not "+s.ANoun())
			continue
		}
		found = append(found, choiceVerdict[T]{spoke: true, value: v, because: because})
	}
	return valuesAgree(found, ignored)
}

// fromValueTags reads key=value tags.
func fromValueTags[T ~string](tags []string, key string, s config.Section[T], ignored *[]string) choiceVerdict[T] {
	var found []choiceVerdict[T]
	for _, t := range tags {
		k, val, hasValue := strings.Cut(t, "=")
		if !strings.EqualFold(strings.TrimSpace(k), key) {
			continue
		}
		because := fmt.Sprintf("instance tag %q", t)
		if !hasValue {
			*ignored = append(*ignored, fmt.Sprintf("%s names no %s (key=%s)", because, s.Noun, s.Short))
			continue
		}
		v, err := s.Parse(val)
		if err != nil {
			*ignored = append(*ignored, because+" is not "+s.ANoun())
			continue
		}
		found = append(found, choiceVerdict[T]{spoke: true, value: v, because: because})
	}
	return valuesAgree(found, ignored)
}

// fromValueRules: every rule naming one of names must agree. The configuration's values are
// validated when it is loaded, so none is unknown here.
func fromValueRules[T ~string](rules map[string]T, names []string, what, field string, ignored *[]string) choiceVerdict[T] {
	var found []choiceVerdict[T]
	seen := map[string]bool{}
	for _, n := range names {
		if n == "" || seen[n] {
			continue
		}
		seen[n] = true
		if v, ok := rules[n]; ok {
			found = append(found, choiceVerdict[T]{spoke: true, value: v, because: fmt.Sprintf("%s %s is %s in %s", what, n, v, field)})
		}
	}
	return valuesAgree(found, ignored)
}

func valuesAgree[T ~string](found []choiceVerdict[T], ignored *[]string) choiceVerdict[T] {
	if len(found) == 0 {
		return choiceVerdict[T]{}
	}
	for _, f := range found[1:] {
		if f.value != found[0].value {
			parts := make([]string, len(found))
			for i, f := range found {
				parts[i] = f.because
			}
			*ignored = append(*ignored, strings.Join(parts, ", ")+" disagree")
			return choiceVerdict[T]{}
		}
	}
	return found[0]
}
