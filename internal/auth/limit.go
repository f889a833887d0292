package auth

import (
	"errors"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// maxTrackedPeers bounds the failure table; past it, expired entries are
// swept before a new peer is added, so a scan from many addresses cannot
// grow memory without limit.
const maxTrackedPeers = 65536

// limiter counts failed AUTH attempts per peer IP in fixed windows. A
// peer that reached max failures is refused until its window ends.
// Refused attempts are not counted, so the window is not extended and a
// legitimate client behind the same address gets back in on time.
type limiter struct {
	max    int
	window time.Duration

	mu    sync.Mutex
	peers map[string]*failures
}

type failures struct {
	start time.Time
	count int
}

func newLimiter(max int, window time.Duration) *limiter {
	return &limiter{max: max, window: window, peers: map[string]*failures{}}
}

// allow reports whether peer may try a password now.
func (l *limiter) allow(peer string, now time.Time) bool {
	if l.max <= 0 {
		return true
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	f := l.peers[peer]
	if f == nil {
		return true
	}
	if now.Sub(f.start) >= l.window {
		delete(l.peers, peer)
		return true
	}
	return f.count < l.max
}

// fail counts one failed attempt by peer.
func (l *limiter) fail(peer string, now time.Time) {
	if l.max <= 0 {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	f := l.peers[peer]
	if f == nil || now.Sub(f.start) >= l.window {
		if f == nil && len(l.peers) >= maxTrackedPeers {
			l.sweepLocked(now)
		}
		l.peers[peer] = &failures{start: now, count: 1}
		return
	}
	f.count++
}

func (l *limiter) sweepLocked(now time.Time) {
	for p, f := range l.peers {
		if now.Sub(f.start) >= l.window {
			delete(l.peers, p)
		}
	}
}

// metrics are the store's counters; registered only with a Registerer.
type metrics struct {
	authSuccess prometheus.Counter
	authFail    *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		authSuccess: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "flymq_auth_success_total", Help: "Successful AUTH requests.",
		}),
		authFail: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "flymq_auth_failures_total",
			Help: "Failed AUTH requests by reason (bad_credentials, disabled, rate_limited).",
		}, []string{"reason"}),
	}
	// Every reason is exported from the start at 0, so the first failure
	// is an increase that rate() and increase() can see rather than the
	// birth of a series.
	for _, reason := range []string{"bad_credentials", "disabled", "rate_limited"} {
		m.authFail.WithLabelValues(reason)
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{m.authSuccess, m.authFail} {
			if err := reg.Register(c); err != nil {
				return nil, err
			}
		}
	}
	return m, nil
}

func (m *metrics) authFailure(err error) {
	reason := "bad_credentials"
	switch {
	case errors.Is(err, ErrDisabled):
		reason = "disabled"
	case errors.Is(err, ErrTooManyAttempts):
		reason = "rate_limited"
	}
	m.authFail.WithLabelValues(reason).Inc()
}
