package broker

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"golang.org/x/text/unicode/norm"

	"github.com/flymq/flymq/internal/crypto"
	"github.com/flymq/flymq/internal/storage"
)

// Defaults applied by Open to zero Options fields.
const (
	DefaultMaxPartitions          = 1024
	DefaultRetentionCheckInterval = 5 * time.Minute
	DefaultSyncInterval           = time.Second
	DefaultMaxTopicLabels         = 100
	topicsDir                     = "topics"
)

// Options configures a Broker. Zero values get the defaults above.
type Options struct {
	// DataDir holds KEYCHECK, topics/, groups/ and, for the advanced ops,
	// schemas/, txn/ (commit intents) and delayed/; nothing is created
	// outside it.
	DataDir string
	// Keyring seals records, topic.json and committed offsets; nil turns
	// encryption off (same formats, key id 0).
	Keyring *crypto.Keyring

	// SegmentBytes, RetentionBytes and RetentionAge are per partition;
	// zero retention means unlimited.
	SegmentBytes, RetentionBytes int64
	RetentionAge                 time.Duration
	// RetentionCheckInterval is how often old segments are deleted.
	RetentionCheckInterval time.Duration

	// Acks is the durability of produces and commits (DESIGN.md §2).
	Acks storage.Acks
	// SyncInterval is the background fsync period for AcksLeader.
	SyncInterval time.Duration

	// AutoCreatePartitions is the partition count of topics created by
	// PRODUCE (1 in standalone mode).
	AutoCreatePartitions int32
	// MaxPartitions caps CREATE_TOPIC: a typo must not create a million
	// directories.
	MaxPartitions int32
	// MaxTopicLabels caps the number of topics (and of consumer groups)
	// that get their own metric series; the rest share the label "_other",
	// so a client creating many topics cannot blow up the metrics.
	MaxTopicLabels int

	// MaxDelay caps PRODUCE_DELAYED delays; 0 means DefaultMaxDelay.
	MaxDelay time.Duration
	// TxnTimeout aborts a transaction this long after BEGIN_TX; 0 means
	// DefaultTxnTimeout.
	TxnTimeout time.Duration
	// DLQSuffix names the dead-letter topic of topic T (T+suffix); empty
	// means DefaultDLQSuffix.
	DLQSuffix string

	FS         storage.FS            // nil = the OS
	Logger     *zap.Logger           // nil = nop
	Registerer prometheus.Registerer // nil = metrics not registered

	// commitStep, when set (tests only), runs before each write of a
	// transactional or delayed commit; an error stops the commit right
	// there, as a crash would.
	commitStep func(step string) error
}

// Broker owns every topic, partition and consumer group of one data dir.
// All methods are safe for concurrent use.
//
// Lock order: adminMu → topic.mu → Broker.mu, and topic.mu →
// groupStore.syncMu → groupStore.mu. Broker.mu guards only the map and is
// never held across I/O; partition work runs under the topic's read lock,
// which DeleteTopic and Close take exclusively, so a partition is never
// removed or closed under a running Read or Append.
type Broker struct {
	opts      Options
	log       *zap.Logger
	topicsDir string
	smetrics  *storage.Metrics
	sreg      *trackingRegisterer // storage metrics registrations
	metrics   *brokerMetrics
	regexps   *regexCache
	groups    *groupStore
	// recPool recycles the one-record slice handed to Append, which
	// escapes into the partition's group-commit queue; pooling keeps the
	// produce path free of broker-side allocations.
	recPool sync.Pool

	adminMu sync.Mutex // serialises topic create and delete

	mu     sync.RWMutex
	topics map[string]*topic
	closed bool

	ready  atomic.Bool
	fenced atomic.Bool

	stop chan struct{}
	done chan struct{}

	// adv holds the schema registry, transactions and delayed messages
	// (txn.go).
	adv *advanced
}

// topic is one topic's in-memory state.
type topic struct {
	name  string
	dir   string
	meta  topicMeta
	n     int32
	parts []*storage.Partition
	rr    atomic.Uint64 // round-robin counter (core.md §8), not persisted
	m     *topicMetrics

	mu   sync.RWMutex // R: any use of parts; W: delete, close
	gone bool         // guarded by mu
}

