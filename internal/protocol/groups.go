package protocol

// ResetModeOffset is the RESET_OFFSET mode that carries an explicit
// offset; only with it is the trailing u64 read.
const ResetModeOffset = "offset"

// GroupOffsetRequest is the GET_OFFSET (0x60) and GET_LAG (0x64) request:
// str16 topic, str16 group_id, i32 partition.
type GroupOffsetRequest struct {
	Topic, Group string
	Partition    int32
}

// Decode parses a GET_OFFSET / GET_LAG payload.
func (m *GroupOffsetRequest) Decode(p []byte) error {
	if len(p) < minGroupOffset {
		return ErrBufferTooSmall
	}
	r := reader{p: p}
	topic := r.str16()
	group := r.str16()
	m.Partition = r.i32()
	if r.bad {
		return ErrInvalidFormat
	}
	setString(&m.Topic, topic)
	setString(&m.Group, group)
	return nil
}

// AppendTo appends the GET_OFFSET / GET_LAG payload.
func (m *GroupOffsetRequest) AppendTo(dst []byte) []byte {
	dst = appendStr16(dst, m.Topic)
	dst = appendStr16(dst, m.Group)
	return appendI32(dst, m.Partition)
}

// ResetOffsetRequest is the RESET_OFFSET (0x61) request: str16 topic,
// str16 group_id, i32 partition, str8 mode, and u64 offset only when mode
// is "offset" (core.md §6.13).
type ResetOffsetRequest struct {
	Topic, Group string
	Partition    int32
	Mode         string // earliest, latest or offset
	Offset       uint64 // meaningful only when Mode == "offset"
}

// Decode parses a RESET_OFFSET payload. The offset is read only for mode
// "offset" (missing → ErrInvalidFormat); the Java SDK appends 8 unused
// bytes for the other modes, which are ignored like any trailing bytes.
func (m *ResetOffsetRequest) Decode(p []byte) error {
	if len(p) < minResetOffset {
		return ErrBufferTooSmall
	}
	r := reader{p: p}
	topic := r.str16()
	group := r.str16()
	m.Partition = r.i32()
	mode := r.str8()
	m.Offset = 0
	if !r.bad && string(mode) == ResetModeOffset {
		m.Offset = r.u64()
	}
	if r.bad {
		return ErrInvalidFormat
	}
	setString(&m.Topic, topic)
	setString(&m.Group, group)
	setString(&m.Mode, mode)
	return nil
}

// AppendTo appends the RESET_OFFSET payload in the pyflymq/Go layout: the
// offset only for mode "offset".
func (m *ResetOffsetRequest) AppendTo(dst []byte) []byte {
	dst = appendStr16(dst, m.Topic)
	dst = appendStr16(dst, m.Group)
	dst = appendI32(dst, m.Partition)
	dst = appendStr8(dst, m.Mode)
	if m.Mode == ResetModeOffset {
		dst = appendU64(dst, m.Offset)
	}
	return dst
}

// GroupRequest is the DESCRIBE_GROUP (0x63) and DELETE_GROUP (0x65)
// request: str16 topic, str16 group_id. The Java SDK sends only
// str16 group_id; such a payload is recognised because its first u16
// equals len(payload)-2, which the two-string layout can never satisfy.
type GroupRequest struct {
	Topic, Group string
	// JavaForm reports the Java layout (Topic is then empty). The broker
	// decides whether to serve it or answer ErrInvalidFormat like upstream.
	JavaForm bool
}

// Decode parses a DESCRIBE_GROUP / DELETE_GROUP payload.
func (m *GroupRequest) Decode(p []byte) error {
	if len(p) < minGroup {
		return ErrBufferTooSmall
	}
	r := reader{p: p}
	first := r.str16()
	if r.remaining() == 0 && !r.bad {
		m.JavaForm = true
		setString(&m.Topic, nil)
		setString(&m.Group, first)
		return nil
	}
	group := r.str16()
	if r.bad {
		return ErrInvalidFormat
	}
	m.JavaForm = false
	setString(&m.Topic, first)
	setString(&m.Group, group)
	return nil
}

// AppendTo appends the payload: the Java form (group only) when JavaForm
// is set, the two-string form otherwise.
func (m *GroupRequest) AppendTo(dst []byte) []byte {
	if m.JavaForm {
		return appendStr16(dst, m.Group)
	}
	dst = appendStr16(dst, m.Topic)
	return appendStr16(dst, m.Group)
}

// PartitionOffset is one committed offset of a group.
type PartitionOffset struct {
	Partition int32
	Offset    uint64
}

// GroupInfo is one consumer group: the DESCRIBE_GROUP response and an
// element of LIST_GROUPS. Layout: str16 topic, str16 group_id,
// u32 members, u32 n, n × (i32 partition, u64 offset).
type GroupInfo struct {
	Topic, Group string
	Members      uint32
	Offsets      []PartitionOffset
}

