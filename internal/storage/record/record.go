// Package record encodes and decodes flymq's on-disk log frames and segment
// headers. It is pure: no I/O, no locks, no logging. The layouts are drawn
// in docs/format/log.md.
//
// Frame (integers big-endian):
//
//	+------------+------------+---------------------------------------------+
//	| length u32 | crc32c u32 | body (length bytes)                         |
//	+------------+------------+---------------------------------------------+
//	body: version u8 | flags u8 | offset u64 | timestamp i64 | expiry i64 |
//	      nonce [12] | ciphertext + tag
//
// The CRC-32C (Castagnoli) covers the body. It tells a torn or rotted frame
// from a good one without the key; authenticity is the AEAD tag's job. The
// associated data binds topic, partition, version, flags, offset, timestamp
// and expiry, so a frame copied to another offset, partition or topic fails
// to open; a frame copied to another segment fails too, because each segment
// has its own data key.
package record

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
)

const (
	// Version is the frame format version written today.
	Version = 1
	// FrameHeaderSize is the length and CRC words in front of the body.
	FrameHeaderSize = 8
	// BodyHeaderSize is version, flags, offset, timestamp, expiry, nonce.
	BodyHeaderSize = 1 + 1 + 8 + 8 + 8 + NonceSize
	// HeaderSize is everything in a frame before the ciphertext.
	HeaderSize = FrameHeaderSize + BodyHeaderSize
	// NonceSize is the AES-GCM nonce size.
	NonceSize = 12
	// MaxBodySize bounds the length word, so garbage cannot make a reader
	// allocate gigabytes.
	MaxBodySize = 64 << 20

	// FlagHeaders marks a plaintext with a headers section after the value.
	// It is reserved by the format; callers' flags use the low 7 bits.
	FlagHeaders uint8 = 0x80
	// UserFlagsMask is the flag bits left to callers.
	UserFlagsMask uint8 = 0x7f

	// aadFixedSize is the part of the body header bound as associated data:
	// version, flags, offset, timestamp, expiry.
	aadFixedSize = 1 + 1 + 8 + 8 + 8
	// plainHeaderSize is the two u32 length prefixes of the plaintext.
	plainHeaderSize = 8
)