// Open opens or creates the broker in opts.DataDir: verifies the key
// against KEYCHECK before touching any data, recovers every partition of
// every topic and replays the committed offsets.
func Open(opts Options) (*Broker, error) {
	if opts.DataDir == "" {
		return nil, errors.New("broker: data dir not set")
	}
	if opts.Logger == nil {
		opts.Logger = zap.NewNop()
	}
	if opts.AutoCreatePartitions <= 0 {
		opts.AutoCreatePartitions = 1
	}
	if opts.MaxPartitions <= 0 {
		opts.MaxPartitions = DefaultMaxPartitions
	}
	if opts.RetentionCheckInterval <= 0 {
		opts.RetentionCheckInterval = DefaultRetentionCheckInterval
	}
	if opts.SyncInterval <= 0 {
		opts.SyncInterval = DefaultSyncInterval
	}
	if opts.MaxTopicLabels <= 0 {
		opts.MaxTopicLabels = DefaultMaxTopicLabels
	}
	b := &Broker{
		opts:      opts,
		log:       opts.Logger,
		topicsDir: filepath.Join(opts.DataDir, topicsDir),
		regexps:   newRegexCache(regexCacheSize),
		topics:    make(map[string]*topic),
		stop:      make(chan struct{}),
		done:      make(chan struct{}),
	}
	b.recPool.New = func() any { return new([1]storage.Record) }
	if err := os.MkdirAll(opts.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("broker: create data dir: %w", err)
	}
	if err := crypto.CheckDataDir(opts.DataDir, opts.Keyring); err != nil {
		return nil, fmt.Errorf("broker: %w", err)
	}
	if err := os.MkdirAll(b.topicsDir, 0o700); err != nil {
		return nil, fmt.Errorf("broker: create topics dir: %w", err)
	}
	var err error
	if b.metrics, err = newBrokerMetrics(opts.Registerer, opts.MaxTopicLabels, b); err != nil {
		return nil, fmt.Errorf("broker: %w", err)
	}
	if b.smetrics, b.sreg, err = newStorageMetrics(opts.Registerer); err != nil {
		b.metrics.unregister()
		return nil, fmt.Errorf("broker: %w", err)
	}
	if err := b.loadTopics(); err != nil {
		b.closeTopics()
		b.unregisterMetrics()
		return nil, fmt.Errorf("broker: %w", err)
	}
	b.groups, err = openGroupStore(opts.DataDir, opts.Keyring, opts.Acks, opts.SyncInterval,
		b.log.Named("groups"))
	if err != nil {
		b.closeTopics()
		b.unregisterMetrics()
		return nil, fmt.Errorf("broker: %w", err)
	}
	if err := b.openAdvanced(); err != nil {
		b.groups.close()
		b.closeTopics()
		b.unregisterMetrics()
		return nil, fmt.Errorf("broker: %w", err)
	}
	go b.retentionLoop()
	b.ready.Store(true)
	b.log.Info("broker open", zap.Int("topics", len(b.topics)),
		zap.Bool("encrypted", opts.Keyring != nil))
	return b, nil
}

// Close stops the retention loop, closes every partition (fsyncing it)
// and compacts the committed offsets. Calls after the first return nil.
func (b *Broker) Close() error {
	// First: the advanced goroutines may create topics (adminMu).
	b.closeAdvanced()
	b.adminMu.Lock() // no create or delete may run while partitions close
	defer b.adminMu.Unlock()
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return nil
	}
	b.closed = true
	b.mu.Unlock()
	b.ready.Store(false)
	close(b.stop)
	<-b.done
	err := b.closeTopics()
	if gerr := b.groups.close(); gerr != nil {
		err = errors.Join(err, gerr)
	}
	b.unregisterMetrics()
	return err
}

func (b *Broker) unregisterMetrics() {
	b.metrics.unregister()
	b.sreg.unregisterAll()
}

