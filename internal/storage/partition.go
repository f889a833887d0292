package storage

import (
	"bytes"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/flymq/flymq/internal/crypto"
	"github.com/flymq/flymq/internal/storage/record"
	"github.com/flymq/flymq/internal/storage/vfs"
)

// Partition is one partition's log. All methods are safe for concurrent
// use.
type Partition struct {
	opts Options
	fs   FS
	log  *zap.Logger
	aad  *record.AAD // template, never written: cloned per reader
	waad *record.AAD // (wmu) the writer's own

	// qmu guards the append queue (see append.go).
	qmu     sync.Mutex
	queue   []*appendReq
	spare   []*appendReq
	leading bool
	qclosed bool

	wmu  sync.Mutex // single writer; see the package doc for lock order
	wbuf []byte     // (wmu) encode buffer of the current group

	mu     sync.RWMutex
	segs   []*segment // (wmu+mu) by base offset; the last is active
	next   uint64     // (wmu+mu) next offset to assign = first unacknowledged
	closed bool       // (wmu+mu)

	fenced atomic.Pointer[error]

	stopSync chan struct{}
	syncDone chan struct{}
	// dirty wakes syncLoop after a write; an idle partition's loop sleeps
	// on it, so idle partitions cost neither wake-ups nor fsyncs.
	dirty chan struct{}
}

// Open opens (creating if needed) the log in opts.Dir and recovers it.
// Every segment's header and key id are checked before anything is
// written, so a missing or wrong key leaves every file unchanged.
func Open(opts Options) (*Partition, error) {
	if opts.Dir == "" {
		return nil, errors.New("storage: Options.Dir is empty")
	}
	if opts.SegmentBytes <= 0 {
		opts.SegmentBytes = DefaultSegmentBytes
	}
	if opts.SegmentBytes > MaxSegmentBytes {
		return nil, fmt.Errorf("storage: segment bytes %d above the maximum %d", opts.SegmentBytes, int64(MaxSegmentBytes))
	}
	if opts.SyncInterval <= 0 {
		opts.SyncInterval = DefaultSyncInterval
	}
	if opts.FS == nil {
		opts.FS = vfs.OS()
	}
	if opts.Logger == nil {
		opts.Logger = zap.NewNop()
	}
	p := &Partition{
		opts: opts,
		fs:   opts.FS,
		log:  opts.Logger.With(zap.String("dir", opts.Dir), zap.Int32("partition", opts.Partition)),
		aad:  record.NewAAD(opts.Topic, opts.Partition),
	}
	p.waad = p.aad.Clone()
	if err := p.fs.MkdirAll(opts.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("storage: create partition dir: %w", err)
	}
	if err := p.load(); err != nil {
		for _, s := range p.segs {
			_ = s.f.Close()
		}
		return nil, err
	}
	var bytes int64
	for _, s := range p.segs {
		bytes += s.size
	}
	p.opts.Metrics.addGauge(mSegments, float64(len(p.segs)))
	p.opts.Metrics.addGauge(mBytes, float64(bytes))
	if opts.Acks == AcksLeader {
		p.stopSync = make(chan struct{})
		p.syncDone = make(chan struct{})
		p.dirty = make(chan struct{}, 1)
		go p.syncLoop()
	}
	return p, nil
}

