package storage

import (
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"

	"github.com/flymq/flymq/internal/crypto"
	"github.com/flymq/flymq/internal/storage/record"
)

// segment is one .log file and its in-memory indexes. Fields marked
// (wmu+mu) change only with both locks held, so they may be read under
// either; the index slices are appended under the same rule and readers
// copy what they need while holding mu.
type segment struct {
	base   uint64
	path   string // .log path
	f      File
	hdr    record.SegmentHeader
	cipher *crypto.SegmentCipher

	size  int64  // (wmu+mu) bytes of acknowledged frames, header included
	next  uint64 // (wmu+mu) offset after the last acknowledged record
	maxTS int64  // (wmu+mu) largest record timestamp, 0 if empty

	index      []indexEntry // (wmu+mu) sparse, by offset
	tindex     []timeEntry  // (wmu+mu) sparse, by running max timestamp
	lastIdxPos int64        // (wmu) position of the last index entry

	refs atomic.Int32 // the partition holds one; readers and Sync pin more
}

type indexEntry struct{ rel, pos uint32 }

type timeEntry struct {
	ts  int64
	rel uint32
}

func segmentName(base uint64) string { return fmt.Sprintf("%020d", base) }

func parseSegmentName(name string) (uint64, bool) {
	stem, ok := strings.CutSuffix(name, ".log")
	if !ok || len(stem) != 20 {
		return 0, false
	}
	base, err := strconv.ParseUint(stem, 10, 64)
	return base, err == nil
}

func (s *segment) stem() string { return strings.TrimSuffix(s.path, ".log") }

// ref pins the segment's file; callers hold p.mu so it cannot be retired
// concurrently.
func (s *segment) ref() { s.refs.Add(1) }

// unref drops a pin and closes the file after the last one.
func (s *segment) unref() {
	if s.refs.Add(-1) == 0 {
		_ = s.f.Close() // read-only use is over; nothing to lose
	}
}

func (s *segment) empty() bool { return s.next == s.base }

// addIndex records the frame of offset at pos if the sparse interval asks
// for it. The time index is sampled at the same points with the running
// maximum timestamp, so it is monotonic even when timestamps are not.
func (s *segment) addIndex(offset uint64, pos int64, ts int64) {
	if ts > s.maxTS {
		s.maxTS = ts
	}
	if len(s.index) > 0 && pos-s.lastIdxPos < indexIntervalBytes {
		return
	}
	rel := uint32(offset - s.base)
	s.index = append(s.index, indexEntry{rel: rel, pos: uint32(pos)})
	s.tindex = append(s.tindex, timeEntry{ts: s.maxTS, rel: rel})
	s.lastIdxPos = pos
}

// lookup returns the position of the last indexed frame at or before
// offset, and that frame's offset. Callers hold p.mu.
func (s *segment) lookup(offset uint64) (int64, uint64) {
	rel := uint32(offset - s.base)
	i := sort.Search(len(s.index), func(i int) bool { return s.index[i].rel > rel })
	if i == 0 {
		return record.SegmentHeaderSize, s.base
	}
	e := s.index[i-1]
	return int64(e.pos), s.base + uint64(e.rel)
}

// endBefore returns a position at or after the end of the frame before
// offset (the start of the first indexed frame at or after it), or size.
// Callers hold p.mu.
func (s *segment) endBefore(offset uint64) int64 {
	if offset >= s.next {
		return s.size
	}
	rel := uint32(offset - s.base)
	i := sort.Search(len(s.index), func(i int) bool { return s.index[i].rel >= rel })
	if i == len(s.index) {
		return s.size
	}
	return int64(s.index[i].pos)
}

// newSegment creates a segment file with a fresh salt under the keyring's
// active key and makes it durable (file and directory entry) before any
// record goes in, so its base offset survives a crash even while empty.
func (p *Partition) newSegment(base uint64) (*segment, error) {
	hdr := record.SegmentHeader{Version: record.SegmentVersion, BaseOffset: base,
		KeyID: uint64(p.opts.Keyring.ActiveID())}
	if _, err := rand.Read(hdr.Salt[:]); err != nil {
		return nil, fmt.Errorf("storage: segment salt: %w", err)
	}
	c, err := crypto.NewSegmentCipher(p.opts.Keyring, crypto.KeyID(hdr.KeyID), hdr.Salt[:])
	if err != nil {
		return nil, err
	}
	path := filepath.Join(p.opts.Dir, segmentName(base)+".log")
	f, err := p.fs.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return nil, fmt.Errorf("storage: create segment: %w", err)
	}
	s := &segment{base: base, path: path, f: f, hdr: hdr, cipher: c,
		size: record.SegmentHeaderSize, next: base}
	s.refs.Store(1)
	if err := p.writeHeader(s); err != nil {
		_ = f.Close()
		return nil, err
	}
	if err := p.fs.SyncDir(p.opts.Dir); err != nil {
		_ = f.Close()
		return nil, p.fence(fmt.Errorf("fsync dir after creating %s: %w", filepath.Base(path), err))
	}
	return s, nil
}

