package keys

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/flymq/flymq/internal/broker"
	"github.com/flymq/flymq/internal/crypto"
	"github.com/flymq/flymq/internal/storage"
	"github.com/flymq/flymq/internal/storage/record"
)

// Errors.
var (
	// ErrNoKeyring: re-sealing needs an active key (encryption is off or
	// no key was given).
	ErrNoKeyring = errors.New("keys: re-sealing needs an encryption key")
	// ErrIncomplete: some files could not be re-sealed; the rest were.
	ErrIncomplete = errors.New("keys: re-seal incomplete")
	// ErrFailpoint is returned when a test failpoint stopped the run as a
	// crash would: no cleanup was done.
	ErrFailpoint = errors.New("keys: stopped at failpoint")
)

// Step names a point in re-sealing one segment at which a test may stop
// the process (see Options.Failpoint). Between any two steps the data dir
// is readable with the old and the new key together.
type Step string

// The steps of re-sealing one segment, in order, and of one store file.
const (
	StepTempPartial  Step = "temp-partial"  // temp file holds the header and one frame
	StepTempWritten  Step = "temp-written"  // every frame written, not yet fsynced
	StepTempSynced   Step = "temp-synced"   // temp file fsynced and verified
	StepIndexDropped Step = "index-dropped" // old index caches removed
	StepRenamed      Step = "renamed"       // temp renamed over the segment
	StepDirSynced    Step = "dir-synced"    // directory fsynced: done
	StepStoreWritten Step = "store-written" // a store file replaced atomically
)

// SegmentSteps lists the steps of one segment in order (for tests).
var SegmentSteps = []Step{StepTempPartial, StepTempWritten, StepTempSynced,
	StepIndexDropped, StepRenamed, StepDirSynced}

// Progress is reported after every file and while large segments copy.
type Progress struct {
	Files, TotalFiles int
	Bytes, TotalBytes int64
	Path              string // file being worked on
}

// Options configure Reseal.
type Options struct {
	DataDir string
	// Keyring must hold the active key and every key that sealed data.
	Keyring *crypto.Keyring
	Logger  *zap.Logger // nil = nop
	// Progress, if set, is called from the re-sealing goroutine.
	Progress func(Progress)
	// Failpoint, if set, is called at every Step; returning true stops
	// the run there as a kill -9 would (nothing cleaned up, ErrFailpoint
	// returned). Tests only.
	Failpoint func(step Step, path string) bool
}

// Result sums up a run.
type Result struct {
	Segments, Stores int   // files re-sealed
	Bytes            int64 // bytes read from them
	TempsRemoved     int   // leftovers of interrupted writes
	Problems         []Problem
}

