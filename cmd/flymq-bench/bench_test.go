package main

import (
	"testing"

	"github.com/flymq/flymq/internal/protocol"
)

// BenchmarkFetchVerify is the bench client's own cost per fetched 1 KiB
// message (decode + verify): it must stay far below what a broker can
// serve, or the fetch figures would measure the client.
func BenchmarkFetchVerify(b *testing.B) {
	const size, n = 1024, 1000
	v, _ := NewValues(size)
	l := NewLedger(v, 1)
	var resp protocol.FetchResponse
	var payload []byte
	payload = protocol.AppendFetchResponseHeader(payload, n, n)
	for i := range n {
		l.Locs[0] = append(l.Locs[0], MakeLoc(0, uint64(i)))
		payload = protocol.AppendFetchedMessage(payload, uint64(i), nil, v.Append(nil, 0, uint64(i)))
	}
	b.SetBytes(n * size)
	b.ReportAllocs()
	for b.Loop() {
		l.PrepareVerify()
		if err := resp.Decode(payload); err != nil {
			b.Fatal(err)
		}
		if _, err := checkFetched(&resp, 0, 0, n, l); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkProduceEncode is the client's cost to generate and frame one
// 1 KiB PRODUCE request.
func BenchmarkProduceEncode(b *testing.B) {
	v, _ := NewValues(1024)
	val := make([]byte, 1024)
	p := &flymqPipe{topic: "bench-topic", size: 1024}
	var buf []byte
	b.SetBytes(1024)
	b.ReportAllocs()
	var seq uint64
	for b.Loop() {
		v.Fill(val, 0, seq)
		seq++
		req := protocol.ProduceRequest{Topic: p.topic, Value: val, Partition: 0}
		buf = protocol.AppendHeader(buf[:0], protocol.OpProduce, protocol.FlagBinary, 2+len(p.topic)+12+len(val))
		buf = req.AppendTo(buf)
	}
}
