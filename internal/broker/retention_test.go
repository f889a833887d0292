package broker

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/flymq/flymq/internal/storage"
)

func TestRetention(t *testing.T) {
	forEachMode(t, func(t *testing.T, o Options) {
		o.Acks = storage.AcksNone
		o.SegmentBytes = 4096
		o.RetentionBytes = 8192
		o.RetentionCheckInterval = time.Hour // driven by hand below
		b := openBroker(t, o)
		v := strings.Repeat("x", 500)
		for range 100 {
			mustProduce(t, b, "r", -1, "", v)
		}
		b.EnforceRetention(time.Now())
		lowest, next, err := b.Offsets("r", 0)
		if err != nil || lowest == 0 || next != 100 {
			t.Fatalf("Offsets = %d, %d, %v", lowest, next, err)
		}
		// Below the lowest offset: CONSUME fails, FETCH is empty with next
		// unchanged (core.md §6.7), SUBSCRIBE/RESET earliest use the lowest.
		if _, err := b.Consume("r", 0, 0); !errors.Is(err, ErrNoMessage) {
			t.Fatalf("consume removed offset: %v", err)
		}
		if msgs, nx, err := b.Fetch("r", 0, 0, 10, "", 0); err != nil || len(msgs) != 0 || nx != 0 {
			t.Fatalf("fetch removed offset: %d %d %v", len(msgs), nx, err)
		}
		if msgs, nx, err := b.Fetch("r", 0, lowest, 1, "", 0); err != nil || len(msgs) != 1 || nx != lowest+1 {
			t.Fatalf("fetch lowest: %d %d %v", len(msgs), nx, err)
		}
		if off, err := b.Subscribe("r", "g", 0, "earliest", "m"); err != nil || off != lowest {
			t.Fatalf("subscribe earliest = %d, %v", off, err)
		}
		if off, _ := b.Subscribe("r", "g", 0, "commit", "m"); off != lowest {
			t.Fatalf("subscribe commit without commit = %d", off)
		}
		if err := b.ResetOffset("r", "g", 0, "earliest", 0); err != nil {
			t.Fatal(err)
		}
		if off, _ := b.CommittedOffset("r", "g", 0); off != lowest {
			t.Fatalf("reset earliest = %d", off)
		}
	})
}

// TestRetentionLoop checks that the background loop runs (polling, not
// timing: the deadline only bounds a hang).
func TestRetentionLoop(t *testing.T) {
	o := testOptions(t, true)
	o.Acks = storage.AcksNone
	o.SegmentBytes = 4096
	o.RetentionBytes = 8192
	o.RetentionCheckInterval = 10 * time.Millisecond
	b := openBroker(t, o)
	v := strings.Repeat("x", 500)
	for range 100 {
		mustProduce(t, b, "r", -1, "", v)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		if lowest, _, _ := b.Offsets("r", 0); lowest > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("retention loop never removed a segment")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
}
