package storage

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the storage engine's instruments, shared by every partition
// of a broker. They carry no topic label so their cardinality is fixed.
type Metrics struct {
	sealed       prometheus.Counter
	opened       prometheus.Counter
	authFailures prometheus.Counter
	writeErrors  prometheus.Counter
	fsyncErrors  prometheus.Counter
	tornTails    prometheus.Counter
	fsyncSeconds prometheus.Histogram
	segments     prometheus.Gauge
	bytes        prometheus.Gauge
	fenced       prometheus.Gauge
}

// NewMetrics creates the instruments and registers them on reg (nil = do
// not register). Call once per broker.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	c := func(name, help string) prometheus.Counter {
		return prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: "flymq", Subsystem: "storage", Name: name, Help: help})
	}
	g := func(name, help string) prometheus.Gauge {
		return prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: "flymq", Subsystem: "storage", Name: name, Help: help})
	}
	m := &Metrics{
		sealed:       c("records_sealed_total", "Records encoded (and sealed when encryption is on)."),
		opened:       c("records_opened_total", "Records decoded (and authenticated when encryption is on)."),
		authFailures: c("auth_failures_total", "Records whose CRC was right but whose AEAD tag failed."),
		writeErrors:  c("write_errors_total", "Failed segment writes; the appends they carried failed."),
		fsyncErrors:  c("fsync_errors_total", "Failed fsyncs; each fences its partition."),
		tornTails:    c("torn_tails_truncated_total", "Torn segment tails cut off during recovery."),
		fsyncSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: "flymq", Subsystem: "storage", Name: "fsync_duration_seconds",
			Help:    "Latency of segment fsyncs.",
			Buckets: prometheus.ExponentialBuckets(0.0001, 2, 16),
		}),
		segments: g("segments", "Open segments across all partitions."),
		bytes:    g("bytes", "Bytes in open segments across all partitions."),
		fenced:   g("fenced_partitions", "Partitions fenced after an fsync failure."),
	}
	if reg != nil {
		for _, col := range []prometheus.Collector{m.sealed, m.opened, m.authFailures,
			m.writeErrors, m.fsyncErrors, m.tornTails, m.fsyncSeconds, m.segments,
			m.bytes, m.fenced} {
			reg.MustRegister(col)
		}
	}
	return m
}

func (m *Metrics) inc(c func(*Metrics) prometheus.Counter, n int) {
	if m != nil && n > 0 {
		c(m).Add(float64(n))
	}
}

func (m *Metrics) addGauge(g func(*Metrics) prometheus.Gauge, d float64) {
	if m != nil && d != 0 {
		g(m).Add(d)
	}
}

func (m *Metrics) observeFsync(start time.Time) {
	if m != nil {
		m.fsyncSeconds.Observe(time.Since(start).Seconds())
	}
}

func mSealed(m *Metrics) prometheus.Counter       { return m.sealed }
func mOpened(m *Metrics) prometheus.Counter       { return m.opened }
func mAuthFailures(m *Metrics) prometheus.Counter { return m.authFailures }
func mWriteErrors(m *Metrics) prometheus.Counter  { return m.writeErrors }
func mFsyncErrors(m *Metrics) prometheus.Counter  { return m.fsyncErrors }
func mTornTails(m *Metrics) prometheus.Counter    { return m.tornTails }
func mSegments(m *Metrics) prometheus.Gauge       { return m.segments }
func mBytes(m *Metrics) prometheus.Gauge          { return m.bytes }
func mFenced(m *Metrics) prometheus.Gauge         { return m.fenced }
