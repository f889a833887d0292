package protocol

// Codecs of the advanced operations (security-and-advanced.md §§8–11):
// schema registry 0x10–0x15, dead-letter queue 0x20–0x22, delayed and TTL
// produce 0x30/0x35 and transactions 0x40–0x43.
//
// Unlike the hot-path core codecs, these decoders copy every byte slice
// they return: the broker keeps delayed and transactional payloads long
// after the frame buffer is reused.

// Minimum request payload sizes of §§8–11.
const (
	minRegisterSchema   = 7
	minSchemaVersion    = 6 // GET_SCHEMA, DELETE_SCHEMA
	minValidateSchema   = 6
	minProduceWithSchem = 8
	minFetchDLQ         = 6
	minReplayDLQ        = 4
	minTimedProduce     = 14 // PRODUCE_DELAYED, PRODUCE_WITH_TTL
	minProduceTx        = 8
	minTxnRequest       = 2
)

func cloneBytes(b []byte) []byte {
	if len(b) == 0 {
		return nil
	}
	return append([]byte(nil), b...)
}

// RegisterSchemaRequest is REGISTER_SCHEMA (0x10): str16 name, str8 type,
// bytes32 definition.
type RegisterSchemaRequest struct {
	Name       string
	Type       string // json, avro, protobuf or proto
	Definition []byte
}

// Decode parses a REGISTER_SCHEMA payload.
func (m *RegisterSchemaRequest) Decode(p []byte) error {
	if len(p) < minRegisterSchema {
		return ErrBufferTooSmall
	}
	r := reader{p: p}
	name, typ, def := r.str16(), r.str8(), r.bytes32()
	if r.bad {
		return ErrInvalidFormat
	}
	m.Name, m.Type, m.Definition = string(name), string(typ), cloneBytes(def)
	return nil
}

// AppendTo appends the REGISTER_SCHEMA payload.
func (m *RegisterSchemaRequest) AppendTo(dst []byte) []byte {
	dst = appendStr16(dst, m.Name)
	dst = appendStr8(dst, m.Type)
	return appendBytes32(dst, m.Definition)
}

// SchemaRegistered is the REGISTER_SCHEMA reply: str16 name, str8 type
// (the request's spelling), u32 version.
type SchemaRegistered struct {
	Name    string
	Type    string
	Version uint32
}

// Decode parses a REGISTER_SCHEMA reply.
func (m *SchemaRegistered) Decode(p []byte) error {
	if len(p) < 7 {
		return ErrBufferTooSmall
	}
	r := reader{p: p}
	name, typ := r.str16(), r.str8()
	m.Version = r.u32()
	if r.bad {
		return ErrInvalidFormat
	}
	m.Name, m.Type = string(name), string(typ)
	return nil
}

// AppendTo appends the REGISTER_SCHEMA reply.
func (m *SchemaRegistered) AppendTo(dst []byte) []byte {
	dst = appendStr16(dst, m.Name)
	dst = appendStr8(dst, m.Type)
	return appendU32(dst, m.Version)
}

// SchemaVersionRequest is GET_SCHEMA (0x11) and DELETE_SCHEMA (0x15):
// str16 name, u32 version (0 = latest for GET, every version for DELETE).
type SchemaVersionRequest struct {
	Name    string
	Version uint32
}

// Decode parses a GET_SCHEMA / DELETE_SCHEMA payload.
func (m *SchemaVersionRequest) Decode(p []byte) error {
	if len(p) < minSchemaVersion {
		return ErrBufferTooSmall
	}
	r := reader{p: p}
	name := r.str16()
	m.Version = r.u32()
	if r.bad {
		return ErrInvalidFormat
	}
	m.Name = string(name)
	return nil
}

// AppendTo appends the GET_SCHEMA / DELETE_SCHEMA payload.
func (m *SchemaVersionRequest) AppendTo(dst []byte) []byte {
	return appendU32(appendStr16(dst, m.Name), m.Version)
}

// SchemaEntry is one LIST_SCHEMAS entry: the id "<name>-v<N>", the type
// and the version.
type SchemaEntry struct {
	ID      string
	Type    string
	Version uint32
}

func (e *SchemaEntry) decodeFrom(r *reader) {
	id, typ := r.str16(), r.str8()
	e.Version = r.u32()
	if !r.bad {
		e.ID, e.Type = string(id), string(typ)
	}
}

func (e *SchemaEntry) appendTo(dst []byte) []byte {
	dst = appendStr16(dst, e.ID)
	dst = appendStr8(dst, e.Type)
	return appendU32(dst, e.Version)
}

