package broker

import (
	"errors"
	"slices"
	"testing"
	"time"
)

func TestDLQ(t *testing.T) {
	b := openBroker(t, testOptions(t, true))
	if got, err := b.FetchDLQ("orders", 10); err != nil || got != nil {
		t.Fatalf("missing DLQ: %v %v", got, err)
	}
	mustProduce(t, b, "orders.dlq", 0, "", "not json")
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	rec := DLQRecord{ID: "dlq-1", OriginalTopic: "orders", OriginalOffset: 5, Payload: []byte("hello"),
		Reason: ReasonProcessingError, ErrorMessage: "boom", RetryCount: 3, FirstFailedAt: at, LastFailedAt: at,
		Headers: map[string]string{"k": "v"}}
	if _, err := b.DeadLetter(rec); err != nil {
		t.Fatal(err)
	}
	got, err := b.FetchDLQ("orders", 10)
	if err != nil || len(got) != 1 || got[0].ID != "dlq-1" || string(got[0].Payload) != "hello" || got[0].RetryCount != 3 {
		t.Fatalf("fetch: %+v %v", got, err)
	}
	// Invalid records count toward the maximum.
	if got, _ := b.FetchDLQ("orders", 1); len(got) != 0 {
		t.Fatalf("max 1: %+v", got)
	}
	if got, _ := b.FetchDLQ("orders", 0); got != nil {
		t.Fatalf("max 0: %+v", got)
	}
	if _, err := b.FindDLQ("orders", "nope"); !errors.Is(err, ErrDLQNotFound) || err.Error() != "message not found" {
		t.Fatalf("find missing: %v", err)
	}
	r, err := b.FindDLQ("orders", "dlq-1")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.ReplayDLQ(r); err != nil {
		t.Fatal(err)
	}
	if _, err := b.DLQAt("orders", 0); !errors.Is(err, ErrDLQNotFound) {
		t.Fatalf("non-JSON at 0: %v", err)
	}
	if r, err := b.DLQAt("orders", 1); err != nil || r.ID != "dlq-1" {
		t.Fatalf("at 1: %+v %v", r, err)
	}
	if got := visible(t, b, "orders"); !slices.Equal(got, []string{"hello"}) {
		t.Fatalf("replayed: %v", got)
	}
	if got, _ := b.FetchDLQ("orders", 10); len(got) != 1 {
		t.Fatal("replay removed the DLQ record")
	}
	if err := b.PurgeDLQ("orders"); err != nil {
		t.Fatal(err)
	}
	if err := b.PurgeDLQ("orders"); err != nil {
		t.Fatalf("purge twice: %v", err)
	}
	if _, err := b.PartitionCount("orders.dlq"); !errors.Is(err, ErrTopicNotFound) {
		t.Fatalf("DLQ still there: %v", err)
	}
}
