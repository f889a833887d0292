package storage

import (
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/flymq/flymq/internal/crypto"
	"github.com/flymq/flymq/internal/storage/record"
	"github.com/flymq/flymq/internal/storage/vfs"
)

// TestTornTailEveryByte cuts the last record at every byte and expects
// recovery to exactly the records before it.
func TestTornTailEveryByte(t *testing.T) {
	modes(t, func(t *testing.T, r *crypto.Keyring) {
		dir := t.TempDir()
		o := opts(dir, r)
		o.SegmentBytes = 1 << 20
		p := mustOpen(t, o)
		appendN(t, p, 0, 20)
		p.Close()
		seg := logFiles(t, dir)[0]
		full, _ := os.ReadFile(seg)
		last := framePositions(t, seg)[19]
		for cut := last; cut < int64(len(full)); cut++ {
			d := copyDir(t, dir)
			path := filepath.Join(d, filepath.Base(seg))
			os.WriteFile(path, full[:cut], 0o600)
			q, err := Open(opts(d, r))
			if err != nil {
				t.Fatalf("cut %d: %v", cut, err)
			}
			if q.NextOffset() != 19 {
				t.Fatalf("cut %d: next %d", cut, q.NextOffset())
			}
			checkAll(t, q, 0, 19)
			appendN(t, q, 19, 1)
			q.Close()
			if st, _ := os.Stat(path); st.Size() != int64(len(full)) {
				t.Fatalf("cut %d: size after re-append %d, want %d", cut, st.Size(), len(full))
			}
		}
		// A power loss can leave the tail zero-filled instead of short.
		d := copyDir(t, dir)
		path := filepath.Join(d, filepath.Base(seg))
		z := append([]byte(nil), full...)
		clear(z[last+3:])
		os.WriteFile(path, z, 0o600)
		q := mustOpen(t, opts(d, r))
		if q.NextOffset() != 19 {
			t.Fatalf("zero tail: next %d", q.NextOffset())
		}
		q.Close()
	})
}

func TestBitFlipMidSegment(t *testing.T) {
	modes(t, func(t *testing.T, r *crypto.Keyring) {
		dir := t.TempDir()
		p := mustOpen(t, opts(dir, r))
		appendN(t, p, 0, 120)
		p.Close()
		segs := logFiles(t, dir)
		if len(segs) < 2 {
			t.Fatal("want several segments")
		}
		for _, tc := range []struct {
			name   string
			seg    string
			noIdx  bool
			atOpen bool
		}{
			{"last segment", segs[len(segs)-1], false, true},
			{"older segment, index present", segs[0], false, false},
			{"older segment, index rebuilt", segs[0], true, true},
		} {
			t.Run(tc.name, func(t *testing.T) {
				d := copyDir(t, dir)
				path := filepath.Join(d, filepath.Base(tc.seg))
				pos := framePositions(t, path)
				if len(pos) < 3 {
					t.Fatalf("only %d frames", len(pos))
				}
				at := pos[1]
				b, _ := os.ReadFile(path)
				b[at+record.HeaderSize+2] ^= 0x04
				os.WriteFile(path, b, 0o600)
				if tc.noIdx {
					os.Remove(strings.TrimSuffix(path, ".log") + ".index")
				}
				q, err := Open(opts(d, r))
				if !tc.atOpen {
					if err != nil {
						t.Fatal(err)
					}
					defer q.Close()
					_, err = q.Read(0, 0, 1<<20)
				}
				ce := asCorruption(t, err)
				if ce.Segment != path || ce.Position != at {
					t.Fatalf("error names %s@%d, want %s@%d: %v", ce.Segment, ce.Position, path, at, err)
				}
				if !strings.Contains(err.Error(), filepath.Base(path)) {
					t.Fatalf("error text lacks segment: %v", err)
				}
			})
		}
	})
}

