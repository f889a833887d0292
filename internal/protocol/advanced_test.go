package protocol

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"reflect"
	"strings"
	"testing"
)

const advancedVectorsPath = "../../testdata/vectors/security-and-advanced.json"

// advancedOps are the opcodes of §§8–11.
var advancedOps = map[Op]bool{
	OpRegisterSchema: true, OpGetSchema: true, OpListSchemas: true, OpValidateSchema: true,
	OpProduceWithSchema: true, OpDeleteSchema: true, OpFetchDLQ: true, OpReplayDLQ: true,
	OpPurgeDLQ: true, OpProduceDelayed: true, OpCancelDelayed: true, OpProduceWithTTL: true,
	OpBeginTx: true, OpCommitTx: true, OpAbortTx: true, OpProduceTx: true,
}

// advancedVectors returns the §§8–11 entries (requests of those ops and
// every reply paired with one, ERROR frames included).
func advancedVectors(t testing.TB) []vector {
	t.Helper()
	data, err := os.ReadFile(advancedVectorsPath)
	if err != nil {
		t.Fatalf("read vectors: %v", err)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var all []vector
	if err := dec.Decode(&all); err != nil {
		t.Fatal(err)
	}
	reqOp := map[string]Op{} // case name → request opcode
	for _, v := range all {
		if v.Direction == "request" {
			reqOp[caseName(v.Name)] = Op(v.Op)
		}
	}
	var out []vector
	for _, v := range all {
		if advancedOps[reqOp[caseName(v.Name)]] {
			out = append(out, v)
		}
	}
	return out
}

// caseName strips the kind: "fetch_dlq.one.request" → "fetch_dlq.one".
func caseName(name string) string {
	return name[:strings.LastIndexByte(name, '.')]
}

func advancedRequest(op Op, f fields) codec {
	switch op {
	case OpRegisterSchema:
		return &RegisterSchemaRequest{Name: f.str("name"), Type: f.str("type"), Definition: f.bytes("schema_hex")}
	case OpGetSchema, OpDeleteSchema:
		return &SchemaVersionRequest{Name: f.str("name"), Version: f.u32("version")}
	case OpListSchemas:
		return &ListSchemasRequest{Filter: f.str("name_filter")}
	case OpValidateSchema:
		return &ValidateSchemaRequest{Name: f.str("name"), Message: f.bytes("message_hex")}
	case OpProduceWithSchema:
		return &ProduceWithSchemaRequest{Topic: f.str("topic"), SchemaName: f.str("schema_name"),
			Data: f.bytes("data_hex"), LayoutB: f.str("layout") == "python-java"}
	case OpFetchDLQ:
		return &FetchDLQRequest{Topic: f.str("topic"), MaxMessages: f.i32("max_messages")}
	case OpReplayDLQ:
		if f.str("form") == "replay-by-id" {
			return &ReplayDLQRequest{Topic: f.str("topic"), MessageID: f.str("message_id")}
		}
		return &ReplayDLQRequest{Topic: f.str("topic"), Offset: f.u64("offset"), ByOffset: true}
	case OpPurgeDLQ:
		return &TopicRequest{Topic: f.str("topic")}
	case OpProduceDelayed:
		return &ProduceDelayedRequest{Topic: f.str("topic"), Data: f.bytes("data_hex"), DelayMs: f.i64("delay_ms")}
	case OpProduceWithTTL:
		return &ProduceTTLRequest{Topic: f.str("topic"), Data: f.bytes("data_hex"), TTLMs: f.i64("ttl_ms")}
	case OpCommitTx, OpAbortTx:
		return &TxnRequest{TxnID: f.str("txn_id")}
	case OpProduceTx:
		return &ProduceTxRequest{TxnID: f.str("txn_id"), Topic: f.str("topic"), Data: f.bytes("data_hex")}
	}
	return nil
}

func advancedResponse(op Op, kind string, f fields) codec {
	switch op {
	case OpRegisterSchema:
		return &SchemaRegistered{Name: f.str("name"), Type: f.str("type"), Version: f.u32("version")}
	case OpGetSchema:
		if kind == "response" {
			return nil // upstream's detail layout: no client decodes it (§8.2)
		}
		return &SchemaDetail{SchemaEntry: SchemaEntry{ID: f.str("id"), Type: f.str("type"), Version: f.u32("version")},
			Name: f.str("topic"), Definition: []byte(f.str("definition")), Compatibility: f.str("compatibility")}
	case OpListSchemas:
		var l SchemaList
		for _, e := range f.list("schemas") {
			l.Schemas = append(l.Schemas, SchemaEntry{ID: e.str("name"), Type: e.str("type"), Version: e.u32("version")})
		}
		if l.Schemas == nil {
			l.Schemas = []SchemaEntry{}
		}
		return &l
	case OpValidateSchema:
		return &ValidateSchemaResponse{Valid: f.m["valid"].(bool), Errors: f.strs("errors")}
	case OpProduceWithSchema, OpProduceDelayed, OpProduceWithTTL, OpProduceTx:
		return &RecordMetadata{Topic: f.str("topic"), Partition: f.i32("partition"), Offset: f.u64("offset"),
			Timestamp: f.i64("timestamp_ms"), KeySize: f.i32("key_size"), ValueSize: f.i32("value_size")}
	case OpDeleteSchema, OpPurgeDLQ:
		return &StatusResponse{Success: f.m["success"].(bool), Message: f.str("message")}
	case OpReplayDLQ:
		if f.has("message_len_u32") {
			return &ReinjectResponse{Success: f.m["success"].(bool), Message: f.str("message")}
		}
		return &StatusResponse{Success: f.m["success"].(bool), Message: f.str("message")}
	case OpFetchDLQ:
		l := DLQMessages{Messages: []DLQMessage{}}
		for _, e := range f.list("messages") {
			l.Messages = append(l.Messages, DLQMessage{ID: e.str("id"), Data: e.bytes("data_hex"),
				Error: e.str("error"), Retries: e.i32("retries")})
		}
		return &l
	case OpBeginTx, OpCommitTx, OpAbortTx:
		return &TxnResponse{TxnID: f.str("txn_id"), Success: f.m["success"].(bool)}
	}
	return nil
}

// TestAdvancedVectors decodes every §§8–11 frame to the listed fields and
// re-encodes it byte for byte; ERROR frames carry the listed text and the
// broker's structured form equals the expected bytes.
func TestAdvancedVectors(t *testing.T) {
	vs := advancedVectors(t)
	if len(vs) < 80 {
		t.Fatalf("only %d vectors of §§8–11 found", len(vs))
	}
	for _, v := range vs {
		t.Run(v.Name, func(t *testing.T) {
			frame := mustHex(t, v.Hex)
			h, err := ParseHeader(frame)
			if err != nil {
				t.Fatal(err)
			}
			p := frame[HeaderSize:]
			f := fields{t, v.Fields}
			kind := v.Name[strings.LastIndexByte(v.Name, '.')+1:]
			var want codec
			switch {
			case h.Op == OpError:
				msg := f.str("message")
				if got := DecodeError(p); got != msg {
					t.Fatalf("error text %q, want %q", got, msg)
				}
				if f.str("format") == "structured" && !bytes.Equal(AppendError(nil, msg), frame) {
					t.Fatalf("AppendError differs from %s", v.Hex)
				}
				return
			case v.Direction == "request":
				if h.Op == OpBeginTx || h.Op == OpCancelDelayed {
					return // empty / arbitrary payload
				}
				want = advancedRequest(h.Op, f)
			default:
				want = advancedResponse(h.Op, kind, f)
			}
			if want == nil {
				return
			}
			got := reflect.New(reflect.TypeOf(want).Elem()).Interface().(codec)
			if err := got.Decode(p); err != nil {
				t.Fatalf("Decode: %v", err)
			}
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("Decode\n got %+v\nwant %+v", got, want)
			}
			if enc := want.AppendTo([]byte{0xEE}); enc[0] != 0xEE || !bytes.Equal(enc[1:], p) {
				t.Fatalf("AppendTo\n got %x\nwant %x", enc[1:], p)
			}
		})
	}
}

