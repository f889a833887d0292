package broker

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

const testDelay = 300 * time.Millisecond

// waitVisible polls topic until it shows n values or the deadline passes.
func waitVisible(t *testing.T, b *Broker, topic string, n int) []string {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		got := visible(t, b, topic)
		if len(got) >= n || time.Now().After(deadline) {
			return got
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestDelayedVisibleNoEarlierThanDue(t *testing.T) {
	forEachMode(t, func(t *testing.T, o Options) {
		b := openBroker(t, o)
		start := time.Now()
		if err := b.ProduceDelayed("later", []byte("v"), testDelay); err != nil {
			t.Fatal(err)
		}
		if got := visible(t, b, "later"); got != nil || b.PendingDelayed() != 1 {
			t.Fatalf("visible before due: %v (pending %d)", got, b.PendingDelayed())
		}
		if got := waitVisible(t, b, "later", 1); !slices.Equal(got, []string{"v"}) {
			t.Fatalf("after due: %v", got)
		}
		if el := time.Since(start); el < testDelay {
			t.Fatalf("visible after %v, delay %v", el, testDelay)
		}
		// A negative delay means now.
		if err := b.ProduceDelayed("now", []byte("n"), -time.Second); err != nil {
			t.Fatal(err)
		}
		if got := waitVisible(t, b, "now", 1); !slices.Equal(got, []string{"n"}) {
			t.Fatalf("negative delay: %v", got)
		}
	})
}

func TestDelayedMaxDelay(t *testing.T) {
	b := openBroker(t, testOptions(t, false))
	err := b.ProduceDelayed("t", []byte("x"), 2400*time.Hour)
	if !errors.Is(err, ErrDelayTooLong) || err.Error() != "delay 2400h0m0s exceeds maximum allowed delay 24h0m0s" {
		t.Fatalf("too long: %v", err)
	}
	if err := b.ProduceDelayed("bad\x00name", []byte("x"), 0); !errors.Is(err, ErrInvalidName) {
		t.Fatalf("bad topic: %v", err)
	}
}

func TestDelayedSurvivesRestart(t *testing.T) {
	o := testOptions(t, true)
	b := openBroker(t, o)
	start := time.Now()
	if err := b.ProduceDelayed("later", []byte("kept"), testDelay); err != nil {
		t.Fatal(err)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	// The pending store is sealed.
	files, _ := filepath.Glob(filepath.Join(o.DataDir, delayedDir, "*"))
	for _, f := range files {
		if data, _ := os.ReadFile(f); bytes.Contains(data, []byte("kept")) || len(data) == 0 {
			t.Fatalf("%s: plaintext or empty", f)
		}
	}
	b = openBroker(t, o)
	if got := visible(t, b, "later"); got != nil && time.Since(start) < testDelay {
		t.Fatalf("visible before due after restart: %v", got)
	}
	if got := waitVisible(t, b, "later", 1); !slices.Equal(got, []string{"kept"}) {
		t.Fatalf("after restart: %v", got)
	}
	if el := time.Since(start); el < testDelay {
		t.Fatalf("visible after %v", el)
	}
	b.Close()
	b = openBroker(t, o)
	time.Sleep(50 * time.Millisecond)
	if got := visible(t, b, "later"); !slices.Equal(got, []string{"kept"}) {
		t.Fatalf("delivered again after a second restart: %v", got)
	}
}

// TestDelayedDeliveryCrashAtEachWrite: a crash at any write of a delivery
// leaves the message delivered exactly once after restart.
func TestDelayedDeliveryCrashAtEachWrite(t *testing.T) {
	for _, crashAt := range []string{"intent", "append d/0", "sync", "pending", "done"} {
		t.Run(crashAt, func(t *testing.T) {
			o := testOptions(t, true)
			o.Acks = 0
			snap := t.TempDir()
			crashed := make(chan struct{})
			o.commitStep = func(s string) error {
				if s == crashAt {
					select {
					case <-crashed:
					default:
						copyDir(t, o.DataDir, snap)
						close(crashed)
					}
					return errCrash
				}
				return nil
			}
			b := openBroker(t, o)
			if err := b.ProduceDelayed("d", []byte("once"), 0); err != nil {
				t.Fatal(err)
			}
			select {
			case <-crashed:
			case <-time.After(10 * time.Second):
				t.Fatal("delivery never reached the failpoint")
			}
			b.Close()
			ro := o
			ro.DataDir, ro.commitStep = snap, nil
			r := openBroker(t, ro)
			if got := waitVisible(t, r, "d", 1); !slices.Equal(got, []string{"once"}) {
				t.Fatalf("after crash before %q: %v", crashAt, got)
			}
			deadline := time.Now().Add(10 * time.Second)
			for r.PendingDelayed() > 0 && time.Now().Before(deadline) {
				time.Sleep(10 * time.Millisecond)
			}
			time.Sleep(20 * time.Millisecond)
			if got := visible(t, r, "d"); !slices.Equal(got, []string{"once"}) {
				t.Fatalf("duplicate after crash before %q: %v", crashAt, got)
			}
		})
	}
}

// TestTTLExpiredNeverReturned: records past their expiry are skipped by
// FETCH (advancing next) and CONSUME reports no message.
func TestTTLExpiredNeverReturned(t *testing.T) {
	b := openBroker(t, testOptions(t, true))
	now := time.Now().UnixMilli()
	if _, err := b.ProduceWithExpiry("ttl", 0, nil, []byte("dead"), now-1000); err != nil {
		t.Fatal(err)
	}
	if _, err := b.ProduceWithExpiry("ttl", 0, nil, []byte("alive"), now+time.Hour.Milliseconds()); err != nil {
		t.Fatal(err)
	}
	msgs, next, err := b.Fetch("ttl", 0, 0, 10, "", 0)
	if err != nil || len(msgs) != 1 || string(msgs[0].Value) != "alive" || msgs[0].Offset != 1 || next != 2 {
		t.Fatalf("fetch: %v next %d %v", msgs, next, err)
	}
	if _, err := b.Consume("ttl", 0, 0); !errors.Is(err, ErrNoMessage) {
		t.Fatalf("consume expired: %v", err)
	}
	if m, err := b.Consume("ttl", 0, 1); err != nil || string(m.Value) != "alive" {
		t.Fatalf("consume alive: %v", err)
	}
}
