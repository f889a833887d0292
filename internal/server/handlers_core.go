package server

import (
	"errors"
	"strings"

	"github.com/flymq/flymq/internal/audit"
	"github.com/flymq/flymq/internal/broker"
	"github.com/flymq/flymq/internal/protocol"
)

// maxRecordBytes is the largest key+value a FETCH reply can carry: a record
// any bigger could be stored but never read back by a client.
var maxRecordBytes = protocol.MaxPayload - protocol.FetchResponseHeaderSize - protocol.FetchedMessageSize(0, 0)

func (c *conn) produce(op protocol.Op, p []byte, out []byte) ([]byte, error) {
	var req protocol.ProduceRequest
	if err := req.Decode(p); err != nil {
		return out, err
	}
	if err := c.authorize(req.Topic); err != nil {
		return out, err
	}
	if len(req.Key)+len(req.Value) > maxRecordBytes {
		return out, tooLarge(len(req.Key) + len(req.Value))
	}
	res, err := c.s.opts.Broker.Produce(req.Topic, req.Partition, req.Key, req.Value)
	if err != nil {
		return out, partitionText(err, "not found")
	}
	return appendRecordMetadata(out, &req, res), nil
}

func tooLarge(n int) error {
	return errorf("message too large: key and value of %d bytes exceed the %d bytes a fetch reply can carry",
		n, maxRecordBytes)
}

// appendRecordMetadata appends the PRODUCE reply for req written as res.
func appendRecordMetadata(out []byte, req *protocol.ProduceRequest, res broker.ProduceResult) []byte {
	md := protocol.RecordMetadata{
		Topic:     req.Topic,
		Partition: res.Partition,
		Offset:    res.Offset,
		Timestamp: res.Timestamp,
		KeySize:   int32(len(req.Key)),
		ValueSize: int32(len(req.Value)),
	}
	if len(req.Key) == 0 {
		md.KeySize = -1
	}
	out, start := beginFrame(out)
	return endFrame(md.AppendTo(out), start, protocol.OpProduce)
}

// consume serves CONSUME and CONSUME_ZERO_COPY: same request, same reply,
// echoing the request opcode.
func (c *conn) consume(op protocol.Op, p []byte, out []byte) ([]byte, error) {
	var req protocol.ConsumeRequest
	if err := req.Decode(p); err != nil {
		return out, err
	}
	if err := c.authorize(req.Topic); err != nil {
		return out, err
	}
	m, err := c.s.opts.Broker.Consume(req.Topic, req.Partition, req.Offset)
	switch {
	case errors.Is(err, broker.ErrTopicNotFound):
		return out, wireError("topic not found")
	case errors.Is(err, broker.ErrNoMessage):
		return out, wireError("EOF")
	case err != nil:
		return out, partitionText(err, "out of range")
	}
	resp := protocol.ConsumeResponse{Key: m.Key, Value: m.Value}
	return appendReply(out, op, &resp), nil
}

func (c *conn) createTopic(op protocol.Op, p []byte, out []byte) ([]byte, error) {
	var req protocol.CreateTopicRequest
	if err := req.Decode(p); err != nil {
		return out, err
	}
	if err := c.authorize(req.Topic); err != nil {
		return out, err
	}
	if req.Partitions < 0 {
		return out, errorf("invalid partition count: %d", req.Partitions)
	}
	err := c.s.opts.Broker.CreateTopic(req.Topic, req.Partitions)
	c.audit(audit.TypeTopicCreate, req.Topic, "create_topic", err)
	if err != nil {
		return out, err
	}
	return appendBool(out, op), nil
}

func (c *conn) deleteTopic(op protocol.Op, p []byte, out []byte) ([]byte, error) {
	var req protocol.TopicRequest
	if err := req.Decode(p); err != nil {
		return out, err
	}
	if err := c.authorize(req.Topic); err != nil {
		return out, err
	}
	err := c.s.opts.Broker.DeleteTopic(req.Topic)
	c.audit(audit.TypeTopicDelete, req.Topic, "delete_topic", err)
	if err != nil {
		return out, err
	}
	return appendBool(out, op), nil
}

func (c *conn) subscribe(op protocol.Op, p []byte, out []byte) ([]byte, error) {
	var req protocol.SubscribeRequest
	if err := req.Decode(p); err != nil {
		return out, err
	}
	if err := c.authorize(req.Topic); err != nil {
		return out, err
	}
	off, err := c.s.opts.Broker.Subscribe(req.Topic, req.Group, req.Partition, req.Mode, c.peer)
	if err != nil {
		return out, topicText(err, req.Topic)
	}
	if req.Group != "" {
		if c.subs == nil {
			c.subs = make(map[groupKey]struct{})
		}
		c.subs[groupKey{req.Topic, req.Group}] = struct{}{}
	}
	return appendOffset(out, op, off), nil
}

