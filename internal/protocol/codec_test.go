package protocol

import (
	"bytes"
	"compress/gzip"
	"errors"
	"io"
	"reflect"
	"strings"
	"testing"
	"testing/iotest"
)

// roundTripCases holds one fully populated value of every message type.
func roundTripCases() []codec {
	return []codec{
		&ProduceRequest{Topic: "orders", Key: []byte("user-123"), Value: []byte("order-1"), Partition: -1},
		&ProduceRequest{Topic: "t", Value: []byte{0, 0xFF}, Partition: 2},
		&RecordMetadata{Topic: "orders", Partition: 2, Offset: 1<<63 + 5, Timestamp: 1796302129082, KeySize: -1, ValueSize: 7},
		&ConsumeRequest{Topic: "orders", Partition: 7, Offset: 42},
		&ConsumeResponse{Key: []byte("k"), Value: []byte("value")},
		&ConsumeResponse{Value: []byte("no key")},
		&CreateTopicRequest{Topic: "events", Partitions: 12},
		&TopicRequest{Topic: "events"},
		&BoolResponse{OK: true},
		&BoolResponse{},
		&SubscribeRequest{Topic: "orders", Group: "g1", Partition: 3, Mode: "earliest"},
		&OffsetResponse{Offset: 1<<64 - 1},
		&CommitRequest{Topic: "orders", Group: "g1", Partition: 2, Offset: 9},
		&FetchRequest{Topic: "orders", Partition: 1, Offset: 100, MaxMessages: 500, Filter: "$.user.id"},
		&FetchResponse{NextOffset: 3, Messages: []FetchedMessage{
			{Offset: 1, Value: []byte("a")}, {Offset: 2, Key: []byte("k"), Value: []byte("bb")}}},
		&TopicList{Topics: []string{"a", "b", "orders"}},
		&ClusterMetadataRequest{Topic: "orders"},
		&ClusterMetadata{ClusterID: "standalone", Topics: []TopicMetadata{{Name: "orders",
			Partitions: []PartitionMetadata{{ID: 0, LeaderID: "node-1", LeaderAddr: "h:9092",
				Epoch: 1, State: "online", Replicas: []string{"node-1"}, ISR: []string{"node-1"}}}}}},
		&GroupOffsetRequest{Topic: "orders", Group: "g1", Partition: 4},
		&ResetOffsetRequest{Topic: "orders", Group: "g1", Partition: 1, Mode: "offset", Offset: 77},
		&ResetOffsetRequest{Topic: "orders", Group: "g1", Partition: 1, Mode: "latest"},
		&GroupRequest{Topic: "orders", Group: "g1"},
		&GroupRequest{Group: "g1", JavaForm: true},
		&GroupList{Groups: []GroupInfo{
			{Topic: "a", Group: "g", Members: 2, Offsets: []PartitionOffset{{0, 5}, {3, 9}}},
			{Topic: "b", Group: "h", Offsets: []PartitionOffset{}}}},
		&GroupInfo{Topic: "orders", Group: "g1", Members: 1, Offsets: []PartitionOffset{{2, 1}}},
		&JavaGroupInfo{Group: "g1", State: "Stable", Members: []string{"1.2.3.4:5"},
			Topics: []string{"orders", "events"}, Coordinator: ""},
		&LagResponse{Current: 1, Committed: 1, Latest: 10, Lag: 9},
		&PeerRequest{Peer: "127.0.0.1:9093"},
	}
}

