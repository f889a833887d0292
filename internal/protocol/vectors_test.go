package protocol

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"os"
	"reflect"
	"strconv"
	"strings"
	"testing"
)

// testdata/core.json is a verbatim copy of shared/protocol/vectors/core.json
// so that the package tests are hermetic.
const coreVectorsPath = "testdata/core.json"

type vector struct {
	Name      string         `json:"name"`
	Op        int            `json:"op"`
	Direction string         `json:"direction"`
	Hex       string         `json:"hex"`
	Fields    map[string]any `json:"fields"`
	Note      string         `json:"note"`
}

// codec is what every message type implements.
type codec interface {
	Decode(p []byte) error
	AppendTo(dst []byte) []byte
}

func loadVectors(t testing.TB) []vector {
	t.Helper()
	data, err := os.ReadFile(coreVectorsPath)
	if err != nil {
		t.Fatalf("read vectors: %v", err)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber() // u64 offsets must not pass through float64
	var vs []vector
	if err := dec.Decode(&vs); err != nil {
		t.Fatalf("parse vectors: %v", err)
	}
	return vs
}

func mustHex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatalf("bad hex %q: %v", s, err)
	}
	return b
}

// fields is a typed view of a vector's decoded values.
type fields struct {
	t testing.TB
	m map[string]any
}

func (f fields) has(k string) bool { _, ok := f.m[k]; return ok }

func (f fields) str(k string) string {
	v, ok := f.m[k].(string)
	if !ok {
		f.t.Fatalf("field %q: not a string: %#v", k, f.m[k])
	}
	return v
}

func (f fields) num(k string) json.Number {
	v, ok := f.m[k].(json.Number)
	if !ok {
		f.t.Fatalf("field %q: not a number: %#v", k, f.m[k])
	}
	return v
}

func (f fields) i64(k string) int64 {
	v, err := strconv.ParseInt(string(f.num(k)), 10, 64)
	if err != nil {
		f.t.Fatalf("field %q: %v", k, err)
	}
	return v
}

func (f fields) u64(k string) uint64 {
	v, err := strconv.ParseUint(string(f.num(k)), 10, 64)
	if err != nil {
		f.t.Fatalf("field %q: %v", k, err)
	}
	return v
}

func (f fields) i32(k string) int32  { return int32(f.i64(k)) }
func (f fields) u32(k string) uint32 { return uint32(f.u64(k)) }

// bytes decodes a *_hex field; empty means nil, the single "no key" form.
func (f fields) bytes(k string) []byte {
	s := f.str(k)
	if s == "" {
		return nil
	}
	return mustHex(f.t, s)
}

func (f fields) list(k string) []fields {
	raw, ok := f.m[k].([]any)
	if !ok {
		f.t.Fatalf("field %q: not a list: %#v", k, f.m[k])
	}
	out := make([]fields, len(raw))
	for i, e := range raw {
		out[i] = fields{f.t, e.(map[string]any)}
	}
	return out
}

func (f fields) strs(k string) []string {
	raw := f.m[k].([]any)
	out := make([]string, len(raw))
	for i, e := range raw {
		out[i] = e.(string)
	}
	return out
}

