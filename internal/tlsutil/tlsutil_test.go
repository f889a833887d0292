package tlsutil

import (
	"bufio"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

type ca struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pem  []byte
}

var serial int64

func template(cn string) *x509.Certificate {
	serial++
	return &x509.Certificate{
		SerialNumber: big.NewInt(serial),
		Subject:      pkix.Name{CommonName: cn},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC),
	}
}

func newCA(t *testing.T, name string) *ca {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := template(name)
	tmpl.IsCA, tmpl.BasicConstraintsValid = true, true
	tmpl.KeyUsage = x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	return &ca{cert: cert, key: key, pem: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}
}

// issue returns PEM cert and key signed by c.
func (c *ca) issue(t *testing.T, tmpl *x509.Certificate, usage x509.ExtKeyUsage) (certPEM, keyPEM []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl.ExtKeyUsage = []x509.ExtKeyUsage{usage}
	tmpl.KeyUsage = x509.KeyUsageDigitalSignature
	der, err := x509.CreateCertificate(rand.Reader, tmpl, c.cert, &key.PublicKey, c.key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder})
}

func (c *ca) server(t *testing.T, cn string) ([]byte, []byte) {
	tmpl := template(cn)
	tmpl.IPAddresses = []net.IP{net.IPv4(127, 0, 0, 1)}
	return c.issue(t, tmpl, x509.ExtKeyUsageServerAuth)
}

func (c *ca) client(t *testing.T, cn string, dns ...string) tls.Certificate {
	tmpl := template(cn)
	tmpl.DNSNames = dns
	tmpl.EmailAddresses = []string{cn + "@example.com"}
	cp, kp := c.issue(t, tmpl, x509.ExtKeyUsageClientAuth)
	cert, err := tls.X509KeyPair(cp, kp)
	if err != nil {
		t.Fatal(err)
	}
	return cert
}

type files struct{ dir, cert, key, ca string }

func writeFiles(t *testing.T, dir string, certPEM, keyPEM, caPEM []byte) files {
	t.Helper()
	f := files{dir: dir, cert: filepath.Join(dir, "server.crt"), key: filepath.Join(dir, "server.key"),
		ca: filepath.Join(dir, "ca.crt")}
	for p, b := range map[string][]byte{f.cert: certPEM, f.key: keyPEM, f.ca: caPEM} {
		if b != nil {
			if err := os.WriteFile(p, b, 0o600); err != nil {
				t.Fatal(err)
			}
		}
	}
	return f
}

// serve accepts TLS connections; for each it completes the handshake and
// answers every line with the certificate-mapped user ("-" for none).
// Handshake errors go to errs.
func serve(t *testing.T, cfg *tls.Config, mapping string) (addr string, errs chan error) {
	t.Helper()
	ln, err := tls.Listen("tcp", "127.0.0.1:0", cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ln.Close() })
	errs = make(chan error, 16)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				tc := c.(*tls.Conn)
				if err := tc.Handshake(); err != nil {
					errs <- err
					return
				}
				user, ok := CertUser(tc.ConnectionState(), mapping)
				if !ok {
					user = "-"
				}
				r := bufio.NewReader(tc)
				for {
					if _, err := r.ReadString('\n'); err != nil {
						return
					}
					if _, err := tc.Write([]byte(user + "\n")); err != nil {
						return
					}
				}
			}()
		}
	}()
	return ln.Addr().String(), errs
}

func roots(c *ca) *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(c.cert)
	return p
}

// ask sends one line and returns the answer.
func ask(c *tls.Conn) (string, error) {
	if _, err := c.Write([]byte("who\n")); err != nil {
		return "", err
	}
	s, err := bufio.NewReader(c).ReadString('\n')
	return strings.TrimSpace(s), err
}

func newManager(t *testing.T, opts Options) *Manager {
	t.Helper()
	m, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.Close() })
	return m
}

func TestServerAuthCustomCA(t *testing.T) {
	root := newCA(t, "test root")
	cp, kp := root.server(t, "broker")
	f := writeFiles(t, t.TempDir(), cp, kp, nil)
	m := newManager(t, Options{CertFile: f.cert, KeyFile: f.key, PollInterval: -1})
	if m.Config().ClientAuth != tls.NoClientCert || m.Config().MinVersion != tls.VersionTLS12 {
		t.Fatalf("client auth %v, min version %x", m.Config().ClientAuth, m.Config().MinVersion)
	}
	addr, _ := serve(t, m.Config(), MappingCN)

	c, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: roots(root)})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if got, err := ask(c); err != nil || got != "-" {
		t.Fatalf("answer %q, %v", got, err)
	}
	if cn := c.ConnectionState().PeerCertificates[0].Subject.CommonName; cn != "broker" {
		t.Fatalf("served %q", cn)
	}
	// Without the custom CA the client refuses the server.
	_, err = tls.Dial("tcp", addr, &tls.Config{})
	var unknown x509.UnknownAuthorityError
	if !errors.As(err, &unknown) {
		t.Fatalf("dial without CA: %v", err)
	}
}

