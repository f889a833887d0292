package client

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net"
	"os"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/flymq/flymq/internal/protocol"
)

// vectorsPath is the core.json copy kept with the protocol package.
const vectorsPath = "../../internal/protocol/testdata/core.json"

type vector struct {
	Name      string `json:"name"`
	Direction string `json:"direction"`
	Hex       string `json:"hex"`
}

// vectorReplies maps each request frame of core.json to the upstream
// reply frame captured for it (the first one when requests repeat).
func vectorReplies(t testing.TB) map[string][]byte {
	t.Helper()
	data, err := os.ReadFile(vectorsPath)
	if err != nil {
		t.Fatal(err)
	}
	var vs []vector
	if err := json.Unmarshal(data, &vs); err != nil {
		t.Fatal(err)
	}
	reqs := map[string]string{}
	out := map[string][]byte{}
	for _, v := range vs {
		prefix := strings.TrimSuffix(strings.TrimSuffix(v.Name, ".request"), ".response")
		if v.Direction == "request" {
			reqs[prefix] = v.Hex
			continue
		}
		req, ok := reqs[prefix]
		if !ok {
			continue
		}
		if _, dup := out[req]; dup {
			continue
		}
		b, err := hex.DecodeString(v.Hex)
		if err != nil {
			t.Fatal(err)
		}
		out[req] = b
	}
	return out
}

// handler answers one request frame with zero or more reply bytes;
// returning nil closes the connection.
type handler func(h protocol.Header, payload []byte) []byte

// fakeServer is a tiny broker stand-in on 127.0.0.1 that answers with
// canned frames. It records every request frame it receives.
type fakeServer struct {
	t  testing.TB
	ln net.Listener
	h  handler

	mu       sync.Mutex
	requests []string // hex of whole request frames
	accepted int
	wg       sync.WaitGroup
}

func newFakeServer(t testing.TB, h handler) *fakeServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &fakeServer{t: t, ln: ln, h: h}
	s.wg.Add(1)
	go s.serve()
	t.Cleanup(func() {
		ln.Close()
		s.wg.Wait()
	})
	return s
}

// vectorServer answers every request that appears in core.json with the
// captured reply, and anything else with an ERROR naming the frame.
func vectorServer(t testing.TB) *fakeServer {
	replies := vectorReplies(t)
	return newFakeServer(t, func(h protocol.Header, p []byte) []byte {
		frame := hex.EncodeToString(protocol.AppendFrame(nil, h.Op, h.Flags, p))
		if r, ok := replies[frame]; ok {
			return r
		}
		return protocol.AppendError(nil, "no vector for "+frame)
	})
}

func (s *fakeServer) addr() string { return s.ln.Addr().String() }

func (s *fakeServer) serve() {
	defer s.wg.Done()
	for {
		nc, err := s.ln.Accept()
		if err != nil {
			return
		}
		s.mu.Lock()
		s.accepted++
		s.mu.Unlock()
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			defer nc.Close()
			fr := protocol.NewFrameReader(nc)
			for {
				h, p, err := fr.Next()
				if err != nil {
					return
				}
				s.mu.Lock()
				s.requests = append(s.requests, hex.EncodeToString(protocol.AppendFrame(nil, h.Op, h.Flags, p)))
				s.mu.Unlock()
				reply := s.h(h, p)
				if reply == nil {
					return
				}
				if _, err := nc.Write(reply); err != nil {
					return
				}
			}
		}()
	}
}

func (s *fakeServer) lastRequest() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.requests) == 0 {
		return ""
	}
	return s.requests[len(s.requests)-1]
}

