// Package protocol implements the FlyMQ wire protocol: the 8-byte frame
// header, opcodes, the ERROR envelope and the binary codecs of every core
// operation (shared/protocol/core.md). It depends on the standard library
// only so that both the broker and pkg/client can use it.
//
// Frame layout (all integers big-endian):
//
//	byte 0    magic   0xAF
//	byte 1    version 0x01
//	byte 2    opcode
//	byte 3    flags   (0x01 binary, informational; 0x02 gzip payload)
//	byte 4-7  payload length, at most MaxPayload
//	payload   exactly length bytes
package protocol

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// Frame constants (core.md §2).
const (
	Magic      byte = 0xAF
	Version    byte = 0x01
	HeaderSize      = 8
	// MaxPayload is the largest payload length accepted in either
	// direction; every client rejects larger responses before reading them.
	MaxPayload = 32 << 20
)

// Header flag bits (core.md §2.1). Bits 2-3 (LZ4/Snappy upstream) are
// deliberately not named: the broker ignores them.
const (
	FlagBinary uint8 = 0x01
	FlagGzip   uint8 = 0x02
)

// Op is a frame opcode.
type Op uint8

// Core, consumer-group and cluster opcodes (core.md §6).
const (
	OpProduce         Op = 0x01
	OpConsume         Op = 0x02
	OpCreateTopic     Op = 0x03
	OpMetadata        Op = 0x04
	OpSubscribe       Op = 0x05
	OpCommit          Op = 0x06
	OpFetch           Op = 0x07
	OpListTopics      Op = 0x08
	OpDeleteTopic     Op = 0x09
	OpConsumeZeroCopy Op = 0x0A
	OpFetchBinary     Op = 0x0B

	OpClusterJoin     Op = 0x50
	OpClusterLeave    Op = 0x51
	OpClusterStatus   Op = 0x52
	OpClusterMetadata Op = 0x53

	OpGetOffset       Op = 0x60
	OpResetOffset     Op = 0x61
	OpListGroups      Op = 0x62
	OpDescribeGroup   Op = 0x63
	OpGetLag          Op = 0x64
	OpDeleteGroup     Op = 0x65
	OpSeekToTimestamp Op = 0x66
)

// Security and advanced opcodes (security-and-advanced.md §1).
const (
	OpRegisterSchema    Op = 0x10
	OpGetSchema         Op = 0x11
	OpListSchemas       Op = 0x12
	OpValidateSchema    Op = 0x13
	OpProduceWithSchema Op = 0x14
	OpDeleteSchema      Op = 0x15

	OpFetchDLQ  Op = 0x20
	OpReplayDLQ Op = 0x21
	OpPurgeDLQ  Op = 0x22

	OpProduceDelayed Op = 0x30
	OpCancelDelayed  Op = 0x31
	OpProduceWithTTL Op = 0x35

	OpBeginTx   Op = 0x40
	OpCommitTx  Op = 0x41
	OpAbortTx   Op = 0x42
	OpProduceTx Op = 0x43

	OpAuth           Op = 0x70
	OpAuthResponse   Op = 0x71 // reply opcode of AUTH only
	OpWhoAmI         Op = 0x72
	OpUserCreate     Op = 0x73
	OpUserDelete     Op = 0x74
	OpUserUpdate     Op = 0x75
	OpUserList       Op = 0x76
	OpUserGet        Op = 0x77
	OpACLSet         Op = 0x78
	OpACLGet         Op = 0x79
	OpACLDelete      Op = 0x7A
	OpACLList        Op = 0x7B
	OpPasswordChange Op = 0x7C
	OpRoleList       Op = 0x7D

	OpAuditQuery      Op = 0x80
	OpAuditExport     Op = 0x81
	OpAuditQueryJava  Op = 0xA0
	OpAuditExportJava Op = 0xA1

	// OpError is the opcode of every failure response.
	OpError Op = 0xFF
)

// opNames holds the lower-case names used as metrics labels. An array
// indexed by opcode keeps String allocation-free on the hot path.
var opNames = [256]string{
	OpProduce:           "produce",
	OpConsume:           "consume",
	OpCreateTopic:       "create_topic",
	OpMetadata:          "metadata",
	OpSubscribe:         "subscribe",
	OpCommit:            "commit",
	OpFetch:             "fetch",
	OpListTopics:        "list_topics",
	OpDeleteTopic:       "delete_topic",
	OpConsumeZeroCopy:   "consume_zero_copy",
	OpFetchBinary:       "fetch_binary",
	OpClusterJoin:       "cluster_join",
	OpClusterLeave:      "cluster_leave",
	OpClusterStatus:     "cluster_status",
	OpClusterMetadata:   "cluster_metadata",
	OpGetOffset:         "get_offset",
	OpResetOffset:       "reset_offset",
	OpListGroups:        "list_groups",
	OpDescribeGroup:     "describe_group",
	OpGetLag:            "get_lag",
	OpDeleteGroup:       "delete_group",
	OpSeekToTimestamp:   "seek_to_timestamp",
	OpRegisterSchema:    "register_schema",
	OpGetSchema:         "get_schema",
	OpListSchemas:       "list_schemas",
	OpValidateSchema:    "validate_schema",
	OpProduceWithSchema: "produce_with_schema",
	OpDeleteSchema:      "delete_schema",
	OpFetchDLQ:          "fetch_dlq",
	OpReplayDLQ:         "replay_dlq",
	OpPurgeDLQ:          "purge_dlq",
	OpProduceDelayed:    "produce_delayed",
	OpCancelDelayed:     "cancel_delayed",
	OpProduceWithTTL:    "produce_with_ttl",
	OpBeginTx:           "begin_tx",
	OpCommitTx:          "commit_tx",
	OpAbortTx:           "abort_tx",
	OpProduceTx:         "produce_tx",
	OpAuth:              "auth",
	OpAuthResponse:      "auth_response",
	OpWhoAmI:            "whoami",
	OpUserCreate:        "user_create",
	OpUserDelete:        "user_delete",
	OpUserUpdate:        "user_update",
	OpUserList:          "user_list",
	OpUserGet:           "user_get",
	OpACLSet:            "acl_set",
	OpACLGet:            "acl_get",
	OpACLDelete:         "acl_delete",
	OpACLList:           "acl_list",
	OpPasswordChange:    "password_change",
	OpRoleList:          "role_list",
	OpAuditQuery:        "audit_query",
	OpAuditExport:       "audit_export",
	OpAuditQueryJava:    "audit_query_java",
	OpAuditExportJava:   "audit_export_java",
	OpError:             "error",
}

