package cli

import (
	"context"
	"os"

	"github.com/computeha/computeha/agents"
	"github.com/computeha/computeha/agents/evacuator"
	"github.com/computeha/computeha/agents/hostcheck"
	"github.com/computeha/computeha/agents/instancemon"
	"github.com/computeha/computeha/agents/novacompute"
)

// OCFAgents are every OCF resource agent the binary serves
// (ocf:computeha:<name>).
func OCFAgents() []*agents.Agent {
	return []*agents.Agent{novacompute.Agent(), evacuator.NewAgent(), hostcheck.NewAgent(), instancemon.NewAgent()}
}

// ocfEntries lists the OCF resource agents (ocf:computeha:<name>).
func ocfEntries() []Entry {
	var es []Entry
	for _, a := range OCFAgents() {
		es = append(es, Entry{
			Kind: KindOCF,
			Name: a.Name,
			Run: func(ctx context.Context, args []string, stdio IO) int {
				return agents.Main(ctx, a, agents.Env{
					Args: args, Environ: os.Environ(), Stdout: stdio.Stdout, Stderr: stdio.Stderr,
				})
			},
			Metadata: a.WriteMetadata,
			Manpage:  a.WriteManpage,
		})
	}
	return es
}
