package broker

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/flymq/flymq/internal/crypto"
	"github.com/flymq/flymq/internal/storage"
)

const (
	groupsDir     = "groups"
	groupLogFile  = "offsets.log"
	groupSnapFile = "offsets.snap"

	// A snapshot replaces the log once it grows past either bound, so
	// start-up replay stays short.
	snapshotLogBytes   = 4 << 20
	snapshotLogRecords = 50000
)

// groupKey identifies a consumer group: the same group id on two topics is
// two unrelated groups (core.md §6.13).
type groupKey struct{ topic, group string }

func (k groupKey) less(o groupKey) bool {
	if k.topic != o.topic {
		return k.topic < o.topic
	}
	return k.group < o.group
}

// group is one consumer group. Members are not persisted (core.md §6.6).
type group struct {
	offsets map[int32]uint64
	members map[string]struct{}
}

// groupStore holds every group and makes committed offsets durable in a
// sealed append-only log plus a sealed snapshot (see groupcodec.go).
//
// Lock order: syncMu before mu. mu guards the map, the file and the
// counters and is held only for in-memory work and one write(2); fsync
// runs under syncMu alone so concurrent commits share it.
type groupStore struct {
	dir  string
	kr   *crypto.Keyring
	acks storage.Acks
	log  *zap.Logger

	syncMu sync.Mutex
	synced atomic.Uint64 // highest seq known durable

	mu        sync.Mutex
	groups    map[groupKey]*group
	f         *os.File // nil once closed
	seq       uint64   // seq of the last record written
	size      int64    // bytes in the log
	sinceSnap int      // records in the log
	fenced    error    // set after a failed fsync: no more writes
	buf       []byte   // reused encode buffer, guarded by mu

	stop chan struct{}
	done chan struct{}
}

func openGroupStore(dataDir string, kr *crypto.Keyring, acks storage.Acks,
	syncEvery time.Duration, log *zap.Logger) (*groupStore, error) {
	s := &groupStore{
		dir:    filepath.Join(dataDir, groupsDir),
		kr:     kr,
		acks:   acks,
		log:    log,
		groups: make(map[groupKey]*group),
	}
	if err := os.MkdirAll(s.dir, 0o700); err != nil {
		return nil, fmt.Errorf("create groups dir: %w", err)
	}
	if err := s.load(); err != nil {
		return nil, err
	}
	if acks == storage.AcksLeader && syncEvery > 0 {
		s.stop = make(chan struct{})
		s.done = make(chan struct{})
		go s.syncLoop(syncEvery)
	}
	return s, nil
}

