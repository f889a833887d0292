package e2e

// The crash loop (issue 6): the real binary is killed with SIGKILL at
// random moments of a mixed load, many times over, alternating
// performance.acks between "all" and "leader". After every restart each
// acknowledged message must be at its offset byte for byte and each
// acknowledged commit must be stored. The seed is logged; rerun a failure
// with -crashloop.seed, run longer with -crashloop.cycles.

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/flymq/flymq/pkg/client"
)

var (
	crashCycles = flag.Int("crashloop.cycles", 20, "kill -9 cycles of TestCrashLoop")
	crashSeed   = flag.Uint64("crashloop.seed", 0, "seed of TestCrashLoop (0 = from the clock)")
)

type msgKey struct {
	topic string
	part  int32
	off   uint64
}

type ackedValue struct {
	key, value []byte
	cycle      int
}

type commitKey struct {
	group, topic string
	part         int32
}

// commitState is what a consumer knows about one committed offset: the
// last value the broker acknowledged and the one it sent after it, whose
// reply the kill may have swallowed. Storage must hold one of the two.
type commitState struct{ acked, inFlight uint64 }

// crashLedger is everything acknowledged so far, across all cycles.
type crashLedger struct {
	mu      sync.Mutex
	msgs    map[msgKey]ackedValue
	commits map[commitKey]*commitState
	err     error // first broken promise seen while recording
}

func (l *crashLedger) ack(k msgKey, key, value []byte, cycle int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if old, dup := l.msgs[k]; dup && l.err == nil {
		l.err = fmt.Errorf("%s p%d offset %d acknowledged twice: cycle %d %q, cycle %d %q",
			k.topic, k.part, k.off, old.cycle, old.value, cycle, value)
	}
	l.msgs[k] = ackedValue{key: key, value: value, cycle: cycle}
}

var crashTopics = []struct {
	name  string
	parts int32
}{{"crash/orders", 3}, {"crash/audit", 1}}

const crashGroup = "crash-consumers"

// TestCrashLoop: 3 producers and 2 committing consumers; SIGKILL after a
// random 30–300 ms of load; verify; restart; again.
func TestCrashLoop(t *testing.T) {
	seed := *crashSeed
	if seed == 0 {
		seed = uint64(time.Now().UnixNano())
	}
	t.Logf("crash loop: %d cycles, seed %d (rerun with -crashloop.seed=%d)", *crashCycles, seed, seed)
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))

	b := newBroker(t, map[string]any{
		"segment_bytes": 64 << 10, // many rolls, so crashes hit them too
		"audit":         map[string]any{"enabled": false},
	})
	ledger := &crashLedger{msgs: map[msgKey]ackedValue{}, commits: map[commitKey]*commitState{}}
	setup := true
	for cycle := range *crashCycles {
		acks := "all"
		if cycle%2 == 1 {
			acks = "leader"
		}
		setAcks(t, b, acks)
		b.start()
		if setup {
			c := b.client(client.Options{RequestTimeout: 10 * time.Second})
			for _, tp := range crashTopics {
				if err := c.CreateTopic(tp.name, tp.parts); err != nil {
					t.Fatal(err)
				}
			}
			c.Close()
			setup = false
		}
		verifyLedger(t, b, ledger, cycle)

		loadFor := time.Duration(30+rng.IntN(270)) * time.Millisecond
		stop := make(chan struct{})
		var wg sync.WaitGroup
		for p := range 3 {
			pseed := rng.Uint64() // drawn here: rng is not safe for concurrent use
			wg.Add(1)
			go func() {
				defer wg.Done()
				crashProducer(b, ledger, cycle, p, pseed, stop)
			}()
		}
		for cns := range 2 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				crashConsumer(b, ledger, cns, stop)
			}()
		}
		time.Sleep(loadFor)
		b.kill() // mid-load: requests in flight lose their replies
		close(stop)
		wg.Wait()
		ledger.mu.Lock()
		err := ledger.err
		ledger.mu.Unlock()
		if err != nil {
			t.Fatalf("cycle %d (seed %d): %v", cycle, seed, err)
		}
		if t.Failed() {
			t.Fatalf("cycle %d failed (seed %d)", cycle, seed)
		}
	}
	b.start()
	verifyLedger(t, b, ledger, *crashCycles)
	b.stop()
	t.Logf("%d messages and %d committed offsets verified after %d kills", len(ledger.msgs), len(ledger.commits), *crashCycles)
}

// setAcks rewrites performance.acks in the broker's config file.
func setAcks(t *testing.T, b *broker, acks string) {
	t.Helper()
	raw, err := os.ReadFile(b.configPath)
	if err != nil {
		t.Fatal(err)
	}
	cfg := map[string]any{}
	if err := json.Unmarshal(raw, &cfg); err != nil {
		t.Fatal(err)
	}
	cfg["performance"] = map[string]any{"acks": acks}
	if raw, err = json.Marshal(cfg); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(b.configPath, raw, 0o600); err != nil {
		t.Fatal(err)
	}
}

