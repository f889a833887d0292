package keys

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/flymq/flymq/internal/auth"
	"github.com/flymq/flymq/internal/broker"
	"github.com/flymq/flymq/internal/crypto"
	"github.com/flymq/flymq/internal/storage"
	"github.com/flymq/flymq/internal/storage/record"
)

const (
	hexA = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"
	hexB = "ffeeddccbbaa99887766554433221100ffeeddccbbaa99887766554433221100"
)

func mustKey(t testing.TB, h string) *crypto.Key {
	t.Helper()
	k, err := crypto.ParseKey(h)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// msg is one produced message and where it went.
type msg struct {
	topic      string
	partition  int32
	offset     uint64
	key, value []byte
}

// fixture is a data dir with topics, committed offsets, users and ACLs.
type fixture struct {
	dir  string
	sent []msg
}

var topicNames = []string{"orders/eu", "audit"}

func openBroker(t testing.TB, dir string, ring *crypto.Keyring) *broker.Broker {
	t.Helper()
	b, err := broker.Open(broker.Options{DataDir: dir, Keyring: ring, SegmentBytes: 4096,
		Acks: storage.AcksNone})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// produce writes n messages per topic, spread over partitions, under ring.
func (fx *fixture) produce(t testing.TB, ring *crypto.Keyring, n int, tag string) {
	t.Helper()
	b := openBroker(t, fx.dir, ring)
	defer func() {
		if err := b.Close(); err != nil {
			t.Fatal(err)
		}
	}()
	for _, topic := range topicNames {
		if err := b.CreateTopic(topic, 2); err != nil {
			t.Fatal(err)
		}
		for i := range n {
			k := []byte(fmt.Sprintf("%s-key-%d", tag, i))
			v := bytes.Repeat([]byte(fmt.Sprintf("%s-value-%d|", tag, i)), 1+i%7)
			if i%5 == 0 {
				k = nil
			}
			res, err := b.Produce(topic, int32(i%2), k, v)
			if err != nil {
				t.Fatal(err)
			}
			fx.sent = append(fx.sent, msg{topic, res.Partition, res.Offset, k, v})
		}
		if err := b.Commit(topic, "g-"+tag, 1, uint64(n/4)); err != nil {
			t.Fatal(err)
		}
	}
	// The advanced stores: a schema and a delayed message far in the
	// future, so that both stay on disk.
	if _, err := b.Schemas().Register("order-"+tag, "json", []byte(`{"type":"object"}`)); err != nil {
		t.Fatal(err)
	}
	if err := b.ProduceDelayed("audit", []byte("later-"+tag), time.Hour); err != nil {
		t.Fatal(err)
	}
}

func newFixture(t testing.TB, ring *crypto.Keyring) *fixture {
	t.Helper()
	fx := &fixture{dir: filepath.Join(t.TempDir(), "data")}
	fx.produce(t, ring, 60, "a")
	// Users and ACLs: the first admin plus an imported old ACL file.
	acl := filepath.Join(t.TempDir(), "acls.json")
	if err := os.WriteFile(acl, []byte(`{"acls":{"orders/eu":{"topic":"orders/eu","public":true}}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	s, err := auth.Open(auth.Options{Enabled: true, Dir: filepath.Join(fx.dir, "auth"), Keyring: ring,
		AdminUsername: "admin", AdminPassword: "correct-horse-battery", ACLFile: acl})
	if err != nil {
		t.Fatal(err)
	}
	_ = s
	return fx
}

// verify reads every message back with ring and compares bytes, offsets
// and committed offsets; it also checks the auth store opens.
func (fx *fixture) verify(t testing.TB, ring *crypto.Keyring) {
	t.Helper()
	b, err := broker.Open(broker.Options{DataDir: fx.dir, Keyring: ring, SegmentBytes: 4096})
	if err != nil {
		t.Fatalf("open broker: %v", err)
	}
	defer b.Close()
	for _, m := range fx.sent {
		got, err := b.Consume(m.topic, m.partition, m.offset)
		if err != nil {
			t.Fatalf("%s/%d@%d: %v", m.topic, m.partition, m.offset, err)
		}
		if !bytes.Equal(got.Key, m.key) || !bytes.Equal(got.Value, m.value) || got.Offset != m.offset {
			t.Fatalf("%s/%d@%d: got key %q value %q", m.topic, m.partition, m.offset, got.Key, got.Value)
		}
	}
	for _, topic := range topicNames {
		if off, err := b.CommittedOffset(topic, "g-a", 1); err != nil || off != 15 {
			t.Fatalf("committed offset %s: %d %v", topic, off, err)
		}
	}
	if _, err := b.Schemas().Get("order-a", 1); err != nil {
		t.Fatalf("schema: %v", err)
	}
	if n := b.PendingDelayed(); n == 0 {
		t.Fatal("no pending delayed message")
	}
	s, err := auth.Open(auth.Options{Enabled: true, Dir: filepath.Join(fx.dir, "auth"), Keyring: ring})
	if err != nil {
		t.Fatalf("open auth: %v", err)
	}
	if _, err := s.GetUser("admin"); err != nil {
		t.Fatalf("admin user: %v", err)
	}
	if a, ok, err := s.GetACL("orders/eu"); err != nil || !ok || !a.Public {
		t.Fatalf("ACL: %+v %v %v", a, ok, err)
	}
}

// segmentKeyIDs reads every segment header of the data dir.
func segmentKeyIDs(t testing.TB, dir string) map[crypto.KeyID]int {
	t.Helper()
	ids := map[crypto.KeyID]int{}
	err := filepath.WalkDir(filepath.Join(dir, topicsDir), func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		if _, ok := storage.ParseSegmentName(d.Name()); !ok {
			return nil
		}
		f, err := os.Open(p)
		if err != nil {
			return err
		}
		defer f.Close()
		hb := make([]byte, record.SegmentHeaderSize)
		if _, err := io.ReadFull(f, hb); err != nil {
			return err
		}
		h, err := record.DecodeSegmentHeader(hb)
		if err != nil {
			return err
		}
		ids[crypto.KeyID(h.KeyID)]++
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return ids
}

func usageOf(st *Status, id crypto.KeyID) Usage {
	for _, u := range st.Keys {
		if u.ID == id {
			return u
		}
	}
	return Usage{ID: id}
}

func TestRotationStatusAndReseal(t *testing.T) {
	a, b := mustKey(t, hexA), mustKey(t, hexB)
	ringA, ringBA, ringB := crypto.NewKeyring(a), crypto.NewKeyring(b, a), crypto.NewKeyring(b)
	fx := newFixture(t, ringA)

	// Rotation: B active, A previous. Nothing is rewritten; new data goes
	// under B.
	before := segmentKeyIDs(t, fx.dir)
	if before[a.ID()] < 4 || before[b.ID()] != 0 {
		t.Fatalf("segments before rotation: %v", before)
	}
	fx.produce(t, ringBA, 30, "b")
	after := segmentKeyIDs(t, fx.dir)
	if after[a.ID()] != before[a.ID()] || after[b.ID()] == 0 {
		t.Fatalf("segments after rotation: %v (before %v)", after, before)
	}
	fx.verify(t, ringBA)

	// Without A the broker refuses to open, naming A's id.
	if _, err := broker.Open(broker.Options{DataDir: fx.dir, Keyring: ringB}); err == nil ||
		!strings.Contains(err.Error(), a.ID().String()) || !errors.Is(err, crypto.ErrUnknownKey) {
		t.Fatalf("open without A: %v", err)
	}

	st, err := GetStatus(fx.dir, ringBA)
	if err != nil {
		t.Fatal(err)
	}
	ua, ub := usageOf(st, a.ID()), usageOf(st, b.ID())
	if !ub.Active || !ua.InRing || ua.Active || ua.Segments != after[a.ID()] ||
		ub.Segments != after[b.ID()] || ua.Stores == 0 || len(st.Missing) != 0 || st.KeycheckErr != nil {
		t.Fatalf("status with A and B: %+v", st)
	}
	// Given only B, A's data is reported missing; nothing was written.
	stB, err := GetStatus(fx.dir, ringB)
	if err != nil {
		t.Fatal(err)
	}
	if len(stB.Missing) != 1 || stB.Missing[0] != a.ID() {
		t.Fatalf("missing = %v, want [%v]", stB.Missing, a.ID())
	}

	res, err := Reseal(context.Background(), Options{DataDir: fx.dir, Keyring: ringBA})
	if err != nil {
		t.Fatalf("reseal: %v (%+v)", err, res)
	}
	if res.Segments != after[a.ID()] || res.Stores == 0 {
		t.Fatalf("result %+v", res)
	}
	ids := segmentKeyIDs(t, fx.dir)
	if len(ids) != 1 || ids[b.ID()] != after[a.ID()]+after[b.ID()] {
		t.Fatalf("segment key ids after reseal: %v", ids)
	}
	st, err = GetStatus(fx.dir, ringB)
	if err != nil {
		t.Fatal(err)
	}
	if ua := usageOf(st, a.ID()); ua.Used() || len(st.Missing) != 0 || len(st.Problems) != 0 ||
		len(st.Retired) != 1 || st.Retired[0] != a.ID() {
		t.Fatalf("status after reseal: %+v", st)
	}
	assertNothingUnder(t, fx.dir, a.ID())
	fx.verify(t, ringB)

	// A second run finds nothing to do.
	res, err = Reseal(context.Background(), Options{DataDir: fx.dir, Keyring: ringB})
	if err != nil || res.Segments != 0 || res.Stores != 0 {
		t.Fatalf("second run: %+v %v", res, err)
	}
}

// assertNothingUnder checks every sealed file's header.
func assertNothingUnder(t testing.TB, dir string, id crypto.KeyID) {
	t.Helper()
	inv, err := Scan(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range inv.Files {
		if _, ok := f.Keys[id]; ok {
			t.Errorf("%s is still sealed under %v", f.Path, id)
		}
	}
	if len(inv.Problems) > 0 {
		t.Errorf("problems: %v", inv.Problems)
	}
}

// TestResealCrashAtEveryStep stops the run at each step of re-sealing one
// segment, as a kill -9 would: every message stays readable with both
// keys, and a second run finishes the job.
func TestResealCrashAtEveryStep(t *testing.T) {
	a, b := mustKey(t, hexA), mustKey(t, hexB)
	ringA, ringBA, ringB := crypto.NewKeyring(a), crypto.NewKeyring(b, a), crypto.NewKeyring(b)
	steps := append(append([]Step{}, SegmentSteps...), StepStoreWritten)
	// One fixture, copied per step: bcrypting the admin password once
	// keeps the test quick under -race.
	base := newFixture(t, ringA)
	for _, step := range steps {
		t.Run(string(step), func(t *testing.T) {
			fx := &fixture{dir: filepath.Join(t.TempDir(), "data"), sent: base.sent}
			copyTree(t, base.dir, fx.dir)
			var hit string
			_, err := Reseal(context.Background(), Options{DataDir: fx.dir, Keyring: ringBA,
				Failpoint: func(s Step, path string) bool {
					if s == step && hit == "" {
						hit = path
						return true
					}
					return false
				}})
			if !errors.Is(err, ErrFailpoint) || hit == "" {
				t.Fatalf("run with failpoint: %v (hit %q)", err, hit)
			}
			fx.verify(t, ringBA)
			if _, err := Reseal(context.Background(), Options{DataDir: fx.dir, Keyring: ringBA}); err != nil {
				t.Fatalf("second run: %v", err)
			}
			assertNothingUnder(t, fx.dir, a.ID())
			fx.verify(t, ringB)
		})
	}
}

func TestResealRefusesWhileLocked(t *testing.T) {
	a := mustKey(t, hexA)
	dir := t.TempDir()
	l, err := storage.LockDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Unlock()
	if _, err := Reseal(context.Background(), Options{DataDir: dir, Keyring: crypto.NewKeyring(a)}); !errors.Is(err, storage.ErrLocked) {
		t.Fatalf("reseal on a locked dir: %v", err)
	}
	if _, err := Reseal(context.Background(), Options{DataDir: dir}); !errors.Is(err, ErrNoKeyring) {
		t.Fatalf("reseal without key: %v", err)
	}
}

func TestResealRefusesWrongKey(t *testing.T) {
	a, b := mustKey(t, hexA), mustKey(t, hexB)
	fx := newFixture(t, crypto.NewKeyring(a))
	_, err := Reseal(context.Background(), Options{DataDir: fx.dir, Keyring: crypto.NewKeyring(b)})
	if !errors.Is(err, crypto.ErrWrongKey) || !strings.Contains(err.Error(), a.ID().String()) {
		t.Fatalf("reseal with only B: %v", err)
	}
	fx.verify(t, crypto.NewKeyring(a))
}

// TestResealSkipsDamagedSegment: a segment whose record fails to open is
// left as it is, named, and the rest is done.
func TestResealSkipsDamagedSegment(t *testing.T) {
	a, b := mustKey(t, hexA), mustKey(t, hexB)
	fx := newFixture(t, crypto.NewKeyring(a))
	var victim string
	_ = filepath.WalkDir(filepath.Join(fx.dir, topicsDir), func(p string, d os.DirEntry, err error) error {
		if _, ok := storage.ParseSegmentName(d.Name()); ok && victim == "" {
			victim = p
		}
		return nil
	})
	data, err := os.ReadFile(victim)
	if err != nil {
		t.Fatal(err)
	}
	// Flip a ciphertext byte of the first frame and fix its CRC: the
	// frame is intact, the tag fails.
	body := data[record.SegmentHeaderSize+record.FrameHeaderSize:]
	n := record.PeekSize(data[record.SegmentHeaderSize:]) - record.FrameHeaderSize
	body[record.BodyHeaderSize] ^= 1
	copy(data[record.SegmentHeaderSize+4:], be32(record.Checksum(body[:n])))
	if err := os.WriteFile(victim, data, 0o600); err != nil {
		t.Fatal(err)
	}
	res, err := Reseal(context.Background(), Options{DataDir: fx.dir, Keyring: crypto.NewKeyring(b, a)})
	if !errors.Is(err, ErrIncomplete) || len(res.Problems) != 1 ||
		!strings.Contains(res.Problems[0].Err.Error(), a.ID().String()) || res.Segments == 0 {
		t.Fatalf("reseal: %v %+v", err, res)
	}
	after, _ := os.ReadFile(victim)
	if !bytes.Equal(after, data) {
		t.Fatal("damaged segment was changed")
	}
}

func be32(v uint32) []byte { return []byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)} }

func copyTree(t testing.TB, from, to string) {
	t.Helper()
	err := filepath.WalkDir(from, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(from, p)
		dst := filepath.Join(to, rel)
		if d.IsDir() {
			return os.MkdirAll(dst, 0o700)
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(dst, data, 0o600)
	})
	if err != nil {
		t.Fatal(err)
	}
}
