// Package client is the Go client of the FlyMQ wire protocol
// (shared/protocol/core.md). A Client is safe for concurrent use: it
// serializes requests on one connection, as every FlyMQ client does, and
// reconnects (re-authenticating) on the call after a transport failure.
// Requests are never retried automatically, because PRODUCE is not
// idempotent.
//
// For benchmarks and tools that want several requests in flight, Conn
// offers raw pipelining with Send and Recv.
package client

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/flymq/flymq/internal/protocol"
)

// Result types, aliased from the protocol package so that callers can
// name them.
type (
	// RecordMetadata is where a produced message was written.
	RecordMetadata = protocol.RecordMetadata
	// FetchResult is the reply of FETCH: the messages and the position
	// to fetch from next.
	FetchResult = protocol.FetchResponse
	// FetchedMessage is one message of a FetchResult.
	FetchedMessage = protocol.FetchedMessage
	// GroupInfo describes a consumer group (topic, group id, members,
	// committed offsets).
	GroupInfo = protocol.GroupInfo
	// PartitionOffset is one committed offset of a group.
	PartitionOffset = protocol.PartitionOffset
	// Lag is the GET_LAG reply.
	Lag = protocol.LagResponse
	// ClusterMetadata is the CLUSTER_METADATA reply.
	ClusterMetadata = protocol.ClusterMetadata
	// TopicMetadata describes one topic of ClusterMetadata.
	TopicMetadata = protocol.TopicMetadata
	// PartitionMetadata describes one partition of TopicMetadata.
	PartitionMetadata = protocol.PartitionMetadata
)

// MaxPayload is the largest frame payload the broker and the client
// accept (32 MiB); a message must fit in it with its envelope.
const MaxPayload = protocol.MaxPayload

// Subscribe and reset modes.
const (
	ModeEarliest = "earliest"
	ModeLatest   = "latest"
	ModeCommit   = "commit" // subscribe only: resume from the committed offset
	ModeOffset   = "offset" // reset only: explicit offset
)

// Client is a goroutine-safe FlyMQ client on one connection.
type Client struct {
	addr string
	opts Options

	mu     sync.Mutex
	conn   *Conn // nil after a transport failure until the next call
	closed bool
	buf    []byte // request encoding buffer, guarded by mu
}

// Dial connects to addr (host:port) and authenticates when
// opts.Username is set.
func Dial(ctx context.Context, addr string, opts Options) (*Client, error) {
	conn, err := DialConn(ctx, addr, opts)
	if err != nil {
		return nil, err
	}
	return &Client{addr: addr, opts: opts, conn: conn}, nil
}

// Close closes the connection. Calls after Close return ErrClosed.
func (c *Client) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil
	}
	c.closed = true
	if c.conn == nil {
		return nil
	}
	err := c.conn.Close()
	c.conn = nil
	return err
}

// Do sends one request with flags 0x01 and returns the reply header and
// a copy of its payload. An ERROR reply returns its header and payload
// together with a *ServerError. Do does not check the reply opcode.
func (c *Client) Do(op Op, payload []byte) (Header, []byte, error) {
	return c.do(op, func(dst []byte) []byte { return append(dst, payload...) })
}

// do encodes a request with enc under the lock, exchanges it and returns
// a private copy of the reply payload.
func (c *Client) do(op Op, enc func([]byte) []byte) (Header, []byte, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return Header{}, nil, ErrClosed
	}
	if c.conn == nil {
		conn, err := DialConn(context.Background(), c.addr, c.opts)
		if err != nil {
			return Header{}, nil, fmt.Errorf("reconnect: %w", err)
		}
		c.conn = conn
	}
	c.buf = enc(c.buf[:0])
	if t := c.opts.RequestTimeout; t > 0 {
		_ = c.conn.SetDeadline(time.Now().Add(t))
	}
	h, p, err := c.conn.roundTrip(op, c.buf)
	var se *ServerError
	if err != nil && !errors.As(err, &se) {
		// The stream may be mid-frame: drop the connection.
		c.conn.Close()
		c.conn = nil
		return h, nil, fmt.Errorf("%v: %w", op, err)
	}
	if c.opts.RequestTimeout > 0 {
		_ = c.conn.SetDeadline(time.Time{})
	}
	if cap(c.buf) > 1<<20 {
		c.buf = nil // do not pin a large produce buffer
	}
	return h, append([]byte(nil), p...), err
}

// decoder is implemented by every protocol reply type.
type decoder interface{ Decode(p []byte) error }