// Reseal rewrites every segment and sealed store of the data dir that is
// not sealed under the active key, one file at a time, crash-safely: a
// segment is copied to a temporary file with a fresh salt under the active
// key, fsynced, read back and checked against the original's plaintext,
// then its rebuildable index caches are removed and the copy renamed over
// it and the directory fsynced; a store is replaced with
// crypto.WriteFileAtomic. Offsets, timestamps, expiry, flags, keys,
// values and headers are unchanged. A crash at any point leaves every file
// readable with the old and the new key, and a second run finishes.
//
// Reseal holds the data dir's lock: it fails with storage.ErrLocked while
// a broker runs on it. Files it cannot re-seal (damage, an unknown key, a
// sealed file of an unknown kind) are skipped, listed in the Result and
// reported with ErrIncomplete after the others are done.
func Reseal(ctx context.Context, opts Options) (*Result, error) {
	if opts.Keyring == nil {
		return nil, ErrNoKeyring
	}
	if opts.Logger == nil {
		opts.Logger = zap.NewNop()
	}
	if _, err := os.Stat(opts.DataDir); err != nil {
		return nil, fmt.Errorf("keys: data dir: %w", err)
	}
	lock, err := storage.LockDir(opts.DataDir)
	if err != nil {
		return nil, err
	}
	defer lock.Unlock()
	// The same check the broker makes: a wrong key must not get to
	// rewrite anything, and KEYCHECK must name the new active key before
	// any data is sealed with it.
	if err := crypto.CheckDataDir(opts.DataDir, opts.Keyring); err != nil {
		return nil, fmt.Errorf("keys: check encryption key: %w", err)
	}
	r := &resealer{opts: opts, log: opts.Logger, active: opts.Keyring.ActiveID(),
		res: &Result{}, topics: map[string]string{}}
	inv, err := Scan(opts.DataDir)
	if err != nil {
		return nil, err
	}
	r.res.Problems = append(r.res.Problems, inv.Problems...)
	var todo []File
	for _, f := range inv.Files {
		if f.Kind == KindTemp {
			continue
		}
		if len(f.Keys) == 1 && f.Keys[r.active] > 0 {
			continue
		}
		todo = append(todo, f)
		r.prog.TotalBytes += f.Size
	}
	r.prog.TotalFiles = len(todo)
	if err := r.removeTemps(inv); err != nil {
		return r.res, err
	}
	r.log.Info("re-sealing", zap.String("data-dir", opts.DataDir),
		zap.Stringer("active-key-id", r.active), zap.Int("files", len(todo)),
		zap.Int64("bytes", r.prog.TotalBytes))
	start := time.Now()
	for _, f := range todo {
		if err := ctx.Err(); err != nil {
			return r.res, fmt.Errorf("keys: re-seal interrupted: %w", err)
		}
		r.prog.Path = f.Path
		var ferr error
		if f.Kind == KindSegment {
			ferr = r.segment(f)
			if ferr == nil {
				r.res.Segments++
			}
		} else {
			ferr = r.store(f)
			if ferr == nil {
				r.res.Stores++
			}
		}
		if errors.Is(ferr, ErrFailpoint) {
			return r.res, ferr
		}
		if ferr != nil {
			r.log.Error("could not re-seal", zap.String("file", f.Path), zap.Error(ferr))
			r.res.Problems = append(r.res.Problems, Problem{Path: f.Path, Err: ferr})
		}
		r.res.Bytes += f.Size
		r.prog.Files++
		r.prog.Bytes = r.res.Bytes
		r.report()
	}
	r.log.Info("re-seal finished", zap.Int("segments", r.res.Segments),
		zap.Int("stores", r.res.Stores), zap.Int64("bytes", r.res.Bytes),
		zap.Duration("took", time.Since(start)), zap.Int("problems", len(r.res.Problems)))
	if len(r.res.Problems) > 0 {
		return r.res, fmt.Errorf("%w: %d file(s) left as they were", ErrIncomplete, len(r.res.Problems))
	}
	return r.res, nil
}

type resealer struct {
	opts   Options
	log    *zap.Logger
	active crypto.KeyID
	res    *Result
	prog   Progress
	topics map[string]string // topic dir name -> topic name
}

func (r *resealer) report() {
	if r.opts.Progress != nil {
		r.opts.Progress(r.prog)
	}
}

func (r *resealer) fail(step Step, path string) bool {
	return r.opts.Failpoint != nil && r.opts.Failpoint(step, path)
}

func (r *resealer) abs(rel string) string {
	return filepath.Join(r.opts.DataDir, filepath.FromSlash(rel))
}

// removeTemps deletes the leftovers of interrupted writes: our own
// segment copies and crypto.WriteFileAtomic's temp files. Nothing reads
// them, and they may hold bytes sealed under the key about to be dropped.
func (r *resealer) removeTemps(inv *Inventory) error {
	return filepath.WalkDir(r.opts.DataDir, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return nil // Scan has reported unreadable dirs already
		}
		name := d.Name()
		if !strings.HasSuffix(name, resealSuffix) &&
			!(strings.HasPrefix(name, ".") && strings.Contains(name, ".tmp-")) {
			return nil
		}
		if err := os.Remove(path); err != nil {
			return fmt.Errorf("keys: remove leftover %s: %w", name, err)
		}
		r.res.TempsRemoved++
		r.log.Info("removed leftover temporary file", zap.String("file", path))
		return nil
	})
}