func dial(t *testing.T, s *fakeServer, opts Options) *Client {
	t.Helper()
	c, err := Dial(context.Background(), s.addr(), opts)
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func serverMessage(t *testing.T, err error) string {
	t.Helper()
	var se *ServerError
	if !errors.As(err, &se) {
		t.Fatalf("error %v (%T) is not a *ServerError", err, err)
	}
	return se.Message
}

// TestClientAgainstVectors drives every synchronous method with the
// arguments of a vector request; the fake server only answers byte-exact
// requests, so this also checks the client's encoding.
func TestClientAgainstVectors(t *testing.T) {
	s := vectorServer(t)
	c := dial(t, s, Options{RequestTimeout: 5 * time.Second})

	if topics, err := c.ListTopics(); err != nil || len(topics) != 0 {
		t.Fatalf("ListTopics empty: %v %v", topics, err)
	}
	if err := c.CreateTopic("orders", 3); err != nil {
		t.Fatalf("CreateTopic: %v", err)
	}
	md, err := c.Produce("orders", []byte("m1"))
	if err != nil {
		t.Fatalf("Produce: %v", err)
	}
	want := RecordMetadata{Topic: "orders", Partition: 0, Offset: 0, Timestamp: 1796302129082, KeySize: -1, ValueSize: 2}
	if md != want {
		t.Fatalf("Produce = %+v, want %+v", md, want)
	}
	md, err = c.ProduceWithKey("orders", []byte("user-123"), []byte("order-1"))
	if err != nil || md.Partition != 2 || md.Offset != 1 || md.KeySize != 8 {
		t.Fatalf("ProduceWithKey = %+v, %v", md, err)
	}
	if _, err := c.ProduceToPartition("pinned", 2, nil, []byte("p")); err != nil {
		t.Fatalf("ProduceToPartition: %v", err)
	}
	key, value, err := c.Consume("orders", 2, 1)
	if err != nil || string(key) != "user-123" || string(value) != "order-1" {
		t.Fatalf("Consume = %q %q %v", key, value, err)
	}
	if _, _, err := c.Consume("orders", 2, 5); serverMessage(t, err) != "EOF" {
		t.Fatalf("Consume beyond end: %v", err)
	}
	if _, _, err := c.Consume("nope", 0, 0); serverMessage(t, err) != "topic not found" {
		t.Fatalf("Consume missing topic: %v", err)
	}
	fr, err := c.Fetch("orders", 2, 0, 10, "")
	if err != nil || fr.NextOffset != 2 || len(fr.Messages) != 2 ||
		string(fr.Messages[1].Key) != "user-123" || string(fr.Messages[0].Value) != "m3" {
		t.Fatalf("Fetch = %+v, %v", fr, err)
	}
	fr, err = c.Fetch("orders", 2, 0, 10, "USER")
	if err != nil || fr.NextOffset != 2 || len(fr.Messages) != 1 || fr.Messages[0].Offset != 1 {
		t.Fatalf("Fetch filter = %+v, %v", fr, err)
	}
	if off, err := c.Subscribe("orders", "g1", 2, ModeEarliest); err != nil || off != 0 {
		t.Fatalf("Subscribe = %d, %v", off, err)
	}
	if _, err := c.Subscribe("orders", "g2", 0, "bogus"); serverMessage(t, err) != "unknown subscribe mode: bogus" {
		t.Fatalf("Subscribe bogus: %v", err)
	}
	if err := c.Commit("orders", "g1", 2, 1); err != nil {
		t.Fatalf("Commit: %v", err)
	}
	if off, err := c.GetCommittedOffset("orders", "g1", 2); err != nil || off != 1 {
		t.Fatalf("GetCommittedOffset = %d, %v", off, err)
	}
	if lag, err := c.GetLag("orders", "g1", 2); err != nil || lag != (Lag{Current: 1, Committed: 1, Latest: 2, Lag: 1}) {
		t.Fatalf("GetLag = %+v, %v", lag, err)
	}
	if err := c.ResetOffset("orders", "g1", 2, ModeOffset, 1); err != nil {
		t.Fatalf("ResetOffset offset: %v", err)
	}
	if err := c.ResetOffset("orders", "g1", 2, ModeEarliest, 99); err != nil {
		t.Fatalf("ResetOffset earliest (offset ignored): %v", err)
	}
	groups, err := c.ListGroups()
	wantGroup := GroupInfo{Topic: "orders", Group: "g1", Members: 1, Offsets: []PartitionOffset{{Partition: 2, Offset: 1}}}
	if err != nil || len(groups) != 1 || !reflect.DeepEqual(groups[0], wantGroup) {
		t.Fatalf("ListGroups = %+v, %v", groups, err)
	}
	if g, err := c.DescribeGroup("orders", "g1"); err != nil || !reflect.DeepEqual(g, wantGroup) {
		t.Fatalf("DescribeGroup = %+v, %v", g, err)
	}
	if _, err := c.DescribeGroup("", "g1"); serverMessage(t, err) != "consumer group not found: :g1" {
		t.Fatalf("DescribeGroup empty topic: %v", err)
	}
	if err := c.DeleteGroup("zz", "g9"); err != nil {
		t.Fatalf("DeleteGroup: %v", err)
	}
	cm, err := c.ClusterMetadata("orders")
	if err != nil || cm.ClusterID != "standalone" || len(cm.Topics) != 1 || len(cm.Topics[0].Partitions) != 3 ||
		cm.Topics[0].Partitions[2].ID != 2 || cm.Topics[0].Partitions[0].LeaderAddr != "127.0.0.1:39092" {
		t.Fatalf("ClusterMetadata = %+v, %v", cm, err)
	}
	if cm, err := c.ClusterMetadata(""); err != nil || len(cm.Topics) != 5 {
		t.Fatalf("ClusterMetadata all = %+v, %v", cm, err)
	}
	if _, err := c.ClusterMetadata("nope"); serverMessage(t, err) != "topic not found: nope" {
		t.Fatalf("ClusterMetadata missing: %v", err)
	}
	if err := c.DeleteTopic("events"); err != nil {
		t.Fatalf("DeleteTopic: %v", err)
	}
	// Raw Do: an unknown opcode comes back as a ServerError with its frame.
	h, p, err := c.Do(protocol.Op(0x0C), nil)
	if h.Op != protocol.OpError || serverMessage(t, err) != "unknown opcode: 12" || len(p) == 0 {
		t.Fatalf("Do unknown op = %+v %x %v", h, p, err)
	}
}

func TestServerErrorText(t *testing.T) {
	err := error(&ServerError{Message: "topic not found: x"})
	if err.Error() != "server error: topic not found: x" {
		t.Fatal(err.Error())
	}
	wrapped := errors.Join(errors.New("ctx"), err)
	var se *ServerError
	if !errors.As(wrapped, &se) || se.Message != "topic not found: x" {
		t.Fatal("not errors.As-able")
	}
}

func authHandler(t testing.TB, next handler) handler {
	return func(h protocol.Header, p []byte) []byte {
		if h.Op != protocol.OpAuth {
			return next(h, p)
		}
		var req protocol.AuthRequest
		if err := req.Decode(p); err != nil {
			t.Errorf("AUTH decode: %v", err)
			return nil
		}
		resp := protocol.AuthResponse{Success: true, Username: req.Username, Roles: []string{"admin"}}
		if req.Username != "admin" || req.Password != "adminpass" {
			resp = protocol.AuthResponse{Error: "invalid username or password"}
		}
		return protocol.AppendFrame(nil, protocol.OpAuthResponse, protocol.FlagBinary, resp.AppendTo(nil))
	}
}

func TestAuthOnConnect(t *testing.T) {
	replies := vectorReplies(t)
	s := newFakeServer(t, authHandler(t, func(h protocol.Header, p []byte) []byte {
		return replies[hex.EncodeToString(protocol.AppendFrame(nil, h.Op, h.Flags, p))]
	}))
	c := dial(t, s, Options{Username: "admin", Password: "adminpass"})
	// The first frame on the wire is AUTH, byte for byte the spec example.
	if got := s.lastRequest(); got != "af01700100000012000561646d696e000961646d696e70617373" {
		t.Fatalf("AUTH frame = %s", got)
	}
	if _, err := c.ListTopics(); err != nil {
		t.Fatalf("after auth: %v", err)
	}

	_, err := Dial(context.Background(), s.addr(), Options{Username: "admin", Password: "wrong"})
	if !errors.Is(err, ErrAuthFailed) || !strings.Contains(err.Error(), "invalid username or password") {
		t.Fatalf("bad password: %v", err)
	}
	if strings.Contains(err.Error(), "wrong") {
		t.Fatalf("error leaks the password: %v", err)
	}
}

func TestConcurrentCalls(t *testing.T) {
	s := vectorServer(t)
	c := dial(t, s, Options{})
	var wg sync.WaitGroup
	errs := make(chan error, 400)
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 50; i++ {
				if g%2 == 0 {
					if _, err := c.ListTopics(); err != nil {
						errs <- err
					}
				} else if off, err := c.GetCommittedOffset("orders", "g1", 2); err != nil || off != 1 {
					errs <- errors.Join(err, errors.New("wrong offset"))
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.accepted != 1 || len(s.requests) != 400 {
		t.Fatalf("accepted %d conns, %d requests", s.accepted, len(s.requests))
	}
}

// TestReconnectAfterTransportError: the server drops the connection
// mid-call; that call fails, the next one redials and succeeds.
func TestReconnectAfterTransportError(t *testing.T) {
	replies := vectorReplies(t)
	var mu sync.Mutex
	drop := true
	s := newFakeServer(t, func(h protocol.Header, p []byte) []byte {
		mu.Lock()
		defer mu.Unlock()
		if drop {
			drop = false
			return nil
		}
		return replies[hex.EncodeToString(protocol.AppendFrame(nil, h.Op, h.Flags, p))]
	})
	c := dial(t, s, Options{})
	_, err := c.ListTopics()
	var se *ServerError
	if err == nil || errors.As(err, &se) {
		t.Fatalf("dropped call: %v", err)
	}
	if _, err := c.ListTopics(); err != nil {
		t.Fatalf("after reconnect: %v", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.accepted != 2 {
		t.Fatalf("accepted %d connections, want 2", s.accepted)
	}
}

func TestRequestTimeout(t *testing.T) {
	block := make(chan struct{})
	defer close(block)
	s := newFakeServer(t, func(protocol.Header, []byte) []byte {
		<-block
		return nil
	})
	c := dial(t, s, Options{RequestTimeout: 50 * time.Millisecond})
	_, err := c.ListTopics()
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("err = %v, want a timeout", err)
	}
}

func TestClosedClient(t *testing.T) {
	s := vectorServer(t)
	c := dial(t, s, Options{})
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := c.ListTopics(); !errors.Is(err, ErrClosed) {
		t.Fatalf("after Close: %v", err)
	}
}

func TestTooLongNames(t *testing.T) {
	s := vectorServer(t)
	c := dial(t, s, Options{})
	long := strings.Repeat("x", protocol.MaxStr16+1)
	if _, err := c.Produce(long, nil); !errors.Is(err, ErrTooLong) {
		t.Fatalf("Produce: %v", err)
	}
	if _, err := c.Subscribe("t", "g", 0, strings.Repeat("m", 256)); !errors.Is(err, ErrTooLong) {
		t.Fatalf("Subscribe: %v", err)
	}
	if s.lastRequest() != "" {
		t.Fatal("an over-long request reached the wire")
	}
}

func TestDialFailure(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	if _, err := Dial(context.Background(), addr, Options{DialTimeout: time.Second}); err == nil {
		t.Fatal("dial to a closed port succeeded")
	}
}

// TestConnPipelining sends many frames before reading any reply.
func TestConnPipelining(t *testing.T) {
	s := newFakeServer(t, func(h protocol.Header, p []byte) []byte {
		var req protocol.ProduceRequest
		if err := req.Decode(p); err != nil {
			return protocol.AppendError(nil, err.Error())
		}
		md := protocol.RecordMetadata{Topic: req.Topic, Offset: uint64(req.Value[0]), KeySize: -1, ValueSize: int32(len(req.Value))}
		return protocol.AppendFrame(nil, protocol.OpProduce, protocol.FlagBinary, md.AppendTo(nil))
	})
	conn, err := DialConn(context.Background(), s.addr(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	const n = 200
	done := make(chan error, 1)
	go func() {
		for i := 0; i < n; i++ {
			req := protocol.ProduceRequest{Topic: "bench", Value: []byte{byte(i)}, Partition: -1}
			if err := conn.Send(protocol.OpProduce, protocol.FlagBinary, req.AppendTo(nil)); err != nil {
				done <- err
				return
			}
		}
		done <- conn.Flush()
	}()
	for i := 0; i < n; i++ {
		h, p, err := conn.Recv()
		if err != nil {
			t.Fatalf("Recv %d: %v", i, err)
		}
		var md protocol.RecordMetadata
		if err := md.Decode(p); err != nil || h.Op != protocol.OpProduce || md.Offset != uint64(byte(i)) {
			t.Fatalf("reply %d: %+v %+v %v", i, h, md, err)
		}
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	// An ERROR reply is a frame for Recv, not an error.
	if err := conn.Send(protocol.OpProduce, protocol.FlagBinary, []byte{1}); err != nil {
		t.Fatal(err)
	}
	h, p, err := conn.Recv()
	if err != nil || h.Op != protocol.OpError || protocol.DecodeError(p) != "buffer too small" {
		t.Fatalf("error reply: %+v %v", h, err)
	}
}
