package broker

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"sort"
)

// Committed offsets live in groups/ as two sealed files:
//
//	offsets.snap  one sealed blob: the whole state as of a sequence number
//	offsets.log   frames appended after that snapshot
//
// Log frame (big-endian):
//
//	+-----------+----------------------+---------------------------+
//	| u32 len   | u32 CRC-32C(blob)    | blob: crypto.SealBlob(rec) |
//	+-----------+----------------------+---------------------------+
//
// Record plaintext: u8 version(1) · u8 op · u64 seq · str16 topic ·
// str16 group, then for opCommit i32 partition · u64 offset. Sequence
// numbers rise by one per record across snapshots; replay skips records a
// snapshot already covers, so a crash between writing a snapshot and
// truncating the log loses nothing and applies nothing twice.
//
// Snapshot plaintext: u8 version(1) · u64 seq · u32 groups, then per group
// str16 topic · str16 group · u32 n · n × (i32 partition · u64 offset).
//
// The CRC lets recovery tell a torn tail (short or bad-CRC last frame:
// truncated) from tampering (good CRC, blob fails to open: an error).

const (
	groupCodecVersion = 1
	frameHeaderSize   = 8
	// maxGroupFrame bounds a frame: two str16 names plus a sealed header
	// fit easily; anything larger is corruption, not a record.
	maxGroupFrame = 1 << 20
)

// Sealed-blob purposes of the committed-offsets log frames and snapshot.
// internal/keys re-seals both files with them: changing one strands the
// existing offsets.
const (
	GroupLogPurpose  = "flymq/groups/offsets.log/v1"
	GroupSnapPurpose = "flymq/groups/offsets.snap/v1"
)

// Record ops.
const (
	opCommit byte = 1 // set offset of (topic, group, partition); creates the group
	opCreate byte = 2 // create an empty group (first SUBSCRIBE)
	opDelete byte = 3 // delete the group and its offsets
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// errShortRecord and friends are decode failures of plaintext that opened
// correctly, i.e. a bug or a format we do not know.
var errBadRecord = errors.New("malformed group record")

type groupRecord struct {
	op        byte
	seq       uint64
	topic     string
	group     string
	partition int32
	offset    uint64
}

func appendStr16(dst []byte, s string) []byte {
	dst = binary.BigEndian.AppendUint16(dst, uint16(len(s)))
	return append(dst, s...)
}

func readStr16(b []byte) (string, []byte, bool) {
	if len(b) < 2 {
		return "", nil, false
	}
	n := int(binary.BigEndian.Uint16(b))
	if len(b) < 2+n {
		return "", nil, false
	}
	return string(b[2 : 2+n]), b[2+n:], true
}

func (r *groupRecord) appendTo(dst []byte) []byte {
	dst = append(dst, groupCodecVersion, r.op)
	dst = binary.BigEndian.AppendUint64(dst, r.seq)
	dst = appendStr16(dst, r.topic)
	dst = appendStr16(dst, r.group)
	if r.op == opCommit {
		dst = binary.BigEndian.AppendUint32(dst, uint32(r.partition))
		dst = binary.BigEndian.AppendUint64(dst, r.offset)
	}
	return dst
}

func decodeGroupRecord(b []byte) (groupRecord, error) {
	var r groupRecord
	if len(b) < 10 {
		return r, fmt.Errorf("%w: %d bytes", errBadRecord, len(b))
	}
	if b[0] != groupCodecVersion {
		return r, fmt.Errorf("%w: version %d", errBadRecord, b[0])
	}
	r.op = b[1]
	r.seq = binary.BigEndian.Uint64(b[2:])
	var ok bool
	rest := b[10:]
	if r.topic, rest, ok = readStr16(rest); !ok {
		return r, fmt.Errorf("%w: topic", errBadRecord)
	}
	if r.group, rest, ok = readStr16(rest); !ok {
		return r, fmt.Errorf("%w: group", errBadRecord)
	}
	switch r.op {
	case opCommit:
		if len(rest) != 12 {
			return r, fmt.Errorf("%w: commit body %d bytes", errBadRecord, len(rest))
		}
		r.partition = int32(binary.BigEndian.Uint32(rest))
		r.offset = binary.BigEndian.Uint64(rest[4:])
	case opCreate, opDelete:
		if len(rest) != 0 {
			return r, fmt.Errorf("%w: %d trailing bytes", errBadRecord, len(rest))
		}
	default:
		return r, fmt.Errorf("%w: op %d", errBadRecord, r.op)
	}
	return r, nil
}

// appendFrame appends the log frame of a sealed blob.
func appendFrame(dst, blob []byte) []byte {
	dst = binary.BigEndian.AppendUint32(dst, uint32(len(blob)))
	dst = binary.BigEndian.AppendUint32(dst, crc32.Checksum(blob, castagnoli))
	return append(dst, blob...)
}

// frameScan is the result of scanning a log image.
type frameScan struct {
	blobs [][]byte // sub-slices of the image, in order
	good  int64    // length of the valid prefix
	torn  bool     // bytes after good are a torn tail (safe to cut)
}

// scanFrames splits a log image into frames. A bad frame that reaches the
// end of the image, or a tail of zero bytes (a file extended by a crash
// before its data landed), is torn. A bad frame with more data after it is
// corruption: an error naming the position.
func scanFrames(img []byte) (frameScan, error) {
	var s frameScan
	pos := 0
	for pos < len(img) {
		rest := img[pos:]
		if len(rest) < frameHeaderSize {
			s.torn = true
			break
		}
		n := int(binary.BigEndian.Uint32(rest))
		sum := binary.BigEndian.Uint32(rest[4:])
		if n == 0 || n > maxGroupFrame {
			if allZero(rest) {
				s.torn = true
				break
			}
			return s, fmt.Errorf("group log corrupt at %d: frame length %d", pos, n)
		}
		if frameHeaderSize+n > len(rest) {
			// A frame running past the end is the last one being written.
			s.torn = true
			break
		}
		blob := rest[frameHeaderSize : frameHeaderSize+n]
		if crc32.Checksum(blob, castagnoli) != sum {
			if frameHeaderSize+n == len(rest) || allZero(rest[frameHeaderSize+n:]) {
				s.torn = true
				break
			}
			return s, fmt.Errorf("group log corrupt at %d: checksum mismatch", pos)
		}
		s.blobs = append(s.blobs, blob)
		pos += frameHeaderSize + n
		s.good = int64(pos)
	}
	return s, nil
}

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

// groupState is the durable part of every group: committed offsets.
type groupState map[groupKey]map[int32]uint64

func encodeSnapshot(seq uint64, st groupState) []byte {
	keys := make([]groupKey, 0, len(st))
	for k := range st {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return keys[i].less(keys[j]) })
	b := []byte{groupCodecVersion}
	b = binary.BigEndian.AppendUint64(b, seq)
	b = binary.BigEndian.AppendUint32(b, uint32(len(keys)))
	for _, k := range keys {
		b = appendStr16(b, k.topic)
		b = appendStr16(b, k.group)
		offs := st[k]
		b = binary.BigEndian.AppendUint32(b, uint32(len(offs)))
		for _, p := range sortedPartitions(offs) {
			b = binary.BigEndian.AppendUint32(b, uint32(p))
			b = binary.BigEndian.AppendUint64(b, offs[p])
		}
	}
	return b
}

