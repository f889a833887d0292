package protocol

// ClusterMetadataRequest is the CLUSTER_METADATA (0x53) request:
// str16 topic, empty meaning all topics. A 0-byte payload also means all
// topics; a 1-byte payload is ErrBufferTooSmall (core.md §3.1).
type ClusterMetadataRequest struct {
	Topic string
}

// Decode parses a CLUSTER_METADATA payload.
func (m *ClusterMetadataRequest) Decode(p []byte) error {
	switch len(p) {
	case 0:
		m.Topic = ""
		return nil
	case 1:
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

// AppendTo appends the CLUSTER_METADATA payload (always the str16 form,
// like every client).
func (m *ClusterMetadataRequest) AppendTo(dst []byte) []byte {
	return appendStr16(dst, m.Topic)
}

// PartitionMetadata describes one partition in a CLUSTER_METADATA reply.
type PartitionMetadata struct {
	ID         int32
	LeaderID   string
	LeaderAddr string // host:port for clients
	Epoch      uint64
	State      string // online, offline, reassigning, syncing
	Replicas   []string
	ISR        []string
}

// TopicMetadata describes one topic in a CLUSTER_METADATA reply.
type TopicMetadata struct {
	Name       string
	Partitions []PartitionMetadata
}

// ClusterMetadata is the CLUSTER_METADATA response: str16 cluster_id,
// u32 topic count, then per topic str16 name, u32 partition count and per
// partition i32 id, str16 leader_id, str16 leader_addr, u64 epoch,
// str16 state, u32 n × str16 replica, u32 n × str16 isr.
type ClusterMetadata struct {
	ClusterID string
	Topics    []TopicMetadata
}

// Decode parses a CLUSTER_METADATA response.
func (m *ClusterMetadata) Decode(p []byte) error {
	if len(p) < 6 {
		return ErrBufferTooSmall
	}
	r := reader{p: p}
	id := r.str16()
	count := r.u32()
	if r.bad {
		return ErrInvalidFormat
	}
	topics := make([]TopicMetadata, 0, listCap(count, r.remaining(), 6))
	for i := uint32(0); i < count; i++ {
		var t TopicMetadata
		name := r.str16()
		np := r.u32()
		if r.bad {
			return ErrInvalidFormat
		}
		t.Name = string(name)
		// Smallest partition: i32 + 3 empty str16 + u64 + 2 empty lists.
		t.Partitions = make([]PartitionMetadata, 0, listCap(np, r.remaining(), 26))
		for j := uint32(0); j < np; j++ {
			var pm PartitionMetadata
			pm.ID = r.i32()
			pm.LeaderID = string(r.str16())
			pm.LeaderAddr = string(r.str16())
			pm.Epoch = r.u64()
			pm.State = string(r.str16())
			pm.Replicas = readStrList(&r)
			pm.ISR = readStrList(&r)
			if r.bad {
				return ErrInvalidFormat
			}
			t.Partitions = append(t.Partitions, pm)
		}
		topics = append(topics, t)
	}
	m.ClusterID = string(id)
	m.Topics = topics
	return nil
}

// AppendTo appends the CLUSTER_METADATA response.
func (m *ClusterMetadata) AppendTo(dst []byte) []byte {
	dst = appendStr16(dst, m.ClusterID)
	dst = appendU32(dst, uint32(len(m.Topics)))
	for i := range m.Topics {
		t := &m.Topics[i]
		dst = appendStr16(dst, t.Name)
		dst = appendU32(dst, uint32(len(t.Partitions)))
		for j := range t.Partitions {
			pm := &t.Partitions[j]
			dst = appendI32(dst, pm.ID)
			dst = appendStr16(dst, pm.LeaderID)
			dst = appendStr16(dst, pm.LeaderAddr)
			dst = appendU64(dst, pm.Epoch)
			dst = appendStr16(dst, pm.State)
			dst = appendStrList(dst, pm.Replicas)
			dst = appendStrList(dst, pm.ISR)
		}
	}
	return dst
}

// PeerRequest is the CLUSTER_JOIN (0x50) request: str16 peer (host:port).
// A standalone broker answers it with an ERROR; the codec exists so the
// client can send it and the broker can log what was asked.
type PeerRequest struct {
	Peer string
}

// Decode parses a CLUSTER_JOIN payload.
func (m *PeerRequest) Decode(p []byte) error {
	if len(p) < minPeerRequest {
		return ErrBufferTooSmall
	}
	r := reader{p: p}
	peer := r.str16()
	if r.bad {
		return ErrInvalidFormat
	}
	setString(&m.Peer, peer)
	return nil
}

// AppendTo appends the CLUSTER_JOIN payload.
func (m *PeerRequest) AppendTo(dst []byte) []byte { return appendStr16(dst, m.Peer) }