func TestRoundTrip(t *testing.T) {
	for _, want := range roundTripCases() {
		name := reflect.TypeOf(want).Elem().Name()
		t.Run(name, func(t *testing.T) {
			enc := want.AppendTo([]byte("prefix"))
			if !bytes.HasPrefix(enc, []byte("prefix")) {
				t.Fatalf("AppendTo clobbered dst")
			}
			enc = enc[len("prefix"):]
			got := newMessage(want)
			if err := got.Decode(enc); err != nil {
				t.Fatalf("Decode: %v", err)
			}
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("got %+v\nwant %+v", got, want)
			}
			// Trailing bytes are ignored (core.md §3), except where the
			// payload length selects the layout (Java-form GroupRequest).
			if g, ok := want.(*GroupRequest); !ok || !g.JavaForm {
				again := newMessage(want)
				if err := again.Decode(append(enc, 0xEE, 0xEE, 0xEE)); err != nil {
					t.Fatalf("Decode with trailing bytes: %v", err)
				}
			}
		})
	}
}

// TestTruncated checks that every strict prefix of an encoding fails,
// for the types whose layout has no optional tail.
func TestTruncated(t *testing.T) {
	for _, m := range roundTripCases() {
		switch v := m.(type) {
		case *FetchRequest, *ClusterMetadataRequest, *GroupRequest:
			continue // optional tail / empty form / layout chosen by length
		case *ResetOffsetRequest:
			if v.Mode != ResetModeOffset {
				continue
			}
		}
		enc := m.AppendTo(nil)
		for n := 0; n < len(enc); n++ {
			if err := newMessage(m).Decode(enc[:n]); err == nil {
				t.Errorf("%T: prefix of %d/%d bytes decoded", m, n, len(enc))
			} else if !errors.Is(err, ErrBufferTooSmall) && !errors.Is(err, ErrInvalidFormat) {
				t.Errorf("%T: unexpected error %v", m, err)
			}
		}
	}
}

// TestMinimumSizes pins the §3.1 table: one byte short is "buffer too
// small", the minimum itself (all zeros) decodes.
func TestMinimumSizes(t *testing.T) {
	cases := []struct {
		m   codec
		min int
	}{
		{&ProduceRequest{}, 14}, {&ConsumeRequest{}, 14}, {&CreateTopicRequest{}, 6},
		{&SubscribeRequest{}, 9}, {&CommitRequest{}, 16}, {&FetchRequest{}, 18},
		{&GroupOffsetRequest{}, 8}, {&ResetOffsetRequest{}, 9}, {&GroupRequest{}, 4},
		{&TopicRequest{}, 2}, {&PeerRequest{}, 2},
	}
	for _, c := range cases {
		if err := c.m.Decode(make([]byte, c.min-1)); !errors.Is(err, ErrBufferTooSmall) {
			t.Errorf("%T with %d bytes: %v, want ErrBufferTooSmall", c.m, c.min-1, err)
		}
		if err := c.m.Decode(make([]byte, c.min)); err != nil {
			t.Errorf("%T with %d zero bytes: %v", c.m, c.min, err)
		}
	}
	if ErrBufferTooSmall.Error() != "buffer too small" || ErrInvalidFormat.Error() != "invalid binary format" {
		t.Fatal("wire error texts changed")
	}
}

func TestClusterMetadataRequestSizes(t *testing.T) {
	m := ClusterMetadataRequest{Topic: "stale"}
	if err := m.Decode(nil); err != nil || m.Topic != "" {
		t.Fatalf("empty payload: %v, topic %q", err, m.Topic)
	}
	if err := m.Decode([]byte{0}); !errors.Is(err, ErrBufferTooSmall) {
		t.Fatalf("1 byte: %v", err)
	}
	if err := m.Decode([]byte{0, 5, 'a'}); !errors.Is(err, ErrInvalidFormat) {
		t.Fatalf("overrun: %v", err)
	}
}