// SchemaDetail is the GET_SCHEMA reply the spec requires (§8.2): a
// one-entry LIST_SCHEMAS reply, which is all pyflymq reads, followed by
// the name, the definition and the compatibility mode.
type SchemaDetail struct {
	SchemaEntry
	Name          string
	Definition    []byte
	Compatibility string
}

// Decode parses a GET_SCHEMA reply.
func (m *SchemaDetail) Decode(p []byte) error {
	if len(p) < 4+7+2+4+1 {
		return ErrBufferTooSmall
	}
	r := reader{p: p}
	if r.u32() != 1 {
		return ErrInvalidFormat
	}
	m.SchemaEntry.decodeFrom(&r)
	name, def, compat := r.str16(), r.bytes32(), r.str8()
	if r.bad {
		return ErrInvalidFormat
	}
	m.Name, m.Definition, m.Compatibility = string(name), cloneBytes(def), string(compat)
	return nil
}

// AppendTo appends the GET_SCHEMA reply.
func (m *SchemaDetail) AppendTo(dst []byte) []byte {
	dst = appendU32(dst, 1)
	dst = m.SchemaEntry.appendTo(dst)
	dst = appendStr16(dst, m.Name)
	dst = appendBytes32(dst, m.Definition)
	return appendStr8(dst, m.Compatibility)
}

// ListSchemasRequest is LIST_SCHEMAS (0x12): str16 name filter, empty for
// all. Decode never fails: a short or malformed payload means "all" (§8.3).
type ListSchemasRequest struct {
	Filter string
}

// Decode parses a LIST_SCHEMAS payload; it never returns an error.
func (m *ListSchemasRequest) Decode(p []byte) error {
	r := reader{p: p}
	f := r.str16()
	m.Filter = ""
	if !r.bad {
		m.Filter = string(f)
	}
	return nil
}

// AppendTo appends the LIST_SCHEMAS payload.
func (m *ListSchemasRequest) AppendTo(dst []byte) []byte { return appendStr16(dst, m.Filter) }

// SchemaList is the LIST_SCHEMAS reply: u32 count, then per entry str16
// id, str8 type, u32 version.
type SchemaList struct {
	Schemas []SchemaEntry
}

// Decode parses a LIST_SCHEMAS reply.
func (m *SchemaList) Decode(p []byte) error {
	if len(p) < 4 {
		return ErrBufferTooSmall
	}
	r := reader{p: p}
	n := r.u32()
	m.Schemas = make([]SchemaEntry, 0, listCap(n, r.remaining(), 7))
	for i := uint32(0); i < n && !r.bad; i++ {
		var e SchemaEntry
		e.decodeFrom(&r)
		m.Schemas = append(m.Schemas, e)
	}
	return r.finish()
}

// AppendTo appends the LIST_SCHEMAS reply.
func (m *SchemaList) AppendTo(dst []byte) []byte {
	dst = appendU32(dst, uint32(len(m.Schemas)))
	for i := range m.Schemas {
		dst = m.Schemas[i].appendTo(dst)
	}
	return dst
}

// ValidateSchemaRequest is VALIDATE_SCHEMA (0x13): str16 name, bytes32
// message.
type ValidateSchemaRequest struct {
	Name    string
	Message []byte
}

// Decode parses a VALIDATE_SCHEMA payload.
func (m *ValidateSchemaRequest) Decode(p []byte) error {
	if len(p) < minValidateSchema {
		return ErrBufferTooSmall
	}
	r := reader{p: p}
	name, msg := r.str16(), r.bytes32()
	if r.bad {
		return ErrInvalidFormat
	}
	m.Name, m.Message = string(name), cloneBytes(msg)
	return nil
}

// AppendTo appends the VALIDATE_SCHEMA payload.
func (m *ValidateSchemaRequest) AppendTo(dst []byte) []byte {
	return appendBytes32(appendStr16(dst, m.Name), m.Message)
}

// ValidateSchemaResponse is the VALIDATE_SCHEMA reply: bool valid, then a
// strlist (u32 count, str16 each) of messages, empty when valid.
type ValidateSchemaResponse struct {
	Valid  bool
	Errors []string
}

// Decode parses a VALIDATE_SCHEMA reply.
func (m *ValidateSchemaResponse) Decode(p []byte) error {
	if len(p) < 5 {
		return ErrBufferTooSmall
	}
	r := reader{p: p}
	m.Valid = r.bool()
	n := r.u32()
	m.Errors = make([]string, 0, listCap(n, r.remaining(), 2))
	for i := uint32(0); i < n && !r.bad; i++ {
		s := r.str16()
		if !r.bad {
			m.Errors = append(m.Errors, string(s))
		}
	}
	return r.finish()
}

