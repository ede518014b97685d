package evacd

import (
	"context"
	"encoding/json"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/computeha/computeha/internal/history"
	"github.com/computeha/computeha/internal/openstack"
)

// PausedEvery is how often the daemon checks in Nova whether the VMs it left paused after an
// I/O error still are.
const PausedEvery = time.Minute

// PausedLookback is how far back a daemon that starts looks in the history for the VMs left
// paused (the alerts of ReasonLeftPaused), to check them in Nova.
const PausedLookback = 7 * 24 * time.Hour

// leftPaused are the HA VMs the daemon left paused after an I/O error (policy.io_error
// leave-paused, or resumed too often), by server ID, for the metrics and the alerts. The view
// holds a VM until Nova no longer has it paused by the hypervisor where it was left (someone
// resumed, restarted, moved or deleted it).
type leftPaused struct {
	mu sync.Mutex
	by map[string]pausedVM
}

// pausedVM is a VM left paused: on which node, known to Nova by which name.
type pausedVM struct {
	node, name string
}

func (p *leftPaused) add(id string, v pausedVM) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.by == nil {
		p.by = map[string]pausedVM{}
	}
	p.by[id] = v
}

// has tells whether VM id is left paused on node.
func (p *leftPaused) has(id, node string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	v, ok := p.by[id]
	return ok && v.node == node
}

func (p *leftPaused) drop(id string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.by, id)
}

func (p *leftPaused) snapshot() map[string]pausedVM {
	p.mu.Lock()
	defer p.mu.Unlock()
	return maps.Clone(p.by)
}

// byHost is the view for the alerts: node → the VMs left paused there ("name (id)").
func (p *leftPaused) byHost() map[string][]string {
	out := map[string][]string{}
	for id, v := range p.snapshot() {
		out[v.node] = append(out[v.node], pausedLabel(id, v))
	}
	for _, vms := range out {
		slices.Sort(vms)
	}
	return out
}

func pausedLabel(id string, v pausedVM) string {
	if v.name == "" {
		return id
	}
	return v.name + " (" + id + ")"
}

// gauge is computeha_vm_left_paused: 1 for each VM left paused, by host and VM.
func (p *leftPaused) gauge() map[[2]string]float64 {
	out := map[[2]string]float64{}
	for id, v := range p.snapshot() {
		out[[2]string{v.node, pausedLabel(id, v)}] = 1
	}
	return out
}

// tendPaused keeps the view true: at the start it takes the VMs the history says were left
// paused lately, then every PausedEvery it drops those Nova no longer has paused where they
// were left.
func (d *Daemon) tendPaused(ctx context.Context) {
	d.alertsSince(ctx, ReasonLeftPaused, d.clock.Now().Add(-PausedLookback), func(e history.Event) {
		var det struct {
			ID   string `json:"vm_id"`
			Name string `json:"vm_name"`
		}
		if json.Unmarshal(e.Details, &det) == nil && det.ID != "" {
			d.paused.add(det.ID, pausedVM{node: e.Host, name: det.Name})
		}
	})
	for {
		for id, v := range d.paused.snapshot() {
			s, err := d.o.Nova.Server(ctx, id)
			switch {
			case openstack.IsNotFound(err):
				d.paused.drop(id)
			case err != nil:
				// Kept: unknown is not resumed.
			case !stillPaused(s, d.names.ByNode(v.node).NovaHost):
				d.o.Log.Info("a VM left paused is no longer", "vm", id, "host", v.node, "status", s.Status, "power_state", s.PowerState)
				d.paused.drop(id)
			}
		}
		if d.clock.Sleep(ctx, PausedEvery) != nil {
			return
		}
	}
}

// alertsSince calls each for the history's alerts of code recorded since since (the views a
// daemon that starts takes over); the history unread is logged.
func (d *Daemon) alertsSince(ctx context.Context, code history.ReasonCode, since time.Time, each func(history.Event)) {
	if d.o.History == nil {
		return
	}
	evs, err := d.o.History.Query(ctx, history.Filter{Kind: history.KindAlert, Since: since})
	if err != nil && ctx.Err() == nil {
		d.o.Log.Warn("reading the history's alerts failed", "reason", string(code), "error", err)
	}
	for _, e := range evs {
		if e.Reason.Code == code {
			each(e)
		}
	}
}

// stillPaused tells whether s is still as it was left on novaHost: ACTIVE in Nova, no task,
// paused by its hypervisor (or its power state not known).
func stillPaused(s openstack.Server, novaHost string) bool {
	return s.Host == novaHost && s.Status == "ACTIVE" && s.TaskState == "" &&
		(s.PowerState == openstack.PowerPaused || s.PowerState == 0)
}
