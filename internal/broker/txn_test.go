package broker

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// visible returns every value in every partition of topic, in partition
// then offset order (nil when the topic does not exist).
func visible(t *testing.T, b *Broker, topic string) []string {
	t.Helper()
	n, err := b.PartitionCount(topic)
	if errors.Is(err, ErrTopicNotFound) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for p := range n {
		msgs, _, err := b.Fetch(topic, p, 0, 1000, "", 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range msgs {
			out = append(out, string(m.Value))
		}
	}
	return out
}

func TestTxnInvisibleUntilCommit(t *testing.T) {
	forEachMode(t, func(t *testing.T, o Options) {
		b := openBroker(t, o)
		if err := b.CreateTopic("a", 2); err != nil {
			t.Fatal(err)
		}
		id, err := b.BeginTx("alice")
		if err != nil || !strings.HasPrefix(id, "txn-") || len(id) != 36 {
			t.Fatalf("begin: %q %v", id, err)
		}
		for i := range 3 {
			if err := b.ProduceTx("alice", id, "a", []byte(fmt.Sprint("a", i))); err != nil {
				t.Fatal(err)
			}
		}
		if err := b.ProduceTx("alice", id, "b", []byte("b0")); err != nil {
			t.Fatal(err)
		}
		if got := visible(t, b, "a"); len(got) != 0 {
			t.Fatalf("uncommitted visible to FETCH: %v", got)
		}
		if _, err := b.Consume("a", 0, 0); !errors.Is(err, ErrNoMessage) {
			t.Fatalf("uncommitted visible to CONSUME: %v", err)
		}
		// Another user can neither commit nor abort it (§11.5).
		if err := b.CommitTx("bob", id); !errors.Is(err, ErrTxnNotOwner) {
			t.Fatalf("bob commits: %v", err)
		}
		if err := b.AbortTx("bob", id); !errors.Is(err, ErrTxnNotOwner) {
			t.Fatalf("bob aborts: %v", err)
		}
		if err := b.ProduceTx("bob", id, "a", []byte("x")); !errors.Is(err, ErrTxnNotOwner) {
			t.Fatalf("bob produces: %v", err)
		}
		if err := b.CommitTx("alice", id); err != nil {
			t.Fatal(err)
		}
		got := visible(t, b, "a")
		slices.Sort(got)
		if !slices.Equal(got, []string{"a0", "a1", "a2"}) || !slices.Equal(visible(t, b, "b"), []string{"b0"}) {
			t.Fatalf("after commit: a=%v b=%v", got, visible(t, b, "b"))
		}
		if m, err := b.Consume("a", 0, 0); err != nil || len(m.Key) != 0 {
			t.Fatalf("consume after commit: %+v %v", m, err)
		}
		if err := b.CommitTx("alice", id); err == nil || err.Error() != "transaction cannot be committed: committed" {
			t.Fatalf("second commit: %v", err)
		}
		if err := b.AbortTx("alice", id); err == nil || err.Error() != "cannot abort committed transaction" {
			t.Fatalf("abort committed: %v", err)
		}
		if err := b.ProduceTx("alice", id, "a", []byte("x")); err == nil || err.Error() != "transaction is not active: committed" {
			t.Fatalf("produce after commit: %v", err)
		}
		if err := b.CommitTx("alice", "nope"); err == nil || err.Error() != "transaction not found: nope" {
			t.Fatalf("unknown: %v", err)
		}
	})
}

func TestTxnAbortTimeoutRestart(t *testing.T) {
	o := testOptions(t, true)
	o.TxnTimeout = 30 * time.Millisecond
	b := openBroker(t, o)
	id, _ := b.BeginTx("")
	if err := b.ProduceTx("", id, "t", []byte("gone")); err != nil {
		t.Fatal(err)
	}
	if err := b.AbortTx("", id); err != nil {
		t.Fatal(err)
	}
	if err := b.AbortTx("", id); err != nil {
		t.Fatalf("abort twice: %v", err)
	}
	if err := b.CommitTx("", id); err == nil || err.Error() != "transaction cannot be committed: aborted" {
		t.Fatalf("commit after abort: %v", err)
	}
	if err := b.ProduceTx("", id, "t", []byte("late")); err == nil || err.Error() != "transaction is not active: aborted" {
		t.Fatalf("produce after abort: %v", err)
	}
	if got := visible(t, b, "t"); got != nil {
		t.Fatalf("abort left %v", got)
	}

	expired, _ := b.BeginTx("")
	if err := b.ProduceTx("", expired, "t", []byte("slow")); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2 * o.TxnTimeout) // past the deadline, whatever the sweeper did
	if err := b.CommitTx("", expired); err == nil || err.Error() != "transaction cannot be committed: aborted" {
		t.Fatalf("commit after timeout: %v", err)
	}

	open, _ := b.BeginTx("")
	if err := b.ProduceTx("", open, "t", []byte("open")); err != nil {
		t.Fatal(err)
	}
	b.Close()
	o.TxnTimeout = 0
	b = openBroker(t, o)
	if err := b.CommitTx("", open); err == nil || err.Error() != "transaction not found: "+open {
		t.Fatalf("open txn after restart: %v", err)
	}
	if got := visible(t, b, "t"); got != nil {
		t.Fatalf("restart left %v", got)
	}
}

