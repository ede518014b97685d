package agents

import (
	"fmt"
	"io"
	"strings"
)

// ManpageName is the man page of an OCF agent: section 7, named as
// resource-agents names theirs (ocf_<provider>_<agent>), so it cannot clash
// with the page of the program the agent manages.
func (a *Agent) ManpageName() string { return "ocf_computeha_" + a.Name }

// WriteManpage writes a roff man page generated from the same parameter
// definitions as the meta-data.
func (a *Agent) WriteManpage(w io.Writer) error {
	esc := func(s string) string {
		s = strings.ReplaceAll(s, `\`, `\e`)
		s = strings.ReplaceAll(s, "-", `\-`)
		if strings.HasPrefix(s, ".") || strings.HasPrefix(s, "'") {
			s = `\&` + s
		}
		return s
	}
	var b strings.Builder
	fmt.Fprintf(&b, ".TH %s 7 \"\" computeha \"OCF resource agents\"\n", strings.ToUpper(a.ManpageName()))
	// Left-adjusted: justified lines would stretch the NAME line, which
	// man -k and whatis parse.
	b.WriteString(".ad l\n")
	fmt.Fprintf(&b, ".SH NAME\n%s \\- %s\n", esc(a.ManpageName()), esc(a.ShortDesc))
	fmt.Fprintf(&b, ".SH SYNOPSIS\n.B pcs resource create\n\\fIID\\fR ocf:computeha:%s [\\fIPARAMETER\\fR=\\fIVALUE\\fR ...]\n", esc(a.Name))
	fmt.Fprintf(&b, ".SH DESCRIPTION\n%s\n", esc(a.LongDesc))
	b.WriteString(".SH PARAMETERS\n")
	for _, p := range a.Spec() {
		fmt.Fprintf(&b, ".TP\n.B %s\n", esc(p.Name))
		desc := p.Long
		if desc == "" {
			desc = p.Help
		}
		b.WriteString(esc(desc))
		if p.Required {
			b.WriteString(" (required)")
		}
		if p.Default != "" {
			fmt.Fprintf(&b, " (default: %s)", esc(p.Default))
		}
		fmt.Fprintf(&b, " Type: %s.\n", p.Kind)
	}
	b.WriteString(".SH ACTIONS\n")
	for _, act := range a.actions(a.sample()) {
		fmt.Fprintf(&b, ".TP\n.B %s\n", esc(act))
		if t := a.timeout(act); t > 0 {
			fmt.Fprintf(&b, "Default timeout %s.\n", seconds(t))
		} else {
			b.WriteString("\n")
		}
	}
	b.WriteString(".SH EXIT STATUS\nOCF exit codes: 0 success, 1 generic error, 2 invalid argument, 3 unimplemented, " +
		"5 not installed, 6 not configured, 7 not running, 190 degraded. A failure reason is printed on standard error " +
		"as ocf\\-exit\\-reason:TEXT.\n")
	b.WriteString(".SH SEE ALSO\n.BR computeha (8),\n.BR pcs (8),\n.BR crm_resource (8)\n")
	_, err := io.WriteString(w, b.String())
	return err
}
