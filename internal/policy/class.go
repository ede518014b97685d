package policy

import (
	"fmt"
	"strings"

	"github.com/computeha/computeha/internal/config"
)

// ClassDecision is an HA VM's recovery class and where it came from.
type ClassDecision struct {
	Class config.Class
	// Level is the level that decided.
	Level Level
	// Reason is one line: what decided, then what was ignored, e.g. `project p1 is recreate in
	// policy.recovery.projects; ignored: flavor extra spec computeha:recovery="rebuild" is not
	// a recovery class`.
	Reason string
	// Ignored lists, finest first, the values that were ignored (not a class, or sources of
	// one level that disagree); each deserves a warning.
	Ignored []string
}

// classVerdict is what one level says about the class.
type classVerdict struct {
	spoke   bool
	class   config.Class
	because string
}

// Class returns vm's recovery class: the finest level that names a known class wins, as for
// HA itself. It does not look at whether the VM gets HA: ask [Engine.Decide] first.
func (e *Engine) Class(vm VM) ClassDecision {
	r := e.pol.Recovery
	var ignored []string
	levels := []struct {
		level Level
		eval  func(*[]string) classVerdict
	}{
		{LevelInstance, func(ig *[]string) classVerdict {
			md := classFromMap(vm.Metadata, r.MetadataKey, "instance metadata", ig)
			tag := classFromTags(vm.Tags, r.TagKey, ig)
			switch {
			case md.spoke && tag.spoke && md.class != tag.class:
				*ig = append(*ig, fmt.Sprintf("%s and %s disagree", md.because, tag.because))
				return classVerdict{}
			case md.spoke:
				return md
			default:
				return tag
			}
		}},
		{LevelImage, func(ig *[]string) classVerdict {
			return classFromMap(vm.ImageProperties, r.ImageKey, "image property", ig)
		}},
		{LevelFlavor, func(ig *[]string) classVerdict {
			return classFromMap(vm.FlavorExtraSpecs, r.FlavorKey, "flavor extra spec", ig)
		}},
		{LevelProject, func(ig *[]string) classVerdict {
			return classFromRules(r.Projects, []string{vm.ProjectID}, "project", "policy.recovery.projects", ig)
		}},
		{LevelAvailabilityZone, func(ig *[]string) classVerdict {
			return classFromRules(r.AvailabilityZones, []string{vm.AvailabilityZone}, "availability zone", "policy.recovery.availability_zones", ig)
		}},
		{LevelAggregate, func(ig *[]string) classVerdict {
			return classFromRules(r.Aggregates, vm.Aggregates, "aggregate", "policy.recovery.aggregates", ig)
		}},
		{LevelCell, func(ig *[]string) classVerdict {
			return classFromRules(r.Cells, vm.Cells, "cell", "policy.recovery.cells", ig)
		}},
	}
	for _, l := range levels {
		if v := l.eval(&ignored); v.spoke {
			return classDecision(v.class, l.level, v.because, ignored)
		}
	}
	def := r.Default
	if def == "" {
		def = config.DefaultClass
	}
	return classDecision(def, LevelDefault, "no finer level names a recovery class; policy.recovery.default is "+string(def), ignored)
}

func classDecision(c config.Class, level Level, because string, ignored []string) ClassDecision {
	reason := because
	if len(ignored) > 0 {
		reason += "; ignored: " + strings.Join(ignored, "; ")
	}
	return ClassDecision{Class: c, Level: level, Reason: reason, Ignored: ignored}
}

// classFromMap reads key (case-insensitively) from m; several spellings with different classes
// do not speak.
func classFromMap(m map[string]string, key, what string, ignored *[]string) classVerdict {
	var found []classVerdict
	for _, k := range sortedKeys(m) {
		if !strings.EqualFold(k, key) {
			continue
		}
		because := fmt.Sprintf("%s %s=%q", what, k, m[k])
		c, err := config.ParseClass(m[k])
		if err != nil {
			*ignored = append(*ignored, because+" is not a recovery class")
			continue
		}
		found = append(found, classVerdict{spoke: true, class: c, because: because})
	}
	return classAgree(found, ignored)
}

// classFromTags reads key=class tags.
func classFromTags(tags []string, key string, ignored *[]string) classVerdict {
	var found []classVerdict
	for _, t := range tags {
		k, v, hasValue := strings.Cut(t, "=")
		if !strings.EqualFold(strings.TrimSpace(k), key) {
			continue
		}
		because := fmt.Sprintf("instance tag %q", t)
		if !hasValue {
			*ignored = append(*ignored, because+" names no recovery class (key=class)")
			continue
		}
		c, err := config.ParseClass(v)
		if err != nil {
			*ignored = append(*ignored, because+" is not a recovery class")
			continue
		}
		found = append(found, classVerdict{spoke: true, class: c, because: because})
	}
	return classAgree(found, ignored)
}

// classFromRules: every rule naming one of names must agree. The configuration's classes are
// validated when it is loaded, so none is unknown here.
func classFromRules(rules map[string]config.Class, names []string, what, field string, ignored *[]string) classVerdict {
	var found []classVerdict
	seen := map[string]bool{}
	for _, n := range names {
		if n == "" || seen[n] {
			continue
		}
		seen[n] = true
		if c, ok := rules[n]; ok {
			found = append(found, classVerdict{spoke: true, class: c, because: fmt.Sprintf("%s %s is %s in %s", what, n, c, field)})
		}
	}
	return classAgree(found, ignored)
}

func classAgree(found []classVerdict, ignored *[]string) classVerdict {
	if len(found) == 0 {
		return classVerdict{}
	}
	for _, f := range found[1:] {
		if f.class != found[0].class {
			parts := make([]string, len(found))
			for i, f := range found {
				parts[i] = f.because
			}
			*ignored = append(*ignored, strings.Join(parts, ", ")+" disagree")
			return classVerdict{}
		}
	}
	return found[0]
}
