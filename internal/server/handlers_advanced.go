package server

// Handlers of the schema registry (0x10–0x15), dead-letter queues
// (0x20–0x22), delayed and TTL produce (0x30, 0x35) and transactions
// (0x40–0x43), security-and-advanced.md §§8–11. Each decodes, runs the
// route's gate through c.authorize exactly once, calls the broker and
// appends its reply. Failures that the old server reported in-band are
// ERROR frames here, except the re-inject form of REPLAY_DLQ and a
// failed VALIDATE_SCHEMA, whose flags the clients read (§2.2).

import (
	"errors"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/flymq/flymq/internal/audit"
	"github.com/flymq/flymq/internal/auth"
	"github.com/flymq/flymq/internal/broker"
	"github.com/flymq/flymq/internal/protocol"
	"github.com/flymq/flymq/internal/schema"
)

// advMaxValue is the largest payload a produce variant accepts: what a
// FETCH reply can carry for a record without key.
var advMaxValue = protocol.MaxPayload - protocol.FetchResponseHeaderSize - protocol.FetchedMessageSize(0, 0)

func checkValueSize(v []byte) error {
	if len(v) > advMaxValue {
		return errorf("message too large: %d bytes exceed the %d bytes a fetch reply can carry", len(v), advMaxValue)
	}
	return nil
}

// advError turns broker and registry errors into their wire texts.
func advError(err error) error {
	var te *broker.TxnError
	var de *broker.DelayError
	switch {
	case err == nil:
		return nil
	case errors.Is(err, broker.ErrTxnNotOwner):
		return auth.ErrUnauthorized // §11.5: another user's transaction
	case errors.As(err, &te):
		return wireError(te.Text)
	case errors.As(err, &de):
		return wireError(de.Error())
	case errors.Is(err, broker.ErrDLQNotFound):
		return wireError("message not found")
	case errors.Is(err, schema.ErrInvalidName), errors.Is(err, schema.ErrNotFound),
		errors.Is(err, schema.ErrUnsupportedType), errors.Is(err, schema.ErrInvalidDefinition),
		errors.Is(err, schema.ErrIncompatible):
		return wireError(err.Error())
	}
	return topicOrPartitionText(err)
}

// topicOrPartitionText gives produce-path errors their usual texts.
func topicOrPartitionText(err error) error {
	if errors.Is(err, broker.ErrTopicNotFound) {
		return wireError(err.Error())
	}
	return partitionText(err, "not found")
}

// txnOwner is who a transaction belongs to: the session's user, or
// nobody when authentication is off (§11.5).
func (c *conn) txnOwner() string {
	if !c.s.opts.Auth.Enabled() {
		return ""
	}
	return c.identity().User
}

func appendStatus(out []byte, op protocol.Op) []byte {
	resp := protocol.StatusResponse{Success: true, Message: "OK"}
	return appendReply(out, op, &resp)
}

// appendPlaceholder answers PRODUCE_DELAYED and PRODUCE_TX: partition 0,
// offset 0 (not assigned yet), timestamp now, no key (§10.1, §11.2).
func appendPlaceholder(out []byte, op protocol.Op, topic string, n int) []byte {
	md := protocol.RecordMetadata{Topic: topic, Timestamp: time.Now().UnixMilli(), KeySize: -1, ValueSize: int32(n)}
	return appendReply(out, op, &md)
}

func appendProduced(out []byte, op protocol.Op, topic string, res broker.ProduceResult, n int) []byte {
	md := protocol.RecordMetadata{Topic: topic, Partition: res.Partition, Offset: res.Offset,
		Timestamp: res.Timestamp, KeySize: -1, ValueSize: int32(n)}
	return appendReply(out, op, &md)
}

// --- schema registry (§8) ---

func (c *conn) registerSchema(op protocol.Op, p []byte, out []byte) ([]byte, error) {
	var req protocol.RegisterSchemaRequest
	if err := req.Decode(p); err != nil {
		return out, err
	}
	if err := c.authorize(""); err != nil {
		return out, err
	}
	s, err := c.s.opts.Broker.Schemas().Register(req.Name, req.Type, req.Definition)
	if err != nil {
		return out, advError(err)
	}
	resp := protocol.SchemaRegistered{Name: req.Name, Type: req.Type, Version: s.Version}
	return appendReply(out, op, &resp), nil
}

func (c *conn) getSchema(op protocol.Op, p []byte, out []byte) ([]byte, error) {
	var req protocol.SchemaVersionRequest
	if err := req.Decode(p); err != nil {
		return out, err
	}
	if err := c.authorize(""); err != nil {
		return out, err
	}
	s, err := c.s.opts.Broker.Schemas().Get(req.Name, req.Version)
	if err != nil {
		return out, advError(err)
	}
	resp := protocol.SchemaDetail{
		SchemaEntry: protocol.SchemaEntry{ID: s.ID(), Type: s.Type, Version: s.Version},
		Name:        s.Name, Definition: s.Definition, Compatibility: s.Compatibility,
	}
	return appendReply(out, op, &resp), nil
}