var errCrash = errors.New("crash")

// txnFixture prepares a broker with data in place, and a transaction of
// six messages over three topics (one of them created by the commit).
func txnFixture(t *testing.T, o Options) (*Broker, string) {
	b := openBroker(t, o)
	if err := b.CreateTopic("a", 2); err != nil {
		t.Fatal(err)
	}
	mustProduce(t, b, "a", 0, "", "old-a0")
	mustProduce(t, b, "b", -1, "", "old-b")
	id, err := b.BeginTx("alice")
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range [][2]string{{"a", "t1"}, {"b", "t2"}, {"a", "t3"}, {"c", "t4"}, {"a", "t5"}, {"b", "t6"}} {
		if err := b.ProduceTx("alice", id, m[0], []byte(m[1])); err != nil {
			t.Fatal(err)
		}
	}
	return b, id
}

// txnValues returns the transactional values visible in a, b and c.
func txnValues(t *testing.T, b *Broker) []string {
	var got []string
	for _, topic := range []string{"a", "b", "c"} {
		for _, v := range visible(t, b, topic) {
			if strings.HasPrefix(v, "t") {
				got = append(got, v)
			}
		}
	}
	slices.Sort(got)
	return got
}

// TestTxnCommitCrashAtEachWrite crashes a commit before each of its
// writes in turn — the data dir is copied at that instant, as a kill -9
// would leave it — and checks that the broker reopened on the copy shows
// all of the transaction or none of it, each message exactly once.
func TestTxnCommitCrashAtEachWrite(t *testing.T) {
	all := []string{"t1", "t2", "t3", "t4", "t5", "t6"}
	// A clean run lists the steps.
	var steps []string
	o := testOptions(t, true)
	o.Acks = 0 // leader: the commit syncs explicitly
	o.commitStep = func(s string) error { steps = append(steps, s); return nil }
	b, id := txnFixture(t, o)
	if err := b.CommitTx("alice", id); err != nil {
		t.Fatal(err)
	}
	if got := txnValues(t, b); !slices.Equal(got, all) {
		t.Fatalf("clean commit: %v", got)
	}
	want := []string{"intent", "append a/0", "append b/0", "append a/1", "append c/0", "sync", "done"}
	if !slices.Equal(steps, want) {
		t.Fatalf("steps %v, want %v", steps, want)
	}
	for i, crashAt := range steps {
		t.Run(crashAt, func(t *testing.T) {
			o := testOptions(t, i%2 == 0)
			o.Acks = 0
			snap := t.TempDir()
			o.commitStep = func(s string) error {
				if s == crashAt {
					copyDir(t, o.DataDir, snap)
					return errCrash
				}
				return nil
			}
			b, id := txnFixture(t, o)
			if err := b.CommitTx("alice", id); !errors.Is(err, ErrTxnCommitFailed) {
				t.Fatalf("commit with crash: %v", err)
			}
			ro := o
			ro.DataDir, ro.commitStep = snap, nil
			r := openBroker(t, ro)
			got := txnValues(t, r)
			if i == 0 && len(got) != 0 || i > 0 && !slices.Equal(got, all) {
				t.Fatalf("crash before %q: visible %v", crashAt, got)
			}
			if !slices.Equal(visible(t, r, "b")[:1], []string{"old-b"}) {
				t.Fatalf("old data changed: %v", visible(t, r, "b"))
			}
			if ents, _ := os.ReadDir(filepath.Join(snap, txnDir)); len(ents) != 0 {
				t.Fatalf("intent left after recovery: %v", ents)
			}
			// A second restart changes nothing.
			r.Close()
			r = openBroker(t, ro)
			if again := txnValues(t, r); !slices.Equal(again, got) {
				t.Fatalf("second restart: %v, first %v", again, got)
			}
		})
	}
}