// closeTopics closes every partition; used by Close and failed Opens.
func (b *Broker) closeTopics() error {
	b.mu.Lock()
	ts := make([]*topic, 0, len(b.topics))
	for _, t := range b.topics {
		ts = append(ts, t)
	}
	b.mu.Unlock()
	var errs []error
	for _, t := range ts {
		t.mu.Lock()
		if !t.gone {
			t.gone = true
			for i, p := range t.parts {
				if p == nil {
					continue
				}
				if err := p.Close(); err != nil {
					errs = append(errs, fmt.Errorf("close topic %q partition %d: %w", t.name, i, err))
				}
			}
		}
		t.mu.Unlock()
	}
	return errors.Join(errs...)
}

// Ready reports whether Open finished, Close has not been called and no
// log has been fenced by a failed fsync.
func (b *Broker) Ready() bool {
	return b.ready.Load() && !b.fenced.Load()
}

// noteErr marks the broker unready when err says a log was fenced.
func (b *Broker) noteErr(err error) {
	if err != nil && errors.Is(err, storage.ErrFenced) {
		b.fenced.Store(true)
	}
}

// loadTopics recovers every topic under topics/. A directory without
// topic.json is the remains of an interrupted create (topic.json is
// written first) or delete (topic.json is removed first); neither was
// ever acknowledged, so it is removed.
func (b *Broker) loadTopics() error {
	ents, err := os.ReadDir(b.topicsDir)
	if err != nil {
		return fmt.Errorf("read topics dir: %w", err)
	}
	for _, e := range ents {
		if !e.IsDir() {
			continue // e.g. a temp file of an interrupted atomic write
		}
		dir := filepath.Join(b.topicsDir, e.Name())
		blob, err := os.ReadFile(filepath.Join(dir, topicMetaFile))
		if errors.Is(err, fs.ErrNotExist) {
			b.log.Warn("removing topic dir without metadata (interrupted create or delete)",
				zap.String("dir", e.Name()))
			if err := os.RemoveAll(dir); err != nil {
				return fmt.Errorf("remove incomplete topic dir %s: %w", e.Name(), err)
			}
			continue
		}
		if err != nil {
			return fmt.Errorf("read topic metadata in %s: %w", e.Name(), err)
		}
		plain, err := crypto.OpenBlob(b.opts.Keyring, TopicMetaPurpose(e.Name()), blob)
		if err != nil {
			return fmt.Errorf("open topic metadata in %s: %w", e.Name(), err)
		}
		meta, err := decodeTopicMeta(plain)
		if err != nil {
			return fmt.Errorf("topic dir %s: %w", e.Name(), err)
		}
		if _, dup := b.topics[meta.Name]; dup {
			return fmt.Errorf("topic %q is stored twice (dir %s)", meta.Name, e.Name())
		}
		t, err := b.openTopic(dir, meta)
		if err != nil {
			return err
		}
		b.topics[meta.Name] = t
	}
	return nil
}

// openTopic opens (recovering) every partition of a topic. On error the
// partitions already opened are closed again.
func (b *Broker) openTopic(dir string, meta topicMeta) (*topic, error) {
	t := &topic{name: meta.Name, dir: dir, meta: meta, n: meta.Partitions}
	t.parts = make([]*storage.Partition, meta.Partitions)
	for i := range t.parts {
		p, err := storage.Open(b.partitionOptions(t, int32(i)))
		if err != nil {
			for _, q := range t.parts[:i] {
				q.Close()
			}
			return nil, fmt.Errorf("open topic %q partition %d: %w", meta.Name, i, err)
		}
		t.parts[i] = p
	}
	t.m = b.metrics.forTopic(meta.Name)
	return t, nil
}

func (b *Broker) partitionOptions(t *topic, p int32) storage.Options {
	o := storage.Options{
		Dir:            filepath.Join(t.dir, strconv.Itoa(int(p))),
		Topic:          t.name,
		Partition:      p,
		SegmentBytes:   b.opts.SegmentBytes,
		RetentionBytes: b.opts.RetentionBytes,
		RetentionAge:   b.opts.RetentionAge,
		Acks:           b.opts.Acks,
		SyncInterval:   b.opts.SyncInterval,
		Keyring:        b.opts.Keyring,
		FS:             b.opts.FS,
		Logger:         b.log.With(zap.String("topic", t.name), zap.Int32("partition", p)),
		Metrics:        b.smetrics,
	}
	if t.meta.RetentionBytes > 0 {
		o.RetentionBytes = t.meta.RetentionBytes
	}
	if t.meta.RetentionMs > 0 {
		o.RetentionAge = time.Duration(t.meta.RetentionMs) * time.Millisecond
	}
	return o
}

