package protocol

import (
	"encoding/binary"
	"math"
)

// Limits of the length-prefixed string encodings (core.md §3). Encoders
// truncate longer strings so that a prefix always matches its bytes;
// callers that must not lose data (pkg/client) validate first.
const (
	MaxStr16 = math.MaxUint16
	MaxStr8  = math.MaxUint8
)

// reader walks a payload. The first overrun latches bad and every later
// read returns zero values, so decoders check once at the end. It lives
// on the caller's stack: decoding does not allocate through it.
type reader struct {
	p   []byte
	off int
	bad bool
}

func (r *reader) take(n int) []byte {
	if r.bad || n < 0 || len(r.p)-r.off < n {
		r.bad = true
		return nil
	}
	b := r.p[r.off : r.off+n : r.off+n]
	r.off += n
	return b
}

func (r *reader) remaining() int { return len(r.p) - r.off }

func (r *reader) u8() uint8 {
	b := r.take(1)
	if b == nil {
		return 0
	}
	return b[0]
}

func (r *reader) u16() uint16 {
	b := r.take(2)
	if b == nil {
		return 0
	}
	return binary.BigEndian.Uint16(b)
}

func (r *reader) u32() uint32 {
	b := r.take(4)
	if b == nil {
		return 0
	}
	return binary.BigEndian.Uint32(b)
}

func (r *reader) u64() uint64 {
	b := r.take(8)
	if b == nil {
		return 0
	}
	return binary.BigEndian.Uint64(b)
}

// bool reads a bool byte; like the clients, only 0x01 is true.
func (r *reader) bool() bool { return r.u8() == 1 }

func (r *reader) i32() int32 { return int32(r.u32()) }
func (r *reader) i64() int64 { return int64(r.u64()) }

// str16 returns the bytes of a str16 field, aliasing the payload.
func (r *reader) str16() []byte { return r.take(int(r.u16())) }

// str8 returns the bytes of a str8 field, aliasing the payload.
func (r *reader) str8() []byte { return r.take(int(r.u8())) }

// bytes32 returns the bytes of a bytes32 field, aliasing the payload.
// A zero length yields nil, the single representation of "no key".
func (r *reader) bytes32() []byte {
	n := r.u32()
	if uint64(n) > uint64(r.remaining()) {
		r.bad = true
		return nil
	}
	if n == 0 {
		return nil
	}
	return r.take(int(n))
}

// setString stores b in *dst without allocating when *dst already holds
// the same text: the comparison string(b) does not allocate, so a decoder
// reused across requests for the same topic keeps its string.
func setString(dst *string, b []byte) {
	if *dst != string(b) {
		*dst = string(b)
	}
}

// listCap bounds a preallocation for count elements of at least minSize
// bytes each by what the remaining payload can actually hold, so a forged
// count cannot make a decoder allocate more than the frame it came in.
func listCap(count uint32, remaining, minSize int) int {
	limit := remaining / minSize
	if uint64(count) < uint64(limit) {
		return int(count)
	}
	return limit
}

func appendStr16(dst []byte, s string) []byte {
	if len(s) > MaxStr16 {
		s = s[:MaxStr16]
	}
	dst = binary.BigEndian.AppendUint16(dst, uint16(len(s)))
	return append(dst, s...)
}

func appendStr8(dst []byte, s string) []byte {
	if len(s) > MaxStr8 {
		s = s[:MaxStr8]
	}
	return append(append(dst, byte(len(s))), s...)
}

func appendBytes32(dst, b []byte) []byte {
	dst = binary.BigEndian.AppendUint32(dst, uint32(len(b)))
	return append(dst, b...)
}

func appendBool(dst []byte, v bool) []byte {
	if v {
		return append(dst, 1)
	}
	return append(dst, 0)
}

func appendU32(dst []byte, v uint32) []byte { return binary.BigEndian.AppendUint32(dst, v) }
func appendU64(dst []byte, v uint64) []byte { return binary.BigEndian.AppendUint64(dst, v) }
func appendI32(dst []byte, v int32) []byte  { return binary.BigEndian.AppendUint32(dst, uint32(v)) }
func appendI64(dst []byte, v int64) []byte  { return binary.BigEndian.AppendUint64(dst, uint64(v)) }

// finish maps the reader state to the decoder result.
func (r *reader) finish() error {
	if r.bad {
		return ErrInvalidFormat
	}
	return nil
}
