package protocol

import (
	"bytes"
	"testing"
)

func benchProducePayload(valueSize int) []byte {
	m := ProduceRequest{Topic: "orders", Key: []byte("user-123"),
		Value: bytes.Repeat([]byte("v"), valueSize), Partition: -1}
	return m.AppendTo(nil)
}

// BenchmarkFrameReaderNext reads a pipelined stream of 1 KiB PRODUCE frames.
func BenchmarkFrameReaderNext(b *testing.B) {
	payload := benchProducePayload(1024)
	var stream []byte
	const frames = 256
	for i := 0; i < frames; i++ {
		stream = AppendFrame(stream, OpProduce, FlagBinary, payload)
	}
	src := bytes.NewReader(stream)
	fr := NewFrameReader(src)
	b.ReportAllocs()
	b.SetBytes(int64(HeaderSize + len(payload)))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if i%frames == 0 {
			src.Reset(stream)
		}
		if _, _, err := fr.Next(); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkAppendFrame(b *testing.B) {
	payload := benchProducePayload(1024)
	buf := make([]byte, 0, 2048)
	b.ReportAllocs()
	b.SetBytes(int64(HeaderSize + len(payload)))
	for i := 0; i < b.N; i++ {
		buf = AppendFrame(buf[:0], OpProduce, FlagBinary, payload)
	}
}

func BenchmarkProduceRequestDecode(b *testing.B) {
	payload := benchProducePayload(1024)
	var m ProduceRequest
	b.ReportAllocs()
	b.SetBytes(int64(len(payload)))
	for i := 0; i < b.N; i++ {
		if err := m.Decode(payload); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkProduceRequestEncode(b *testing.B) {
	m := ProduceRequest{Topic: "orders", Key: []byte("user-123"),
		Value: bytes.Repeat([]byte("v"), 1024), Partition: -1}
	buf := make([]byte, 0, 2048)
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		buf = m.AppendTo(buf[:0])
	}
}

func BenchmarkRecordMetadataEncode(b *testing.B) {
	m := RecordMetadata{Topic: "orders", Partition: 2, Offset: 12345, Timestamp: 1796302129082, KeySize: 8, ValueSize: 1024}
	buf := make([]byte, 0, 64)
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		buf = AppendHeader(buf[:0], OpProduce, FlagBinary, 36)
		buf = m.AppendTo(buf)
	}
}

func BenchmarkFetchRequestDecode(b *testing.B) {
	payload := (&FetchRequest{Topic: "orders", Partition: 1, Offset: 1000, MaxMessages: 500}).AppendTo(nil)
	var m FetchRequest
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if err := m.Decode(payload); err != nil {
			b.Fatal(err)
		}
	}
}

// fetchBatch is 100 messages of 1 KiB, a typical poll.
func fetchBatch() (key, value []byte, n int) {
	return []byte("user-123"), bytes.Repeat([]byte("v"), 1024), 100
}

// BenchmarkFetchResponseEncode streams a response the way the broker
// does, with the header and per-message helpers into a reused buffer.
func BenchmarkFetchResponseEncode(b *testing.B) {
	key, value, n := fetchBatch()
	buf := make([]byte, 0, HeaderSize+FetchResponseHeaderSize+n*FetchedMessageSize(len(key), len(value)))
	b.ReportAllocs()
	b.SetBytes(int64(cap(buf)))
	for i := 0; i < b.N; i++ {
		buf = AppendHeader(buf[:0], OpFetch, FlagBinary, cap(buf)-HeaderSize)
		buf = AppendFetchResponseHeader(buf, uint32(n), uint64(n))
		for j := 0; j < n; j++ {
			buf = AppendFetchedMessage(buf, uint64(j), key, value)
		}
	}
}

func BenchmarkFetchResponseDecode(b *testing.B) {
	key, value, n := fetchBatch()
	var payload []byte
	payload = AppendFetchResponseHeader(payload, uint32(n), uint64(n))
	for j := 0; j < n; j++ {
		payload = AppendFetchedMessage(payload, uint64(j), key, value)
	}
	var m FetchResponse
	b.ReportAllocs()
	b.SetBytes(int64(len(payload)))
	for i := 0; i < b.N; i++ {
		if err := m.Decode(payload); err != nil {
			b.Fatal(err)
		}
	}
}
