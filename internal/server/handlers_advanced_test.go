package server

import (
	"bytes"
	"encoding/hex"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/flymq/flymq/internal/auth"
	"github.com/flymq/flymq/internal/broker"
	"github.com/flymq/flymq/internal/protocol"
)

// gateIdentities creates the seven identities the gate tests try every
// row as, logs each in, then deletes or disables two of them while their
// sessions stay open (access must end at once, §3.1 and §3.3).
func gateIdentities(t *testing.T, h *harness, store *auth.Store) map[string]net.Conn {
	t.Helper()
	admin := auth.Identity{User: "admin"}
	for _, u := range []struct {
		name  string
		roles []string
	}{
		{"prod", []string{"producer"}}, {"cons", []string{"consumer"}}, {"guest", []string{"guest"}},
		{"gone", []string{"admin"}}, {"frozen", []string{"admin"}},
	} {
		if err := store.CreateUser(admin, u.name, u.name+"-password", u.roles); err != nil {
			t.Fatal(err)
		}
	}
	conns := map[string]net.Conn{
		"anonymous": login(t, h, "", ""),
		"admin":     login(t, h, "admin", adminPass),
		"producer":  login(t, h, "prod", "prod-password"),
		"consumer":  login(t, h, "cons", "cons-password"),
		"guest":     login(t, h, "guest", "guest-password"),
		"deleted":   login(t, h, "gone", "gone-password"),
		"disabled":  login(t, h, "frozen", "frozen-password"),
	}
	if err := store.DeleteUser(admin, "gone"); err != nil {
		t.Fatal(err)
	}
	off := false
	if err := store.UpdateUser(admin, "frozen", nil, &off); err != nil {
		t.Fatal(err)
	}
	return conns
}

// TestAdvancedGateRows checks every row added for §§8–11 both ways: the
// identities §3.5 allows are served, every other one gets the exact
// authorization text, and nothing reaches the broker for them.
func TestAdvancedGateRows(t *testing.T) {
	h, store := authHarness(t, nil)
	conns := gateIdentities(t, h, store)
	b := h.broker
	if err := b.CreateTopic("t", 1); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Schemas().Register("s1", "json", []byte(`{"type":"object"}`)); err != nil {
		t.Fatal(err)
	}
	if _, err := b.DeadLetter(broker.DLQRecord{ID: "d1", OriginalTopic: "t", Payload: []byte("p")}); err != nil {
		t.Fatal(err)
	}
	session := []string{"admin", "producer", "consumer", "guest"}
	writers := []string{"admin", "producer"}
	rows := []struct {
		name    string
		op      protocol.Op
		payload []byte
		allowed []string
		// allowedErr is an ERROR text an allowed identity may get past
		// the gate (e.g. an unknown transaction id).
		allowedErr string
	}{
		{"register_schema", protocol.OpRegisterSchema, enc(&protocol.RegisterSchemaRequest{Name: "s2", Type: "json", Definition: []byte(`{}`)}), writers, ""},
		{"get_schema", protocol.OpGetSchema, enc(&protocol.SchemaVersionRequest{Name: "s1"}), session, ""},
		{"list_schemas", protocol.OpListSchemas, enc(&protocol.ListSchemasRequest{}), session, ""},
		{"validate_schema", protocol.OpValidateSchema, enc(&protocol.ValidateSchemaRequest{Name: "s1", Message: []byte(`{}`)}), session, ""},
		{"produce_with_schema", protocol.OpProduceWithSchema, enc(&protocol.ProduceWithSchemaRequest{Topic: "t", SchemaName: "s1", Data: []byte(`{}`)}), writers, ""},
		{"fetch_dlq", protocol.OpFetchDLQ, enc(&protocol.FetchDLQRequest{Topic: "t", MaxMessages: 10}), []string{"admin", "consumer"}, ""},
		{"replay_dlq", protocol.OpReplayDLQ, enc(&protocol.ReplayDLQRequest{Topic: "t", MessageID: "d1"}), writers, ""},
		{"reinject_dlq", protocol.OpReplayDLQ, enc(&protocol.ReplayDLQRequest{Topic: "t", Offset: 0, ByOffset: true}), writers, ""},
		{"produce_delayed", protocol.OpProduceDelayed, enc(&protocol.ProduceDelayedRequest{Topic: "t", Data: []byte("d"), DelayMs: 3_600_000}), writers, ""},
		{"produce_with_ttl", protocol.OpProduceWithTTL, enc(&protocol.ProduceTTLRequest{Topic: "t", Data: []byte("x"), TTLMs: 60_000}), writers, ""},
		{"begin_tx", protocol.OpBeginTx, nil, session, ""},
		{"commit_tx", protocol.OpCommitTx, enc(&protocol.TxnRequest{TxnID: "nope"}), session, "transaction not found: nope"},
		{"abort_tx", protocol.OpAbortTx, enc(&protocol.TxnRequest{TxnID: "nope"}), session, "transaction not found: nope"},
		{"produce_tx", protocol.OpProduceTx, enc(&protocol.ProduceTxRequest{TxnID: "nope", Topic: "t", Data: []byte("x")}), writers, "transaction not found: nope"},
		// Destructive rows last.
		{"delete_schema", protocol.OpDeleteSchema, enc(&protocol.SchemaVersionRequest{Name: "s1"}), []string{"admin"}, ""},
		{"purge_dlq", protocol.OpPurgeDLQ, enc(&protocol.TopicRequest{Topic: "t"}), []string{"admin"}, ""},
	}
	everyone := []string{"anonymous", "admin", "producer", "consumer", "guest", "deleted", "disabled"}
	for _, r := range rows {
		for _, who := range everyone {
			op, p := call(t, conns[who], r.op, r.payload)
			if contains(r.allowed, who) {
				if op == protocol.OpError && protocol.DecodeError(p) != r.allowedErr {
					t.Errorf("%s as %s: refused with %q", r.name, who, protocol.DecodeError(p))
				}
				continue
			}
			want := "unauthorized"
			switch who {
			case "anonymous":
				want = "authentication required"
			case "disabled":
				want = "user account is disabled"
			}
			if op != protocol.OpError || protocol.DecodeError(p) != want {
				t.Errorf("%s as %s: got op %v %q, want %q", r.name, who, op, protocol.DecodeError(p), want)
			}
		}
	}
	// Refused identities wrote nothing: the two writers' produces only.
	if got := b.PendingDelayed(); got != 2 {
		t.Errorf("pending delayed %d, want 2", got)
	}
	// CANCEL_DELAYED stays unknown (§10.2).
	if op, p := call(t, conns["admin"], protocol.OpCancelDelayed, []byte{0, 5, 'd', 'u', 'm', 'm', 'y'}); op != protocol.OpError || protocol.DecodeError(p) != "unknown opcode: 49" {
		t.Errorf("cancel_delayed: %v %q", op, protocol.DecodeError(p))
	}
}

