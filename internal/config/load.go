package config

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"reflect"
	"slices"
	"sort"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Error lists every problem found in a configuration. Each problem is one line that names the
// field (and, for problems found while decoding, the line) it is about.
type Error struct {
	Problems []string
}

func (e *Error) Error() string {
	if len(e.Problems) == 1 {
		return e.Problems[0]
	}
	return fmt.Sprintf("%d problems:\n  %s", len(e.Problems), strings.Join(e.Problems, "\n  "))
}

// Load reads the configuration file at path, fills in defaults and validates it. The error,
// if any, starts with the path; an *[Error] inside it (errors.As) lists every problem.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	c, err := Parse(data)
	if err != nil {
		return nil, fmt.Errorf("config %s: %w", path, err)
	}
	return c, nil
}

// Parse decodes one YAML document, fills in defaults and validates the result. Unknown keys,
// values of the wrong type and validation problems are all reported together in an *[Error];
// a document that is not YAML at all gets the parser's error alone.
func Parse(data []byte) (*Config, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var root yaml.Node
	if err := dec.Decode(&root); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, errors.New("the configuration is empty")
		}
		return nil, fmt.Errorf("not valid YAML: %w", err)
	}
	// A second document would be silently ignored by Decode; a file is one configuration.
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		if err != nil {
			return nil, fmt.Errorf("not valid YAML: %w", err)
		}
		return nil, fmt.Errorf("line %d: a second YAML document; the file must hold exactly one", extra.Line)
	}
	doc := &root
	if doc.Kind == yaml.DocumentNode && len(doc.Content) == 1 {
		doc = doc.Content[0]
	}
	if doc.Kind != yaml.MappingNode {
		return nil, fmt.Errorf("line %d: the configuration must be a mapping of keys (cloud, segments, ...)", doc.Line)
	}

	w := keyWalker{paths: map[int]string{}}
	w.check(doc, reflect.TypeFor[Config](), "")
	if w.duplicates {
		// The decoder stops at a repeated key, so validating what it got would only add noise.
		return nil, &Error{Problems: w.problems}
	}
	problems := w.problems

	c := Default()
	if err := doc.Decode(c); err != nil {
		var te *yaml.TypeError
		if !errors.As(err, &te) {
			return nil, fmt.Errorf("not valid YAML: %w", err)
		}
		for _, m := range te.Errors {
			problems = append(problems, w.withPath(friendlyTypeError(m)))
		}
	}
	c.applyDefaults()
	var ve *Error
	if err := c.Validate(); errors.As(err, &ve) {
		problems = append(problems, ve.Problems...)
	}
	if len(problems) > 0 {
		return nil, &Error{Problems: problems}
	}
	return c, nil
}

// friendlyTypeError rewrites the decoder's Go type names into what a YAML author knows.
func friendlyTypeError(m string) string {
	r := strings.NewReplacer(
		"into time.Duration", "into a duration (such as 30s or 5m)",
		"into config.RecoveryMethod", "into a recovery method",
		"into config.ReservedReturn", "into a reserved_return choice",
		"into config.ErrorVMs", "into an error_vms choice",
		"into config.Driver", "into a history driver",
		"into config.Segments", "into a map of segments",
		"into config.", "into a section ",
		"into map[string]bool", "into a map of name: on|off",
		"into map[string]string", "into a map of name: value",
		"into []string", "into a list of strings",
		"into bool", "into on/off",
	)
	return r.Replace(m)
}

// keyWalker checks a YAML tree against the Go type it decodes into. It reports unknown and
// repeated keys with their line and dotted path (yaml's own KnownFields check names Go types
// instead of the path), and remembers the path of each line so that the decoder's type errors,
// which give only a line, can name the field too.
type keyWalker struct {
	problems   []string
	duplicates bool
	paths      map[int]string // line → dotted path of the first scalar value on it
}

func (w *keyWalker) add(line int, path, msg string) {
	w.problems = append(w.problems, fmt.Sprintf("line %d: %s: %s", line, path, msg))
}