// crashProducer produces keyed messages until the broker dies or stop.
func crashProducer(b *broker, l *crashLedger, cycle, id int, seed uint64, stop <-chan struct{}) {
	rng := rand.New(rand.NewPCG(seed, uint64(id)))
	c, err := client.Dial(b.t.Context(), b.addr, client.Options{RequestTimeout: 10 * time.Second})
	if err != nil {
		return // killed before we connected
	}
	defer c.Close()
	for i := 0; ; i++ {
		select {
		case <-stop:
			return
		default:
		}
		tp := crashTopics[rng.IntN(len(crashTopics))]
		key := fmt.Appendf(nil, "k%d-%d", id, rng.IntN(50))
		value := fmt.Appendf(nil, "c%d p%d #%d ", cycle, id, i)
		value = append(value, bytes.Repeat([]byte{byte('a' + rng.IntN(26))}, rng.IntN(2000))...)
		md, err := c.ProduceWithKey(tp.name, key, value)
		if err != nil {
			var se *client.ServerError
			if errors.As(err, &se) {
				l.mu.Lock()
				if l.err == nil {
					l.err = fmt.Errorf("produce refused by a live broker: %v", err)
				}
				l.mu.Unlock()
			}
			return // the kill
		}
		l.ack(msgKey{tp.name, md.Partition, md.Offset}, key, value, cycle)
	}
}

// crashConsumer reads from its committed position and commits the next
// offset after each fetch, recording what was acknowledged.
func crashConsumer(b *broker, l *crashLedger, id int, stop <-chan struct{}) {
	c, err := client.Dial(b.t.Context(), b.addr, client.Options{RequestTimeout: 10 * time.Second})
	if err != nil {
		return
	}
	defer c.Close()
	tp := crashTopics[id%len(crashTopics)]
	for i := 0; ; i++ {
		select {
		case <-stop:
			return
		default:
		}
		k := commitKey{crashGroup, tp.name, int32(i % int(tp.parts))}
		l.mu.Lock()
		var pos uint64
		if st := l.commits[k]; st != nil {
			pos = st.acked
		}
		l.mu.Unlock()
		res, err := c.Fetch(k.topic, k.part, pos, 50, "")
		if err != nil {
			return
		}
		l.mu.Lock()
		st := l.commits[k]
		if st == nil {
			st = &commitState{}
			l.commits[k] = st
		}
		st.inFlight = res.NextOffset
		l.mu.Unlock()
		if err := c.Commit(k.topic, k.group, k.part, res.NextOffset); err != nil {
			return
		}
		l.mu.Lock()
		st.acked = res.NextOffset
		l.mu.Unlock()
	}
}

// verifyLedger checks every acknowledged message and commit against the
// restarted broker, then settles in-flight commits to what is stored.
func verifyLedger(t *testing.T, b *broker, l *crashLedger, cycle int) {
	t.Helper()
	c := b.client(client.Options{RequestTimeout: 30 * time.Second})
	defer c.Close()
	l.mu.Lock()
	defer l.mu.Unlock()
	logs := map[msgKey][]client.FetchedMessage{} // off = 0: whole partition
	for _, tp := range crashTopics {
		for p := range tp.parts {
			var all []client.FetchedMessage
			var off uint64
			for {
				res, err := c.Fetch(tp.name, p, off, 1000, "")
				if err != nil {
					t.Fatalf("after kill %d: fetch %s p%d@%d: %v", cycle, tp.name, p, off, err)
				}
				if len(res.Messages) == 0 {
					break
				}
				all = append(all, res.Messages...)
				off = res.NextOffset
			}
			logs[msgKey{tp.name, p, 0}] = all
		}
	}
	for k, want := range l.msgs {
		log := logs[msgKey{k.topic, k.part, 0}]
		if k.off >= uint64(len(log)) {
			t.Fatalf("after kill %d: acknowledged %s p%d@%d (cycle %d) missing: partition holds %d",
				cycle, k.topic, k.part, k.off, want.cycle, len(log))
		}
		m := log[k.off]
		if m.Offset != k.off || !bytes.Equal(m.Key, want.key) || !bytes.Equal(m.Value, want.value) {
			t.Fatalf("after kill %d: %s p%d@%d holds offset %d %q=%.40q, acknowledged %q=%.40q in cycle %d",
				cycle, k.topic, k.part, k.off, m.Offset, m.Key, m.Value, want.key, want.value, want.cycle)
		}
	}
	for k, st := range l.commits {
		got, err := c.GetCommittedOffset(k.topic, k.group, k.part)
		if err != nil {
			t.Fatalf("after kill %d: committed offset %v: %v", cycle, k, err)
		}
		if got != st.acked && got != st.inFlight {
			t.Fatalf("after kill %d: committed offset of %v = %d; acknowledged %d (in flight %d)",
				cycle, k, got, st.acked, st.inFlight)
		}
		st.acked, st.inFlight = got, got
	}
}
