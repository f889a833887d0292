package main

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"net"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/flymq/flymq/internal/protocol"
)

const vectorsPath = "../../internal/protocol/testdata/core.json"

// handler answers one request; nil closes the connection.
type handler func(h protocol.Header, p []byte) []byte

// startServer runs a fake broker on 127.0.0.1 and returns its address.
func startServer(t *testing.T, h handler) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer nc.Close()
				fr := protocol.NewFrameReader(nc)
				for {
					hd, p, err := fr.Next()
					if err != nil {
						return
					}
					reply := h(hd, p)
					if reply == nil {
						return
					}
					if _, err := nc.Write(reply); err != nil {
						return
					}
				}
			}()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		wg.Wait()
	})
	return ln.Addr().String()
}

// vectorHandler replays core.json: each request frame gets the reply
// captured for its first occurrence.
func vectorHandler(t *testing.T) handler {
	t.Helper()
	data, err := os.ReadFile(vectorsPath)
	if err != nil {
		t.Fatal(err)
	}
	var vs []struct{ Name, Direction, Hex string }
	if err := json.Unmarshal(data, &vs); err != nil {
		t.Fatal(err)
	}
	reqs := map[string]string{}
	replies := map[string][]byte{}
	for _, v := range vs {
		prefix := strings.TrimSuffix(strings.TrimSuffix(v.Name, ".request"), ".response")
		if v.Direction == "request" {
			reqs[prefix] = v.Hex
			continue
		}
		if req, ok := reqs[prefix]; ok {
			if _, dup := replies[req]; !dup {
				replies[req], _ = hex.DecodeString(v.Hex)
			}
		}
	}
	return func(h protocol.Header, p []byte) []byte {
		frame := hex.EncodeToString(protocol.AppendFrame(nil, h.Op, h.Flags, p))
		if r, ok := replies[frame]; ok {
			return r
		}
		return protocol.AppendError(nil, "no vector for "+frame)
	}
}

type result struct {
	code     int
	out, err string
}

// cli runs the command line in-process with the given environment.
func cli(t *testing.T, env map[string]string, stdin string, args ...string) result {
	t.Helper()
	var out, errOut bytes.Buffer
	code := run(context.Background(), args,
		streams{in: strings.NewReader(stdin), out: &out, err: &errOut},
		func(k string) string { return env[k] })
	return result{code, out.String(), errOut.String()}
}

func TestCommandsAgainstVectors(t *testing.T) {
	addr := startServer(t, vectorHandler(t))
	env := map[string]string{"FLYMQ_ADDR": addr}
	cases := []struct {
		args []string
		code int
		out  string
	}{
		{[]string{"topics", "list"}, 0, ""},
		{[]string{"topics", "create", "orders", "--partitions", "3"}, 0, "created topic orders\n"},
		{[]string{"produce", "orders", "m1"}, 0, "produced to orders partition 0 offset 0\n"},
		{[]string{"produce", "orders", "order-1", "--key", "user-123"}, 0, "produced to orders partition 2 offset 1\n"},
		{[]string{"produce", "pinned", "p", "--partition", "2"}, 0, "produced to pinned partition 0 offset 0\n"},
		{[]string{"consume", "orders", "--partition", "2", "--offset", "1"}, 0, "1\tuser-123\torder-1\n"},
		{[]string{"fetch", "orders", "--partition", "2"}, 0, "0\t\tm3\n1\tuser-123\torder-1\nnext offset: 2\n"},
		{[]string{"fetch", "orders", "--partition", "2", "--filter", "USER"}, 0, "1\tuser-123\torder-1\nnext offset: 2\n"},
		{[]string{"subscribe", "orders", "--group", "g1", "--partition", "2", "--mode", "earliest"}, 0, "start offset: 0\n"},
		{[]string{"groups", "list"}, 0, "orders\tg1\tmembers=1\tp2=1\n"},
		{[]string{"groups", "describe", "orders", "g1"}, 0, "orders\tg1\tmembers=1\tp2=1\n"},
		{[]string{"groups", "lag", "orders", "g1", "--partition", "2"}, 0, "committed=1 latest=2 lag=1\n"},
		{[]string{"groups", "reset", "orders", "g1", "--partition", "2", "--to", "1"}, 0, "reset orders/g1 partition 2 to 1\n"},
		{[]string{"groups", "reset", "orders", "g1", "--partition", "2", "--to", "earliest"}, 0, "reset orders/g1 partition 2 to earliest\n"},
		{[]string{"groups", "delete", "zz", "g9"}, 0, "deleted group zz/g9\n"},
		{[]string{"topics", "delete", "events"}, 0, "deleted topic events\n"},
		// server errors: exit 1, nothing on stdout
		{[]string{"consume", "orders", "--partition", "2", "--offset", "5"}, 1, ""},
		{[]string{"subscribe", "orders", "--group", "g2", "--partition", "3"}, 1, ""},
	}
	for _, c := range cases {
		r := cli(t, env, "", c.args...)
		if r.code != c.code || r.out != c.out {
			t.Errorf("%v: code %d out %q (stderr %q), want %d %q", c.args, r.code, r.out, r.err, c.code, c.out)
		}
	}
	r := cli(t, env, "", "consume", "orders", "--partition", "2", "--offset", "5")
	if !strings.Contains(r.err, "no message at offset 5 of orders partition 2 (past the end, or removed by retention): server error: EOF") {
		t.Errorf("stderr = %q", r.err)
	}
}

