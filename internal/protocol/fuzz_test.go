package protocol

import (
	"bytes"
	"errors"
	"io"
	"reflect"
	"testing"
)

// seedVectors adds the payload of every vector frame with one of ops and
// the given direction to the corpus.
func seedVectors(f *testing.F, direction string, ops ...Op) {
	for _, v := range loadVectors(f) {
		if v.Direction != direction {
			continue
		}
		frame := mustHex(f, v.Hex)
		h, err := ParseHeader(frame)
		if err != nil || h.Flags&FlagGzip != 0 {
			continue
		}
		for _, op := range ops {
			if h.Op == op {
				f.Add(frame[HeaderSize:])
			}
		}
	}
}

// fuzzDecoder checks that decoding arbitrary bytes never panics, returns
// only the two wire errors, and that a successful decode re-encodes to
// bytes that decode to the same value.
func fuzzDecoder(f *testing.F, newMsg func() codec) {
	f.Add([]byte{})
	f.Add([]byte{0})
	f.Fuzz(func(t *testing.T, p []byte) {
		m := newMsg()
		err := m.Decode(p)
		if err != nil {
			if !errors.Is(err, ErrBufferTooSmall) && !errors.Is(err, ErrInvalidFormat) {
				t.Fatalf("unexpected error %v", err)
			}
			return
		}
		enc := m.AppendTo(nil)
		again := newMsg()
		if err := again.Decode(enc); err != nil {
			t.Fatalf("re-decode of %x: %v", enc, err)
		}
		if !reflect.DeepEqual(m, again) {
			t.Fatalf("round trip changed value:\n%+v\n%+v", m, again)
		}
	})
}

func FuzzFrameReader(f *testing.F) {
	var stream []byte
	for _, v := range loadVectors(f) {
		b := mustHex(f, v.Hex)
		f.Add(b)
		stream = append(stream, b...)
	}
	f.Add(stream)
	f.Fuzz(func(t *testing.T, data []byte) {
		fr := NewFrameReader(bytes.NewReader(data))
		consumed := 0
		for {
			h, p, err := fr.Next()
			if err != nil {
				switch {
				case err == io.EOF:
					if consumed != len(data) {
						t.Fatalf("EOF after %d of %d bytes", consumed, len(data))
					}
				case err == io.ErrUnexpectedEOF, errors.Is(err, ErrBadMagic),
					errors.Is(err, ErrBadVersion), errors.Is(err, ErrFrameTooLarge):
				default:
					t.Fatalf("unexpected error %v", err)
				}
				return
			}
			want := data[consumed : consumed+HeaderSize+int(h.Length)]
			if got := AppendFrame(nil, h.Op, h.Flags, p); !bytes.Equal(got, want) {
				t.Fatalf("frame %x, stream has %x", got, want)
			}
			consumed += len(want)
			if fr.Buffered() > len(data)-consumed {
				t.Fatalf("Buffered %d > remaining %d", fr.Buffered(), len(data)-consumed)
			}
		}
	})
}

func FuzzProduceRequest(f *testing.F) {
	seedVectors(f, "request", OpProduce)
	fuzzDecoder(f, func() codec { return &ProduceRequest{} })
}

func FuzzConsumeRequest(f *testing.F) {
	seedVectors(f, "request", OpConsume, OpConsumeZeroCopy)
	fuzzDecoder(f, func() codec { return &ConsumeRequest{} })
}

func FuzzCreateTopicRequest(f *testing.F) {
	seedVectors(f, "request", OpCreateTopic)
	fuzzDecoder(f, func() codec { return &CreateTopicRequest{} })
}

func FuzzTopicRequest(f *testing.F) {
	seedVectors(f, "request", OpDeleteTopic, OpMetadata)
	fuzzDecoder(f, func() codec { return &TopicRequest{} })
}

func FuzzSubscribeRequest(f *testing.F) {
	seedVectors(f, "request", OpSubscribe)
	fuzzDecoder(f, func() codec { return &SubscribeRequest{} })
}

func FuzzCommitRequest(f *testing.F) {
	seedVectors(f, "request", OpCommit)
	fuzzDecoder(f, func() codec { return &CommitRequest{} })
}

