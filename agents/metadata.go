package agents

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"io"
	"slices"
	"strconv"
	"time"
)

// The meta-data document, in the shape of resource-agents' ra-api-1.dtd
// (element order matters: version, longdesc, shortdesc, parameters,
// actions).
type xmlAgent struct {
	XMLName    xml.Name       `xml:"resource-agent"`
	Name       string         `xml:"name,attr"`
	Version    string         `xml:"version,attr"`
	APIVersion string         `xml:"version"`
	LongDesc   xmlDesc        `xml:"longdesc"`
	ShortDesc  xmlDesc        `xml:"shortdesc"`
	Parameters []xmlParameter `xml:"parameters>parameter"`
	Actions    []xmlAction    `xml:"actions>action"`
}

type xmlParameter struct {
	Name      string     `xml:"name,attr"`
	Unique    string     `xml:"unique,attr"`
	Required  string     `xml:"required,attr"`
	LongDesc  xmlDesc    `xml:"longdesc"`
	ShortDesc xmlDesc    `xml:"shortdesc"`
	Content   xmlContent `xml:"content"`
}

type xmlContent struct {
	Type    string `xml:"type,attr"`
	Default string `xml:"default,attr,omitempty"`
}

type xmlDesc struct {
	Lang string `xml:"lang,attr"`
	Text string `xml:",chardata"`
}

type xmlAction struct {
	Name     string `xml:"name,attr"`
	Timeout  string `xml:"timeout,attr"`
	Interval string `xml:"interval,attr,omitempty"`
	Depth    string `xml:"depth,attr,omitempty"`
}

// ocfAPIVersion is the version of the OCF resource agent API the agents
// follow.
const ocfAPIVersion = "1.1"

// metaActionTimeout is what meta-data and validate-all advertise when the
// agent names no timeout: both answer without contacting anything slow.
const metaActionTimeout = 5 * time.Second

// actions lists the actions the agent has, in meta-data order. Only names
// of ra-api-1.dtd appear: reload-agent is not in it, so an agent that
// reloads advertises "reload".
func (a *Agent) actions(res Resource) []string {
	acts := []string{"start", "stop", "monitor"}
	if _, ok := res.(Promoter); ok {
		acts = append(acts, "promote", "demote")
	}
	if _, ok := res.(Notifier); ok {
		acts = append(acts, "notify")
	}
	if _, ok := res.(Reloader); ok {
		acts = append(acts, "reload")
	}
	if _, ok := res.(Migrator); ok {
		acts = append(acts, "migrate_to", "migrate_from")
	}
	return append(acts, "meta-data", "validate-all")
}

// seconds renders a duration the way resource-agents' meta-data does
// ("20s"), in whole seconds when it has no fraction.
func seconds(d time.Duration) string {
	if d%time.Second == 0 {
		return strconv.FormatInt(int64(d/time.Second), 10) + "s"
	}
	return strconv.FormatInt(d.Milliseconds(), 10) + "ms"
}

func boolAttr(b bool) string {
	if b {
		return "1"
	}
	return "0"
}

// Spec is the agent's parameter spec.
func (a *Agent) Spec() Spec { return SpecOf(a.NewParams()) }

// timeout is the action's default timeout.
func (a *Agent) timeout(action string) time.Duration {
	if d := a.Timeouts[action].Timeout; d > 0 {
		return d
	}
	if d := a.Timeouts["start"].Timeout; d > 0 && !slices.Contains([]string{"meta-data", "validate-all"}, action) {
		return d
	}
	return metaActionTimeout
}

// WriteMetadata writes the agent's meta-data XML. It is generated from the
// parameter struct, so it cannot drift from what the agent decodes. The
// optional actions listed are those of Agent.Sample.
func (a *Agent) WriteMetadata(w io.Writer) error {
	doc := xmlAgent{
		Name:       a.Name,
		Version:    a.Version,
		APIVersion: ocfAPIVersion,
		LongDesc:   xmlDesc{Lang: "en", Text: a.LongDesc},
		ShortDesc:  xmlDesc{Lang: "en", Text: a.ShortDesc},
	}
	for _, p := range a.Spec() {
		long := p.Long
		if long == "" {
			long = p.Help
		}
		doc.Parameters = append(doc.Parameters, xmlParameter{
			Name:      p.Name,
			Unique:    boolAttr(p.Unique),
			Required:  boolAttr(p.Required),
			LongDesc:  xmlDesc{Lang: "en", Text: long},
			ShortDesc: xmlDesc{Lang: "en", Text: p.Help},
			Content:   xmlContent{Type: string(p.Kind), Default: p.Default},
		})
	}
	for _, act := range a.actions(a.sample()) {
		xa := xmlAction{Name: act, Timeout: seconds(a.timeout(act))}
		if act == "monitor" {
			iv := a.Timeouts["monitor"].Interval
			if iv <= 0 {
				iv = 10 * time.Second
			}
			xa.Interval, xa.Depth = seconds(iv), "0"
		}
		doc.Actions = append(doc.Actions, xa)
	}
	out, err := xml.MarshalIndent(doc, "", "  ")
	if err != nil {
		return fmt.Errorf("render meta-data of %s: %w", a.Name, err)
	}
	var buf bytes.Buffer
	buf.WriteString("<?xml version=\"1.0\"?>\n<!DOCTYPE resource-agent SYSTEM \"ra-api-1.dtd\">\n")
	// encoding/xml writes <x></x>; the DTD's EMPTY elements read better
	// as <x/>, the way resource-agents write them.
	for _, el := range []string{"content", "action"} {
		out = bytes.ReplaceAll(out, []byte("></"+el+">"), []byte("/>"))
	}
	buf.Write(out)
	buf.WriteString("\n")
	_, err = w.Write(buf.Bytes())
	return err
}
