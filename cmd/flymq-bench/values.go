package main

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
)

// Every produced value is a pure function of (connection, sequence), so the
// fetch phase can check every byte without keeping a copy of what was sent.
//
// Layout of a value of size S (S >= ValueHeaderSize):
//
//	bytes 0-3   connection index (u32 BE)
//	bytes 4-11  sequence number within the connection (u64 BE)
//	bytes 12-15 check word mix(conn, seq) (u32 BE), so garbage that
//	            happens to name a valid (conn, seq) is still caught
//	bytes 16-   a window of a fixed pseudo-random pool starting at an
//	            offset derived from (conn, seq)
//
// Taking the body from a pool makes generation a memmove and verification a
// memcmp, so the bench client costs little next to the broker it measures.

// ValueHeaderSize is the smallest value size the generator supports.
const ValueHeaderSize = 16

// poolSpan is how many distinct body start offsets exist.
const poolSpan = 1 << 20

// Value verification errors.
var (
	ErrValueSize   = errors.New("value has the wrong size")
	ErrValueHeader = errors.New("value header is corrupt")
	ErrValueBody   = errors.New("value body differs from what was sent")
)

// Values generates and verifies the deterministic values of one run.
type Values struct {
	size int
	pool []byte
}

// NewValues returns the generator for values of size bytes.
func NewValues(size int) (*Values, error) {
	if size < ValueHeaderSize {
		return nil, fmt.Errorf("message size %d: must be at least %d bytes", size, ValueHeaderSize)
	}
	body := size - ValueHeaderSize
	pool := make([]byte, poolSpan+body)
	s := uint64(0x5eed_f1e5_bea7_c0de)
	for i := 0; i+8 <= len(pool); i += 8 {
		s = splitmix64(s)
		binary.LittleEndian.PutUint64(pool[i:], s)
	}
	for i := len(pool) &^ 7; i < len(pool); i++ {
		s = splitmix64(s)
		pool[i] = byte(s)
	}
	return &Values{size: size, pool: pool}, nil
}

// Size is the value size in bytes.
func (v *Values) Size() int { return v.size }

// splitmix64 is a well-mixed, cheap 64-bit permutation step.
func splitmix64(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}

func mix(conn uint32, seq uint64) uint64 {
	return splitmix64(uint64(conn)<<40 ^ seq ^ 0xf1f1_0000_0000_0000)
}

func (v *Values) bodyOffset(m uint64) int { return int(m>>32) % poolSpan }

// Fill writes the value of (conn, seq) into dst, which must be Size bytes.
func (v *Values) Fill(dst []byte, conn uint32, seq uint64) {
	m := mix(conn, seq)
	binary.BigEndian.PutUint32(dst[0:4], conn)
	binary.BigEndian.PutUint64(dst[4:12], seq)
	binary.BigEndian.PutUint32(dst[12:16], uint32(m))
	off := v.bodyOffset(m)
	copy(dst[ValueHeaderSize:v.size], v.pool[off:off+v.size-ValueHeaderSize])
}

// Append appends the value of (conn, seq) to dst.
func (v *Values) Append(dst []byte, conn uint32, seq uint64) []byte {
	n := len(dst)
	dst = append(dst, make([]byte, v.size)...)
	v.Fill(dst[n:], conn, seq)
	return dst
}

// Identify returns the (conn, seq) a value claims to be, after checking
// its size and check word; Verify then checks the body.
func (v *Values) Identify(val []byte) (conn uint32, seq uint64, err error) {
	if len(val) != v.size {
		return 0, 0, fmt.Errorf("%w: %d bytes, want %d", ErrValueSize, len(val), v.size)
	}
	conn = binary.BigEndian.Uint32(val[0:4])
	seq = binary.BigEndian.Uint64(val[4:12])
	if binary.BigEndian.Uint32(val[12:16]) != uint32(mix(conn, seq)) {
		return 0, 0, ErrValueHeader
	}
	return conn, seq, nil
}

// Verify checks that val is exactly the value of (conn, seq).
func (v *Values) Verify(val []byte, conn uint32, seq uint64) error {
	c, s, err := v.Identify(val)
	if err != nil {
		return err
	}
	if c != conn || s != seq {
		return fmt.Errorf("%w: value of conn %d seq %d where conn %d seq %d was expected", ErrValueHeader, c, s, conn, seq)
	}
	return v.verifyBody(val, mix(conn, seq))
}

