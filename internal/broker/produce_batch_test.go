package broker

import (
	"errors"
	"fmt"
	"testing"
)

// TestProduceBatchMatchesSequentialProduce: a batch lands exactly where
// the same produces one by one would, in the same per-partition order.
func TestProduceBatchMatchesSequentialProduce(t *testing.T) {
	forEachMode(t, func(t *testing.T, o Options) {
		seq := openBroker(t, testOptions(t, o.Keyring != nil))
		bat := openBroker(t, o)
		for _, br := range []*Broker{seq, bat} {
			if err := br.CreateTopic("orders", 3); err != nil {
				t.Fatal(err)
			}
		}
		var items []ProduceItem
		for i := range 40 {
			it := ProduceItem{Partition: -1, Value: []byte(fmt.Sprintf("v%d", i))}
			switch i % 4 {
			case 1:
				it.Key = []byte(fmt.Sprintf("user-%d", i%7))
			case 2:
				it.Partition = 2
			case 3:
				if i == 7 {
					it.Partition = 5 // out of range: its own error, others unaffected
				}
			}
			items = append(items, it)
		}
		if err := bat.ProduceBatch("orders", items); err != nil {
			t.Fatal(err)
		}
		for i, it := range items {
			want, werr := seq.Produce("orders", it.Partition, it.Key, it.Value)
			if werr != nil || it.Err != nil {
				var pe *PartitionError
				if !errors.As(werr, &pe) || !errors.As(it.Err, &pe) || pe.Partition != 5 {
					t.Fatalf("item %d: batch err %v, sequential err %v", i, it.Err, werr)
				}
				continue
			}
			if it.Result.Partition != want.Partition || it.Result.Offset != want.Offset {
				t.Fatalf("item %d: batch p%d@%d, sequential p%d@%d", i,
					it.Result.Partition, it.Result.Offset, want.Partition, want.Offset)
			}
			m, err := bat.Consume("orders", it.Result.Partition, it.Result.Offset)
			if err != nil || string(m.Value) != string(it.Value) || string(m.Key) != string(it.Key) {
				t.Fatalf("item %d read back %q=%q, %v", i, m.Key, m.Value, err)
			}
		}
	})
}

// TestProduceBatchInvalidTopic: a topic-level error writes nothing.
func TestProduceBatchInvalidTopic(t *testing.T) {
	br := openBroker(t, testOptions(t, true))
	items := []ProduceItem{{Partition: -1, Value: []byte("x")}}
	if err := br.ProduceBatch("a//b", items); !errors.Is(err, ErrInvalidName) {
		t.Fatalf("got %v, want ErrInvalidName", err)
	}
	if len(br.Topics()) != 0 {
		t.Fatalf("topics created: %v", br.Topics())
	}
}
