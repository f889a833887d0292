package broker

// Transactions (security-and-advanced.md §11) and the crash-atomic commit
// that transactions and delayed messages share.
//
// A transaction buffers its messages in memory; nothing reaches a
// partition before COMMIT_TX, so consumers cannot see uncommitted data and
// an abort (or a timeout, or a restart) only drops the buffer.
//
// Commit is all-or-nothing across topics and partitions, also across a
// crash, through a commit intent:
//
//  1. every topic involved is locked exclusively (sorted by name, so two
//     commits cannot deadlock), which holds off other appends to those
//     partitions for the duration of the commit;
//  2. partitions are chosen (core.md §8: no key) and each partition's log
//     end offset (LEO) is read;
//  3. the intent — every record with its partition, timestamp and the
//     LEO it will land at — is sealed and written with an fsync to
//     txn/<id>.intent;
//  4. each partition's records are appended with one storage Append (one
//     request lives in one segment, so it lands whole or not at all);
//  5. the partitions are synced and the intent is removed.
//
// At Open, an intent that is still there is replayed before anything else
// can append: for each partition the records found at the recorded LEO are
// compared with the intent's (value, timestamp, expiry); the ones that
// are missing are appended. A crash before step 3 leaves nothing; after
// it, replay makes everything visible: all or none.

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/flymq/flymq/internal/crypto"
	"github.com/flymq/flymq/internal/schema"
	"github.com/flymq/flymq/internal/storage"
)

// Defaults of the advanced features (security-and-advanced.md §15).
const (
	DefaultMaxDelay   = 24 * time.Hour
	DefaultTxnTimeout = 60 * time.Second
	DefaultDLQSuffix  = ".dlq"

	// MaxTxnBytes caps the buffered payload of one transaction: the buffer
	// lives in memory until commit.
	MaxTxnBytes = 64 << 20
	// MaxOpenTxns caps concurrently open transactions.
	MaxOpenTxns = 10_000

	txnDir     = "txn"
	schemasDir = "schemas"
	intentExt  = ".intent"
	// finishedTxnTTL keeps committed/aborted transactions answerable
	// ("transaction cannot be committed: committed") for a while.
	finishedTxnTTL = 10 * time.Minute
)

// Transaction states, as the wire texts name them.
const (
	txnActive    = "active"
	txnPrepared  = "prepared" // commit in progress, or failed after its intent
	txnCommitted = "committed"
	txnAborted   = "aborted"
)

// Transaction errors. Each *TxnError's text is the exact wire text.
var (
	ErrTxnNotFound      = errors.New("transaction not found")
	ErrTxnNotActive     = errors.New("transaction is not active")
	ErrTxnNotCommitable = errors.New("transaction cannot be committed")
	ErrTxnCommitted     = errors.New("cannot abort committed transaction")
	ErrTxnCommitFailed  = errors.New("failed to produce message")
	// ErrTxnNotOwner: the transaction was begun by another user (§11.5);
	// the server answers "unauthorized".
	ErrTxnNotOwner = errors.New("transaction belongs to another user")
	// ErrTxnLimit: too many open transactions or too much buffered data.
	ErrTxnLimit = errors.New("transaction limit reached")
)

// TxnError carries the wire text of a transaction failure.
type TxnError struct {
	Text string
	Kind error
}

func (e *TxnError) Error() string        { return e.Text }
func (e *TxnError) Is(target error) bool { return target == e.Kind }

func txnErr(kind error, format string, args ...any) error {
	return &TxnError{Text: fmt.Sprintf(format, args...), Kind: kind}
}

// advanced is the broker state behind §§8–11.
type advanced struct {
	schemas   *schema.Registry
	intentDir string

	mu   sync.Mutex
	txns map[string]*txn

	delayed *delayedQueue

	closeOnce sync.Once
	stop      chan struct{}
	wg        sync.WaitGroup
}

type txn struct {
	id, owner string
	state     string
	msgs      []pendingRecord
	bytes     int
	deadline  time.Time
	finished  time.Time
}

// pendingRecord is a message waiting for a commit.
type pendingRecord struct {
	Topic  string
	Value  []byte
	Expiry int64
}

