package cli

import (
	"fmt"
	"io"
	"strings"

	ucli "github.com/urfave/cli/v3"
)

// writeCommandManpage renders computeha(8) from the command tree the
// binary runs, so that the page cannot drift from the subcommands: every
// visible command and subcommand with its arguments and usage, the root
// flags, and the agents the binary serves under their own names.
func writeCommandManpage(w io.Writer, root *ucli.Command) error {
	var b strings.Builder
	name := root.Name
	fmt.Fprintf(&b, ".TH %s 8 \"\" \"%s %s\" \"System Administration\"\n",
		strings.ToUpper(name), roffEscape(name), roffEscape(Version))
	fmt.Fprintf(&b, ".SH NAME\n%s \\- %s\n", roffEscape(name), roffEscape(root.Usage))

	b.WriteString(".SH SYNOPSIS\n")
	fmt.Fprintf(&b, ".B %s\n.I COMMAND\n[\\fIARGUMENTS\\fR]\n", roffEscape(name))
	for _, e := range Entries() {
		fmt.Fprintf(&b, ".br\n.B %s\n[\\fIOPTIONS\\fR]\n", roffEscape(installedPath(e)))
	}

	b.WriteString(".SH DESCRIPTION\n")
	fmt.Fprintf(&b, "%s is one binary that serves every agent of computeha. "+
		"Started under an agent's name (packages install a symlink per agent where Pacemaker looks for it), "+
		"it runs that agent; started as %s, it runs one of the commands below.\n",
		roffBold(name), roffBold(name))

	b.WriteString(".SH COMMANDS\n")
	writeCommands(&b, root.VisibleCommands(), nil)

	if flags := root.VisibleFlags(); len(flags) > 0 {
		b.WriteString(".SH OPTIONS\n")
		for _, f := range flags {
			writeFlag(&b, f)
		}
	}

	b.WriteString(".SH AGENTS\n")
	b.WriteString("Each agent is the same binary under another name. Each has its own manual page.\n")
	for _, e := range Entries() {
		fmt.Fprintf(&b, ".TP\n.B %s\n%s agent, installed as %s.\n",
			roffEscape(e.Name), roffEscape(kindTitle(e.Kind)), roffEscape(installedPath(e)))
	}

	b.WriteString(".SH EXIT STATUS\n" +
		"Commands exit 0 on success and 1 on error. " +
		"An agent, started under its own name or as a command, exits with the codes of its kind of agent, " +
		"as its manual page describes.\n")

	b.WriteString(".SH SEE ALSO\n")
	var refs []string
	for _, e := range Entries() {
		if e.Manpage != nil {
			refs = append(refs, ".BR "+roffEscape(e.Name)+" (8)")
		}
	}
	refs = append(refs, ".BR pcs (8)", ".BR stonith_admin (8)", ".BR crm_resource (8)")
	b.WriteString(strings.Join(refs, ",\n") + "\n")

	_, err := io.WriteString(w, b.String())
	return err
}

// writeCommands lists commands depth first as "parent child ARGS".
func writeCommands(b *strings.Builder, cmds []*ucli.Command, parents []string) {
	for _, c := range cmds {
		path := append(append([]string{}, parents...), c.Name)
		if subs := c.VisibleCommands(); len(subs) > 0 && c.Action == nil {
			writeCommands(b, subs, path)
			continue
		}
		fmt.Fprintf(b, ".TP\n.B %s", roffEscape(strings.Join(path, " ")))
		if c.ArgsUsage != "" {
			fmt.Fprintf(b, " \\fI%s\\fR", roffEscape(c.ArgsUsage))
		}
		fmt.Fprintf(b, "\n%s\n", roffEscape(sentence(c.Usage)))
		if subs := c.VisibleCommands(); len(subs) > 0 {
			writeCommands(b, subs, path)
		}
	}
}

func writeFlag(b *strings.Builder, f ucli.Flag) {
	var names []string
	for _, n := range f.Names() {
		if len(n) == 1 {
			names = append(names, "-"+n)
		} else {
			names = append(names, "--"+n)
		}
	}
	usage := ""
	if d, ok := f.(ucli.DocGenerationFlag); ok {
		usage = d.GetUsage()
		if d.TakesValue() {
			names[len(names)-1] += "=VALUE"
		}
	}
	fmt.Fprintf(b, ".TP\n.B %s\n%s\n", roffEscape(strings.Join(names, ", ")), roffEscape(sentence(usage)))
}

// installedPath is where packages install the agent's symlink.
func installedPath(e Entry) string {
	switch e.Kind {
	case KindFence:
		return "/usr/sbin/" + e.Name
	case KindOCF:
		return "/usr/lib/ocf/resource.d/" + OCFProvider + "/" + e.Name
	case KindAlert:
		return "/usr/libexec/computeha/" + e.Name
	}
	return e.Name
}

func kindTitle(kind string) string {
	switch kind {
	case KindFence:
		return "Fence"
	case KindOCF:
		return "OCF resource"
	case KindAlert:
		return "Pacemaker alert"
	}
	return kind
}

// sentence capitalises usage strings, which the command tree keeps in lower
// case for --help.
func sentence(s string) string {
	if s == "" {
		return s
	}
	s = strings.ToUpper(s[:1]) + s[1:]
	if !strings.HasSuffix(s, ".") {
		s += "."
	}
	return s
}

// roffEscape makes text safe on a roff line: backslashes would start escape
// sequences, "-" would be a hyphen rather than a minus (breaking copy and
// paste of options), and a leading "." or "'" would make the line a request.
func roffEscape(s string) string {
	s = strings.ReplaceAll(s, `\`, `\e`)
	s = strings.ReplaceAll(s, "-", `\-`)
	if strings.HasPrefix(s, ".") || strings.HasPrefix(s, "'") {
		s = `\&` + s
	}
	return s
}

func roffBold(s string) string { return `\fB` + roffEscape(s) + `\fR` }