// TestProduceWithSchemaLayouts covers the disambiguation of §8.5.
func TestProduceWithSchemaLayouts(t *testing.T) {
	a := ProduceWithSchemaRequest{Topic: "t", SchemaName: "s", Data: []byte(`{"id":1}`)}
	b := a
	b.LayoutB = true
	for _, m := range []ProduceWithSchemaRequest{a, b} {
		var got ProduceWithSchemaRequest
		if err := got.Decode(m.AppendTo(nil)); err != nil || got.Ambiguous || !reflect.DeepEqual(got, m) {
			t.Fatalf("layout B=%v: %+v %v", m.LayoutB, got, err)
		}
	}
	// B with empty data and name S is byte-identical to A with empty name
	// and data S.
	amb := ProduceWithSchemaRequest{Topic: "t", SchemaName: "orders", LayoutB: true}
	var got ProduceWithSchemaRequest
	if err := got.Decode(amb.AppendTo(nil)); err != nil || !got.Ambiguous || !got.LayoutB || got.SchemaName != "orders" || got.Data != nil {
		t.Fatalf("ambiguous: %+v %v", got, err)
	}
	if la := got.LayoutA(); la.SchemaName != "" || string(la.Data) != "orders" || la.LayoutB {
		t.Fatalf("LayoutA: %+v", la)
	}
	bad := append(a.AppendTo(nil), 0)
	if err := got.Decode(bad); !errors.Is(err, ErrInvalidFormat) {
		t.Fatalf("trailing byte: %v", err)
	}
	if err := got.Decode([]byte{0, 1, 't', 0, 0, 0, 0}); !errors.Is(err, ErrBufferTooSmall) {
		t.Fatalf("short: %v", err)
	}
}

