// Package metrics exposes what computeha's daemons see and do as Prometheus
// metrics, on an address the configuration gives (metrics.listen; off by
// default).
//
// The counters follow the history: the store tells Metrics of every record
// it commits (history.Observer), so a fencing, a decision or a VM recovery
// is counted where it is recorded, once. Gauges of the present (a host's
// judged state, the recoveries in flight) are set by their owners or read
// at scrape time. Labels carry only bounded values: host, network and
// segment names, kinds, reason codes, methods and results; never a VM id.
package metrics

import (
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/computeha/computeha/internal/history"
	"github.com/computeha/computeha/internal/plan"
)

// Namespace prefixes every metric's name.
const Namespace = "computeha"

// Metrics holds one process's collectors.
type Metrics struct {
	reg *prometheus.Registry

	events      *prometheus.CounterVec
	recoveries  *prometheus.CounterVec
	recoveryDur *prometheus.HistogramVec
	hostState   *prometheus.GaugeVec
	novaReqs    *prometheus.CounterVec
	novaDur     *prometheus.HistogramVec
	alertSends  *prometheus.CounterVec

	mu    sync.Mutex
	funcs map[string]prometheus.Collector // GaugeFunc's, by name
}

// New makes the collectors and registers them, with the Go runtime's and
// the process's own.
func New() *Metrics {
	m := &Metrics{
		reg:   prometheus.NewRegistry(),
		funcs: map[string]prometheus.Collector{},
		events: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: Namespace, Name: "history_events_total",
			Help: "Events recorded in the history, by kind (failure, fencing, decision, move, alert, guard, maintenance, config) and reason code.",
		}, []string{"kind", "reason"}),
		recoveries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: Namespace, Name: "vm_recoveries_total",
			Help: "VM recoveries (moves) ended, by method and result (succeeded, failed, skipped).",
		}, []string{"method", "result"}),
		recoveryDur: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: Namespace, Name: "vm_recovery_duration_seconds",
			Help:    "Time from a VM's recovery request to its end, of the recoveries that succeeded, by method.",
			Buckets: []float64{1, 2, 5, 10, 20, 30, 60, 120, 300, 600, 1800},
		}, []string{"method"}),
		hostState: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: Namespace, Name: "host_health",
			Help: "1 for each host's confirmed health state (running, degraded, dead, isolated, management-lost, service-unreachable, unknown), 0 for the others.",
		}, []string{"host", "state"}),
		novaReqs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: Namespace, Name: "nova_requests_total",
			Help: "HTTP requests to the OpenStack APIs (Keystone, Nova, Placement), by method and status code (0: no answer).",
		}, []string{"method", "code"}),
		novaDur: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: Namespace, Name: "nova_request_duration_seconds",
			Help:    "Duration of the HTTP requests to the OpenStack APIs, by method.",
			Buckets: []float64{.01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60},
		}, []string{"method"}),
		alertSends: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: Namespace, Name: "alert_deliveries_total",
			Help: "Attempts to deliver alerts, by receiver (alertmanager, webhook, command) and result (ok, error); a failed one is retried.",
		}, []string{"receiver", "result"}),
	}
	m.reg.MustRegister(m.events, m.recoveries, m.recoveryDur, m.hostState, m.novaReqs, m.novaDur, m.alertSends,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// Registry is where the collectors are, for tests and for more collectors.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

var _ history.Observer = (*Metrics)(nil)

// Recorded counts a committed history event.
func (m *Metrics) Recorded(e history.Event) {
	m.events.WithLabelValues(string(e.Kind), string(e.Reason.Code)).Inc()
}

// MoveFinished counts a VM recovery that ended, and times a successful one.
func (m *Metrics) MoveFinished(mv history.Move) {
	method := mv.Method
	if method == "" {
		method = "evacuate"
	}
	m.recoveries.WithLabelValues(method, string(mv.Result)).Inc()
	if d, ok := mv.Duration(); ok && mv.Result == history.MoveSucceeded {
		m.recoveryDur.WithLabelValues(method).Observe(d.Seconds())
	}
}

// SetHostState sets host's confirmed health state: its gauge is 1 for
// state and 0 for every other of states (all 0 for "": the host is not
// judged, its health responses suspended).
func (m *Metrics) SetHostState(host, state string, states []string) {
	for _, s := range states {
		v := 0.0
		if s == state {
			v = 1
		}
		m.hostState.WithLabelValues(host, s).Set(v)
	}
}

// AlertDelivered counts an attempt to deliver alerts to a receiver of kind.
func (m *Metrics) AlertDelivered(kind string, err error) {
	result := "ok"
	if err != nil {
		result = "error"
	}
	m.alertSends.WithLabelValues(kind, result).Inc()
}

// Transport wraps an HTTP transport of the OpenStack client so that every
// request is counted and timed.
func (m *Metrics) Transport(next http.RoundTripper) http.RoundTripper {
	return roundTripper(func(r *http.Request) (*http.Response, error) {
		start := time.Now()
		resp, err := next.RoundTrip(r)
		code := "0"
		if err == nil {
			code = strconv.Itoa(resp.StatusCode)
		}
		m.novaReqs.WithLabelValues(r.Method, code).Inc()
		m.novaDur.WithLabelValues(r.Method).Observe(time.Since(start).Seconds())
		return resp, err
	})
}

type roundTripper func(*http.Request) (*http.Response, error)

func (f roundTripper) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// ServeHeadroom registers the gauges of the segments' headroom, read at scrape time.
func (m *Metrics) ServeHeadroom(read func() map[string]plan.Resources) {
	gauge := func(name, help string, pick func(plan.Resources) int64, scale float64) {
		m.GaugeFunc(name, help, []string{"segment"}, func() map[[2]string]float64 {
			by := read()
			out := make(map[[2]string]float64, len(by))
			for seg, r := range by {
				out[[2]string{seg}] = float64(pick(r)) * scale
			}
			return out
		})
	}
	const what = " a segment has left under its admission policy (segments.NAME.admission; n+1 by default: after losing the host whose loss costs it most, its VMs placed on the segment's other hosts, reserved ones included); below 0, the segment no longer meets its policy."
	gauge("segment_headroom_vcpus", "vCPUs"+what, func(r plan.Resources) int64 { return r.VCPUs }, 1)
	gauge("segment_headroom_memory_bytes", "Memory"+what, func(r plan.Resources) int64 { return r.RAMMB }, 1<<20)
	gauge("segment_headroom_disk_bytes", "Disk"+what, func(r plan.Resources) int64 { return r.DiskGB }, 1<<30)
}

// GaugeFunc registers a gauge read at scrape time. labels has one or two
// names; read returns the value of each label-value pair present now (the
// second element is empty with one label). A pair absent from a reading is
// absent from that scrape. A second GaugeFunc of the same name replaces the
// first (a daemon made again in the same process reads its own state).
func (m *Metrics) GaugeFunc(name, help string, labels []string, read func() map[[2]string]float64) {
	if len(labels) < 1 || len(labels) > 2 {
		panic("metrics: GaugeFunc takes one or two labels")
	}
	c := &funcCollector{
		desc: prometheus.NewDesc(prometheus.BuildFQName(Namespace, "", name), help, labels, nil),
		n:    len(labels),
		read: read,
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if old, ok := m.funcs[name]; ok {
		m.reg.Unregister(old)
	}
	m.reg.MustRegister(c)
	m.funcs[name] = c
}

type funcCollector struct {
	desc *prometheus.Desc
	n    int
	read func() map[[2]string]float64
}

func (c *funcCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

func (c *funcCollector) Collect(ch chan<- prometheus.Metric) {
	for k, v := range c.read() {
		ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, v, k[:c.n]...)
	}
}
