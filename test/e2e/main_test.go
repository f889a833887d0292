// Package e2e runs the real flymq binary and talks to it over real TCP
// with pkg/client.
package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/flymq/flymq/internal/crypto"
	"github.com/flymq/flymq/pkg/client"
)

var flymqBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "flymq-e2e-bin")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	flymqBin = filepath.Join(dir, "flymq")
	build := exec.Command("go", "build", "-o", flymqBin, "../../cmd/flymq")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building flymq:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// freeAddr returns a loopback address that was free a moment ago.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// broker is one flymq process on a data dir that outlives restarts.
type broker struct {
	t          *testing.T
	dir        string
	configPath string
	addr       string
	healthAddr string
	metrics    string
	env        []string
	cmd        *exec.Cmd
	logs       *syncBuffer
	exited     chan struct{}
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// newBroker writes a config (extra keys merged over the base) and returns
// a broker ready to start. The encryption key comes from the environment,
// never the file.
func newBroker(t *testing.T, extra map[string]any) *broker {
	t.Helper()
	dir := t.TempDir()
	b := &broker{
		t:          t,
		dir:        dir,
		addr:       freeAddr(t),
		healthAddr: freeAddr(t),
		metrics:    freeAddr(t),
		logs:       &syncBuffer{},
	}
	cfg := map[string]any{
		"bind_addr": b.addr,
		"data_dir":  filepath.Join(dir, "data"),
		"log_level": "debug",
		"observability": map[string]any{
			"metrics": map[string]any{"enabled": true, "addr": b.metrics},
			"health":  map[string]any{"enabled": true, "addr": b.healthAddr},
		},
	}
	for k, v := range extra {
		cfg[k] = v
	}
	raw, err := json.MarshalIndent(cfg, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	b.configPath = filepath.Join(dir, "flymq.json")
	if err := os.WriteFile(b.configPath, raw, 0o600); err != nil {
		t.Fatal(err)
	}
	key, err := crypto.GenerateKeyHex()
	if err != nil {
		t.Fatal(err)
	}
	b.env = append(os.Environ(), "FLYMQ_ENCRYPTION_KEY="+key)
	t.Cleanup(func() {
		b.kill()
		if t.Failed() {
			t.Logf("broker log:\n%s", b.logs.String())
		}
	})
	return b
}

func (b *broker) dataDir() string { return filepath.Join(b.dir, "data") }

// start runs the binary and waits until /readyz says ready.
func (b *broker) start() {
	b.t.Helper()
	b.cmd = exec.Command(flymqBin, "--config", b.configPath)
	b.cmd.Env = b.env
	b.cmd.Stdout, b.cmd.Stderr = b.logs, b.logs
	if err := b.cmd.Start(); err != nil {
		b.t.Fatal(err)
	}
	b.exited = make(chan struct{})
	go func(cmd *exec.Cmd, done chan struct{}) {
		cmd.Wait()
		close(done)
	}(b.cmd, b.exited)
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-b.exited:
			b.t.Fatalf("broker exited during start-up: %v\n%s", b.cmd.ProcessState, b.logs.String())
		default:
		}
		resp, err := http.Get("http://" + b.healthAddr + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	b.t.Fatalf("broker not ready after 30s\n%s", b.logs.String())
}

// kill ends the process with SIGKILL, as a crash would.
func (b *broker) kill() {
	if b.cmd == nil || b.cmd.Process == nil {
		return
	}
	b.cmd.Process.Signal(syscall.SIGKILL)
	<-b.exited
	b.cmd = nil
}

// stop sends SIGTERM and returns the exit code.
func (b *broker) stop() int {
	b.t.Helper()
	b.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-b.exited:
	case <-time.After(30 * time.Second):
		b.t.Fatal("broker did not stop within 30s of SIGTERM")
	}
	code := b.cmd.ProcessState.ExitCode()
	b.cmd = nil
	return code
}

func (b *broker) client(opts client.Options) *client.Client {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := client.Dial(ctx, b.addr, opts)
	if err != nil {
		b.t.Fatal(err)
	}
	b.t.Cleanup(func() { c.Close() })
	return c
}

// grepDir reports every file under dir whose bytes contain needle.
func grepDir(t *testing.T, dir string, needle []byte) []string {
	t.Helper()
	var hits []string
	err := filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if bytes.Contains(data, needle) {
			hits = append(hits, strings.TrimPrefix(path, dir))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return hits
}
