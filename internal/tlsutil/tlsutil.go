// Package tlsutil builds the broker's server-side TLS configuration:
// TLS 1.2 minimum, optional mutual TLS verified against a CA file, and a
// server certificate that is reloaded on demand (SIGHUP → Reload) and when
// its files change, without dropping open connections (new handshakes
// pick the new certificate through GetCertificate).
package tlsutil

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
)

// Client certificate modes (config security.tls_client_auth).
const (
	ClientAuthNone    = "none"
	ClientAuthRequest = "request"
	ClientAuthRequire = "require"
)

// Certificate-to-user mappings (config security.tls_cert_user_mapping).
const (
	MappingNone = "none"
	MappingCN   = "cn"
	MappingSAN  = "san"
)

// DefaultPollInterval is how often certificate files are checked for
// changes when Options.PollInterval is 0.
const DefaultPollInterval = 5 * time.Second

// ErrNoCA is returned when client certificates must be verified but no CA
// file is configured.
var ErrNoCA = errors.New("tlsutil: client certificate verification needs a CA file")

// Options configures a Manager.
type Options struct {
	// CertFile and KeyFile are the PEM server certificate chain and key.
	CertFile, KeyFile string
	// CAFile holds the PEM CAs client certificates are verified against.
	CAFile string
	// ClientAuth is none, request (verify a certificate when one is sent)
	// or require. Empty means require with a CAFile, none without.
	ClientAuth string
	// PollInterval is how often the cert and key files are checked for a
	// new modification time; 0 means DefaultPollInterval, < 0 disables
	// polling (Reload still works).
	PollInterval time.Duration
	Logger       *zap.Logger
	// Registerer gets the flymq_tls_cert_expiry_seconds gauge; nil means
	// not registered.
	Registerer prometheus.Registerer
	// Now is the clock for the expiry gauge; nil means time.Now.
	Now func() time.Time
}

// Manager owns the served certificate and the *tls.Config using it.
type Manager struct {
	opts Options
	log  *zap.Logger
	now  func() time.Time
	cfg  *tls.Config
	cert atomic.Pointer[loaded]

	reloadMu sync.Mutex // serializes Reload (SIGHUP and the poller)
	stop     chan struct{}
	done     chan struct{}
	once     sync.Once
}

type loaded struct {
	cert     *tls.Certificate
	notAfter time.Time
	certMod  time.Time
	keyMod   time.Time
}

// New loads the certificate, key and CA and starts the file poller.
func New(opts Options) (*Manager, error) {
	m := &Manager{opts: opts, log: opts.Logger, now: opts.Now,
		stop: make(chan struct{}), done: make(chan struct{})}
	if m.log == nil {
		m.log = zap.NewNop()
	}
	if m.now == nil {
		m.now = time.Now
	}
	if opts.CertFile == "" || opts.KeyFile == "" {
		return nil, errors.New("tlsutil: certificate and key files are required")
	}
	l, err := load(opts.CertFile, opts.KeyFile)
	if err != nil {
		return nil, err
	}
	m.cert.Store(l)
	cfg := &tls.Config{
		MinVersion: tls.VersionTLS12,
		// TLS 1.2 suites limited to forward-secret AEADs; TLS 1.3 suites
		// are not configurable and all qualify.
		CipherSuites: []uint16{
			tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
			tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
			tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
			tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
			tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
			tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
		},
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
			return m.cert.Load().cert, nil
		},
	}
	if cfg.ClientAuth, err = clientAuth(opts.ClientAuth, opts.CAFile); err != nil {
		return nil, err
	}
	if opts.CAFile != "" {
		pool, err := loadPool(opts.CAFile)
		if err != nil {
			return nil, err
		}
		cfg.ClientCAs = pool
	}
	m.cfg = cfg
	if opts.Registerer != nil {
		g := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "flymq_tls_cert_expiry_seconds",
			Help: "Seconds until the served TLS certificate expires (negative once expired).",
		}, func() float64 { return m.NotAfter().Sub(m.now()).Seconds() })
		if err := opts.Registerer.Register(g); err != nil {
			return nil, fmt.Errorf("tlsutil: register metric: %w", err)
		}
	}
	interval := opts.PollInterval
	if interval == 0 {
		interval = DefaultPollInterval
	}
	if interval > 0 {
		go m.poll(interval)
	} else {
		close(m.done)
	}
	m.log.Info("tls certificate loaded", zap.Time("not-after", l.notAfter),
		zap.String("client-auth", cfg.ClientAuth.String()))
	return m, nil
}