// openAdvanced opens the schema registry, replays unfinished commit
// intents and starts the delayed-delivery and transaction sweepers.
func (b *Broker) openAdvanced() error {
	if b.opts.MaxDelay <= 0 {
		b.opts.MaxDelay = DefaultMaxDelay
	}
	if b.opts.TxnTimeout <= 0 {
		b.opts.TxnTimeout = DefaultTxnTimeout
	}
	if b.opts.DLQSuffix == "" {
		b.opts.DLQSuffix = DefaultDLQSuffix
	}
	a := &advanced{
		intentDir: filepath.Join(b.opts.DataDir, txnDir),
		txns:      map[string]*txn{},
		stop:      make(chan struct{}),
	}
	var err error
	a.schemas, err = schema.Open(schema.Options{Dir: filepath.Join(b.opts.DataDir, schemasDir),
		Keyring: b.opts.Keyring, Logger: b.log.Named("schema")})
	if err != nil {
		return err
	}
	if err := os.MkdirAll(a.intentDir, 0o700); err != nil {
		return fmt.Errorf("create txn dir: %w", err)
	}
	b.adv = a
	if err := b.replayIntents(); err != nil {
		return err
	}
	if a.delayed, err = b.openDelayed(); err != nil {
		return err
	}
	a.wg.Add(2)
	go b.txnSweeper()
	go b.delayedLoop()
	return nil
}

// closeAdvanced stops the background goroutines; open transactions are
// dropped (they abort on restart, §11.5).
func (b *Broker) closeAdvanced() {
	a := b.adv
	if a == nil {
		return
	}
	a.closeOnce.Do(func() {
		close(a.stop)
		a.wg.Wait()
	})
}

// Schemas returns the schema registry.
func (b *Broker) Schemas() *schema.Registry { return b.adv.schemas }

// BeginTx starts a transaction owned by owner (the session's user, ""
// when authentication is off) and returns its unguessable id.
func (b *Broker) BeginTx(owner string) (string, error) {
	var rnd [16]byte
	_, _ = rand.Read(rnd[:]) // crypto/rand never fails (Go 1.24+)
	id := "txn-" + hex.EncodeToString(rnd[:])
	a := b.adv
	a.mu.Lock()
	defer a.mu.Unlock()
	open := 0
	for _, t := range a.txns {
		if t.state == txnActive {
			open++
		}
	}
	if open >= MaxOpenTxns {
		return "", txnErr(ErrTxnLimit, "too many open transactions (%d)", MaxOpenTxns)
	}
	a.txns[id] = &txn{id: id, owner: owner, state: txnActive,
		deadline: time.Now().Add(b.opts.TxnTimeout)}
	return id, nil
}

// lookupTxn returns the transaction for owner, expiring it first if its
// timeout passed. a.mu must be held.
func (a *advanced) lookupTxn(id, owner string, now time.Time) (*txn, error) {
	t := a.txns[id]
	if t == nil {
		return nil, txnErr(ErrTxnNotFound, "transaction not found: %s", id)
	}
	if t.owner != owner {
		return nil, ErrTxnNotOwner
	}
	if t.state == txnActive && now.After(t.deadline) {
		t.finish(txnAborted, now)
	}
	return t, nil
}

func (t *txn) finish(state string, now time.Time) {
	t.state, t.msgs, t.bytes, t.finished = state, nil, 0, now
}

// ProduceTx buffers value for topic in transaction id. Nothing is
// written before CommitTx.
func (b *Broker) ProduceTx(owner, id, topic string, value []byte) error {
	if err := ValidateTopicName(topic); err != nil {
		return err
	}
	a := b.adv
	a.mu.Lock()
	defer a.mu.Unlock()
	t, err := a.lookupTxn(id, owner, time.Now())
	if err != nil {
		return err
	}
	if t.state != txnActive {
		return txnErr(ErrTxnNotActive, "transaction is not active: %s", t.state)
	}
	if t.bytes+len(value) > MaxTxnBytes {
		return txnErr(ErrTxnLimit, "transaction too large: more than %d bytes buffered", MaxTxnBytes)
	}
	t.msgs = append(t.msgs, pendingRecord{Topic: topic, Value: value})
	t.bytes += len(value)
	return nil
}

