package migrate

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/flymq/flymq/internal/auth"
	"github.com/flymq/flymq/internal/broker"
	"github.com/flymq/flymq/internal/crypto"
	"github.com/flymq/flymq/internal/storage"
)

// Errors.
var (
	// ErrTargetNotEmpty: a topic or the user store to migrate already
	// exists in our data dir (a second run, or the wrong dir).
	ErrTargetNotEmpty = errors.New("migrate: target data dir already holds it")
	// ErrSameDir: the old and the new data dir overlap.
	ErrSameDir = errors.New("migrate: the old and the new data dir must be separate")
)

// Options configure Migrate.
type Options struct {
	From    string // the old server's data dir, never written
	DataDir string // ours
	// Keyring seals everything written; nil writes unsealed (encryption
	// off), which the caller should only allow when configured so.
	Keyring      *crypto.Keyring
	SegmentBytes int64
	// UserFile and ACLFile are the old server's auth.user_file and
	// auth.acl_file; "" skips them.
	UserFile, ACLFile string
	Logger            *zap.Logger // nil = nop
	// Progress, if set, is called after each partition and every few
	// thousand records.
	Progress func(Progress)
}

// Progress of a migration.
type Progress struct {
	Partitions, TotalPartitions int
	Bytes, TotalBytes           int64 // of old .store files
	Records                     int64
	Partition                   string // topic/partition being copied
}

// Result sums up a migration.
type Result struct {
	Topics, Partitions int
	Records            int64 // intact records written
	Placeholders       int64 // empty records standing in for damaged ones
	Groups             int   // consumer offsets files migrated
	Commits            int   // committed offsets written
	Users, ACLs        bool  // user / ACL file imported
	Notes              []string
}

// Migrate copies the old data dir into ours. Everything is checked before
// anything is written: the old dir is read whole first (its notes say what
// was skipped), topic names are validated, and our data dir must not hold
// any of the old topics yet. Our data dir is locked for the run, so a
// broker cannot start on it meanwhile. If Migrate fails half way, remove
// the new data dir and run it again; the old dir is untouched either way.
func Migrate(ctx context.Context, opts Options) (*Result, error) {
	log := opts.Logger
	if log == nil {
		log = zap.NewNop()
	}
	if err := separate(opts.From, opts.DataDir); err != nil {
		return nil, err
	}
	src, err := ReadOldDir(opts.From)
	if err != nil {
		return nil, err
	}
	if len(src.Topics) == 0 && len(src.Groups) == 0 && opts.UserFile == "" && opts.ACLFile == "" {
		if _, old := LooksOld(opts.From); !old {
			return nil, fmt.Errorf("%w: %s holds no topic, consumer offsets or marker", ErrNotOldDir, opts.From)
		}
	}
	var bad []string
	for _, t := range src.Topics {
		if err := broker.ValidateTopicName(t.Name); err != nil {
			bad = append(bad, fmt.Sprintf("%q: %v", t.Name, err))
		}
	}
	if len(bad) > 0 {
		return nil, fmt.Errorf("migrate: topic names this broker refuses: %s", strings.Join(bad, "; "))
	}
	res := &Result{Notes: src.Notes}
	if src.Encrypted {
		res.Notes = append(res.Notes, "the old server had encryption_enabled, which sealed only "+
			oldMarker+"; its records were in the clear and are sealed now")
	}
	for _, n := range res.Notes {
		log.Warn("old data dir", zap.String("note", n))
	}

	if reason, old := LooksOld(opts.DataDir); old {
		return nil, fmt.Errorf("migrate: target %s is an old server's data dir too (%s)", opts.DataDir, reason)
	}
	lock, err := storage.LockDir(opts.DataDir)
	if err != nil {
		return nil, err
	}
	defer lock.Unlock()
	if err := checkAuthTarget(opts); err != nil {
		return nil, err
	}

	b, err := broker.Open(broker.Options{
		DataDir:      opts.DataDir,
		Keyring:      opts.Keyring,
		SegmentBytes: opts.SegmentBytes,
		// Nothing is acknowledged to anyone: Close fsyncs every partition
		// and the committed offsets before Migrate returns.
		Acks:          storage.AcksNone,
		MaxPartitions: 1 << 20,
		Logger:        log.Named("broker"),
	})
	if err != nil {
		return nil, fmt.Errorf("migrate: open data dir: %w", err)
	}
	closed := false
	defer func() {
		if !closed {
			_ = b.Close()
		}
	}()
	have := map[string]bool{}
	for _, name := range b.Topics() {
		have[name] = true
	}
	for _, t := range src.Topics {
		if have[t.Name] {
			return nil, fmt.Errorf("%w: topic %q exists in %s; migrate into a new, empty data dir",
				ErrTargetNotEmpty, t.Name, opts.DataDir)
		}
	}

	m := &mover{b: b, res: res, opts: opts, log: log, start: time.Now()}
	m.prog.TotalBytes = src.StoreBytes
	for _, t := range src.Topics {
		m.prog.TotalPartitions += len(t.Partitions)
	}
	for _, t := range src.Topics {
		if err := m.topic(ctx, t); err != nil {
			return res, err
		}
	}
	for _, g := range src.Groups {
		for p, off := range g.Offsets {
			if err := b.Commit(g.Topic, g.Group, p, off); err != nil {
				return res, fmt.Errorf("migrate: commit %s/%s partition %d: %w", g.Topic, g.Group, p, err)
			}
			res.Commits++
		}
		res.Groups++
	}
	closed = true
	if err := b.Close(); err != nil {
		return res, fmt.Errorf("migrate: close data dir: %w", err)
	}
	if err := importAuth(opts, res, log); err != nil {
		return res, err
	}
	log.Info("migration finished", zap.Int("topics", res.Topics), zap.Int("partitions", res.Partitions),
		zap.Int64("records", res.Records), zap.Int64("placeholders", res.Placeholders),
		zap.Int("groups", res.Groups), zap.Duration("took", time.Since(m.start)))
	return res, nil
}

