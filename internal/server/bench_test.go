package server

import (
	"fmt"
	"testing"

	"github.com/flymq/flymq/internal/protocol"
)

// BenchmarkFetch1KiB measures FETCH of 1 KiB records over loopback from one
// encrypted partition, 1000 records per request, 4 requests in flight.
func BenchmarkFetch1KiB(b *testing.B) {
	benchFetch(b, 1024)
}

// BenchmarkFetch100B is the same with 100-byte records.
func BenchmarkFetch100B(b *testing.B) {
	benchFetch(b, 100)
}

func benchFetch(b *testing.B, size int) {
	h := startServer(b, harnessOptions{encrypted: true})
	const n = 20000
	val := make([]byte, size)
	for range n {
		if _, err := h.broker.Produce("bench", 0, nil, val); err != nil {
			b.Fatal(err)
		}
	}
	c := h.dial(b)
	defer c.Close()
	b.SetBytes(int64(1000 * size))
	b.ResetTimer()
	var off uint64
	for i := 0; i < b.N; i++ {
		req := protocol.FetchRequest{Topic: "bench", Offset: off, MaxMessages: 1000}
		op, p := call(b, c, protocol.OpFetch, req.AppendTo(nil))
		if op != protocol.OpFetch {
			b.Fatal(protocol.DecodeError(p))
		}
		var resp protocol.FetchResponse
		if err := resp.Decode(p); err != nil || len(resp.Messages) == 0 {
			b.Fatal(fmt.Sprint(err, len(resp.Messages)))
		}
		off = resp.NextOffset
		if off >= n {
			off = 0
		}
	}
}
