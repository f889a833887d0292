package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/flymq/flymq/internal/broker"
	"github.com/flymq/flymq/internal/server"
	"github.com/flymq/flymq/internal/storage"
)

// liveServer runs a real broker and server in-process and returns the
// CLI environment that reaches it. Authentication is off: every AUTH
// would cost a bcrypt per invocation, and the gates have their own tests
// (internal/server).
func liveServer(t *testing.T) (map[string]string, *broker.Broker) {
	t.Helper()
	b, err := broker.Open(broker.Options{DataDir: t.TempDir(), Acks: storage.AcksLeader})
	if err != nil {
		t.Fatal(err)
	}
	s, err := server.New(server.Options{Addr: "127.0.0.1:0", Broker: b, NodeID: "n1"})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		s.Shutdown(ctx)
		b.Close()
	})
	return map[string]string{"FLYMQ_ADDR": s.Addrs()[0].String()}, b
}

func TestAdvancedCommands(t *testing.T) {
	env, b := liveServer(t)
	if _, err := b.DeadLetter(broker.DLQRecord{ID: "d1", OriginalTopic: "jobs", Payload: []byte("job"),
		ErrorMessage: "boom", RetryCount: 2}); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		args []string
		code int
		out  string
	}{
		{[]string{"schema", "register", "orders", `{"type":"object","required":["id"]}`}, 0, "registered orders version 1\n"},
		{[]string{"schema", "register", "../x", `{}`}, 1, ""},
		{[]string{"schema", "register", "p", "--type", "protobuf"}, 2, ""},
		{[]string{"schema", "list"}, 0, "orders-v1\tjson\n"},
		{[]string{"schema", "get", "orders"}, 0, "orders-v1\tjson\tbackward\n{\"type\":\"object\",\"required\":[\"id\"]}\n"},
		{[]string{"schema", "validate", "orders", `{"id":1}`}, 0, "valid\n"},
		{[]string{"schema", "validate", "orders", `{}`}, 1, "invalid: missing required field: id\n"},
		{[]string{"schema", "produce", "orders", "orders", `{"id":1}`}, 0, "produced to orders partition 0 offset 0\n"},
		{[]string{"schema", "produce", "orders", "orders", `{}`}, 1, ""},
		{[]string{"schema", "delete", "orders"}, 0, "deleted orders\n"},
		{[]string{"produce", "ttl", "brief", "--ttl", "1h"}, 0, "produced to ttl partition 0 offset 0 (expires in 1h0m0s)\n"},
		{[]string{"produce", "later", "soon", "--delay", "300ms"}, 0, "scheduled for later in 300ms\n"},
		{[]string{"produce", "later", "x", "--delay", "1s", "--key", "k"}, 2, ""},
		{[]string{"produce", "later", "x", "--delay", "1s", "--ttl", "1s"}, 2, ""},
		{[]string{"produce", "later", "x", "--delay", "2400h"}, 1, ""},
		{[]string{"txn", "send", "tx", "a", "b"}, 0, "committed 2 messages to tx\n"},
		{[]string{"txn", "commit", "nope"}, 1, ""},
		{[]string{"dlq", "fetch", "jobs"}, 0, "d1\t2\tboom\tjob\n"},
		{[]string{"dlq", "replay", "jobs", "d1"}, 0, "replayed d1\n"},
		{[]string{"dlq", "reinject", "jobs", "0"}, 0, "replayed offset 0\n"},
		{[]string{"dlq", "reinject", "jobs", "7"}, 1, ""},
		{[]string{"fetch", "jobs"}, 0, "0\t\tjob\n1\t\tjob\nnext offset: 2\n"},
		{[]string{"dlq", "purge", "jobs"}, 0, "purged the DLQ of jobs\n"},
	}
	for _, c := range cases {
		r := cli(t, env, "", c.args...)
		if r.code != c.code || r.out != c.out {
			t.Errorf("%v: code %d out %q (stderr %q), want %d %q", c.args, r.code, r.out, r.err, c.code, c.out)
		}
	}
	if r := cli(t, env, "", "produce", "later", "x", "--delay", "2400h"); !strings.Contains(r.err, "delay 2400h0m0s exceeds maximum allowed delay 24h0m0s") {
		t.Errorf("max delay stderr: %q", r.err)
	}
	if r := cli(t, env, "", "schema", "register", "../x", "{}"); !strings.Contains(r.err, "invalid schema name") {
		t.Errorf("../x stderr: %q", r.err)
	}

	// A transaction over several invocations: invisible until commit.
	r := cli(t, env, "", "txn", "begin")
	id := strings.TrimSpace(r.out)
	if r.code != 0 || !strings.HasPrefix(id, "txn-") {
		t.Fatalf("begin: %+v", r)
	}
	if r := cli(t, env, "", "txn", "produce", id, "tx", "c"); r.code != 0 {
		t.Fatalf("txn produce: %+v", r)
	}
	if r := cli(t, env, "", "fetch", "tx"); r.out != "0\t\ta\n1\t\tb\nnext offset: 2\n" {
		t.Fatalf("before commit: %q", r.out)
	}
	if r := cli(t, env, "", "txn", "commit", id); r.code != 0 || r.out != "committed "+id+"\n" {
		t.Fatalf("commit: %+v", r)
	}
	if r := cli(t, env, "", "fetch", "tx"); r.out != "0\t\ta\n1\t\tb\n2\t\tc\nnext offset: 3\n" {
		t.Fatalf("after commit: %q", r.out)
	}

	// The delayed message shows up, no earlier than its delay.
	deadline := time.Now().Add(10 * time.Second)
	for {
		r := cli(t, env, "", "fetch", "later")
		if r.out == "0\t\tsoon\nnext offset: 1\n" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("delayed message never arrived: %+v", r)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
