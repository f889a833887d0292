package broker

import (
	"errors"
	"fmt"
	"strconv"

	"github.com/flymq/flymq/internal/storage"
)

// Sentinel errors. The server maps them to the per-op wire texts of
// core.md §5.4, so their own texts are for logs and tests only.
var (
	// ErrTopicNotFound: the topic does not exist. Returned wrapped with the
	// topic name ("topic not found: T").
	ErrTopicNotFound = errors.New("topic not found")
	// ErrPartitionNotFound is matched by every *PartitionError.
	ErrPartitionNotFound = errors.New("partition not found")
	// ErrNoMessage: no message is stored at the requested offset (beyond
	// the end, below the lowest retained offset, or expired).
	ErrNoMessage = errors.New("no message at offset")
	// ErrGroupNotFound is matched by every *GroupNotFoundError.
	ErrGroupNotFound = errors.New("consumer group not found")
	// ErrInvalidName: a topic name breaks the rules of DESIGN.md §3.
	ErrInvalidName = errors.New("invalid topic name")
	// ErrInvalidPartitionCount: CREATE_TOPIC with a negative count or one
	// above Options.MaxPartitions.
	ErrInvalidPartitionCount = errors.New("invalid partition count")
	// ErrUnknownMode is matched by every *ModeError.
	ErrUnknownMode = errors.New("unknown mode")
	// ErrFenced: a write could not be made durable (failed fsync), so the
	// affected log takes no more writes until a restart re-runs recovery.
	// It is the storage sentinel, so errors.Is works for either package.
	ErrFenced = storage.ErrFenced
	// ErrClosed: the broker has been closed.
	ErrClosed = errors.New("broker closed")
)

// PartitionError reports a partition outside 0 ≤ p < partition count.
type PartitionError struct{ Partition int32 }

// Error returns the FETCH/SUBSCRIBE wire text; CONSUME renders its own
// "partition N out of range" from Partition.
func (e *PartitionError) Error() string {
	return "partition " + strconv.FormatInt(int64(e.Partition), 10) + " not found"
}

// Is makes errors.Is(err, ErrPartitionNotFound) true.
func (e *PartitionError) Is(target error) bool { return target == ErrPartitionNotFound }

// GroupNotFoundError reports an unknown (topic, group) pair.
type GroupNotFoundError struct{ Topic, Group string }

// Error returns the exact wire text "consumer group not found: T:G".
func (e *GroupNotFoundError) Error() string {
	return "consumer group not found: " + e.Topic + ":" + e.Group
}

// Is makes errors.Is(err, ErrGroupNotFound) true.
func (e *GroupNotFoundError) Is(target error) bool { return target == ErrGroupNotFound }

// ModeError reports an unknown SUBSCRIBE or RESET_OFFSET mode. Kind is
// "subscribe" or "reset".
type ModeError struct{ Kind, Mode string }

// Error returns the exact wire text ("unknown subscribe mode: M").
func (e *ModeError) Error() string { return "unknown " + e.Kind + " mode: " + e.Mode }

// Is makes errors.Is(err, ErrUnknownMode) true.
func (e *ModeError) Is(target error) bool { return target == ErrUnknownMode }

func topicNotFound(topic string) error {
	return fmt.Errorf("%w: %s", ErrTopicNotFound, topic)
}
