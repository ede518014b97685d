package fence

import (
	"cmp"
	"fmt"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Kind is the wire type of a parameter, as fence-agents metadata names it.
type Kind string

// Parameter kinds of the fence-agents metadata schema.
const (
	KindString  Kind = "string"
	KindInteger Kind = "integer"
	KindBoolean Kind = "boolean"
	KindSecond  Kind = "second"
	KindSelect  Kind = "select"
)

// Param is one option of an agent, read from the struct tags of its
// parameter struct:
//
//	fence:"name"        the parameter name (stdin key; --name with '_' as '-')
//	old:"name"          a deprecated name still accepted (ipaddr, login, passwd, port)
//	short:"a"           the short command-line option
//	metavar:"ip"        what the value is, for help and getopt text
//	default:"623"       the default value
//	required:"true"     the option must be given
//	choices:"a,b"       the only values allowed (makes the kind "select")
//	help:"..."          one-line description
//	secret:"true"       never printed, logged or passed on
//
// Field types: string, int, bool and time.Duration (given in seconds).
type Param struct {
	Name     string
	Old      string
	Short    string
	Metavar  string
	Default  string
	Required bool
	Choices  []string
	Help     string
	Secret   bool
	Kind     Kind

	index []int // field path inside the struct
}

// LongOpt is the command-line spelling of the parameter, without dashes.
func (p Param) LongOpt() string { return strings.ReplaceAll(p.Name, "_", "-") }

// TakesValue tells whether the option carries a value on the command line.
func (p Param) TakesValue() bool { return p.Kind != KindBoolean }

// Spec is the ordered list of parameters of an agent.
type Spec []Param

// Lookup finds a parameter by its name, its deprecated name, or either with
// '-' in place of '_', as fence-agents accepts them on standard input.
func (s Spec) Lookup(key string) (Param, bool) {
	k := strings.ReplaceAll(key, "-", "_")
	for _, p := range s {
		if p.Name == k || (p.Old != "" && p.Old == k) {
			return p, true
		}
	}
	return Param{}, false
}

// Has tells whether the spec has a parameter called name.
func (s Spec) Has(name string) bool {
	_, ok := s.Lookup(name)
	return ok
}

var durationType = reflect.TypeFor[time.Duration]()

// SpecOf reads the parameter spec from the tags of the struct v points to.
// Embedded structs contribute their fields in place. It panics on a
// malformed tag: specs are fixed at compile time and tested.
func SpecOf(v any) Spec {
	t := reflect.TypeOf(v)
	if t.Kind() != reflect.Pointer || t.Elem().Kind() != reflect.Struct {
		panic(fmt.Sprintf("fence: SpecOf needs a pointer to a struct, got %T", v))
	}
	var spec Spec
	collect(t.Elem(), nil, &spec)
	// The action comes first, as in every fence agent's metadata.
	slices.SortStableFunc(spec, func(a, b Param) int {
		return cmp.Compare(boolRank(a.Name != "action"), boolRank(b.Name != "action"))
	})
	seen := map[string]bool{}
	for _, p := range spec {
		for _, n := range []string{p.Name, p.Old} {
			if n == "" {
				continue
			}
			if seen[n] {
				panic(fmt.Sprintf("fence: parameter %q declared twice", n))
			}
			seen[n] = true
		}
	}
	return spec
}

func boolRank(b bool) int {
	if b {
		return 1
	}
	return 0
}

func collect(t reflect.Type, prefix []int, spec *Spec) {
	for i := range t.NumField() {
		f := t.Field(i)
		index := append(append([]int(nil), prefix...), i)
		name, ok := f.Tag.Lookup("fence")
		if !ok {
			if f.Anonymous && f.Type.Kind() == reflect.Struct {
				collect(f.Type, index, spec)
			}
			continue
		}
		p := Param{
			Name:     name,
			Old:      f.Tag.Get("old"),
			Short:    f.Tag.Get("short"),
			Metavar:  f.Tag.Get("metavar"),
			Default:  f.Tag.Get("default"),
			Required: f.Tag.Get("required") == "true",
			Help:     f.Tag.Get("help"),
			Secret:   f.Tag.Get("secret") == "true",
			index:    index,
		}
		if c := f.Tag.Get("choices"); c != "" {
			p.Choices = strings.Split(c, ",")
		}
		switch {
		case f.Type == durationType:
			p.Kind = KindSecond
		case f.Type.Kind() == reflect.String && p.Choices != nil:
			p.Kind = KindSelect
		case f.Type.Kind() == reflect.String:
			p.Kind = KindString
		case f.Type.Kind() == reflect.Int:
			p.Kind = KindInteger
		case f.Type.Kind() == reflect.Bool:
			p.Kind = KindBoolean
		default:
			panic(fmt.Sprintf("fence: parameter %q has unsupported type %s", name, f.Type))
		}
		if p.Help == "" {
			panic(fmt.Sprintf("fence: parameter %q has no help text", name))
		}
		*spec = append(*spec, p)
	}
}

// ParseBool reads a boolean in the spellings fence-agents accepts; ok is
// false for anything else.
func ParseBool(s string) (v, ok bool) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "1", "yes", "on", "true":
		return true, true
	case "0", "no", "off", "false":
		return false, true
	}
	return false, false
}

// parseSeconds reads a non-negative number of seconds, fractions allowed.
func parseSeconds(s string) (time.Duration, error) {
	f, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
	if err != nil || f < 0 || f > 1e6 {
		return 0, fmt.Errorf("not a valid time in seconds")
	}
	return time.Duration(f * float64(time.Second)), nil
}

// set stores the textual value s into the field of p inside the struct rv.
func (p Param) set(rv reflect.Value, s string) error {
	f := rv.FieldByIndex(p.index)
	switch p.Kind {
	case KindSecond:
		d, err := parseSeconds(s)
		if err != nil {
			return err
		}
		f.SetInt(int64(d))
	case KindInteger:
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil {
			return fmt.Errorf("not a valid integer")
		}
		f.SetInt(int64(n))
	case KindBoolean:
		b, ok := ParseBool(s)
		if !ok {
			return fmt.Errorf("not a valid boolean (use 1/yes/on/true or 0/no/off/false)")
		}
		f.SetBool(b)
	case KindSelect:
		for _, c := range p.Choices {
			if strings.EqualFold(c, s) {
				f.SetString(c)
				return nil
			}
		}
		return fmt.Errorf("not one of the valid values: %s", strings.Join(p.Choices, ", "))
	default:
		f.SetString(s)
	}
	return nil
}