func clientAuth(mode, caFile string) (tls.ClientAuthType, error) {
	switch mode {
	case "":
		if caFile != "" {
			return tls.RequireAndVerifyClientCert, nil
		}
		return tls.NoClientCert, nil
	case ClientAuthNone:
		return tls.NoClientCert, nil
	case ClientAuthRequest:
		if caFile == "" {
			return 0, ErrNoCA
		}
		return tls.VerifyClientCertIfGiven, nil
	case ClientAuthRequire:
		if caFile == "" {
			return 0, ErrNoCA
		}
		return tls.RequireAndVerifyClientCert, nil
	}
	return 0, fmt.Errorf("tlsutil: unknown client auth mode %q", mode)
}

func loadPool(caFile string) (*x509.CertPool, error) {
	pem, err := os.ReadFile(caFile)
	if err != nil {
		return nil, fmt.Errorf("tlsutil: read CA file: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("tlsutil: no PEM certificate in CA file %s", caFile)
	}
	return pool, nil
}

func modTime(path string) time.Time {
	st, err := os.Stat(path)
	if err != nil {
		return time.Time{}
	}
	return st.ModTime()
}

func load(certFile, keyFile string) (*loaded, error) {
	// Modification times are taken before reading so that a write racing
	// with the load is seen as a change on the next poll.
	l := &loaded{certMod: modTime(certFile), keyMod: modTime(keyFile)}
	c, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("tlsutil: load certificate: %w", err)
	}
	leaf := c.Leaf
	if leaf == nil {
		if leaf, err = x509.ParseCertificate(c.Certificate[0]); err != nil {
			return nil, fmt.Errorf("tlsutil: parse certificate: %w", err)
		}
	}
	l.cert, l.notAfter = &c, leaf.NotAfter
	return l, nil
}

// Config returns the server configuration. Its certificate follows
// reloads; do not modify it.
func (m *Manager) Config() *tls.Config { return m.cfg }

// NotAfter is the expiry time of the certificate currently served.
func (m *Manager) NotAfter() time.Time { return m.cert.Load().notAfter }

// Reload re-reads the certificate and key. On error the current
// certificate stays in use. Open connections are unaffected; new
// handshakes get the new certificate.
func (m *Manager) Reload() error {
	m.reloadMu.Lock()
	defer m.reloadMu.Unlock()
	l, err := load(m.opts.CertFile, m.opts.KeyFile)
	if err != nil {
		return err
	}
	m.cert.Store(l)
	m.log.Info("tls certificate reloaded", zap.Time("not-after", l.notAfter))
	return nil
}

// poll reloads when either file's modification time differs from the
// one of the last successful load. A failed load (e.g. the key written
// after the certificate) is retried on the next tick; it is logged once
// per change.
func (m *Manager) poll(interval time.Duration) {
	defer close(m.done)
	t := time.NewTicker(interval)
	defer t.Stop()
	var failedCert, failedKey time.Time
	for {
		select {
		case <-m.stop:
			return
		case <-t.C:
		}
		cur := m.cert.Load()
		cm, km := modTime(m.opts.CertFile), modTime(m.opts.KeyFile)
		if cm.Equal(cur.certMod) && km.Equal(cur.keyMod) {
			continue
		}
		if err := m.Reload(); err != nil {
			if !cm.Equal(failedCert) || !km.Equal(failedKey) {
				m.log.Warn("tls certificate changed but cannot be loaded; keeping the current one",
					zap.Error(err))
				failedCert, failedKey = cm, km
			}
		}
	}
}

// Close stops the file poller.
func (m *Manager) Close() error {
	m.once.Do(func() { close(m.stop) })
	<-m.done
	return nil
}

// CertUser maps the verified client certificate of a connection to a
// user name: the subject common name (mapping "cn") or the first DNS SAN,
// else the first email SAN ("san"). ok is false for mapping "none", an
// unverified or missing certificate, or an empty name.
func CertUser(state tls.ConnectionState, mapping string) (user string, ok bool) {
	if len(state.VerifiedChains) == 0 || len(state.PeerCertificates) == 0 {
		return "", false
	}
	leaf := state.PeerCertificates[0]
	switch mapping {
	case MappingCN:
		user = leaf.Subject.CommonName
	case MappingSAN:
		if len(leaf.DNSNames) > 0 {
			user = leaf.DNSNames[0]
		} else if len(leaf.EmailAddresses) > 0 {
			user = leaf.EmailAddresses[0]
		}
	}
	return user, user != ""
}