// lookup returns the topic or a not-found / closed error.
func (b *Broker) lookup(name string) (*topic, error) {
	b.mu.RLock()
	t, closed := b.topics[name], b.closed
	b.mu.RUnlock()
	if closed {
		return nil, ErrClosed
	}
	if t == nil {
		return nil, topicNotFound(name)
	}
	return t, nil
}

// acquire returns the topic read-locked; the caller must t.mu.RUnlock().
// A topic deleted between lookup and lock reports not found, which is how
// a fetch racing a delete ends cleanly.
func (b *Broker) acquire(name string) (*topic, error) {
	t, err := b.lookup(name)
	if err != nil {
		return nil, err
	}
	t.mu.RLock()
	if t.gone {
		t.mu.RUnlock()
		if b.isClosed() {
			return nil, ErrClosed
		}
		return nil, topicNotFound(name)
	}
	return t, nil
}

func (b *Broker) isClosed() bool {
	b.mu.RLock()
	defer b.mu.RUnlock()
	return b.closed
}

// partition returns partition p of a read-locked topic.
func (t *topic) partition(p int32) (*storage.Partition, error) {
	if p < 0 || p >= t.n {
		return nil, &PartitionError{Partition: p}
	}
	return t.parts[p], nil
}

// CreateTopic creates a topic with partitions 0…n−1. An existing topic is
// left as it is (nil error, count not compared); 0 partitions means 1.
func (b *Broker) CreateTopic(name string, partitions int32) error {
	if partitions < 0 {
		return fmt.Errorf("%w: %d", ErrInvalidPartitionCount, partitions)
	}
	if partitions > b.opts.MaxPartitions {
		return fmt.Errorf("%w: %d (maximum %d)", ErrInvalidPartitionCount,
			partitions, b.opts.MaxPartitions)
	}
	if partitions == 0 {
		partitions = 1
	}
	_, err := b.createTopic(name, partitions)
	return err
}

// createTopic returns the topic named name, creating it if needed.
func (b *Broker) createTopic(name string, partitions int32) (*topic, error) {
	if t, err := b.lookup(name); err == nil || errors.Is(err, ErrClosed) {
		return t, err
	}
	if err := ValidateTopicName(name); err != nil {
		if !norm.NFC.IsNormalString(name) {
			if t, _ := b.lookup(norm.NFC.String(name)); t != nil {
				return nil, fmt.Errorf("%w; its NFC form is the existing topic %q", err, t.name)
			}
		}
		return nil, err
	}
	b.adminMu.Lock()
	defer b.adminMu.Unlock()
	if t, err := b.lookup(name); err == nil || errors.Is(err, ErrClosed) {
		return t, err
	}
	dir, err := b.makeTopicDir(name)
	if err != nil {
		return nil, err
	}
	meta := topicMeta{
		Version:    topicMetaVersion,
		Name:       name,
		Partitions: partitions,
		CreatedMs:  time.Now().UnixMilli(),
	}
	// topic.json first: a directory without it is known garbage at start.
	if err := writeTopicMeta(b.opts.Keyring, dir, meta); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("create topic %q: %w", name, err)
	}
	if err := syncDir(b.topicsDir); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("create topic %q: %w", name, err)
	}
	t, err := b.openTopic(dir, meta)
	if err != nil {
		os.Remove(filepath.Join(dir, topicMetaFile))
		os.RemoveAll(dir)
		return nil, fmt.Errorf("create topic: %w", err)
	}
	b.mu.Lock()
	b.topics[name] = t
	b.mu.Unlock()
	b.log.Info("topic created", zap.String("topic", name), zap.Int32("partitions", partitions))
	return t, nil
}

