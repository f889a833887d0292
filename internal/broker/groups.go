package broker

import (
	"sort"
)

// Subscribe modes (core.md §6.5) and reset modes (§6.13).
const (
	ModeEarliest = "earliest"
	ModeLatest   = "latest"
	ModeCommit   = "commit"
	ModeOffset   = "offset"
)

// PartitionOffset is one committed offset of a group.
type PartitionOffset struct {
	Partition int32
	Offset    uint64
}

// Group describes a consumer group, identified by (Topic, Name).
type Group struct {
	Topic, Name string
	Members     int
	MemberIDs   []string          // peer addresses, ascending
	Offsets     []PartitionOffset // ascending by partition
}

// Lag is the GET_LAG answer for one partition.
type Lag struct {
	Committed uint64 // 0 when nothing is committed for the partition
	Latest    uint64 // LEO
	Lag       uint64 // Latest − Committed, or 0 when Committed > Latest
}

// Subscribe returns the start offset for mode on a partition and, when
// group is not empty and the call succeeds, registers member (the peer
// address) in the group, creating it. Errors in order: ErrTopicNotFound,
// *PartitionError, *ModeError.
func (b *Broker) Subscribe(topic, group string, partition int32, mode, member string) (uint64, error) {
	t, err := b.acquire(topic)
	if err != nil {
		return 0, err
	}
	p, err := t.partition(partition)
	if err != nil {
		t.mu.RUnlock()
		return 0, err
	}
	var off uint64
	switch mode {
	case ModeEarliest:
		off = p.LowestOffset()
	case ModeLatest, "":
		off = p.NextOffset() // LEO: 0 on an empty partition, unlike upstream
	case ModeCommit:
		if c, ok := b.groups.committed(topic, group, partition); ok {
			off = c
		} else {
			off = p.LowestOffset()
		}
	default:
		t.mu.RUnlock()
		return 0, &ModeError{Kind: "subscribe", Mode: mode}
	}
	t.mu.RUnlock()
	if group != "" {
		if err := ValidateGroupName(group); err != nil {
			return 0, err
		}
		if err := b.groups.join(topic, group, member); err != nil {
			b.noteErr(err)
			return 0, err
		}
	}
	return off, nil
}

// Unsubscribe removes member from the group; the server calls it for
// every (topic, group) a connection subscribed to when it closes.
func (b *Broker) Unsubscribe(topic, group, member string) {
	b.groups.leave(topic, group, member)
}

// Commit stores offset verbatim as the committed offset of (topic, group,
// partition), creating the group. Topic and partition are not checked
// (core.md §6.6). A non-empty group must pass ValidateGroupName; the
// empty group id is kept as clients have always been able to send it. It
// returns once the commit is durable per Options.Acks.
func (b *Broker) Commit(topic, group string, partition int32, offset uint64) error {
	if group != "" {
		if err := ValidateGroupName(group); err != nil {
			return err
		}
	}
	err := b.groups.commit(topic, group, partition, offset)
	b.noteErr(err)
	return err
}

// CommittedOffset returns the committed offset; 0 when the group exists
// but has nothing for the partition. Unknown group: *GroupNotFoundError.
func (b *Broker) CommittedOffset(topic, group string, partition int32) (uint64, error) {
	return b.groups.offset(topic, group, partition)
}

// ResetOffset commits a target offset per core.md §6.13: earliest (lowest
// stored), latest (LEO) — both need the topic and partition — or offset
// (the given value, unchecked). Other modes: *ModeError.
func (b *Broker) ResetOffset(topic, group string, partition int32, mode string, offset uint64) error {
	switch mode {
	case ModeEarliest, ModeLatest:
		lowest, next, err := b.Offsets(topic, partition)
		if err != nil {
			return err
		}
		offset = next
		if mode == ModeEarliest {
			offset = lowest
		}
	case ModeOffset:
	default:
		return &ModeError{Kind: "reset", Mode: mode}
	}
	return b.Commit(topic, group, partition, offset)
}

