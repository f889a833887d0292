package client

// Schema registry, dead-letter queue, delayed/TTL produce and
// transactions (security-and-advanced.md §§8–11).

import (
	"fmt"
	"time"

	"github.com/flymq/flymq/internal/protocol"
)

// Reply types of the advanced operations.
type (
	// SchemaInfo is one LIST_SCHEMAS entry; ID is "<name>-v<version>".
	SchemaInfo = protocol.SchemaEntry
	// SchemaDetail is one schema version with its definition.
	SchemaDetail = protocol.SchemaDetail
	// DLQMessage is one dead letter: id, original payload, error message
	// and retry count.
	DLQMessage = protocol.DLQMessage
)

// Schema types accepted by RegisterSchema.
const (
	SchemaJSON     = "json"
	SchemaAvro     = "avro"
	SchemaProtobuf = "protobuf"
)

// RegisterSchema adds a new version of the schema name and returns its
// version number. Needs the write or admin permission.
func (c *Client) RegisterSchema(name, schemaType string, definition []byte) (uint32, error) {
	if err := checkNames(name); err != nil {
		return 0, fmt.Errorf("register schema: %w", err)
	}
	if err := checkMode(schemaType); err != nil {
		return 0, fmt.Errorf("register schema: %w", err)
	}
	req := protocol.RegisterSchemaRequest{Name: name, Type: schemaType, Definition: definition}
	var resp protocol.SchemaRegistered
	err := c.call(protocol.OpRegisterSchema, req.AppendTo, &resp)
	return resp.Version, err
}

// GetSchema returns version of the schema name (0: the latest).
func (c *Client) GetSchema(name string, version uint32) (SchemaDetail, error) {
	var resp SchemaDetail
	if err := checkNames(name); err != nil {
		return resp, fmt.Errorf("get schema: %w", err)
	}
	req := protocol.SchemaVersionRequest{Name: name, Version: version}
	err := c.call(protocol.OpGetSchema, req.AppendTo, &resp)
	return resp, err
}

// ListSchemas lists every version of every schema, or of the one named
// filter, sorted by name then version.
func (c *Client) ListSchemas(filter string) ([]SchemaInfo, error) {
	if err := checkNames(filter); err != nil {
		return nil, fmt.Errorf("list schemas: %w", err)
	}
	req := protocol.ListSchemasRequest{Filter: filter}
	var resp protocol.SchemaList
	if err := c.call(protocol.OpListSchemas, req.AppendTo, &resp); err != nil {
		return nil, err
	}
	return resp.Schemas, nil
}

// ValidateSchema checks message against the latest version of name; a
// name without a schema accepts everything. errs holds the broker's
// reasons when valid is false.
func (c *Client) ValidateSchema(name string, message []byte) (valid bool, errs []string, err error) {
	if err := checkNames(name); err != nil {
		return false, nil, fmt.Errorf("validate schema: %w", err)
	}
	req := protocol.ValidateSchemaRequest{Name: name, Message: message}
	var resp protocol.ValidateSchemaResponse
	if err := c.call(protocol.OpValidateSchema, req.AppendTo, &resp); err != nil {
		return false, nil, err
	}
	return resp.Valid, resp.Errors, nil
}

// ProduceWithSchema validates data against the latest version of
// schemaName (when one is registered) and produces it without key. A
// refused message is a *ServerError "schema validation failed: [...]".
func (c *Client) ProduceWithSchema(topic, schemaName string, data []byte) (RecordMetadata, error) {
	var md RecordMetadata
	if err := checkNames(topic, schemaName); err != nil {
		return md, fmt.Errorf("produce with schema: %w", err)
	}
	req := protocol.ProduceWithSchemaRequest{Topic: topic, SchemaName: schemaName, Data: data}
	err := c.call(protocol.OpProduceWithSchema, req.AppendTo, &md)
	return md, err
}

// DeleteSchema deletes version of name, or every version when version
// is 0. Admin only.
func (c *Client) DeleteSchema(name string, version uint32) error {
	if err := checkNames(name); err != nil {
		return fmt.Errorf("delete schema: %w", err)
	}
	req := protocol.SchemaVersionRequest{Name: name, Version: version}
	return c.call(protocol.OpDeleteSchema, req.AppendTo, &protocol.StatusResponse{})
}

// FetchDLQ returns the dead letters among the first max records of
// topic's dead-letter queue (max <= 0: none).
func (c *Client) FetchDLQ(topic string, max int32) ([]DLQMessage, error) {
	if err := checkNames(topic); err != nil {
		return nil, fmt.Errorf("fetch dlq: %w", err)
	}
	req := protocol.FetchDLQRequest{Topic: topic, MaxMessages: max}
	var resp protocol.DLQMessages
	if err := c.call(protocol.OpFetchDLQ, req.AppendTo, &resp); err != nil {
		return nil, err
	}
	return resp.Messages, nil
}