// topicName returns the real name of the topic in topics/<dir>, which the
// records' associated data binds.
func (r *resealer) topicName(dir string) (string, error) {
	if name, ok := r.topics[dir]; ok {
		return name, nil
	}
	blob, err := os.ReadFile(filepath.Join(r.opts.DataDir, topicsDir, dir, topicMetaFile))
	if err != nil {
		return "", fmt.Errorf("topic metadata: %w", err)
	}
	plain, err := crypto.OpenBlob(r.opts.Keyring, broker.TopicMetaPurpose(dir), blob)
	if err != nil {
		return "", fmt.Errorf("topic metadata: %w", err)
	}
	var meta struct {
		Name string `json:"name"`
	}
	err = json.Unmarshal(plain, &meta)
	clear(plain)
	if err != nil || meta.Name == "" {
		return "", fmt.Errorf("topic metadata of %s: no topic name", dir)
	}
	r.topics[dir] = meta.Name
	return meta.Name, nil
}

// store re-seals one store file under its purpose.
func (r *resealer) store(f File) error {
	if f.Purpose == "" {
		return errors.New("sealed file of a kind this version does not know; " +
			"keep its key in the ring until the tool that wrote it re-seals it")
	}
	path := r.abs(f.Path)
	img, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	var out []byte
	if f.framed {
		blobs, err := groupFrames(img)
		if err != nil {
			return err
		}
		for i, b := range blobs {
			nb, err := reseal(r.opts.Keyring, f.Purpose, b)
			if err != nil {
				return fmt.Errorf("frame %d: %w", i, err)
			}
			out = appendGroupFrame(out, nb)
		}
	} else if out, err = reseal(r.opts.Keyring, f.Purpose, img); err != nil {
		return err
	}
	if err := crypto.WriteFileAtomic(path, out, 0o600); err != nil {
		return err
	}
	r.log.Debug("re-sealed store", zap.String("file", f.Path))
	if r.fail(StepStoreWritten, f.Path) {
		return ErrFailpoint
	}
	return nil
}

func reseal(ring *crypto.Keyring, purpose string, blob []byte) ([]byte, error) {
	plain, err := crypto.OpenBlob(ring, purpose, blob)
	if err != nil {
		return nil, err
	}
	out, err := crypto.SealBlob(ring, purpose, plain)
	clear(plain)
	return out, err
}

// segment re-seals one segment file; see Reseal for the steps.
func (r *resealer) segment(f File) (err error) {
	parts := strings.Split(f.Path, "/") // topics/<dir>/<partition>/<base>.log
	topic, err := r.topicName(parts[1])
	if err != nil {
		return err
	}
	partition, err := strconv.ParseInt(parts[2], 10, 32)
	if err != nil {
		return fmt.Errorf("partition dir %q: %w", parts[2], err)
	}
	path := r.abs(f.Path)
	tmp := path + resealSuffix
	crashed := false
	defer func() {
		if err != nil && !crashed {
			_ = os.Remove(tmp)
		}
	}()
	copyOf := func(step Step) error {
		if r.fail(step, f.Path) {
			crashed = true
			return ErrFailpoint
		}
		return nil
	}

	sum, hdr, err := r.copySegment(path, tmp, topic, int32(partition), copyOf)
	if err != nil {
		return err
	}
	// Read the copy back with the new key before it replaces anything: the
	// original is the only other copy of these messages.
	check, err := digestSegment(tmp, r.opts.Keyring, topic, int32(partition), hdr)
	if err != nil {
		return fmt.Errorf("verify re-sealed copy: %w", err)
	}
	if !bytes.Equal(sum, check) {
		return errors.New("verify re-sealed copy: contents differ from the original")
	}
	if err := copyOf(StepTempSynced); err != nil {
		return err
	}
	// The index caches describe a file about to be replaced. The broker
	// rebuilds missing ones, so removing them first is always safe.
	stem := strings.TrimSuffix(path, ".log")
	for _, ext := range []string{".index", ".timeindex"} {
		if err := os.Remove(stem + ext); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("remove index cache: %w", err)
		}
	}
	if err := copyOf(StepIndexDropped); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("replace segment: %w", err)
	}
	if err := copyOf(StepRenamed); err != nil {
		return err
	}
	if err := syncDir(filepath.Dir(path)); err != nil {
		return err
	}
	r.log.Debug("re-sealed segment", zap.String("file", f.Path))
	return copyOf(StepDirSynced)
}

