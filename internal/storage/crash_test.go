package storage

import (
	"bytes"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/flymq/flymq/internal/crypto"
	"github.com/flymq/flymq/internal/storage/vfs"
)

// TestPowerLossAcksAll crashes a CrashFS under concurrent AcksAll appends:
// every acknowledged record must come back, with its value.
func TestPowerLossAcksAll(t *testing.T) {
	modes(t, func(t *testing.T, r *crypto.Keyring) {
		cfs := vfs.NewCrashFS()
		o := opts("/data/p0", r)
		o.FS = cfs
		o.SegmentBytes = 8192
		for round := 0; round < 5; round++ {
			p := mustOpen(t, o)
			var mu sync.Mutex
			acked := map[uint64]string{}
			var wg sync.WaitGroup
			stop := make(chan struct{})
			for w := 0; w < 4; w++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := 0; ; i++ {
						select {
						case <-stop:
							return
						default:
						}
						v := fmt.Sprintf("r%d-w%d-%d", round, w, i)
						off, err := p.Append([]Record{{Value: []byte(v), Timestamp: 1}})
						if err != nil {
							t.Logf("append after crash: %v", err)
							return
						}
						mu.Lock()
						acked[off] = v
						mu.Unlock()
					}
				}()
			}
			// Crash once a few groups were acknowledged, mid-stream.
			for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); {
				mu.Lock()
				n := len(acked)
				mu.Unlock()
				if n >= 40 {
					break
				}
				time.Sleep(time.Millisecond)
			}
			mu.Lock()
			cfs.Crash() // no acknowledgement can slip in while we hold mu
			mu.Unlock()
			close(stop)
			wg.Wait()
			p.Close()

			q := mustOpen(t, o)
			for off, v := range acked {
				msgs, err := q.Read(off, 1, 1)
				if err != nil || len(msgs) != 1 || !bytes.Equal(msgs[0].Value, []byte(v)) {
					t.Fatalf("round %d: acked offset %d (%s) lost: %v %v", round, off, v, msgs, err)
				}
			}
			if len(acked) == 0 {
				t.Fatalf("round %d: nothing acknowledged", round)
			}
			q.Close()
		}
	})
}

// TestConcurrentAppendRead runs appenders, readers and retention together
// (under -race in CI).
func TestConcurrentAppendRead(t *testing.T) {
	for _, acks := range []Acks{AcksAll, AcksLeader, AcksNone} {
		t.Run(acks.String(), func(t *testing.T) {
			modes(t, func(t *testing.T, r *crypto.Keyring) {
				o := opts(t.TempDir(), r)
				o.Acks = acks
				o.SyncInterval = time.Millisecond
				o.RetentionBytes = 64 << 10
				p := mustOpen(t, o)
				var wg sync.WaitGroup
				const writers, each = 8, 150
				for w := 0; w < writers; w++ {
					wg.Add(1)
					go func() {
						defer wg.Done()
						for i := 0; i < each; i++ {
							if _, err := p.Append([]Record{rec(i), rec(i + 1)}); err != nil {
								t.Error(err)
								return
							}
						}
					}()
				}
				done := make(chan struct{})
				var rg sync.WaitGroup
				for rd := 0; rd < 3; rd++ {
					rg.Add(1)
					go func() {
						defer rg.Done()
						for {
							select {
							case <-done:
								return
							default:
							}
							off := p.LowestOffset()
							msgs, err := p.Read(off, 50, 4096)
							if err != nil && !isRetired(err) {
								t.Error(err)
								return
							}
							for i, m := range msgs {
								if m.Offset != off+uint64(i) {
									t.Errorf("offset %d at %d", m.Offset, i)
									return
								}
							}
							_ = p.EnforceRetention(time.Now())
						}
					}()
				}
				wg.Wait()
				close(done)
				rg.Wait()
				if n := p.NextOffset(); n != writers*each*2 {
					t.Fatalf("next %d", n)
				}
				if err := p.Remove(); err != nil {
					t.Fatal(err)
				}
				if _, err := p.Read(0, 1, 1); !isRetired(err) {
					t.Fatalf("read after remove: %v", err)
				}
			})
		})
	}
}

func isRetired(err error) bool {
	return errorsIs(err, ErrOffsetOutOfRange) || errorsIs(err, ErrClosed)
}
