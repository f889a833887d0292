package main

import (
	"bufio"
	"context"
	"errors"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/flymq/flymq/internal/protocol"
)

// fakeBroker is a tiny in-memory FlyMQ broker speaking the real wire
// protocol on 127.0.0.1: CREATE_TOPIC, PRODUCE (explicit partitions),
// FETCH, LIST_TOPICS and AUTH, replies in order, pipelining allowed.
type fakeBroker struct {
	ln       net.Listener
	password string // non-empty: AUTH required for data ops
	fetchCap int    // most messages per FETCH reply (short replies)
	corrupt  int64  // >= 0: flip a byte of the message at this offset on FETCH
	failAt   int64  // >= 0: the PRODUCE that would get this offset fails

	mu      sync.Mutex
	topics  map[string][][][]byte
	maxPipe int // most requests seen buffered behind one another
	wg      sync.WaitGroup
}

func newFakeBroker(t *testing.T) *fakeBroker {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	b := &fakeBroker{ln: ln, fetchCap: 1000, corrupt: -1, failAt: -1, topics: map[string][][][]byte{}}
	b.wg.Add(1)
	go func() {
		defer b.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			b.wg.Add(1)
			go func() {
				defer b.wg.Done()
				b.serve(c)
			}()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		b.wg.Wait()
	})
	return b
}

func (b *fakeBroker) addr() string { return b.ln.Addr().String() }

func (b *fakeBroker) serve(c net.Conn) {
	defer c.Close()
	fr := protocol.NewFrameReader(c)
	w := bufio.NewWriter(c)
	authed := b.password == ""
	var out []byte
	for {
		h, p, err := fr.Next()
		if err != nil {
			return
		}
		if n := fr.Buffered() / (protocol.HeaderSize + 1); n > 0 {
			b.mu.Lock()
			b.maxPipe = max(b.maxPipe, n)
			b.mu.Unlock()
		}
		out = out[:0]
		switch {
		case h.Op == protocol.OpAuth:
			var req protocol.AuthRequest
			ok := req.Decode(p) == nil && req.Password == b.password && req.Username == "admin"
			authed = authed || ok
			resp := protocol.AuthResponse{Success: ok, Username: req.Username}
			if !ok {
				resp = protocol.AuthResponse{Error: "invalid username or password"}
			}
			out = protocol.AppendFrame(out, protocol.OpAuthResponse, 1, resp.AppendTo(nil))
		case !authed:
			out = protocol.AppendError(out, "authentication required")
		default:
			out = b.handle(out, h.Op, p)
		}
		if _, err := w.Write(out); err != nil {
			return
		}
		if fr.Buffered() == 0 { // one write for a whole pipelined burst
			if err := w.Flush(); err != nil {
				return
			}
		}
	}
}

func (b *fakeBroker) handle(out []byte, op protocol.Op, p []byte) []byte {
	b.mu.Lock()
	defer b.mu.Unlock()
	switch op {
	case protocol.OpCreateTopic:
		var req protocol.CreateTopicRequest
		if err := req.Decode(p); err != nil {
			return protocol.AppendError(out, err.Error())
		}
		if _, ok := b.topics[req.Topic]; !ok {
			b.topics[req.Topic] = make([][][]byte, max(req.Partitions, 1))
		}
		ok := protocol.BoolResponse{OK: true}
		return protocol.AppendFrame(out, op, 1, ok.AppendTo(nil))
	case protocol.OpProduce:
		var req protocol.ProduceRequest
		if err := req.Decode(p); err != nil {
			return protocol.AppendError(out, err.Error())
		}
		parts := b.topics[req.Topic]
		if req.Partition < 0 || int(req.Partition) >= len(parts) {
			return protocol.AppendError(out, "partition not found")
		}
		off := uint64(len(parts[req.Partition]))
		if b.failAt >= 0 && off == uint64(b.failAt) {
			return protocol.AppendError(out, "disk on fire")
		}
		parts[req.Partition] = append(parts[req.Partition], append([]byte(nil), req.Value...))
		meta := protocol.RecordMetadata{Topic: req.Topic, Partition: req.Partition, Offset: off,
			Timestamp: time.Now().UnixMilli(), KeySize: -1, ValueSize: int32(len(req.Value))}
		return protocol.AppendFrame(out, op, 1, meta.AppendTo(nil))
	case protocol.OpFetch:
		var req protocol.FetchRequest
		if err := req.Decode(p); err != nil {
			return protocol.AppendError(out, err.Error())
		}
		parts, ok := b.topics[req.Topic]
		if !ok || req.Partition < 0 || int(req.Partition) >= len(parts) {
			return protocol.AppendError(out, "partition not found")
		}
		log := parts[req.Partition]
		var resp protocol.FetchResponse
		next := req.Offset
		for next < uint64(len(log)) && len(resp.Messages) < min(int(req.MaxMessages), b.fetchCap) {
			v := log[next]
			if int64(next) == b.corrupt {
				v = append([]byte(nil), v...)
				v[len(v)-1] ^= 0xff
			}
			resp.Messages = append(resp.Messages, protocol.FetchedMessage{Offset: next, Value: v})
			next++
		}
		resp.NextOffset = next
		return protocol.AppendFrame(out, op, 1, resp.AppendTo(nil))
	case protocol.OpListTopics:
		var tl protocol.TopicList
		for name := range b.topics {
			tl.Topics = append(tl.Topics, name)
		}
		return protocol.AppendFrame(out, op, 1, tl.AppendTo(nil))
	}
	return protocol.AppendError(out, "unknown opcode")
}

