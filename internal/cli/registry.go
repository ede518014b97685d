package cli

import (
	"context"
	"io"
	"path/filepath"
	"slices"

	"github.com/computeha/computeha/fence"
	"github.com/computeha/computeha/fence/hostcheck"
	"github.com/computeha/computeha/fence/ipmi"
	"github.com/computeha/computeha/fence/libvirt"
	"github.com/computeha/computeha/fence/nova"
	"github.com/computeha/computeha/fence/selffence"
)

// Kinds of programs the binary serves under their own names, and where
// packages install the name (a symlink to the binary).
const (
	KindFence = "fence" // /usr/sbin/<name>, where Pacemaker's fencer looks
	KindOCF   = "ocf"   // /usr/lib/ocf/resource.d/computeha/<name>
	KindAlert = "alert" // /usr/libexec/computeha/<name>, for the CIB's <alerts>
)

// OCFProvider is the provider directory of our OCF agents.
const OCFProvider = "computeha"

// Entry is one program the binary serves when started under Name.
type Entry struct {
	Kind string
	Name string
	// Run executes the program and returns its exit code.
	Run func(ctx context.Context, args []string, stdio IO) int
	// Metadata and Manpage render the generated documents; nil when the
	// program has none.
	Metadata func(w io.Writer) error
	Manpage  func(w io.Writer) error
}

// Entries lists every program of the binary, fence agents first.
func Entries() []Entry {
	return slices.Concat(fenceEntries(), ocfEntries(), alertEntries())
}

// FenceAgents are every fence agent the binary serves.
func FenceAgents() []*fence.Agent {
	return []*fence.Agent{ipmi.Agent, libvirt.Agent, nova.Agent, hostcheck.Agent, selffence.Agent}
}

func fenceEntries() []Entry {
	var es []Entry
	for _, a := range FenceAgents() {
		es = append(es, Entry{
			Kind: KindFence,
			Name: a.Name,
			Run: func(ctx context.Context, args []string, stdio IO) int {
				return runFence(ctx, a, args, stdio)
			},
			Metadata: a.WriteMetadata,
			Manpage:  a.WriteManpage,
		})
	}
	return es
}

// lookup finds the entry the binary was started as. OCF agents are matched
// only inside their provider directory (.../resource.d/computeha/<name>),
// since their names (nova-compute, ...) are also the names of other programs.
func lookup(argv0 string) (Entry, bool) {
	name := filepath.Base(argv0)
	inProvider := filepath.Base(filepath.Dir(argv0)) == OCFProvider
	for _, e := range Entries() {
		if e.Name != name {
			continue
		}
		if e.Kind == KindOCF && !inProvider {
			continue
		}
		return e, true
	}
	return Entry{}, false
}