func TestJSONOutput(t *testing.T) {
	addr := startServer(t, vectorHandler(t))
	env := map[string]string{"FLYMQ_ADDR": addr}
	cases := []struct {
		args []string
		out  string
	}{
		{[]string{"fetch", "orders", "--partition", "2", "--json"},
			`{"next_offset":2,"messages":[{"topic":"orders","partition":2,"offset":0,"key":"","value":"m3"},` +
				`{"topic":"orders","partition":2,"offset":1,"key":"user-123","value":"order-1"}]}`},
		{[]string{"--json", "produce", "orders", "m1"},
			`{"topic":"orders","partition":0,"offset":0,"timestamp_ms":1796302129082}`},
		{[]string{"groups", "list", "--json"},
			`{"groups":[{"topic":"orders","group":"g1","members":1,"offsets":[{"partition":2,"offset":1}]}]}`},
		{[]string{"groups", "lag", "orders", "g1", "--partition", "2", "--json"},
			`{"committed":1,"group":"g1","lag":1,"latest":2,"partition":2,"topic":"orders"}`},
		{[]string{"topics", "list", "--json"}, `{"topics":[]}`},
	}
	for _, c := range cases {
		r := cli(t, env, "", c.args...)
		if r.code != 0 || r.out != c.out+"\n" {
			t.Errorf("%v: code %d out %q (stderr %q), want %q", c.args, r.code, r.out, r.err, c.out)
		}
	}
}

func TestUsageErrors(t *testing.T) {
	addr := startServer(t, vectorHandler(t))
	env := map[string]string{"FLYMQ_ADDR": addr}
	for _, args := range [][]string{
		{"bogus"},
		{"topics", "frobnicate"},
		{"groups", "x"},
		{"topics", "create"},
		{"topics", "create", "x", "--partitions", "many"},
		{"topics", "create", "x", "--partitions", "-1"},
		{"consume"},
		{"groups", "reset", "t", "g"},
		{"groups", "reset", "t", "g", "--to", "yesterday"},
		{"subscribe", "t", "--mode", "middle"},
		{"produce", "t", "v", "--lines"},
		{"--no-such-flag", "topics", "list"},
	} {
		if r := cli(t, env, "", args...); r.code != exitUsage {
			t.Errorf("%v: exit %d (stderr %q), want %d", args, r.code, r.err, exitUsage)
		}
	}
}

func TestConnectionErrorExitCode(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	if r := cli(t, nil, "", "--addr", addr, "--timeout", "2s", "topics", "list"); r.code != exitError {
		t.Fatalf("exit %d, stderr %q", r.code, r.err)
	}
}

// memBroker is a minimal stateful fake for produce, subscribe, fetch and
// commit on one partition, with optional AUTH.
type memBroker struct {
	mu        sync.Mutex
	values    [][]byte
	commits   []uint64
	fetches   int
	fetched   chan struct{} // closed at the first FETCH when non-nil
	authUsers []string
}