// TestTxnOwnership: a transaction belongs to the user who began it
// (§11.5): another user with the same permissions gets "unauthorized",
// the owner (on another connection, as after a reconnect) commits it.
func TestTxnOwnership(t *testing.T) {
	h, store := authHarness(t, nil)
	admin := auth.Identity{User: "admin"}
	for _, u := range []string{"alice", "bob"} {
		if err := store.CreateUser(admin, u, u+"-password", []string{"producer", "consumer"}); err != nil {
			t.Fatal(err)
		}
	}
	alice, bob := login(t, h, "alice", "alice-password"), login(t, h, "bob", "bob-password")
	op, p := call(t, alice, protocol.OpBeginTx, nil)
	var tr protocol.TxnResponse
	if op != protocol.OpBeginTx || tr.Decode(p) != nil || !tr.Success || len(tr.TxnID) != 36 {
		t.Fatalf("begin: %v %x", op, p)
	}
	id := tr.TxnID
	if op, p := call(t, alice, protocol.OpProduceTx, enc(&protocol.ProduceTxRequest{TxnID: id, Topic: "tx", Data: []byte("v")})); op != protocol.OpProduceTx {
		t.Fatalf("produce_tx: %q", protocol.DecodeError(p))
	}
	for _, c := range []struct {
		op      protocol.Op
		payload []byte
	}{
		{protocol.OpCommitTx, enc(&protocol.TxnRequest{TxnID: id})},
		{protocol.OpAbortTx, enc(&protocol.TxnRequest{TxnID: id})},
		{protocol.OpProduceTx, enc(&protocol.ProduceTxRequest{TxnID: id, Topic: "tx", Data: []byte("evil")})},
	} {
		if op, p := call(t, bob, c.op, c.payload); op != protocol.OpError || protocol.DecodeError(p) != "unauthorized" {
			t.Errorf("bob %v: %v %q", c.op, op, protocol.DecodeError(p))
		}
	}
	if msgs, _, _ := h.broker.Fetch("tx", 0, 0, 10, "", 0); len(msgs) != 0 {
		t.Fatalf("uncommitted visible: %d", len(msgs))
	}
	again := login(t, h, "alice", "alice-password")
	if op, p := call(t, again, protocol.OpCommitTx, enc(&protocol.TxnRequest{TxnID: id})); op != protocol.OpCommitTx {
		t.Fatalf("owner commit: %q", protocol.DecodeError(p))
	}
	op, p = call(t, bob, protocol.OpFetch, enc(&protocol.FetchRequest{Topic: "tx", MaxMessages: 10}))
	var fr protocol.FetchResponse
	if op != protocol.OpFetch || fr.Decode(p) != nil || len(fr.Messages) != 1 || string(fr.Messages[0].Value) != "v" {
		t.Fatalf("after commit: %v %+v", op, fr)
	}
}