func (v *Values) verifyBody(val []byte, m uint64) error {
	off := v.bodyOffset(m)
	if !bytes.Equal(val[ValueHeaderSize:], v.pool[off:off+v.size-ValueHeaderSize]) {
		return ErrValueBody
	}
	return nil
}

// Loc packs where a broker stored a message: partition and offset for
// FlyMQ, the stream sequence (partition 0) for NATS.
type Loc uint64

// MakeLoc packs a partition (< 65536) and an offset (< 2^48).
func MakeLoc(partition int32, offset uint64) Loc {
	return Loc(uint64(uint16(partition))<<48 | offset&(1<<48-1))
}

// Partition unpacks the partition.
func (l Loc) Partition() int32 { return int32(uint64(l) >> 48) }

// Offset unpacks the offset.
func (l Loc) Offset() uint64 { return uint64(l) & (1<<48 - 1) }

// Ledger records, per connection and sequence, where the broker said each
// acknowledged message went, and during the fetch phase which of them were
// read back intact. Different fetch workers mark different messages, and
// each mark is its own byte, so no locking is needed.
type Ledger struct {
	Values *Values
	Locs   [][]Loc  // [conn][seq], filled by each connection's reader
	seen   [][]bool // [conn][seq], filled by the fetch phase
}

// NewLedger returns a ledger for conns connections.
func NewLedger(values *Values, conns int) *Ledger {
	return &Ledger{Values: values, Locs: make([][]Loc, conns)}
}

// Acked is the number of acknowledged messages.
func (l *Ledger) Acked() int64 {
	var n int64
	for _, c := range l.Locs {
		n += int64(len(c))
	}
	return n
}

// PrepareVerify allocates the seen marks; call it once before fetching.
func (l *Ledger) PrepareVerify() {
	l.seen = make([][]bool, len(l.Locs))
	for i, c := range l.Locs {
		l.seen[i] = make([]bool, len(c))
	}
}

// Ranges returns, per partition, the lowest and highest offset the broker
// acknowledged (ok false for a partition that got nothing) and the count.
func (l *Ledger) Ranges(partitions int) (lo, hi []uint64, count []int64) {
	lo = make([]uint64, partitions)
	hi = make([]uint64, partitions)
	count = make([]int64, partitions)
	for _, c := range l.Locs {
		for _, loc := range c {
			p := int(loc.Partition())
			if p >= partitions {
				continue // reported by Check as a bad partition
			}
			off := loc.Offset()
			if count[p] == 0 || off < lo[p] {
				lo[p] = off
			}
			if count[p] == 0 || off > hi[p] {
				hi[p] = off
			}
			count[p]++
		}
	}
	return lo, hi, count
}

// Check verifies one fetched message found at loc: it must be the value
// of an acknowledged (conn, seq) that the broker said it stored at loc,
// byte for byte, and not seen before.
func (l *Ledger) Check(loc Loc, val []byte) error {
	conn, seq, err := l.Values.Identify(val)
	if err != nil {
		return fmt.Errorf("partition %d offset %d: %w", loc.Partition(), loc.Offset(), err)
	}
	if int(conn) >= len(l.Locs) || seq >= uint64(len(l.Locs[conn])) {
		return fmt.Errorf("partition %d offset %d: %w: conn %d seq %d was never acknowledged",
			loc.Partition(), loc.Offset(), ErrValueHeader, conn, seq)
	}
	if want := l.Locs[conn][seq]; want != loc {
		return fmt.Errorf("conn %d seq %d: acknowledged at partition %d offset %d, found at partition %d offset %d",
			conn, seq, want.Partition(), want.Offset(), loc.Partition(), loc.Offset())
	}
	if l.seen[conn][seq] {
		return fmt.Errorf("conn %d seq %d: read twice", conn, seq)
	}
	if err := l.Values.verifyBody(val, mix(conn, seq)); err != nil {
		return fmt.Errorf("partition %d offset %d (conn %d seq %d): %w", loc.Partition(), loc.Offset(), conn, seq, err)
	}
	l.seen[conn][seq] = true
	return nil
}

// Missing counts acknowledged messages the fetch phase did not read back.
func (l *Ledger) Missing() int64 {
	var n int64
	for _, c := range l.seen {
		for _, ok := range c {
			if !ok {
				n++
			}
		}
	}
	return n
}
