package server

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/flymq/flymq/internal/protocol"
)

// metrics holds the server's collectors. Per-op children are resolved once
// so the request path does no label lookups.
type metrics struct {
	requests  [256]prometheus.Counter
	errors    [256]prometheus.Counter
	latency   [256]prometheus.Observer
	denied    [256]prometheus.Counter
	active    map[string]prometheus.Gauge
	refused   prometheus.Counter
	tlsFailed prometheus.Counter
	closed    *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer, routes *[256]route) (*metrics, error) {
	requests := prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "flymq", Name: "requests_total",
		Help: "Requests served, by operation.",
	}, []string{"op"})
	errs := prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "flymq", Name: "request_errors_total",
		Help: "Requests answered with an ERROR frame, by operation.",
	}, []string{"op"})
	latency := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: "flymq", Name: "request_duration_seconds",
		Help:    "Time from a request's decode to its reply being queued, by operation.",
		Buckets: []float64{.00005, .0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, 1},
	}, []string{"op"})
	denied := prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "flymq", Name: "permission_denials_total",
		Help: "Requests refused by the gate table, by operation.",
	}, []string{"op"})
	active := prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Namespace: "flymq", Name: "connections_active",
		Help: "Open client connections, by listener kind.",
	}, []string{"listener"})
	refused := prometheus.NewCounter(prometheus.CounterOpts{
		Namespace: "flymq", Name: "connections_refused_total",
		Help: "Connections refused because a connection limit was reached.",
	})
	tlsFailed := prometheus.NewCounter(prometheus.CounterOpts{
		Namespace: "flymq", Name: "tls_handshake_failures_total",
		Help: "TLS handshakes that failed, including plaintext sent to a TLS listener.",
	})
	closed := prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "flymq", Name: "connections_closed_total",
		Help: "Connections closed by the broker, by reason.",
	}, []string{"reason"})

	if reg != nil {
		for _, c := range []prometheus.Collector{requests, errs, latency, denied, active, refused, tlsFailed, closed} {
			if err := reg.Register(c); err != nil {
				var are prometheus.AlreadyRegisteredError
				if !errors.As(err, &are) {
					return nil, err
				}
			}
		}
	}
	m := &metrics{
		active:    map[string]prometheus.Gauge{},
		refused:   refused,
		tlsFailed: tlsFailed,
		closed:    closed,
	}
	for _, kind := range []string{"plain", "tls"} {
		m.active[kind] = active.WithLabelValues(kind)
	}
	for i := range 256 {
		// Unknown opcodes share one label so a scanner cannot mint series.
		op := "unknown"
		if routes[i].serve != nil {
			op = protocol.Op(i).String()
		}
		m.requests[i] = requests.WithLabelValues(op)
		m.errors[i] = errs.WithLabelValues(op)
		m.latency[i] = latency.WithLabelValues(op)
		m.denied[i] = denied.WithLabelValues(op)
	}
	return m, nil
}