// separate refuses overlapping dirs: writing inside the old dir would
// change it, and reading our own output as old data makes no sense.
func separate(from, to string) error {
	a, err := filepath.Abs(from)
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	b, err := filepath.Abs(to)
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	if ra, err := filepath.EvalSymlinks(a); err == nil {
		a = ra
	}
	if rb, err := filepath.EvalSymlinks(b); err == nil {
		b = rb
	}
	within := func(x, y string) bool { // x inside y, or equal
		rel, err := filepath.Rel(y, x)
		return err == nil && (rel == "." || !strings.HasPrefix(rel, ".."))
	}
	if within(a, b) || within(b, a) {
		return fmt.Errorf("%w: --from %s, data_dir %s", ErrSameDir, from, to)
	}
	return nil
}

type mover struct {
	b     *broker.Broker
	res   *Result
	opts  Options
	log   *zap.Logger
	prog  Progress
	start time.Time
}

func (m *mover) report() {
	if m.opts.Progress != nil {
		m.opts.Progress(m.prog)
	}
}

func (m *mover) topic(ctx context.Context, t *Topic) error {
	if err := m.b.CreateTopic(t.Name, int32(len(t.Partitions))); err != nil {
		return fmt.Errorf("migrate: create topic %q: %w", t.Name, err)
	}
	m.res.Topics++
	for _, p := range t.Partitions {
		m.prog.Partition = fmt.Sprintf("%s/%d", t.Name, p.ID)
		var copied int64
		err := p.Records(func(off uint64, key, value []byte, damaged bool) error {
			if damaged {
				key, value = nil, nil
			}
			r, err := m.b.Produce(t.Name, p.ID, key, value)
			if err != nil {
				return fmt.Errorf("migrate: %s/%d offset %d: %w", t.Name, p.ID, off, err)
			}
			if r.Offset != off {
				return fmt.Errorf("migrate: %s/%d: record %d landed at offset %d", t.Name, p.ID, off, r.Offset)
			}
			if damaged {
				m.res.Placeholders++
			} else {
				m.res.Records++
				copied += int64(oldFrameHeader + 8 + len(key) + len(value))
			}
			m.prog.Records++
			if m.prog.Records%4096 == 0 {
				if err := ctx.Err(); err != nil {
					return fmt.Errorf("migrate: interrupted: %w", err)
				}
				m.prog.Bytes += copied
				copied = 0
				m.report()
			}
			return nil
		})
		if err != nil {
			return err
		}
		m.res.Partitions++
		m.prog.Partitions++
		m.prog.Bytes += copied
		m.report()
	}
	return nil
}

// checkAuthTarget refuses to import old user or ACL files over an
// existing sealed store: the auth store would silently keep its own.
func checkAuthTarget(opts Options) error {
	for _, f := range []struct{ old, sealed string }{
		{opts.UserFile, "users.sealed"}, {opts.ACLFile, "acls.sealed"}} {
		if f.old == "" {
			continue
		}
		if _, err := os.Stat(f.old); err != nil {
			return fmt.Errorf("migrate: %w", err)
		}
		if _, err := os.Stat(filepath.Join(opts.DataDir, "auth", f.sealed)); err == nil {
			return fmt.Errorf("%w: auth/%s exists; %s was not imported", ErrTargetNotEmpty, f.sealed, f.old)
		}
	}
	return nil
}

// importAuth lets the auth store import the old plain files, as it would
// on the broker's first start, but now, so that they are sealed at once.
func importAuth(opts Options, res *Result, log *zap.Logger) error {
	if opts.UserFile == "" && opts.ACLFile == "" {
		return nil
	}
	_, err := auth.Open(auth.Options{
		Enabled:  true,
		UserFile: opts.UserFile,
		ACLFile:  opts.ACLFile,
		Dir:      filepath.Join(opts.DataDir, "auth"),
		Keyring:  opts.Keyring,
		Logger:   log.Named("auth"),
	})
	if err != nil {
		return fmt.Errorf("migrate: import users and ACLs: %w", err)
	}
	res.Users, res.ACLs = opts.UserFile != "", opts.ACLFile != ""
	return nil
}
