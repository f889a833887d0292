package storage

// Index files are a CRC-checked cache, not sealed: a forged or colliding
// one must be rebuilt, never steer a read (issue 6).

import (
	"bytes"
	"encoding/binary"
	"os"
	"path/filepath"
	"testing"

	"github.com/flymq/flymq/internal/storage/record"
)

// indexFiles returns the index files of a small real partition, the seed
// of the fuzz target and the victim of the forgery test.
func indexFiles(t testing.TB, dir string) (idxPath string, idx, tidx []byte, size int64) {
	t.Helper()
	p := mustOpen(t, idxOpts(dir))
	appendN(t, p, 0, 200) // about two segments: the first rolled, its indexes written
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	paths, err := filepath.Glob(filepath.Join(dir, "*.index"))
	if err != nil || len(paths) == 0 {
		t.Fatalf("no index files: %v", err)
	}
	idxPath = paths[0]
	if idx, err = os.ReadFile(idxPath); err != nil {
		t.Fatal(err)
	}
	if tidx, err = os.ReadFile(idxPath[:len(idxPath)-len(".index")] + ".timeindex"); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(idxPath[:len(idxPath)-len(".index")] + ".log")
	if err != nil {
		t.Fatal(err)
	}
	return idxPath, idx, tidx, st.Size()
}

// idxOpts gives segments of several index intervals (4 KiB each).
func idxOpts(dir string) Options {
	o := opts(dir, nil)
	o.SegmentBytes = 12 << 10
	return o
}

// reCRC fixes the trailing CRC-32C after a forgery.
func reCRC(b []byte) {
	binary.BigEndian.PutUint32(b[len(b)-4:], record.Checksum(b[:len(b)-4]))
}

// TestForgedIndexIsRebuilt: index files with a valid CRC but entries a
// writer could never produce (a position past the log, positions out of
// order, an offset past the segment) are rebuilt at open; every read then
// returns the right records. Before the consistency check the first
// forgery panicked in Read (makeslice: len out of range).
func TestForgedIndexIsRebuilt(t *testing.T) {
	forgeries := map[string]func(idx []byte){
		"position past the log": func(idx []byte) { binary.BigEndian.PutUint32(idx[20+4:], 999999) },
		"positions out of order": func(idx []byte) {
			binary.BigEndian.PutUint32(idx[20+8+4:], record.SegmentHeaderSize)
		},
		"offset past the segment": func(idx []byte) {
			n := binary.BigEndian.Uint32(idx[16:])
			binary.BigEndian.PutUint32(idx[20+8*(int(n)-1):], 1<<30)
		},
	}
	for name, forge := range forgeries {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			idxPath, idx, _, _ := indexFiles(t, dir)
			if binary.BigEndian.Uint32(idx[16:]) < 2 {
				t.Fatal("need at least two index entries")
			}
			forge(idx)
			reCRC(idx)
			if err := os.WriteFile(idxPath, idx, 0o600); err != nil {
				t.Fatal(err)
			}
			p := mustOpen(t, idxOpts(dir))
			defer p.Close()
			for off := uint64(0); off < 200; off++ {
				msgs, err := p.Read(off, 3, 0)
				if err != nil || len(msgs) == 0 {
					t.Fatalf("read %d: %d msgs, %v", off, len(msgs), err)
				}
				want := rec(int(off))
				if msgs[0].Offset != off || !bytes.Equal(msgs[0].Value, want.Value) {
					t.Fatalf("read %d returned offset %d %q", off, msgs[0].Offset, msgs[0].Value)
				}
			}
			rebuilt, err := os.ReadFile(idxPath)
			if err != nil || bytes.Equal(rebuilt, idx) {
				t.Fatalf("forged index left in place (%v)", err)
			}
		})
	}
}

// FuzzDecodeIndexes: whatever the bytes, decoding never panics, and
// accepted indexes round-trip byte for byte and give Read ranges that
// never run backwards or past the log.
func FuzzDecodeIndexes(f *testing.F) {
	_, idx, tidx, size := indexFiles(f, f.TempDir())
	f.Add(idx, tidx, size)
	f.Add(idx[:len(idx)-1], tidx, size)
	f.Add(idx, tidx, size+1)
	empty := &segment{size: record.SegmentHeaderSize}
	ei, et := empty.encodeIndexes()
	f.Add(ei, et, int64(record.SegmentHeaderSize))
	f.Add([]byte{}, []byte{}, int64(0))
	f.Fuzz(func(t *testing.T, idx, tidx []byte, size int64) {
		checkIndexes(t, idx, tidx, size)
		// Again with the CRCs made right, so the fuzzer reaches the
		// entries instead of stopping at the checksum.
		if len(idx) >= 4 && len(tidx) >= 4 {
			idx, tidx = bytes.Clone(idx), bytes.Clone(tidx)
			reCRC(idx)
			reCRC(tidx)
			checkIndexes(t, idx, tidx, size)
		}
	})
}

// checkIndexes is the fuzz property for one pair of index files.
func checkIndexes(t *testing.T, idx, tidx []byte, size int64) {
	ix, tx, maxTS, err := decodeIndexes(idx, tidx, size)
	if err != nil {
		return
	}
	s := &segment{size: size, maxTS: maxTS, index: ix, tindex: tx}
	gi, gt := s.encodeIndexes()
	if !bytes.Equal(gi, idx) || !bytes.Equal(gt, tidx) {
		t.Fatalf("accepted indexes do not round-trip")
	}
	if len(ix) == 0 {
		return
	}
	s.next = s.base + uint64(ix[len(ix)-1].rel) + 1
	for rel := uint64(0); rel < s.next && rel < 64; rel++ {
		start, from := s.lookup(rel)
		stop := s.endBefore(rel + 1)
		if from > rel || start < record.SegmentHeaderSize || stop < start || stop > size {
			t.Fatalf("offset %d: read [%d, %d) from offset %d in a %d-byte log", rel, start, stop, from, size)
		}
	}
}