// expectedRequest builds the message a request vector must decode to.
// canonical reports whether the client layout re-encodes byte for byte.
func expectedRequest(op Op, f fields) (want codec, canonical bool) {
	switch op {
	case OpProduce:
		return &ProduceRequest{Topic: f.str("topic"), Key: f.bytes("key_hex"),
			Value: f.bytes("value_hex"), Partition: f.i32("partition")}, true
	case OpConsume, OpConsumeZeroCopy:
		return &ConsumeRequest{Topic: f.str("topic"), Partition: f.i32("partition"),
			Offset: f.u64("offset")}, true
	case OpCreateTopic:
		return &CreateTopicRequest{Topic: f.str("topic"), Partitions: f.i32("partitions")}, true
	case OpMetadata, OpDeleteTopic:
		return &TopicRequest{Topic: f.str("topic")}, true
	case OpSubscribe:
		return &SubscribeRequest{Topic: f.str("topic"), Group: f.str("group_id"),
			Partition: f.i32("partition"), Mode: f.str("mode")}, true
	case OpCommit:
		return &CommitRequest{Topic: f.str("topic"), Group: f.str("group_id"),
			Partition: f.i32("partition"), Offset: f.u64("offset")}, true
	case OpFetch, OpFetchBinary:
		m := &FetchRequest{Topic: f.str("topic"), Partition: f.i32("partition"),
			Offset: f.u64("offset"), MaxMessages: f.i32("max_messages")}
		if f.str("filter") == "(field absent)" {
			return m, false
		}
		m.Filter = f.str("filter")
		return m, true
	case OpClusterJoin:
		return &PeerRequest{Peer: f.str("peer")}, true
	case OpClusterMetadata:
		return &ClusterMetadataRequest{Topic: f.str("topic")}, true
	case OpGetOffset, OpGetLag:
		return &GroupOffsetRequest{Topic: f.str("topic"), Group: f.str("group_id"),
			Partition: f.i32("partition")}, true
	case OpResetOffset:
		m := &ResetOffsetRequest{Topic: f.str("topic"), Group: f.str("group_id"),
			Partition: f.i32("partition"), Mode: f.str("mode")}
		if _, absent := f.m["offset"].(string); !absent {
			m.Offset = f.u64("offset")
		}
		return m, true
	case OpDescribeGroup, OpDeleteGroup:
		if !f.has("topic") {
			return &GroupRequest{Group: f.str("group_id"), JavaForm: true}, true
		}
		return &GroupRequest{Topic: f.str("topic"), Group: f.str("group_id")}, true
	}
	return nil, false
}

// expectedResponse builds the message a success response vector encodes.
func expectedResponse(op Op, f fields) codec {
	switch op {
	case OpProduce:
		return &RecordMetadata{Topic: f.str("topic"), Partition: f.i32("partition"),
			Offset: f.u64("offset"), Timestamp: f.i64("timestamp_ms"),
			KeySize: f.i32("key_size"), ValueSize: f.i32("value_size")}
	case OpConsume, OpConsumeZeroCopy:
		return &ConsumeResponse{Key: f.bytes("key_hex"), Value: f.bytes("value_hex")}
	case OpCreateTopic, OpCommit, OpDeleteTopic, OpResetOffset, OpDeleteGroup:
		return &BoolResponse{OK: f.m["success"].(bool)}
	case OpSubscribe, OpGetOffset:
		return &OffsetResponse{Offset: f.u64("offset")}
	case OpFetch, OpFetchBinary:
		m := &FetchResponse{NextOffset: f.u64("next_offset")}
		for _, e := range f.list("messages") {
			m.Messages = append(m.Messages, FetchedMessage{Offset: e.u64("offset"),
				Key: e.bytes("key_hex"), Value: e.bytes("value_hex")})
		}
		if got := f.u32("count"); int(got) != len(m.Messages) {
			f.t.Fatalf("vector count %d != %d messages", got, len(m.Messages))
		}
		return m
	case OpListTopics:
		return &TopicList{Topics: f.strs("topics")}
	case OpClusterMetadata:
		m := &ClusterMetadata{ClusterID: f.str("cluster_id"), Topics: []TopicMetadata{}}
		for _, tf := range f.list("topics") {
			tm := TopicMetadata{Name: tf.str("topic"), Partitions: []PartitionMetadata{}}
			for _, pf := range tf.list("partitions") {
				tm.Partitions = append(tm.Partitions, PartitionMetadata{
					ID: pf.i32("partition"), LeaderID: pf.str("leader_id"),
					LeaderAddr: pf.str("leader_addr"), Epoch: pf.u64("epoch"),
					State: pf.str("state"), Replicas: pf.strs("replicas"), ISR: pf.strs("isr"),
				})
			}
			m.Topics = append(m.Topics, tm)
		}
		return m
	case OpListGroups:
		m := &GroupList{Groups: []GroupInfo{}}
		for _, g := range f.list("groups") {
			m.Groups = append(m.Groups, *groupFromFields(g))
		}
		return m
	case OpDescribeGroup:
		return groupFromFields(f)
	case OpGetLag:
		return &LagResponse{Current: f.u64("current_offset"), Committed: f.u64("committed_offset"),
			Latest: f.u64("latest_offset"), Lag: f.u64("lag")}
	}
	return nil
}

func groupFromFields(f fields) *GroupInfo {
	g := &GroupInfo{Topic: f.str("topic"), Group: f.str("group_id"),
		Members: f.u32("members"), Offsets: []PartitionOffset{}}
	for _, o := range f.list("offsets") {
		g.Offsets = append(g.Offsets, PartitionOffset{Partition: o.i32("partition"),
			Offset: o.u64("offset")})
	}
	return g
}

