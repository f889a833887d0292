package protocol

import (
	"bytes"
	"io"
	"testing"
)

// TestPeekRunKeepsPayloads: frames gathered while Peek reports them
// complete keep their payloads intact until the run is handled.
func TestPeekRunKeepsPayloads(t *testing.T) {
	var stream []byte
	for i := range 50 {
		stream = AppendFrame(stream, OpProduce, FlagBinary, bytes.Repeat([]byte{byte(i)}, 700))
	}
	// A trailing partial frame: Peek must say incomplete.
	partial := AppendFrame(nil, OpFetch, FlagBinary, make([]byte, 100))
	stream = append(stream, partial[:50]...)
	pr, pw := io.Pipe()
	go func() { pw.Write(stream); pw.Close() }()
	fr := NewFrameReader(pr)
	var got [][]byte
	h, p, err := fr.Next()
	if err != nil || h.Op != OpProduce {
		t.Fatal(h, err)
	}
	got = append(got, p)
	for {
		nh, complete := fr.Peek()
		if !complete {
			break
		}
		if nh.Op != OpProduce {
			t.Fatalf("peeked %v", nh.Op)
		}
		_, p, err := fr.Next()
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, p)
	}
	if len(got) < 2 {
		t.Fatalf("gathered %d frames; the reader should have read ahead", len(got))
	}
	for i, p := range got {
		if !bytes.Equal(p, bytes.Repeat([]byte{byte(i)}, 700)) {
			t.Fatalf("payload %d changed while gathering the run", i)
		}
	}
	if h, complete := fr.Peek(); complete && h.Op == OpFetch {
		t.Fatal("a partial frame reported complete")
	}
}
