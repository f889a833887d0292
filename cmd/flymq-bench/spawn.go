package main

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// flymqSpawnOptions configures a broker process started by the bench.
type flymqSpawnOptions struct {
	Bin          string
	Dir          string // temp dir: data/, config, certs, log
	Encryption   bool
	Acks         string
	SegmentBytes int64
	TLS          bool
	Auth         bool
	Password     string // admin password when Auth
	MaxConnsIP   int    // limits.max_connections_per_ip; 0 = unlimited
}

// spawnedFlymq is a running broker process.
type spawnedFlymq struct {
	cmd       *exec.Cmd
	addr      string
	logPath   string
	clientTLS *tls.Config // trusts the generated CA; nil without TLS
	exited    chan error
}

// spawnFlymq writes a JSON config and starts the broker binary with a fresh
// random encryption key in its environment, then waits until its listener
// accepts connections.
func spawnFlymq(ctx context.Context, o flymqSpawnOptions) (*spawnedFlymq, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	cfg := map[string]any{
		"bind_addr":     addr,
		"data_dir":      filepath.Join(o.Dir, "data"),
		"segment_bytes": o.SegmentBytes,
		"log_level":     "warn",
		"performance":   map[string]any{"acks": o.Acks},
		"limits":        map[string]any{"max_connections": 0, "max_connections_per_ip": o.MaxConnsIP},
		// No HTTP listeners: they would fight over fixed ports between
		// runs and measure nothing here.
		"observability": map[string]any{
			"metrics": map[string]any{"enabled": false},
			"health":  map[string]any{"enabled": false},
		},
	}
	security := map[string]any{"encryption_enabled": o.Encryption}
	sp := &spawnedFlymq{addr: addr, logPath: filepath.Join(o.Dir, "flymq.log"), exited: make(chan error, 1)}
	if o.TLS {
		certFile, keyFile, clientTLS, err := writeTestCerts(o.Dir)
		if err != nil {
			return nil, err
		}
		security["tls_enabled"] = true
		security["tls_cert_file"] = certFile
		security["tls_key_file"] = keyFile
		sp.clientTLS = clientTLS
	}
	cfg["security"] = security
	if o.Auth {
		cfg["auth"] = map[string]any{"enabled": true, "admin_username": "admin"}
	}
	cfgPath := filepath.Join(o.Dir, "flymq.json")
	data, err := json.MarshalIndent(cfg, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	if err := os.WriteFile(cfgPath, data, 0o600); err != nil {
		return nil, fmt.Errorf("write config: %w", err)
	}

	env := os.Environ()
	if o.Encryption {
		key := make([]byte, 32)
		if _, err := rand.Read(key); err != nil {
			return nil, fmt.Errorf("encryption key: %w", err)
		}
		env = append(env, "FLYMQ_ENCRYPTION_KEY="+hex.EncodeToString(key))
	}
	if o.Auth {
		env = append(env, "FLYMQ_AUTH_ADMIN_PASSWORD="+o.Password)
	}
	logf, err := os.Create(sp.logPath)
	if err != nil {
		return nil, fmt.Errorf("broker log: %w", err)
	}
	cmd := exec.Command(o.Bin, "--config", cfgPath)
	cmd.Env = env
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("start %s: %w", o.Bin, err)
	}
	sp.cmd = cmd
	go func() {
		sp.exited <- cmd.Wait()
		logf.Close()
	}()
	if err := waitListening(ctx, addr, sp.exited, 30*time.Second); err != nil {
		sp.stop()
		return nil, fmt.Errorf("broker %s: %w%s", o.Bin, err, sp.logTail())
	}
	return sp, nil
}

// waitListening dials addr until it accepts, the process exits, or the
// timeout passes.
func waitListening(ctx context.Context, addr string, exited chan error, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return nil
		}
		select {
		case werr := <-exited:
			exited <- werr // keep it for stop
			return fmt.Errorf("exited before listening: %v", werr)
		case <-ctx.Done():
			return context.Cause(ctx)
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not listening on %s after %s", addr, timeout)
		}
	}
}