func TestFetchFilterOptional(t *testing.T) {
	base := (&FetchRequest{Topic: "t", Partition: 1, Offset: 2, MaxMessages: 3}).AppendTo(nil)
	base = base[:len(base)-2] // drop the empty filter
	cases := []struct {
		name   string
		tail   []byte
		filter string
	}{
		{"absent", nil, ""},
		{"one stray byte", []byte{0}, ""},
		{"overrun", []byte{0, 9, 'a', 'b'}, ""},
		{"present", []byte{0, 2, 'a', 'b'}, "ab"},
		{"present with trailing", []byte{0, 1, 'a', 'b'}, "a"},
	}
	for _, c := range cases {
		m := FetchRequest{Filter: "stale"}
		if err := m.Decode(append(append([]byte{}, base...), c.tail...)); err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		want := FetchRequest{Topic: "t", Partition: 1, Offset: 2, MaxMessages: 3, Filter: c.filter}
		if m != want {
			t.Fatalf("%s: got %+v want %+v", c.name, m, want)
		}
	}
}

func TestResetOffsetModes(t *testing.T) {
	head := (&GroupOffsetRequest{Topic: "t", Group: "g", Partition: 1}).AppendTo(nil)
	mk := func(mode string, tail ...byte) []byte {
		p := appendStr8(append([]byte{}, head...), mode)
		return append(p, tail...)
	}
	eight := []byte{0, 0, 0, 0, 0, 0, 0, 9}
	var m ResetOffsetRequest
	if err := m.Decode(mk("offset", eight...)); err != nil || m.Offset != 9 {
		t.Fatalf("offset mode: %v %+v", err, m)
	}
	if err := m.Decode(mk("earliest", eight...)); err != nil || m.Offset != 0 || m.Mode != "earliest" {
		t.Fatalf("Java trailing offset: %v %+v", err, m)
	}
	if err := m.Decode(mk("offset", 1, 2, 3)); !errors.Is(err, ErrInvalidFormat) {
		t.Fatalf("short offset: %v", err)
	}
}

func TestGroupRequestJavaForm(t *testing.T) {
	var m GroupRequest
	if err := m.Decode([]byte{0, 2, 'g', '1'}); err != nil || !m.JavaForm || m.Group != "g1" || m.Topic != "" {
		t.Fatalf("java form: %v %+v", err, m)
	}
	if err := m.Decode([]byte{0, 1, 't', 0, 1, 'g'}); err != nil || m.JavaForm || m.Topic != "t" || m.Group != "g" {
		t.Fatalf("two-string form: %v %+v", err, m)
	}
	if err := m.Decode([]byte{0, 1, 't', 0, 5, 'g'}); !errors.Is(err, ErrInvalidFormat) {
		t.Fatalf("overrun: %v", err)
	}
}

func TestOpString(t *testing.T) {
	cases := map[Op]string{
		OpProduce: "produce", OpFetchBinary: "fetch_binary", OpClusterMetadata: "cluster_metadata",
		OpSeekToTimestamp: "seek_to_timestamp", OpAuth: "auth", OpAuthResponse: "auth_response",
		OpWhoAmI: "whoami", OpACLDelete: "acl_delete", OpAuditExportJava: "audit_export_java",
		OpError: "error", Op(0x0C): "op_0x0c", Op(0xFE): "op_0xfe",
	}
	for op, want := range cases {
		if got := op.String(); got != want {
			t.Errorf("Op(%#x).String() = %q, want %q", uint8(op), got, want)
		}
	}
	seen := map[string]Op{}
	for i := 0; i < 256; i++ {
		s := Op(i).String()
		if prev, dup := seen[s]; dup {
			t.Errorf("ops %#x and %#x share name %q", uint8(prev), i, s)
		}
		seen[s] = Op(i)
	}
	if n := testing.AllocsPerRun(100, func() { _ = Op(0x99).String() }); n != 0 {
		t.Errorf("String allocates %v", n)
	}
}

func TestParseHeader(t *testing.T) {
	b := AppendHeader(nil, OpFetch, 0x06, MaxPayload)
	h, err := ParseHeader(b)
	if err != nil || h != (Header{Op: OpFetch, Flags: 0x06, Length: MaxPayload}) {
		t.Fatalf("max length: %+v %v", h, err)
	}
	if _, err := ParseHeader(b[:7]); !errors.Is(err, ErrBufferTooSmall) {
		t.Fatalf("short header: %v", err)
	}
}