func (c *conn) commit(op protocol.Op, p []byte, out []byte) ([]byte, error) {
	var req protocol.CommitRequest
	if err := req.Decode(p); err != nil {
		return out, err
	}
	if err := c.authorize(req.Topic); err != nil {
		return out, err
	}
	if err := c.s.opts.Broker.Commit(req.Topic, req.Group, req.Partition, req.Offset); err != nil {
		return out, err
	}
	return appendBool(out, op), nil
}

// fetch serves FETCH and FETCH_BINARY, which differ only in the reply opcode.
func (c *conn) fetch(op protocol.Op, p []byte, out []byte) ([]byte, error) {
	var req protocol.FetchRequest
	if err := req.Decode(p); err != nil {
		return out, err
	}
	if err := c.authorize(req.Topic); err != nil {
		return out, err
	}
	msgs, next, err := c.s.opts.Broker.Fetch(req.Topic, req.Partition, req.Offset, int(req.MaxMessages),
		req.Filter, protocol.MaxPayload)
	if err != nil {
		return out, topicText(err, req.Topic)
	}
	out, start := beginFrame(out)
	out = protocol.AppendFetchResponseHeader(out, uint32(len(msgs)), next)
	for i := range msgs {
		out = protocol.AppendFetchedMessage(out, msgs[i].Offset, msgs[i].Key, msgs[i].Value)
	}
	return endFrame(out, start, op), nil
}

func (c *conn) listTopics(op protocol.Op, _ []byte, out []byte) ([]byte, error) {
	if err := c.authorize(""); err != nil {
		return out, err
	}
	resp := protocol.TopicList{Topics: visibleTopics(c.s.opts.Broker.Topics())}
	return appendReply(out, op, &resp), nil
}

// visibleTopics drops internal topics (a "__" prefix), as LIST_TOPICS and
// CLUSTER_METADATA always have.
func visibleTopics(all []string) []string {
	out := all[:0:0]
	for _, t := range all {
		if !strings.HasPrefix(t, "__") {
			out = append(out, t)
		}
	}
	return out
}

func (c *conn) clusterMetadata(op protocol.Op, p []byte, out []byte) ([]byte, error) {
	var req protocol.ClusterMetadataRequest
	if err := req.Decode(p); err != nil {
		return out, wireError("invalid request: " + err.Error())
	}
	if err := c.authorize(req.Topic); err != nil {
		return out, err
	}
	b := c.s.opts.Broker
	topics := []string{req.Topic}
	if req.Topic == "" {
		topics = visibleTopics(b.Topics())
	}
	md := protocol.ClusterMetadata{ClusterID: "standalone"}
	node := []string{c.s.opts.NodeID}
	for _, t := range topics {
		n, err := b.PartitionCount(t)
		if err != nil {
			if req.Topic == "" && errors.Is(err, broker.ErrTopicNotFound) {
				continue // deleted while we listed
			}
			return out, topicText(err, t)
		}
		tm := protocol.TopicMetadata{Name: t, Partitions: make([]protocol.PartitionMetadata, n)}
		for i := range tm.Partitions {
			tm.Partitions[i] = protocol.PartitionMetadata{
				ID: int32(i), LeaderID: c.s.opts.NodeID, LeaderAddr: c.s.advertised(),
				Epoch: 1, State: "online", Replicas: node, ISR: node,
			}
		}
		md.Topics = append(md.Topics, tm)
	}
	return appendReply(out, op, &md), nil
}

func (c *conn) getOffset(op protocol.Op, p []byte, out []byte) ([]byte, error) {
	var req protocol.GroupOffsetRequest
	if err := req.Decode(p); err != nil {
		return out, err
	}
	if err := c.authorize(req.Topic); err != nil {
		return out, err
	}
	off, err := c.s.opts.Broker.CommittedOffset(req.Topic, req.Group, req.Partition)
	if err != nil {
		return out, topicText(err, req.Topic)
	}
	return appendOffset(out, op, off), nil
}

