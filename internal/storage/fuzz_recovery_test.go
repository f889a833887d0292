package storage

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/flymq/flymq/internal/storage/record"
	"github.com/flymq/flymq/internal/storage/vfs"
)

// FuzzRecoverTail: a segment holding a prefix of the golden fixture and
// then arbitrary bytes (a torn write, garbage, a forged frame) either
// opens — with the whole frames of the prefix intact and every offset up
// to NextOffset readable in order — or fails with a *CorruptionError.
// Recovery never panics and never invents a gap.
func FuzzRecoverTail(f *testing.F) {
	golden, err := os.ReadFile(filepath.Join("testdata", "golden-v1-plain.log"))
	if err != nil {
		f.Fatal(err)
	}
	body := golden[record.SegmentHeaderSize:]
	f.Add(uint16(len(body)), []byte{})
	f.Add(uint16(len(body)), []byte{0, 0, 0, 0})
	f.Add(uint16(len(body)-5), []byte{})
	f.Add(uint16(0), body)
	f.Add(uint16(len(body)), body[:len(body)/3]) // frames repeated: wrong offsets
	f.Fuzz(func(t *testing.T, cut uint16, tail []byte) {
		keep := body[:int(cut)%(len(body)+1)]
		whole := 0 // complete golden frames in keep
		for rest := keep; ; whole++ {
			n := record.PeekSize(rest)
			if n == 0 || n > len(rest) {
				break
			}
			rest = rest[n:]
		}
		seg := append(append(append([]byte(nil), golden[:record.SegmentHeaderSize]...), keep...), tail...)

		cfs := vfs.NewCrashFS()
		dir := "/p"
		if err := cfs.MkdirAll(dir, 0o700); err != nil {
			t.Fatal(err)
		}
		fh, err := cfs.OpenFile(filepath.Join(dir, segmentName(0)+".log"), os.O_RDWR|os.O_CREATE, 0o600)
		if err != nil {
			t.Fatal(err)
		}
		fh.WriteAt(seg, 0)
		fh.Close()
		o := opts(dir, nil)
		o.FS = cfs
		p, err := Open(o)
		if err != nil {
			var ce *CorruptionError
			if !errors.As(err, &ce) || !errors.Is(err, ErrCorrupt) {
				t.Fatalf("open failed with %v, want a *CorruptionError", err)
			}
			return
		}
		defer p.Close()
		next := p.NextOffset()
		if next < uint64(whole) {
			t.Fatalf("recovery kept %d records of %d whole ones", next, whole)
		}
		for off := uint64(0); off < next; {
			msgs, err := p.Read(off, 100, 0)
			if err != nil || len(msgs) == 0 {
				t.Fatalf("read %d of %d: %d msgs, %v", off, next, len(msgs), err)
			}
			for _, m := range msgs {
				if m.Offset != off {
					t.Fatalf("read returned offset %d at %d", m.Offset, off)
				}
				if off < uint64(whole) {
					w := rec(int(off))
					if !bytes.Equal(m.Key, w.Key) || !bytes.Equal(m.Value, w.Value) {
						t.Fatalf("golden record %d changed: %q", off, m.Value)
					}
				}
				off++
			}
		}
	})
}
