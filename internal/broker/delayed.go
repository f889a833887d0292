package broker

// Delayed delivery (security-and-advanced.md §10.1).
//
// Design: a delayed message is held in a sealed pending store —
// delayed/<id>.msg, written with an fsync before PRODUCE_DELAYED is
// answered — and appended to its topic when due, so it is invisible to
// every reader (FETCH, CONSUME, filters, OffsetForTime, lag) until then
// with no change to the read path, and it survives restarts. The
// alternative, appending at once with a visibility time and hiding it
// until due, would give every partition a hole readers must skip and
// would let offsets and lag run ahead of what can be read.
//
// Delivery goes through the same commit intent as transactions, carrying
// the pending id: the intent is written before the append and the pending
// file is removed before the intent, so a crash at any point delivers the
// message exactly once (the intent is replayed at Open, before pending
// files are loaded).
//
// Only ids and due times are kept in memory; values are read back from
// the file at delivery time.

import (
	"container/heap"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/flymq/flymq/internal/crypto"
)

const (
	delayedDir = "delayed"
	pendingExt = ".msg"
	// delayedRetry is how long a failed delivery waits before the next
	// attempt (upstream retries every second).
	delayedRetry = time.Second
)

// ErrDelayTooLong matches every *DelayError.
var ErrDelayTooLong = errors.New("delay exceeds maximum allowed delay")

// DelayError reports a delay above Options.MaxDelay with the exact wire
// text "delay D exceeds maximum allowed delay M" (Go duration syntax).
type DelayError struct{ Delay, Max time.Duration }

func (e *DelayError) Error() string {
	return fmt.Sprintf("delay %v exceeds maximum allowed delay %v", e.Delay, e.Max)
}

// Is makes errors.Is(err, ErrDelayTooLong) true.
func (e *DelayError) Is(target error) bool { return target == ErrDelayTooLong }

// pendingFile is the sealed plaintext of delayed/<id>.msg.
type pendingFile struct {
	Version   int    `json:"version"`
	Topic     string `json:"topic"`
	Value     []byte `json:"value"`
	DueMs     int64  `json:"due_ms"`
	CreatedMs int64  `json:"created_ms"`
}

type dueItem struct {
	id  string
	due int64 // unix ms
}

type dueHeap []dueItem

func (h dueHeap) Len() int           { return len(h) }
func (h dueHeap) Less(i, j int) bool { return h[i].due < h[j].due }
func (h dueHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *dueHeap) Push(x any)        { *h = append(*h, x.(dueItem)) }
func (h *dueHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

// delayedQueue is the in-memory schedule of pending messages.
type delayedQueue struct {
	dir  string
	mu   sync.Mutex
	heap dueHeap
	wake chan struct{} // buffered(1): the head may have changed
}

// DelayedPurpose is the sealed-blob purpose of the pending delayed message
// stored in file (a name in the delayed directory), binding the blob to its
// name. internal/keys re-seals pending messages with it: changing it
// strands every message still waiting.
func DelayedPurpose(file string) string { return "flymq/delayed/v1/" + file }

// openDelayed loads the pending store. Intents have been replayed
// already, so every file here is undelivered.
func (b *Broker) openDelayed() (*delayedQueue, error) {
	q := &delayedQueue{dir: filepath.Join(b.opts.DataDir, delayedDir), wake: make(chan struct{}, 1)}
	if err := os.MkdirAll(q.dir, 0o700); err != nil {
		return nil, fmt.Errorf("create delayed dir: %w", err)
	}
	ents, err := os.ReadDir(q.dir)
	if err != nil {
		return nil, fmt.Errorf("read delayed dir: %w", err)
	}
	for _, e := range ents {
		if e.IsDir() || !strings.HasSuffix(e.Name(), pendingExt) {
			continue
		}
		id := strings.TrimSuffix(e.Name(), pendingExt)
		pf, err := b.readPending(q.dir, id)
		if err != nil {
			return nil, err
		}
		q.heap = append(q.heap, dueItem{id: id, due: pf.DueMs})
	}
	heap.Init(&q.heap)
	if len(q.heap) > 0 {
		b.log.Info("delayed messages pending", zap.Int("count", len(q.heap)))
	}
	return q, nil
}

func (b *Broker) readPending(dir, id string) (pendingFile, error) {
	name := id + pendingExt
	blob, err := os.ReadFile(filepath.Join(dir, name))
	if err != nil {
		return pendingFile{}, fmt.Errorf("read delayed message: %w", err)
	}
	plain, err := crypto.OpenBlob(b.opts.Keyring, DelayedPurpose(name), blob)
	if err != nil {
		return pendingFile{}, fmt.Errorf("open delayed message %s: %w", name, err)
	}
	var pf pendingFile
	err = json.Unmarshal(plain, &pf)
	clear(plain)
	if err != nil {
		return pendingFile{}, fmt.Errorf("decode delayed message %s: %w", name, err)
	}
	return pf, nil
}

// ProduceDelayed schedules value for topic after delay (negative means
// now) and returns once the message is durable in the pending store. The
// message is appended (no key, partition per core §8) when due.
func (b *Broker) ProduceDelayed(topic string, value []byte, delay time.Duration) error {
	if delay > b.opts.MaxDelay {
		return &DelayError{Delay: delay, Max: b.opts.MaxDelay}
	}
	if err := ValidateTopicName(topic); err != nil {
		return err
	}
	if b.isClosed() {
		return ErrClosed
	}
	delay = max(delay, 0)
	var rnd [16]byte
	_, _ = rand.Read(rnd[:])
	id := hex.EncodeToString(rnd[:])
	now := time.Now()
	pf := pendingFile{Version: 1, Topic: topic, Value: value, DueMs: now.Add(delay).UnixMilli(),
		CreatedMs: now.UnixMilli()}
	plain, err := json.Marshal(&pf)
	if err != nil {
		return fmt.Errorf("encode delayed message: %w", err)
	}
	q := b.adv.delayed
	name := id + pendingExt
	blob, err := crypto.SealBlob(b.opts.Keyring, DelayedPurpose(name), plain)
	clear(plain)
	if err != nil {
		return fmt.Errorf("seal delayed message: %w", err)
	}
	if err := crypto.WriteFileAtomic(filepath.Join(q.dir, name), blob, 0o600); err != nil {
		return fmt.Errorf("write delayed message: %w", err)
	}
	q.push(dueItem{id: id, due: pf.DueMs})
	return nil
}

// PendingDelayed returns the number of delayed messages not yet due.
func (b *Broker) PendingDelayed() int {
	q := b.adv.delayed
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.heap)
}