// ReplayDLQ produces the payload of dead letter id (searched among the
// first 1000 of topic's DLQ) to its original topic; the letter stays.
func (c *Client) ReplayDLQ(topic, id string) error {
	if err := checkNames(topic, id); err != nil {
		return fmt.Errorf("replay dlq: %w", err)
	}
	req := protocol.ReplayDLQRequest{Topic: topic, MessageID: id}
	return c.call(protocol.OpReplayDLQ, req.AppendTo, &protocol.StatusResponse{})
}

// ReinjectDLQ replays the dead letter stored at offset of topic's DLQ
// (partition 0). The broker answers this form in-band; a failure is
// returned as a *ServerError with its text.
func (c *Client) ReinjectDLQ(topic string, offset uint64) error {
	if err := checkNames(topic); err != nil {
		return fmt.Errorf("reinject dlq: %w", err)
	}
	req := protocol.ReplayDLQRequest{Topic: topic, Offset: offset, ByOffset: true}
	var resp protocol.ReinjectResponse
	if err := c.call(protocol.OpReplayDLQ, req.AppendTo, &resp); err != nil {
		return err
	}
	if !resp.Success {
		return &ServerError{Message: resp.Message}
	}
	return nil
}

// PurgeDLQ deletes topic's dead-letter queue. Admin only.
func (c *Client) PurgeDLQ(topic string) error {
	if err := checkNames(topic); err != nil {
		return fmt.Errorf("purge dlq: %w", err)
	}
	req := protocol.TopicRequest{Topic: topic}
	return c.call(protocol.OpPurgeDLQ, req.AppendTo, &protocol.StatusResponse{})
}

// ProduceDelayed schedules data for topic to become visible after delay.
// The message gets its offset only when it is due, so the returned
// metadata carries partition 0 and offset 0 (as the old server's did).
func (c *Client) ProduceDelayed(topic string, data []byte, delay time.Duration) (RecordMetadata, error) {
	var md RecordMetadata
	if err := checkNames(topic); err != nil {
		return md, fmt.Errorf("produce delayed: %w", err)
	}
	req := protocol.ProduceDelayedRequest{Topic: topic, Data: data, DelayMs: delay.Milliseconds()}
	err := c.call(protocol.OpProduceDelayed, req.AppendTo, &md)
	return md, err
}

// ProduceWithTTL produces data that consumers stop seeing once ttl has
// passed.
func (c *Client) ProduceWithTTL(topic string, data []byte, ttl time.Duration) (RecordMetadata, error) {
	var md RecordMetadata
	if err := checkNames(topic); err != nil {
		return md, fmt.Errorf("produce with ttl: %w", err)
	}
	req := protocol.ProduceTTLRequest{Topic: topic, Data: data, TTLMs: ttl.Milliseconds()}
	err := c.call(protocol.OpProduceWithTTL, req.AppendTo, &md)
	return md, err
}

// Tx is an open transaction: its messages stay invisible until Commit,
// and Abort drops them. It belongs to the user that began it and may be
// used from any connection of that user.
type Tx struct {
	c  *Client
	ID string
}

// BeginTx opens a transaction.
func (c *Client) BeginTx() (*Tx, error) {
	var resp protocol.TxnResponse
	if err := c.call(protocol.OpBeginTx, noPayload, &resp); err != nil {
		return nil, err
	}
	return &Tx{c: c, ID: resp.TxnID}, nil
}

// Transaction resumes the transaction id (e.g. from another process of
// the same user).
func (c *Client) Transaction(id string) *Tx { return &Tx{c: c, ID: id} }

// Produce buffers data for topic in the transaction.
func (t *Tx) Produce(topic string, data []byte) error {
	if err := checkNames(t.ID, topic); err != nil {
		return fmt.Errorf("produce in transaction: %w", err)
	}
	req := protocol.ProduceTxRequest{TxnID: t.ID, Topic: topic, Data: data}
	return t.c.call(protocol.OpProduceTx, req.AppendTo, &RecordMetadata{})
}

// Commit makes every buffered message visible at once.
func (t *Tx) Commit() error { return t.end(protocol.OpCommitTx) }

// Abort drops the buffered messages; aborting twice is not an error.
func (t *Tx) Abort() error { return t.end(protocol.OpAbortTx) }

func (t *Tx) end(op protocol.Op) error {
	if err := checkNames(t.ID); err != nil {
		return fmt.Errorf("%v: %w", op, err)
	}
	req := protocol.TxnRequest{TxnID: t.ID}
	return t.c.call(op, req.AppendTo, &protocol.TxnResponse{})
}