func FuzzFetchRequest(f *testing.F) {
	seedVectors(f, "request", OpFetch, OpFetchBinary)
	fuzzDecoder(f, func() codec { return &FetchRequest{} })
}

func FuzzClusterMetadataRequest(f *testing.F) {
	seedVectors(f, "request", OpClusterMetadata)
	fuzzDecoder(f, func() codec { return &ClusterMetadataRequest{} })
}

func FuzzGroupOffsetRequest(f *testing.F) {
	seedVectors(f, "request", OpGetOffset, OpGetLag)
	fuzzDecoder(f, func() codec { return &GroupOffsetRequest{} })
}

func FuzzResetOffsetRequest(f *testing.F) {
	seedVectors(f, "request", OpResetOffset)
	fuzzDecoder(f, func() codec { return &ResetOffsetRequest{} })
}

func FuzzGroupRequest(f *testing.F) {
	seedVectors(f, "request", OpDescribeGroup, OpDeleteGroup)
	fuzzDecoder(f, func() codec { return &GroupRequest{} })
}

func FuzzPeerRequest(f *testing.F) {
	seedVectors(f, "request", OpClusterJoin)
	fuzzDecoder(f, func() codec { return &PeerRequest{} })
}

// Response decoders run in pkg/client on bytes from the network, so they
// are fuzzed too.

func FuzzRecordMetadata(f *testing.F) {
	seedVectors(f, "response", OpProduce)
	fuzzDecoder(f, func() codec { return &RecordMetadata{} })
}

func FuzzConsumeResponse(f *testing.F) {
	seedVectors(f, "response", OpConsume, OpConsumeZeroCopy)
	fuzzDecoder(f, func() codec { return &ConsumeResponse{} })
}

func FuzzFetchResponse(f *testing.F) {
	seedVectors(f, "response", OpFetch, OpFetchBinary)
	fuzzDecoder(f, func() codec { return &FetchResponse{} })
}

func FuzzTopicList(f *testing.F) {
	seedVectors(f, "response", OpListTopics)
	fuzzDecoder(f, func() codec { return &TopicList{} })
}

func FuzzClusterMetadata(f *testing.F) {
	seedVectors(f, "response", OpClusterMetadata)
	fuzzDecoder(f, func() codec { return &ClusterMetadata{} })
}

func FuzzGroupList(f *testing.F) {
	seedVectors(f, "response", OpListGroups)
	fuzzDecoder(f, func() codec { return &GroupList{} })
}

func FuzzGroupInfo(f *testing.F) {
	seedVectors(f, "response", OpDescribeGroup)
	fuzzDecoder(f, func() codec { return &GroupInfo{} })
}

func FuzzJavaGroupInfo(f *testing.F) {
	f.Add((&JavaGroupInfo{Group: "g1", State: "Stable", Members: []string{"m"}, Topics: []string{"t"}}).AppendTo(nil))
	fuzzDecoder(f, func() codec { return &JavaGroupInfo{} })
}

func FuzzLagResponse(f *testing.F) {
	seedVectors(f, "response", OpGetLag)
	fuzzDecoder(f, func() codec { return &LagResponse{} })
}

func FuzzSmallResponses(f *testing.F) {
	seedVectors(f, "response", OpSubscribe, OpGetOffset, OpCreateTopic, OpCommit)
	fuzzDecoder(f, func() codec { return &OffsetResponse{} })
	// BoolResponse is covered by TestRoundTrip: any non-empty input decodes
	// and only 0x01 is true, so fuzzing adds nothing.
}

func FuzzDecodeError(f *testing.F) {
	seedVectors(f, "response", OpError)
	f.Fuzz(func(t *testing.T, p []byte) {
		msg := DecodeError(p)
		if len(msg) > len(p) {
			t.Fatalf("message longer than payload")
		}
		if len(msg) <= MaxStr16 {
			if got := DecodeError(AppendError(nil, msg)[HeaderSize:]); got != msg {
				t.Fatalf("AppendError round trip: %q != %q", got, msg)
			}
		}
	})
}
