package evacd

import (
	"context"
	"encoding/json"
	"slices"
	"sync"
	"time"

	"github.com/computeha/computeha/internal/history"
)

// restartStorms are the hosts whose failed VMs were left alone for a restart storm lately,
// by the limit reached (storm_host, storm_cloud), for the metrics and the alerts: a storm
// holds while a refusal is younger than instances.storm_window, the time the bound looks
// back. A daemon that starts takes the refusals of that window from the history.
type restartStorms struct {
	mu   sync.Mutex
	last map[[2]string]time.Time // node, limit → the last refusal
}

func (s *restartStorms) note(node, limit string, at time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.last == nil {
		s.last = map[[2]string]time.Time{}
	}
	if k := [2]string{node, limit}; at.After(s.last[k]) {
		s.last[k] = at
	}
}

// byHost is node → the limits reached on it within window before now.
func (s *restartStorms) byHost(now time.Time, window time.Duration) map[string][]string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string][]string{}
	for k, at := range s.last {
		if now.Sub(at) < window {
			out[k[0]] = append(out[k[0]], k[1])
		}
	}
	for _, l := range out {
		slices.Sort(l)
	}
	return out
}

// stormsGauge is computeha_restart_storm: 1 for each host and limit of a storm.
func (d *Daemon) stormsGauge() map[[2]string]float64 {
	out := map[[2]string]float64{}
	for node, limits := range d.storms.byHost(d.clock.Now(), d.o.Config.Instances.StormWindow) {
		for _, l := range limits {
			out[[2]string{node, l}] = 1
		}
	}
	return out
}

// seedStorms takes the restart storms of the last storm_window from the history.
func (d *Daemon) seedStorms(ctx context.Context) {
	if d.o.Config.Instances.StormWindow <= 0 {
		return
	}
	d.alertsSince(ctx, ReasonRestartStorm, d.clock.Now().Add(-d.o.Config.Instances.StormWindow), func(e history.Event) {
		var det struct {
			Limit string `json:"limit"`
		}
		if json.Unmarshal(e.Details, &det) == nil && det.Limit != "" {
			d.storms.note(e.Host, det.Limit, e.Time)
		}
	})
}