// TestAdvancedVectorsReplay sends every §§8–11 request of the vectors
// (server A: auth on, no anonymous access, topics private) on the
// session it names and checks the reply against the expected bytes, or
// the captured ones where the spec keeps them; wall-clock timestamps,
// offsets of upstream's other traffic and transaction ids are masked.
func TestAdvancedVectorsReplay(t *testing.T) {
	h, _ := authHarness(t, nil)
	b := h.broker
	// Set-up frames the vectors omit.
	if _, err := b.Schemas().Register("users", "avro", []byte(`{"type":"record","name":"U","fields":[{"name":"n","type":"string"}]}`)); err != nil {
		t.Fatal(err)
	}
	at := time.Now().UTC()
	if _, err := b.DeadLetter(broker.DLQRecord{ID: "dlq-1", OriginalTopic: "orders", OriginalOffset: 5,
		Payload: []byte("hello"), Reason: broker.ReasonProcessingError, ErrorMessage: "boom", RetryCount: 3,
		FirstFailedAt: at, LastFailedAt: at}); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Produce("orders.dlq", 0, nil, []byte("not a DLQ record")); err != nil {
		t.Fatal(err)
	}
	sessions := map[string]net.Conn{"admin": login(t, h, "admin", adminPass), "anon": login(t, h, "", "")}

	vs := loadVectors(t, "security-and-advanced.json")
	replies := map[string]vector{}
	for _, v := range vs {
		if v.Direction == "response" {
			kind := v.Name[strings.LastIndexByte(v.Name, '.')+1:]
			c := v.Name[:strings.LastIndexByte(v.Name, '.')]
			if _, have := replies[c]; kind == "expected" || !have {
				replies[c] = v
			}
		}
	}
	txnIDs := map[string]string{} // upstream id → ours
	ourTxn := func(c net.Conn, upstream string) string {
		if id, ok := txnIDs[upstream]; ok || upstream == "nope" {
			if !ok {
				return upstream
			}
			return id
		}
		op, p := call(t, c, protocol.OpBeginTx, nil)
		var tr protocol.TxnResponse
		if op != protocol.OpBeginTx || tr.Decode(p) != nil {
			t.Fatalf("begin: %v", op)
		}
		txnIDs[upstream] = tr.TxnID
		return tr.TxnID
	}
	advOps := map[int]bool{0x10: true, 0x11: true, 0x12: true, 0x13: true, 0x14: true, 0x15: true, 0x20: true,
		0x21: true, 0x22: true, 0x30: true, 0x31: true, 0x35: true, 0x40: true, 0x41: true, 0x42: true, 0x43: true}
	replayed := 0
	for _, v := range vs {
		if v.Direction != "request" || !advOps[v.Op] || v.Fields["server"] != "A" {
			continue
		}
		c := sessions[v.Fields["session"].(string)]
		name := v.Name[:strings.LastIndexByte(v.Name, '.')]
		want := replies[name]
		frame := mustHex(t, v.Hex)
		hd, _ := protocol.ParseHeader(frame)
		payload := frame[protocol.HeaderSize:]
		// Transaction ids are the old server's: use ours.
		switch hd.Op {
		case protocol.OpCommitTx, protocol.OpAbortTx:
			var r protocol.TxnRequest
			r.Decode(payload)
			r.TxnID = ourTxn(c, r.TxnID)
			payload = enc(&r)
		case protocol.OpProduceTx:
			var r protocol.ProduceTxRequest
			r.Decode(payload)
			r.TxnID = ourTxn(c, r.TxnID)
			payload = enc(&r)
		}
		op, p := call(t, c, hd.Op, payload)
		got := protocol.AppendFrame(nil, op, protocol.FlagBinary, p)
		exp := mustHex(t, want.Hex)
		replayed++
		switch {
		case name == "produce_with_schema.py_layout":
			// The old server refused layout B; the spec requires it.
			var md protocol.RecordMetadata
			if op != protocol.OpProduceWithSchema || md.Decode(p) != nil || md.ValueSize != 8 || md.Topic != "orders" {
				t.Errorf("%s: %v %q", name, op, protocol.DecodeError(p))
			}
		case hd.Op == protocol.OpBeginTx && op != protocol.OpError:
			var tr protocol.TxnResponse
			if op != protocol.OpBeginTx || tr.Decode(p) != nil || !tr.Success || !strings.HasPrefix(tr.TxnID, "txn-") {
				t.Errorf("%s: %v %x", name, op, p)
			}
			var up protocol.TxnResponse
			up.Decode(exp[protocol.HeaderSize:])
			txnIDs[up.TxnID] = tr.TxnID
		case (hd.Op == protocol.OpCommitTx || hd.Op == protocol.OpAbortTx) && op == hd.Op:
			var tr protocol.TxnResponse
			if tr.Decode(p) != nil || !tr.Success || want.Op != int(hd.Op) {
				t.Errorf("%s: got %x, want %s", name, got, want.Hex)
			}
		case op != protocol.OpError && isMetadataOp(op):
			var g, w protocol.RecordMetadata
			if g.Decode(p) != nil || w.Decode(exp[protocol.HeaderSize:]) != nil || op != protocol.Op(want.Op) {
				t.Fatalf("%s: got %x, want %s", name, got, want.Hex)
			}
			if d := time.Since(time.UnixMilli(g.Timestamp)); d < 0 || d > time.Minute {
				t.Errorf("%s: timestamp %d is not now", name, g.Timestamp)
			}
			g.Timestamp, w.Timestamp = 0, 0
			if op == protocol.OpProduceWithSchema || op == protocol.OpProduceWithTTL {
				g.Offset, w.Offset = 0, 0 // depends on the old server's other traffic
			}
			if g != w {
				t.Errorf("%s: got %+v, want %+v", name, g, w)
			}
		default:
			if !bytes.Equal(got, exp) {
				t.Errorf("%s:\n got %x (%q)\nwant %s", name, got, protocol.DecodeError(p), want.Hex)
			}
		}
	}
	if replayed < 35 {
		t.Fatalf("only %d requests replayed", replayed)
	}
	// The delayed message of produce_delayed.scheduled is pending.
	if b.PendingDelayed() != 1 {
		t.Fatalf("pending %d", b.PendingDelayed())
	}
}