// unknownOpNames is precomputed so that String never allocates, even for
// opcodes a hostile client invents (metrics label cardinality is bounded
// by 256 either way).
var unknownOpNames = func() (a [256]string) {
	for i := range a {
		a[i] = fmt.Sprintf("op_0x%02x", i)
	}
	return a
}()

// String returns the lower-case name of the opcode for metrics labels and
// logs, or "op_0xNN" for an opcode this package does not know.
func (o Op) String() string {
	if n := opNames[o]; n != "" {
		return n
	}
	return unknownOpNames[o]
}

// Known reports whether o is one of the opcodes named in the spec.
func (o Op) Known() bool { return opNames[o] != "" }

// Header is a decoded frame header.
type Header struct {
	Op     Op
	Flags  uint8
	Length uint32
}

// Connection-ending header errors: the broker closes the connection
// without a reply (core.md §4), clients fail the call.
var (
	ErrBadMagic      = errors.New("protocol: bad magic byte")
	ErrBadVersion    = errors.New("protocol: unsupported protocol version")
	ErrFrameTooLarge = errors.New("protocol: frame payload exceeds 32 MiB")
)

// Decoder errors. Their texts are sent verbatim on the wire (core.md
// §3.1), so they carry no package prefix.
var (
	ErrBufferTooSmall = errors.New("buffer too small")
	ErrInvalidFormat  = errors.New("invalid binary format")
)

// ParseHeader decodes the first HeaderSize bytes of b. It validates magic,
// version and the payload limit; flags are accepted as-is.
func ParseHeader(b []byte) (Header, error) {
	if len(b) < HeaderSize {
		return Header{}, ErrBufferTooSmall
	}
	if b[0] != Magic {
		return Header{}, ErrBadMagic
	}
	if b[1] != Version {
		return Header{}, ErrBadVersion
	}
	h := Header{Op: Op(b[2]), Flags: b[3], Length: binary.BigEndian.Uint32(b[4:8])}
	if h.Length > MaxPayload {
		return h, ErrFrameTooLarge
	}
	return h, nil
}

// AppendHeader appends a frame header announcing n payload bytes.
// The caller is responsible for n <= MaxPayload.
func AppendHeader(dst []byte, op Op, flags uint8, n int) []byte {
	return append(dst, Magic, Version, byte(op), flags,
		byte(uint32(n)>>24), byte(uint32(n)>>16), byte(uint32(n)>>8), byte(uint32(n)))
}

// AppendFrame appends a whole frame (header and payload).
func AppendFrame(dst []byte, op Op, flags uint8, payload []byte) []byte {
	dst = AppendHeader(dst, op, flags, len(payload))
	return append(dst, payload...)
}

// maxErrorText is the longest message a str16 can carry.
const maxErrorText = 1<<16 - 1

// errorCode is the only code upstream ever sends; no client reads it, but
// the vectors compare bytes.
const errorCode = 1

// AppendError appends a complete ERROR frame in the structured envelope
// every client decodes correctly (core.md §5.2): opcode 0xFF, flags 0x01,
// payload u32 code 1 then str16 msg. Messages longer than 65535 bytes are
// truncated.
func AppendError(dst []byte, msg string) []byte {
	if len(msg) > maxErrorText {
		msg = msg[:maxErrorText]
	}
	dst = AppendHeader(dst, OpError, FlagBinary, 6+len(msg))
	dst = binary.BigEndian.AppendUint32(dst, errorCode)
	dst = binary.BigEndian.AppendUint16(dst, uint16(len(msg)))
	return append(dst, msg...)
}

// DecodeError returns the message of an ERROR payload. It accepts the
// structured envelope and falls back to treating the whole payload as raw
// text (upstream's other envelope), exactly like the Go client does.
func DecodeError(payload []byte) string {
	if len(payload) >= 6 {
		n := int(binary.BigEndian.Uint16(payload[4:6]))
		if 6+n <= len(payload) {
			return string(payload[6 : 6+n])
		}
	}
	return string(payload)
}