// CommitTx appends every buffered message atomically (see the file
// comment) and marks the transaction committed.
func (b *Broker) CommitTx(owner, id string) error {
	a := b.adv
	a.mu.Lock()
	t, err := a.lookupTxn(id, owner, time.Now())
	if err != nil {
		a.mu.Unlock()
		return err
	}
	if t.state != txnActive {
		a.mu.Unlock()
		return txnErr(ErrTxnNotCommitable, "transaction cannot be committed: %s", t.state)
	}
	t.state = txnPrepared
	msgs := t.msgs
	a.mu.Unlock()

	durable, err := b.commitRecords(id, "", msgs)
	a.mu.Lock()
	defer a.mu.Unlock()
	if err != nil {
		if !durable {
			t.finish(txnAborted, time.Now())
		}
		// Past the durable intent the outcome is "committed at the next
		// start": the state stays prepared.
		return txnErr(ErrTxnCommitFailed, "failed to produce message: %v", err)
	}
	t.finish(txnCommitted, time.Now())
	return nil
}

// AbortTx discards the buffer. Aborting an aborted (or expired)
// transaction succeeds (§11.4).
func (b *Broker) AbortTx(owner, id string) error {
	a := b.adv
	a.mu.Lock()
	defer a.mu.Unlock()
	t, err := a.lookupTxn(id, owner, time.Now())
	if err != nil {
		return err
	}
	switch t.state {
	case txnCommitted:
		return txnErr(ErrTxnCommitted, "cannot abort committed transaction")
	case txnPrepared:
		return txnErr(ErrTxnNotActive, "transaction is not active: %s", t.state)
	case txnActive:
		t.finish(txnAborted, time.Now())
	}
	return nil
}

// txnSweeper aborts expired transactions and forgets finished ones.
func (b *Broker) txnSweeper() {
	a := b.adv
	defer a.wg.Done()
	period := min(10*time.Second, b.opts.TxnTimeout)
	tk := time.NewTicker(period)
	defer tk.Stop()
	for {
		select {
		case <-a.stop:
			return
		case now := <-tk.C:
			a.mu.Lock()
			for id, t := range a.txns {
				if t.state == txnActive && now.After(t.deadline) {
					t.finish(txnAborted, now)
				} else if t.state != txnActive && t.state != txnPrepared && now.Sub(t.finished) > finishedTxnTTL {
					delete(a.txns, id)
				}
			}
			a.mu.Unlock()
		}
	}
}

// intent is the sealed plaintext of txn/<id>.intent.
type intent struct {
	Version int `json:"version"`
	// DelayedID names the pending delayed message this commit delivers;
	// its file is removed before the intent.
	DelayedID string        `json:"delayed_id,omitempty"`
	Batches   []intentBatch `json:"batches"`
}

type intentBatch struct {
	Topic     string         `json:"topic"`
	Partition int32          `json:"partition"`
	LEO       uint64         `json:"leo"`
	Records   []intentRecord `json:"records"`
}

type intentRecord struct {
	Value     []byte `json:"v"`
	Timestamp int64  `json:"ts"`
	Expiry    int64  `json:"exp,omitempty"`
}

// TxnIntentPurpose is the sealed-blob purpose of the transaction commit
// intent stored in file (a name in the txn directory), binding the blob to
// its name. internal/keys re-seals intents with it: changing it strands
// the intents of commits not yet applied.
func TxnIntentPurpose(file string) string { return "flymq/txn-intent/v1/" + file }

// step runs the test failpoint, if any.
func (b *Broker) step(name string) error {
	if b.opts.commitStep == nil {
		return nil
	}
	return b.opts.commitStep(name)
}

// commitRecords appends msgs atomically under the intent name. durable
// reports whether the intent was written, after which a restart completes
// the commit whatever happens here.
func (b *Broker) commitRecords(name, delayedID string, msgs []pendingRecord) (durable bool, err error) {
	if len(msgs) == 0 {
		if delayedID != "" {
			return false, b.removePending(delayedID)
		}
		return false, nil
	}
	names := make([]string, 0, 4)
	for _, m := range msgs {
		if !containsString(names, m.Topic) {
			names = append(names, m.Topic)
		}
	}
	sort.Strings(names)
	for attempt := 0; ; attempt++ {
		topics := make(map[string]*topic, len(names))
		for _, n := range names {
			t, err := b.createTopic(n, b.opts.AutoCreatePartitions)
			if err != nil {
				return false, err
			}
			topics[n] = t
		}
		locked, gone := b.lockTopics(names, topics)
		if !gone {
			defer unlockTopics(locked)
			return b.commitLocked(name, delayedID, msgs, topics)
		}
		unlockTopics(locked)
		if b.isClosed() {
			return false, ErrClosed
		}
		if attempt == 2 {
			return false, topicNotFound(names[0])
		}
	}
}

