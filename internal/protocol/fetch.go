package protocol

// FetchRequest is the FETCH (0x07) and FETCH_BINARY (0x0B) request:
// str16 topic, i32 partition, u64 offset, i32 max_messages, then an
// optional str16 filter (core.md §6.7).
type FetchRequest struct {
	Topic       string
	Partition   int32
	Offset      uint64
	MaxMessages int32 // <= 0 means the broker default (10)
	Filter      string
}

// Decode parses a FETCH payload. The filter is optional: older clients
// omit it, and a filter whose length prefix overruns the payload is
// treated as empty rather than rejected, as upstream does.
func (m *FetchRequest) Decode(p []byte) error {
	if len(p) < minFetch {
		return ErrBufferTooSmall
	}
	r := reader{p: p}
	topic := r.str16()
	m.Partition = r.i32()
	m.Offset = r.u64()
	m.MaxMessages = r.i32()
	if r.bad {
		return ErrInvalidFormat
	}
	setString(&m.Topic, topic)
	var filter []byte
	if r.remaining() >= 2 {
		filter = r.str16() // nil on overrun: ignored
	}
	setString(&m.Filter, filter)
	return nil
}

// AppendTo appends the FETCH payload; the filter field is always written,
// like every current client does.
func (m *FetchRequest) AppendTo(dst []byte) []byte {
	dst = appendStr16(dst, m.Topic)
	dst = appendI32(dst, m.Partition)
	dst = appendU64(dst, m.Offset)
	dst = appendI32(dst, m.MaxMessages)
	return appendStr16(dst, m.Filter)
}

// FetchedMessage is one message of a FETCH response.
type FetchedMessage struct {
	Offset uint64
	// Key and Value alias the decoded payload (see ProduceRequest).
	Key, Value []byte
}

// FetchResponse is the FETCH response: u32 count, u64 next_offset, then
// count × (u64 offset, bytes32 key, bytes32 value).
type FetchResponse struct {
	NextOffset uint64
	Messages   []FetchedMessage
}

// FetchResponseHeaderSize is the size of the count and next_offset fields
// that precede the messages.
const FetchResponseHeaderSize = 12

// FetchedMessageSize is the encoded size of one fetched message; the
// broker uses it to stop before a response would exceed MaxPayload.
func FetchedMessageSize(keyLen, valueLen int) int { return 16 + keyLen + valueLen }

// AppendFetchResponseHeader appends the count and next_offset fields. A
// broker streaming messages straight from storage writes this, then
// AppendFetchedMessage per message, without building a FetchResponse.
func AppendFetchResponseHeader(dst []byte, count uint32, next uint64) []byte {
	dst = appendU32(dst, count)
	return appendU64(dst, next)
}

// AppendFetchedMessage appends one message of a FETCH response.
func AppendFetchedMessage(dst []byte, offset uint64, key, value []byte) []byte {
	dst = appendU64(dst, offset)
	dst = appendBytes32(dst, key)
	return appendBytes32(dst, value)
}

// Decode parses a FETCH response payload. Messages reuses its backing
// array and the keys and values alias p, so decoding a stream of
// responses into one FetchResponse does not allocate in steady state.
func (m *FetchResponse) Decode(p []byte) error {
	if len(p) < FetchResponseHeaderSize {
		return ErrBufferTooSmall
	}
	r := reader{p: p}
	count := r.u32()
	m.NextOffset = r.u64()
	if n := listCap(count, r.remaining(), 16); cap(m.Messages) < n {
		m.Messages = make([]FetchedMessage, 0, n)
	}
	m.Messages = m.Messages[:0]
	for i := uint32(0); i < count; i++ {
		off := r.u64()
		key := r.bytes32()
		value := r.bytes32()
		if r.bad {
			clear(m.Messages[:cap(m.Messages)])
			m.Messages = m.Messages[:0]
			return ErrInvalidFormat
		}
		m.Messages = append(m.Messages, FetchedMessage{Offset: off, Key: key, Value: value})
	}
	return nil
}

// AppendTo appends the FETCH response payload.
func (m *FetchResponse) AppendTo(dst []byte) []byte {
	dst = AppendFetchResponseHeader(dst, uint32(len(m.Messages)), m.NextOffset)
	for i := range m.Messages {
		msg := &m.Messages[i]
		dst = AppendFetchedMessage(dst, msg.Offset, msg.Key, msg.Value)
	}
	return dst
}
