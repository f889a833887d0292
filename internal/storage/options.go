package storage

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/flymq/flymq/internal/crypto"
	"github.com/flymq/flymq/internal/storage/vfs"
)

// FS is the file system the log uses; see package vfs for the OS
// implementation and the fault-injecting ones used by tests.
type FS = vfs.FS

// File is an open file of an FS.
type File = vfs.File

// Acks selects when Append returns, trading latency for durability.
type Acks int

const (
	// AcksLeader acknowledges after write(2); a background fsync runs every
	// SyncInterval. A power loss can take back up to SyncInterval of
	// acknowledged records; a process crash loses nothing.
	AcksLeader Acks = iota
	// AcksAll acknowledges after fsync. Concurrent appends share one write
	// and one fsync.
	AcksAll
	// AcksNone acknowledges after write(2) and fsyncs only when a segment
	// rolls and on Close.
	AcksNone
)

// ParseAcks parses "all" (or "-1"), "leader" (or "1", "") and "none" (or "0").
func ParseAcks(s string) (Acks, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "all", "-1":
		return AcksAll, nil
	case "leader", "1", "":
		return AcksLeader, nil
	case "none", "0":
		return AcksNone, nil
	}
	return 0, fmt.Errorf("storage: unknown acks mode %q (want all, leader or none)", s)
}

// String returns the mode's config name.
func (a Acks) String() string {
	switch a {
	case AcksAll:
		return "all"
	case AcksLeader:
		return "leader"
	case AcksNone:
		return "none"
	}
	return fmt.Sprintf("acks(%d)", int(a))
}

// Defaults applied by Open to zero fields.
const (
	DefaultSegmentBytes = 1 << 30
	DefaultSyncInterval = time.Second
	// MaxSegmentBytes keeps positions within the u32 of the index files,
	// leaving room for one batch past the roll threshold.
	MaxSegmentBytes = 2 << 30
	// indexIntervalBytes is the distance between sparse index entries: a
	// lookup reads at most this much before the wanted record.
	indexIntervalBytes = 4096
	// defaultReadBytes bounds a Read whose maxBytes is <= 0.
	defaultReadBytes = 1 << 20
)

// Options configure one partition's log.
type Options struct {
	Dir            string        // partition directory (created if missing)
	Topic          string        // real topic name: bound into the AAD
	Partition      int32         // bound into the AAD
	SegmentBytes   int64         // roll threshold; 0 = DefaultSegmentBytes
	RetentionBytes int64         // 0 = unlimited
	RetentionAge   time.Duration // 0 = unlimited
	Acks           Acks
	SyncInterval   time.Duration   // AcksLeader background fsync period; 0 = DefaultSyncInterval
	Keyring        *crypto.Keyring // nil = encryption off (key id 0, same format)
	FS             FS              // nil = the OS
	Logger         *zap.Logger     // nil = nop
	Metrics        *Metrics        // shared by all partitions; nil = none
}

// Record is one message to append.
type Record struct {
	Key, Value []byte
	// Timestamp and Expiry are unix milliseconds; a zero Timestamp is
	// replaced by the append time, a zero Expiry means none.
	Timestamp, Expiry int64
	// Flags are the caller's; bit 0x80 is reserved by the format.
	Flags uint8
}

// Message is one record read back. Key and Value alias a buffer owned by
// the Read call that returned them (one allocation per Read, not per
// message); they stay valid for as long as the caller keeps them.
type Message struct {
	Offset            uint64
	Timestamp, Expiry int64
	Flags             uint8
	Key, Value        []byte
}

// Stats is a snapshot of a partition's size.
type Stats struct {
	Segments int
	Bytes    int64
}

// Sentinel errors.
var (
	ErrClosed           = errors.New("storage: partition closed")
	ErrFenced           = errors.New("storage: partition fenced after fsync failure")
	ErrOffsetOutOfRange = errors.New("storage: offset out of range")
	ErrCorrupt          = errors.New("storage: corrupt log")
	ErrRecordTooLarge   = errors.New("storage: record too large")
	// ErrInvalidRecord: a record uses the reserved flag bit.
	ErrInvalidRecord = errors.New("storage: invalid record")
)

// CorruptionError names where the log is damaged. errors.Is(err,
// ErrCorrupt) holds; Err says what was found (a checksum mismatch, an
// authentication failure naming the key id, a wrong offset).
type CorruptionError struct {
	Segment  string // path of the .log file
	Position int64  // byte position of the bad frame in it
	Err      error
}

func (e *CorruptionError) Error() string {
	return fmt.Sprintf("storage: corrupt log: segment %s position %d: %v", e.Segment, e.Position, e.Err)
}

// Unwrap returns the cause.
func (e *CorruptionError) Unwrap() error { return e.Err }

// Is makes every CorruptionError match ErrCorrupt.
func (e *CorruptionError) Is(target error) bool { return target == ErrCorrupt }
