package observe

import (
	"github.com/prometheus/client_golang/prometheus"
)

// DiskCollector reports the free and total space of the file system holding
// the data dir, so "disk nearly full" can be alerted on from the broker's
// own /metrics without a node exporter.
type DiskCollector struct {
	path        string
	avail, size *prometheus.Desc
}

// NewDiskCollector returns a collector for the file system holding path.
func NewDiskCollector(path string) *DiskCollector {
	return &DiskCollector{
		path: path,
		avail: prometheus.NewDesc("flymq_data_dir_available_bytes",
			"Bytes available to the broker on the file system holding the data dir.", nil, nil),
		size: prometheus.NewDesc("flymq_data_dir_size_bytes",
			"Total bytes of the file system holding the data dir.", nil, nil),
	}
}

// Describe implements prometheus.Collector.
func (c *DiskCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.avail
	ch <- c.size
}

// Collect implements prometheus.Collector. A failed statfs yields invalid
// metrics, which the scrape reports as an error rather than a false zero.
func (c *DiskCollector) Collect(ch chan<- prometheus.Metric) {
	avail, size, err := diskSpace(c.path)
	if err != nil {
		ch <- prometheus.NewInvalidMetric(c.avail, err)
		return
	}
	ch <- prometheus.MustNewConstMetric(c.avail, prometheus.GaugeValue, float64(avail))
	ch <- prometheus.MustNewConstMetric(c.size, prometheus.GaugeValue, float64(size))
}
