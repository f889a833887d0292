package broker

// Faults under the broker (issue 6): power loss on a file layer that keeps
// only what was fsynced, ENOSPC hitting concurrent producers, retention
// under readers, and the group-name rules.

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/flymq/flymq/internal/storage"
	"github.com/flymq/flymq/internal/storage/vfs"
)

type ackedMsg struct {
	part  int32
	off   uint64
	value string
}

// TestPowerLossAcksAllKeepsAcknowledged: producers (acks=all) and
// committers run on a CrashFS; the power fails mid-load. After reopening,
// every acknowledged message is at its offset byte for byte, the log ends
// exactly after the last acknowledged one (nothing unacknowledged was
// synced, since a batch is acknowledged right after its fsync), and every
// acknowledged commit is there.
func TestPowerLossAcksAllKeepsAcknowledged(t *testing.T) {
	forEachMode(t, func(t *testing.T, o Options) {
		o.Acks = storage.AcksAll
		cfs := vfs.NewCrashFS()
		o.FS = cfs
		b, err := Open(o)
		if err != nil {
			t.Fatal(err)
		}
		if err := b.CreateTopic("pl", 3); err != nil {
			t.Fatal(err)
		}
		var mu sync.Mutex
		var acked []ackedMsg
		commits := map[string]uint64{} // group/partition -> last acknowledged commit
		var ops atomic.Int64
		var crashed atomic.Bool
		var wg sync.WaitGroup
		for w := range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; ; i++ {
					v := fmt.Sprintf("w%d-%d", w, i)
					r, err := b.Produce("pl", int32(i%3), []byte(v), []byte(v+strings.Repeat(".", i%50)))
					if err != nil {
						return // the crash: every later write fails
					}
					mu.Lock()
					acked = append(acked, ackedMsg{r.Partition, r.Offset, v + strings.Repeat(".", i%50)})
					mu.Unlock()
					ops.Add(1)
				}
			}()
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := uint64(1); ; i++ {
				g := fmt.Sprintf("g%d", i%2)
				if err := b.Commit("pl", g, int32(i%3), i); err != nil {
					return
				}
				mu.Lock()
				commits[fmt.Sprintf("%s/%d", g, i%3)] = i
				mu.Unlock()
				if crashed.Load() {
					// The group store writes through the os package, not
					// Options.FS, so its commits do not fail at the crash.
					return
				}
			}
		}()
		for ops.Load() < 300 {
			time.Sleep(time.Millisecond)
		}
		cfs.Crash()
		crashed.Store(true)
		wg.Wait()
		b.Close() // the old process is gone; its handles fail with ErrCrashed

		b2 := openBroker(t, o)
		perPart := map[int32]uint64{}
		for _, a := range acked {
			perPart[a.part]++
			m, err := b2.Consume("pl", a.part, a.off)
			if err != nil || string(m.Value) != a.value {
				t.Fatalf("acknowledged p%d@%d = %q, %v; want %q", a.part, a.off, m.Value, err, a.value)
			}
		}
		for p := int32(0); p < 3; p++ {
			lowest, next, err := b2.Offsets("pl", p)
			if err != nil || lowest != 0 || next != perPart[p] {
				t.Fatalf("partition %d after power loss: [%d, %d) %v; want [0, %d)", p, lowest, next, err, perPart[p])
			}
		}
		for k, want := range commits {
			var g string
			var p int32
			fmt.Sscanf(strings.Replace(k, "/", " ", 1), "%s %d", &g, &p)
			if got, err := b2.CommittedOffset("pl", g, p); err != nil || got != want {
				t.Fatalf("commit %s = %d, %v; want %d", k, got, err, want)
			}
		}
		// Writing continues right after the last acknowledged offset.
		if r := mustProduce(t, b2, "pl", 0, "", "after"); r.Offset != perPart[0] {
			t.Fatalf("first offset after power loss = %d, want %d", r.Offset, perPart[0])
		}
		t.Logf("%d messages and %d commit keys acknowledged before the crash", len(acked), len(commits))
	})
}

