package fence

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"io"
	"strings"
)

// The metadata document, in the shape fence-agents' metadata.rng requires
// (element order matters: symlink*, longdesc, vendor-url, parameters, actions).
type xmlAgent struct {
	XMLName    xml.Name       `xml:"resource-agent"`
	Name       string         `xml:"name,attr"`
	ShortDesc  string         `xml:"shortdesc,attr"`
	LongDesc   string         `xml:"longdesc"`
	VendorURL  string         `xml:"vendor-url"`
	Parameters []xmlParameter `xml:"parameters>parameter"`
	Actions    []xmlAction    `xml:"actions>action"`
}

type xmlParameter struct {
	Name       string     `xml:"name,attr"`
	Unique     string     `xml:"unique,attr"`
	Required   string     `xml:"required,attr"`
	Deprecated string     `xml:"deprecated,attr,omitempty"`
	Obsoletes  string     `xml:"obsoletes,attr,omitempty"`
	Getopt     xmlGetopt  `xml:"getopt"`
	Content    xmlContent `xml:"content"`
	ShortDesc  xmlDesc    `xml:"shortdesc"`
}

type xmlGetopt struct {
	Mixed string `xml:"mixed,attr"`
}

type xmlContent struct {
	Type    string      `xml:"type,attr"`
	Default string      `xml:"default,attr,omitempty"`
	Options []xmlOption `xml:"option"`
}

type xmlOption struct {
	Value string `xml:"value,attr"`
}

type xmlDesc struct {
	Lang string `xml:"lang,attr"`
	Text string `xml:",chardata"`
}

type xmlAction struct {
	Name      string `xml:"name,attr"`
	Automatic string `xml:"automatic,attr,omitempty"`
}

// getoptText renders the "mixed" getopt description, e.g. "-a, --ip=[ip]".
func (p Param) getoptText() string {
	var b strings.Builder
	if p.Short != "" {
		fmt.Fprintf(&b, "-%s, ", p.Short)
	}
	b.WriteString("--" + p.LongOpt())
	if p.TakesValue() {
		mv := p.Metavar
		if mv == "" {
			mv = p.Name
		}
		fmt.Fprintf(&b, "=[%s]", mv)
	}
	return b.String()
}

func boolAttr(b bool) string {
	if b {
		return "1"
	}
	return "0"
}

// WriteMetadata writes the agent's metadata XML. It is generated from the
// agent's parameter struct, so it cannot drift from what the agent parses.
func (a *Agent) WriteMetadata(w io.Writer) error {
	doc := xmlAgent{
		Name:      a.Name,
		ShortDesc: a.ShortDesc,
		LongDesc:  a.LongDesc,
		VendorURL: a.VendorURL,
	}
	for _, p := range a.spec() {
		def := p.Default
		if p.Name == "action" {
			def = a.defaultAction()
		}
		xp := xmlParameter{
			Name:      p.Name,
			Unique:    "0",
			Required:  boolAttr(p.Required),
			Getopt:    xmlGetopt{Mixed: p.getoptText()},
			Content:   xmlContent{Type: string(p.Kind), Default: def},
			ShortDesc: xmlDesc{Lang: "en", Text: p.Help},
		}
		for _, c := range p.Choices {
			xp.Content.Options = append(xp.Content.Options, xmlOption{Value: c})
		}
		if p.Old != "" {
			old := xp
			old.Name = p.Old
			old.Deprecated = "1"
			xp.Obsoletes = p.Old
			doc.Parameters = append(doc.Parameters, xp, old)
			continue
		}
		doc.Parameters = append(doc.Parameters, xp)
	}
	for _, act := range a.actions() {
		xa := xmlAction{Name: act}
		if act == "on" {
			xa.Automatic = boolAttr(a.Fabric)
		}
		doc.Actions = append(doc.Actions, xa)
	}
	out, err := xml.MarshalIndent(doc, "", "\t")
	if err != nil {
		return fmt.Errorf("render metadata of %s: %w", a.Name, err)
	}
	var buf bytes.Buffer
	buf.WriteString("<?xml version=\"1.0\" ?>\n")
	buf.Write(out)
	buf.WriteString("\n")
	_, err = w.Write(buf.Bytes())
	return err
}

// WriteManpage writes a roff man page generated from the same parameter
// definitions as the metadata.
func (a *Agent) WriteManpage(w io.Writer) error {
	var b strings.Builder
	esc := func(s string) string {
		s = strings.ReplaceAll(s, `\`, `\e`)
		s = strings.ReplaceAll(s, "-", `\-`)
		if strings.HasPrefix(s, ".") || strings.HasPrefix(s, "'") {
			s = `\&` + s
		}
		return s
	}
	fmt.Fprintf(&b, ".TH %s 8 \"\" computeha \"System Administration\"\n", strings.ToUpper(a.Name))
	fmt.Fprintf(&b, ".SH NAME\n%s \\- %s\n", esc(a.Name), esc(a.ShortDesc))
	fmt.Fprintf(&b, ".SH SYNOPSIS\n.B %s\n[\\fIOPTIONS\\fR]\n", esc(a.Name))
	fmt.Fprintf(&b, ".SH DESCRIPTION\n%s\n.P\n", esc(a.LongDesc))
	b.WriteString("Options are given on the command line, or on standard input as key=value lines " +
		"when there are no command-line arguments (this is how Pacemaker calls the agent).\n")
	b.WriteString(".SH OPTIONS\n")
	for _, p := range a.spec() {
		fmt.Fprintf(&b, ".TP\n.B %s\n%s", esc(p.getoptText()), esc(p.Help))
		if p.Required {
			b.WriteString(" (required)")
		}
		def := p.Default
		if p.Name == "action" {
			def = a.defaultAction()
		}
		if def != "" {
			fmt.Fprintf(&b, " (default: %s)", esc(def))
		}
		if len(p.Choices) > 0 {
			fmt.Fprintf(&b, " One of: %s.", esc(strings.Join(p.Choices, ", ")))
		}
		b.WriteString("\n.br\nOn standard input: " + esc(p.Name))
		if p.Old != "" {
			b.WriteString(" (or the deprecated " + esc(p.Old) + ")")
		}
		b.WriteString("\n")
	}
	b.WriteString(".SH ACTIONS\n")
	for _, act := range a.actions() {
		fmt.Fprintf(&b, ".TP\n.B %s\n%s\n", esc(act), esc(actionHelp[act]))
	}
	b.WriteString(".SH EXIT STATUS\n0 on success; 1 on failure or bad input. " +
		"For status: 0 when the target is ON, 2 when it is OFF, 1 when it cannot be told.\n")
	b.WriteString(".SH SEE ALSO\n.BR computeha (8),\n.BR stonith_admin (8),\n.BR pcs (8)\n")
	_, err := io.WriteString(w, b.String())
	return err
}

var actionHelp = map[string]string{
	"on":           "Power the target on.",
	"off":          "Power the target off and wait until the device reports it off.",
	"reboot":       "Power the target off, confirm it is off, then power it on.",
	"status":       "Print the power state of the target.",
	"list":         "List the targets (plugs) the device controls.",
	"list-status":  "List the targets with their power state.",
	"monitor":      "Check that the device answers.",
	"metadata":     "Print the agent's metadata XML.",
	"manpage":      "Print this manual page.",
	"validate-all": "Check the options without contacting the device.",
}