func TestDecodeErrorFallbacks(t *testing.T) {
	cases := map[string]string{
		"":                     "",
		"EOF":                  "EOF",
		"topic not found":      "topic not found",
		"\x00\x00\x00\x01\x00": "\x00\x00\x00\x01\x00",
	}
	for in, want := range cases {
		if got := DecodeError([]byte(in)); got != want {
			t.Errorf("DecodeError(%q) = %q, want %q", in, got, want)
		}
	}
	long := strings.Repeat("x", MaxStr16+10)
	f := AppendError(nil, long)
	if got := DecodeError(f[HeaderSize:]); got != long[:MaxStr16] {
		t.Fatalf("long message not truncated to str16: %d bytes", len(got))
	}
}

func TestFrameReaderOneByteAtATime(t *testing.T) {
	var stream []byte
	for i := 0; i < 50; i++ {
		stream = AppendFrame(stream, OpProduce, FlagBinary, bytes.Repeat([]byte{byte(i)}, i*7))
	}
	fr := NewFrameReader(iotest.OneByteReader(bytes.NewReader(stream)))
	for i := 0; i < 50; i++ {
		h, p, err := fr.Next()
		if err != nil || h.Op != OpProduce || !bytes.Equal(p, bytes.Repeat([]byte{byte(i)}, i*7)) {
			t.Fatalf("frame %d: %+v %v len %d", i, h, err, len(p))
		}
	}
	if _, _, err := fr.Next(); err != io.EOF {
		t.Fatalf("end: %v", err)
	}
}

// TestFrameReaderNoPreallocation announces the maximum payload and sends
// only a few bytes: the reader must not have allocated the announced size.
func TestFrameReaderNoPreallocation(t *testing.T) {
	frame := AppendHeader(nil, OpProduce, FlagBinary, MaxPayload)
	frame = append(frame, "just a few bytes"...)
	fr := NewFrameReader(bytes.NewReader(frame))
	if _, _, err := fr.Next(); err != io.ErrUnexpectedEOF {
		t.Fatalf("err = %v, want ErrUnexpectedEOF", err)
	}
	if c := cap(fr.buf); c > initialBufSize {
		t.Fatalf("buffer grew to %d bytes for %d received", c, len(frame))
	}
}

func TestFrameReaderLargeFrameGrowsAndShrinks(t *testing.T) {
	big := bytes.Repeat([]byte("0123456789"), 300_000) // 3 MB
	stream := AppendFrame(nil, OpProduce, FlagBinary, big)
	stream = AppendFrame(stream, OpListTopics, FlagBinary, nil)
	stream = AppendFrame(stream, OpFetch, FlagBinary, []byte("tail"))
	fr := NewFrameReader(iotest.HalfReader(bytes.NewReader(stream)))
	_, p, err := fr.Next()
	if err != nil || !bytes.Equal(p, big) {
		t.Fatalf("big frame: %v, %d bytes", err, len(p))
	}
	h, p, err := fr.Next()
	if err != nil || h.Op != OpListTopics || len(p) != 0 {
		t.Fatalf("second frame: %+v %v", h, err)
	}
	if cap(fr.buf) > retainBufSize {
		t.Fatalf("buffer of %d bytes retained after a large frame", cap(fr.buf))
	}
	h, p, err = fr.Next()
	if err != nil || h.Op != OpFetch || string(p) != "tail" {
		t.Fatalf("third frame: %+v %q %v", h, p, err)
	}
}

func TestFrameReaderBuffered(t *testing.T) {
	var stream []byte
	for i := 0; i < 3; i++ {
		stream = AppendFrame(stream, OpCommit, FlagBinary, []byte{byte(i)})
	}
	fr := NewFrameReader(bytes.NewReader(stream))
	for i, want := range []int{18, 9, 0} {
		if _, _, err := fr.Next(); err != nil {
			t.Fatal(err)
		}
		if got := fr.Buffered(); got != want {
			t.Fatalf("after frame %d Buffered = %d, want %d", i, got, want)
		}
	}
}

