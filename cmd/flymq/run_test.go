package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/flymq/flymq/internal/config"
	"github.com/flymq/flymq/internal/crypto"
	"github.com/flymq/flymq/internal/testutil"
)

// testConfig is a broker on loopback ports chosen by the kernel.
func testConfig(t *testing.T) config.Config {
	t.Helper()
	c := config.Defaults()
	c.BindAddr = "127.0.0.1:0"
	c.DataDir = t.TempDir()
	c.Audit.Enabled = false
	c.Observability.Metrics.Addr = "127.0.0.1:0"
	c.Observability.Health.Addr = "127.0.0.1:0"
	c.Normalize()
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	return c
}

type started struct{ broker, observe []net.Addr }

// startRun runs the broker in the background and waits until it is ready.
func startRun(t *testing.T, p runParams) (sigs chan os.Signal, ready started, done chan error) {
	t.Helper()
	sigs = make(chan os.Signal, 1)
	readyc := make(chan started, 1)
	done = make(chan error, 1)
	p.Signals = sigs
	p.ShutdownTimeout = 10 * time.Second
	p.OnReady = func(b, o []net.Addr) { readyc <- started{b, o} }
	go func() { done <- run(context.Background(), p) }()
	select {
	case ready = <-readyc:
	case err := <-done:
		t.Fatalf("run stopped before ready: %v", err)
	}
	return sigs, ready, done
}

