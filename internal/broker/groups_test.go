package broker

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/flymq/flymq/internal/storage"
)

func groupString(g Group) string {
	return fmt.Sprintf("%s:%s m%d %v %v", g.Topic, g.Name, g.Members, g.MemberIDs, g.Offsets)
}

func TestSubscribeModes(t *testing.T) {
	forEachMode(t, func(t *testing.T, o Options) {
		b := openBroker(t, o)
		if err := b.CreateTopic("orders", 3); err != nil {
			t.Fatal(err)
		}
		mustProduce(t, b, "orders", 1, "", "a")
		mustProduce(t, b, "orders", 1, "", "b")
		cases := []struct {
			part int32
			mode string
			want uint64
		}{
			{0, "earliest", 0}, {0, "latest", 0}, {0, "", 0}, {0, "commit", 0}, // empty partition: LEO 0
			{1, "earliest", 0}, {1, "latest", 2}, {1, "", 2}, {1, "commit", 0},
		}
		for _, c := range cases {
			got, err := b.Subscribe("orders", "", c.part, c.mode, "127.0.0.1:1")
			if err != nil || got != c.want {
				t.Errorf("Subscribe(p%d, %q) = %d, %v; want %d", c.part, c.mode, got, err, c.want)
			}
		}
		if len(b.Groups()) != 0 {
			t.Fatal("empty group id registered a group")
		}
		if err := b.Commit("orders", "g", 1, 1); err != nil {
			t.Fatal(err)
		}
		if got, err := b.Subscribe("orders", "g", 1, "commit", "m1"); err != nil || got != 1 {
			t.Fatalf("commit mode = %d, %v", got, err)
		}
		// Committed value is returned verbatim, even beyond LEO.
		if err := b.Commit("orders", "g", 2, 99); err != nil {
			t.Fatal(err)
		}
		if got, _ := b.Subscribe("orders", "g", 2, "commit", "m1"); got != 99 {
			t.Fatalf("commit mode p2 = %d", got)
		}
		// Errors, in check order; failed subscribes register nothing.
		_, err := b.Subscribe("nope", "g2", 0, "bogus", "m1")
		if !errors.Is(err, ErrTopicNotFound) || err.Error() != "topic not found: nope" {
			t.Fatalf("missing topic: %v", err)
		}
		for _, p := range []int32{3, -1} {
			_, err = b.Subscribe("orders", "g2", p, "bogus", "m1")
			if !errors.Is(err, ErrPartitionNotFound) || err.Error() != fmt.Sprintf("partition %d not found", p) {
				t.Fatalf("partition %d: %v", p, err)
			}
		}
		_, err = b.Subscribe("orders", "g2", 0, "Earliest", "m1")
		var me *ModeError
		if !errors.As(err, &me) || err.Error() != "unknown subscribe mode: Earliest" || me.Kind != "subscribe" {
			t.Fatalf("bad mode: %v", err)
		}
		if gs := b.Groups(); len(gs) != 1 || groupString(gs[0]) != "orders:g m1 [m1] [{1 1} {2 99}]" {
			t.Fatalf("Groups() = %+v", gs)
		}
	})
}

