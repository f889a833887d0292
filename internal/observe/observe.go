// Package observe serves the broker's HTTP endpoints for operators:
// /metrics for Prometheus, /healthz (the process is alive and serving HTTP)
// and /readyz (the broker has finished recovery, its listeners are up and it
// is not shutting down). Metrics and health may share one address, in which
// case one listener serves all three paths.
package observe

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/pprof"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.uber.org/zap"
)

// ErrNoGatherer is returned by Start when metrics are asked for without a
// Gatherer to serve.
var ErrNoGatherer = errors.New("observe: metrics address set without a gatherer")

// Options configures Start. An empty address disables that endpoint.
type Options struct {
	MetricsAddr string
	HealthAddr  string
	// Gatherer is served on /metrics; required when MetricsAddr is set.
	Gatherer prometheus.Gatherer
	// Pprof serves the runtime profiles under /debug/pprof/ on the metrics
	// address, for profiling a live broker; they expose no data but cost
	// CPU while taken, so they are off unless asked for.
	Pprof bool
	// Ready reports readiness for /readyz; nil means always ready.
	Ready func() bool
	// Logger gets listener and serve errors; nil means nop.
	Logger *zap.Logger
}

// Server is the running set of HTTP listeners.
type Server struct {
	metrics, health net.Addr
	servers         []*http.Server
	serving         sync.WaitGroup
}

// readHeaderTimeout bounds how long a scraper may take to send its request
// headers, so idle or hostile peers cannot pin goroutines.
const readHeaderTimeout = 10 * time.Second

// Start binds the configured addresses and serves them in the background;
// it returns once every listener is bound, so Addrs is valid.
func Start(opts Options) (*Server, error) {
	log := opts.Logger
	if log == nil {
		log = zap.NewNop()
	}
	if opts.MetricsAddr != "" && opts.Gatherer == nil {
		return nil, ErrNoGatherer
	}
	ready := opts.Ready
	if ready == nil {
		ready = func() bool { return true }
	}

	type listener struct {
		addr string
		mux  *http.ServeMux
	}
	var ls []*listener
	// Equal addresses share one listener, except port 0: each of those asks
	// for its own free port.
	muxFor := func(addr string) *http.ServeMux {
		for _, l := range ls {
			if l.addr == addr && !strings.HasSuffix(addr, ":0") {
				return l.mux
			}
		}
		l := &listener{addr: addr, mux: http.NewServeMux()}
		ls = append(ls, l)
		return l.mux
	}
	var metricsMux, healthMux *http.ServeMux
	if opts.MetricsAddr != "" {
		h := promhttp.HandlerFor(opts.Gatherer, promhttp.HandlerOpts{
			ErrorLog:          zap.NewStdLog(log),
			ErrorHandling:     promhttp.ContinueOnError,
			EnableOpenMetrics: true,
		})
		metricsMux = muxFor(opts.MetricsAddr)
		metricsMux.Handle("GET /metrics", h)
		if opts.Pprof {
			metricsMux.HandleFunc("GET /debug/pprof/", pprof.Index)
			metricsMux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
			metricsMux.HandleFunc("GET /debug/pprof/trace", pprof.Trace)
			metricsMux.HandleFunc("GET /debug/pprof/symbol", pprof.Symbol)
		}
	}
	if opts.HealthAddr != "" {
		healthMux = muxFor(opts.HealthAddr)
		healthMux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
			writeText(w, http.StatusOK, "ok\n")
		})
		healthMux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
			if ready() {
				writeText(w, http.StatusOK, "ready\n")
				return
			}
			writeText(w, http.StatusServiceUnavailable, "not ready\n")
		})
	}

	s := &Server{}
	var nls []net.Listener
	for _, l := range ls {
		nl, err := net.Listen("tcp", l.addr)
		if err != nil {
			for _, prev := range nls {
				_ = prev.Close()
			}
			return nil, fmt.Errorf("observe: listen %s: %w", l.addr, err)
		}
		nls = append(nls, nl)
		if l.mux == metricsMux {
			s.metrics = nl.Addr()
		}
		if l.mux == healthMux {
			s.health = nl.Addr()
		}
		s.servers = append(s.servers, &http.Server{
			Handler:           l.mux,
			ReadHeaderTimeout: readHeaderTimeout,
			ErrorLog:          zap.NewStdLog(log),
		})
	}
	for i, nl := range nls {
		srv := s.servers[i]
		log.Info("observability endpoint listening", zap.Stringer("addr", nl.Addr()))
		s.serving.Go(func() {
			if err := srv.Serve(nl); err != nil && !errors.Is(err, http.ErrServerClosed) {
				log.Error("observability endpoint stopped", zap.Stringer("addr", nl.Addr()), zap.Error(err))
			}
		})
	}
	return s, nil
}

// MetricsAddr is the bound /metrics address, nil when disabled.
func (s *Server) MetricsAddr() net.Addr { return s.metrics }

// HealthAddr is the bound /healthz and /readyz address, nil when disabled.
func (s *Server) HealthAddr() net.Addr { return s.health }

// Addrs lists every bound listener (one when metrics and health share it).
func (s *Server) Addrs() []net.Addr {
	var out []net.Addr
	for _, a := range []net.Addr{s.metrics, s.health} {
		if a != nil && (len(out) == 0 || out[0].String() != a.String()) {
			out = append(out, a)
		}
	}
	return out
}

// Close stops the listeners, letting in-flight requests finish until ctx
// ends; then it closes what is left.
func (s *Server) Close(ctx context.Context) error {
	var errs []error
	for _, srv := range s.servers {
		if err := srv.Shutdown(ctx); err != nil {
			errs = append(errs, err, srv.Close())
		}
	}
	s.serving.Wait()
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("observe: close: %w", err)
	}
	return nil
}

func writeText(w http.ResponseWriter, code int, body string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_, _ = w.Write([]byte(body))
}