// TestAdvancedDecodeErrors checks the minimum sizes of §§8–11 and the
// REPLAY_DLQ form selection.
func TestAdvancedDecodeErrors(t *testing.T) {
	cases := []struct {
		m    codec
		p    []byte
		want error
	}{
		{&RegisterSchemaRequest{}, []byte{0, 0, 0, 0, 0, 0}, ErrBufferTooSmall},
		{&RegisterSchemaRequest{}, []byte{0, 0, 0, 0, 0, 0, 9}, ErrInvalidFormat},
		{&SchemaVersionRequest{}, []byte{0, 0, 0, 0, 0}, ErrBufferTooSmall},
		{&SchemaVersionRequest{}, []byte{0, 9, 0, 0, 0, 0}, ErrInvalidFormat},
		{&ValidateSchemaRequest{}, []byte{0, 0, 0, 0, 0, 1}, ErrInvalidFormat},
		{&FetchDLQRequest{}, []byte{0, 0, 0, 0, 0}, ErrBufferTooSmall},
		{&ReplayDLQRequest{}, []byte{0, 0, 0}, ErrBufferTooSmall},
		{&ReplayDLQRequest{}, []byte{0, 0, 0, 1, 'x', 'y'}, ErrInvalidFormat},
		{&ProduceDelayedRequest{}, make([]byte, 13), ErrBufferTooSmall},
		{&ProduceTTLRequest{}, []byte{0, 0, 0, 0, 0, 9, 0, 0, 0, 0, 0, 0, 0, 0}, ErrInvalidFormat},
		{&ProduceTxRequest{}, make([]byte, 7), ErrBufferTooSmall},
		{&TxnRequest{}, []byte{0}, ErrBufferTooSmall},
		{&TxnRequest{}, []byte{0, 5, 'a'}, ErrInvalidFormat},
	}
	for i, c := range cases {
		if err := c.m.Decode(c.p); !errors.Is(err, c.want) {
			t.Errorf("case %d %T: %v, want %v", i, c.m, err, c.want)
		}
	}
	var l ListSchemasRequest
	if err := l.Decode([]byte{0}); err != nil || l.Filter != "" {
		t.Fatalf("short LIST_SCHEMAS: %+v %v", l, err)
	}
	var r ReplayDLQRequest
	if err := r.Decode([]byte{0, 1, 'o', 0, 0, 0, 0, 0, 0, 0, 7}); err != nil || !r.ByOffset || r.Offset != 7 {
		t.Fatalf("re-inject form: %+v %v", r, err)
	}
}

func FuzzRegisterSchemaRequest(f *testing.F) {
	fuzzDecoder(f, func() codec { return &RegisterSchemaRequest{} })
}
func FuzzSchemaVersionRequest(f *testing.F) {
	fuzzDecoder(f, func() codec { return &SchemaVersionRequest{} })
}
func FuzzSchemaDetail(f *testing.F) { fuzzDecoder(f, func() codec { return &SchemaDetail{} }) }
func FuzzSchemaList(f *testing.F)   { fuzzDecoder(f, func() codec { return &SchemaList{} }) }
func FuzzListSchemasRequest(f *testing.F) {
	fuzzDecoder(f, func() codec { return &ListSchemasRequest{} })
}
func FuzzValidateSchemaRequest(f *testing.F) {
	fuzzDecoder(f, func() codec { return &ValidateSchemaRequest{} })
}
func FuzzValidateSchemaResponse(f *testing.F) {
	fuzzDecoder(f, func() codec { return &ValidateSchemaResponse{} })
}
func FuzzProduceWithSchemaRequest(f *testing.F) {
	fuzzDecoder(f, func() codec { return &ProduceWithSchemaRequest{} })
}
func FuzzStatusResponse(f *testing.F)   { fuzzDecoder(f, func() codec { return &StatusResponse{} }) }
func FuzzFetchDLQRequest(f *testing.F)  { fuzzDecoder(f, func() codec { return &FetchDLQRequest{} }) }
func FuzzDLQMessages(f *testing.F)      { fuzzDecoder(f, func() codec { return &DLQMessages{} }) }
func FuzzReplayDLQRequest(f *testing.F) { fuzzDecoder(f, func() codec { return &ReplayDLQRequest{} }) }
func FuzzReinjectResponse(f *testing.F) { fuzzDecoder(f, func() codec { return &ReinjectResponse{} }) }
func FuzzProduceDelayedRequest(f *testing.F) {
	fuzzDecoder(f, func() codec { return &ProduceDelayedRequest{} })
}
func FuzzProduceTTLRequest(f *testing.F) {
	fuzzDecoder(f, func() codec { return &ProduceTTLRequest{} })
}
func FuzzTxnRequest(f *testing.F)       { fuzzDecoder(f, func() codec { return &TxnRequest{} }) }
func FuzzTxnResponse(f *testing.F)      { fuzzDecoder(f, func() codec { return &TxnResponse{} }) }
func FuzzProduceTxRequest(f *testing.F) { fuzzDecoder(f, func() codec { return &ProduceTxRequest{} }) }