func (q *delayedQueue) push(it dueItem) {
	q.mu.Lock()
	heap.Push(&q.heap, it)
	q.mu.Unlock()
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

// removePending deletes a delivered message's file.
func (b *Broker) removePending(id string) error {
	q := b.adv.delayed
	dir := filepath.Join(b.opts.DataDir, delayedDir)
	if q != nil {
		dir = q.dir
	}
	err := os.Remove(filepath.Join(dir, id+pendingExt))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("remove delayed message: %w", err)
	}
	return syncDir(dir)
}

// delayedLoop delivers messages as they fall due.
func (b *Broker) delayedLoop() {
	a := b.adv
	defer a.wg.Done()
	q := a.delayed
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		now := time.Now().UnixMilli()
		var due []dueItem
		q.mu.Lock()
		for len(q.heap) > 0 && q.heap[0].due <= now {
			due = append(due, heap.Pop(&q.heap).(dueItem))
		}
		wait := time.Hour
		if len(q.heap) > 0 {
			wait = time.Duration(q.heap[0].due-now) * time.Millisecond
		}
		q.mu.Unlock()
		for _, it := range due {
			select {
			case <-a.stop:
				return
			default:
			}
			if err := b.deliver(it.id); err != nil {
				b.log.Warn("delayed delivery failed; retrying", zap.String("id", it.id), zap.Error(err))
				q.mu.Lock()
				heap.Push(&q.heap, dueItem{id: it.id, due: time.Now().Add(delayedRetry).UnixMilli()})
				q.mu.Unlock()
				wait = min(wait, delayedRetry)
			}
		}
		if len(due) > 0 {
			continue // recompute: more may have fallen due meanwhile
		}
		timer.Reset(wait)
		select {
		case <-a.stop:
			return
		case <-q.wake:
			timer.Stop() // Go ≥ 1.23: no stale tick survives Stop/Reset
		case <-timer.C:
		}
	}
}

// deliver appends one pending message through a commit intent.
func (b *Broker) deliver(id string) error {
	pf, err := b.readPending(b.adv.delayed.dir, id)
	if errors.Is(err, fs.ErrNotExist) {
		return nil // delivered by an intent replay already
	}
	if err != nil {
		return err
	}
	_, err = b.commitRecords("delayed-"+id, id, []pendingRecord{{Topic: pf.Topic, Value: pf.Value}})
	return err
}