func isMetadataOp(op protocol.Op) bool {
	switch op {
	case protocol.OpProduceWithSchema, protocol.OpProduceDelayed, protocol.OpProduceWithTTL, protocol.OpProduceTx:
		return true
	}
	return false
}

// TestProduceWithSchemaAmbiguous: bytes that parse exactly in both
// layouts are layout B only when B's schema name is registered (§8.5).
func TestProduceWithSchemaAmbiguous(t *testing.T) {
	h := startServer(t, harnessOptions{encrypted: true})
	c := h.dial(t)
	defer c.Close()
	if _, err := h.broker.Schemas().Register("strict", "json", []byte(`{"type":"object","required":["id"]}`)); err != nil {
		t.Fatal(err)
	}
	// topic "t", then 00000000 | 0006 "strict": B = empty data + schema
	// "strict" (registered: validated, and {} is invalid... empty data is
	// not JSON) ; A = no schema + data "strict".
	p, _ := hex.DecodeString("000174" + "00000000" + "0006" + hex.EncodeToString([]byte("strict")))
	op, reply := call(t, c, protocol.OpProduceWithSchema, p)
	if op != protocol.OpError || !strings.HasPrefix(protocol.DecodeError(reply), "schema validation failed: [invalid JSON message: ") {
		t.Fatalf("registered name: %v %q", op, protocol.DecodeError(reply))
	}
	p, _ = hex.DecodeString("000174" + "00000000" + "0005" + hex.EncodeToString([]byte("plain")))
	op, reply = call(t, c, protocol.OpProduceWithSchema, p)
	var md protocol.RecordMetadata
	if op != protocol.OpProduceWithSchema || md.Decode(reply) != nil || md.ValueSize != 5 {
		t.Fatalf("unregistered name: %v %q", op, protocol.DecodeError(reply))
	}
	if m, err := h.broker.Consume("t", 0, 0); err != nil || string(m.Value) != "plain" {
		t.Fatalf("stored %q %v", m.Value, err)
	}
}
