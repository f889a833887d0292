package broker

import (
	"sync"
	"time"

	"github.com/flymq/flymq/internal/storage"
)

// ProduceItem is one message of a ProduceBatch call. Partition, Key and
// Value are the request; Result or Err is filled in by the call.
type ProduceItem struct {
	Partition  int32
	Key, Value []byte

	Result ProduceResult
	Err    error
}

// ProduceBatch appends items to topic exactly as calling Produce for each
// in turn would: the same partition choice, the same order within a
// partition. Each partition gets one storage append for all its items, so
// a burst of pipelined produces shares one write and, with acks=all, one
// fsync. An error that concerns the whole topic (an invalid name, a closed
// broker) is returned and no item is written; otherwise each item carries
// its own outcome.
func (b *Broker) ProduceBatch(topic string, items []ProduceItem) error {
	for attempt := 0; ; attempt++ {
		t, err := b.createTopic(topic, b.opts.AutoCreatePartitions)
		if err != nil {
			return err
		}
		t.mu.RLock()
		if t.gone {
			t.mu.RUnlock()
			if b.isClosed() {
				return ErrClosed
			}
			if attempt < 2 {
				continue
			}
			return topicNotFound(topic)
		}
		b.appendBatchLocked(t, items)
		t.mu.RUnlock()
		return nil
	}
}

// partBatch is the share of a batch that goes to one partition.
type partBatch struct {
	p    int32
	idx  []int
	recs []storage.Record
}

// appendBatchLocked chooses partitions in item order, then appends each
// partition's records with one call; t is read-locked.
func (b *Broker) appendBatchLocked(t *topic, items []ProduceItem) {
	now := time.Now().UnixMilli()
	var batches []*partBatch
	byPart := make(map[int32]*partBatch, 1)
	for i := range items {
		it := &items[i]
		p, err := t.choose(it.Partition, it.Key)
		if err != nil {
			it.Err = err
			continue
		}
		pb := byPart[p]
		if pb == nil {
			pb = &partBatch{p: p}
			byPart[p] = pb
			batches = append(batches, pb)
		}
		pb.idx = append(pb.idx, i)
		pb.recs = append(pb.recs, storage.Record{Key: it.Key, Value: it.Value, Timestamp: now})
	}
	appendOne := func(pb *partBatch) {
		first, err := t.parts[pb.p].Append(pb.recs)
		if err != nil {
			b.noteErr(err)
			err = wrapStorage(t, pb.p, err)
		}
		ts := time.Now().UnixMilli()
		var bytes int
		for j, i := range pb.idx {
			if err != nil {
				items[i].Err = err
				continue
			}
			items[i].Result = ProduceResult{Partition: pb.p, Offset: first + uint64(j), Timestamp: ts}
			bytes += len(items[i].Key) + len(items[i].Value)
		}
		if err == nil {
			t.m.produced.Add(float64(len(pb.idx)))
			t.m.producedBytes.Add(float64(bytes))
		}
	}
	if len(batches) == 1 {
		appendOne(batches[0])
		return
	}
	// Partitions are independent logs: append them side by side so their
	// writes and fsyncs overlap instead of queueing.
	var wg sync.WaitGroup
	for _, pb := range batches {
		wg.Add(1)
		go func() {
			defer wg.Done()
			appendOne(pb)
		}()
	}
	wg.Wait()
}
