package broker

import (
	"errors"
	"testing"

	"github.com/flymq/flymq/internal/storage"
	"github.com/flymq/flymq/internal/storage/vfs"
)

// TestFencedPartitionMakesBrokerUnready: a failed fsync fences the
// partition (DESIGN.md §3); the produce fails with ErrFenced, nothing is
// acknowledged, and Ready turns false until a restart.
func TestFencedPartitionMakesBrokerUnready(t *testing.T) {
	forEachMode(t, func(t *testing.T, o Options) {
		o.Acks = storage.AcksAll
		efs := vfs.NewErrorFS(nil)
		o.FS = efs
		b := openBroker(t, o)
		mustProduce(t, b, "f", -1, "", "durable")
		if !b.Ready() {
			t.Fatal("not ready")
		}
		boom := errors.New("injected EIO")
		efs.FailSyncs(boom)
		_, err := b.Produce("f", -1, nil, []byte("lost"))
		if !errors.Is(err, ErrFenced) {
			t.Fatalf("produce under failing fsync: %v", err)
		}
		if b.Ready() {
			t.Fatal("ready with a fenced partition")
		}
		efs.Heal()
		if _, err := b.Produce("f", -1, nil, []byte("x")); !errors.Is(err, ErrFenced) {
			t.Fatalf("fenced partition took a write: %v", err)
		}
		// Reads still work and see only the acknowledged record.
		if m, err := b.Consume("f", 0, 0); err != nil || string(m.Value) != "durable" {
			t.Fatalf("consume: %+v %v", m, err)
		}
		b.Close()
		b2 := openBroker(t, o)
		if !b2.Ready() {
			t.Fatal("not ready after restart")
		}
		if r := mustProduce(t, b2, "f", -1, "", "after"); r.Offset < 1 {
			t.Fatalf("offset %d after restart", r.Offset)
		}
	})
}