func TestTLS11Refused(t *testing.T) {
	root := newCA(t, "test root")
	cp, kp := root.server(t, "broker")
	f := writeFiles(t, t.TempDir(), cp, kp, nil)
	m := newManager(t, Options{CertFile: f.cert, KeyFile: f.key, PollInterval: -1})
	addr, errs := serve(t, m.Config(), MappingCN)
	_, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: roots(root), MinVersion: tls.VersionTLS10,
		MaxVersion: tls.VersionTLS11})
	if err == nil {
		t.Fatal("TLS 1.1 handshake succeeded")
	}
	if serr := <-errs; !strings.Contains(serr.Error(), "unsupported versions") {
		t.Fatalf("server error: %v", serr)
	}
}

func TestMutualTLSRequired(t *testing.T) {
	root, other := newCA(t, "test root"), newCA(t, "other root")
	cp, kp := root.server(t, "broker")
	f := writeFiles(t, t.TempDir(), cp, kp, root.pem)
	// An empty mode with a CA file means require.
	m := newManager(t, Options{CertFile: f.cert, KeyFile: f.key, CAFile: f.ca, PollInterval: -1})
	if m.Config().ClientAuth != tls.RequireAndVerifyClientCert {
		t.Fatalf("client auth %v", m.Config().ClientAuth)
	}
	addr, errs := serve(t, m.Config(), MappingCN)

	refused := func(name string, certs []tls.Certificate, want string) {
		t.Helper()
		// GetClientCertificate sends the certificate even when its issuer
		// is not among the CAs the server asks for, as a hostile client
		// would (crypto/tls would otherwise quietly send none).
		c, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: roots(root),
			GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
				if len(certs) == 0 {
					return &tls.Certificate{}, nil
				}
				return &certs[0], nil
			}})
		if err == nil {
			// TLS 1.3: the client learns of the refusal on its first read.
			_, err = ask(c)
			c.Close()
		}
		if err == nil {
			t.Fatalf("%s: accepted", name)
		}
		if serr := <-errs; !strings.Contains(serr.Error(), want) {
			t.Fatalf("%s: server error %v, want %q", name, serr, want)
		}
	}
	refused("no certificate", nil, "didn't provide a certificate")
	refused("other CA", []tls.Certificate{other.client(t, "mallory")}, "certificate signed by unknown authority")

	c, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: roots(root),
		Certificates: []tls.Certificate{root.client(t, "alice", "alice.clients.example")}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if got, err := ask(c); err != nil || got != "alice" {
		t.Fatalf("mapped %q, %v", got, err)
	}
}

func TestCertUserMappings(t *testing.T) {
	root := newCA(t, "test root")
	cp, kp := root.server(t, "broker")
	f := writeFiles(t, t.TempDir(), cp, kp, root.pem)
	m := newManager(t, Options{CertFile: f.cert, KeyFile: f.key, CAFile: f.ca, ClientAuth: ClientAuthRequest,
		PollInterval: -1})
	if m.Config().ClientAuth != tls.VerifyClientCertIfGiven {
		t.Fatalf("client auth %v", m.Config().ClientAuth)
	}
	for _, c := range []struct {
		mapping string
		certs   []tls.Certificate
		want    string
	}{
		{MappingCN, []tls.Certificate{root.client(t, "alice", "alice.dns")}, "alice"},
		{MappingSAN, []tls.Certificate{root.client(t, "alice", "alice.dns", "second.dns")}, "alice.dns"},
		{MappingSAN, []tls.Certificate{root.client(t, "bob")}, "bob@example.com"},
		{MappingNone, []tls.Certificate{root.client(t, "alice")}, "-"},
		{MappingCN, nil, "-"}, // request mode: no certificate is fine, just unmapped
	} {
		addr, _ := serve(t, m.Config(), c.mapping)
		conn, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: roots(root), Certificates: c.certs})
		if err != nil {
			t.Fatal(err)
		}
		got, err := ask(conn)
		conn.Close()
		if err != nil || got != c.want {
			t.Fatalf("mapping %s: %q, %v; want %q", c.mapping, got, err, c.want)
		}
	}
	// An unverified certificate never maps.
	if u, ok := CertUser(tls.ConnectionState{PeerCertificates: []*x509.Certificate{root.cert}}, MappingCN); ok {
		t.Fatalf("unverified mapped to %q", u)
	}
}