// copySegment writes the re-sealed copy of src to tmp, fsynced, and
// returns the digest of src's records and the new header.
func (r *resealer) copySegment(src, tmp, topic string, partition int32,
	step func(Step) error) (sum []byte, nh record.SegmentHeader, err error) {
	in, err := os.Open(src)
	if err != nil {
		return nil, nh, err
	}
	defer in.Close()
	br := bufio.NewReaderSize(in, 1<<20)
	var hb [record.SegmentHeaderSize]byte
	if _, err := io.ReadFull(br, hb[:]); err != nil {
		return nil, nh, fmt.Errorf("segment header: %w", err)
	}
	oh, err := record.DecodeSegmentHeader(hb[:])
	if err != nil {
		return nil, nh, fmt.Errorf("segment header: %w", err)
	}
	oc, err := crypto.NewSegmentCipher(r.opts.Keyring, crypto.KeyID(oh.KeyID), oh.Salt[:])
	if err != nil {
		return nil, nh, err
	}
	nh = record.SegmentHeader{Version: record.SegmentVersion, BaseOffset: oh.BaseOffset,
		KeyID: uint64(r.active)}
	if _, err := rand.Read(nh.Salt[:]); err != nil {
		return nil, nh, fmt.Errorf("segment salt: %w", err)
	}
	nc, err := crypto.NewSegmentCipher(r.opts.Keyring, r.active, nh.Salt[:])
	if err != nil {
		return nil, nh, err
	}

	_ = os.Remove(tmp)
	out, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, nh, fmt.Errorf("create re-sealed copy: %w", err)
	}
	defer out.Close() // after Sync: a second Close is harmless
	bw := bufio.NewWriterSize(out, 1<<20)
	if _, err := bw.Write(record.AppendSegmentHeader(nil, &nh)); err != nil {
		return nil, nh, err
	}
	h := sha256.New()
	aad := record.NewAAD(topic, partition)
	next, pos := oh.BaseOffset, int64(record.SegmentHeaderSize)
	var frame, nf []byte
	lastReport := int64(0)
	for {
		frame, err = readFrame(br, frame)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, nh, fmt.Errorf("position %d: %w; start the broker once so that "+
				"recovery cuts a torn tail, then run again", pos, err)
		}
		body := frame[record.FrameHeaderSize:]
		if off := record.Offset(body); off != next {
			return nil, nh, fmt.Errorf("position %d: frame holds offset %d, expected %d", pos, off, next)
		}
		pt, err := openBody(oc, aad, body)
		if err != nil {
			return nil, nh, fmt.Errorf("position %d, offset %d, key id %s: %w",
				pos, next, crypto.KeyID(oh.KeyID), err)
		}
		digestRecord(h, body, pt)
		if nf, err = sealBody(nf[:0], nc, aad, body, pt); err != nil {
			return nil, nh, err
		}
		clear(pt)
		if _, err := bw.Write(nf); err != nil {
			return nil, nh, fmt.Errorf("write re-sealed copy: %w", err)
		}
		if next == oh.BaseOffset {
			if err := bw.Flush(); err != nil {
				return nil, nh, fmt.Errorf("write re-sealed copy: %w", err)
			}
			if err := step(StepTempPartial); err != nil {
				return nil, nh, err
			}
		}
		next++
		pos += int64(len(frame))
		if pos-lastReport >= 8<<20 {
			lastReport = pos
			r.prog.Bytes = r.res.Bytes + pos
			r.report()
		}
	}
	if err := bw.Flush(); err != nil {
		return nil, nh, fmt.Errorf("write re-sealed copy: %w", err)
	}
	if next == oh.BaseOffset { // an empty segment still passes the step
		if err := step(StepTempPartial); err != nil {
			return nil, nh, err
		}
	}
	if err := step(StepTempWritten); err != nil {
		return nil, nh, err
	}
	if err := out.Sync(); err != nil {
		return nil, nh, fmt.Errorf("fsync re-sealed copy: %w", err)
	}
	if err := out.Close(); err != nil {
		return nil, nh, fmt.Errorf("close re-sealed copy: %w", err)
	}
	return h.Sum(nil), nh, nil
}