func (w *keyWalker) check(n *yaml.Node, t reflect.Type, path string) {
	for n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if _, ok := w.paths[n.Line]; !ok && n.Kind == yaml.ScalarNode {
		w.paths[n.Line] = path
	}
	switch t.Kind() {
	case reflect.Struct:
		if n.Kind != yaml.MappingNode || t.PkgPath() == "time" {
			return
		}
		fields := map[string]reflect.Type{}
		var names []string
		for f := range t.Fields() {
			name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
			if name == "" || name == "-" {
				continue
			}
			fields[name] = f.Type
			names = append(names, name)
		}
		w.mapping(n, path, func(k, v *yaml.Node) {
			ft, ok := fields[k.Value]
			if !ok {
				w.add(k.Line, join(path, k.Value), "unknown key (known keys here: "+strings.Join(names, ", ")+")")
				return
			}
			w.check(v, ft, join(path, k.Value))
		})
	case reflect.Map:
		if n.Kind != yaml.MappingNode {
			return
		}
		w.mapping(n, path, func(k, v *yaml.Node) { w.check(v, t.Elem(), join(path, k.Value)) })
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			return
		}
		for i, e := range n.Content {
			w.check(e, t.Elem(), fmt.Sprintf("%s[%d]", path, i))
		}
	}
}

// mapping calls f for each key of n but merge keys (<<), which the decoder resolves, and
// reports repeated keys.
func (w *keyWalker) mapping(n *yaml.Node, path string, f func(k, v *yaml.Node)) {
	seen := map[string]int{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Value == "<<" && k.Tag == "!!merge" {
			continue
		}
		if first, ok := seen[k.Value]; ok {
			w.add(k.Line, join(path, k.Value), fmt.Sprintf("repeated key (first at line %d)", first))
			w.duplicates = true
			continue
		}
		seen[k.Value] = k.Line
		f(k, v)
	}
}

// withPath inserts the field's path into a decoder message "line N: ...".
func (w *keyWalker) withPath(m string) string {
	var line int
	if _, err := fmt.Sscanf(m, "line %d:", &line); err != nil {
		return m
	}
	if p, ok := w.paths[line]; ok {
		prefix := fmt.Sprintf("line %d:", line)
		return prefix + " " + p + ":" + strings.TrimPrefix(m, prefix)
	}
	return m
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// ReadDSN returns the history DSN: DSN itself, or the content of DSNFile with trailing
// whitespace removed. Errors name the file but never its content.
func (h History) ReadDSN() (string, error) {
	if h.DSNFile == "" {
		return h.DSN, nil
	}
	b, err := os.ReadFile(h.DSNFile)
	if err != nil {
		return "", fmt.Errorf("history.dsn_file: %w", err)
	}
	dsn := strings.TrimRight(string(b), " \t\r\n")
	if dsn == "" {
		return "", fmt.Errorf("history.dsn_file: %s is empty", h.DSNFile)
	}
	return dsn, nil
}

// Of returns the name of the segment whose Hosts list host, and false when none does.
// Segments defined by an aggregate match only once resolved ([Config.ResolveSegments]).
func (s Segments) Of(host string) (string, bool) {
	for _, name := range s.Names() {
		for _, h := range s[name].Hosts {
			if h == host {
				return name, true
			}
		}
	}
	return "", false
}

// Names lists the segments' names in order.
func (s Segments) Names() []string {
	names := make([]string, 0, len(s))
	for n := range s {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// ReadSegments is ResolveSegments with the aggregates read by aggregateHosts, only when a
// segment is defined by an aggregate.
func (c *Config) ReadSegments(ctx context.Context, aggregateHosts func(ctx context.Context) (map[string][]string, error)) (Segments, error) {
	if !slices.ContainsFunc(slices.Collect(maps.Values(c.Segments)), func(s Segment) bool { return s.Aggregate != "" }) {
		return c.ResolveSegments(nil)
	}
	byAgg, err := aggregateHosts(ctx)
	if err != nil {
		return nil, fmt.Errorf("reading the aggregates: %w", err)
	}
	return c.ResolveSegments(byAgg)
}

// ResolveSegments returns the segments with every aggregate-defined segment's Hosts filled
// from aggregateHosts (aggregate name → its hosts, as Nova lists them), and checks again what
// could not be checked before: each aggregate exists, no host is in two segments, reserved
// hosts belong to their segment. The receiver is not changed.
func (c *Config) ResolveSegments(aggregateHosts map[string][]string) (Segments, error) {
	out := make(Segments, len(c.Segments))
	var problems []string
	for _, name := range c.Segments.Names() {
		s := c.Segments[name]
		if s.Aggregate != "" {
			hosts, ok := aggregateHosts[s.Aggregate]
			if !ok {
				problems = append(problems, fmt.Sprintf("segments.%s.aggregate: no aggregate named %q", name, s.Aggregate))
			}
			s.Hosts = append([]string(nil), hosts...)
			s.Aggregate = ""
		}
		s.ReservedHosts = append([]string(nil), s.ReservedHosts...)
		out[name] = s
	}
	problems = append(problems, validateSegments(out)...)
	if len(problems) > 0 {
		return nil, &Error{Problems: problems}
	}
	return out, nil
}
