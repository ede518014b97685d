package hostcheck

import (
	"context"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/computeha/computeha/internal/gossip"
	"github.com/computeha/computeha/internal/health"
	"github.com/computeha/computeha/internal/metrics"
)

// collector exposes what the process sees, read from its state at each scrape: the same
// values its health socket and its published attributes carry, never a copy kept aside.
type collector struct {
	c *checker

	reach, age, write, service, restarts, loop, members *prometheus.Desc
}

func newCollector(c *checker) *collector {
	name := func(n string) string { return prometheus.BuildFQName(metrics.Namespace, "hostcheck", n) }
	return &collector{
		c: c,
		reach: prometheus.NewDesc(name("peer_reachable"),
			"1 when this host reaches the peer on the network, 0 when it is lost (after probe_failures failed probes, or once the gossip confirmed its death); absent until it is known, and for a peer this host does not probe that the gossip holds alive.",
			[]string{"network", "peer"}, nil),
		age: prometheus.NewDesc(name("heartbeat_age_seconds"),
			"Time since this host's heartbeat was last written to the shared storage; absent before the first write.", nil, nil),
		write: prometheus.NewDesc(name("heartbeat_write_duration_seconds"),
			"How long the last finished heartbeat write took (temp file, fsync, rename, fsync of the directory).", nil, nil),
		service: prometheus.NewDesc(name("service_up"),
			"1 when the cluster service (pacemaker-remoted, corosync) runs on this host, 0 when it is down.", nil, nil),
		restarts: prometheus.NewDesc(name("service_restarts_total"),
			"Restarts of the cluster service this process ran.", nil, nil),
		loop: prometheus.NewDesc(name("healthy"),
			"1 when the part of this process works (writer: the heartbeat; probes: the reachability loop; watchdog, when one is configured: armed and fed), 0 when not.",
			[]string{"part"}, nil),
		members: prometheus.NewDesc(name("gossip_members"),
			"Other hosts this host's gossip membership on the network holds in the state (alive, dead: its failure confirmed, left: its hostcheck stopped on purpose); absent while the network's gossip is not running. 0 alive: this host joined nobody.",
			[]string{"network", "state"}, nil),
	}
}

func (m *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{m.reach, m.age, m.write, m.service, m.restarts, m.loop, m.members} {
		ch <- d
	}
}

func (m *collector) Collect(ch chan<- prometheus.Metric) {
	c := m.c
	now := c.o.Now()
	ws := c.writer.status(now)
	if !ws.LastWrite.IsZero() {
		ch <- prometheus.MustNewConstMetric(m.age, prometheus.GaugeValue, max(now.Sub(ws.LastWrite).Seconds(), 0))
		ch <- prometheus.MustNewConstMetric(m.write, prometheus.GaugeValue, ws.Duration.Seconds())
	}
	ch <- prometheus.MustNewConstMetric(m.loop, prometheus.GaugeValue, one(ws.OK), "writer")
	c.mu.Lock()
	defer c.mu.Unlock()
	ch <- prometheus.MustNewConstMetric(m.loop, prometheus.GaugeValue, one(c.probeHealth(now).OK), "probes")
	ch <- prometheus.MustNewConstMetric(m.service, prometheus.GaugeValue, one(c.serviceUp))
	ch <- prometheus.MustNewConstMetric(m.restarts, prometheus.CounterValue, float64(c.restarts))
	if wd, reason := c.watchdogHealth(); wd != nil {
		fed := reason == "" && wd.Armed && wd.Condemned == "" && wd.Alone == ""
		ch <- prometheus.MustNewConstMetric(m.loop, prometheus.GaugeValue, one(fed), "watchdog")
	}
	for _, n := range c.nets {
		if g := n.gossip.member; g != nil {
			count := map[gossip.State]int{gossip.Alive: 0, gossip.Dead: 0, gossip.Left: 0}
			for _, p := range g.Peers() {
				count[p.State]++
			}
			for s, k := range count {
				ch <- prometheus.MustNewConstMetric(m.members, prometheus.GaugeValue, float64(k), n.name, s.String())
			}
		}
		for _, p := range n.peers {
			if p.state == health.Unknown {
				continue
			}
			ch <- prometheus.MustNewConstMetric(m.reach, prometheus.GaugeValue, one(p.state == health.OK), n.name, p.name)
		}
	}
}

func one(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// serveMetrics serves the process's metrics (and Go's and the process's own) on listen.
func serveMetrics(ctx context.Context, c *checker, listen string) {
	m := metrics.New()
	m.Registry().MustRegister(newCollector(c))
	m.ServeInBackground(ctx, listen, c.log)
}