// lockTopics write-locks the topics in name order; gone reports a topic
// deleted meanwhile (the caller unlocks and retries).
func (b *Broker) lockTopics(names []string, topics map[string]*topic) (locked []*topic, gone bool) {
	for _, n := range names {
		t := topics[n]
		t.mu.Lock()
		locked = append(locked, t)
		if t.gone {
			return locked, true
		}
	}
	return locked, false
}

func unlockTopics(ts []*topic) {
	for _, t := range ts {
		t.mu.Unlock()
	}
}

func containsString(l []string, s string) bool {
	for _, x := range l {
		if x == s {
			return true
		}
	}
	return false
}

// commitLocked runs steps 2–5 of the file comment; every topic of msgs
// is write-locked.
func (b *Broker) commitLocked(name, delayedID string, msgs []pendingRecord,
	topics map[string]*topic) (bool, error) {
	now := time.Now().UnixMilli()
	in := intent{Version: 1, DelayedID: delayedID}
	index := map[[2]any]int{}
	for _, m := range msgs {
		t := topics[m.Topic]
		p, err := t.choose(-1, nil)
		if err != nil {
			return false, err
		}
		k := [2]any{m.Topic, p}
		i, ok := index[k]
		if !ok {
			i = len(in.Batches)
			index[k] = i
			in.Batches = append(in.Batches, intentBatch{Topic: m.Topic, Partition: p,
				LEO: t.parts[p].NextOffset()})
		}
		in.Batches[i].Records = append(in.Batches[i].Records,
			intentRecord{Value: m.Value, Timestamp: now, Expiry: m.Expiry})
	}
	file := filepath.Join(b.adv.intentDir, name+intentExt)
	if _, err := os.Stat(file); err == nil {
		// An earlier attempt left its intent: only the replay at the next
		// start may decide what of it landed.
		return true, errors.New("an earlier attempt of this commit is pending until restart")
	}
	if err := b.step("intent"); err != nil {
		return false, err
	}
	if err := b.writeIntent(file, &in); err != nil {
		return false, err
	}
	err := b.applyIntent(file, &in, topics, true)
	if err != nil && !isStepErr(err) {
		// One in-place retry: replay is idempotent and content-checked.
		b.log.Warn("commit failed after its intent; retrying", zap.String("intent", name), zap.Error(err))
		err = b.applyIntent(file, &in, topics, false)
	}
	return true, err
}

// stepError marks an error from the test failpoint, which must stop the
// commit as a crash would (no retry).
type stepError struct{ err error }

func (e *stepError) Error() string { return e.err.Error() }
func (e *stepError) Unwrap() error { return e.err }

func isStepErr(err error) bool {
	var se *stepError
	return errors.As(err, &se)
}

func (b *Broker) writeIntent(file string, in *intent) error {
	plain, err := json.Marshal(in)
	if err != nil {
		return fmt.Errorf("encode commit intent: %w", err)
	}
	blob, err := crypto.SealBlob(b.opts.Keyring, TxnIntentPurpose(filepath.Base(file)), plain)
	clear(plain)
	if err != nil {
		return fmt.Errorf("seal commit intent: %w", err)
	}
	if err := crypto.WriteFileAtomic(file, blob, 0o600); err != nil {
		return fmt.Errorf("write commit intent: %w", err)
	}
	return nil
}

