package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func natsRun(t *testing.T) RunOptions {
	return RunOptions{
		Target: "nats", Spawn: true, Encryption: true, Acks: "leader", Verify: true,
		Workload: Workload{Conns: 2, Inflight: 16, Size: 128, Count: 2000, Partitions: 2},
		TmpDir:   t.TempDir(), Timeout: time.Minute,
	}
}

// TestNATSJetStreamEncrypted runs a tiny workload against the embedded
// nats-server with JetStream file storage and cipher aes, and checks that
// every message came back and that nothing readable is left on disk.
func TestNATSJetStreamEncrypted(t *testing.T) {
	res, err := Run(context.Background(), natsRun(t))
	if err != nil {
		t.Fatal(err)
	}
	if !res.Verified || res.Msgs != 2000 || res.FetchMsgs != 2000 {
		t.Fatalf("verified %v msgs %d fetched %d, want true 2000 2000", res.Verified, res.Msgs, res.FetchMsgs)
	}
	if res.Server["spawned"] != true || res.P50us <= 0 {
		t.Fatalf("unexpected result %+v", res)
	}
}

func TestNATSSyncAlwaysWithTLSAndAuth(t *testing.T) {
	o := natsRun(t)
	o.Acks, o.TLS, o.Auth = "all", true, true
	o.Workload = Workload{Conns: 1, Inflight: 8, Size: 64, Count: 200, Partitions: 1}
	res, err := Run(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	if !res.Verified || res.FetchMsgs != 200 {
		t.Fatalf("verified %v fetched %d, want true 200", res.Verified, res.FetchMsgs)
	}
}

// TestNATSStoreIsEncrypted looks at the raw JetStream files: with cipher
// aes a message must not appear in them, and without it it must (which
// proves the probe can see it).
func TestNATSStoreIsEncrypted(t *testing.T) {
	for _, enc := range []bool{true, false} {
		if got := markerOnDisk(t, enc); got == enc {
			t.Errorf("encryption %v: plaintext on disk = %v", enc, got)
		}
	}
}

func markerOnDisk(t *testing.T, encryption bool) bool {
	dir := t.TempDir()
	s, err := startNATS(natsOptions{Dir: dir, Encryption: encryption})
	if err != nil {
		t.Fatal(err)
	}
	c := &natsClient{url: s.ClientURL(), stream: natsStreamName(), subject: "plain"}
	if err := c.createStream(context.Background()); err != nil {
		t.Fatal(err)
	}
	p, err := c.newPipe(4, 1)
	if err != nil {
		t.Fatal(err)
	}
	marker := []byte("FLYMQ-BENCH-PLAINTEXT-MARKER-0123456789")
	if err := p.send([][]byte{marker}, []int32{0}); err != nil {
		t.Fatal(err)
	}
	if _, err := p.recv(); err != nil {
		t.Fatal(err)
	}
	p.close()
	s.Shutdown()
	s.WaitForShutdown()
	found := false
	err = filepath.Walk(dir, func(path string, info os.FileInfo, err error) error {
		if err != nil || info.IsDir() {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		found = found || bytes.Contains(b, marker)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return found
}
