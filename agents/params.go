package agents

import (
	"fmt"
	"math"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/computeha/computeha/internal/linelog"
)

// Kind is a parameter's content type in the meta-data.
type Kind string

// Content types ra-api-1.dtd allows.
const (
	KindString  Kind = "string"
	KindInteger Kind = "integer"
	KindBoolean Kind = "boolean"
	KindTime    Kind = "time"
)

// Param is one parameter of an agent, read from the struct tags of its
// parameter struct:
//
//	ocf:"name"        the parameter name (OCF_RESKEY_<name>, pcs name=value)
//	default:"value"   the default, shown in the meta-data
//	required:"true"   Pacemaker (and pcs) insist on a value
//	unique:"true"     no two resources may share the value
//	help:"..."        the one-line shortdesc
//	long:"..."        the longdesc (help when absent)
//
// Field types: string, int, bool and time.Duration. Booleans accept
// 1/yes/on/true and 0/no/off/false; times accept a number of seconds or a
// number with a unit (ms, s, sec, m, min, h, hr), as Pacemaker does.
type Param struct {
	Name     string
	Default  string
	Required bool
	Unique   bool
	Help     string
	Long     string
	Kind     Kind

	index []int
}

// Spec is the ordered list of an agent's parameters.
type Spec []Param

// Lookup finds a parameter by name.
func (s Spec) Lookup(name string) (Param, bool) {
	for _, p := range s {
		if p.Name == name {
			return p, true
		}
	}
	return Param{}, false
}

var durationType = reflect.TypeFor[time.Duration]()

// SpecOf reads the parameter spec from the tags of the struct v points to.
// Embedded structs contribute their fields in place. It panics on a
// malformed spec: specs are fixed at compile time and tested.
func SpecOf(v any) Spec {
	t := reflect.TypeOf(v)
	if t == nil || t.Kind() != reflect.Pointer || t.Elem().Kind() != reflect.Struct {
		panic(fmt.Sprintf("agents: SpecOf needs a pointer to a struct, got %T", v))
	}
	var spec Spec
	collect(t.Elem(), nil, &spec)
	seen := map[string]bool{}
	for _, p := range spec {
		if seen[p.Name] {
			panic(fmt.Sprintf("agents: parameter %q declared twice", p.Name))
		}
		seen[p.Name] = true
	}
	return spec
}

func collect(t reflect.Type, prefix []int, spec *Spec) {
	for i := range t.NumField() {
		f := t.Field(i)
		index := append(append([]int(nil), prefix...), i)
		name, ok := f.Tag.Lookup("ocf")
		if !ok {
			if f.Anonymous && f.Type.Kind() == reflect.Struct {
				collect(f.Type, index, spec)
			}
			continue
		}
		p := Param{
			Name:     name,
			Default:  f.Tag.Get("default"),
			Required: f.Tag.Get("required") == "true",
			Unique:   f.Tag.Get("unique") == "true",
			Help:     f.Tag.Get("help"),
			Long:     f.Tag.Get("long"),
			index:    index,
		}
		switch {
		case f.Type == durationType:
			p.Kind = KindTime
		case f.Type.Kind() == reflect.String:
			p.Kind = KindString
		case f.Type.Kind() == reflect.Int:
			p.Kind = KindInteger
		case f.Type.Kind() == reflect.Bool:
			p.Kind = KindBoolean
		default:
			panic(fmt.Sprintf("agents: parameter %q has unsupported type %s", name, f.Type))
		}
		if name == "" || strings.ContainsAny(name, " =-") || strings.HasPrefix(name, "CRM_meta") {
			panic(fmt.Sprintf("agents: %q is not a valid OCF parameter name", name))
		}
		if p.Help == "" {
			panic(fmt.Sprintf("agents: parameter %q has no help text", name))
		}
		if p.Default != "" {
			if err := p.set(reflect.New(t).Elem(), p.Default); err != nil {
				panic(fmt.Sprintf("agents: default of parameter %q: %v", name, err))
			}
		}
		*spec = append(*spec, p)
	}
}

// ParseBool accepts the spellings of ocf_is_true.
func ParseBool(s string) (bool, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "1", "yes", "y", "on", "true":
		return true, nil
	case "0", "no", "n", "off", "false":
		return false, nil
	}
	return false, fmt.Errorf("not a boolean (use 1/yes/on/true or 0/no/off/false)")
}

// ParseTime reads a time the way Pacemaker does: a bare number is seconds,
// otherwise a number followed by ms, s, sec, m, min, h or hr.
func ParseTime(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	i := strings.IndexFunc(s, func(r rune) bool { return (r < '0' || r > '9') && r != '.' })
	num, unit := s, ""
	if i >= 0 {
		num, unit = s[:i], strings.ToLower(strings.TrimSpace(s[i:]))
	}
	f, err := strconv.ParseFloat(num, 64)
	if err != nil || f < 0 || f > 1e7 {
		return 0, fmt.Errorf("not a time (a number of seconds, or with a unit: 500ms, 30s, 5min, 1h)")
	}
	mult := map[string]time.Duration{
		"": time.Second, "s": time.Second, "sec": time.Second,
		"ms": time.Millisecond, "msec": time.Millisecond,
		"m": time.Minute, "min": time.Minute, "h": time.Hour, "hr": time.Hour,
	}
	m, ok := mult[unit]
	if !ok {
		return 0, fmt.Errorf("unknown time unit %q", unit)
	}
	// The number may name up to 1e7 hours, past what a Duration holds: converting that would
	// wrap to a negative time.
	if d := f * float64(m); d < float64(math.MaxInt64) {
		return time.Duration(d), nil
	}
	return 0, fmt.Errorf("too long a time (at most %dh)", math.MaxInt64/int64(time.Hour))
}

func (p Param) set(rv reflect.Value, s string) error {
	f := rv.FieldByIndex(p.index)
	switch p.Kind {
	case KindTime:
		d, err := ParseTime(s)
		if err != nil {
			return err
		}
		f.SetInt(int64(d))
	case KindInteger:
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil {
			return fmt.Errorf("not an integer")
		}
		f.SetInt(int64(n))
	case KindBoolean:
		b, err := ParseBool(s)
		if err != nil {
			return err
		}
		f.SetBool(b)
	default:
		f.SetString(s)
	}
	return nil
}

// Decode fills the struct dst points to from values (parameter name to
// OCF_RESKEY_ value), using defaults for what was not given or given
// empty. A missing required parameter or a value of the wrong type is a
// Configured error naming the parameter: it cannot work on any node. Every
// other field is still filled, so that a stop can go on with what is
// usable; the first problem is returned.
func Decode(spec Spec, values map[string]string, dst any) error {
	rv := reflect.ValueOf(dst).Elem()
	var first error
	note := func(err error) {
		if first == nil {
			first = err
		}
	}
	for _, p := range spec {
		v := values[p.Name]
		if v == "" {
			if p.Required {
				note(Configured("parameter %s is required", p.Name))
			}
			v = p.Default
		}
		if v == "" {
			continue
		}
		if err := p.set(rv, v); err != nil {
			note(Configured("parameter %s=%q: %v", p.Name, clip(v), err))
			if p.Default != "" {
				_ = p.set(rv, p.Default)
			}
		}
	}
	return first
}

// clip keeps a bad value readable in a one-line reason.
func clip(s string) string {
	if len(s) > 64 {
		s = s[:64] + "..."
	}
	return linelog.OneLine(s)
}