func (c *conn) listSchemas(op protocol.Op, p []byte, out []byte) ([]byte, error) {
	var req protocol.ListSchemasRequest
	_ = req.Decode(p) // malformed means "all" (§8.3)
	if err := c.authorize(""); err != nil {
		return out, err
	}
	list := c.s.opts.Broker.Schemas().List(req.Filter)
	resp := protocol.SchemaList{Schemas: make([]protocol.SchemaEntry, len(list))}
	for i := range list {
		resp.Schemas[i] = protocol.SchemaEntry{ID: list[i].ID(), Type: list[i].Type, Version: list[i].Version}
	}
	return appendReply(out, op, &resp), nil
}

func (c *conn) validateSchema(op protocol.Op, p []byte, out []byte) ([]byte, error) {
	var req protocol.ValidateSchemaRequest
	if err := req.Decode(p); err != nil {
		return out, err
	}
	if err := c.authorize(""); err != nil {
		return out, err
	}
	errs := c.s.opts.Broker.Schemas().Validate(req.Name, req.Message)
	resp := protocol.ValidateSchemaResponse{Valid: len(errs) == 0, Errors: errs}
	return appendReply(out, op, &resp), nil
}

func (c *conn) produceWithSchema(op protocol.Op, p []byte, out []byte) ([]byte, error) {
	var req protocol.ProduceWithSchemaRequest
	if err := req.Decode(p); err != nil {
		return out, err
	}
	reg := c.s.opts.Broker.Schemas()
	// §8.5 rule 2: a double match is layout B only if B's schema name is
	// non-empty and registered.
	if req.Ambiguous && !(req.SchemaName != "" && reg.Has(req.SchemaName)) {
		req = req.LayoutA()
	}
	if err := c.authorize(req.Topic); err != nil {
		return out, err
	}
	if err := checkValueSize(req.Data); err != nil {
		return out, err
	}
	if req.SchemaName != "" {
		if errs := reg.Validate(req.SchemaName, req.Data); len(errs) > 0 {
			return out, wireError("schema validation failed: [" + strings.Join(errs, " ") + "]")
		}
	}
	res, err := c.s.opts.Broker.Produce(req.Topic, -1, nil, req.Data)
	if err != nil {
		return out, advError(err)
	}
	return appendProduced(out, op, req.Topic, res, len(req.Data)), nil
}

func (c *conn) deleteSchema(op protocol.Op, p []byte, out []byte) ([]byte, error) {
	var req protocol.SchemaVersionRequest
	if err := req.Decode(p); err != nil {
		return out, err
	}
	if err := c.authorize(""); err != nil {
		return out, err
	}
	if err := c.s.opts.Broker.Schemas().Delete(req.Name, req.Version); err != nil {
		return out, advError(err)
	}
	return appendStatus(out, op), nil
}

// --- dead-letter queue (§9) ---

func (c *conn) fetchDLQ(op protocol.Op, p []byte, out []byte) ([]byte, error) {
	var req protocol.FetchDLQRequest
	if err := req.Decode(p); err != nil {
		return out, err
	}
	if err := c.authorize(req.Topic); err != nil {
		return out, err
	}
	recs, err := c.s.opts.Broker.FetchDLQ(req.Topic, int(req.MaxMessages))
	if err != nil {
		return out, advError(err)
	}
	var resp protocol.DLQMessages
	size := 4
	for _, r := range recs {
		m := protocol.DLQMessage{ID: r.ID, Data: r.Payload, Error: r.ErrorMessage, Retries: r.RetryCount}
		n := 2 + len(m.ID) + 4 + len(m.Data) + 2 + len(m.Error) + 4
		if size+n > protocol.MaxPayload {
			break // the rest would not fit one reply; fetch again after handling these
		}
		size += n
		resp.Messages = append(resp.Messages, m)
	}
	return appendReply(out, op, &resp), nil
}

func (c *conn) replayDLQ(op protocol.Op, p []byte, out []byte) ([]byte, error) {
	var req protocol.ReplayDLQRequest
	if err := req.Decode(p); err != nil {
		return out, err
	}
	b := c.s.opts.Broker
	var (
		rec  broker.DLQRecord
		ferr error
	)
	if req.ByOffset {
		rec, ferr = b.DLQAt(req.Topic, req.Offset)
	} else {
		rec, ferr = b.FindDLQ(req.Topic, req.MessageID)
	}
	// The gate is write on the record's original topic (§3.5); without a
	// record, on the request's topic, so that nobody learns more from
	// "message not found" than from the gate.
	target := req.Topic
	if ferr == nil && rec.OriginalTopic != "" {
		target = rec.OriginalTopic
	}
	rec.OriginalTopic = target
	if err := c.authorize(target); err != nil {
		return out, err
	}
	if !req.ByOffset {
		if ferr != nil {
			return out, advError(ferr)
		}
		if _, err := b.ReplayDLQ(rec); err != nil {
			return out, advError(err)
		}
		return appendStatus(out, op), nil
	}
	// Re-inject form: in-band both ways (§9.2).
	resp := protocol.ReinjectResponse{Success: true}
	switch {
	case errors.Is(ferr, broker.ErrDLQNotFound):
		resp = protocol.ReinjectResponse{Message: fmt.Sprintf("message not found at offset %d", req.Offset)}
	case ferr != nil:
		resp = protocol.ReinjectResponse{Message: advError(ferr).Error()}
	default:
		if _, err := b.ReplayDLQ(rec); err != nil {
			resp = protocol.ReinjectResponse{Message: c.errorText(op, advError(err))}
		}
	}
	return appendReply(out, op, &resp), nil
}