func (c *conn) resetOffset(op protocol.Op, p []byte, out []byte) ([]byte, error) {
	var req protocol.ResetOffsetRequest
	if err := req.Decode(p); err != nil {
		return out, err
	}
	if err := c.authorize(req.Topic); err != nil {
		return out, err
	}
	err := c.s.opts.Broker.ResetOffset(req.Topic, req.Group, req.Partition, req.Mode, req.Offset)
	if err != nil {
		return out, topicText(err, req.Topic)
	}
	return appendBool(out, op), nil
}

func (c *conn) listGroups(op protocol.Op, _ []byte, out []byte) ([]byte, error) {
	if err := c.authorize(""); err != nil {
		return out, err
	}
	groups := c.s.opts.Broker.Groups()
	resp := protocol.GroupList{Groups: make([]protocol.GroupInfo, len(groups))}
	for i, g := range groups {
		resp.Groups[i] = groupInfo(g)
	}
	return appendReply(out, op, &resp), nil
}

func groupInfo(g broker.Group) protocol.GroupInfo {
	gi := protocol.GroupInfo{Topic: g.Topic, Group: g.Name, Members: uint32(g.Members)}
	for _, o := range g.Offsets {
		gi.Offsets = append(gi.Offsets, protocol.PartitionOffset{Partition: o.Partition, Offset: o.Offset})
	}
	return gi
}

func (c *conn) describeGroup(op protocol.Op, p []byte, out []byte) ([]byte, error) {
	var req protocol.GroupRequest
	if err := req.Decode(p); err != nil {
		return out, err
	}
	if req.JavaForm {
		// The Java SDK's group-only layout names no topic; like the old
		// server, answer it as malformed rather than guess.
		return out, protocol.ErrInvalidFormat
	}
	if err := c.authorize(req.Topic); err != nil {
		return out, err
	}
	g, err := c.s.opts.Broker.DescribeGroup(req.Topic, req.Group)
	if err != nil {
		return out, topicText(err, req.Topic)
	}
	gi := groupInfo(g)
	return appendReply(out, op, &gi), nil
}

func (c *conn) getLag(op protocol.Op, p []byte, out []byte) ([]byte, error) {
	var req protocol.GroupOffsetRequest
	if err := req.Decode(p); err != nil {
		return out, err
	}
	if err := c.authorize(req.Topic); err != nil {
		return out, err
	}
	lag, err := c.s.opts.Broker.Lag(req.Topic, req.Group, req.Partition)
	if err != nil {
		return out, topicText(err, req.Topic)
	}
	resp := protocol.LagResponse{Current: lag.Committed, Committed: lag.Committed, Latest: lag.Latest, Lag: lag.Lag}
	return appendReply(out, op, &resp), nil
}

func (c *conn) deleteGroup(op protocol.Op, p []byte, out []byte) ([]byte, error) {
	var req protocol.GroupRequest
	if err := req.Decode(p); err != nil {
		return out, err
	}
	if req.JavaForm {
		return out, protocol.ErrInvalidFormat
	}
	if err := c.authorize(req.Topic); err != nil {
		return out, err
	}
	if err := c.s.opts.Broker.DeleteGroup(req.Topic, req.Group); err != nil {
		return out, topicText(err, req.Topic)
	}
	return appendBool(out, op), nil
}

// topicText gives broker errors the texts most ops use:
// "topic not found: T" and "partition N not found".
func topicText(err error, topic string) error {
	if errors.Is(err, broker.ErrTopicNotFound) {
		return wireError("topic not found: " + topic)
	}
	return partitionText(err, "not found")
}

// partitionText renders a partition error as "partition N <suffix>"; the
// suffix is "out of range" for CONSUME and "not found" elsewhere. Group and
// mode errors already carry their wire text.
func partitionText(err error, suffix string) error {
	var pe *broker.PartitionError
	if errors.As(err, &pe) {
		return errorf("partition %d %s", pe.Partition, suffix)
	}
	var ge *broker.GroupNotFoundError
	if errors.As(err, &ge) {
		return wireError(ge.Error())
	}
	var me *broker.ModeError
	if errors.As(err, &me) {
		return wireError(me.Error())
	}
	return err
}

func appendBool(out []byte, op protocol.Op) []byte {
	out, start := beginFrame(out)
	return endFrame(append(out, 1), start, op)
}

func appendOffset(out []byte, op protocol.Op, off uint64) []byte {
	return appendReply(out, op, &protocol.OffsetResponse{Offset: off})
}

func (s *Server) advertised() string {
	if s.opts.AdvertisedAddr != "" {
		return s.opts.AdvertisedAddr
	}
	return s.opts.Addr
}