// AppendTo appends the VALIDATE_SCHEMA reply.
func (m *ValidateSchemaResponse) AppendTo(dst []byte) []byte {
	dst = appendBool(dst, m.Valid)
	dst = appendU32(dst, uint32(len(m.Errors)))
	for _, e := range m.Errors {
		dst = appendStr16(dst, e)
	}
	return dst
}

// ProduceWithSchemaRequest is PRODUCE_WITH_SCHEMA (0x14) in either layout
// (§8.5): A (Go, upstream) str16 topic, str16 schema name, bytes32 data;
// B (pyflymq, Java) str16 topic, bytes32 data, str16 schema name.
type ProduceWithSchemaRequest struct {
	Topic      string
	SchemaName string
	Data       []byte
	// LayoutB selects layout B for AppendTo; Decode sets it to the layout
	// it read.
	LayoutB bool
	// Ambiguous is set by Decode when the payload parses exactly in both
	// layouts. The fields then hold the layout B reading; LayoutA gives
	// the other. The caller applies rule 2 of §8.5, which needs the
	// registry: B if its schema name is non-empty and registered, else A.
	Ambiguous bool
}

type pwsReading struct {
	name, data []byte
	ok         bool
}

func readLayoutA(p []byte) (topic []byte, rd pwsReading) {
	r := reader{p: p}
	topic = r.str16()
	rd.name = r.str16()
	rd.data = r.bytes32()
	rd.ok = !r.bad && r.remaining() == 0
	return topic, rd
}

func readLayoutB(p []byte) pwsReading {
	r := reader{p: p}
	r.str16()
	var rd pwsReading
	rd.data = r.bytes32()
	rd.name = r.str16()
	rd.ok = !r.bad && r.remaining() == 0
	return rd
}

// Decode parses a PRODUCE_WITH_SCHEMA payload: the layout that consumes
// the payload exactly wins; neither is ErrInvalidFormat.
func (m *ProduceWithSchemaRequest) Decode(p []byte) error {
	if len(p) < minProduceWithSchem {
		return ErrBufferTooSmall
	}
	topic, a := readLayoutA(p)
	b := readLayoutB(p)
	m.Ambiguous = a.ok && b.ok
	switch {
	case b.ok:
		m.LayoutB, m.SchemaName, m.Data = true, string(b.name), cloneBytes(b.data)
	case a.ok:
		m.LayoutB, m.SchemaName, m.Data = false, string(a.name), cloneBytes(a.data)
	default:
		return ErrInvalidFormat
	}
	m.Topic = string(topic)
	return nil
}

// LayoutA returns the layout A reading of an Ambiguous request: the bytes
// B took for the schema name are A's data, and A's schema name is empty.
func (m *ProduceWithSchemaRequest) LayoutA() ProduceWithSchemaRequest {
	if !m.Ambiguous || !m.LayoutB {
		return *m
	}
	return ProduceWithSchemaRequest{Topic: m.Topic, Data: cloneBytes([]byte(m.SchemaName))}
}

// AppendTo appends the payload in layout A, or B when LayoutB is set.
func (m *ProduceWithSchemaRequest) AppendTo(dst []byte) []byte {
	dst = appendStr16(dst, m.Topic)
	if m.LayoutB {
		dst = appendBytes32(dst, m.Data)
		return appendStr16(dst, m.SchemaName)
	}
	dst = appendStr16(dst, m.SchemaName)
	return appendBytes32(dst, m.Data)
}

// StatusResponse is the reply of DELETE_SCHEMA, REPLAY_DLQ (by id) and
// PURGE_DLQ: bool success, str16 message ("OK").
type StatusResponse struct {
	Success bool
	Message string
}

// Decode parses a status reply.
func (m *StatusResponse) Decode(p []byte) error {
	if len(p) < 3 {
		return ErrBufferTooSmall
	}
	r := reader{p: p}
	m.Success = r.bool()
	msg := r.str16()
	if r.bad {
		return ErrInvalidFormat
	}
	m.Message = string(msg)
	return nil
}

// AppendTo appends a status reply.
func (m *StatusResponse) AppendTo(dst []byte) []byte {
	return appendStr16(appendBool(dst, m.Success), m.Message)
}

// FetchDLQRequest is FETCH_DLQ (0x20): str16 topic (without the DLQ
// suffix), i32 max messages.
type FetchDLQRequest struct {
	Topic       string
	MaxMessages int32
}