// call performs a request whose reply must carry the same opcode and
// decode into resp.
func (c *Client) call(op Op, enc func([]byte) []byte, resp decoder) error {
	h, p, err := c.do(op, enc)
	if err != nil {
		return err
	}
	if h.Op != op {
		return fmt.Errorf("%v: %w: opcode %v", op, ErrUnexpectedResponse, h.Op)
	}
	if err := resp.Decode(p); err != nil {
		return fmt.Errorf("%v: %w: %w", op, ErrUnexpectedResponse, err)
	}
	return nil
}

func checkNames(names ...string) error {
	for _, s := range names {
		if len(s) > protocol.MaxStr16 {
			return ErrTooLong
		}
	}
	return nil
}

func checkMode(mode string) error {
	if len(mode) > protocol.MaxStr8 {
		return ErrTooLong
	}
	return nil
}

// Produce writes value with no key to a partition chosen by the broker.
func (c *Client) Produce(topic string, value []byte) (RecordMetadata, error) {
	return c.ProduceToPartition(topic, -1, nil, value)
}

// ProduceWithKey writes a keyed message; the broker picks the partition
// by the key's hash.
func (c *Client) ProduceWithKey(topic string, key, value []byte) (RecordMetadata, error) {
	return c.ProduceToPartition(topic, -1, key, value)
}

// ProduceToPartition writes to an explicit partition; a negative
// partition lets the broker choose.
func (c *Client) ProduceToPartition(topic string, partition int32, key, value []byte) (RecordMetadata, error) {
	var md RecordMetadata
	if err := checkNames(topic); err != nil {
		return md, fmt.Errorf("produce: %w", err)
	}
	req := protocol.ProduceRequest{Topic: topic, Key: key, Value: value, Partition: partition}
	err := c.call(protocol.OpProduce, req.AppendTo, &md)
	return md, err
}

// Consume reads the single message at offset. A missing message is a
// *ServerError with the text "EOF".
func (c *Client) Consume(topic string, partition int32, offset uint64) (key, value []byte, err error) {
	if err := checkNames(topic); err != nil {
		return nil, nil, fmt.Errorf("consume: %w", err)
	}
	req := protocol.ConsumeRequest{Topic: topic, Partition: partition, Offset: offset}
	var resp protocol.ConsumeResponse
	if err := c.call(protocol.OpConsume, req.AppendTo, &resp); err != nil {
		return nil, nil, err
	}
	return resp.Key, resp.Value, nil
}

// Fetch reads up to max messages from offset (max <= 0: broker default
// of 10). A non-empty filter keeps messages whose key or value matches
// it; NextOffset advances past every record examined.
func (c *Client) Fetch(topic string, partition int32, offset uint64, max int32, filter string) (*FetchResult, error) {
	if err := checkNames(topic, filter); err != nil {
		return nil, fmt.Errorf("fetch: %w", err)
	}
	req := protocol.FetchRequest{Topic: topic, Partition: partition, Offset: offset,
		MaxMessages: max, Filter: filter}
	var resp FetchResult
	if err := c.call(protocol.OpFetch, req.AppendTo, &resp); err != nil {
		return nil, err
	}
	return &resp, nil
}

// CreateTopic creates a topic; 0 partitions means 1. An existing topic is
// not an error.
func (c *Client) CreateTopic(topic string, partitions int32) error {
	if err := checkNames(topic); err != nil {
		return fmt.Errorf("create topic: %w", err)
	}
	req := protocol.CreateTopicRequest{Topic: topic, Partitions: partitions}
	return c.call(protocol.OpCreateTopic, req.AppendTo, &protocol.BoolResponse{})
}

// DeleteTopic deletes a topic and its data. A missing topic is not an
// error.
func (c *Client) DeleteTopic(topic string) error {
	if err := checkNames(topic); err != nil {
		return fmt.Errorf("delete topic: %w", err)
	}
	req := protocol.TopicRequest{Topic: topic}
	return c.call(protocol.OpDeleteTopic, req.AppendTo, &protocol.BoolResponse{})
}

// ListTopics returns the topic names in ascending byte order.
func (c *Client) ListTopics() ([]string, error) {
	var resp protocol.TopicList
	if err := c.call(protocol.OpListTopics, noPayload, &resp); err != nil {
		return nil, err
	}
	return resp.Topics, nil
}

func noPayload(dst []byte) []byte { return dst }

