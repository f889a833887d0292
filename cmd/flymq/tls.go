package main

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/flymq/flymq/internal/config"
)

// tlsLoader holds the TLS settings built from the certificate files and
// rebuilds them on Reload (SIGHUP), so a renewed certificate or CA bundle
// takes effect for new connections without a restart.
type tlsLoader struct {
	sec     config.SecurityConfig
	current atomic.Pointer[tls.Config]
	expiry  prometheus.Gauge
	log     *zap.Logger
}

// newTLSLoader loads the files once; a failure here stops the start-up.
func newTLSLoader(sec config.SecurityConfig, reg prometheus.Registerer, log *zap.Logger) (*tlsLoader, error) {
	l := &tlsLoader{
		sec: sec,
		log: log,
		expiry: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "flymq_tls_certificate_expiry_timestamp_seconds",
			Help: "Unix time at which the served TLS certificate expires.",
		}),
	}
	if reg != nil {
		if err := reg.Register(l.expiry); err != nil {
			return nil, fmt.Errorf("register tls metric: %w", err)
		}
	}
	if err := l.Reload(); err != nil {
		return nil, err
	}
	return l, nil
}

// Config returns the tls.Config handed to the server: every handshake asks
// for the settings loaded last.
func (l *tlsLoader) Config() *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) {
			return l.current.Load(), nil
		},
	}
}

// Reload re-reads certificate, key and CA files. On error the previous
// settings stay in force.
func (l *tlsLoader) Reload() error {
	cert, err := tls.LoadX509KeyPair(l.sec.TLSCertFile, l.sec.TLSKeyFile)
	if err != nil {
		return fmt.Errorf("load tls certificate: %w", err)
	}
	cfg := &tls.Config{
		MinVersion:   tls.VersionTLS12,
		Certificates: []tls.Certificate{cert},
	}
	if l.sec.TLSCAFile != "" {
		pem, err := os.ReadFile(l.sec.TLSCAFile)
		if err != nil {
			return fmt.Errorf("read tls ca file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return fmt.Errorf("tls ca file %s: no PEM certificate found", l.sec.TLSCAFile)
		}
		cfg.ClientCAs = pool
	}
	switch l.sec.TLSClientAuth {
	case config.ClientAuthRequest:
		cfg.ClientAuth = tls.VerifyClientCertIfGiven
	case config.ClientAuthRequire:
		cfg.ClientAuth = tls.RequireAndVerifyClientCert
	}
	l.current.Store(cfg)
	l.expiry.Set(float64(cert.Leaf.NotAfter.Unix()))
	l.log.Info("tls certificate loaded", zap.String("cert-file", l.sec.TLSCertFile),
		zap.Time("not-after", cert.Leaf.NotAfter), zap.String("client-auth", l.sec.TLSClientAuth))
	return nil
}

// certUser returns the server's certificate-to-user mapping for
// security.tls_cert_user_mapping, or nil for none. Only verified chains
// count: an unverified certificate names nobody.
func certUser(mapping string) func(tls.ConnectionState) (string, bool) {
	var pick func(*x509.Certificate) string
	switch mapping {
	case config.CertUserCN:
		pick = func(c *x509.Certificate) string { return c.Subject.CommonName }
	case config.CertUserSAN:
		pick = func(c *x509.Certificate) string {
			if len(c.DNSNames) > 0 {
				return c.DNSNames[0]
			}
			if len(c.EmailAddresses) > 0 {
				return c.EmailAddresses[0]
			}
			return ""
		}
	default:
		return nil
	}
	return func(st tls.ConnectionState) (string, bool) {
		if len(st.VerifiedChains) == 0 || len(st.VerifiedChains[0]) == 0 {
			return "", false
		}
		name := pick(st.VerifiedChains[0][0])
		return name, name != ""
	}
}