// Decode parses a DESCRIBE_GROUP response.
func (m *GroupInfo) Decode(p []byte) error {
	if len(p) < 12 {
		return ErrBufferTooSmall
	}
	r := reader{p: p}
	m.decode(&r)
	if r.bad {
		*m = GroupInfo{}
		return ErrInvalidFormat
	}
	return nil
}

func (m *GroupInfo) decode(r *reader) {
	topic := r.str16()
	group := r.str16()
	m.Members = r.u32()
	count := r.u32()
	if r.bad {
		return
	}
	m.Offsets = make([]PartitionOffset, 0, listCap(count, r.remaining(), 12))
	for i := uint32(0); i < count; i++ {
		po := PartitionOffset{Partition: r.i32(), Offset: r.u64()}
		if r.bad {
			return
		}
		m.Offsets = append(m.Offsets, po)
	}
	m.Topic = string(topic)
	m.Group = string(group)
}

// AppendTo appends the DESCRIBE_GROUP response.
func (m *GroupInfo) AppendTo(dst []byte) []byte {
	dst = appendStr16(dst, m.Topic)
	dst = appendStr16(dst, m.Group)
	dst = appendU32(dst, m.Members)
	dst = appendU32(dst, uint32(len(m.Offsets)))
	for _, o := range m.Offsets {
		dst = appendI32(dst, o.Partition)
		dst = appendU64(dst, o.Offset)
	}
	return dst
}

// GroupList is the LIST_GROUPS (0x62) response: u32 count, count ×
// GroupInfo (the Go/pyflymq layout; Java expects another one, core.md
// §6.13).
type GroupList struct {
	Groups []GroupInfo
}

// Decode parses a LIST_GROUPS response.
func (m *GroupList) Decode(p []byte) error {
	if len(p) < 4 {
		return ErrBufferTooSmall
	}
	r := reader{p: p}
	count := r.u32()
	m.Groups = make([]GroupInfo, 0, listCap(count, r.remaining(), 12))
	for i := uint32(0); i < count; i++ {
		var g GroupInfo
		g.decode(&r)
		if r.bad {
			m.Groups = nil
			return ErrInvalidFormat
		}
		m.Groups = append(m.Groups, g)
	}
	return nil
}

// AppendTo appends the LIST_GROUPS response.
func (m *GroupList) AppendTo(dst []byte) []byte {
	dst = appendU32(dst, uint32(len(m.Groups)))
	for i := range m.Groups {
		dst = m.Groups[i].AppendTo(dst)
	}
	return dst
}

// JavaGroupInfo is the Java SDK's group layout, the optional reply to a
// Java-form DESCRIBE_GROUP: str16 group_id, str16 state, u32 n × str16
// member, u32 m × str16 topic, str16 coordinator.
type JavaGroupInfo struct {
	Group, State string
	Members      []string
	Topics       []string
	Coordinator  string
}

// Decode parses a Java-layout group reply.
func (m *JavaGroupInfo) Decode(p []byte) error {
	if len(p) < 14 {
		return ErrBufferTooSmall
	}
	r := reader{p: p}
	group := r.str16()
	state := r.str16()
	members := readStrList(&r)
	topics := readStrList(&r)
	coord := r.str16()
	if r.bad {
		return ErrInvalidFormat
	}
	m.Group, m.State, m.Coordinator = string(group), string(state), string(coord)
	m.Members, m.Topics = members, topics
	return nil
}

// AppendTo appends a Java-layout group reply.
func (m *JavaGroupInfo) AppendTo(dst []byte) []byte {
	dst = appendStr16(dst, m.Group)
	dst = appendStr16(dst, m.State)
	dst = appendStrList(dst, m.Members)
	dst = appendStrList(dst, m.Topics)
	return appendStr16(dst, m.Coordinator)
}

// LagResponse is the GET_LAG (0x64) response: four u64 values.
type LagResponse struct {
	Current, Committed, Latest, Lag uint64
}

// Decode parses a GET_LAG response.
func (m *LagResponse) Decode(p []byte) error {
	if len(p) < 32 {
		return ErrBufferTooSmall
	}
	r := reader{p: p}
	m.Current, m.Committed, m.Latest, m.Lag = r.u64(), r.u64(), r.u64(), r.u64()
	return nil
}

// AppendTo appends the GET_LAG response.
func (m *LagResponse) AppendTo(dst []byte) []byte {
	dst = appendU64(dst, m.Current)
	dst = appendU64(dst, m.Committed)
	dst = appendU64(dst, m.Latest)
	return appendU64(dst, m.Lag)
}

// readStrList reads a u32 count then that many str16 values.
func readStrList(r *reader) []string {
	count := r.u32()
	if r.bad {
		return nil
	}
	out := make([]string, 0, listCap(count, r.remaining(), 2))
	for i := uint32(0); i < count; i++ {
		s := r.str16()
		if r.bad {
			return nil
		}
		out = append(out, string(s))
	}
	return out
}

func appendStrList(dst []byte, list []string) []byte {
	dst = appendU32(dst, uint32(len(list)))
	for _, s := range list {
		dst = appendStr16(dst, s)
	}
	return dst
}
