package server

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/flymq/flymq/internal/protocol"
)

// TestPipelinedProduceRun sends a burst of PRODUCE frames in one write —
// two topics interleaved, a malformed frame and an out-of-range partition
// among them — and checks every reply, in order, is what serving them one
// by one gives.
func TestPipelinedProduceRun(t *testing.T) {
	h := startServer(t, harnessOptions{encrypted: true})
	c := h.dial(t)
	defer c.Close()
	if op, p := call(t, c, protocol.OpCreateTopic, enc(&protocol.CreateTopicRequest{Topic: "b", Partitions: 2})); op != protocol.OpCreateTopic {
		t.Fatal(protocol.DecodeError(p))
	}
	type want struct {
		err       string
		topic     string
		partition int32
		offset    uint64
	}
	var burst []byte
	var wants []want
	next := map[string]uint64{}
	for i := range 300 {
		switch {
		case i == 17:
			burst = protocol.AppendFrame(burst, protocol.OpProduce, protocol.FlagBinary, []byte{0, 1})
			wants = append(wants, want{err: "buffer too small"})
		case i == 40:
			req := protocol.ProduceRequest{Topic: "b", Value: []byte("x"), Partition: 9}
			burst = protocol.AppendFrame(burst, protocol.OpProduce, protocol.FlagBinary, enc(&req))
			wants = append(wants, want{err: "partition 9 not found"})
		default:
			topic, part := "a", int32(-1)
			if i%50 >= 45 {
				topic, part = "b", int32(i%2)
			}
			req := protocol.ProduceRequest{Topic: topic, Value: []byte(fmt.Sprint(i)), Partition: part}
			burst = protocol.AppendFrame(burst, protocol.OpProduce, protocol.FlagBinary, enc(&req))
			if part < 0 {
				part = 0
			}
			k := fmt.Sprint(topic, part)
			wants = append(wants, want{topic: topic, partition: part, offset: next[k]})
			next[k]++
		}
	}
	if _, err := c.Write(burst); err != nil {
		t.Fatal(err)
	}
	for i, w := range wants {
		got := readFrame(t, c)
		op, p := protocol.Op(got[2]), got[protocol.HeaderSize:]
		if w.err != "" {
			if op != protocol.OpError || protocol.DecodeError(p) != w.err {
				t.Fatalf("reply %d: op %v %q, want error %q", i, op, protocol.DecodeError(p), w.err)
			}
			continue
		}
		var md protocol.RecordMetadata
		if op != protocol.OpProduce || md.Decode(p) != nil {
			t.Fatalf("reply %d: op %v %q", i, op, protocol.DecodeError(p))
		}
		if md.Topic != w.topic || md.Partition != w.partition || md.Offset != w.offset {
			t.Fatalf("reply %d: got %s p%d@%d, want %s p%d@%d", i, md.Topic, md.Partition, md.Offset, w.topic, w.partition, w.offset)
		}
	}
	// Everything acknowledged reads back.
	m, err := h.broker.Consume("a", 0, next["a0"]-1)
	if err != nil || string(m.Value) != "294" {
		t.Fatalf("last record of a: %q %v", m.Value, err)
	}
}

// TestShutdownDoesNotWaitForATricklingFrame: a peer that started a frame
// and stalls is given a short grace at shutdown, not the full read
// timeout, so the drain finishes within the shutdown bound.
func TestShutdownDoesNotWaitForATricklingFrame(t *testing.T) {
	h := startServer(t, harnessOptions{tweak: func(o *Options) { o.ReadTimeout = time.Minute }})
	c := h.dial(t)
	defer c.Close()
	frame := protocol.AppendFrame(nil, protocol.OpProduce, protocol.FlagBinary, make([]byte, 1<<20))
	if _, err := c.Write(frame[:100]); err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond) // let the server start reading the frame
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := h.srv.Shutdown(ctx); err != nil {
		t.Fatalf("shutdown waited for the stalled frame: %v", err)
	}
}