// TestDiskFullUnderConcurrentProducers: ENOSPC strikes in the middle of
// group-committed batches. Every produce either errors or is
// acknowledged; the acknowledged offsets are exactly 0…n−1 (no gap, no
// offset given twice); after space returns, writing continues at n, and
// a restart sees the same log.
func TestDiskFullUnderConcurrentProducers(t *testing.T) {
	forEachMode(t, func(t *testing.T, o Options) {
		o.Acks = storage.AcksAll
		efs := vfs.NewErrorFS(nil)
		o.FS = efs
		b := openBroker(t, o)
		mustProduce(t, b, "full", 0, "", "seed")
		efs.FailWrites(syscall.ENOSPC, 20_000)
		var mu sync.Mutex
		values := map[uint64]string{0: "seed"}
		var failed atomic.Int64
		var wg sync.WaitGroup
		for w := range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range 60 {
					v := fmt.Sprintf("w%d-%d-%s", w, i, strings.Repeat("x", 100))
					r, err := b.Produce("full", 0, nil, []byte(v))
					if err != nil {
						if !errors.Is(err, syscall.ENOSPC) {
							t.Errorf("produce error %v, want ENOSPC", err)
						}
						failed.Add(1)
						continue
					}
					mu.Lock()
					if old, dup := values[r.Offset]; dup {
						t.Errorf("offset %d acknowledged twice (%q and %q)", r.Offset, old, v)
					}
					values[r.Offset] = v
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
		if failed.Load() == 0 {
			t.Fatal("the disk never filled up")
		}
		n := uint64(len(values))
		if _, next, _ := b.Offsets("full", 0); next != n {
			t.Fatalf("next offset %d with %d acknowledged", next, n)
		}
		for off := range n {
			if _, ok := values[off]; !ok {
				t.Fatalf("offset %d never acknowledged but below next %d: a gap", off, n)
			}
		}
		if !b.Ready() {
			t.Fatal("ENOSPC fenced the broker; only a failed fsync may")
		}
		efs.Heal()
		if r := mustProduce(t, b, "full", 0, "", "healed"); r.Offset != n {
			t.Fatalf("offset after heal = %d, want %d", r.Offset, n)
		}
		values[n] = "healed"
		b.Close()
		b2 := openBroker(t, o)
		msgs, next, err := b2.Fetch("full", 0, 0, int(n)+10, "", 0)
		if err != nil || uint64(len(msgs)) != n+1 || next != n+1 {
			t.Fatalf("after restart: %d msgs next %d %v; want %d", len(msgs), next, err, n+1)
		}
		for _, m := range msgs {
			if string(m.Value) != values[m.Offset] {
				t.Fatalf("offset %d = %q, want %q", m.Offset, m.Value, values[m.Offset])
			}
		}
		t.Logf("%d acknowledged, %d refused with ENOSPC", n, failed.Load())
	})
}

// TestRetentionUnderReaders: Fetch and Consume race EnforceRetention on a
// partition whose segments keep being deleted. Each read returns the
// right record for its offset, or — once the offset is gone — the clean
// answer: ErrNoMessage for Consume, an empty batch with next unchanged
// for Fetch.
func TestRetentionUnderReaders(t *testing.T) {
	o := testOptions(t, true)
	o.Acks = storage.AcksNone
	o.SegmentBytes = 1024
	o.RetentionBytes = 2048
	o.RetentionCheckInterval = time.Hour
	b := openBroker(t, o)
	val := func(off uint64) string { return fmt.Sprintf("%08d%s", off, strings.Repeat("r", 90)) }
	var next atomic.Uint64
	produce := func() {
		r := mustProduce(t, b, "ret", 0, "", val(next.Load()))
		if r.Offset != next.Load() {
			t.Fatalf("offset %d, want %d", r.Offset, next.Load())
		}
		next.Add(1)
	}
	for range 50 {
		produce()
	}
	var stop atomic.Bool
	var gone, served atomic.Int64
	var wg sync.WaitGroup
	for r := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !stop.Load() {
				lowest, _, _ := b.Offsets("ret", 0)
				off := lowest // the oldest: the one retention removes next
				if r%2 == 0 {
					m, err := b.Consume("ret", 0, off)
					switch {
					case errors.Is(err, ErrNoMessage):
						gone.Add(1)
					case err != nil:
						t.Errorf("consume %d: %v", off, err)
						return
					case string(m.Value) != val(off):
						t.Errorf("consume %d = %q", off, m.Value)
						return
					default:
						served.Add(1)
					}
					continue
				}
				msgs, nx, err := b.Fetch("ret", 0, off, 20, "", 0)
				if err != nil {
					t.Errorf("fetch %d: %v", off, err)
					return
				}
				if len(msgs) == 0 {
					if nx != off {
						t.Errorf("empty fetch at %d moved next to %d", off, nx)
						return
					}
					gone.Add(1)
					continue
				}
				for i, m := range msgs {
					if m.Offset != off+uint64(i) || string(m.Value) != val(m.Offset) {
						t.Errorf("fetch %d: message %d is %d %q", off, i, m.Offset, m.Value)
						return
					}
				}
				if nx != off+uint64(len(msgs)) {
					t.Errorf("fetch %d: next %d after %d messages", off, nx, len(msgs))
					return
				}
				served.Add(int64(len(msgs)))
			}
		}()
	}
	for range 300 {
		produce()
		b.EnforceRetention(time.Now())
	}
	stop.Store(true)
	wg.Wait()
	lowest, nx, err := b.Offsets("ret", 0)
	if err != nil || nx != 350 || lowest == 0 {
		t.Fatalf("offsets [%d, %d) %v; want retention to have run and next 350", lowest, nx, err)
	}
	t.Logf("served %d, offset gone %d times", served.Load(), gone.Load())
}