// makeTopicDir creates the directory of a new topic.
func (b *Broker) makeTopicDir(name string) (string, error) {
	for range 3 {
		var dn string
		if b.opts.Keyring != nil {
			var err error
			if dn, err = opaqueDirName(); err != nil {
				return "", err
			}
		} else {
			dn = readableDirName(name)
		}
		dir := filepath.Join(b.topicsDir, dn)
		err := os.Mkdir(dir, 0o700)
		if err == nil {
			return dir, nil
		}
		if !errors.Is(err, fs.ErrExist) {
			return "", fmt.Errorf("create topic dir: %w", err)
		}
		if b.opts.Keyring == nil {
			break // a readable name is deterministic: retrying cannot help
		}
	}
	return "", fmt.Errorf("create topic dir for %q: name already taken", name)
}

// DeleteTopic deletes a topic and all its data; a missing topic is not an
// error. It waits for in-flight reads and appends on the topic to finish;
// those that arrive later fail with ErrTopicNotFound. Consumer groups are
// kept (core.md §6.9).
func (b *Broker) DeleteTopic(name string) error {
	b.adminMu.Lock()
	defer b.adminMu.Unlock()
	t, err := b.lookup(name)
	if errors.Is(err, ErrTopicNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.gone {
		return nil
	}
	// Removing topic.json first makes the delete atomic across a crash:
	// what is left is removed at the next start.
	if err := os.Remove(filepath.Join(t.dir, topicMetaFile)); err != nil {
		return fmt.Errorf("delete topic %q: %w", name, err)
	}
	if err := syncDir(t.dir); err != nil {
		return fmt.Errorf("delete topic %q: %w", name, err)
	}
	t.gone = true
	b.mu.Lock()
	delete(b.topics, name)
	b.mu.Unlock()
	b.metrics.dropTopic(t.m)
	var errs []error
	for i, p := range t.parts {
		if err := p.Remove(); err != nil {
			errs = append(errs, fmt.Errorf("remove partition %d: %w", i, err))
		}
	}
	if err := os.RemoveAll(t.dir); err != nil {
		errs = append(errs, err)
	}
	if err := syncDir(b.topicsDir); err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		// The topic is gone for clients; leftovers go at the next start.
		b.log.Warn("topic deleted with leftovers", zap.String("topic", name), zap.Error(err))
	}
	b.log.Info("topic deleted", zap.String("topic", name))
	return nil
}

// Topics returns every topic name in ascending byte order, including
// internal "__" topics (LIST_TOPICS hides those itself).
func (b *Broker) Topics() []string {
	b.mu.RLock()
	names := make([]string, 0, len(b.topics))
	for n := range b.topics {
		names = append(names, n)
	}
	b.mu.RUnlock()
	sort.Strings(names)
	return names
}

// PartitionCount returns the number of partitions of a topic.
func (b *Broker) PartitionCount(name string) (int32, error) {
	t, err := b.lookup(name)
	if err != nil {
		return 0, err
	}
	return t.n, nil
}

// Offsets returns the lowest stored offset and the log-end offset (LEO,
// the offset the next message will get) of a partition.
func (b *Broker) Offsets(name string, partition int32) (lowest, next uint64, err error) {
	t, err := b.acquire(name)
	if err != nil {
		return 0, 0, err
	}
	defer t.mu.RUnlock()
	p, err := t.partition(partition)
	if err != nil {
		return 0, 0, err
	}
	return p.LowestOffset(), p.NextOffset(), nil
}

// retentionLoop deletes old segments every RetentionCheckInterval.
func (b *Broker) retentionLoop() {
	defer close(b.done)
	tk := time.NewTicker(b.opts.RetentionCheckInterval)
	defer tk.Stop()
	for {
		select {
		case <-b.stop:
			return
		case now := <-tk.C:
			b.EnforceRetention(now)
		}
	}
}

// EnforceRetention applies the retention limits to every partition now.
// The background loop calls it; it is exported for tests and admin use.
func (b *Broker) EnforceRetention(now time.Time) {
	b.mu.RLock()
	ts := make([]*topic, 0, len(b.topics))
	for _, t := range b.topics {
		ts = append(ts, t)
	}
	b.mu.RUnlock()
	for _, t := range ts {
		t.mu.RLock()
		if !t.gone {
			for i, p := range t.parts {
				if err := p.EnforceRetention(now); err != nil {
					b.noteErr(err)
					b.log.Error("retention", zap.String("topic", t.name), zap.Int("partition", i),
						zap.Error(err))
				}
			}
		}
		t.mu.RUnlock()
	}
}