// load reads the snapshot, replays the log over it, cuts a torn tail and
// compacts the result into a fresh snapshot.
func (s *groupStore) load() error {
	var snapSeq uint64
	st := make(groupState)
	snapPath := filepath.Join(s.dir, groupSnapFile)
	blob, err := os.ReadFile(snapPath)
	switch {
	case err == nil:
		plain, err := crypto.OpenBlob(s.kr, GroupSnapPurpose, blob)
		if err != nil {
			return fmt.Errorf("open group snapshot: %w", err)
		}
		if snapSeq, st, err = decodeSnapshot(plain); err != nil {
			return err
		}
	case errors.Is(err, fs.ErrNotExist):
	default:
		return fmt.Errorf("read group snapshot: %w", err)
	}

	logPath := filepath.Join(s.dir, groupLogFile)
	f, err := os.OpenFile(logPath, os.O_RDWR|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("open group log: %w", err)
	}
	img, err := os.ReadFile(logPath)
	if err != nil {
		f.Close()
		return fmt.Errorf("read group log: %w", err)
	}
	scan, err := scanFrames(img)
	if err != nil {
		f.Close()
		return err
	}
	seq := snapSeq
	pos := int64(0)
	for _, b := range scan.blobs {
		plain, err := crypto.OpenBlob(s.kr, GroupLogPurpose, b)
		if err != nil {
			f.Close()
			return fmt.Errorf("group log at %d: %w", pos, err)
		}
		rec, err := decodeGroupRecord(plain)
		if err != nil {
			f.Close()
			return fmt.Errorf("group log at %d: %w", pos, err)
		}
		pos += int64(frameHeaderSize + len(b))
		if rec.seq <= snapSeq {
			continue // already in the snapshot
		}
		if rec.seq != seq+1 {
			f.Close()
			return fmt.Errorf("group log at %d: sequence %d after %d", pos, rec.seq, seq)
		}
		seq = rec.seq
		st.apply(&rec)
	}
	if scan.torn {
		s.log.Warn("cutting torn tail of group log",
			zap.String("file", logPath), zap.Int64("position", scan.good),
			zap.Int("bytes", len(img)-int(scan.good)))
		if err := f.Truncate(scan.good); err != nil {
			f.Close()
			return fmt.Errorf("truncate group log: %w", err)
		}
		if err := f.Sync(); err != nil {
			f.Close()
			return fmt.Errorf("sync group log: %w", err)
		}
	}
	for k, offs := range st {
		s.groups[k] = &group{offsets: offs, members: make(map[string]struct{})}
	}
	s.f = f
	s.seq = seq
	s.size = scan.good
	s.sinceSnap = len(scan.blobs)
	s.synced.Store(seq)
	if err := syncDir(s.dir); err != nil {
		return err
	}
	if len(scan.blobs) > 0 || scan.torn {
		return s.snapshot()
	}
	return nil
}

func (st groupState) apply(r *groupRecord) {
	k := groupKey{r.topic, r.group}
	switch r.op {
	case opCommit:
		offs := st[k]
		if offs == nil {
			offs = make(map[int32]uint64)
			st[k] = offs
		}
		offs[r.partition] = r.offset
	case opCreate:
		if st[k] == nil {
			st[k] = make(map[int32]uint64)
		}
	case opDelete:
		delete(st, k)
	}
}

// write appends rec (seq assigned here) and applies it in memory. It
// returns the record's seq for a later wait. Caller holds s.mu.
func (s *groupStore) writeLocked(rec *groupRecord) (uint64, error) {
	if s.f == nil {
		return 0, ErrClosed
	}
	if s.fenced != nil {
		return 0, s.fenced
	}
	rec.seq = s.seq + 1
	plain := rec.appendTo(s.buf[:0])
	blob, err := crypto.SealBlob(s.kr, GroupLogPurpose, plain)
	s.buf = plain
	if err != nil {
		return 0, fmt.Errorf("seal group record: %w", err)
	}
	frame := appendFrame(make([]byte, 0, frameHeaderSize+len(blob)), blob)
	if n, err := s.f.Write(frame); err != nil {
		// Cut a partial frame so the next write does not land after
		// garbage in the middle of the log.
		if n > 0 {
			if terr := s.f.Truncate(s.size); terr != nil {
				s.fenced = fmt.Errorf("%w: group log write failed and could not be cut back: %v",
					ErrFenced, terr)
			}
		}
		return 0, fmt.Errorf("write group log: %w", err)
	}
	s.seq = rec.seq
	s.size += int64(len(frame))
	s.sinceSnap++
	k := groupKey{rec.topic, rec.group}
	g := s.groups[k]
	switch rec.op {
	case opCommit, opCreate:
		if g == nil {
			g = &group{offsets: make(map[int32]uint64), members: make(map[string]struct{})}
			s.groups[k] = g
		}
		if rec.op == opCommit {
			g.offsets[rec.partition] = rec.offset
		}
	case opDelete:
		delete(s.groups, k)
	}
	return rec.seq, nil
}

