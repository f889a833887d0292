package observe

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("read %s: %v", url, err)
	}
	return resp.StatusCode, string(body)
}

func registry(t *testing.T) *prometheus.Registry {
	t.Helper()
	reg := prometheus.NewRegistry()
	c := prometheus.NewCounter(prometheus.CounterOpts{Name: "flymq_test_total", Help: "test"})
	c.Add(3)
	reg.MustRegister(c, NewDiskCollector(t.TempDir()))
	return reg
}

func TestSeparateAddrs(t *testing.T) {
	var ready atomic.Bool
	s, err := Start(Options{
		MetricsAddr: "127.0.0.1:0", HealthAddr: "127.0.0.1:0",
		Gatherer: registry(t), Ready: ready.Load,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close(context.Background())
	if len(s.Addrs()) != 2 {
		t.Fatalf("Addrs() = %v, want two listeners", s.Addrs())
	}
	m := "http://" + s.MetricsAddr().String()
	h := "http://" + s.HealthAddr().String()

	code, body := get(t, m+"/metrics")
	if code != 200 || !strings.Contains(body, "flymq_test_total 3\n") {
		t.Fatalf("/metrics = %d %q", code, body)
	}
	if !strings.Contains(body, "flymq_data_dir_available_bytes ") ||
		!strings.Contains(body, "flymq_data_dir_size_bytes ") {
		t.Fatalf("/metrics lacks the data dir disk gauges:\n%s", body)
	}
	if code, _ := get(t, m+"/healthz"); code != http.StatusNotFound {
		t.Fatalf("/healthz on the metrics listener = %d, want 404", code)
	}
	if code, body := get(t, h+"/healthz"); code != 200 || body != "ok\n" {
		t.Fatalf("/healthz = %d %q", code, body)
	}
	if code, body := get(t, h+"/readyz"); code != 503 || body != "not ready\n" {
		t.Fatalf("/readyz before ready = %d %q", code, body)
	}
	ready.Store(true)
	if code, body := get(t, h+"/readyz"); code != 200 || body != "ready\n" {
		t.Fatalf("/readyz when ready = %d %q", code, body)
	}
	ready.Store(false)
	if code, _ := get(t, h+"/readyz"); code != 503 {
		t.Fatalf("/readyz during shutdown = %d, want 503", code)
	}
}

func TestSharedAddr(t *testing.T) {
	// Reserve a port, then hand the same address to both endpoints.
	probe, err := Start(Options{HealthAddr: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	addr := probe.HealthAddr().String()
	if err := probe.Close(context.Background()); err != nil {
		t.Fatal(err)
	}

	s, err := Start(Options{MetricsAddr: addr, HealthAddr: addr, Gatherer: registry(t)})
	if err != nil {
		t.Fatal(err)
	}
	if got := s.Addrs(); len(got) != 1 || got[0].String() != addr {
		t.Fatalf("Addrs() = %v, want [%s]", got, addr)
	}
	for path, want := range map[string]int{"/metrics": 200, "/healthz": 200, "/readyz": 200, "/other": 404} {
		if code, _ := get(t, "http://"+addr+path); code != want {
			t.Errorf("%s = %d, want %d", path, code, want)
		}
	}
	if err := s.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, err := http.Get("http://" + addr + "/healthz"); err == nil {
		t.Fatal("listener still answering after Close")
	}
}

func TestStartErrors(t *testing.T) {
	if _, err := Start(Options{MetricsAddr: "127.0.0.1:0"}); !errors.Is(err, ErrNoGatherer) {
		t.Fatalf("no gatherer: %v", err)
	}
	busy, err := Start(Options{HealthAddr: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close(context.Background())
	_, err = Start(Options{MetricsAddr: "127.0.0.1:0", Gatherer: registry(t),
		HealthAddr: busy.HealthAddr().String()})
	if err == nil || !strings.Contains(err.Error(), "observe: listen "+busy.HealthAddr().String()) {
		t.Fatalf("busy port: %v", err)
	}

	none, err := Start(Options{})
	if err != nil || len(none.Addrs()) != 0 {
		t.Fatalf("all disabled: %v %v", none, err)
	}
	if err := none.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
}

func TestDiskCollectorMissingPath(t *testing.T) {
	reg := prometheus.NewRegistry()
	reg.MustRegister(NewDiskCollector("/nonexistent/flymq/data"))
	if _, err := reg.Gather(); err == nil || !strings.Contains(err.Error(), "statfs /nonexistent/flymq/data") {
		t.Fatalf("Gather() = %v, want a statfs error", err)
	}
}