// newMessage returns a zero message of the same type as m.
func newMessage(m codec) codec {
	return reflect.New(reflect.TypeOf(m).Elem()).Interface().(codec)
}

// emptyPayloadOps carry no payload in the vectors (or one that is ignored).
var emptyPayloadOps = map[Op]bool{
	OpListTopics: true, OpListGroups: true, OpClusterLeave: true,
	OpClusterStatus: true, OpSeekToTimestamp: true, Op(0x0C): true,
}

// TestCoreVectors checks every entry of core.json against the codecs.
func TestCoreVectors(t *testing.T) {
	vs := loadVectors(t)
	if len(vs) == 0 {
		t.Fatal("no vectors")
	}
	// responses by the name prefix they share with their request
	resp := map[string]vector{}
	for _, v := range vs {
		if v.Direction == "response" {
			resp[strings.TrimSuffix(v.Name, ".response")] = v
		}
	}
	for _, v := range vs {
		t.Run(v.Name, func(t *testing.T) {
			frame := mustHex(t, v.Hex)
			f := fields{t, v.Fields}
			hf := fields{t, v.Fields["header"].(map[string]any)}
			h, err := ParseHeader(frame)
			if strings.HasPrefix(v.Name, "lifecycle.") {
				checkLifecycle(t, v, h, err)
				return
			}
			if err != nil {
				t.Fatalf("ParseHeader: %v", err)
			}
			wantH := Header{Op: Op(hf.u64("op")), Flags: uint8(hf.u64("flags")),
				Length: hf.u32("length")}
			if h != wantH || int(h.Op) != v.Op {
				t.Fatalf("header = %+v, want %+v (op %d)", h, wantH, v.Op)
			}
			payload := frame[HeaderSize:]
			if int(h.Length) != len(payload) {
				t.Fatalf("length %d, payload %d bytes", h.Length, len(payload))
			}
			if again := AppendFrame(nil, h.Op, h.Flags, payload); !bytes.Equal(again, frame) {
				t.Fatalf("AppendFrame = %x, want %x", again, frame)
			}
			switch {
			case v.Direction == "request":
				paired, ok := resp[strings.TrimSuffix(v.Name, ".request")]
				if !ok {
					t.Fatalf("no response for %s", v.Name)
				}
				checkRequest(t, h, payload, f, paired)
			case h.Op == OpError:
				checkError(t, frame, payload, f)
			default:
				checkResponse(t, h, payload, f)
			}
		})
	}
}

func checkLifecycle(t *testing.T, v vector, h Header, err error) {
	t.Helper()
	want := map[string]error{
		"lifecycle.bad_magic":       ErrBadMagic,
		"lifecycle.bad_version":     ErrBadVersion,
		"lifecycle.oversize_length": ErrFrameTooLarge,
	}[v.Name]
	if want == nil {
		t.Fatalf("unknown lifecycle vector %s", v.Name)
	}
	if !errors.Is(err, want) {
		t.Fatalf("ParseHeader err = %v, want %v", err, want)
	}
	// The frame reader must fail the same way without waiting for a payload.
	_, _, err = NewFrameReader(bytes.NewReader(mustHex(t, v.Hex))).Next()
	if !errors.Is(err, want) {
		t.Fatalf("FrameReader err = %v, want %v", err, want)
	}
	if v.Name == "lifecycle.oversize_length" && h.Length != 33554433 {
		t.Fatalf("length = %d", h.Length)
	}
}