// Errors returned by decoders. Wrapped errors carry a short reason.
var (
	// ErrShort: the buffer ends before the frame does (a torn tail, or a
	// read that must be made longer).
	ErrShort = errors.New("record: short frame")
	// ErrChecksum: the CRC does not match the body.
	ErrChecksum = errors.New("record: checksum mismatch")
	// ErrInvalid: the frame is well-sized and checksummed but malformed
	// (unknown version, bad lengths).
	ErrInvalid = errors.New("record: invalid frame")
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Checksum returns the CRC-32C of b.
func Checksum(b []byte) uint32 { return crc32.Checksum(b, castagnoli) }

// Header is the clear part of a frame body.
type Header struct {
	Version   uint8
	Flags     uint8
	Offset    uint64
	Timestamp int64
	Expiry    int64
	Nonce     [NonceSize]byte
}

// Sealer seals a plaintext; *crypto.SegmentCipher implements it.
type Sealer interface {
	Seal(dst, nonce, plaintext, aad []byte) []byte
	Overhead() int
}

// Opener opens a ciphertext; *crypto.SegmentCipher implements it.
type Opener interface {
	Open(dst, nonce, ciphertext, aad []byte) ([]byte, error)
}

// AAD builds the associated data of the records of one partition. The
// topic and partition part is computed once; For fills the per-record part
// into the same buffer, so sealing and opening allocate nothing. An AAD is
// not safe for concurrent use: each goroutine takes a Clone.
//
//	+-----------------+-------+---------------+---------------------------+
//	| "flymq/rec/v1"  | tlen  | topic         | partition i32 | fixed 26  |
//	|  12             | u16   | tlen          | 4             | from body |
//	+-----------------+-------+---------------+---------------------------+
type AAD struct {
	buf    []byte
	prefix int
}

const aadLabel = "flymq/rec/v1"

// NewAAD returns the associated-data builder for topic and partition.
func NewAAD(topic string, partition int32) *AAD {
	n := len(aadLabel) + 2 + len(topic) + 4
	b := make([]byte, 0, n+aadFixedSize)
	b = append(b, aadLabel...)
	b = binary.BigEndian.AppendUint16(b, uint16(len(topic)))
	b = append(b, topic...)
	b = binary.BigEndian.AppendUint32(b, uint32(partition))
	return &AAD{buf: b[:n+aadFixedSize], prefix: n}
}

// Clone returns an independent builder for another goroutine.
func (a *AAD) Clone() *AAD {
	return &AAD{buf: append([]byte(nil), a.buf...), prefix: a.prefix}
}

// For returns the associated data of the frame whose body is body. The
// result is valid until the next call.
func (a *AAD) For(body []byte) []byte {
	copy(a.buf[a.prefix:], body[:aadFixedSize])
	return a.buf
}

// FrameSize is the encoded size of a record with the given key, value and
// headers lengths under a cipher adding overhead bytes.
func FrameSize(keyLen, valueLen, headersLen, overhead int) int {
	n := HeaderSize + plainHeaderSize + keyLen + valueLen + overhead
	if headersLen > 0 {
		n += 4 + headersLen
	}
	return n
}

// AppendFrame appends the sealed frame of one record to dst and returns the
// extended slice. The plaintext is laid out in place and sealed there, so
// the only copy of key and value is into dst. headers, if not empty, is
// kept opaque after the value and sets FlagHeaders.
//
//	plaintext: klen u32 | key | vlen u32 | value [| hlen u32 | headers]
func AppendFrame(dst []byte, s Sealer, aad *AAD, h *Header, key, value, headers []byte) []byte {
	flags := h.Flags
	if len(headers) > 0 {
		flags |= FlagHeaders
	}
	size := FrameSize(len(key), len(value), len(headers), s.Overhead())
	start := len(dst)
	dst = grow(dst, size)
	f := dst[start : start+size]
	body := f[FrameHeaderSize:]
	body[0] = Version
	body[1] = flags
	binary.BigEndian.PutUint64(body[2:], h.Offset)
	binary.BigEndian.PutUint64(body[10:], uint64(h.Timestamp))
	binary.BigEndian.PutUint64(body[18:], uint64(h.Expiry))
	nonce := body[aadFixedSize:BodyHeaderSize]
	copy(nonce, h.Nonce[:])

	pt := body[BodyHeaderSize : len(body)-s.Overhead()]
	p := pt
	binary.BigEndian.PutUint32(p, uint32(len(key)))
	p = p[4+copy(p[4:], key):]
	binary.BigEndian.PutUint32(p, uint32(len(value)))
	p = p[4+copy(p[4:], value):]
	if len(headers) > 0 {
		binary.BigEndian.PutUint32(p, uint32(len(headers)))
		copy(p[4:], headers)
	}
	s.Seal(pt[:0], nonce, pt, aad.For(body))

	binary.BigEndian.PutUint32(f[0:], uint32(len(body)))
	binary.BigEndian.PutUint32(f[4:], Checksum(body))
	return dst
}

func grow(b []byte, n int) []byte {
	if cap(b)-len(b) < n {
		nb := make([]byte, len(b), 2*cap(b)+n)
		copy(nb, b)
		b = nb
	}
	return b[:len(b)+n]
}

// DecodeFrame checks the frame at the start of b and returns its body and
// its total size. ErrShort means b ends inside the frame (need says how
// many bytes the whole frame takes, when the length word was readable);
// ErrChecksum means the body does not match its CRC; ErrInvalid means the
// length word is impossible.
func DecodeFrame(b []byte) (body []byte, n int, err error) {
	if len(b) < FrameHeaderSize {
		return nil, 0, ErrShort
	}
	length := binary.BigEndian.Uint32(b)
	if length < BodyHeaderSize || length > MaxBodySize {
		return nil, 0, fmt.Errorf("%w: body length %d", ErrInvalid, length)
	}
	n = FrameHeaderSize + int(length)
	if len(b) < n {
		return nil, n, ErrShort
	}
	body = b[FrameHeaderSize:n]
	if Checksum(body) != binary.BigEndian.Uint32(b[4:]) {
		return nil, n, ErrChecksum
	}
	if body[0] != Version {
		return nil, n, fmt.Errorf("%w: unknown version %d", ErrInvalid, body[0])
	}
	return body, n, nil
}

// PeekSize returns the total frame size announced by the length word at the
// start of b, or 0 if b is shorter than a frame header or the length is
// impossible.
func PeekSize(b []byte) int {
	if len(b) < FrameHeaderSize {
		return 0
	}
	length := binary.BigEndian.Uint32(b)
	if length < BodyHeaderSize || length > MaxBodySize {
		return 0
	}
	return FrameHeaderSize + int(length)
}

// ParseHeader returns the clear header of a checked body.
func ParseHeader(body []byte) Header {
	h := Header{
		Version:   body[0],
		Flags:     body[1],
		Offset:    binary.BigEndian.Uint64(body[2:]),
		Timestamp: int64(binary.BigEndian.Uint64(body[10:])),
		Expiry:    int64(binary.BigEndian.Uint64(body[18:])),
	}
	copy(h.Nonce[:], body[aadFixedSize:BodyHeaderSize])
	return h
}

// Offset returns the offset of a checked body without parsing the rest.
func Offset(body []byte) uint64 { return binary.BigEndian.Uint64(body[2:]) }

// Timestamp returns the timestamp of a checked body.
func Timestamp(body []byte) int64 { return int64(binary.BigEndian.Uint64(body[10:])) }

// Payload is an opened record's plaintext, split. The slices alias the
// frame's buffer.
type Payload struct {
	Key, Value, Headers []byte
}

// Open authenticates the body in place (the buffer is overwritten with
// plaintext) and splits the plaintext. Authentication errors come from o
// unchanged; a plaintext whose lengths do not add up is ErrInvalid.
func Open(o Opener, aad *AAD, body []byte) (Payload, error) {
	nonce := body[aadFixedSize:BodyHeaderSize]
	ct := body[BodyHeaderSize:]
	pt, err := o.Open(ct[:0], nonce, ct, aad.For(body))
	if err != nil {
		return Payload{}, err
	}
	return SplitPlaintext(pt, body[1]&FlagHeaders != 0)
}

// SplitPlaintext splits klen|key|vlen|value[|hlen|headers].
func SplitPlaintext(pt []byte, hasHeaders bool) (Payload, error) {
	var p Payload
	var err error
	if p.Key, pt, err = cutLen(pt); err != nil {
		return Payload{}, err
	}
	if p.Value, pt, err = cutLen(pt); err != nil {
		return Payload{}, err
	}
	if hasHeaders {
		if p.Headers, pt, err = cutLen(pt); err != nil {
			return Payload{}, err
		}
	}
	if len(pt) != 0 {
		return Payload{}, fmt.Errorf("%w: %d trailing plaintext bytes", ErrInvalid, len(pt))
	}
	return p, nil
}

func cutLen(b []byte) (field, rest []byte, err error) {
	if len(b) < 4 {
		return nil, nil, fmt.Errorf("%w: plaintext too short", ErrInvalid)
	}
	n := binary.BigEndian.Uint32(b)
	if uint64(n) > uint64(len(b)-4) {
		return nil, nil, fmt.Errorf("%w: plaintext field length %d exceeds %d", ErrInvalid, n, len(b)-4)
	}
	if n == 0 {
		return nil, b[4:], nil
	}
	return b[4 : 4+n : 4+n], b[4+n:], nil
}