// applyIntent appends what of in has not landed yet, syncs, and removes
// the delayed message's pending file and then the intent. The topics are
// write-locked (or the broker is opening). live runs the failpoints.
func (b *Broker) applyIntent(file string, in *intent, topics map[string]*topic, live bool) error {
	step := func(s string) error {
		if !live {
			return nil
		}
		if err := b.step(s); err != nil {
			return &stepError{err}
		}
		return nil
	}
	for _, bt := range in.Batches {
		t := topics[bt.Topic]
		if bt.Partition < 0 || bt.Partition >= t.n {
			return fmt.Errorf("intent: topic %s has no partition %d", bt.Topic, bt.Partition)
		}
		p := t.parts[bt.Partition]
		landed := 0
		if !live {
			var err error
			if landed, err = countLanded(p, bt); err != nil {
				return err
			}
		}
		if err := step(fmt.Sprintf("append %s/%d", bt.Topic, bt.Partition)); err != nil {
			return err
		}
		if landed == len(bt.Records) {
			continue
		}
		recs := make([]storage.Record, 0, len(bt.Records)-landed)
		for _, r := range bt.Records[landed:] {
			recs = append(recs, storage.Record{Value: r.Value, Timestamp: r.Timestamp, Expiry: r.Expiry})
		}
		if _, err := p.Append(recs); err != nil {
			b.noteErr(err)
			return wrapStorage(t, bt.Partition, err)
		}
		t.m.produced.Add(float64(len(recs)))
	}
	if b.opts.Acks != storage.AcksAll {
		if err := step("sync"); err != nil {
			return err
		}
		for _, bt := range in.Batches {
			if err := topics[bt.Topic].parts[bt.Partition].Sync(); err != nil {
				b.noteErr(err)
				return fmt.Errorf("sync %s/%d: %w", bt.Topic, bt.Partition, err)
			}
		}
	}
	if in.DelayedID != "" {
		if err := step("pending"); err != nil {
			return err
		}
		if err := b.removePending(in.DelayedID); err != nil {
			return err
		}
	}
	if err := step("done"); err != nil {
		return err
	}
	if err := os.Remove(file); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("remove commit intent: %w", err)
	}
	return syncDir(filepath.Dir(file))
}

// countLanded returns how many of bt's records are already stored at
// bt.LEO onwards. Only a prefix can be there: one Append lands whole, and
// a torn tail is cut back by recovery.
func countLanded(p *storage.Partition, bt intentBatch) (int, error) {
	if bt.LEO < p.LowestOffset() {
		return len(bt.Records), nil // retention already removed them
	}
	n := 0
	for n < len(bt.Records) {
		msgs, err := p.Read(bt.LEO+uint64(n), len(bt.Records)-n, 0)
		if errors.Is(err, storage.ErrOffsetOutOfRange) {
			return n, nil
		}
		if err != nil {
			return 0, err
		}
		if len(msgs) == 0 {
			return n, nil
		}
		for i := range msgs {
			m, r := &msgs[i], &bt.Records[n]
			if len(m.Key) != 0 || m.Timestamp != r.Timestamp || m.Expiry != r.Expiry || !bytes.Equal(m.Value, r.Value) {
				return n, nil
			}
			if n++; n == len(bt.Records) {
				break
			}
		}
	}
	return n, nil
}

// replayIntents completes every commit intent left by a crash. It runs in
// Open, before anything else can append.
func (b *Broker) replayIntents() error {
	dir := b.adv.intentDir
	ents, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("read txn dir: %w", err)
	}
	for _, e := range ents {
		if e.IsDir() || !strings.HasSuffix(e.Name(), intentExt) {
			continue
		}
		file := filepath.Join(dir, e.Name())
		blob, err := os.ReadFile(file)
		if err != nil {
			return fmt.Errorf("read commit intent: %w", err)
		}
		plain, err := crypto.OpenBlob(b.opts.Keyring, TxnIntentPurpose(e.Name()), blob)
		if err != nil {
			return fmt.Errorf("open commit intent %s: %w", e.Name(), err)
		}
		var in intent
		err = json.Unmarshal(plain, &in)
		clear(plain)
		if err != nil {
			return fmt.Errorf("decode commit intent %s: %w", e.Name(), err)
		}
		topics := map[string]*topic{}
		for _, bt := range in.Batches {
			if topics[bt.Topic] != nil {
				continue
			}
			t, err := b.createTopic(bt.Topic, max(b.opts.AutoCreatePartitions, bt.Partition+1))
			if err != nil {
				return fmt.Errorf("commit intent %s: %w", e.Name(), err)
			}
			topics[bt.Topic] = t
		}
		if err := b.applyIntent(file, &in, topics, false); err != nil {
			return fmt.Errorf("replay commit intent %s: %w", e.Name(), err)
		}
		b.log.Info("completed an interrupted commit", zap.String("intent", e.Name()))
	}
	return nil
}