func fakeRun(addr string) RunOptions {
	return RunOptions{
		Target: "flymq", Addr: addr, Acks: "leader", Verify: true,
		Workload: Workload{Conns: 3, Inflight: 8, Size: 100, Count: 3000, Partitions: 3},
		Topic:    "t", FetchInflight: 3, Timeout: time.Minute,
	}
}

func TestRunAgainstFakeBrokerVerifiesEverything(t *testing.T) {
	b := newFakeBroker(t)
	b.fetchCap = 7 // short replies: the fetch must adapt and fill gaps
	o := fakeRun(b.addr())
	o.TmpDir = t.TempDir()
	res, err := Run(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	if !res.Verified || res.Msgs != 3000 || res.FetchMsgs != 3000 {
		t.Fatalf("verified %v msgs %d fetched %d, want true 3000 3000", res.Verified, res.Msgs, res.FetchMsgs)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	for p, log := range b.topics["t"] {
		if len(log) != 1000 {
			t.Errorf("partition %d holds %d messages, want 1000", p, len(log))
		}
	}
	if b.maxPipe < 2 {
		t.Errorf("the broker never saw pipelined requests (max %d buffered)", b.maxPipe)
	}
	if res.P50us <= 0 || res.P999us < res.P50us || res.MsgsPerSec <= 0 {
		t.Errorf("latency/throughput not recorded: %+v", res)
	}
}

func TestRunAgainstFakeBrokerWithAuthAndDuration(t *testing.T) {
	b := newFakeBroker(t)
	b.password = "s3cret-pass"
	o := fakeRun(b.addr())
	o.TmpDir = t.TempDir()
	o.Auth, o.User, o.Password = true, "admin", "s3cret-pass"
	o.Workload.Count, o.Workload.Duration = 0, 200*time.Millisecond
	o.Workload.Partitions = 1
	res, err := Run(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	b.mu.Lock()
	stored := int64(len(b.topics["t"][0]))
	b.mu.Unlock()
	if !res.Verified || res.Msgs == 0 || res.Msgs != stored || res.FetchMsgs != stored {
		t.Fatalf("verified %v msgs %d fetched %d, broker stored %d", res.Verified, res.Msgs, res.FetchMsgs, stored)
	}

	o.Password = "wrong"
	if _, err := Run(context.Background(), o); !errors.Is(err, ErrReply) {
		t.Fatalf("wrong password: %v, want ErrReply", err)
	}
}

func TestRunAgainstFakeBrokerDetectsCorruption(t *testing.T) {
	b := newFakeBroker(t)
	b.corrupt = 123
	o := fakeRun(b.addr())
	o.TmpDir = t.TempDir()
	res, err := Run(context.Background(), o)
	if !errors.Is(err, ErrVerify) || !errors.Is(err, ErrValueBody) {
		t.Fatalf("err = %v, want ErrVerify wrapping ErrValueBody", err)
	}
	if res == nil || res.Verified || !strings.Contains(res.Error, "offset 123") {
		t.Fatalf("result %+v must be unverified and name offset 123", res)
	}
}

func TestRunAgainstFakeBrokerFailsOnErrorReply(t *testing.T) {
	b := newFakeBroker(t)
	b.failAt = 500
	o := fakeRun(b.addr())
	o.TmpDir = t.TempDir()
	_, err := Run(context.Background(), o)
	if !errors.Is(err, ErrReply) || !strings.Contains(err.Error(), "disk on fire") {
		t.Fatalf("err = %v, want the broker's error", err)
	}
}

func TestRunAgainstFakeBrokerIdleConnsNeedSpawn(t *testing.T) {
	b := newFakeBroker(t)
	o := fakeRun(b.addr())
	o.TmpDir = t.TempDir()
	o.Workload.Count = 30
	o.IdleConns = 5
	if _, err := Run(context.Background(), o); !errors.Is(err, ErrUsage) {
		t.Fatalf("err = %v, want ErrUsage", err)
	}
}

func TestValidateOptions(t *testing.T) {
	base := fakeRun("127.0.0.1:1")
	bad := []func(*RunOptions){
		func(o *RunOptions) { o.Target = "kafka" },
		func(o *RunOptions) { o.Addr = "" },
		func(o *RunOptions) { o.Spawn = true },
		func(o *RunOptions) { o.Addr, o.Spawn = "", true },
		func(o *RunOptions) { o.Acks = "some" },
		func(o *RunOptions) { o.Workload.Size = 8 },
		func(o *RunOptions) { o.Workload.Inflight = 0 },
		func(o *RunOptions) { o.Workload.Count, o.Workload.Duration = 0, 0 },
	}
	for i, mod := range bad {
		o := base
		mod(&o)
		if _, err := Run(context.Background(), o); !errors.Is(err, ErrUsage) {
			t.Errorf("case %d: %v, want ErrUsage", i, err)
		}
	}
}
