package client

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"io"
	"math/big"
	"net"
	"testing"
	"time"

	"github.com/flymq/flymq/internal/protocol"
)

// selfSigned returns a server certificate for 127.0.0.1 and a pool that
// trusts it.
func selfSigned(t *testing.T) (tls.Certificate, *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "flymq-test"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IPAddresses:           []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IsCA:                  true,
		BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(leaf)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, pool
}

// TestTLS runs the vector exchange over TLS from the first byte.
func TestTLS(t *testing.T) {
	cert, pool := selfSigned(t)
	replies := vectorReplies(t)
	s := newFakeServer(t, func(h protocol.Header, p []byte) []byte {
		return replies[hex.EncodeToString(protocol.AppendFrame(nil, h.Op, h.Flags, p))]
	})
	// Wrap the fake server's listener: accept TLS instead of plain TCP.
	plain := s.ln
	tlsLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer tlsLn.Close()
	go func() {
		for {
			nc, err := tlsLn.Accept()
			if err != nil {
				return
			}
			go proxyTLS(nc, plain.Addr().String(), cert)
		}
	}()
	c, err := Dial(context.Background(), tlsLn.Addr().String(), Options{TLS: &tls.Config{RootCAs: pool}})
	if err != nil {
		t.Fatalf("Dial TLS: %v", err)
	}
	defer c.Close()
	if err := c.CreateTopic("orders", 3); err != nil {
		t.Fatalf("CreateTopic over TLS: %v", err)
	}
	// A client that does not trust the certificate fails at dial time.
	if _, err := Dial(context.Background(), tlsLn.Addr().String(), Options{TLS: &tls.Config{}}); err == nil {
		t.Fatal("untrusted certificate accepted")
	}
}

// proxyTLS terminates TLS on nc and relays the plaintext to addr.
func proxyTLS(nc net.Conn, addr string, cert tls.Certificate) {
	srv := tls.Server(nc, &tls.Config{Certificates: []tls.Certificate{cert}})
	defer srv.Close()
	if err := srv.Handshake(); err != nil {
		return
	}
	up, err := net.Dial("tcp", addr)
	if err != nil {
		return
	}
	defer up.Close()
	done := make(chan struct{}, 2)
	go func() { _, _ = io.Copy(up, srv); done <- struct{}{} }()
	go func() { _, _ = io.Copy(srv, up); done <- struct{}{} }()
	<-done
}