// Decode parses a FETCH_DLQ payload.
func (m *FetchDLQRequest) Decode(p []byte) error {
	if len(p) < minFetchDLQ {
		return ErrBufferTooSmall
	}
	r := reader{p: p}
	topic := r.str16()
	m.MaxMessages = r.i32()
	if r.bad {
		return ErrInvalidFormat
	}
	m.Topic = string(topic)
	return nil
}

// AppendTo appends the FETCH_DLQ payload.
func (m *FetchDLQRequest) AppendTo(dst []byte) []byte {
	return appendI32(appendStr16(dst, m.Topic), m.MaxMessages)
}

// DLQMessage is one FETCH_DLQ entry: id, the original payload, the error
// message and the retry count.
type DLQMessage struct {
	ID      string
	Data    []byte
	Error   string
	Retries int32
}

// DLQMessages is the FETCH_DLQ reply: u32 count, then per message str16
// id, bytes32 data, str16 error, i32 retries.
type DLQMessages struct {
	Messages []DLQMessage
}

// Decode parses a FETCH_DLQ reply.
func (m *DLQMessages) Decode(p []byte) error {
	if len(p) < 4 {
		return ErrBufferTooSmall
	}
	r := reader{p: p}
	n := r.u32()
	m.Messages = make([]DLQMessage, 0, listCap(n, r.remaining(), 12))
	for i := uint32(0); i < n && !r.bad; i++ {
		id, data, msg := r.str16(), r.bytes32(), r.str16()
		retries := r.i32()
		if !r.bad {
			m.Messages = append(m.Messages, DLQMessage{ID: string(id), Data: cloneBytes(data),
				Error: string(msg), Retries: retries})
		}
	}
	return r.finish()
}

// AppendTo appends the FETCH_DLQ reply.
func (m *DLQMessages) AppendTo(dst []byte) []byte {
	dst = appendU32(dst, uint32(len(m.Messages)))
	for i := range m.Messages {
		e := &m.Messages[i]
		dst = appendStr16(dst, e.ID)
		dst = appendBytes32(dst, e.Data)
		dst = appendStr16(dst, e.Error)
		dst = appendI32(dst, e.Retries)
	}
	return dst
}

// ReplayDLQRequest is REPLAY_DLQ (0x21) in either form (§9.2):
// replay-by-id (str16 topic, str16 message id) or re-inject-by-offset
// (str16 topic, u64 offset), told apart by exact length.
type ReplayDLQRequest struct {
	Topic     string
	MessageID string
	Offset    uint64
	// ByOffset selects the re-inject-by-offset form.
	ByOffset bool
}

// Decode parses a REPLAY_DLQ payload; replay-by-id wins when both forms
// consume the payload exactly.
func (m *ReplayDLQRequest) Decode(p []byte) error {
	if len(p) < minReplayDLQ {
		return ErrBufferTooSmall
	}
	r := reader{p: p}
	topic := r.str16()
	if r.bad {
		return ErrInvalidFormat
	}
	rest := r.p[r.off:]
	id := reader{p: rest}
	idb := id.str16()
	switch {
	case !id.bad && id.remaining() == 0:
		m.Topic, m.MessageID, m.Offset, m.ByOffset = string(topic), string(idb), 0, false
	case len(rest) == 8:
		off := reader{p: rest}
		m.Topic, m.MessageID, m.Offset, m.ByOffset = string(topic), "", off.u64(), true
	default:
		return ErrInvalidFormat
	}
	return nil
}

// AppendTo appends the REPLAY_DLQ payload in the form ByOffset selects.
func (m *ReplayDLQRequest) AppendTo(dst []byte) []byte {
	dst = appendStr16(dst, m.Topic)
	if m.ByOffset {
		return appendU64(dst, m.Offset)
	}
	return appendStr16(dst, m.MessageID)
}

// ReinjectResponse is the in-band reply of REPLAY_DLQ's
// re-inject-by-offset form: bool success, u32 message length, message.
type ReinjectResponse struct {
	Success bool
	Message string
}

// Decode parses a re-inject reply.
func (m *ReinjectResponse) Decode(p []byte) error {
	if len(p) < 5 {
		return ErrBufferTooSmall
	}
	r := reader{p: p}
	m.Success = r.bool()
	msg := r.take(int(r.u32()))
	if r.bad {
		return ErrInvalidFormat
	}
	m.Message = string(msg)
	return nil
}

// AppendTo appends a re-inject reply.
func (m *ReinjectResponse) AppendTo(dst []byte) []byte {
	dst = appendBool(dst, m.Success)
	dst = appendU32(dst, uint32(len(m.Message)))
	return append(dst, m.Message...)
}