// Subscribe joins group (when non-empty) for this connection and returns
// the position to start fetching from according to mode (ModeEarliest,
// ModeLatest, ModeCommit; empty means latest).
func (c *Client) Subscribe(topic, group string, partition int32, mode string) (uint64, error) {
	if err := checkNames(topic, group); err != nil {
		return 0, fmt.Errorf("subscribe: %w", err)
	}
	if err := checkMode(mode); err != nil {
		return 0, fmt.Errorf("subscribe: %w", err)
	}
	req := protocol.SubscribeRequest{Topic: topic, Group: group, Partition: partition, Mode: mode}
	var resp protocol.OffsetResponse
	err := c.call(protocol.OpSubscribe, req.AppendTo, &resp)
	return resp.Offset, err
}

// Commit stores offset (the next offset to read) for the group.
func (c *Client) Commit(topic, group string, partition int32, offset uint64) error {
	if err := checkNames(topic, group); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	req := protocol.CommitRequest{Topic: topic, Group: group, Partition: partition, Offset: offset}
	return c.call(protocol.OpCommit, req.AppendTo, &protocol.BoolResponse{})
}

// GetCommittedOffset returns the group's committed offset for the
// partition (0 when nothing was committed there).
func (c *Client) GetCommittedOffset(topic, group string, partition int32) (uint64, error) {
	if err := checkNames(topic, group); err != nil {
		return 0, fmt.Errorf("get offset: %w", err)
	}
	req := protocol.GroupOffsetRequest{Topic: topic, Group: group, Partition: partition}
	var resp protocol.OffsetResponse
	err := c.call(protocol.OpGetOffset, req.AppendTo, &resp)
	return resp.Offset, err
}

// ResetOffset sets the group's committed offset: mode ModeEarliest,
// ModeLatest, or ModeOffset with an explicit offset (ignored otherwise).
func (c *Client) ResetOffset(topic, group string, partition int32, mode string, offset uint64) error {
	if err := checkNames(topic, group); err != nil {
		return fmt.Errorf("reset offset: %w", err)
	}
	if err := checkMode(mode); err != nil {
		return fmt.Errorf("reset offset: %w", err)
	}
	req := protocol.ResetOffsetRequest{Topic: topic, Group: group, Partition: partition,
		Mode: mode, Offset: offset}
	return c.call(protocol.OpResetOffset, req.AppendTo, &protocol.BoolResponse{})
}

// GetLag returns the group's committed offset, the partition's log end
// offset and the difference.
func (c *Client) GetLag(topic, group string, partition int32) (Lag, error) {
	var resp Lag
	if err := checkNames(topic, group); err != nil {
		return resp, fmt.Errorf("get lag: %w", err)
	}
	req := protocol.GroupOffsetRequest{Topic: topic, Group: group, Partition: partition}
	err := c.call(protocol.OpGetLag, req.AppendTo, &resp)
	return resp, err
}

// ListGroups returns every consumer group.
func (c *Client) ListGroups() ([]GroupInfo, error) {
	var resp protocol.GroupList
	if err := c.call(protocol.OpListGroups, noPayload, &resp); err != nil {
		return nil, err
	}
	return resp.Groups, nil
}

// DescribeGroup returns one consumer group, identified by topic and id.
func (c *Client) DescribeGroup(topic, group string) (GroupInfo, error) {
	var resp GroupInfo
	if err := checkNames(topic, group); err != nil {
		return resp, fmt.Errorf("describe group: %w", err)
	}
	req := protocol.GroupRequest{Topic: topic, Group: group}
	err := c.call(protocol.OpDescribeGroup, req.AppendTo, &resp)
	return resp, err
}

// DeleteGroup removes a consumer group and its committed offsets.
func (c *Client) DeleteGroup(topic, group string) error {
	if err := checkNames(topic, group); err != nil {
		return fmt.Errorf("delete group: %w", err)
	}
	req := protocol.GroupRequest{Topic: topic, Group: group}
	return c.call(protocol.OpDeleteGroup, req.AppendTo, &protocol.BoolResponse{})
}

// ClusterMetadata returns partition metadata for topic, or for every
// topic when topic is empty.
func (c *Client) ClusterMetadata(topic string) (*ClusterMetadata, error) {
	if err := checkNames(topic); err != nil {
		return nil, fmt.Errorf("cluster metadata: %w", err)
	}
	req := protocol.ClusterMetadataRequest{Topic: topic}
	var resp ClusterMetadata
	if err := c.call(protocol.OpClusterMetadata, req.AppendTo, &resp); err != nil {
		return nil, err
	}
	return &resp, nil
}
