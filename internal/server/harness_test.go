package server

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/flymq/flymq/internal/broker"
	"github.com/flymq/flymq/internal/crypto"
	"github.com/flymq/flymq/internal/storage"
)

type harnessOptions struct {
	encrypted bool
	// tweak adjusts the server options before New.
	tweak func(*Options)
}

type harness struct {
	srv    *Server
	broker *broker.Broker
	reg    *prometheus.Registry
	dir    string
	addr   string
}

func testKeyring(t testing.TB) *crypto.Keyring {
	t.Helper()
	hexKey, err := crypto.GenerateKeyHex()
	if err != nil {
		t.Fatal(err)
	}
	k, err := crypto.ParseKey(hexKey)
	if err != nil {
		t.Fatal(err)
	}
	return crypto.NewKeyring(k)
}

// startServer runs a broker on a fresh data dir and a server on a free
// loopback port; both stop when the test ends.
func startServer(t testing.TB, ho harnessOptions) *harness {
	t.Helper()
	dir := t.TempDir()
	var ring *crypto.Keyring
	if ho.encrypted {
		ring = testKeyring(t)
	}
	reg := prometheus.NewRegistry()
	b, err := broker.Open(broker.Options{
		DataDir:              dir,
		Keyring:              ring,
		SegmentBytes:         1 << 20,
		Acks:                 storage.AcksLeader,
		SyncInterval:         10 * time.Millisecond,
		AutoCreatePartitions: 1,
		MaxPartitions:        1024,
		Registerer:           reg,
	})
	if err != nil {
		t.Fatal(err)
	}
	opts := Options{
		Addr:           "127.0.0.1:0",
		Broker:         b,
		NodeID:         "node-1",
		AdvertisedAddr: "127.0.0.1:39092",
		Registerer:     reg,
	}
	if ho.tweak != nil {
		ho.tweak(&opts)
	}
	s, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	h := &harness{srv: s, broker: b, reg: reg, dir: dir, addr: s.Addrs()[0].String()}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := s.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
		if err := b.Close(); err != nil {
			t.Errorf("broker close: %v", err)
		}
	})
	return h
}

func (h *harness) dial(t testing.TB) net.Conn {
	t.Helper()
	c, err := net.DialTimeout("tcp", h.addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	return c
}