func TestFrameReaderTruncatedHeader(t *testing.T) {
	fr := NewFrameReader(bytes.NewReader([]byte{Magic, Version, 1}))
	if _, _, err := fr.Next(); err != io.ErrUnexpectedEOF {
		t.Fatalf("err = %v", err)
	}
	errBoom := errors.New("boom")
	fr = NewFrameReader(iotest.ErrReader(errBoom))
	if _, _, err := fr.Next(); !errors.Is(err, errBoom) {
		t.Fatalf("err = %v", err)
	}
}

func gzipBytes(t testing.TB, p []byte) []byte {
	t.Helper()
	var b bytes.Buffer
	zw := gzip.NewWriter(&b)
	if _, err := zw.Write(p); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func TestGunzip(t *testing.T) {
	plain := bytes.Repeat([]byte("flymq "), 10_000)
	z := gzipBytes(t, plain)
	got, err := Gunzip(z, len(plain))
	if err != nil || !bytes.Equal(got, plain) {
		t.Fatalf("exact limit: %v", err)
	}
	if _, err := Gunzip(z, len(plain)-1); !errors.Is(err, ErrGzipTooLarge) {
		t.Fatalf("over limit: %v", err)
	}
	if _, err := Gunzip([]byte("not gzip at all"), 100); err == nil || err.Error() != "gzip: invalid header" {
		t.Fatalf("bad header: %v", err)
	}
	if _, err := Gunzip(z[:len(z)/2], MaxPayload); err == nil {
		t.Fatal("truncated stream decoded")
	}
	empty, err := Gunzip(gzipBytes(t, nil), 0)
	if err != nil || len(empty) != 0 {
		t.Fatalf("empty: %v %d", err, len(empty))
	}
	// A gzip bomb stops at the cap instead of inflating fully.
	bomb := gzipBytes(t, make([]byte, 8<<20))
	if _, err := Gunzip(bomb, 1<<20); !errors.Is(err, ErrGzipTooLarge) {
		t.Fatalf("bomb: %v", err)
	}
}

// TestHotPathAllocs pins the zero-allocation decode paths for a decoder
// reused across requests (as the server does per connection).
func TestHotPathAllocs(t *testing.T) {
	produce := (&ProduceRequest{Topic: "orders", Key: []byte("k"), Value: []byte("v"), Partition: -1}).AppendTo(nil)
	fetch := (&FetchRequest{Topic: "orders", MaxMessages: 10, Filter: "x"}).AppendTo(nil)
	var fresp []byte
	fresp = AppendFetchResponseHeader(fresp, 2, 2)
	fresp = AppendFetchedMessage(fresp, 0, nil, []byte("a"))
	fresp = AppendFetchedMessage(fresp, 1, []byte("k"), []byte("b"))
	var pr ProduceRequest
	var fr FetchRequest
	var fres FetchResponse
	var cr ConsumeRequest
	consume := (&ConsumeRequest{Topic: "orders", Offset: 1}).AppendTo(nil)
	checks := map[string]func(){
		"produce":        func() { _ = pr.Decode(produce) },
		"fetch":          func() { _ = fr.Decode(fetch) },
		"fetch response": func() { _ = fres.Decode(fresp) },
		"consume":        func() { _ = cr.Decode(consume) },
	}
	for name, fn := range checks {
		fn() // warm up: first decode stores the strings
		if n := testing.AllocsPerRun(100, fn); n != 0 {
			t.Errorf("%s decode: %v allocs", name, n)
		}
	}
	buf := make([]byte, 0, 256)
	hdr := make([]byte, HeaderSize)
	if n := testing.AllocsPerRun(100, func() {
		buf = AppendFrame(buf[:0], OpProduce, FlagBinary, produce)
		_, _ = ParseHeader(hdr)
	}); n != 0 {
		t.Errorf("frame encode: %v allocs", n)
	}
}
