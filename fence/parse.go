package fence

import (
	"bufio"
	"fmt"
	"io"
	"reflect"
	"strings"
)

// Input is what an agent was given, before it is decoded: values by
// canonical parameter name, plus what the parser chose to ignore.
type Input struct {
	Values   map[string]string
	Warnings []string
	// Help and Version are the command-line-only -h/--help and -V/--version.
	Help, Version bool
	// VerboseLevel counts -v flags (or is 1 for verbose=1 on stdin).
	VerboseLevel int
	// Nodename is the Pacemaker node being fenced, which the fencer sends
	// beside the plug (they differ when pcmk_host_map maps one to the other).
	Nodename string
}

// UsageError is bad input: an unknown option, a malformed line, a missing
// or invalid value. Agents exit 1 on it, as fence-agents do.
type UsageError struct{ Msg string }

func (e *UsageError) Error() string { return e.Msg }

func usagef(format string, a ...any) error { return &UsageError{Msg: fmt.Sprintf(format, a...)} }

// maxStdin bounds what an agent reads from standard input: option lists are
// a few hundred bytes, so anything near this is not an option list.
const maxStdin = 1 << 20

// ParseStdin reads options as Pacemaker's fencer sends them: one key=value
// per line, blank lines and #-comments skipped, a value's surrounding double
// quotes stripped. Keys may be a parameter's name, its deprecated name, or
// either with '-' for '_'. "nodename" is kept apart (Input.Nodename); other unknown
// keys are ignored with a warning. A line without '=' is an error; its text is
// not repeated, since it may be a secret.
func ParseStdin(spec Spec, r io.Reader) (*Input, error) {
	in := &Input{Values: map[string]string{}}
	sc := bufio.NewScanner(io.LimitReader(r, maxStdin))
	sc.Buffer(make([]byte, 0, 4096), maxStdin)
	lineNo := 0
	for sc.Scan() {
		lineNo++
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		key, value, ok := strings.Cut(line, "=")
		key = strings.TrimSpace(key)
		if !ok || key == "" {
			return nil, usagef("Parse error: line %d of standard input is not of the form key=value", lineNo)
		}
		if len(value) >= 2 && strings.HasPrefix(value, `"`) && strings.HasSuffix(value, `"`) {
			value = value[1 : len(value)-1]
		}
		if key == "nodename" {
			in.Nodename = value
			continue
		}
		p, found := spec.Lookup(key)
		if !found {
			in.Warnings = append(in.Warnings, fmt.Sprintf("Parse error: Ignoring unknown option '%s'", sanitizeKey(key)))
			continue
		}
		in.Values[p.Name] = value
	}
	if err := sc.Err(); err != nil {
		return nil, usagef("Parse error: reading standard input: %v", err)
	}
	if v, ok := in.Values["verbose"]; ok {
		if b, _ := ParseBool(v); b {
			in.VerboseLevel = 1
		}
	}
	return in, nil
}

// sanitizeKey keeps a warning readable when a key is garbage.
func sanitizeKey(k string) string {
	if len(k) > 64 {
		k = k[:64] + "..."
	}
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return '?'
		}
		return r
	}, k)
}

// ParseArgs reads options from the command line with GNU getopt rules, as
// fence-agents do: --long=value, --long value, -s value, -svalue, clustered
// boolean short options (-vv), unique prefixes of long options, and "--"
// ending the options. Arguments that are not options are warned about.
func ParseArgs(spec Spec, args []string) (*Input, error) {
	in := &Input{Values: map[string]string{}}
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "--":
			if rest := args[i+1:]; len(rest) > 0 {
				in.Warnings = append(in.Warnings, fmt.Sprintf("Unused arguments on command line: %s", strings.Join(rest, " ")))
			}
			return in, nil
		case strings.HasPrefix(a, "--"):
			name, value, hasValue := strings.Cut(a[2:], "=")
			switch name {
			case "help":
				in.Help = true
				continue
			case "version":
				in.Version = true
				continue
			}
			p, err := spec.lookupLong(name)
			if err != nil {
				return nil, err
			}
			if p.TakesValue() {
				if !hasValue {
					if i+1 >= len(args) {
						return nil, usagef("Parse error: option --%s requires argument", p.LongOpt())
					}
					i++
					value = args[i]
				}
			} else {
				if hasValue {
					return nil, usagef("Parse error: option --%s must not have an argument", p.LongOpt())
				}
				value = "1"
			}
			in.set(p, value)
		case strings.HasPrefix(a, "-") && a != "-":
			for j := 1; j < len(a); j++ {
				c := a[j : j+1]
				switch c {
				case "h":
					in.Help = true
					continue
				case "V":
					in.Version = true
					continue
				}
				p, ok := spec.lookupShort(c)
				if !ok {
					return nil, usagef("Parse error: option -%s not recognized", c)
				}
				if !p.TakesValue() {
					in.set(p, "1")
					continue
				}
				value := a[j+1:]
				if value == "" {
					if i+1 >= len(args) {
						return nil, usagef("Parse error: option -%s requires argument", c)
					}
					i++
					value = args[i]
				}
				in.set(p, value)
				break
			}
		default:
			in.Warnings = append(in.Warnings, fmt.Sprintf("Unused arguments on command line: %s", a))
		}
	}
	return in, nil
}

func (in *Input) set(p Param, value string) {
	if p.Name == "verbose" {
		in.VerboseLevel++
	}
	in.Values[p.Name] = value
}

// lookupLong finds the parameter for a long option, accepting a unique
// prefix as getopt does.
func (s Spec) lookupLong(name string) (Param, error) {
	var matches []Param
	for _, p := range s {
		lo := p.LongOpt()
		if lo == name {
			return p, nil
		}
		if name != "" && strings.HasPrefix(lo, name) {
			matches = append(matches, p)
		}
	}
	switch len(matches) {
	case 1:
		return matches[0], nil
	case 0:
		return Param{}, usagef("Parse error: option --%s not recognized", sanitizeKey(name))
	default:
		return Param{}, usagef("Parse error: option --%s not a unique prefix", sanitizeKey(name))
	}
}

func (s Spec) lookupShort(c string) (Param, bool) {
	for _, p := range s {
		if p.Short == c {
			return p, true
		}
	}
	return Param{}, false
}

// Decode fills the struct dst points to from in, using defaults for what
// was not given. A value of the wrong type is a UsageError naming the
// option, never repeating a secret's value.
func Decode(spec Spec, in *Input, dst any) error {
	rv := reflect.ValueOf(dst).Elem()
	for _, p := range spec {
		v, given := in.Values[p.Name]
		if !given {
			v = p.Default
		}
		if v == "" && p.Kind != KindString {
			continue
		}
		if err := p.set(rv, v); err != nil {
			if p.Secret {
				return usagef("Failed: The value you have entered for --%s is not valid", p.LongOpt())
			}
			return usagef("Failed: The value you have entered for --%s (%q) is %v", p.LongOpt(), sanitizeKey(v), err)
		}
	}
	return nil
}
