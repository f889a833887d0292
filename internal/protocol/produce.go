package protocol

// Minimum request payload sizes checked before parsing (core.md §3.1).
const (
	minProduce      = 14
	minConsume      = 14
	minCreateTopic  = 6
	minSubscribe    = 9
	minCommit       = 16
	minFetch        = 18
	minGroupOffset  = 8
	minResetOffset  = 9
	minGroup        = 4
	minTopicRequest = 2
	minPeerRequest  = 2
)

// ProduceRequest is the PRODUCE (0x01) request: str16 topic, bytes32 key,
// bytes32 value, i32 partition (-1 = broker chooses).
type ProduceRequest struct {
	Topic string
	// Key and Value alias the decoded payload: they are valid only as long
	// as the payload buffer (for a FrameReader: until its next Next call).
	// Copy them before keeping them. An empty key decodes as nil.
	Key, Value []byte
	Partition  int32
}

// Decode parses a PRODUCE payload without allocating, except for Topic
// when it differs from the value already in m (reuse one ProduceRequest
// per connection to keep the hot path allocation-free).
func (m *ProduceRequest) Decode(p []byte) error {
	if len(p) < minProduce {
		return ErrBufferTooSmall
	}
	r := reader{p: p}
	topic := r.str16()
	m.Key = r.bytes32()
	m.Value = r.bytes32()
	m.Partition = r.i32()
	if r.bad {
		m.Key, m.Value = nil, nil
		return ErrInvalidFormat
	}
	setString(&m.Topic, topic)
	return nil
}

// AppendTo appends the PRODUCE payload.
func (m *ProduceRequest) AppendTo(dst []byte) []byte {
	dst = appendStr16(dst, m.Topic)
	dst = appendBytes32(dst, m.Key)
	dst = appendBytes32(dst, m.Value)
	return appendI32(dst, m.Partition)
}

// RecordMetadata is the PRODUCE response.
type RecordMetadata struct {
	Topic     string
	Partition int32
	Offset    uint64
	Timestamp int64 // broker wall clock, Unix milliseconds
	KeySize   int32 // -1 when the key was empty
	ValueSize int32
}

// Decode parses a PRODUCE response payload.
func (m *RecordMetadata) Decode(p []byte) error {
	if len(p) < 30 {
		return ErrBufferTooSmall
	}
	r := reader{p: p}
	topic := r.str16()
	m.Partition = r.i32()
	m.Offset = r.u64()
	m.Timestamp = r.i64()
	m.KeySize = r.i32()
	m.ValueSize = r.i32()
	if r.bad {
		return ErrInvalidFormat
	}
	setString(&m.Topic, topic)
	return nil
}

// AppendTo appends the PRODUCE response payload.
func (m *RecordMetadata) AppendTo(dst []byte) []byte {
	dst = appendStr16(dst, m.Topic)
	dst = appendI32(dst, m.Partition)
	dst = appendU64(dst, m.Offset)
	dst = appendI64(dst, m.Timestamp)
	dst = appendI32(dst, m.KeySize)
	return appendI32(dst, m.ValueSize)
}

// ConsumeRequest is the CONSUME (0x02) and CONSUME_ZERO_COPY (0x0A)
// request: str16 topic, i32 partition, u64 offset.
type ConsumeRequest struct {
	Topic     string
	Partition int32
	Offset    uint64
}

// Decode parses a CONSUME payload.
func (m *ConsumeRequest) Decode(p []byte) error {
	if len(p) < minConsume {
		return ErrBufferTooSmall
	}
	r := reader{p: p}
	topic := r.str16()
	m.Partition = r.i32()
	m.Offset = r.u64()
	if r.bad {
		return ErrInvalidFormat
	}
	setString(&m.Topic, topic)
	return nil
}

// AppendTo appends the CONSUME payload.
func (m *ConsumeRequest) AppendTo(dst []byte) []byte {
	dst = appendStr16(dst, m.Topic)
	dst = appendI32(dst, m.Partition)
	return appendU64(dst, m.Offset)
}

// ConsumeResponse is the CONSUME response: bytes32 key, bytes32 value.
type ConsumeResponse struct {
	// Key and Value alias the decoded payload (see ProduceRequest).
	Key, Value []byte
}

// Decode parses a CONSUME response payload without allocating.
func (m *ConsumeResponse) Decode(p []byte) error {
	if len(p) < 8 {
		return ErrBufferTooSmall
	}
	r := reader{p: p}
	m.Key = r.bytes32()
	m.Value = r.bytes32()
	if r.bad {
		m.Key, m.Value = nil, nil
		return ErrInvalidFormat
	}
	return nil
}

// AppendTo appends the CONSUME response payload.
func (m *ConsumeResponse) AppendTo(dst []byte) []byte {
	dst = appendBytes32(dst, m.Key)
	return appendBytes32(dst, m.Value)
}