func TestGroupOps(t *testing.T) {
	forEachMode(t, func(t *testing.T, o Options) {
		b := openBroker(t, o)
		if err := b.CreateTopic("t", 2); err != nil {
			t.Fatal(err)
		}
		for range 5 {
			mustProduce(t, b, "t", 0, "", "x")
		}
		// Unknown group.
		var gnf *GroupNotFoundError
		if _, err := b.CommittedOffset("t", "g", 0); !errors.As(err, &gnf) ||
			err.Error() != "consumer group not found: t:g" || !errors.Is(err, ErrGroupNotFound) {
			t.Fatalf("CommittedOffset unknown: %v", err)
		}
		if _, err := b.Lag("nope", "g", 0); err == nil || err.Error() != "consumer group not found: nope:g" {
			t.Fatalf("Lag unknown group first: %v", err)
		}
		if _, err := b.DescribeGroup("", "g"); err == nil || err.Error() != "consumer group not found: :g" {
			t.Fatalf("Describe empty topic: %v", err)
		}
		if err := b.DeleteGroup("t", "g"); !errors.Is(err, ErrGroupNotFound) {
			t.Fatalf("Delete unknown: %v", err)
		}
		// Subscribe creates; members are peer addresses, a set.
		for _, m := range []string{"10.0.0.1:5", "10.0.0.2:6", "10.0.0.1:5"} {
			if _, err := b.Subscribe("t", "g", 0, "earliest", m); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := b.Subscribe("t", "g", 1, "latest", "10.0.0.2:6"); err != nil {
			t.Fatal(err)
		}
		if off, err := b.CommittedOffset("t", "g", 0); err != nil || off != 0 {
			t.Fatalf("nothing committed: %d, %v", off, err)
		}
		if off, err := b.CommittedOffset("t", "g", 77); err != nil || off != 0 {
			t.Fatalf("nonexistent partition: %d, %v", off, err)
		}
		// Commit needs no topic; the same group id on two topics is two groups.
		if err := b.Commit("ghost", "g", 3, 12); err != nil {
			t.Fatal(err)
		}
		if err := b.Commit("t", "g", 0, 2); err != nil {
			t.Fatal(err)
		}
		if off, _ := b.CommittedOffset("t", "g", 0); off != 2 {
			t.Fatalf("committed %d", off)
		}
		// Lag.
		if l, err := b.Lag("t", "g", 0); err != nil || l != (Lag{Committed: 2, Latest: 5, Lag: 3}) {
			t.Fatalf("Lag = %+v, %v", l, err)
		}
		if l, err := b.Lag("t", "g", 1); err != nil || l != (Lag{}) {
			t.Fatalf("Lag empty partition = %+v, %v", l, err)
		}
		if err := b.Commit("t", "g", 0, 9); err != nil {
			t.Fatal(err)
		}
		if l, _ := b.Lag("t", "g", 0); l != (Lag{Committed: 9, Latest: 5, Lag: 0}) {
			t.Fatalf("Lag committed > latest = %+v", l)
		}
		if _, err := b.Lag("ghost", "g", 0); !errors.Is(err, ErrTopicNotFound) || err.Error() != "topic not found: ghost" {
			t.Fatalf("Lag missing topic: %v", err)
		}
		for _, p := range []int32{2, -1} {
			if _, err := b.Lag("t", "g", p); !errors.Is(err, ErrPartitionNotFound) {
				t.Fatalf("Lag partition %d: %v", p, err)
			}
		}
		// ResetOffset.
		if err := b.ResetOffset("t", "g", 0, "earliest", 0); err != nil {
			t.Fatal(err)
		}
		if off, _ := b.CommittedOffset("t", "g", 0); off != 0 {
			t.Fatalf("reset earliest -> %d", off)
		}
		if err := b.ResetOffset("t", "g", 0, "latest", 0); err != nil {
			t.Fatal(err)
		}
		if off, _ := b.CommittedOffset("t", "g", 0); off != 5 {
			t.Fatalf("reset latest -> %d", off)
		}
		if err := b.ResetOffset("t", "new", 1, "latest", 0); err != nil {
			t.Fatal(err)
		}
		if off, err := b.CommittedOffset("t", "new", 1); err != nil || off != 0 {
			t.Fatalf("reset latest on empty partition -> %d, %v", off, err)
		}
		if err := b.ResetOffset("nowhere", "g", 4, "offset", 1234); err != nil {
			t.Fatal(err)
		}
		if off, _ := b.CommittedOffset("nowhere", "g", 4); off != 1234 {
			t.Fatalf("reset offset -> %d", off)
		}
		if err := b.ResetOffset("nope", "g", 0, "earliest", 0); !errors.Is(err, ErrTopicNotFound) {
			t.Fatalf("reset missing topic: %v", err)
		}
		for _, p := range []int32{2, -1} {
			err := b.ResetOffset("t", "g", p, "latest", 0)
			if !errors.Is(err, ErrPartitionNotFound) || err.Error() != fmt.Sprintf("partition %d not found", p) {
				t.Fatalf("reset partition %d: %v", p, err)
			}
		}
		if err := b.ResetOffset("t", "g", 0, "commit", 0); err == nil || err.Error() != "unknown reset mode: commit" {
			t.Fatalf("reset bad mode: %v", err)
		}
		// Listing and describing.
		want := []string{
			"ghost:g m0 [] [{3 12}]",
			"nowhere:g m0 [] [{4 1234}]",
			"t:g m2 [10.0.0.1:5 10.0.0.2:6] [{0 5}]",
			"t:new m0 [] [{1 0}]",
		}
		gs := b.Groups()
		if len(gs) != len(want) {
			t.Fatalf("Groups() = %+v", gs)
		}
		for i := range want {
			if groupString(gs[i]) != want[i] {
				t.Errorf("group %d = %s, want %s", i, groupString(gs[i]), want[i])
			}
		}
		if d, err := b.DescribeGroup("t", "g"); err != nil || groupString(d) != want[2] {
			t.Fatalf("Describe = %s, %v", groupString(d), err)
		}
		b.Unsubscribe("t", "g", "10.0.0.1:5")
		b.Unsubscribe("t", "g", "10.0.0.9:1") // not a member: no-op
		b.Unsubscribe("t", "zz", "10.0.0.1:5")
		if d, _ := b.DescribeGroup("t", "g"); d.Members != 1 || d.MemberIDs[0] != "10.0.0.2:6" {
			t.Fatalf("after leave: %s", groupString(d))
		}
		// Delete topic keeps groups; DeleteGroup removes them.
		if err := b.DeleteTopic("t"); err != nil {
			t.Fatal(err)
		}
		if _, err := b.DescribeGroup("t", "g"); err != nil {
			t.Fatalf("group gone with topic: %v", err)
		}
		if err := b.DeleteGroup("t", "g"); err != nil {
			t.Fatal(err)
		}
		if _, err := b.CommittedOffset("t", "g", 0); !errors.Is(err, ErrGroupNotFound) {
			t.Fatalf("after delete: %v", err)
		}
		if len(b.Groups()) != 3 {
			t.Fatalf("Groups after delete = %d", len(b.Groups()))
		}
	})
}

func TestCommittedOffsetsSurviveRestart(t *testing.T) {
	forEachMode(t, func(t *testing.T, o Options) {
		b := openBroker(t, o)
		if _, err := b.Subscribe("x", "g", 0, "", "m"); !errors.Is(err, ErrTopicNotFound) {
			t.Fatal(err)
		}
		if err := b.CreateTopic("x", 1); err != nil {
			t.Fatal(err)
		}
		if _, err := b.Subscribe("x", "only-subscribed", 0, "", "m"); err != nil {
			t.Fatal(err)
		}
		for i := range 10 {
			if err := b.Commit("x", "g", int32(i%3), uint64(i)); err != nil {
				t.Fatal(err)
			}
		}
		if err := b.Commit("x", "dead", 0, 1); err != nil {
			t.Fatal(err)
		}
		if err := b.DeleteGroup("x", "dead"); err != nil {
			t.Fatal(err)
		}
		before := b.Groups()
		if err := b.Close(); err != nil {
			t.Fatal(err)
		}
		if err := b.Commit("x", "g", 0, 1); !errors.Is(err, ErrClosed) {
			t.Fatalf("commit after close: %v", err)
		}
		b2 := openBroker(t, o)
		after := b2.Groups()
		if len(after) != 2 || fmt.Sprint(before[0].Offsets) != fmt.Sprint(after[0].Offsets) ||
			groupString(after[0]) != "x:g m0 [] [{0 9} {1 7} {2 8}]" ||
			groupString(after[1]) != "x:only-subscribed m0 [] []" {
			t.Fatalf("after restart: %+v", after)
		}
	})
}

// TestCommitCrashAcksAll simulates a crash: the data dir is copied while
// the broker runs (no Close, no final snapshot) and the copy is opened.
func TestCommitCrashAcksAll(t *testing.T) {
	forEachMode(t, func(t *testing.T, o Options) {
		o.Acks = storage.AcksAll
		b := openBroker(t, o)
		var wg sync.WaitGroup
		for w := range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range 50 {
					if err := b.Commit("t", fmt.Sprint("g", w), int32(i%4), uint64(i+1)); err != nil {
						t.Error(err)
						return
					}
				}
			}()
		}
		wg.Wait()
		if err := b.DeleteGroup("t", "g7"); err != nil {
			t.Fatal(err)
		}
		crash := t.TempDir()
		copyDir(t, o.DataDir, crash)
		o2 := o
		o2.DataDir = crash
		b2 := openBroker(t, o2)
		gs := b2.Groups()
		if len(gs) != 7 {
			t.Fatalf("groups after crash: %d", len(gs))
		}
		for _, g := range gs {
			if fmt.Sprint(g.Offsets) != "[{0 49} {1 50} {2 47} {3 48}]" {
				t.Fatalf("%s", groupString(g))
			}
		}
	})
}

