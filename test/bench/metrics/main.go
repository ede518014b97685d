// Command metrics measures what the metrics cost the evacuation daemon when
// it tracks 1000 VMs: the daemon's collectors are fed as the history feeds
// them (every VM's recovery start and end, the decisions and fencings of 100
// hosts, their health states, OpenStack requests), then the process's RSS is
// compared with its RSS before (the same process, the same run), and GET
// /metrics is timed. It exits 1 on a miss.
//
//	go run ./test/bench/metrics -vms 1000
package main

import (
	"flag"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"runtime"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/computeha/computeha/internal/health"
	"github.com/computeha/computeha/internal/history"
	"github.com/computeha/computeha/internal/metrics"
)

func main() {
	vms := flag.Int("vms", 1000, "VMs tracked")
	hosts := flag.Int("hosts", 100, "hosts judged")
	scrapes := flag.Int("scrapes", 50, "timed scrapes (the median counts)")
	rssTarget := flag.Float64("rss-target", 2, "largest acceptable RSS added, MB")
	scrapeTarget := flag.Duration("scrape-target", 20*time.Millisecond, "largest acceptable median scrape")
	flag.Parse()
	if err := run(*vms, *hosts, *scrapes, *rssTarget, *scrapeTarget); err != nil {
		fmt.Fprintln(os.Stderr, "metrics:", err)
		os.Exit(1)
	}
}

func run(vms, hosts, scrapes int, rssTarget float64, scrapeTarget time.Duration) error {
	if vms < 1 || hosts < 1 || scrapes < 1 {
		return fmt.Errorf("-vms, -hosts and -scrapes must be at least 1")
	}
	before := rss()
	m := metrics.New()
	var states []string
	for _, s := range health.States() {
		states = append(states, string(s))
	}
	phases := map[[2]string]float64{}
	m.GaugeFunc("recovery_phase", "bench", []string{"host", "phase"}, func() map[[2]string]float64 { return phases })
	methods := []string{"evacuate", "live-migrate", "cold-migrate", "restart", "recreate", "none"}
	results := []history.MoveResult{history.MoveSucceeded, history.MoveSucceeded, history.MoveFailed, history.MoveSkipped}
	start := time.Now().Add(-time.Hour)
	for i := range vms {
		host := "compute" + strconv.Itoa(i%hosts)
		m.Recorded(history.Event{Kind: history.KindMove, Host: host})
		m.MoveFinished(history.Move{
			VMID: fmt.Sprintf("vm-%d", i), From: host, Method: methods[i%len(methods)], Result: results[i%len(results)],
			Start: start, End: start.Add(time.Duration(5+i%120) * time.Second),
		})
	}
	for h := range hosts {
		host := "compute" + strconv.Itoa(h)
		m.SetHostState(host, states[h%len(states)], states)
		for _, code := range []string{"failure", "fencing-confirmed", "health-fenced", "isolated"} {
			m.Recorded(history.Event{Kind: history.KindDecision, Host: host, Reason: history.Reason{Code: history.ReasonCode(code)}})
		}
		if h%10 == 0 {
			phases[[2]string{host, "recovering"}] = 1
		}
	}
	tr := m.Transport(roundTrip{})
	for _, method := range []string{"GET", "POST", "PUT", "DELETE"} {
		for range 50 {
			req := httptest.NewRequest(method, "http://nova/", nil)
			_, _ = tr.RoundTrip(req)
		}
	}
	h := m.Handler()
	var times []time.Duration
	size := 0
	for range scrapes {
		rec := httptest.NewRecorder()
		t := time.Now()
		h.ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
		times = append(times, time.Since(t))
		if rec.Code != 200 {
			return fmt.Errorf("GET /metrics: %d", rec.Code)
		}
		size = rec.Body.Len()
		if !strings.Contains(rec.Body.String(), "computeha_vm_recoveries_total") {
			return fmt.Errorf("GET /metrics lacks the recoveries")
		}
	}
	slices.Sort(times)
	median := times[len(times)/2]
	added := float64(rss()-before) / (1 << 20)
	verdict := func(ok bool) string {
		if ok {
			return "met"
		}
		return "MISSED"
	}
	fmt.Printf("metrics with %d VMs and %d hosts tracked: RSS added %.2f MB (target ≤ %.0f MB: %s); scrape median %s, worst %s, %d bytes (target ≤ %s: %s)\n",
		vms, hosts, added, rssTarget, verdict(added <= rssTarget), median.Round(10*time.Microsecond), times[len(times)-1].Round(10*time.Microsecond),
		size, scrapeTarget, verdict(median <= scrapeTarget))
	if added > rssTarget || median > scrapeTarget {
		return fmt.Errorf("a target is missed")
	}
	return nil
}

type roundTrip struct{}

func (roundTrip) RoundTrip(*http.Request) (*http.Response, error) {
	return &http.Response{StatusCode: 200, Body: http.NoBody}, nil
}

// rss is the process's resident set after a collection, in bytes.
func rss() int64 {
	runtime.GC()
	debug.FreeOSMemory()
	b, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b))
	if len(f) < 2 {
		return 0
	}
	pages, _ := strconv.ParseInt(f[1], 10, 64)
	return pages * int64(os.Getpagesize())
}
