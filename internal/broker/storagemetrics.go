package broker

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/flymq/flymq/internal/storage"
)

// newStorageMetrics builds the storage metrics shared by every partition.
func newStorageMetrics(reg prometheus.Registerer) (*storage.Metrics, error) {
	if reg == nil {
		return nil, nil
	}
	return storage.NewMetrics(reg), nil
}