func TestGroupLogTornTailAndCorruption(t *testing.T) {
	forEachMode(t, func(t *testing.T, o Options) {
		b := openBroker(t, o)
		for i := range 3 {
			if err := b.Commit("t", "g", 0, uint64(i+1)); err != nil {
				t.Fatal(err)
			}
		}
		crash := t.TempDir()
		copyDir(t, o.DataDir, crash)
		logPath := filepath.Join(crash, groupsDir, groupLogFile)
		img, err := os.ReadFile(logPath)
		if err != nil {
			t.Fatal(err)
		}
		frame := len(img) / 3
		if frame*3 != len(img) {
			t.Fatalf("frames of unequal size: %d bytes", len(img))
		}
		damage := []struct {
			name    string
			mutate  func([]byte) []byte
			want    uint64 // committed offset after recovery
			wantErr bool
		}{
			{"intact", func(b []byte) []byte { return b }, 3, false},
			{"short header", func(b []byte) []byte { return b[:2*frame+5] }, 2, false},
			{"short body", func(b []byte) []byte { return b[:3*frame-1] }, 2, false},
			{"bad crc last", func(b []byte) []byte { b[3*frame-1] ^= 1; return b }, 2, false},
			{"zero tail", func(b []byte) []byte { return append(b, make([]byte, 100)...) }, 3, false},
			{"bad crc middle", func(b []byte) []byte { b[frame+20] ^= 1; return b }, 0, true},
			{"garbage length middle", func(b []byte) []byte { b[frame] = 0xff; return b }, 0, true},
		}
		for _, d := range damage {
			t.Run(d.name, func(t *testing.T) {
				dir := t.TempDir()
				copyDir(t, crash, dir)
				p := filepath.Join(dir, groupsDir, groupLogFile)
				if err := os.WriteFile(p, d.mutate(append([]byte(nil), img...)), 0o600); err != nil {
					t.Fatal(err)
				}
				o2 := o
				o2.DataDir = dir
				b2, err := Open(o2)
				if d.wantErr {
					if err == nil {
						b2.Close()
						t.Fatal("corruption in the middle accepted")
					}
					return
				}
				if err != nil {
					t.Fatal(err)
				}
				defer b2.Close()
				if off, err := b2.CommittedOffset("t", "g", 0); err != nil || off != d.want {
					t.Fatalf("offset %d, %v; want %d", off, err, d.want)
				}
				// The recovered store keeps working.
				if err := b2.Commit("t", "g", 0, 42); err != nil {
					t.Fatal(err)
				}
			})
		}
	})
}

func TestGroupSnapshotCompaction(t *testing.T) {
	o := testOptions(t, true)
	o.Acks = storage.AcksNone
	b := openBroker(t, o)
	for i := range snapshotLogRecords + 10 {
		if err := b.Commit("t", "g", int32(i%5), uint64(i)); err != nil {
			t.Fatal(err)
		}
	}
	st, err := os.Stat(filepath.Join(o.DataDir, groupsDir, groupLogFile))
	if err != nil || st.Size() >= snapshotLogBytes || st.Size() == 0 {
		t.Fatalf("log not compacted: %v %v", st.Size(), err)
	}
	crash := t.TempDir()
	copyDir(t, o.DataDir, crash)
	o.DataDir = crash
	b2 := openBroker(t, o)
	g, err := b2.DescribeGroup("t", "g")
	n := snapshotLogRecords + 10
	if err != nil || len(g.Offsets) != 5 || g.Offsets[0].Offset != uint64(n-5) || g.Offsets[4].Offset != uint64(n-1) {
		t.Fatalf("%s %v", groupString(g), err)
	}
}
