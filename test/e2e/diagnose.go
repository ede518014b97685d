package e2e

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// Diagnose writes what one looks at first when a scenario went wrong, into the test's own
// output (the kept logs hold the rest): the machine's load and free space, each controller's
// view of the cluster (quorum, DC, nodes, failed actions, fencing history) and Nova's view of
// the computes. It has a context of its own: the scenario's may be what ran out.
func (e *Env) Diagnose(w io.Writer) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	// One write: a test log takes each write as an entry of its own.
	out := &strings.Builder{}
	defer func() { _, _ = io.WriteString(w, out.String()) }()
	fmt.Fprintln(out, "---- diagnosis")
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		fmt.Fprintf(out, "load average: %s", b)
	}
	for _, dir := range []string{"/tmp", "/var/lib"} {
		var fs unix.Statfs_t
		if err := unix.Statfs(dir, &fs); err == nil {
			fmt.Fprintf(out, "free on %s: %d MiB\n", dir, fs.Bavail*uint64(fs.Bsize)>>20)
		}
	}
	nodes, err := e.Lab.Nodes(ctx)
	if err != nil {
		fmt.Fprintf(out, "lab nodes: %v\n", err)
	}
	for _, n := range nodes {
		if n.Kind != "controller" {
			continue
		}
		stdout, stderr, code, err := e.Lab.Exec(ctx, n.Name, "crm_mon", "-1", "--fence-history=2", "--exclude=options")
		fmt.Fprintf(out, "-- crm_mon on %s (exit %d, %v):\n%s%s", n.Name, code, err, indent(stdout), indent(stderr))
	}
	for _, h := range e.hosts {
		svc, err := e.Nova.FindComputeService(ctx, h)
		if err != nil {
			fmt.Fprintf(out, "-- nova-compute of %s: %v\n", h, err)
			continue
		}
		fmt.Fprintf(out, "-- nova-compute of %s: state %s, status %s (%s), forced down %v\n", h, svc.State, svc.Status, svc.DisabledReason, svc.ForcedDown)
	}
	fmt.Fprintln(out, "---- end of the diagnosis")
}

func indent(s string) string {
	if s == "" {
		return ""
	}
	return "    " + strings.ReplaceAll(strings.TrimRight(s, "\n"), "\n", "\n    ") + "\n"
}
