package storage

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"testing"

	"github.com/flymq/flymq/internal/crypto"
	"github.com/flymq/flymq/internal/storage/record"
)

var update = flag.Bool("update", false, "rewrite testdata golden segments")

// goldenSegment builds a segment byte for byte with a fixed salt and
// nonces, so any change to the frame, AAD, plaintext or header layout, or
// to key derivation, changes these bytes and fails the test.
func goldenSegment(t *testing.T, r *crypto.Keyring) []byte {
	hdr := record.SegmentHeader{Version: record.SegmentVersion, KeyID: uint64(r.ActiveID())}
	for i := range hdr.Salt {
		hdr.Salt[i] = byte(i)
	}
	c, err := crypto.NewSegmentCipher(r, crypto.KeyID(hdr.KeyID), hdr.Salt[:])
	if err != nil {
		t.Fatal(err)
	}
	b := record.AppendSegmentHeader(nil, &hdr)
	aad := record.NewAAD("orders/eu", 2)
	for i := 0; i < 3; i++ {
		h := record.Header{Flags: uint8(i), Offset: uint64(i), Timestamp: 1700000000000 + int64(i),
			Expiry: int64(i) * 1000}
		if c.Enabled() {
			h.Nonce = [12]byte{byte(i), 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11}
		}
		rc := rec(i)
		b = record.AppendFrame(b, c, aad, &h, rc.Key, rc.Value, nil)
	}
	return b
}

func TestGoldenSegment(t *testing.T) {
	modes(t, func(t *testing.T, r *crypto.Keyring) {
		name := "golden-v1-plain.log"
		if r != nil {
			name = "golden-v1-encrypted.log"
		}
		path := filepath.Join("testdata", name)
		got := goldenSegment(t, r)
		if *update {
			if err := os.WriteFile(path, got, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		want, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("segment format changed (run with -update only for a deliberate, versioned change)")
		}
		// Today's reader opens the fixture.
		dir := t.TempDir()
		os.WriteFile(filepath.Join(dir, segmentName(0)+".log"), want, 0o600)
		o := opts(dir, r)
		p := mustOpen(t, o)
		defer p.Close()
		msgs, err := p.Read(0, 10, 1<<20)
		if err != nil || len(msgs) != 3 {
			t.Fatalf("read fixture: %d msgs, %v", len(msgs), err)
		}
		for i, m := range msgs {
			w := rec(i)
			if m.Offset != uint64(i) || m.Flags != uint8(i) || m.Timestamp != 1700000000000+int64(i) ||
				m.Expiry != int64(i)*1000 || !bytes.Equal(m.Key, w.Key) || !bytes.Equal(m.Value, w.Value) {
				t.Fatalf("fixture message %d = %+v", i, m)
			}
		}
	})
}