// TestRecordMoved copies a frame over another one: verbatim it holds the
// wrong offset; re-offset with a fixed CRC it fails authentication.
func TestRecordMoved(t *testing.T) {
	modes(t, func(t *testing.T, r *crypto.Keyring) {
		dir := t.TempDir()
		o := opts(dir, r)
		o.SegmentBytes = 1 << 20
		p := mustOpen(t, o)
		for i := 0; i < 4; i++ {
			if _, err := p.Append([]Record{{Key: []byte("k"), Value: []byte("same-size"), Timestamp: 7}}); err != nil {
				t.Fatal(err)
			}
		}
		p.Close()
		path := logFiles(t, dir)[0]
		pos := framePositions(t, path)
		b, _ := os.ReadFile(path)
		n := int(pos[1] - pos[0])

		d := copyDir(t, dir)
		c := append([]byte(nil), b...)
		copy(c[pos[2]:], b[pos[0]:pos[0]+int64(n)])
		os.WriteFile(filepath.Join(d, filepath.Base(path)), c, 0o600)
		_, err := Open(opts(d, r))
		if ce := asCorruption(t, err); ce.Position != pos[2] {
			t.Fatalf("verbatim copy: %v", err)
		}

		if r == nil {
			return // without a key nothing authenticates a rewritten frame
		}
		d = copyDir(t, dir)
		c = append([]byte(nil), b...)
		copy(c[pos[2]:], b[pos[0]:pos[0]+int64(n)])
		binary.BigEndian.PutUint64(c[pos[2]+record.FrameHeaderSize+2:], 2)
		body := c[pos[2]+record.FrameHeaderSize : pos[2]+int64(n)]
		binary.BigEndian.PutUint32(c[pos[2]+4:], record.Checksum(body))
		os.WriteFile(filepath.Join(d, filepath.Base(path)), c, 0o600)
		_, err = Open(opts(d, r))
		ce := asCorruption(t, err)
		if !errors.Is(err, crypto.ErrOpen) || ce.Position != pos[2] ||
			!strings.Contains(err.Error(), r.ActiveID().String()) {
			t.Fatalf("re-offset copy: %v", err)
		}
		if st, _ := os.Stat(filepath.Join(d, filepath.Base(path))); st.Size() != int64(len(b)) {
			t.Fatal("an unauthentic record was truncated")
		}
	})
}

// TestRecordToOtherSegment moves a frame into another segment, offset and
// CRC fixed: the other segment's data key refuses it.
func TestRecordToOtherSegment(t *testing.T) {
	r := ring(t, keyA)
	dir := t.TempDir()
	p := mustOpen(t, opts(dir, r))
	for i := 0; i < 200; i++ {
		p.Append([]Record{{Value: []byte("fixed-size-value"), Timestamp: 7}})
	}
	p.Close()
	segs := logFiles(t, dir)
	a, b := segs[0], segs[len(segs)-1]
	ab, _ := os.ReadFile(a)
	bb, _ := os.ReadFile(b)
	pa, pb := framePositions(t, a), framePositions(t, b)
	n := pa[1] - pa[0]
	copy(bb[pb[0]:], ab[pa[0]:pa[0]+n])
	base := binary.BigEndian.Uint64(bb[20:])
	binary.BigEndian.PutUint64(bb[pb[0]+record.FrameHeaderSize+2:], base)
	binary.BigEndian.PutUint32(bb[pb[0]+4:], record.Checksum(bb[pb[0]+record.FrameHeaderSize:pb[0]+n]))
	os.WriteFile(b, bb, 0o600)
	_, err := Open(opts(dir, r))
	if !errors.Is(err, crypto.ErrOpen) || asCorruption(t, err).Segment != b {
		t.Fatalf("frame from another segment: %v", err)
	}
}

func TestWrongKeyChangesNothing(t *testing.T) {
	dir := t.TempDir()
	ra := ring(t, keyA)
	p := mustOpen(t, opts(dir, ra))
	appendN(t, p, 0, 50)
	p.Close()
	// Leave a torn tail, which a successful open would truncate.
	segs := logFiles(t, dir)
	f, _ := os.OpenFile(segs[len(segs)-1], os.O_WRONLY|os.O_APPEND, 0)
	f.Write([]byte{0, 0, 1})
	f.Close()
	before := hashDir(t, dir)

	_, err := Open(opts(dir, ring(t, keyB)))
	var ke *crypto.KeyError
	if !errors.Is(err, crypto.ErrUnknownKey) || !errors.As(err, &ke) || ke.ID != ra.ActiveID() ||
		!strings.Contains(err.Error(), ra.ActiveID().String()) {
		t.Fatalf("wrong key err = %v", err)
	}
	if _, err := Open(opts(dir, nil)); !errors.Is(err, crypto.ErrKeyRequired) {
		t.Fatalf("no key err = %v", err)
	}
	after := hashDir(t, dir)
	if len(after) != len(before) {
		t.Fatalf("files changed: %d -> %d", len(before), len(after))
	}
	for name, h := range before {
		if after[name] != h {
			t.Fatalf("%s changed", name)
		}
	}
	// Rotation: the old key as previous still opens; new data goes to a
	// new segment under the new key.
	rb := ring(t, keyB, keyA)
	p = mustOpen(t, opts(dir, rb))
	checkAll(t, p, 0, 50)
	appendN(t, p, 50, 1)
	p.Close()
	segs = logFiles(t, dir)
	hb, _ := os.ReadFile(segs[len(segs)-1])
	h, _ := record.DecodeSegmentHeader(hb)
	if crypto.KeyID(h.KeyID) != rb.ActiveID() {
		t.Fatalf("new segment sealed with %x", h.KeyID)
	}
}