func (b *memBroker) handle(h protocol.Header, p []byte) []byte {
	b.mu.Lock()
	defer b.mu.Unlock()
	reply := func(op protocol.Op, payload []byte) []byte {
		return protocol.AppendFrame(nil, op, protocol.FlagBinary, payload)
	}
	switch h.Op {
	case protocol.OpAuth:
		var req protocol.AuthRequest
		if err := req.Decode(p); err != nil {
			return protocol.AppendError(nil, err.Error())
		}
		b.authUsers = append(b.authUsers, req.Username+":"+req.Password)
		resp := protocol.AuthResponse{Success: true, Username: req.Username}
		return reply(protocol.OpAuthResponse, resp.AppendTo(nil))
	case protocol.OpProduce:
		var req protocol.ProduceRequest
		if err := req.Decode(p); err != nil {
			return protocol.AppendError(nil, err.Error())
		}
		b.values = append(b.values, append([]byte(nil), req.Value...))
		md := protocol.RecordMetadata{Topic: req.Topic, Offset: uint64(len(b.values) - 1), KeySize: -1,
			ValueSize: int32(len(req.Value))}
		return reply(h.Op, md.AppendTo(nil))
	case protocol.OpSubscribe:
		return reply(h.Op, (&protocol.OffsetResponse{Offset: 0}).AppendTo(nil))
	case protocol.OpFetch:
		var req protocol.FetchRequest
		if err := req.Decode(p); err != nil {
			return protocol.AppendError(nil, err.Error())
		}
		b.fetches++
		if b.fetches == 1 && b.fetched != nil {
			close(b.fetched)
		}
		resp := protocol.FetchResponse{NextOffset: req.Offset}
		// At most two per fetch, so following needs several polls.
		for off := req.Offset; off < uint64(len(b.values)) && len(resp.Messages) < 2; off++ {
			resp.Messages = append(resp.Messages, protocol.FetchedMessage{Offset: off, Value: b.values[off]})
			resp.NextOffset = off + 1
		}
		return reply(h.Op, resp.AppendTo(nil))
	case protocol.OpCommit:
		var req protocol.CommitRequest
		if err := req.Decode(p); err != nil {
			return protocol.AppendError(nil, err.Error())
		}
		b.commits = append(b.commits, req.Offset)
		return reply(h.Op, []byte{1})
	}
	return protocol.AppendError(nil, "unexpected op")
}

func TestProduceLinesAndFollow(t *testing.T) {
	b := &memBroker{}
	addr := startServer(t, b.handle)
	env := map[string]string{"FLYMQ_ADDR": addr, "FLYMQ_USERNAME": "alice", "FLYMQ_PASSWORD": "s3cret"}

	r := cli(t, env, "one\ntwo\nthree\n", "produce", "t", "--lines")
	if r.code != 0 || strings.Count(r.out, "produced") != 3 {
		t.Fatalf("produce --lines: %+v", r)
	}
	r = cli(t, env, "raw\nbytes", "produce", "t")
	if r.code != 0 {
		t.Fatalf("produce stdin: %+v", r)
	}
	b.mu.Lock()
	got := []string{}
	for _, v := range b.values {
		got = append(got, string(v))
	}
	b.mu.Unlock()
	if strings.Join(got, "|") != "one|two|three|raw\nbytes" {
		t.Fatalf("stored values %q", got)
	}

	r = cli(t, env, "", "subscribe", "t", "--group", "g", "--mode", "earliest", "--follow",
		"--limit", "3", "--poll-interval", "1ms")
	if r.code != 0 || r.out != "0\t\tone\n1\t\ttwo\n2\t\tthree\n" {
		t.Fatalf("follow: %+v", r)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.commits) == 0 || b.commits[len(b.commits)-1] != 3 {
		t.Fatalf("commits %v, want last 3", b.commits)
	}
	// Every connection authenticated with the environment's credentials.
	if len(b.authUsers) != 3 || b.authUsers[0] != "alice:s3cret" {
		t.Fatalf("auth %v", b.authUsers)
	}
}

func TestFollowStopsOnCancel(t *testing.T) {
	b := &memBroker{fetched: make(chan struct{})}
	addr := startServer(t, b.handle)
	ctx, cancel := context.WithCancel(context.Background())
	var out bytes.Buffer
	done := make(chan int)
	go func() {
		done <- run(ctx, []string{"--addr", addr, "subscribe", "t", "--follow", "--poll-interval", "1ms"},
			streams{in: strings.NewReader(""), out: &out, err: &bytes.Buffer{}},
			func(string) string { return "" })
	}()
	<-b.fetched // following has started: interrupt it
	cancel()
	if code := <-done; code != 0 {
		t.Fatalf("exit %d after cancel", code)
	}
}
