package metrics

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/computeha/computeha/internal/httpserve"
)

// Handler serves the metrics at GET /metrics (HEAD too); any other path is
// 404 and any other method 405, each with a one-line reason.
func (m *Metrics) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{
		ErrorHandling:       promhttp.ContinueOnError,
		MaxRequestsInFlight: 4,
		Timeout:             10 * time.Second,
	}))
	mux.HandleFunc("/metrics", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method "+r.Method+" not allowed: GET /metrics", http.StatusMethodNotAllowed)
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "not found: the metrics are at /metrics", http.StatusNotFound)
	})
	return mux
}

// Listen opens addr (host:port) for Serve: a bad or busy address is an
// error here, before the daemon goes on, not later in the background.
func Listen(addr string) (net.Listener, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("metrics.listen %s: %w", addr, err)
	}
	return ln, nil
}

// Serve answers on ln until ctx ends, then shuts the server down.
func (m *Metrics) Serve(ctx context.Context, ln net.Listener, log *slog.Logger) error {
	return httpserve.Serve(ctx, ln, m.Handler(), "metrics server", log)
}

// ServeInBackground serves the metrics on listen (host:port; empty serves nothing) until ctx
// ends. A failure to listen, or a server that stops, is logged and the process goes on: the
// metrics never cost what the process is for.
func (m *Metrics) ServeInBackground(ctx context.Context, listen string, log *slog.Logger) {
	if listen == "" {
		return
	}
	ln, err := Listen(listen)
	if err != nil {
		log.Error("the metrics are not served; going on without them", "error", err)
		return
	}
	log.Info("serving the metrics", "address", ln.Addr().String(), "path", "/metrics")
	go func() {
		if err := m.Serve(ctx, ln, log); err != nil {
			log.Error("the metrics server stopped; going on without it", "error", err)
		}
	}()
}
