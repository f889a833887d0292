package e2e

import (
	"bytes"
	"fmt"
	"testing"

	"github.com/flymq/flymq/pkg/client"
)

type sent struct {
	key, value []byte
	partition  int32
	offset     uint64
}

// TestKillNineKeepsEveryAcknowledgedMessage is the broker core's promise:
// 10,000 keyed messages on a 3-partition topic survive kill -9 byte for
// byte, each key stays on one partition, and no file of the data dir
// holds a written key or value in the clear.
func TestKillNineKeepsEveryAcknowledgedMessage(t *testing.T) {
	b := newBroker(t, nil)
	b.start()
	c := b.client(client.Options{})

	const topic = "orders/eu"
	if err := c.CreateTopic(topic, 3); err != nil {
		t.Fatal(err)
	}
	const n = 10000
	secretKey := []byte("customer-7f3a9c-distinctive-key")
	secretValue := []byte("card=4111-1111-1111-1111;distinctive-value-q8z")
	var all []sent
	keyPartition := map[string]int32{}
	for i := range n {
		key := []byte(fmt.Sprintf("customer-%03d", i%500))
		value := []byte(fmt.Sprintf("order %d for %s", i, key))
		if i == n/2 {
			key, value = secretKey, secretValue
		}
		md, err := c.ProduceWithKey(topic, key, value)
		if err != nil {
			t.Fatalf("produce %d: %v", i, err)
		}
		if p, ok := keyPartition[string(key)]; ok && p != md.Partition {
			t.Fatalf("key %s went to partitions %d and %d", key, p, md.Partition)
		}
		keyPartition[string(key)] = md.Partition
		all = append(all, sent{key, value, md.Partition, md.Offset})
	}

	b.kill()
	b.start()
	c = b.client(client.Options{})

	got := map[int32][]client.FetchedMessage{}
	for p := int32(0); p < 3; p++ {
		var off uint64
		for {
			res, err := c.Fetch(topic, p, off, 1000, "")
			if err != nil {
				t.Fatalf("fetch p%d@%d: %v", p, off, err)
			}
			if len(res.Messages) == 0 {
				break
			}
			got[p] = append(got[p], res.Messages...)
			off = res.NextOffset
		}
	}
	total := 0
	for _, msgs := range got {
		total += len(msgs)
	}
	if total != n {
		t.Fatalf("fetched %d messages after restart, want %d", total, n)
	}
	for _, s := range all {
		msgs := got[s.partition]
		if s.offset >= uint64(len(msgs)) {
			t.Fatalf("offset %d of partition %d missing after restart", s.offset, s.partition)
		}
		m := msgs[s.offset]
		if m.Offset != s.offset || !bytes.Equal(m.Key, s.key) || !bytes.Equal(m.Value, s.value) {
			t.Fatalf("p%d@%d: got %q=%q, want %q=%q", s.partition, s.offset, m.Key, m.Value, s.key, s.value)
		}
	}

	// The next offset continues where the log ended, never reusing one.
	md, err := c.ProduceWithKey(topic, secretKey, []byte("after restart"))
	if err != nil {
		t.Fatal(err)
	}
	if want := uint64(len(got[md.Partition])); md.Offset != want {
		t.Fatalf("first offset after restart = %d, want %d", md.Offset, want)
	}

	b.kill()
	for _, needle := range [][]byte{secretKey, secretValue, []byte("distinctive")} {
		if hits := grepDir(t, b.dataDir(), needle); len(hits) > 0 {
			t.Errorf("%q found in the clear in %v", needle, hits)
		}
	}
}