// TestValidateGroupName: group ids follow the topic-name rules (bar UTF-8
// validity, see ValidateGroupName) and the error matches ErrInvalidName.
func TestValidateGroupName(t *testing.T) {
	for name, want := range map[string]string{
		"g":                      "",
		"team/eu/billing":        "",
		"g\xff":                  "",
		"":                       "invalid group name: empty",
		`a\b`:                    "invalid group name: backslash at 1",
		"../x":                   `invalid group name: ".." segment`,
		"x\x00":                  "invalid group name: NUL byte at 1",
		"\xffx\x07":              "invalid group name: control character U+0007 at 2",
		"x//y":                   "invalid group name: empty '/' segment",
		"cafe\u0301":             "invalid group name: not in Unicode NFC form",
		strings.Repeat("g", 250): "invalid group name: 250 bytes, at most 249 allowed",
	} {
		err := ValidateGroupName(name)
		got := ""
		if err != nil {
			got = err.Error()
			if !errors.Is(err, ErrInvalidName) || !errors.Is(err, ErrInvalidGroupName) {
				t.Errorf("%q: %v does not match ErrInvalidName and ErrInvalidGroupName", name, err)
			}
		}
		if got != want {
			t.Errorf("ValidateGroupName(%q) = %q, want %q", name, got, want)
		}
	}
	b := openBroker(t, testOptions(t, false))
	mustProduce(t, b, "t", 0, "", "v")
	if _, err := b.Subscribe("t", "bad\ngroup", 0, ModeEarliest, "m"); !errors.Is(err, ErrInvalidName) {
		t.Fatalf("subscribe with a bad group: %v", err)
	}
	if err := b.ResetOffset("t", "..", 0, ModeOffset, 3); !errors.Is(err, ErrInvalidName) {
		t.Fatalf("reset with a bad group: %v", err)
	}
	if err := b.Commit("t", "", 0, 3); err != nil {
		t.Fatalf("commit with the empty group id: %v", err)
	}
	if gs := b.Groups(); len(gs) != 1 || gs[0].Name != "" {
		t.Fatalf("groups = %+v, want only the empty id", gs)
	}
}
