package broker

import (
	"errors"
	"time"

	"github.com/flymq/flymq/internal/storage"
)

// Fetch limits (core.md §6.7, §13).
const (
	DefaultFetchMessages = 10   // max ≤ 0
	FetchScanLimit       = 1000 // records examined per request
	// FetchResponseHeaderSize and FetchedMessageOverhead give the FETCH
	// payload size: header (count u32, next u64) plus per message offset
	// u64 and two u32 lengths. They mirror internal/protocol, which the
	// broker does not import.
	FetchResponseHeaderSize = 12
	FetchedMessageOverhead  = 16

	// Reads from storage are batched; a filtered scan reads in bounded
	// chunks so 1000 large non-matching records never sit in memory at once.
	readBatchMessages = FetchScanLimit
	readBatchBytes    = 2 << 20
)

// Consume returns the message stored at offset. Errors in the order of
// core.md §6.2: ErrTopicNotFound, *PartitionError (negative or too large),
// ErrNoMessage (nothing stored there, or it expired).
func (b *Broker) Consume(topic string, partition int32, offset uint64) (storage.Message, error) {
	t, err := b.acquire(topic)
	if err != nil {
		return storage.Message{}, err
	}
	defer t.mu.RUnlock()
	p, err := t.partition(partition)
	if err != nil {
		return storage.Message{}, err
	}
	msgs, err := p.Read(offset, 1, 1)
	if errors.Is(err, storage.ErrOffsetOutOfRange) || err == nil && len(msgs) == 0 {
		return storage.Message{}, ErrNoMessage
	}
	if err != nil {
		b.noteErr(err)
		return storage.Message{}, wrapStorage(t, partition, err)
	}
	m := msgs[0]
	if expired(&m, time.Now().UnixMilli()) {
		return storage.Message{}, ErrNoMessage
	}
	t.m.fetched.Inc()
	t.m.fetchedBytes.Add(float64(len(m.Key) + len(m.Value)))
	return m, nil
}

func expired(m *storage.Message, nowMs int64) bool {
	return m.Expiry != 0 && m.Expiry < nowMs
}

// Fetch runs the FETCH algorithm of core.md §6.7: from offset, examine at
// most 1000 records and return up to maxMsgs (≤ 0 means 10) that match filter
// ("" matches all; expired records never match). next is the offset after
// the last record examined, or offset itself when nothing was there (an
// offset beyond the end is not an error). maxBytes caps the response
// payload (FetchResponseHeaderSize + per message FetchedMessageOverhead +
// key + value) but the first message is always included; next then points
// at the first message left out. maxBytes ≤ 0 means no cap.
func (b *Broker) Fetch(topic string, partition int32, offset uint64, maxMsgs int, filter string,
	maxBytes int) (msgs []storage.Message, next uint64, err error) {
	t, err := b.acquire(topic)
	if err != nil {
		return nil, offset, err
	}
	defer t.mu.RUnlock()
	p, err := t.partition(partition)
	if err != nil {
		return nil, offset, err
	}
	if maxMsgs <= 0 {
		maxMsgs = DefaultFetchMessages
	}
	var match *matcher
	if filter != "" {
		match = b.newMatcher(filter)
	}
	nowMs := time.Now().UnixMilli()
	size := FetchResponseHeaderSize
	pos, scanned := offset, 0
	var outBytes int
scan:
	for len(msgs) < maxMsgs && scanned < FetchScanLimit {
		n := FetchScanLimit - scanned
		nb := readBatchBytes
		if match == nil {
			n = min(n, maxMsgs-len(msgs))
			if maxBytes > 0 {
				nb = min(nb, max(maxBytes-size, 1))
			}
		}
		batch, err := p.Read(pos, min(n, readBatchMessages), nb)
		if errors.Is(err, storage.ErrOffsetOutOfRange) {
			break // below the lowest or past the end: nothing at pos
		}
		if err != nil {
			b.noteErr(err)
			return nil, offset, wrapStorage(t, partition, err)
		}
		if len(batch) == 0 {
			break
		}
		for i := range batch {
			m := &batch[i]
			if m.Offset != pos {
				// Dense offsets are a storage invariant; never guess.
				return nil, offset, wrapStorage(t, partition,
					errors.New("storage returned a non-consecutive offset"))
			}
			if expired(m, nowMs) || match != nil && !match.matches(m.Key, m.Value) {
				scanned++
				pos++
			} else {
				sz := FetchedMessageOverhead + len(m.Key) + len(m.Value)
				if maxBytes > 0 && len(msgs) > 0 && size+sz > maxBytes {
					break scan // next = this record, first one left out
				}
				scanned++
				pos++
				size += sz
				outBytes += len(m.Key) + len(m.Value)
				msgs = append(msgs, *m)
			}
			if len(msgs) >= maxMsgs || scanned >= FetchScanLimit {
				break scan
			}
		}
	}
	if len(msgs) > 0 {
		t.m.fetched.Add(float64(len(msgs)))
		t.m.fetchedBytes.Add(float64(outBytes))
	}
	return msgs, pos, nil
}