// timedProduce is the shared layout of PRODUCE_DELAYED and
// PRODUCE_WITH_TTL: str16 topic, bytes32 data, i64 milliseconds.
func decodeTimed(p []byte) (topic string, data []byte, ms int64, err error) {
	if len(p) < minTimedProduce {
		return "", nil, 0, ErrBufferTooSmall
	}
	r := reader{p: p}
	t, d := r.str16(), r.bytes32()
	ms = r.i64()
	if r.bad {
		return "", nil, 0, ErrInvalidFormat
	}
	return string(t), cloneBytes(d), ms, nil
}

func appendTimed(dst []byte, topic string, data []byte, ms int64) []byte {
	dst = appendStr16(dst, topic)
	dst = appendBytes32(dst, data)
	return appendI64(dst, ms)
}

// ProduceDelayedRequest is PRODUCE_DELAYED (0x30): str16 topic, bytes32
// data, i64 delay ms (negative means now).
type ProduceDelayedRequest struct {
	Topic   string
	Data    []byte
	DelayMs int64
}

// Decode parses a PRODUCE_DELAYED payload.
func (m *ProduceDelayedRequest) Decode(p []byte) (err error) {
	m.Topic, m.Data, m.DelayMs, err = decodeTimed(p)
	return err
}

// AppendTo appends the PRODUCE_DELAYED payload.
func (m *ProduceDelayedRequest) AppendTo(dst []byte) []byte {
	return appendTimed(dst, m.Topic, m.Data, m.DelayMs)
}

// ProduceTTLRequest is PRODUCE_WITH_TTL (0x35): str16 topic, bytes32
// data, i64 ttl ms.
type ProduceTTLRequest struct {
	Topic string
	Data  []byte
	TTLMs int64
}

// Decode parses a PRODUCE_WITH_TTL payload.
func (m *ProduceTTLRequest) Decode(p []byte) (err error) {
	m.Topic, m.Data, m.TTLMs, err = decodeTimed(p)
	return err
}

// AppendTo appends the PRODUCE_WITH_TTL payload.
func (m *ProduceTTLRequest) AppendTo(dst []byte) []byte {
	return appendTimed(dst, m.Topic, m.Data, m.TTLMs)
}

// TxnRequest is COMMIT_TX (0x41) and ABORT_TX (0x42): str16 txn id.
// BEGIN_TX (0x40) has an empty payload.
type TxnRequest struct {
	TxnID string
}

// Decode parses a COMMIT_TX / ABORT_TX payload.
func (m *TxnRequest) Decode(p []byte) error {
	if len(p) < minTxnRequest {
		return ErrBufferTooSmall
	}
	r := reader{p: p}
	id := r.str16()
	if r.bad {
		return ErrInvalidFormat
	}
	m.TxnID = string(id)
	return nil
}

// AppendTo appends the COMMIT_TX / ABORT_TX payload.
func (m *TxnRequest) AppendTo(dst []byte) []byte { return appendStr16(dst, m.TxnID) }

// TxnResponse is the reply of BEGIN_TX, COMMIT_TX and ABORT_TX: str16
// txn id, bool success.
type TxnResponse struct {
	TxnID   string
	Success bool
}

// Decode parses a transaction reply.
func (m *TxnResponse) Decode(p []byte) error {
	if len(p) < 3 {
		return ErrBufferTooSmall
	}
	r := reader{p: p}
	id := r.str16()
	m.Success = r.bool()
	if r.bad {
		return ErrInvalidFormat
	}
	m.TxnID = string(id)
	return nil
}

// AppendTo appends a transaction reply.
func (m *TxnResponse) AppendTo(dst []byte) []byte {
	return appendBool(appendStr16(dst, m.TxnID), m.Success)
}

// ProduceTxRequest is PRODUCE_TX (0x43): str16 txn id, str16 topic,
// bytes32 data.
type ProduceTxRequest struct {
	TxnID string
	Topic string
	Data  []byte
}

// Decode parses a PRODUCE_TX payload.
func (m *ProduceTxRequest) Decode(p []byte) error {
	if len(p) < minProduceTx {
		return ErrBufferTooSmall
	}
	r := reader{p: p}
	id, topic, data := r.str16(), r.str16(), r.bytes32()
	if r.bad {
		return ErrInvalidFormat
	}
	m.TxnID, m.Topic, m.Data = string(id), string(topic), cloneBytes(data)
	return nil
}

// AppendTo appends the PRODUCE_TX payload.
func (m *ProduceTxRequest) AppendTo(dst []byte) []byte {
	dst = appendStr16(dst, m.TxnID)
	dst = appendStr16(dst, m.Topic)
	return appendBytes32(dst, m.Data)
}
