// Package server accepts FlyMQ client connections on plaintext and TLS
// listeners, reads request frames, checks each against the gate table and
// hands it to the broker, answering strictly in arrival order.
//
// Lock order: Server.mu, then a conn's own state. Handlers never hold
// Server.mu while calling into the broker.
package server

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/flymq/flymq/internal/audit"
	"github.com/flymq/flymq/internal/auth"
	"github.com/flymq/flymq/internal/broker"
)

// Options configures a Server. Zero values mean the documented defaults.
type Options struct {
	// Addr is the main listener (bind_addr). Empty disables it.
	Addr string
	// TLSAddr adds a TLS-only listener beside Addr. Empty disables it.
	TLSAddr string
	// MainTLS makes Addr speak TLS from the first byte, as old configs expect
	// when security.tls_enabled is set without a tls_bind_addr.
	MainTLS bool
	// TLSConfig serves both TLS listeners. Required when TLSAddr or MainTLS is set.
	TLSConfig *tls.Config
	// CertUser maps a verified client certificate to a user name; nil
	// disables the mapping. ok is false when the certificate names nobody.
	CertUser func(state tls.ConnectionState) (user string, ok bool)

	Broker *broker.Broker
	// Auth decides every gate. Nil means authentication is disabled.
	Auth *auth.Store
	// Audit records security events. Nil disables the audit ops.
	Audit *audit.Log

	// NodeID and AdvertisedAddr are what CLUSTER_METADATA reports.
	NodeID, AdvertisedAddr string

	// IdleTimeout closes a connection that sends no frame for that long.
	// Zero means never: the clients do not re-authenticate after a reconnect.
	IdleTimeout time.Duration
	// ReadTimeout bounds how long the rest of a frame may take once its
	// first bytes arrived, so a stalled sender cannot pin a connection.
	ReadTimeout time.Duration
	// MaxConns and MaxConnsPerIP refuse connections past them; zero = no limit.
	MaxConns, MaxConnsPerIP int

	Logger     *zap.Logger
	Registerer prometheus.Registerer
}

// Server is a running set of listeners and their connections.
type Server struct {
	opts    Options
	log     *zap.Logger
	metrics *metrics
	routes  *[256]route

	mu        sync.Mutex
	listeners []net.Listener
	conns     map[*conn]struct{}
	perIP     map[string]int
	closing   bool
	wg        sync.WaitGroup
}

// ErrClosed is returned by Start after Shutdown.
var ErrClosed = errors.New("server: closed")

// New checks opts and prepares a Server; Start binds it.
func New(opts Options) (*Server, error) {
	if opts.Broker == nil {
		return nil, errors.New("server: a broker is required")
	}
	if (opts.TLSAddr != "" || opts.MainTLS) && opts.TLSConfig == nil {
		return nil, errors.New("server: a TLS listener needs a TLS configuration")
	}
	if opts.Addr == "" && opts.TLSAddr == "" {
		return nil, errors.New("server: no listener address")
	}
	log := opts.Logger
	if log == nil {
		log = zap.NewNop()
	}
	if opts.ReadTimeout <= 0 {
		opts.ReadTimeout = 30 * time.Second
	}
	routes := routeTable()
	m, err := newMetrics(opts.Registerer, routes)
	if err != nil {
		return nil, err
	}
	return &Server{
		opts:    opts,
		log:     log,
		metrics: m,
		routes:  routes,
		conns:   make(map[*conn]struct{}),
		perIP:   make(map[string]int),
	}, nil
}

