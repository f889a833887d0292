package broker

import (
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/flymq/flymq/internal/storage"
)

func benchBroker(b *testing.B, enc bool, acks storage.Acks) *Broker {
	o := testOptions(b, enc)
	o.Acks = acks
	return openBroker(b, o)
}

// BenchmarkProduceParallel: many producers over 8 topics × 4 partitions,
// keyed, as the server's connection goroutines would call it.
func BenchmarkProduceParallel(b *testing.B) {
	for _, m := range encModes {
		b.Run(m.name, func(b *testing.B) {
			br := benchBroker(b, m.enc, storage.AcksNone)
			for i := range 8 {
				if err := br.CreateTopic(fmt.Sprint("t", i), 4); err != nil {
					b.Fatal(err)
				}
			}
			val := make([]byte, 256)
			var n atomic.Int64
			b.SetBytes(int64(len(val)))
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				id := n.Add(1)
				topic := fmt.Sprint("t", id%8)
				key := []byte(fmt.Sprint("key-", id))
				for pb.Next() {
					if _, err := br.Produce(topic, -1, key, val); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}

func BenchmarkFetch(b *testing.B) {
	for _, filter := range []string{"", "needle", "^nee.le$", "$.a.b"} {
		b.Run(fmt.Sprintf("filter=%q", filter), func(b *testing.B) {
			br := benchBroker(b, true, storage.AcksNone)
			for i := range 1000 {
				v := fmt.Sprintf(`{"a":{"c":%d},"pad":"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"}`, i)
				mustProduce(b, br, "f", -1, "", v)
			}
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				if _, _, err := br.Fetch("f", 0, 0, 100, filter, 32<<20); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