func TestOffsetsSurviveRestartAndRetention(t *testing.T) {
	modes(t, func(t *testing.T, r *crypto.Keyring) {
		dir := t.TempDir()
		o := opts(dir, r)
		o.RetentionAge = time.Hour
		p := mustOpen(t, o)
		appendN(t, p, 0, 60)
		p.Close()
		p = mustOpen(t, o)
		appendN(t, p, 60, 10)
		// Everything is older than an hour in 2100.
		if err := p.EnforceRetention(time.Date(2100, 1, 1, 0, 0, 0, 0, time.UTC)); err != nil {
			t.Fatal(err)
		}
		if p.LowestOffset() != 70 || p.NextOffset() != 70 {
			t.Fatalf("after retention: lowest %d next %d", p.LowestOffset(), p.NextOffset())
		}
		if _, err := p.Read(3, 1, 1); !errors.Is(err, ErrOffsetOutOfRange) {
			t.Fatalf("read deleted offset err = %v", err)
		}
		p.Close()
		if segs := logFiles(t, dir); len(segs) != 1 || filepath.Base(segs[0]) != "00000000000000000070.log" {
			t.Fatalf("segments after retention: %v", segs)
		}
		p = mustOpen(t, o)
		defer p.Close()
		if p.LowestOffset() != 70 || p.NextOffset() != 70 {
			t.Fatalf("after restart: lowest %d next %d", p.LowestOffset(), p.NextOffset())
		}
		appendN(t, p, 70, 3)
		checkAll(t, p, 70, 73)
	})
}

func TestRetentionBytesWholeSegments(t *testing.T) {
	modes(t, func(t *testing.T, r *crypto.Keyring) {
		dir := t.TempDir()
		o := opts(dir, r)
		o.RetentionBytes = 10000
		p := mustOpen(t, o)
		defer p.Close()
		appendN(t, p, 0, 300)
		before := p.Stats()
		if err := p.EnforceRetention(time.Now()); err != nil {
			t.Fatal(err)
		}
		st := p.Stats()
		if st.Bytes > o.RetentionBytes || st.Segments >= before.Segments || st.Segments < 1 {
			t.Fatalf("stats %+v -> %+v", before, st)
		}
		low := p.LowestOffset()
		first := filepath.Base(logFiles(t, dir)[0])
		if first != segmentName(low)+".log" {
			t.Fatalf("lowest %d but first file %s", low, first)
		}
		checkAll(t, p, int(low), 300)
		if p.NextOffset() != 300 {
			t.Fatalf("next %d", p.NextOffset())
		}
	})
}

func TestENOSPCResumes(t *testing.T) {
	modes(t, func(t *testing.T, r *crypto.Keyring) {
		dir := t.TempDir()
		efs := vfs.NewErrorFS(nil)
		o := opts(dir, r)
		o.FS = efs
		o.SegmentBytes = 1 << 20
		p := mustOpen(t, o)
		appendN(t, p, 0, 10)
		size := p.Stats().Bytes
		efs.FailWrites(syscall.ENOSPC, 30) // the next write is cut short
		_, err := p.Append([]Record{rec(10), rec(11)})
		if !errors.Is(err, syscall.ENOSPC) {
			t.Fatalf("append on full disk err = %v", err)
		}
		if p.NextOffset() != 10 || p.Stats().Bytes != size {
			t.Fatalf("after failed write: next %d bytes %d", p.NextOffset(), p.Stats().Bytes)
		}
		if st, _ := os.Stat(logFiles(t, dir)[0]); st.Size() != size {
			t.Fatalf("segment not cut back: %d, want %d", st.Size(), size)
		}
		efs.Heal()
		appendN(t, p, 10, 5)
		p.Close()
		p = mustOpen(t, opts(dir, r))
		defer p.Close()
		checkAll(t, p, 0, 15)
	})
}

func TestFsyncFailureFences(t *testing.T) {
	modes(t, func(t *testing.T, r *crypto.Keyring) {
		dir := t.TempDir()
		efs := vfs.NewErrorFS(nil)
		o := opts(dir, r)
		o.FS = efs
		m := NewMetrics(nil)
		o.Metrics = m
		p := mustOpen(t, o)
		appendN(t, p, 0, 3)
		efs.FailSyncs(syscall.EIO)
		_, err := p.Append([]Record{rec(3)})
		if !errors.Is(err, ErrFenced) || !errors.Is(err, syscall.EIO) {
			t.Fatalf("append with failing fsync err = %v", err)
		}
		efs.Heal()
		if _, err := p.Append([]Record{rec(3)}); !errors.Is(err, ErrFenced) {
			t.Fatalf("append after fence err = %v", err)
		}
		if p.NextOffset() != 3 || p.Fenced() == nil {
			t.Fatalf("next %d fenced %v", p.NextOffset(), p.Fenced())
		}
		checkAll(t, p, 0, 3)
		p.Close()
		p = mustOpen(t, opts(dir, r))
		defer p.Close()
		// The unacknowledged record may or may not have reached the disk.
		if n := p.NextOffset(); n != 3 && n != 4 {
			t.Fatalf("after reopen next %d", n)
		}
		first, err := p.Append([]Record{rec(int(p.NextOffset()))})
		if err != nil {
			t.Fatal(err)
		}
		checkAll(t, p, 0, int(first)+1)
	})
}
