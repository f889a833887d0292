package record

import (
	"encoding/binary"
	"fmt"
)

// Segment file header (64 bytes, integers big-endian):
//
//	+------------+---------+----------+--------+-------------+-----------+--------+
//	| "FLYMQSEG" | version | reserved | key id | base offset | salt      | crc32c |
//	| 8          | u16     | u16      | u64    | u64         | 32        | u32    |
//	+------------+---------+----------+--------+-------------+-----------+--------+
//
// The CRC-32C covers the 60 bytes before it. Key id 0 means the segment's
// records are not sealed. The salt makes the segment's data key unique.
// The base offset repeats the file name, so a renamed segment is noticed.
const (
	SegmentMagic      = "FLYMQSEG"
	SegmentVersion    = 1
	SegmentHeaderSize = 64
	SaltSize          = 32
)

// SegmentHeader is the decoded segment file header.
type SegmentHeader struct {
	Version    uint16
	KeyID      uint64
	BaseOffset uint64
	Salt       [SaltSize]byte
}

// AppendSegmentHeader appends the encoded header (always version
// SegmentVersion) to dst.
func AppendSegmentHeader(dst []byte, h *SegmentHeader) []byte {
	start := len(dst)
	dst = append(dst, SegmentMagic...)
	dst = binary.BigEndian.AppendUint16(dst, SegmentVersion)
	dst = binary.BigEndian.AppendUint16(dst, 0)
	dst = binary.BigEndian.AppendUint64(dst, h.KeyID)
	dst = binary.BigEndian.AppendUint64(dst, h.BaseOffset)
	dst = append(dst, h.Salt[:]...)
	return binary.BigEndian.AppendUint32(dst, Checksum(dst[start:]))
}

// DecodeSegmentHeader decodes the header at the start of b: ErrShort if b
// is shorter than the header, ErrChecksum or ErrInvalid if it is damaged
// or of an unknown version.
func DecodeSegmentHeader(b []byte) (SegmentHeader, error) {
	var h SegmentHeader
	if len(b) < SegmentHeaderSize {
		return h, ErrShort
	}
	if string(b[:8]) != SegmentMagic {
		return h, fmt.Errorf("%w: bad segment magic", ErrInvalid)
	}
	if Checksum(b[:60]) != binary.BigEndian.Uint32(b[60:]) {
		return h, fmt.Errorf("segment header: %w", ErrChecksum)
	}
	h.Version = binary.BigEndian.Uint16(b[8:])
	if h.Version != SegmentVersion {
		return h, fmt.Errorf("%w: unknown segment version %d", ErrInvalid, h.Version)
	}
	h.KeyID = binary.BigEndian.Uint64(b[12:])
	h.BaseOffset = binary.BigEndian.Uint64(b[20:])
	copy(h.Salt[:], b[28:60])
	return h, nil
}