func (p *Partition) writeHeader(s *segment) error {
	h := record.AppendSegmentHeader(make([]byte, 0, record.SegmentHeaderSize), &s.hdr)
	if err := s.f.Truncate(0); err != nil {
		return fmt.Errorf("storage: segment header: %w", err)
	}
	if _, err := s.f.WriteAt(h, 0); err != nil {
		p.opts.Metrics.inc(mWriteErrors, 1)
		return fmt.Errorf("storage: segment header: %w", err)
	}
	if err := p.fsync(s); err != nil {
		return err
	}
	return nil
}

// Index files (integers big-endian), written whole when a segment rolls
// and after a rebuild, replaced by rename; never fsynced, because a torn
// or stale one only costs a rebuild:
//
//	.index:     "FLYIDX" u16 ver | u64 log size | u32 n | n × (u32 rel, u32 pos) | u32 crc32c
//	.timeindex: "FLYTIX" u16 ver | u64 log size | i64 max ts | u32 n | n × (i64 ts, u32 rel) | u32 crc32c
const (
	indexMagic     = "FLYIDX"
	timeIndexMagic = "FLYTIX"
	indexVersion   = 1
)

func (s *segment) encodeIndexes() (idx, tidx []byte) {
	idx = append(idx, indexMagic...)
	idx = binary.BigEndian.AppendUint16(idx, indexVersion)
	idx = binary.BigEndian.AppendUint64(idx, uint64(s.size))
	idx = binary.BigEndian.AppendUint32(idx, uint32(len(s.index)))
	for _, e := range s.index {
		idx = binary.BigEndian.AppendUint32(idx, e.rel)
		idx = binary.BigEndian.AppendUint32(idx, e.pos)
	}
	idx = binary.BigEndian.AppendUint32(idx, record.Checksum(idx))

	tidx = append(tidx, timeIndexMagic...)
	tidx = binary.BigEndian.AppendUint16(tidx, indexVersion)
	tidx = binary.BigEndian.AppendUint64(tidx, uint64(s.size))
	tidx = binary.BigEndian.AppendUint64(tidx, uint64(s.maxTS))
	tidx = binary.BigEndian.AppendUint32(tidx, uint32(len(s.tindex)))
	for _, e := range s.tindex {
		tidx = binary.BigEndian.AppendUint64(tidx, uint64(e.ts))
		tidx = binary.BigEndian.AppendUint32(tidx, e.rel)
	}
	tidx = binary.BigEndian.AppendUint32(tidx, record.Checksum(tidx))
	return idx, tidx
}

var errStaleIndex = errors.New("stale or damaged index")

// decodeIndexes loads both index files if they are intact and describe a
// log of exactly size bytes.
func decodeIndexes(idx, tidx []byte, size int64) (ix []indexEntry, tx []timeEntry, maxTS int64, err error) {
	check := func(b []byte, magic string, fixed, entry int) (int, bool) {
		if len(b) < fixed+4 || string(b[:6]) != magic ||
			binary.BigEndian.Uint16(b[6:]) != indexVersion ||
			int64(binary.BigEndian.Uint64(b[8:])) != size ||
			record.Checksum(b[:len(b)-4]) != binary.BigEndian.Uint32(b[len(b)-4:]) {
			return 0, false
		}
		n := int(binary.BigEndian.Uint32(b[fixed-4:]))
		return n, len(b) == fixed+n*entry+4
	}
	n, ok := check(idx, indexMagic, 20, 8)
	if !ok {
		return nil, nil, 0, errStaleIndex
	}
	for i, b := 0, idx[20:]; i < n; i, b = i+1, b[8:] {
		ix = append(ix, indexEntry{rel: binary.BigEndian.Uint32(b), pos: binary.BigEndian.Uint32(b[4:])})
	}
	m, ok := check(tidx, timeIndexMagic, 28, 12)
	if !ok {
		return nil, nil, 0, errStaleIndex
	}
	maxTS = int64(binary.BigEndian.Uint64(tidx[16:]))
	for i, b := 0, tidx[28:]; i < m; i, b = i+1, b[12:] {
		tx = append(tx, timeEntry{ts: int64(binary.BigEndian.Uint64(b)), rel: binary.BigEndian.Uint32(b[8:])})
	}
	if !consistentIndexes(ix, tx, maxTS, size) {
		return nil, nil, 0, errStaleIndex
	}
	return ix, tx, maxTS, nil
}

