package broker

import (
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/flymq/flymq/internal/crypto"
	"github.com/flymq/flymq/internal/storage"
)

// encModes runs a test with encryption off and on (STYLE.md: every storage
// test runs both ways).
var encModes = []struct {
	name string
	enc  bool
}{{"plain", false}, {"sealed", true}}

func testKeyring(t testing.TB) *crypto.Keyring {
	t.Helper()
	hex, err := crypto.GenerateKeyHex()
	if err != nil {
		t.Fatal(err)
	}
	k, err := crypto.ParseKey(hex)
	if err != nil {
		t.Fatal(err)
	}
	return crypto.NewKeyring(k)
}

func testOptions(t testing.TB, enc bool) Options {
	t.Helper()
	o := Options{DataDir: t.TempDir(), Acks: storage.AcksAll}
	if enc {
		o.Keyring = testKeyring(t)
	}
	return o
}

func openBroker(t testing.TB, o Options) *Broker {
	t.Helper()
	b, err := Open(o)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

func forEachMode(t *testing.T, f func(t *testing.T, o Options)) {
	for _, m := range encModes {
		t.Run(m.name, func(t *testing.T) { f(t, testOptions(t, m.enc)) })
	}
}

// copyDir copies a live data dir: what a crash at this instant would leave
// for everything already written (nothing buffered in user space).
func copyDir(t testing.TB, src, dst string) {
	t.Helper()
	err := filepath.Walk(src, func(p string, info os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		target := filepath.Join(dst, rel)
		if info.IsDir() {
			return os.MkdirAll(target, 0o700)
		}
		if !info.Mode().IsRegular() {
			return nil
		}
		in, err := os.Open(p)
		if err != nil {
			return err
		}
		defer in.Close()
		out, err := os.OpenFile(target, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, info.Mode())
		if err != nil {
			return err
		}
		if _, err := io.Copy(out, in); err != nil {
			out.Close()
			return err
		}
		return out.Close()
	})
	if err != nil {
		t.Fatal(err)
	}
}

func mustProduce(t testing.TB, b *Broker, topic string, part int32, key, value string) ProduceResult {
	t.Helper()
	var k []byte
	if key != "" {
		k = []byte(key)
	}
	r, err := b.Produce(topic, part, k, []byte(value))
	if err != nil {
		t.Fatalf("Produce(%q, %d): %v", topic, part, err)
	}
	return r
}
