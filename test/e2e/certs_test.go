package e2e

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// testCA is a certificate authority made inside the test; certPath is
// its PEM certificate, as a tls_ca_file or a client's CA file.
type testCA struct {
	cert     *x509.Certificate
	key      *ecdsa.PrivateKey
	certPath string
}

// keyPair is an issued certificate and its key on disk.
type keyPair struct {
	certPath, keyPath string
	serial            *big.Int
}

func randomSerial(t *testing.T) *big.Int {
	t.Helper()
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func writePEM(t *testing.T, path, typ string, der []byte) {
	t.Helper()
	data := pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})
	// Written aside and renamed, so that a reload never sees half a file.
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// newCA creates a self-signed CA named name and writes its certificate
// to dir/name.crt.
func newCA(t *testing.T, dir, name string) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          randomSerial(t),
		Subject:               pkix.Name{CommonName: name},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		IsCA:                  true,
		BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	ca := &testCA{cert: cert, key: key, certPath: filepath.Join(dir, name+".crt")}
	writePEM(t, ca.certPath, "CERTIFICATE", der)
	return ca
}

// issue signs a certificate with common name cn, written to
// dir/file.crt and dir/file.key (replacing earlier files of that name).
// A server certificate is valid for 127.0.0.1 and localhost; a client
// certificate is for client authentication only.
func (ca *testCA) issue(t *testing.T, dir, file, cn string, server bool) keyPair {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: randomSerial(t),
		Subject:      pkix.Name{CommonName: cn},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	if server {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
		tmpl.IPAddresses = []net.IP{net.ParseIP("127.0.0.1")}
		tmpl.DNSNames = []string{"localhost"}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	kp := keyPair{certPath: filepath.Join(dir, file+".crt"), keyPath: filepath.Join(dir, file+".key"),
		serial: tmpl.SerialNumber}
	// Key first: a poller that sees the new certificate must find its key.
	writePEM(t, kp.keyPath, "PRIVATE KEY", keyDER)
	writePEM(t, kp.certPath, "CERTIFICATE", der)
	return kp
}

// clientTLS is a client configuration trusting caPath (system roots when
// empty) and presenting client when non-nil.
func clientTLS(t *testing.T, caPath string, client *keyPair) *tls.Config {
	t.Helper()
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if caPath != "" {
		data, err := os.ReadFile(caPath)
		if err != nil {
			t.Fatal(err)
		}
		cfg.RootCAs = x509.NewCertPool()
		if !cfg.RootCAs.AppendCertsFromPEM(data) {
			t.Fatalf("no certificate in %s", caPath)
		}
	}
	if client != nil {
		cert, err := tls.LoadX509KeyPair(client.certPath, client.keyPath)
		if err != nil {
			t.Fatal(err)
		}
		// Presented whatever CAs the broker names, so that a certificate of
		// another CA really reaches the broker's verification.
		cfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			return &cert, nil
		}
	}
	return cfg
}