// finish makes seq durable per the acks mode and compacts the log when it
// has grown. Called without locks held.
func (s *groupStore) finish(seq uint64) error {
	if s.acks == storage.AcksAll {
		if err := s.syncTo(seq); err != nil {
			return err
		}
	}
	s.mu.Lock()
	big := s.size >= snapshotLogBytes || s.sinceSnap >= snapshotLogRecords
	s.mu.Unlock()
	if big {
		if err := s.snapshot(); err != nil {
			// The record itself is safe in the log; compaction retries on
			// the next write.
			s.log.Warn("group snapshot failed", zap.Error(err))
		}
	}
	return nil
}

// syncTo returns once every record up to seq is on stable storage.
// Callers that arrive while another fsync runs wait for it and are usually
// covered by it, so concurrent commits share fsyncs.
func (s *groupStore) syncTo(seq uint64) error {
	if s.synced.Load() >= seq {
		return nil
	}
	s.syncMu.Lock()
	defer s.syncMu.Unlock()
	if s.synced.Load() >= seq {
		return nil
	}
	s.mu.Lock()
	f, target, fenced := s.f, s.seq, s.fenced
	s.mu.Unlock()
	if fenced != nil {
		return fenced
	}
	if f == nil {
		return ErrClosed
	}
	if err := f.Sync(); err != nil {
		return s.fence(err)
	}
	s.synced.Store(target)
	return nil
}

// fence stops all further writes: after a failed fsync the kernel may
// have dropped dirty pages, so nothing written since can be trusted.
func (s *groupStore) fence(cause error) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fenced == nil {
		s.fenced = fmt.Errorf("%w: sync group log: %v", ErrFenced, cause)
		s.log.Error("group log fenced after failed fsync", zap.Error(cause))
	}
	return s.fenced
}

// snapshot writes the whole state atomically and empties the log.
func (s *groupStore) snapshot() error {
	s.syncMu.Lock()
	defer s.syncMu.Unlock()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.f == nil {
		return ErrClosed
	}
	if s.fenced != nil {
		return s.fenced
	}
	st := make(groupState, len(s.groups))
	for k, g := range s.groups {
		st[k] = g.offsets
	}
	plain := encodeSnapshot(s.seq, st)
	blob, err := crypto.SealBlob(s.kr, GroupSnapPurpose, plain)
	clear(plain)
	if err != nil {
		return fmt.Errorf("seal group snapshot: %w", err)
	}
	if err := crypto.WriteFileAtomic(filepath.Join(s.dir, groupSnapFile), blob, 0o600); err != nil {
		return fmt.Errorf("write group snapshot: %w", err)
	}
	// The snapshot covers every record; records left in the log if the
	// cut below fails are skipped on replay by their seq.
	if err := s.f.Truncate(0); err != nil {
		return fmt.Errorf("truncate group log: %w", err)
	}
	if err := s.f.Sync(); err != nil {
		s.fenced = fmt.Errorf("%w: sync group log: %v", ErrFenced, err)
		return s.fenced
	}
	s.size = 0
	s.sinceSnap = 0
	s.synced.Store(s.seq)
	return nil
}

func (s *groupStore) syncLoop(every time.Duration) {
	defer close(s.done)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
			s.mu.Lock()
			seq := s.seq
			s.mu.Unlock()
			if err := s.syncTo(seq); err != nil && !errors.Is(err, ErrClosed) {
				s.log.Error("group log background sync", zap.Error(err))
			}
		}
	}
}

// close compacts the log into a snapshot (so the next start replays
// nothing) and closes the file.
func (s *groupStore) close() error {
	if s.stop != nil {
		close(s.stop)
		<-s.done
	}
	err := s.snapshot()
	if errors.Is(err, ErrClosed) {
		return nil
	}
	s.syncMu.Lock()
	defer s.syncMu.Unlock()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.f != nil {
		if serr := s.f.Sync(); serr != nil && err == nil && s.fenced == nil {
			err = fmt.Errorf("sync group log: %w", serr)
		}
		if cerr := s.f.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("close group log: %w", cerr)
		}
		s.f = nil
	}
	return err
}

// syncDir fsyncs a directory so entries created in it survive a crash.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("open dir for sync: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync dir: %w", err)
	}
	return nil
}