func (c *conn) purgeDLQ(op protocol.Op, p []byte, out []byte) ([]byte, error) {
	var req protocol.TopicRequest
	if err := req.Decode(p); err != nil {
		return out, err
	}
	if err := c.authorize(req.Topic); err != nil {
		return out, err
	}
	b := c.s.opts.Broker
	err := b.PurgeDLQ(req.Topic)
	c.audit(audit.TypeTopicDelete, b.DLQTopic(req.Topic), "purge_dlq", err)
	if err != nil {
		return out, advError(err)
	}
	return appendStatus(out, op), nil
}

// --- delayed and TTL (§10) ---

// millis converts wire milliseconds to a duration, saturating instead of
// overflowing.
func millis(ms int64) time.Duration {
	const limit = math.MaxInt64 / int64(time.Millisecond)
	switch {
	case ms > limit:
		return math.MaxInt64
	case ms < -limit:
		return math.MinInt64
	}
	return time.Duration(ms) * time.Millisecond
}

func (c *conn) produceDelayed(op protocol.Op, p []byte, out []byte) ([]byte, error) {
	var req protocol.ProduceDelayedRequest
	if err := req.Decode(p); err != nil {
		return out, err
	}
	if err := c.authorize(req.Topic); err != nil {
		return out, err
	}
	if err := checkValueSize(req.Data); err != nil {
		return out, err
	}
	if err := c.s.opts.Broker.ProduceDelayed(req.Topic, req.Data, millis(req.DelayMs)); err != nil {
		return out, advError(err)
	}
	return appendPlaceholder(out, op, req.Topic, len(req.Data)), nil
}

func (c *conn) produceWithTTL(op protocol.Op, p []byte, out []byte) ([]byte, error) {
	var req protocol.ProduceTTLRequest
	if err := req.Decode(p); err != nil {
		return out, err
	}
	if err := c.authorize(req.Topic); err != nil {
		return out, err
	}
	if err := checkValueSize(req.Data); err != nil {
		return out, err
	}
	var expiry int64
	if req.TTLMs > 0 {
		expiry = time.Now().Add(millis(req.TTLMs)).UnixMilli()
		if expiry <= 0 { // saturated far future
			expiry = math.MaxInt64
		}
	}
	res, err := c.s.opts.Broker.ProduceWithExpiry(req.Topic, -1, nil, req.Data, expiry)
	if err != nil {
		return out, advError(err)
	}
	return appendProduced(out, op, req.Topic, res, len(req.Data)), nil
}

// --- transactions (§11) ---

func (c *conn) appendTxn(out []byte, op protocol.Op, id string) []byte {
	resp := protocol.TxnResponse{TxnID: id, Success: true}
	return appendReply(out, op, &resp)
}

func (c *conn) beginTx(op protocol.Op, _ []byte, out []byte) ([]byte, error) {
	if err := c.authorize(""); err != nil {
		return out, err
	}
	id, err := c.s.opts.Broker.BeginTx(c.txnOwner())
	if err != nil {
		return out, advError(err)
	}
	return c.appendTxn(out, op, id), nil
}

func (c *conn) commitTx(op protocol.Op, p []byte, out []byte) ([]byte, error) {
	return c.endTx(op, p, out, c.s.opts.Broker.CommitTx)
}

func (c *conn) abortTx(op protocol.Op, p []byte, out []byte) ([]byte, error) {
	return c.endTx(op, p, out, c.s.opts.Broker.AbortTx)
}

// endTx serves COMMIT_TX and ABORT_TX: same request, same gate, same
// reply; end is the broker call that finishes the transaction.
func (c *conn) endTx(op protocol.Op, p []byte, out []byte, end func(owner, id string) error) ([]byte, error) {
	var req protocol.TxnRequest
	if err := req.Decode(p); err != nil {
		return out, err
	}
	if err := c.authorize(""); err != nil {
		return out, err
	}
	if err := end(c.txnOwner(), req.TxnID); err != nil {
		return out, advError(err)
	}
	return c.appendTxn(out, op, req.TxnID), nil
}

func (c *conn) produceTx(op protocol.Op, p []byte, out []byte) ([]byte, error) {
	var req protocol.ProduceTxRequest
	if err := req.Decode(p); err != nil {
		return out, err
	}
	if err := c.authorize(req.Topic); err != nil {
		return out, err
	}
	if err := checkValueSize(req.Data); err != nil {
		return out, err
	}
	if err := c.s.opts.Broker.ProduceTx(c.txnOwner(), req.TxnID, req.Topic, req.Data); err != nil {
		return out, advError(err)
	}
	return appendPlaceholder(out, op, req.Topic, len(req.Data)), nil
}