func checkRequest(t *testing.T, h Header, payload []byte, f fields, paired vector) {
	t.Helper()
	errMsg := ""
	if paired.Op == int(OpError) {
		errMsg, _ = paired.Fields["message"].(string)
	}
	if h.Flags&FlagGzip != 0 {
		plain, err := Gunzip(payload, MaxPayload)
		if err != nil {
			if err.Error() != errMsg {
				t.Fatalf("Gunzip err %q, response says %q", err, errMsg)
			}
			return
		}
		if want := f.bytes("plain_payload_hex"); !bytes.Equal(plain, want) {
			t.Fatalf("gunzipped %x, want %x", plain, want)
		}
		payload = plain
	}
	if emptyPayloadOps[h.Op] {
		if len(payload) != 0 {
			t.Fatalf("expected empty payload, got %x", payload)
		}
		return
	}
	if f.has("raw") || f.has("raw_hex") {
		// Malformed on purpose: the decoder error is the response text
		// (CLUSTER_METADATA adds an "invalid request: " prefix).
		got := decodeInto(t, h.Op, payload)
		if got == nil || !strings.HasSuffix(errMsg, got.Error()) {
			t.Fatalf("decode err = %v, response message %q", got, errMsg)
		}
		return
	}
	want, canonical := expectedRequest(h.Op, f)
	if want == nil {
		t.Fatalf("no codec for op %v", h.Op)
	}
	got := newMessage(want)
	if err := got.Decode(payload); err != nil {
		if errMsg == "" || err.Error() != errMsg {
			t.Fatalf("Decode: %v (response message %q)", err, errMsg)
		}
		return
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("decoded %+v, want %+v", got, want)
	}
	if canonical {
		if enc := got.AppendTo(nil); !bytes.Equal(enc, payload) {
			t.Fatalf("re-encoded %x, want %x", enc, payload)
		}
	}
}

// decodeInto decodes payload with the request codec of op.
func decodeInto(t *testing.T, op Op, payload []byte) error {
	t.Helper()
	var m codec
	switch op {
	case OpProduce:
		m = &ProduceRequest{}
	case OpClusterMetadata:
		m = &ClusterMetadataRequest{}
	default:
		t.Fatalf("no malformed-request decoder for %v", op)
	}
	return m.Decode(payload)
}

func checkError(t *testing.T, frame, payload []byte, f fields) {
	t.Helper()
	msg := f.str("message")
	want := frame
	if f.has("spec_frame_hex") {
		want = mustHex(t, f.str("spec_frame_hex"))
	}
	if got := AppendError(nil, msg); !bytes.Equal(got, want) {
		t.Fatalf("AppendError(%q) = %x, want %x", msg, got, want)
	}
	// The client decodes both the structured and the raw upstream envelope.
	if got := DecodeError(payload); got != msg {
		t.Fatalf("DecodeError(upstream frame) = %q, want %q", got, msg)
	}
	if got := DecodeError(want[HeaderSize:]); got != msg {
		t.Fatalf("DecodeError(spec frame) = %q, want %q", got, msg)
	}
}

func checkResponse(t *testing.T, h Header, payload []byte, f fields) {
	t.Helper()
	want := expectedResponse(h.Op, f)
	if want == nil {
		t.Fatalf("no response codec for op %v", h.Op)
	}
	if h.Flags != FlagBinary {
		t.Fatalf("response flags %#x", h.Flags)
	}
	if enc := want.AppendTo(nil); !bytes.Equal(enc, payload) {
		t.Fatalf("encoded %x, want %x", enc, payload)
	}
	got := newMessage(want)
	if err := got.Decode(payload); err != nil {
		t.Fatalf("Decode: %v", err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("decoded %+v, want %+v", got, want)
	}
	if se, ok := f.m["spec_expected"].(map[string]any); ok {
		// The values this spec requires instead must encode and decode too.
		merged := map[string]any{}
		for k, v := range f.m {
			merged[k] = v
		}
		for k, v := range se {
			merged[k] = v
		}
		spec := expectedResponse(h.Op, fields{t, merged})
		back := newMessage(spec)
		if err := back.Decode(spec.AppendTo(nil)); err != nil || !reflect.DeepEqual(back, spec) {
			t.Fatalf("spec_expected round trip: %+v, %v", back, err)
		}
	}
}

// TestVectorsPipelined feeds every well-formed vector frame through one
// FrameReader in a single stream, as a pipelining client would.
func TestVectorsPipelined(t *testing.T) {
	var stream []byte
	var frames [][]byte
	for _, v := range loadVectors(t) {
		if strings.HasPrefix(v.Name, "lifecycle.") {
			continue
		}
		b := mustHex(t, v.Hex)
		stream = append(stream, b...)
		frames = append(frames, b)
	}
	fr := NewFrameReader(bytes.NewReader(stream))
	for i, want := range frames {
		h, p, err := fr.Next()
		if err != nil {
			t.Fatalf("frame %d: %v", i, err)
		}
		if got := AppendFrame(nil, h.Op, h.Flags, p); !bytes.Equal(got, want) {
			t.Fatalf("frame %d = %x, want %x", i, got, want)
		}
	}
	if _, _, err := fr.Next(); !errors.Is(err, io.EOF) {
		t.Fatalf("after last frame: %v, want EOF", err)
	}
}