func TestClientAuthNeedsCA(t *testing.T) {
	root := newCA(t, "test root")
	cp, kp := root.server(t, "broker")
	f := writeFiles(t, t.TempDir(), cp, kp, nil)
	for _, mode := range []string{ClientAuthRequest, ClientAuthRequire} {
		if _, err := New(Options{CertFile: f.cert, KeyFile: f.key, ClientAuth: mode}); !errors.Is(err, ErrNoCA) {
			t.Fatalf("%s without CA: %v", mode, err)
		}
	}
	_, err := New(Options{CertFile: f.cert, KeyFile: f.key, ClientAuth: "maybe"})
	if err == nil || err.Error() != `tlsutil: unknown client auth mode "maybe"` {
		t.Fatalf("bad mode: %v", err)
	}
}

func servedCN(t *testing.T, addr string, root *ca) string {
	t.Helper()
	c, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: roots(root)})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return c.ConnectionState().PeerCertificates[0].Subject.CommonName
}

func TestReloadKeepsConnections(t *testing.T) {
	root := newCA(t, "test root")
	cp, kp := root.server(t, "broker-v1")
	f := writeFiles(t, t.TempDir(), cp, kp, nil)
	reg := prometheus.NewRegistry()
	now := time.Date(2029, 12, 2, 3, 4, 5, 0, time.UTC)
	m := newManager(t, Options{CertFile: f.cert, KeyFile: f.key, PollInterval: -1, Registerer: reg,
		Now: func() time.Time { return now }})
	addr, _ := serve(t, m.Config(), MappingCN)

	old, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: roots(root)})
	if err != nil {
		t.Fatal(err)
	}
	defer old.Close()
	if cn := old.ConnectionState().PeerCertificates[0].Subject.CommonName; cn != "broker-v1" {
		t.Fatalf("served %q", cn)
	}
	if want := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC); !m.NotAfter().Equal(want) {
		t.Fatalf("NotAfter %v", m.NotAfter())
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	if len(mfs) != 1 || mfs[0].GetName() != "flymq_tls_cert_expiry_seconds" ||
		mfs[0].GetMetric()[0].GetGauge().GetValue() != 31*24*3600 {
		t.Fatalf("metrics %v", mfs)
	}

	// A broken file is refused and the current certificate kept.
	if err := os.WriteFile(f.cert, []byte("garbage"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := m.Reload(); err == nil {
		t.Fatal("reload of garbage succeeded")
	}
	if cn := servedCN(t, addr, root); cn != "broker-v1" {
		t.Fatalf("after failed reload: %q", cn)
	}

	tmpl := template("broker-v2")
	tmpl.IPAddresses = []net.IP{net.IPv4(127, 0, 0, 1)}
	tmpl.NotAfter = time.Date(2031, 1, 1, 0, 0, 0, 0, time.UTC)
	cp2, kp2 := root.issue(t, tmpl, x509.ExtKeyUsageServerAuth)
	writeFiles(t, f.dir, cp2, kp2, nil)
	if err := m.Reload(); err != nil {
		t.Fatal(err)
	}
	if cn := servedCN(t, addr, root); cn != "broker-v2" {
		t.Fatalf("after reload: %q", cn)
	}
	if !m.NotAfter().Equal(tmpl.NotAfter) {
		t.Fatalf("NotAfter %v", m.NotAfter())
	}
	// The connection made before the reload still works.
	if got, err := ask(old); err != nil || got != "-" {
		t.Fatalf("old connection: %q, %v", got, err)
	}
}

func TestReloadOnFileChange(t *testing.T) {
	root := newCA(t, "test root")
	cp, kp := root.server(t, "broker-v1")
	f := writeFiles(t, t.TempDir(), cp, kp, nil)
	m := newManager(t, Options{CertFile: f.cert, KeyFile: f.key, PollInterval: 10 * time.Millisecond})
	addr, _ := serve(t, m.Config(), MappingCN)
	if cn := servedCN(t, addr, root); cn != "broker-v1" {
		t.Fatalf("served %q", cn)
	}
	cp2, kp2 := root.server(t, "broker-v2")
	writeFiles(t, f.dir, cp2, kp2, nil)
	// Make the change visible even on file systems with coarse mtimes.
	later := time.Now().Add(2 * time.Second)
	for _, p := range []string{f.cert, f.key} {
		if err := os.Chtimes(p, later, later); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for servedCN(t, addr, root) != "broker-v2" {
		if time.Now().After(deadline) {
			t.Fatal("file change not picked up")
		}
		time.Sleep(10 * time.Millisecond)
	}
}