// pid is the broker's process id.
func (s *spawnedFlymq) pid() int { return s.cmd.Process.Pid }

// stop terminates the broker (SIGTERM, then SIGKILL after 10s).
func (s *spawnedFlymq) stop() {
	if s.cmd == nil || s.cmd.Process == nil {
		return
	}
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-s.exited:
		s.exited <- err
	case <-time.After(10 * time.Second):
		_ = s.cmd.Process.Kill()
		s.exited <- <-s.exited
	}
}

// logTail returns the end of the broker's output for error messages.
func (s *spawnedFlymq) logTail() string {
	b, err := os.ReadFile(s.logPath)
	if err != nil || len(b) == 0 {
		return ""
	}
	if len(b) > 2000 {
		b = b[len(b)-2000:]
	}
	return "\nbroker output (tail):\n" + strings.TrimRight(string(b), "\n")
}

// freePort asks the kernel for a free loopback port.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// ErrNoRSS is returned when a process's resident size cannot be read.
var ErrNoRSS = errors.New("VmRSS not found")

// readRSS returns VmRSS of a process in bytes, from /proc/<pid>/status.
func readRSS(pid int) (int64, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, fmt.Errorf("rss: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			fields := strings.Fields(rest)
			if len(fields) == 0 {
				break
			}
			kb, err := strconv.ParseInt(fields[0], 10, 64)
			if err != nil {
				return 0, fmt.Errorf("rss: %w", err)
			}
			return kb << 10, nil
		}
	}
	return 0, ErrNoRSS
}

// writeTestCerts generates a throw-away CA and a server certificate for
// 127.0.0.1/localhost in dir, and returns the server's cert and key files
// and a client config that trusts the CA.
func writeTestCerts(dir string) (certFile, keyFile string, client *tls.Config, err error) {
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return "", "", nil, fmt.Errorf("ca key: %w", err)
	}
	now := time.Now()
	caTmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "flymq-bench CA"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(24 * time.Hour),
		IsCA:                  true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return "", "", nil, fmt.Errorf("ca cert: %w", err)
	}
	caCert, err := x509.ParseCertificate(caDER)
	if err != nil {
		return "", "", nil, fmt.Errorf("ca cert: %w", err)
	}
	srvKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return "", "", nil, fmt.Errorf("server key: %w", err)
	}
	srvTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2),
		Subject:      pkix.Name{CommonName: "127.0.0.1"},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		DNSNames:     []string{"localhost"},
	}
	srvDER, err := x509.CreateCertificate(rand.Reader, srvTmpl, caCert, &srvKey.PublicKey, caKey)
	if err != nil {
		return "", "", nil, fmt.Errorf("server cert: %w", err)
	}
	keyDER, err := x509.MarshalECPrivateKey(srvKey)
	if err != nil {
		return "", "", nil, fmt.Errorf("server key: %w", err)
	}
	certFile = filepath.Join(dir, "server.pem")
	keyFile = filepath.Join(dir, "server-key.pem")
	caFile := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}), 0o644); err != nil {
		return "", "", nil, fmt.Errorf("write ca: %w", err)
	}
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srvDER}), 0o644); err != nil {
		return "", "", nil, fmt.Errorf("write cert: %w", err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		return "", "", nil, fmt.Errorf("write key: %w", err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(caCert)
	return certFile, keyFile, &tls.Config{RootCAs: pool, ServerName: "127.0.0.1", MinVersion: tls.VersionTLS12}, nil
}

// serverTLSConfig loads the generated server certificate (for the
// embedded NATS server).
func serverTLSConfig(certFile, keyFile string) (*tls.Config, error) {
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("load server cert: %w", err)
	}
	return &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}, nil
}

// randomPassword returns a fresh password for the spawned broker's admin.
func randomPassword() (string, error) {
	b := make([]byte, 18)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("password: %w", err)
	}
	return hex.EncodeToString(b), nil
}
