package evacd

import (
	"context"
	"slices"
	"sync"
	"time"
)

// ProcessesEvery is how often the daemon rereads from Nova which hosts are disabled for
// provisioning processes that cannot be restarted.
const ProcessesEvery = time.Minute

// processesDown is which provisioning processes each host is disabled for, for the metrics
// and the alerts. Nova's disabled reasons (processReason) are the durable record: the daemon
// rereads them every ProcessesEvery, so one that takes over learns them there, and a reason
// an operator changed by hand ends the alert.
type processesDown struct {
	mu sync.Mutex
	by map[string][]string // node → processes
	// seq counts the changes set made; set is when each node's last was made.
	seq   uint64
	setAt map[string]uint64
}

// set records what the daemon just did to node in Nova.
func (p *processesDown) set(node string, procs []string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.by == nil {
		p.by = map[string][]string{}
	}
	if p.setAt == nil {
		p.setAt = map[string]uint64{}
	}
	p.seq++
	p.setAt[node] = p.seq
	if len(procs) == 0 {
		delete(p.by, node)
		return
	}
	p.by[node] = slices.Clone(procs)
}

// mark is where the changes stand, before a read of Nova.
func (p *processesDown) mark() uint64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.seq
}

// replace takes by, read from Nova after mark returned since, except for the nodes set after
// since: the read may predate what the daemon did to them.
func (p *processesDown) replace(by map[string][]string, since uint64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for node, at := range p.setAt {
		if at <= since {
			continue
		}
		if procs, ok := p.by[node]; ok {
			by[node] = procs
		} else {
			delete(by, node)
		}
	}
	p.by = by
}

func (p *processesDown) snapshot() map[string][]string {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make(map[string][]string, len(p.by))
	for n, procs := range p.by {
		out[n] = slices.Clone(procs)
	}
	return out
}

// gauge is computeha_host_process_down: 1 for each host and process it is disabled for.
func (p *processesDown) gauge() map[[2]string]float64 {
	out := map[[2]string]float64{}
	for node, procs := range p.snapshot() {
		for _, proc := range procs {
			out[[2]string{node, proc}] = 1
		}
	}
	return out
}

// tendProcesses rereads Nova's compute services every ProcessesEvery, from the start.
func (d *Daemon) tendProcesses(ctx context.Context) {
	for {
		since := d.procs.mark()
		svcs, err := d.o.Nova.ComputeServices(ctx)
		if err == nil {
			by := map[string][]string{}
			for _, s := range svcs {
				node := d.names.ByNova(s.Host).Node
				if node == "" {
					continue
				}
				if procs, ours := processesOf(s.DisabledReason, node); ours && !s.Enabled() {
					by[node] = procs
				}
			}
			d.procs.replace(by, since)
		} else if ctx.Err() == nil {
			d.o.Log.Debug("reading the compute services for the processes down failed", "error", err)
		}
		if d.clock.Sleep(ctx, ProcessesEvery) != nil {
			return
		}
	}
}