// readFrame reads one whole, CRC-checked frame into buf.
func readFrame(br *bufio.Reader, buf []byte) ([]byte, error) {
	var fh [record.FrameHeaderSize]byte
	n, err := io.ReadFull(br, fh[:])
	if n == 0 && errors.Is(err, io.EOF) {
		return nil, io.EOF
	}
	if err != nil {
		return nil, record.ErrShort
	}
	size := record.PeekSize(fh[:])
	if size == 0 {
		_, _, err := record.DecodeFrame(fh[:])
		return nil, err
	}
	if cap(buf) < size {
		buf = make([]byte, size)
	}
	buf = buf[:size]
	copy(buf, fh[:])
	if _, err := io.ReadFull(br, buf[record.FrameHeaderSize:]); err != nil {
		return nil, record.ErrShort
	}
	if _, _, err := record.DecodeFrame(buf); err != nil {
		return nil, err
	}
	return buf, nil
}

// openBody authenticates a frame body and returns a copy of its plaintext
// (klen|key|vlen|value[|hlen|headers]); the body is left as it was.
func openBody(c *crypto.SegmentCipher, aad *record.AAD, body []byte) ([]byte, error) {
	nonce := body[record.BodyHeaderSize-record.NonceSize : record.BodyHeaderSize]
	return c.Open(nil, nonce, body[record.BodyHeaderSize:], aad.For(body))
}

// sealBody appends the frame of body's record, with plaintext pt sealed
// by c under a fresh nonce, to dst. The clear header (version, flags,
// offset, timestamp, expiry) is kept, so the associated data is the same.
func sealBody(dst []byte, c *crypto.SegmentCipher, aad *record.AAD, body, pt []byte) ([]byte, error) {
	start := len(dst)
	dst = append(dst, make([]byte, record.FrameHeaderSize)...)
	dst = append(dst, body[:record.BodyHeaderSize]...)
	nb := dst[start+record.FrameHeaderSize:]
	nonce := nb[record.BodyHeaderSize-record.NonceSize : record.BodyHeaderSize]
	if c.Enabled() {
		if _, err := rand.Read(nonce); err != nil {
			return nil, fmt.Errorf("nonce: %w", err)
		}
	} else {
		clear(nonce)
	}
	dst = c.Seal(dst, nonce, pt, aad.For(nb))
	nb = dst[start+record.FrameHeaderSize:]
	binary.BigEndian.PutUint32(dst[start:], uint32(len(nb)))
	binary.BigEndian.PutUint32(dst[start+4:], record.Checksum(nb))
	return dst, nil
}

// digestRecord feeds what must survive re-sealing into h: the clear
// header fields bound as associated data and the plaintext.
func digestRecord(h hash.Hash, body, pt []byte) {
	h.Write(body[:record.BodyHeaderSize-record.NonceSize])
	var n [8]byte
	binary.BigEndian.PutUint64(n[:], uint64(len(pt)))
	h.Write(n[:])
	h.Write(pt)
}

// digestSegment opens every record of the segment at path (whose header
// must be want) and returns the digest digestRecord builds.
func digestSegment(path string, ring *crypto.Keyring, topic string, partition int32,
	want record.SegmentHeader) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	br := bufio.NewReaderSize(f, 1<<20)
	var hb [record.SegmentHeaderSize]byte
	if _, err := io.ReadFull(br, hb[:]); err != nil {
		return nil, fmt.Errorf("segment header: %w", err)
	}
	hdr, err := record.DecodeSegmentHeader(hb[:])
	if err != nil || hdr != want {
		return nil, fmt.Errorf("segment header not as written: %v", err)
	}
	c, err := crypto.NewSegmentCipher(ring, crypto.KeyID(hdr.KeyID), hdr.Salt[:])
	if err != nil {
		return nil, err
	}
	h := sha256.New()
	aad := record.NewAAD(topic, partition)
	var frame []byte
	for {
		frame, err = readFrame(br, frame)
		if errors.Is(err, io.EOF) {
			return h.Sum(nil), nil
		}
		if err != nil {
			return nil, err
		}
		body := frame[record.FrameHeaderSize:]
		pt, err := openBody(c, aad, body)
		if err != nil {
			return nil, err
		}
		digestRecord(h, body, pt)
	}
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("open dir for fsync: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("fsync dir: %w", err)
	}
	return nil
}