func status(t *testing.T, url string) int {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

func TestRunServesAndShutsDown(t *testing.T) {
	ring := crypto.NewKeyring(mustKey(t, hexA))
	cfg := testConfig(t)
	sigs, addrs, done := startRun(t, runParams{Config: cfg, Keyring: ring})

	if len(addrs.broker) != 1 || len(addrs.observe) != 2 {
		t.Fatalf("addrs = %+v", addrs)
	}
	conn, err := net.Dial("tcp", addrs.broker[0].String())
	if err != nil {
		t.Fatalf("dial broker: %v", err)
	}
	conn.Close()
	health := "http://" + addrs.observe[1].String()
	if code := status(t, health+"/readyz"); code != http.StatusOK {
		t.Fatalf("/readyz = %d while running", code)
	}
	resp, err := http.Get("http://" + addrs.observe[0].String() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || !strings.Contains(string(body), `flymq_build_info{version="dev"} 1`) {
		t.Fatalf("/metrics lacks flymq_build_info: %v\n%s", err, body)
	}

	sigs <- syscall.SIGHUP // reload keeps running
	if code := status(t, health+"/readyz"); code != http.StatusOK {
		t.Fatalf("/readyz = %d after SIGHUP", code)
	}
	sigs <- syscall.SIGTERM
	if err := <-done; err != nil {
		t.Fatalf("run after SIGTERM: %v", err)
	}
	if _, err := net.Dial("tcp", addrs.broker[0].String()); err == nil {
		t.Fatal("broker still accepting after shutdown")
	}
	if _, err := http.Get(health + "/readyz"); err == nil {
		t.Fatal("health endpoint still up after shutdown")
	}

	// The same data dir refuses another key and a missing one, naming the id.
	err = run(context.Background(), runParams{Config: cfg, Keyring: crypto.NewKeyring(mustKey(t, hexB)),
		ShutdownTimeout: time.Second})
	if !errors.Is(err, crypto.ErrWrongKey) || !strings.Contains(err.Error(), keyID(t, hexA).String()) {
		t.Fatalf("wrong key: %v", err)
	}
	err = run(context.Background(), runParams{Config: cfg, ShutdownTimeout: time.Second})
	if !errors.Is(err, crypto.ErrKeyRequired) {
		t.Fatalf("no key on a sealed data dir: %v", err)
	}
}

func TestRunStopsOnContext(t *testing.T) {
	cfg := testConfig(t)
	cfg.Security.EncryptionEnabled = false
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	readyc := make(chan struct{})
	go func() {
		done <- run(ctx, runParams{Config: cfg, ShutdownTimeout: 5 * time.Second,
			OnReady: func(_, _ []net.Addr) { close(readyc) }})
	}()
	<-readyc
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("run: %v", err)
	}
}

func TestRunRefusesBusyPort(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	cfg := testConfig(t)
	cfg.Security.EncryptionEnabled = false
	cfg.BindAddr = ln.Addr().String()
	err = run(context.Background(), runParams{Config: cfg, ShutdownTimeout: time.Second})
	if err == nil || !strings.Contains(err.Error(), "start server") {
		t.Fatalf("busy port: %v", err)
	}
}

func TestHealthcheckCommand(t *testing.T) {
	cfg := testConfig(t)
	cfg.Security.EncryptionEnabled = false
	sigs, addrs, done := startRun(t, runParams{Config: cfg})
	if code, _, errs := runCLI("healthcheck", "--addr", addrs.observe[1].String()); code != 0 {
		t.Fatalf("healthcheck on a ready broker: %d %s", code, errs)
	}
	sigs <- syscall.SIGINT
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if code, _, _ := runCLI("healthcheck", "--addr", addrs.observe[1].String(), "--timeout", "1s"); code != 1 {
		t.Fatalf("healthcheck on a stopped broker: %d", code)
	}
}

func mustKey(t *testing.T, hex string) *crypto.Key {
	t.Helper()
	k, err := crypto.ParseKey(hex)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// selfSigned writes a certificate for 127.0.0.1 and its key to dir.
func selfSigned(t *testing.T, dir string) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	return testutil.SelfSignedCert(t, dir, "flymq-test", time.Now().Add(24*time.Hour))
}

// TestRunSecureSetup wires everything the secure sample turns on: a TLS
// listener beside the plaintext one, authentication and the audit trail.
func TestRunSecureSetup(t *testing.T) {
	cfg := testConfig(t)
	cfg.Security.TLSEnabled = true
	cfg.Security.TLSBindAddr = "127.0.0.1:0"
	cfg.Security.TLSCertFile, cfg.Security.TLSKeyFile, _ = selfSigned(t, t.TempDir())
	cfg.Auth.Enabled = true
	cfg.Auth.AdminPassword = "correct-horse-battery"
	cfg.Audit.Enabled = true
	cfg.Audit.LogDir = ""
	cfg.Normalize()
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	_, _, pool := selfSigned(t, t.TempDir()) // a different CA: must be refused
	ring := crypto.NewKeyring(mustKey(t, hexC))
	sigs, addrs, done := startRun(t, runParams{Config: cfg, Keyring: ring})
	if len(addrs.broker) != 2 {
		t.Fatalf("broker addrs = %v, want plaintext and TLS", addrs.broker)
	}

	certPEM, err := os.ReadFile(cfg.Security.TLSCertFile)
	if err != nil {
		t.Fatal(err)
	}
	good := x509.NewCertPool()
	good.AppendCertsFromPEM(certPEM)
	conn, err := tls.Dial("tcp", addrs.broker[1].String(), &tls.Config{RootCAs: good, MinVersion: tls.VersionTLS12})
	if err != nil {
		t.Fatalf("tls handshake: %v", err)
	}
	if v := conn.ConnectionState().Version; v < tls.VersionTLS12 {
		t.Fatalf("tls version %x", v)
	}
	conn.Close()
	if _, err := tls.Dial("tcp", addrs.broker[1].String(), &tls.Config{RootCAs: pool}); err == nil {
		t.Fatal("handshake verified against the wrong CA")
	}
	resp, err := http.Get("http://" + addrs.observe[0].String() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(body), "flymq_tls_cert_expiry_seconds ") {
		t.Errorf("/metrics lacks the certificate expiry gauge")
	}

	sigs <- syscall.SIGTERM
	if err := <-done; err != nil {
		t.Fatalf("run: %v", err)
	}
	for _, dir := range []string{"audit", "auth"} {
		if st, err := os.Stat(filepath.Join(cfg.DataDir, dir)); err != nil || !st.IsDir() {
			t.Errorf("%s dir not created in the data dir: %v", dir, err)
		}
	}
}