// load lists, verifies and recovers the segments.
func (p *Partition) load() error {
	names, err := p.fs.ReadDir(p.opts.Dir)
	if err != nil {
		return fmt.Errorf("storage: list partition dir: %w", err)
	}
	// Phase 1: read-only. Open every segment, check its header and that the
	// keyring has its key.
	var tornHeader bool
	for _, name := range names {
		base, ok := parseSegmentName(name)
		if !ok {
			continue
		}
		path := filepath.Join(p.opts.Dir, name)
		f, err := p.fs.OpenFile(path, os.O_RDWR, 0)
		if err != nil {
			return fmt.Errorf("storage: open segment: %w", err)
		}
		s := &segment{base: base, path: path, f: f, next: base}
		s.refs.Store(1)
		p.segs = append(p.segs, s)
		size, err := f.Size()
		if err != nil {
			return fmt.Errorf("storage: stat segment %s: %w", name, err)
		}
		s.size = size
		var hb [record.SegmentHeaderSize]byte
		if _, err := f.ReadAt(hb[:min(size, record.SegmentHeaderSize)], 0); err != nil && !errors.Is(err, io.EOF) {
			return fmt.Errorf("storage: read segment header %s: %w", name, err)
		}
		s.hdr, err = record.DecodeSegmentHeader(hb[:min(size, record.SegmentHeaderSize)])
		if err != nil {
			// A crash while a new segment's header was being written leaves
			// a short header and no records; anything else is damage.
			if size < record.SegmentHeaderSize && name == lastLog(names) {
				tornHeader = true
				continue
			}
			return &CorruptionError{Segment: path, Position: 0, Err: err}
		}
		if s.hdr.BaseOffset != base {
			return &CorruptionError{Segment: path, Position: 0,
				Err: fmt.Errorf("header base offset %d does not match the file name", s.hdr.BaseOffset)}
		}
		s.cipher, err = crypto.NewSegmentCipher(p.opts.Keyring, crypto.KeyID(s.hdr.KeyID), s.hdr.Salt[:])
		if err != nil {
			return fmt.Errorf("storage: segment %s: %w", path, err)
		}
	}
	for i := 1; i < len(p.segs); i++ {
		if p.segs[i].base <= p.segs[i-1].base {
			return fmt.Errorf("storage: duplicate segment base %d", p.segs[i].base)
		}
	}

	// Phase 2: recover. Older segments were fsynced when they rolled: load
	// their indexes, or rebuild them by a checked scan. The last one is
	// always scanned, and its torn tail, if any, cut off.
	for i, s := range p.segs {
		last := i == len(p.segs)-1
		switch {
		case last && tornHeader:
			if err := p.resetSegment(s); err != nil {
				return err
			}
		case last:
			if err := p.recoverTail(s); err != nil {
				return err
			}
		default:
			if err := p.loadOrRebuild(s, p.segs[i+1].base); err != nil {
				return err
			}
		}
	}
	p.removeStrays(names)

	if len(p.segs) == 0 {
		s, err := p.newSegment(0)
		if err != nil {
			return err
		}
		p.segs = append(p.segs, s)
	}
	active := p.segs[len(p.segs)-1]
	p.next = active.next
	// New data goes under the active key: a rotated key, or encryption just
	// turned on, starts a new segment rather than growing an old one.
	if active.hdr.KeyID != uint64(p.opts.Keyring.ActiveID()) {
		if active.empty() {
			return p.resetSegment(active)
		}
		if err := p.fsync(active); err != nil {
			return err
		}
		s, err := p.newSegment(p.next)
		if err != nil {
			return err
		}
		p.segs = append(p.segs, s)
		if err := p.writeIndexes(active); err != nil {
			p.log.Warn("could not persist segment index", zap.String("segment", active.path), zap.Error(err))
		}
	}
	return nil
}

func lastLog(names []string) string {
	last := ""
	for _, n := range names {
		if _, ok := parseSegmentName(n); ok {
			last = n
		}
	}
	return last
}

// resetSegment rewrites an empty segment's header with a fresh salt under
// the active key (after a torn header, or a key change).
func (p *Partition) resetSegment(s *segment) error {
	s.hdr = record.SegmentHeader{Version: record.SegmentVersion, BaseOffset: s.base,
		KeyID: uint64(p.opts.Keyring.ActiveID())}
	if _, err := rand.Read(s.hdr.Salt[:]); err != nil {
		return fmt.Errorf("storage: segment salt: %w", err)
	}
	c, err := crypto.NewSegmentCipher(p.opts.Keyring, crypto.KeyID(s.hdr.KeyID), s.hdr.Salt[:])
	if err != nil {
		return err
	}
	s.cipher = c
	s.size, s.next, s.maxTS, s.index, s.tindex = record.SegmentHeaderSize, s.base, 0, nil, nil
	p.log.Warn("rewrote empty segment header", zap.String("segment", s.path))
	return p.writeHeader(s)
}

