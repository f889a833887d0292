package broker

import (
	"errors"
	"fmt"
	"testing"
	"time"
)

// TestFNVReferenceTable checks core.md §8's reference values.
func TestFNVReferenceTable(t *testing.T) {
	rows := []struct {
		key  []byte
		hash uint32
		mods [5]int32 // n = 2, 3, 4, 6, 8
	}{
		{[]byte("a"), 0xE40C292C, [5]int32{0, 1, 0, 4, 4}},
		{[]byte("b"), 0xE70C2DE5, [5]int32{1, 1, 1, 1, 5}},
		{[]byte("hello"), 0x4F9F2CAB, [5]int32{1, 0, 3, 3, 3}},
		{[]byte("user-123"), 0x8C93CC93, [5]int32{1, 2, 3, 5, 3}},
		{[]byte("user-456"), 0x58E2C8F4, [5]int32{0, 2, 0, 2, 4}},
		{[]byte("order-42"), 0x572446F4, [5]int32{0, 2, 0, 2, 4}},
		{[]byte{0x00, 0xFF}, 0xD277C7A0, [5]int32{0, 1, 0, 4, 0}},
	}
	ns := [5]int32{2, 3, 4, 6, 8}
	for _, r := range rows {
		if h := fnv1a32(r.key); h != r.hash {
			t.Errorf("fnv1a32(%q) = %#x, want %#x", r.key, h, r.hash)
		}
		for i, n := range ns {
			tp := &topic{n: n}
			p, err := tp.choose(-1, r.key)
			if err != nil || p != r.mods[i] {
				t.Errorf("choose(key %q, n=%d) = %d, %v; want %d", r.key, n, p, err, r.mods[i])
			}
		}
	}
}

func TestPartitionerThroughBroker(t *testing.T) {
	forEachMode(t, func(t *testing.T, o Options) {
		b := openBroker(t, o)
		if err := b.CreateTopic("orders", 3); err != nil {
			t.Fatal(err)
		}
		// The core.json sequence: m1 m2 m3, user-123, a, m4.
		steps := []struct {
			key       string
			part      int32
			offset    uint64
			partition int32
		}{
			{"", -1, 0, 0}, {"", -1, 0, 1}, {"", -1, 0, 2},
			{"user-123", -1, 1, 2}, {"a", -1, 1, 1},
			{"", -1, 1, 0}, {"", -1, 2, 1},
			// Explicit partitions: honoured, key ignored, counter untouched.
			{"user-123", 0, 2, 0}, {"", 1, 3, 1},
			{"", -7, 2, 2}, // any negative value means "choose"
			{"", -1, 3, 0},
		}
		for i, s := range steps {
			before := time.Now().UnixMilli()
			r := mustProduce(t, b, "orders", s.part, s.key, fmt.Sprint("m", i))
			if r.Partition != s.partition || r.Offset != s.offset {
				t.Fatalf("step %d: got p%d@%d, want p%d@%d", i, r.Partition, r.Offset, s.partition, s.offset)
			}
			if r.Timestamp < before || r.Timestamp > time.Now().UnixMilli() {
				t.Fatalf("step %d: timestamp %d not the broker clock", i, r.Timestamp)
			}
		}
		_, err := b.Produce("orders", 3, nil, []byte("x"))
		var pe *PartitionError
		if !errors.As(err, &pe) || pe.Partition != 3 || err.Error() != "partition 3 not found" ||
			!errors.Is(err, ErrPartitionNotFound) {
			t.Fatalf("partition 3 of 3: %v", err)
		}
		// The failed produce did not consume a round-robin slot.
		if r := mustProduce(t, b, "orders", -1, "", "y"); r.Partition != 1 {
			t.Fatalf("after error: partition %d, want 1", r.Partition)
		}
	})
}

func TestProduceAutoCreate(t *testing.T) {
	forEachMode(t, func(t *testing.T, o Options) {
		b := openBroker(t, o)
		r := mustProduce(t, b, "auto-topic", -1, "k", "v")
		if r.Partition != 0 || r.Offset != 0 {
			t.Fatalf("got %+v", r)
		}
		if n, err := b.PartitionCount("auto-topic"); n != 1 || err != nil {
			t.Fatalf("PartitionCount = %d, %v", n, err)
		}
		// Explicit partition is checked against the fresh topic.
		if _, err := b.Produce("pinned", 2, nil, []byte("p")); !errors.Is(err, ErrPartitionNotFound) {
			t.Fatalf("explicit 2 on auto-created 1-partition topic: %v", err)
		}
		// Single-partition topics never touch the counter.
		for i := range 3 {
			if r := mustProduce(t, b, "auto-topic", -1, "", "x"); r.Partition != 0 || r.Offset != uint64(i+1) {
				t.Fatalf("got %+v", r)
			}
		}
		// Empty value is allowed and comes back empty.
		mustProduce(t, b, "events", -1, "", "")
		m, err := b.Consume("events", 0, 0)
		if err != nil || len(m.Value) != 0 || len(m.Key) != 0 {
			t.Fatalf("Consume = %+v, %v", m, err)
		}
	})
	o := testOptions(t, false)
	o.AutoCreatePartitions = 6
	b := openBroker(t, o)
	mustProduce(t, b, "six", -1, "", "x")
	if n, _ := b.PartitionCount("six"); n != 6 {
		t.Fatalf("AutoCreatePartitions 6: got %d", n)
	}
}

func TestCreateTopic(t *testing.T) {
	forEachMode(t, func(t *testing.T, o Options) {
		o.MaxPartitions = 16
		b := openBroker(t, o)
		if err := b.CreateTopic("zero", 0); err != nil {
			t.Fatal(err)
		}
		if n, _ := b.PartitionCount("zero"); n != 1 {
			t.Fatalf("0 partitions -> %d, want 1", n)
		}
		err := b.CreateTopic("neg", -3)
		if !errors.Is(err, ErrInvalidPartitionCount) || err.Error() != "invalid partition count: -3" {
			t.Fatalf("negative: %v", err)
		}
		if err := b.CreateTopic("big", 17); !errors.Is(err, ErrInvalidPartitionCount) ||
			err.Error() != "invalid partition count: 17 (maximum 16)" {
			t.Fatalf("above max: %v", err)
		}
		if err := b.CreateTopic("four", 4); err != nil {
			t.Fatal(err)
		}
		// Existing: success, count unchanged.
		if err := b.CreateTopic("four", 9); err != nil {
			t.Fatal(err)
		}
		if n, _ := b.PartitionCount("four"); n != 4 {
			t.Fatalf("count changed to %d", n)
		}
		if _, err := b.PartitionCount("nope"); !errors.Is(err, ErrTopicNotFound) || err.Error() != "topic not found: nope" {
			t.Fatalf("PartitionCount(nope): %v", err)
		}
		if got := fmt.Sprint(b.Topics()); got != "[four zero]" {
			t.Fatalf("Topics() = %s", got)
		}
		if b.CreateTopic("neg", -3) == nil || len(b.Topics()) != 2 {
			t.Fatal("failed create left a topic")
		}
	})
}
