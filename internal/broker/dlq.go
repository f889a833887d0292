package broker

// Dead-letter queues (security-and-advanced.md §9). The DLQ of topic T
// is the ordinary topic T+suffix (".dlq" by default) holding one JSON
// record per dead letter, so DLQ topics stay readable and writable with
// the ordinary ops; these methods only read, re-produce and delete them.

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// DLQScanLimit is how many DLQ records replay-by-id searches (§9.2).
const DLQScanLimit = 1000

// ErrDLQNotFound: no DLQ record with that id (or at that offset).
var ErrDLQNotFound = errors.New("message not found")

// DLQRecord is the JSON value of one DLQ record (§9). Payload is base64
// in JSON, as encoding/json renders []byte.
type DLQRecord struct {
	ID             string            `json:"id"`
	OriginalTopic  string            `json:"original_topic"`
	OriginalOffset int64             `json:"original_offset"`
	Payload        []byte            `json:"payload"`
	Reason         string            `json:"reason"`
	ErrorMessage   string            `json:"error_message"`
	RetryCount     int32             `json:"retry_count"`
	FirstFailedAt  time.Time         `json:"first_failed_at"`
	LastFailedAt   time.Time         `json:"last_failed_at"`
	Headers        map[string]string `json:"headers,omitempty"`
}

// DLQ reasons (§9).
const (
	ReasonMaxRetries      = "max_retries_exceeded"
	ReasonValidation      = "validation_failed"
	ReasonProcessingError = "processing_error"
	ReasonExpired         = "expired"
	ReasonManual          = "manual"
)

// DLQTopic returns the dead-letter topic of topic.
func (b *Broker) DLQTopic(topic string) string { return topic + b.opts.DLQSuffix }

// parseDLQ decodes a DLQ record; values that are not a JSON object with
// an id are not DLQ records.
func parseDLQ(v []byte) (DLQRecord, bool) {
	var r DLQRecord
	if json.Unmarshal(v, &r) != nil || r.ID == "" {
		return DLQRecord{}, false
	}
	return r, true
}

// scanDLQ calls fn for up to limit records of topic's DLQ, partition 0,
// from offset 0, until fn returns false. A missing DLQ is empty.
func (b *Broker) scanDLQ(topic string, limit int, fn func(offset uint64, r DLQRecord, ok bool) bool) error {
	dlq := b.DLQTopic(topic)
	var off uint64
	for seen := 0; seen < limit; {
		msgs, next, err := b.Fetch(dlq, 0, off, min(limit-seen, FetchScanLimit), "", 1<<20)
		if errors.Is(err, ErrTopicNotFound) || errors.Is(err, ErrInvalidName) {
			return nil
		}
		if err != nil {
			return err
		}
		for i := range msgs {
			r, ok := parseDLQ(msgs[i].Value)
			seen++
			if !fn(msgs[i].Offset, r, ok) || seen >= limit {
				return nil
			}
		}
		if next == off {
			return nil
		}
		off = next
	}
	return nil
}

// FetchDLQ returns the valid DLQ records among the first max records of
// topic's DLQ (§9.1): invalid ones are skipped but count toward max;
// max ≤ 0 returns none.
func (b *Broker) FetchDLQ(topic string, max int) ([]DLQRecord, error) {
	if max <= 0 {
		return nil, nil
	}
	var out []DLQRecord
	err := b.scanDLQ(topic, max, func(_ uint64, r DLQRecord, ok bool) bool {
		if ok {
			out = append(out, r)
		}
		return true
	})
	return out, err
}

// FindDLQ returns the record with id among the first DLQScanLimit records
// of topic's DLQ, or ErrDLQNotFound.
func (b *Broker) FindDLQ(topic, id string) (DLQRecord, error) {
	var found *DLQRecord
	err := b.scanDLQ(topic, DLQScanLimit, func(_ uint64, r DLQRecord, ok bool) bool {
		if ok && r.ID == id {
			found = &r
			return false
		}
		return true
	})
	if err != nil {
		return DLQRecord{}, err
	}
	if found == nil {
		return DLQRecord{}, ErrDLQNotFound
	}
	return *found, nil
}

// DLQAt returns the DLQ record stored at offset in topic's DLQ,
// partition 0 (the re-inject form of §9.2).
func (b *Broker) DLQAt(topic string, offset uint64) (DLQRecord, error) {
	m, err := b.Consume(b.DLQTopic(topic), 0, offset)
	if errors.Is(err, ErrTopicNotFound) || errors.Is(err, ErrNoMessage) || errors.Is(err, ErrInvalidName) {
		return DLQRecord{}, fmt.Errorf("%w at offset %d", ErrDLQNotFound, offset)
	}
	if err != nil {
		return DLQRecord{}, err
	}
	r, ok := parseDLQ(m.Value)
	if !ok {
		return DLQRecord{}, fmt.Errorf("%w at offset %d", ErrDLQNotFound, offset)
	}
	return r, nil
}

// ReplayDLQ produces the record's payload (no key) to its original topic;
// the DLQ record stays.
func (b *Broker) ReplayDLQ(r DLQRecord) (ProduceResult, error) {
	return b.Produce(r.OriginalTopic, -1, nil, r.Payload)
}

// PurgeDLQ deletes topic's DLQ; a missing one is not an error.
func (b *Broker) PurgeDLQ(topic string) error {
	dlq := b.DLQTopic(topic)
	if ValidateTopicName(dlq) != nil {
		return nil // no such topic can exist
	}
	return b.DeleteTopic(dlq)
}

// DeadLetter appends r to the DLQ of r.OriginalTopic (tests and tools;
// nothing on the client port dead-letters a message, §9).
func (b *Broker) DeadLetter(r DLQRecord) (ProduceResult, error) {
	v, err := json.Marshal(&r)
	if err != nil {
		return ProduceResult{}, fmt.Errorf("encode DLQ record: %w", err)
	}
	return b.Produce(b.DLQTopic(r.OriginalTopic), 0, nil, v)
}
