package broker

import (
	"errors"
	"fmt"
	"time"

	"github.com/flymq/flymq/internal/storage"
)

// ProduceResult is where a produced message went.
type ProduceResult struct {
	Partition int32
	Offset    uint64
	Timestamp int64 // broker wall clock, ms since the Unix epoch, after the append
}

// Produce appends one message. A missing topic is auto-created with
// Options.AutoCreatePartitions partitions. 0 ≤ partition < n is honoured;
// partition ≥ n fails with *PartitionError; any negative partition lets
// the broker choose per core.md §8.
func (b *Broker) Produce(topic string, partition int32, key, value []byte) (ProduceResult, error) {
	return b.ProduceWithExpiry(topic, partition, key, value, 0)
}

// ProduceWithExpiry is Produce for a message that expires at expiryMs
// (unix ms; 0 = never). Expired messages are skipped by Consume and Fetch.
func (b *Broker) ProduceWithExpiry(topic string, partition int32, key, value []byte,
	expiryMs int64) (ProduceResult, error) {
	// A topic deleted between lookup and lock is created afresh, as a
	// produce arriving just after the delete would have done.
	for attempt := 0; ; attempt++ {
		t, err := b.createTopic(topic, b.opts.AutoCreatePartitions)
		if err != nil {
			return ProduceResult{}, err
		}
		t.mu.RLock()
		if t.gone {
			t.mu.RUnlock()
			if attempt < 2 && !b.isClosed() {
				continue
			}
			if b.isClosed() {
				return ProduceResult{}, ErrClosed
			}
			return ProduceResult{}, topicNotFound(topic)
		}
		res, err := b.appendLocked(t, partition, key, value, expiryMs)
		t.mu.RUnlock()
		return res, err
	}
}

// appendLocked chooses the partition and appends; t is read-locked.
func (b *Broker) appendLocked(t *topic, partition int32, key, value []byte,
	expiryMs int64) (ProduceResult, error) {
	p, err := t.choose(partition, key)
	if err != nil {
		return ProduceResult{}, err
	}
	recs := b.recPool.Get().(*[1]storage.Record)
	recs[0] = storage.Record{Key: key, Value: value, Timestamp: time.Now().UnixMilli(), Expiry: expiryMs}
	off, err := t.parts[p].Append(recs[:])
	recs[0] = storage.Record{} // drop the caller's buffers before pooling
	b.recPool.Put(recs)
	if err != nil {
		b.noteErr(err)
		return ProduceResult{}, wrapStorage(t, p, err)
	}
	t.m.produced.Inc()
	t.m.producedBytes.Add(float64(len(key) + len(value)))
	return ProduceResult{Partition: p, Offset: off, Timestamp: time.Now().UnixMilli()}, nil
}

// choose implements core.md §6.1 and §8.
func (t *topic) choose(req int32, key []byte) (int32, error) {
	n := t.n
	switch {
	case req >= n:
		return 0, &PartitionError{Partition: req}
	case req >= 0:
		return req, nil
	case n == 1:
		return 0, nil
	case len(key) > 0:
		return int32(fnv1a32(key) % uint32(n)), nil
	}
	return int32((t.rr.Add(1) - 1) % uint64(n)), nil
}

// fnv1a32 is FNV-1a, 32 bits, over the raw key bytes (core.md §8).
func fnv1a32(b []byte) uint32 {
	h := uint32(0x811C9DC5)
	for _, c := range b {
		h ^= uint32(c)
		h *= 0x01000193
	}
	return h
}

// wrapStorage adds topic and partition to a storage error, keeping
// sentinels visible to errors.Is.
func wrapStorage(t *topic, p int32, err error) error {
	if errors.Is(err, storage.ErrClosed) {
		return ErrClosed
	}
	return fmt.Errorf("topic %s partition %d: %w", t.name, p, err)
}