// Start binds every configured listener and serves them in the background.
// It returns once all are bound, or the first bind error.
func (s *Server) Start() error {
	type bind struct {
		addr string
		tls  bool
	}
	var binds []bind
	if s.opts.Addr != "" {
		binds = append(binds, bind{s.opts.Addr, s.opts.MainTLS})
	}
	if s.opts.TLSAddr != "" {
		binds = append(binds, bind{s.opts.TLSAddr, true})
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing {
		return ErrClosed
	}
	for _, b := range binds {
		ln, err := net.Listen("tcp", b.addr)
		if err != nil {
			for _, l := range s.listeners {
				l.Close()
			}
			s.listeners = nil
			return fmt.Errorf("server: listen %s: %w", b.addr, err)
		}
		s.listeners = append(s.listeners, ln)
		s.wg.Add(1)
		go s.accept(ln, b.tls)
		s.log.Info("listening", zap.String("addr", ln.Addr().String()), zap.Bool("tls", b.tls))
	}
	return nil
}

// Addrs reports the bound listener addresses, main listener first.
func (s *Server) Addrs() []net.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]net.Addr, 0, len(s.listeners))
	for _, l := range s.listeners {
		out = append(out, l.Addr())
	}
	return out
}

// Listening reports whether every listener is bound and the server is not
// shutting down, for the readiness probe.
func (s *Server) Listening() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return !s.closing && len(s.listeners) > 0
}

func (s *Server) accept(ln net.Listener, useTLS bool) {
	defer s.wg.Done()
	kind := "plain"
	if useTLS {
		kind = "tls"
	}
	var delay time.Duration
	for {
		nc, err := ln.Accept()
		if err != nil {
			if s.isClosing() {
				return
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() || errors.Is(err, errTooManyFiles) {
				// Out of descriptors or a transient fault: back off instead
				// of spinning, the way net/http does.
				delay = min(max(2*delay, 5*time.Millisecond), time.Second)
				s.log.Warn("accept failed, retrying", zap.Error(err), zap.Duration("delay", delay))
				time.Sleep(delay)
				continue
			}
			s.log.Error("accept failed, listener stopped", zap.String("addr", ln.Addr().String()), zap.Error(err))
			return
		}
		delay = 0
		ip := hostOf(nc.RemoteAddr())
		if !s.admit(ip) {
			s.metrics.refused.Inc()
			nc.Close()
			continue
		}
		if tc, ok := nc.(*net.TCPConn); ok {
			tc.SetNoDelay(true)
			tc.SetKeepAlive(true)
			tc.SetKeepAlivePeriod(30 * time.Second)
		}
		if useTLS {
			nc = tls.Server(nc, s.opts.TLSConfig)
		}
		c := newConn(s, nc, ip, kind)
		s.mu.Lock()
		if s.closing {
			s.mu.Unlock()
			s.release(ip)
			nc.Close()
			return
		}
		s.conns[c] = struct{}{}
		s.wg.Add(1)
		s.mu.Unlock()
		go func() {
			defer s.wg.Done()
			c.serve()
			s.mu.Lock()
			delete(s.conns, c)
			s.mu.Unlock()
			s.release(ip)
		}()
	}
}

// admit counts a new connection against the global and per-address limits.
func (s *Server) admit(ip string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.opts.MaxConns > 0 && len(s.conns) >= s.opts.MaxConns {
		return false
	}
	if s.opts.MaxConnsPerIP > 0 && s.perIP[ip] >= s.opts.MaxConnsPerIP {
		return false
	}
	s.perIP[ip]++
	return true
}

func (s *Server) release(ip string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.perIP[ip]--; s.perIP[ip] <= 0 {
		delete(s.perIP, ip)
	}
}

func (s *Server) isClosing() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closing
}

// Shutdown stops accepting, lets every connection finish the request it is
// serving, then closes them. Connections still busy when ctx ends are closed
// hard and ctx's error is returned.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.closing = true
	for _, l := range s.listeners {
		l.Close()
	}
	for c := range s.conns {
		c.stop()
	}
	s.mu.Unlock()

	done := make(chan struct{})
	go func() {
		s.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		s.mu.Lock()
		for c := range s.conns {
			c.nc.Close()
		}
		s.mu.Unlock()
		<-done
		return ctx.Err()
	}
}

func hostOf(a net.Addr) string {
	if ta, ok := a.(*net.TCPAddr); ok {
		return ta.IP.String()
	}
	host, _, err := net.SplitHostPort(a.String())
	if err != nil {
		return a.String()
	}
	return host
}