func decodeSnapshot(b []byte) (uint64, groupState, error) {
	bad := func(what string) (uint64, groupState, error) {
		return 0, nil, fmt.Errorf("malformed group snapshot: %s", what)
	}
	if len(b) < 13 {
		return bad("short header")
	}
	if b[0] != groupCodecVersion {
		return bad(fmt.Sprintf("version %d", b[0]))
	}
	seq := binary.BigEndian.Uint64(b[1:])
	n := binary.BigEndian.Uint32(b[9:])
	rest := b[13:]
	st := make(groupState)
	for i := uint32(0); i < n; i++ {
		var k groupKey
		var ok bool
		if k.topic, rest, ok = readStr16(rest); !ok {
			return bad("topic")
		}
		if k.group, rest, ok = readStr16(rest); !ok {
			return bad("group")
		}
		if len(rest) < 4 {
			return bad("offset count")
		}
		m := binary.BigEndian.Uint32(rest)
		rest = rest[4:]
		if uint64(len(rest)) < uint64(m)*12 {
			return bad("offsets")
		}
		if _, dup := st[k]; dup {
			return bad("duplicate group")
		}
		offs := make(map[int32]uint64, m)
		for j := uint32(0); j < m; j++ {
			offs[int32(binary.BigEndian.Uint32(rest))] = binary.BigEndian.Uint64(rest[4:])
			rest = rest[12:]
		}
		st[k] = offs
	}
	if len(rest) != 0 {
		return bad("trailing bytes")
	}
	return seq, st, nil
}

func sortedPartitions(m map[int32]uint64) []int32 {
	ps := make([]int32, 0, len(m))
	for p := range m {
		ps = append(ps, p)
	}
	sort.Slice(ps, func(i, j int) bool { return ps[i] < ps[j] })
	return ps
}