// Lag returns committed, latest and lag for a partition. Check order
// (core.md §6.13): *GroupNotFoundError, ErrTopicNotFound, *PartitionError.
func (b *Broker) Lag(topic, group string, partition int32) (Lag, error) {
	committed, err := b.groups.offset(topic, group, partition)
	if err != nil {
		return Lag{}, err
	}
	_, latest, err := b.Offsets(topic, partition)
	if err != nil {
		return Lag{}, err
	}
	l := Lag{Committed: committed, Latest: latest}
	if latest > committed {
		l.Lag = latest - committed
	}
	return l, nil
}

// Groups returns every group sorted by (topic, group).
func (b *Broker) Groups() []Group {
	return b.groups.list()
}

// DescribeGroup returns one group or *GroupNotFoundError.
func (b *Broker) DescribeGroup(topic, group string) (Group, error) {
	return b.groups.describe(topic, group)
}

// DeleteGroup removes a group and its committed offsets, durably.
// Unknown group: *GroupNotFoundError.
func (b *Broker) DeleteGroup(topic, group string) error {
	err := b.groups.remove(topic, group)
	b.noteErr(err)
	return err
}

// groupStore operations behind the Broker methods above.

func (s *groupStore) committed(topic, group string, partition int32) (uint64, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	g := s.groups[groupKey{topic, group}]
	if g == nil {
		return 0, false
	}
	off, ok := g.offsets[partition]
	return off, ok
}

func (s *groupStore) offset(topic, group string, partition int32) (uint64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	g := s.groups[groupKey{topic, group}]
	if g == nil {
		return 0, &GroupNotFoundError{Topic: topic, Group: group}
	}
	return g.offsets[partition], nil
}

func (s *groupStore) join(topic, group, member string) error {
	s.mu.Lock()
	k := groupKey{topic, group}
	g := s.groups[k]
	if g != nil {
		g.members[member] = struct{}{}
		s.mu.Unlock()
		return nil
	}
	// A new group is made durable so it survives a restart even before
	// its first commit.
	seq, err := s.writeLocked(&groupRecord{op: opCreate, topic: topic, group: group})
	if err == nil {
		s.groups[k].members[member] = struct{}{}
	}
	s.mu.Unlock()
	if err != nil {
		return err
	}
	return s.finish(seq)
}

func (s *groupStore) leave(topic, group, member string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if g := s.groups[groupKey{topic, group}]; g != nil {
		delete(g.members, member)
	}
}

func (s *groupStore) commit(topic, group string, partition int32, offset uint64) error {
	s.mu.Lock()
	seq, err := s.writeLocked(&groupRecord{op: opCommit, topic: topic, group: group,
		partition: partition, offset: offset})
	s.mu.Unlock()
	if err != nil {
		return err
	}
	return s.finish(seq)
}

func (s *groupStore) remove(topic, group string) error {
	s.mu.Lock()
	if s.groups[groupKey{topic, group}] == nil {
		s.mu.Unlock()
		return &GroupNotFoundError{Topic: topic, Group: group}
	}
	seq, err := s.writeLocked(&groupRecord{op: opDelete, topic: topic, group: group})
	s.mu.Unlock()
	if err != nil {
		return err
	}
	return s.finish(seq)
}

func (s *groupStore) describe(topic, group string) (Group, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	k := groupKey{topic, group}
	g := s.groups[k]
	if g == nil {
		return Group{}, &GroupNotFoundError{Topic: topic, Group: group}
	}
	return g.describe(k), nil
}

func (s *groupStore) list() []Group {
	s.mu.Lock()
	out := make([]Group, 0, len(s.groups))
	for k, g := range s.groups {
		out = append(out, g.describe(k))
	}
	s.mu.Unlock()
	sort.Slice(out, func(i, j int) bool {
		return groupKey{out[i].Topic, out[i].Name}.less(groupKey{out[j].Topic, out[j].Name})
	})
	return out
}

// describe copies g; caller holds the store lock.
func (g *group) describe(k groupKey) Group {
	d := Group{Topic: k.topic, Name: k.group, Members: len(g.members)}
	d.MemberIDs = make([]string, 0, len(g.members))
	for m := range g.members {
		d.MemberIDs = append(d.MemberIDs, m)
	}
	sort.Strings(d.MemberIDs)
	d.Offsets = make([]PartitionOffset, 0, len(g.offsets))
	for _, p := range sortedPartitions(g.offsets) {
		d.Offsets = append(d.Offsets, PartitionOffset{Partition: p, Offset: g.offsets[p]})
	}
	return d
}
