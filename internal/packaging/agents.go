package packaging

import (
	"bufio"
	"fmt"
	"io"
	"path"
	"regexp"
	"strings"
)

// Program is one name the binary serves, as computeha agents lists it.
type Program struct {
	Kind string // fence, ocf or alert
	Name string
}

// BinaryPath is where the packages install the binary; every program is a
// symlink to it.
const BinaryPath = "/usr/sbin/computeha"

// OCFProvider is the provider directory of our OCF agents.
const OCFProvider = "computeha"

// nameRE is what a program name may be: it becomes a file name in system
// directories, so nothing that could escape them or need quoting.
var nameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.+-]*$`)

// ParseAgents reads computeha agents output: one "KIND NAME" line per
// program. An unknown kind is an error rather than a program left out of
// the package.
func ParseAgents(r io.Reader) ([]Program, error) {
	var progs []Program
	seen := map[string]bool{}
	sc := bufio.NewScanner(r)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" {
			continue
		}
		fields := strings.Fields(line)
		if len(fields) != 2 {
			return nil, fmt.Errorf("agents line %d: want KIND NAME, got %q", n, line)
		}
		p := Program{Kind: fields[0], Name: fields[1]}
		if !nameRE.MatchString(p.Name) {
			return nil, fmt.Errorf("agents line %d: %q is not a usable program name", n, p.Name)
		}
		dst, err := p.Path()
		if err != nil {
			return nil, fmt.Errorf("agents line %d: %w", n, err)
		}
		if seen[dst] {
			return nil, fmt.Errorf("agents line %d: %s is listed twice", n, dst)
		}
		seen[dst] = true
		progs = append(progs, p)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("reading the agent list: %w", err)
	}
	return progs, nil
}

// Path is where the program's symlink goes: where Pacemaker looks for a
// program of its kind.
func (p Program) Path() (string, error) {
	switch p.Kind {
	case "fence":
		return path.Join("/usr/sbin", p.Name), nil
	case "ocf":
		return path.Join("/usr/lib/ocf/resource.d", OCFProvider, p.Name), nil
	case "alert":
		return path.Join("/usr/libexec/computeha", p.Name), nil
	}
	return "", fmt.Errorf("program %s has unknown kind %q (want fence, ocf or alert)", p.Name, p.Kind)
}

// Manpage is where the program's man page goes, and the name to ask
// computeha manpage for; "" when the program has none. Fence agents are
// system administration commands (section 8). OCF agents follow
// resource-agents' ocf_<provider>_<agent>(7), which keeps an agent such as
// nova-compute from clashing with the page of the program it manages.
func (p Program) Manpage() string {
	switch p.Kind {
	case "fence":
		return "/usr/share/man/man8/" + p.Name + ".8.gz"
	case "ocf":
		return "/usr/share/man/man7/ocf_" + OCFProvider + "_" + p.Name + ".7.gz"
	}
	return ""
}