// loadOrRebuild fills an older segment's indexes, from its index files if
// they are intact and current, else by a checked scan (then persisted).
func (p *Partition) loadOrRebuild(s *segment, next uint64) error {
	idx, err1 := readAll(p.fs, s.stem()+".index")
	tidx, err2 := readAll(p.fs, s.stem()+".timeindex")
	if err1 == nil && err2 == nil {
		ix, tx, maxTS, err := decodeIndexes(idx, tidx, s.size)
		if err == nil && len(ix) > 0 && uint64(ix[len(ix)-1].rel) >= next-s.base {
			err = errStaleIndex // indexes a record the segment cannot hold
		}
		if err == nil {
			s.index, s.tindex, s.maxTS, s.next = ix, tx, maxTS, next
			if len(ix) > 0 {
				s.lastIdxPos = int64(ix[len(ix)-1].pos)
			}
			return nil
		}
	}
	p.log.Info("rebuilding segment index", zap.String("segment", s.path))
	if err := p.scan(s, false); err != nil {
		return err
	}
	if s.next != next {
		return &CorruptionError{Segment: s.path, Position: s.size,
			Err: fmt.Errorf("segment ends at offset %d but the next segment starts at %d", s.next, next)}
	}
	if err := p.writeIndexes(s); err != nil {
		p.log.Warn("could not persist rebuilt index", zap.String("segment", s.path), zap.Error(err))
	}
	return nil
}

// recoverTail scans the last segment, opening every record (so a record
// that fails to authenticate is reported now, naming the key id, and never
// cut off), and truncates a torn tail.
func (p *Partition) recoverTail(s *segment) error {
	return p.scan(s, true)
}

// scan walks a segment's frames, checking CRCs and offsets and rebuilding
// the in-memory indexes. With tail set, a damaged frame may be the torn end
// of a crash: see tornAt.
func (p *Partition) scan(s *segment, tail bool) error {
	end := s.size
	s.size, s.next, s.maxTS, s.index, s.tindex = record.SegmentHeaderSize, s.base, 0, nil, nil
	sc := newScanner(s.f, record.SegmentHeaderSize, end, 1<<20)
	aad := p.aad.Clone()
	for {
		at := sc.at()
		frame, err := sc.next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			if !isFrameErr(err) {
				return err // an I/O error says nothing about the data
			}
			if !tail {
				return &CorruptionError{Segment: s.path, Position: at, Err: err}
			}
			torn, lost, terr := p.tornAt(s, at, end)
			if terr != nil {
				return terr
			}
			if !torn {
				return &CorruptionError{Segment: s.path, Position: at, Err: err}
			}
			return p.truncateTail(s, at, end, lost, err)
		}
		body := frame[record.FrameHeaderSize:]
		off := record.Offset(body)
		if off != s.next {
			return &CorruptionError{Segment: s.path, Position: at,
				Err: fmt.Errorf("frame holds offset %d, expected %d", off, s.next)}
		}
		if tail {
			if _, err := record.Open(s.cipher, aad, body); err != nil {
				p.opts.Metrics.inc(mAuthFailures, 1)
				return &CorruptionError{Segment: s.path, Position: at,
					Err: fmt.Errorf("record offset %d, key id %s: %w", off, crypto.KeyID(s.hdr.KeyID), err)}
			}
		}
		s.addIndex(off, at, record.Timestamp(body))
		s.size = at + int64(len(frame))
		s.next = off + 1
	}
}

func isFrameErr(err error) bool {
	return errors.Is(err, record.ErrShort) || errors.Is(err, record.ErrChecksum) || errors.Is(err, record.ErrInvalid)
}

