package client

import (
	"context"
	"errors"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/flymq/flymq/internal/auth"
	"github.com/flymq/flymq/internal/broker"
	"github.com/flymq/flymq/internal/crypto"
	"github.com/flymq/flymq/internal/server"
	"github.com/flymq/flymq/internal/storage"
)

const advAdminPass = "admin-secret-pw"

// liveBroker runs a real broker and server (auth on, topics private) on
// loopback and returns its address and broker.
func liveBroker(t *testing.T) (string, *broker.Broker, *auth.Store) {
	t.Helper()
	hexKey, _ := crypto.GenerateKeyHex()
	key, err := crypto.ParseKey(hexKey)
	if err != nil {
		t.Fatal(err)
	}
	b, err := broker.Open(broker.Options{DataDir: t.TempDir(), Keyring: crypto.NewKeyring(key),
		Acks: storage.AcksLeader, SyncInterval: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	store, err := auth.Open(auth.Options{Enabled: true, AdminUsername: "admin", AdminPassword: advAdminPass,
		Dir: filepath.Join(t.TempDir(), "auth")})
	if err != nil {
		t.Fatal(err)
	}
	s, err := server.New(server.Options{Addr: "127.0.0.1:0", Broker: b, Auth: store, NodeID: "n1"})
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
	return s.Addrs()[0].String(), b, store
}

func liveDial(t *testing.T, addr, user, pass string) *Client {
	t.Helper()
	c, err := Dial(context.Background(), addr, Options{Username: user, Password: pass, RequestTimeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func wantServerError(t *testing.T, err error, text string) {
	t.Helper()
	var se *ServerError
	if !errors.As(err, &se) || se.Message != text {
		t.Fatalf("error %v, want server error %q", err, text)
	}
}

func values(t *testing.T, c *Client, topic string) []string {
	t.Helper()
	r, err := c.Fetch(topic, 0, 0, 100, "")
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, m := range r.Messages {
		out = append(out, string(m.Value))
	}
	return out
}

func TestAdvancedAgainstLiveBroker(t *testing.T) {
	addr, b, store := liveBroker(t)
	if err := store.CreateUser(auth.Identity{User: "admin"}, "prod", "prod-password", []string{"producer"}); err != nil {
		t.Fatal(err)
	}
	c := liveDial(t, addr, "admin", advAdminPass)
	prod := liveDial(t, addr, "prod", "prod-password")

	// Schema registry.
	def := []byte(`{"type":"object","required":["id"],"properties":{"id":{"type":"integer"}}}`)
	if v, err := prod.RegisterSchema("orders", SchemaJSON, def); err != nil || v != 1 {
		t.Fatalf("register: %d %v", v, err)
	}
	_, err := c.RegisterSchema("../x", SchemaJSON, def)
	wantServerError(t, err, `invalid schema name: contains '/' or '\'`)
	if d, err := c.GetSchema("orders", 0); err != nil || d.ID != "orders-v1" || string(d.Definition) != string(def) {
		t.Fatalf("get: %+v %v", d, err)
	}
	if l, err := c.ListSchemas(""); err != nil || len(l) != 1 || l[0].ID != "orders-v1" {
		t.Fatalf("list: %+v %v", l, err)
	}
	if ok, errs, err := c.ValidateSchema("orders", []byte(`{"id":"x"}`)); err != nil || ok ||
		!slices.Equal(errs, []string{"type mismatch at id: expected integer, got string"}) {
		t.Fatalf("validate: %v %v %v", ok, errs, err)
	}
	if md, err := prod.ProduceWithSchema("orders", "orders", []byte(`{"id":1}`)); err != nil || md.Offset != 0 || md.KeySize != -1 {
		t.Fatalf("valid produce: %+v %v", md, err)
	}
	_, err = prod.ProduceWithSchema("orders", "orders", []byte(`{}`))
	wantServerError(t, err, "schema validation failed: [missing required field: id]")
	wantServerError(t, prod.DeleteSchema("orders", 0), "unauthorized")
	if err := c.DeleteSchema("orders", 0); err != nil {
		t.Fatal(err)
	}
	_, err = c.GetSchema("orders", 0)
	wantServerError(t, err, "no schema found for topic: orders")
	if got := values(t, c, "orders"); !slices.Equal(got, []string{`{"id":1}`}) {
		t.Fatalf("stored: %v", got)
	}

	// Dead-letter queue.
	if _, err := b.DeadLetter(broker.DLQRecord{ID: "d1", OriginalTopic: "jobs", Payload: []byte("job"),
		ErrorMessage: "boom", RetryCount: 2}); err != nil {
		t.Fatal(err)
	}
	if m, err := c.FetchDLQ("jobs", 10); err != nil || len(m) != 1 || m[0].ID != "d1" || string(m[0].Data) != "job" || m[0].Error != "boom" || m[0].Retries != 2 {
		t.Fatalf("fetch dlq: %+v %v", m, err)
	}
	if err := prod.ReplayDLQ("jobs", "d1"); err != nil {
		t.Fatal(err)
	}
	wantServerError(t, prod.ReplayDLQ("jobs", "nope"), "message not found")
	if err := c.ReinjectDLQ("jobs", 0); err != nil {
		t.Fatal(err)
	}
	wantServerError(t, c.ReinjectDLQ("jobs", 9), "message not found at offset 9")
	if got := values(t, c, "jobs"); !slices.Equal(got, []string{"job", "job"}) {
		t.Fatalf("replayed: %v", got)
	}
	wantServerError(t, prod.PurgeDLQ("jobs"), "unauthorized")
	if err := c.PurgeDLQ("jobs"); err != nil {
		t.Fatal(err)
	}

	// Delayed and TTL.
	start := time.Now()
	md, err := prod.ProduceDelayed("later", []byte("soon"), 300*time.Millisecond)
	if err != nil || md.Offset != 0 || md.Partition != 0 || md.ValueSize != 4 {
		t.Fatalf("delayed: %+v %v", md, err)
	}
	_, err = prod.ProduceDelayed("later", []byte("x"), 2400*time.Hour)
	wantServerError(t, err, "delay 2400h0m0s exceeds maximum allowed delay 24h0m0s")
	if _, err := c.Fetch("later", 0, 0, 10, ""); err == nil && time.Since(start) < 300*time.Millisecond {
		if got := values(t, c, "later"); len(got) != 0 {
			t.Fatalf("visible early: %v", got)
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		r, err := c.Fetch("later", 0, 0, 10, "")
		if err == nil && len(r.Messages) == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("delayed message never visible: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if time.Since(start) < 300*time.Millisecond {
		t.Fatal("delayed message visible before its time")
	}
	if md, err := prod.ProduceWithTTL("ttl", []byte("brief"), time.Hour); err != nil || md.Offset != 0 {
		t.Fatalf("ttl: %+v %v", md, err)
	}
	if got := values(t, c, "ttl"); !slices.Equal(got, []string{"brief"}) {
		t.Fatalf("ttl visible: %v", got)
	}

	// Transactions.
	tx, err := prod.BeginTx()
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range []string{"a", "b"} {
		if err := tx.Produce("txt", []byte(v)); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.CreateTopic("txt", 1); err != nil {
		t.Fatal(err)
	}
	if got := values(t, c, "txt"); len(got) != 0 {
		t.Fatalf("uncommitted visible: %v", got)
	}
	wantServerError(t, c.Transaction(tx.ID).Commit(), "unauthorized")
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	if got := values(t, c, "txt"); !slices.Equal(got, []string{"a", "b"}) {
		t.Fatalf("committed: %v", got)
	}
	wantServerError(t, tx.Commit(), "transaction cannot be committed: committed")
	ab, _ := prod.BeginTx()
	ab.Produce("txt", []byte("never"))
	if err := ab.Abort(); err != nil {
		t.Fatal(err)
	}
	if err := ab.Abort(); err != nil {
		t.Fatalf("abort twice: %v", err)
	}
	if got := values(t, c, "txt"); len(got) != 2 {
		t.Fatalf("after abort: %v", got)
	}
}
