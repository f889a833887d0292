package broker

import (
	"fmt"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
)

// otherLabel is the shared label of topics and groups beyond the cap.
const otherLabel = "_other"

// brokerMetrics are the broker's series. Per-topic counters are curried
// once per topic so the produce and fetch paths only do atomic adds.
type brokerMetrics struct {
	reg        prometheus.Registerer
	registered []prometheus.Collector

	produced, producedBytes, fetched, fetchedBytes *prometheus.CounterVec

	mu       sync.Mutex
	maxLabel int
	labeled  map[string]bool // topics that own a label
	other    *topicMetrics
}

// topicMetrics are one topic's counters (its own label or "_other").
type topicMetrics struct {
	label                                          string
	produced, producedBytes, fetched, fetchedBytes prometheus.Counter
}

// stateCollector reports gauges computed at scrape time: topic and
// partition counts and consumer lag. Computing them on demand means no
// series to keep in sync and nothing to delete.
type stateCollector struct {
	b                      *Broker
	maxLabel               int
	topics, parts, lagDesc *prometheus.Desc
}

func newBrokerMetrics(reg prometheus.Registerer, maxLabel int, b *Broker) (*brokerMetrics, error) {
	counter := func(name, help string) *prometheus.CounterVec {
		return prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "flymq", Subsystem: "broker", Name: name,
			Help: help + ` Topics beyond the label cap share topic="_other".`,
		}, []string{"topic"})
	}
	m := &brokerMetrics{
		reg:           reg,
		maxLabel:      maxLabel,
		labeled:       make(map[string]bool),
		produced:      counter("produced_messages_total", "Messages appended by produce requests."),
		producedBytes: counter("produced_bytes_total", "Key plus value bytes appended."),
		fetched:       counter("fetched_messages_total", "Messages returned by consume and fetch."),
		fetchedBytes:  counter("fetched_bytes_total", "Key plus value bytes returned."),
	}
	m.other = m.curry(otherLabel)
	sc := &stateCollector{
		b:        b,
		maxLabel: maxLabel,
		topics: prometheus.NewDesc("flymq_broker_topics",
			"Number of topics.", nil, nil),
		parts: prometheus.NewDesc("flymq_broker_partitions",
			"Number of partitions over all topics.", nil, nil),
		lagDesc: prometheus.NewDesc("flymq_broker_consumer_lag",
			`Sum over committed partitions of LEO minus committed offset, per consumer group. `+
				`Groups beyond the label cap are summed into topic="_other",group="_other".`,
			[]string{"topic", "group"}, nil),
	}
	if reg == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{m.produced, m.producedBytes, m.fetched, m.fetchedBytes, sc} {
		if err := reg.Register(c); err != nil {
			m.unregister()
			return nil, fmt.Errorf("register metrics: %w", err)
		}
		m.registered = append(m.registered, c)
	}
	return m, nil
}

func (m *brokerMetrics) curry(label string) *topicMetrics {
	return &topicMetrics{
		label:         label,
		produced:      m.produced.WithLabelValues(label),
		producedBytes: m.producedBytes.WithLabelValues(label),
		fetched:       m.fetched.WithLabelValues(label),
		fetchedBytes:  m.fetchedBytes.WithLabelValues(label),
	}
}

// forTopic returns the counters of a new or loaded topic.
func (m *brokerMetrics) forTopic(name string) *topicMetrics {
	m.mu.Lock()
	defer m.mu.Unlock()
	if name == otherLabel || len(m.labeled) >= m.maxLabel {
		return m.other
	}
	m.labeled[name] = true
	return m.curry(name)
}

// dropTopic deletes a deleted topic's series and frees its label slot.
func (m *brokerMetrics) dropTopic(tm *topicMetrics) {
	if tm == nil || tm == m.other {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.labeled, tm.label)
	for _, v := range []*prometheus.CounterVec{m.produced, m.producedBytes, m.fetched, m.fetchedBytes} {
		v.DeleteLabelValues(tm.label)
	}
}

func (m *brokerMetrics) unregister() {
	if m == nil || m.reg == nil {
		return
	}
	for _, c := range m.registered {
		m.reg.Unregister(c)
	}
	m.registered = nil
}

func (c *stateCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.topics
	ch <- c.parts
	ch <- c.lagDesc
}

func (c *stateCollector) Collect(ch chan<- prometheus.Metric) {
	b := c.b
	b.mu.RLock()
	nt, np := len(b.topics), 0
	for _, t := range b.topics {
		np += int(t.n)
	}
	b.mu.RUnlock()
	ch <- prometheus.MustNewConstMetric(c.topics, prometheus.GaugeValue, float64(nt))
	ch <- prometheus.MustNewConstMetric(c.parts, prometheus.GaugeValue, float64(np))
	if b.groups == nil {
		return
	}
	var other float64
	haveOther := false
	for i, g := range b.groups.list() {
		var lag uint64
		for _, po := range g.Offsets {
			if _, next, err := b.Offsets(g.Topic, po.Partition); err == nil && next > po.Offset {
				lag += next - po.Offset
			}
		}
		if i < c.maxLabel && (g.Topic != otherLabel || g.Name != otherLabel) {
			// Group ids are client bytes: one that is not valid UTF-8
			// cannot be a label value and is counted under "_other".
			m, err := prometheus.NewConstMetric(c.lagDesc, prometheus.GaugeValue, float64(lag),
				g.Topic, g.Name)
			if err == nil {
				ch <- m
				continue
			}
		}
		other += float64(lag)
		haveOther = true
	}
	if haveOther {
		ch <- prometheus.MustNewConstMetric(c.lagDesc, prometheus.GaugeValue, other,
			otherLabel, otherLabel)
	}
}