// consistentIndexes checks what Read relies on: a CRC only proves the
// files are whole, and the index files are not sealed, so a file written
// by someone else (or a CRC collision) must not steer reads to negative
// lengths or past the log. Entries are what addIndex produces: the first
// frame at the header, offsets and positions strictly increasing inside
// the log, the time index sampled at the same points with a running
// maximum.
func consistentIndexes(ix []indexEntry, tx []timeEntry, maxTS, size int64) bool {
	if len(ix) != len(tx) || (len(ix) == 0) != (size == record.SegmentHeaderSize) {
		return false
	}
	for i, e := range ix {
		if int64(e.pos) >= size || tx[i].rel != e.rel || tx[i].ts > maxTS {
			return false
		}
		if i == 0 {
			if e.rel != 0 || e.pos != record.SegmentHeaderSize {
				return false
			}
			continue
		}
		if e.rel <= ix[i-1].rel || e.pos <= ix[i-1].pos || tx[i].ts < tx[i-1].ts {
			return false
		}
	}
	return true
}

// writeIndexes persists the segment's indexes. Failures are logged and
// counted by the caller but never fail an append: the files are a cache.
func (p *Partition) writeIndexes(s *segment) error {
	idx, tidx := s.encodeIndexes()
	if err := p.replaceFile(s.stem()+".index", idx); err != nil {
		return err
	}
	return p.replaceFile(s.stem()+".timeindex", tidx)
}

func (p *Partition) replaceFile(path string, data []byte) error {
	tmp := path + ".tmp"
	f, err := p.fs.OpenFile(tmp, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("storage: write %s: %w", filepath.Base(path), err)
	}
	_, err = f.WriteAt(data, 0)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = p.fs.Rename(tmp, path)
	}
	if err != nil {
		_ = p.fs.Remove(tmp)
		return fmt.Errorf("storage: write %s: %w", filepath.Base(path), err)
	}
	return nil
}

func readAll(fs FS, path string) ([]byte, error) {
	f, err := fs.OpenFile(path, os.O_RDONLY, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	n, err := f.Size()
	if err != nil {
		return nil, err
	}
	b := make([]byte, n)
	if _, err := f.ReadAt(b, 0); err != nil && !errors.Is(err, io.EOF) {
		return nil, err
	}
	return b, nil
}

// scanner reads a segment's frames sequentially in large chunks.
type scanner struct {
	f    File
	end  int64  // file size
	pos  int64  // file position of buf[0]
	buf  []byte // buffered bytes
	off  int    // cursor in buf
	read []byte // backing array
}

func newScanner(f File, from, end int64, chunk int) *scanner {
	return &scanner{f: f, pos: from, end: end, read: make([]byte, chunk)}
}

// at is the file position of the next frame.
func (sc *scanner) at() int64 { return sc.pos + int64(sc.off) }

// ensure makes n bytes from the cursor available, or as many as the file
// has.
func (sc *scanner) ensure(n int) error {
	if len(sc.buf)-sc.off >= n {
		return nil
	}
	rest := len(sc.buf) - sc.off
	if n > len(sc.read) {
		sc.read = make([]byte, n) // a frame bigger than the chunk
	}
	copy(sc.read, sc.buf[sc.off:])
	sc.pos += int64(sc.off)
	sc.off = 0
	want := int64(len(sc.read))
	if left := sc.end - sc.pos; left < want {
		want = left
	}
	if int64(rest) < want {
		m, err := sc.f.ReadAt(sc.read[rest:want], sc.pos+int64(rest))
		if err != nil && !(errors.Is(err, io.EOF) && int64(rest+m) == want) {
			return fmt.Errorf("storage: read segment: %w", err)
		}
	}
	sc.buf = sc.read[:want]
	return nil
}

// next returns the next frame's bytes (valid until the following call) or
// io.EOF at the end. A damaged frame returns the record package's error.
func (sc *scanner) next() (frame []byte, err error) {
	if sc.at() >= sc.end {
		return nil, io.EOF
	}
	if err := sc.ensure(record.FrameHeaderSize); err != nil {
		return nil, err
	}
	n := record.PeekSize(sc.buf[sc.off:])
	if n == 0 {
		_, _, err := record.DecodeFrame(sc.buf[sc.off:])
		return nil, err
	}
	if err := sc.ensure(n); err != nil {
		return nil, err
	}
	if _, _, err := record.DecodeFrame(sc.buf[sc.off:]); err != nil {
		return nil, err
	}
	frame = sc.buf[sc.off : sc.off+n]
	sc.off += n
	return frame, nil
}
