package storage

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"testing"

	"github.com/flymq/flymq/internal/crypto"
	"github.com/flymq/flymq/internal/storage/record"
)

const (
	keyA = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"
	keyB = "ffeeddccbbaa99887766554433221100ffeeddccbbaa99887766554433221100"
)

func ring(t testing.TB, hexes ...string) *crypto.Keyring {
	t.Helper()
	var ks []*crypto.Key
	for _, h := range hexes {
		k, err := crypto.ParseKey(h)
		if err != nil {
			t.Fatal(err)
		}
		ks = append(ks, k)
	}
	return crypto.NewKeyring(ks[0], ks[1:]...)
}

// modes runs f with encryption on and off, as every storage test must.
func modes(t *testing.T, f func(t *testing.T, r *crypto.Keyring)) {
	t.Run("encrypted", func(t *testing.T) { f(t, ring(t, keyA)) })
	t.Run("plain", func(t *testing.T) { f(t, nil) })
}

func opts(dir string, r *crypto.Keyring) Options {
	return Options{Dir: dir, Topic: "orders/eu", Partition: 2, Keyring: r,
		SegmentBytes: 4096, Acks: AcksAll}
}

func mustOpen(t testing.TB, o Options) *Partition {
	t.Helper()
	p, err := Open(o)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func rec(i int) Record {
	return Record{Key: []byte(fmt.Sprintf("k%d", i)),
		Value: bytes.Repeat([]byte{byte('a' + i%26)}, 10+i%97), Timestamp: 1_000_000 + int64(i)}
}

func appendN(t testing.TB, p *Partition, from, n int) {
	t.Helper()
	for i := from; i < from+n; i++ {
		off, err := p.Append([]Record{rec(i)})
		if err != nil {
			t.Fatalf("append %d: %v", i, err)
		}
		if off != uint64(i) {
			t.Fatalf("append %d got offset %d", i, off)
		}
	}
}

// readAll reads [from, NextOffset) and checks every record against rec.
func checkAll(t testing.TB, p *Partition, from, to int) {
	t.Helper()
	off := uint64(from)
	for off < uint64(to) {
		msgs, err := p.Read(off, 0, 1000)
		if err != nil {
			t.Fatalf("read %d: %v", off, err)
		}
		if len(msgs) == 0 {
			t.Fatalf("read %d: no messages, next %d", off, p.NextOffset())
		}
		for _, m := range msgs {
			want := rec(int(m.Offset))
			if m.Offset != off || !bytes.Equal(m.Key, want.Key) || !bytes.Equal(m.Value, want.Value) ||
				m.Timestamp != want.Timestamp {
				t.Fatalf("offset %d: got %d %q ts %d", off, m.Offset, m.Key, m.Timestamp)
			}
			off++
		}
	}
}

func logFiles(t testing.TB, dir string) []string {
	t.Helper()
	m, _ := filepath.Glob(filepath.Join(dir, "*.log"))
	sort.Strings(m)
	return m
}

// framePositions returns the position of every frame of a segment file.
func framePositions(t testing.TB, path string) []int64 {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []int64
	for pos := record.SegmentHeaderSize; pos < len(b); {
		_, n, err := record.DecodeFrame(b[pos:])
		if err != nil {
			t.Fatalf("frame at %d: %v", pos, err)
		}
		out = append(out, int64(pos))
		pos += n
	}
	return out
}

func hashDir(t testing.TB, dir string) map[string][32]byte {
	t.Helper()
	out := map[string][32]byte{}
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		out[e.Name()] = sha256.Sum256(b)
	}
	return out
}

func copyDir(t testing.TB, src string) string {
	t.Helper()
	dst := t.TempDir()
	ents, _ := os.ReadDir(src)
	for _, e := range ents {
		b, _ := os.ReadFile(filepath.Join(src, e.Name()))
		if err := os.WriteFile(filepath.Join(dst, e.Name()), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return dst
}

func asCorruption(t testing.TB, err error) *CorruptionError {
	t.Helper()
	var ce *CorruptionError
	if !errors.As(err, &ce) || !errors.Is(err, ErrCorrupt) {
		t.Fatalf("want *CorruptionError, got %v", err)
	}
	return ce
}

func readFile(path string) ([]byte, error) { return os.ReadFile(path) }

func errorsIs(err, target error) bool { return errors.Is(err, target) }