// tornAt decides whether the damaged frame at pos in the last segment is
// the torn end of a crash rather than corruption. It is torn when no
// intact frame with a later offset follows it (whatever is there was never
// acknowledged: with AcksAll nothing after an unsynced frame was), or when
// the damaged stretch holds an all-zero 512-byte sector, the mark of pages
// that a power loss left unwritten in an extended file. Otherwise, intact
// later records after a bad one, it is corruption and must not be cut.
func (p *Partition) tornAt(s *segment, pos, end int64) (torn bool, lost int, err error) {
	rest := make([]byte, end-pos)
	if _, err := s.f.ReadAt(rest, pos); err != nil && !errors.Is(err, io.EOF) {
		return false, 0, fmt.Errorf("storage: read segment tail: %w", err)
	}
	first := -1
	for q := 1; q+record.HeaderSize <= len(rest); q++ {
		if rest[q+record.FrameHeaderSize] != record.Version {
			continue
		}
		body, _, err := record.DecodeFrame(rest[q:])
		if err == nil && record.Offset(body) >= s.next {
			first = q
			break
		}
	}
	if first < 0 {
		return true, 0, nil
	}
	for q := first; q < len(rest); {
		_, n, err := record.DecodeFrame(rest[q:])
		if err != nil {
			break
		}
		lost++
		q += n
	}
	const sector = 512
	for a := (pos + sector - 1) / sector * sector; a+sector <= pos+int64(first); a += sector {
		if isZero(rest[a-pos : a-pos+sector]) {
			return true, lost, nil
		}
	}
	return false, 0, nil
}

var zeroSector [512]byte

func isZero(b []byte) bool { return bytes.Equal(b, zeroSector[:len(b)]) }

func (p *Partition) truncateTail(s *segment, at, end int64, lost int, cause error) error {
	p.log.Warn("truncating torn segment tail",
		zap.String("segment", s.path), zap.Int64("position", at),
		zap.Int64("bytes", end-at), zap.Int("intact-frames-after", lost),
		zap.NamedError("cause", cause))
	if err := s.f.Truncate(at); err != nil {
		return fmt.Errorf("storage: truncate torn tail of %s: %w", s.path, err)
	}
	if err := p.fsync(s); err != nil {
		return err
	}
	p.opts.Metrics.inc(mTornTails, 1)
	return nil
}

// removeStrays deletes leftovers: index files without a segment and
// temporary files of an interrupted index write.
func (p *Partition) removeStrays(names []string) {
	have := map[string]bool{}
	for _, s := range p.segs {
		have[filepath.Base(s.stem())] = true
	}
	for _, n := range names {
		stem, _, _ := strings.Cut(n, ".")
		if strings.HasSuffix(n, ".tmp") ||
			((strings.HasSuffix(n, ".index") || strings.HasSuffix(n, ".timeindex")) && !have[stem]) {
			if err := p.fs.Remove(filepath.Join(p.opts.Dir, n)); err != nil && !errors.Is(err, fs.ErrNotExist) {
				p.log.Warn("could not remove stray file", zap.String("file", n), zap.Error(err))
			}
		}
	}
}

// fsync syncs a segment, timing it; a failure fences the partition.
func (p *Partition) fsync(s *segment) error {
	start := time.Now()
	err := s.f.Sync()
	p.opts.Metrics.observeFsync(start)
	if err != nil {
		return p.fence(fmt.Errorf("fsync %s: %w", filepath.Base(s.path), err))
	}
	return nil
}

// fence stops all writes after an fsync failure: the kernel may have
// dropped the dirty pages, so nothing written since the last good fsync can
// be trusted until recovery re-reads the file.
func (p *Partition) fence(cause error) error {
	err := fmt.Errorf("%w: %w", ErrFenced, cause)
	if p.fenced.CompareAndSwap(nil, &err) {
		p.opts.Metrics.inc(mFsyncErrors, 1)
		p.opts.Metrics.addGauge(mFenced, 1)
		p.log.Error("partition fenced after fsync failure", zap.Error(cause))
	}
	return err
}

func (p *Partition) fencedErr() error {
	if e := p.fenced.Load(); e != nil {
		return *e
	}
	return nil
}
