package protocol

// CreateTopicRequest is the CREATE_TOPIC (0x03) request: str16 topic,
// i32 partitions (0 means 1; negative is rejected by the broker).
type CreateTopicRequest struct {
	Topic      string
	Partitions int32
}

// Decode parses a CREATE_TOPIC payload.
func (m *CreateTopicRequest) Decode(p []byte) error {
	if len(p) < minCreateTopic {
		return ErrBufferTooSmall
	}
	r := reader{p: p}
	topic := r.str16()
	m.Partitions = r.i32()
	if r.bad {
		return ErrInvalidFormat
	}
	setString(&m.Topic, topic)
	return nil
}

// AppendTo appends the CREATE_TOPIC payload.
func (m *CreateTopicRequest) AppendTo(dst []byte) []byte {
	dst = appendStr16(dst, m.Topic)
	return appendI32(dst, m.Partitions)
}

// TopicRequest is a request made of one str16 topic: DELETE_TOPIC (0x09),
// and the unimplemented METADATA (0x04) in the Java SDK's layout.
type TopicRequest struct {
	Topic string
}

// Decode parses a DELETE_TOPIC payload.
func (m *TopicRequest) Decode(p []byte) error {
	if len(p) < minTopicRequest {
		return ErrBufferTooSmall
	}
	r := reader{p: p}
	topic := r.str16()
	if r.bad {
		return ErrInvalidFormat
	}
	setString(&m.Topic, topic)
	return nil
}

// AppendTo appends the DELETE_TOPIC payload.
func (m *TopicRequest) AppendTo(dst []byte) []byte { return appendStr16(dst, m.Topic) }

// BoolResponse is the one-byte success reply of CREATE_TOPIC, COMMIT,
// DELETE_TOPIC, RESET_OFFSET and DELETE_GROUP (always true; failures are
// ERROR frames).
type BoolResponse struct {
	OK bool
}

// Decode parses a bool reply; like the clients, only 0x01 is true.
func (m *BoolResponse) Decode(p []byte) error {
	if len(p) < 1 {
		return ErrBufferTooSmall
	}
	m.OK = p[0] == 1
	return nil
}

// AppendTo appends the bool reply.
func (m *BoolResponse) AppendTo(dst []byte) []byte { return appendBool(dst, m.OK) }

// OffsetResponse is the u64 reply of SUBSCRIBE (start position) and
// GET_OFFSET (committed offset).
type OffsetResponse struct {
	Offset uint64
}

// Decode parses a u64 offset reply.
func (m *OffsetResponse) Decode(p []byte) error {
	if len(p) < 8 {
		return ErrBufferTooSmall
	}
	r := reader{p: p}
	m.Offset = r.u64()
	return nil
}

// AppendTo appends the u64 offset reply.
func (m *OffsetResponse) AppendTo(dst []byte) []byte { return appendU64(dst, m.Offset) }

// TopicList is the LIST_TOPICS (0x08) response: u32 count, count × str16.
type TopicList struct {
	Topics []string
}

// Decode parses a LIST_TOPICS response.
func (m *TopicList) Decode(p []byte) error {
	if len(p) < 4 {
		return ErrBufferTooSmall
	}
	r := reader{p: p}
	count := r.u32()
	m.Topics = make([]string, 0, listCap(count, r.remaining(), 2))
	for i := uint32(0); i < count; i++ {
		name := r.str16()
		if r.bad {
			m.Topics = nil
			return ErrInvalidFormat
		}
		m.Topics = append(m.Topics, string(name))
	}
	return nil
}

// AppendTo appends the LIST_TOPICS response.
func (m *TopicList) AppendTo(dst []byte) []byte {
	dst = appendU32(dst, uint32(len(m.Topics)))
	for _, t := range m.Topics {
		dst = appendStr16(dst, t)
	}
	return dst
}

// SubscribeRequest is the SUBSCRIBE (0x05) request: str16 topic,
// str16 group_id, i32 partition, str8 mode.
type SubscribeRequest struct {
	Topic, Group string
	Partition    int32
	Mode         string // earliest, latest, commit; empty means latest
}

// Decode parses a SUBSCRIBE payload.
func (m *SubscribeRequest) Decode(p []byte) error {
	if len(p) < minSubscribe {
		return ErrBufferTooSmall
	}
	r := reader{p: p}
	topic := r.str16()
	group := r.str16()
	m.Partition = r.i32()
	mode := r.str8()
	if r.bad {
		return ErrInvalidFormat
	}
	setString(&m.Topic, topic)
	setString(&m.Group, group)
	setString(&m.Mode, mode)
	return nil
}

// AppendTo appends the SUBSCRIBE payload.
func (m *SubscribeRequest) AppendTo(dst []byte) []byte {
	dst = appendStr16(dst, m.Topic)
	dst = appendStr16(dst, m.Group)
	dst = appendI32(dst, m.Partition)
	return appendStr8(dst, m.Mode)
}

// CommitRequest is the COMMIT (0x06) request: str16 topic,
// str16 group_id, i32 partition, u64 offset (the next offset to read).
type CommitRequest struct {
	Topic, Group string
	Partition    int32
	Offset       uint64
}

// Decode parses a COMMIT payload.
func (m *CommitRequest) Decode(p []byte) error {
	if len(p) < minCommit {
		return ErrBufferTooSmall
	}
	r := reader{p: p}
	topic := r.str16()
	group := r.str16()
	m.Partition = r.i32()
	m.Offset = r.u64()
	if r.bad {
		return ErrInvalidFormat
	}
	setString(&m.Topic, topic)
	setString(&m.Group, group)
	return nil
}

// AppendTo appends the COMMIT payload.
func (m *CommitRequest) AppendTo(dst []byte) []byte {
	dst = appendStr16(dst, m.Topic)
	dst = appendStr16(dst, m.Group)
	dst = appendI32(dst, m.Partition)
	return appendU64(dst, m.Offset)
}
