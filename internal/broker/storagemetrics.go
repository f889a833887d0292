package broker

import (
	"errors"
	"fmt"
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/flymq/flymq/internal/storage"
)

// newStorageMetrics builds the storage metrics shared by every partition.
// storage.NewMetrics registers with MustRegister; the registerer handed to
// it turns a duplicate registration into an error instead of a panic and
// remembers what it registered so Close can unregister it, which lets a
// broker be reopened on the same registry.
func newStorageMetrics(reg prometheus.Registerer) (*storage.Metrics, *trackingRegisterer, error) {
	if reg == nil {
		return storage.NewMetrics(nil), nil, nil
	}
	tr := &trackingRegisterer{reg: reg}
	m := storage.NewMetrics(tr)
	if err := tr.firstErr(); err != nil {
		tr.unregisterAll()
		return nil, nil, fmt.Errorf("register storage metrics: %w", err)
	}
	return m, tr, nil
}

// trackingRegisterer records registrations and errors.
type trackingRegisterer struct {
	reg  prometheus.Registerer
	mu   sync.Mutex
	cols []prometheus.Collector
	errs []error
}

func (r *trackingRegisterer) Register(c prometheus.Collector) error {
	err := r.reg.Register(c)
	r.mu.Lock()
	defer r.mu.Unlock()
	if err != nil {
		r.errs = append(r.errs, err)
		return err
	}
	r.cols = append(r.cols, c)
	return nil
}

func (r *trackingRegisterer) MustRegister(cs ...prometheus.Collector) {
	for _, c := range cs {
		_ = r.Register(c) // the error is kept for firstErr
	}
}

func (r *trackingRegisterer) Unregister(c prometheus.Collector) bool {
	return r.reg.Unregister(c)
}

func (r *trackingRegisterer) firstErr() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return errors.Join(r.errs...)
}

func (r *trackingRegisterer) unregisterAll() {
	if r == nil {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, c := range r.cols {
		r.reg.Unregister(c)
	}
	r.cols = nil
}
