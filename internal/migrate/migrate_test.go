package migrate

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/flymq/flymq/internal/auth"
	"github.com/flymq/flymq/internal/broker"
	"github.com/flymq/flymq/internal/crypto"
)

const hexA = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"

// oldRec is one record as an old client produced it.
type oldRec struct{ key, value []byte }

// payload is what the old server stores: u32 keylen | key | u32 vallen | value.
func (r oldRec) payload() []byte {
	b := binary.BigEndian.AppendUint32(nil, uint32(len(r.key)))
	b = append(b, r.key...)
	b = binary.BigEndian.AppendUint32(b, uint32(len(r.value)))
	return append(b, r.value...)
}

// oldSeg builds one <base>.store/.index pair.
type oldSeg struct {
	base     uint64
	store    []byte
	index    []byte
	prealloc bool // index as a running/crashed server leaves it
}

func (s *oldSeg) add(payload []byte) {
	i := uint32(len(s.index) / 12)
	s.index = binary.BigEndian.AppendUint32(s.index, i)
	s.index = binary.BigEndian.AppendUint64(s.index, uint64(len(s.store)))
	s.store = binary.BigEndian.AppendUint64(s.store, uint64(len(payload)))
	s.store = append(s.store, payload...)
}

func (s *oldSeg) write(t testing.TB, dir string) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	idx := s.index
	if s.prealloc {
		idx = append(append([]byte{}, idx...), make([]byte, 1<<20-len(idx))...)
	}
	name := fmt.Sprint(s.base)
	if err := os.WriteFile(filepath.Join(dir, name+".store"), s.store, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, name+".index"), idx, 0o644); err != nil {
		t.Fatal(err)
	}
}

func writeJSON(t testing.TB, path, text string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
}

// want is what must come across: per topic/partition, offset -> record;
// a nil entry is a damaged record that becomes an empty placeholder.
type want map[string]map[int32][]*oldRec

// buildOldDir writes an old v1.26.11 data dir with every pitfall of
// old-data-dir.md the migration has to handle.
func buildOldDir(t testing.TB) (string, want) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "old")
	w := want{}
	put := func(topic string, p int32, r *oldRec) {
		if w[topic] == nil {
			w[topic] = map[int32][]*oldRec{}
		}
		w[topic][p] = append(w[topic][p], r)
	}
	// Topic "orders", 3 partitions. Partition 1 is the hex of the spec:
	// unkeyed "hello-1", then "user-123" -> {"id":1}, in segments 0 and 3
	// plus an empty newest pair (rotation overshoot).
	recs := []oldRec{
		{nil, []byte("hello-1")},
		{[]byte("user-123"), []byte(`{"id":1}`)},
		{[]byte("k2"), bytes.Repeat([]byte("secret-order-payload-"), 100)},
		{[]byte("k3"), []byte{}},
		{nil, []byte("pa")}, // payload < 8 bytes is written raw below
		{[]byte("k5"), []byte("v5")},
	}
	s0, s3 := &oldSeg{base: 0}, &oldSeg{base: 3, prealloc: true}
	for i, r := range recs {
		seg := s0
		if i >= 3 {
			seg = s3
		}
		if i == 4 {
			// A raw 5-byte payload: upstream treats it as an unkeyed value.
			seg.add([]byte("tiny!"))
			put("orders", 1, &oldRec{nil, []byte("tiny!")})
			continue
		}
		seg.add(r.payload())
		rr := r
		put("orders", 1, &rr)
	}
	if !bytes.Equal(s0.store[:0x17], append(hexBytes(t, "000000000000000f0000000000000007"), "hello-1"...)) ||
		!bytes.Equal(s0.index[12:24], hexBytes(t, "000000010000000000000017")) {
		t.Fatal("builder does not match the spec's hex")
	}
	p1 := filepath.Join(dir, "orders", "1")
	s0.write(t, p1)
	s3.write(t, p1)
	(&oldSeg{base: 6}).write(t, p1)
	// Partition 0: lengths that do not add up -> whole payload is the value.
	s := &oldSeg{base: 0}
	odd := append(binary.BigEndian.AppendUint32(nil, 3), "abcdefgh-not-a-value-length"...)
	s.add(odd)
	put("orders", 0, &oldRec{nil, odd})
	for i := range 5 {
		r := oldRec{[]byte(fmt.Sprintf("p0-key-%d", i)), []byte(fmt.Sprintf("p0-secret-value-%d", i))}
		s.add(r.payload())
		put("orders", 0, &r)
	}
	s.write(t, filepath.Join(dir, "orders", "0"))
	// Partition 2: empty (only the empty 0 pair).
	(&oldSeg{base: 0}).write(t, filepath.Join(dir, "orders", "2"))
	w["orders"][2] = nil

	// Topic "my_topic": a torn tail (last frame cut short by a crash), an
	// index entry past the end of the store, and a torn frame in the
	// middle that the old server appended behind after restarting.
	s = &oldSeg{base: 0, prealloc: true}
	for i := range 3 {
		r := oldRec{[]byte(fmt.Sprintf("m-%d", i)), []byte(fmt.Sprintf("first-%d", i))}
		s.add(r.payload())
		put("my_topic", 0, &r)
	}
	// Offset 3: torn mid-frame ("second-" and then nothing), then the
	// restarted server appended offset 4 right behind the torn bytes.
	torn := oldRec{[]byte("m-3"), []byte("second-xyz")}.payload()
	s.add(torn)
	s.store = s.store[:len(s.store)-3]
	put("my_topic", 0, nil)
	for i := 4; i < 6; i++ {
		r := oldRec{[]byte(fmt.Sprintf("m-%d", i)), []byte(fmt.Sprintf("third-%d", i))}
		s.add(r.payload())
		put("my_topic", 0, &r)
	}
	// Offset 6: the torn tail, cut in its value.
	s.add(oldRec{[]byte("m-6"), []byte("never-acknowledged-tail")}.payload())
	s.store = s.store[:len(s.store)-10]
	// Offset 7: in the index, but its bytes never reached the store.
	s.add(oldRec{[]byte("m-7"), []byte("lost")}.payload())
	s.store = s.store[:len(s.store)-len(oldRec{[]byte("m-7"), []byte("lost")}.payload())-8]
	s.write(t, filepath.Join(dir, "my_topic", "0"))

	// Consumer offsets: '_' in topic and group, a partial file, a commit
	// for a partition with a two-digit number.
	writeJSON(t, filepath.Join(dir, "__consumer_offsets", "orders_billing.json"),
		"{\n  \"group_id\": \"billing\",\n  \"topic\": \"orders\",\n  \"offsets\": {\n    \"0\": 4,\n    \"1\": 6\n  }\n}")
	writeJSON(t, filepath.Join(dir, "__consumer_offsets", "my_topic_g_1.json"),
		`{"group_id": "g_1", "topic": "my_topic", "offsets": {"0": 3}}`)
	writeJSON(t, filepath.Join(dir, "__consumer_offsets", "orders_broken.json"), `{"group_id": "bro`)
	writeJSON(t, filepath.Join(dir, "schemas", "orders-v1.json"), `{"id":"orders-v1","topic":"orders"}`)
	writeJSON(t, filepath.Join(dir, "raft_state.json"), `{}`)
	marker := make([]byte, 53)
	if err := os.WriteFile(filepath.Join(dir, oldMarker), marker, 0o600); err != nil {
		t.Fatal(err)
	}
	return dir, w
}

func hexBytes(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// hashTree returns path -> sha256 of every file, and modes, under dir.
func hashTree(t testing.TB, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		if d.IsDir() {
			out[rel] = "dir " + info.Mode().String()
			return nil
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(data)
		out[rel] = info.Mode().String() + " " + hex.EncodeToString(sum[:]) + " " + info.ModTime().String()
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestReadOldDirPitfalls(t *testing.T) {
	dir, w := buildOldDir(t)
	src, err := ReadOldDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if !src.Encrypted || len(src.Topics) != 2 || len(src.Groups) != 2 {
		t.Fatalf("source: %+v", src)
	}
	for _, topic := range src.Topics {
		for _, p := range topic.Partitions {
			if got, want := p.Next, uint64(len(w[topic.Name][p.ID])); got != want {
				t.Errorf("%s/%d: next %d, want %d", topic.Name, p.ID, got, want)
			}
		}
	}
	notes := strings.Join(src.Notes, "\n")
	for _, s := range []string{"my_topic/0: torn tail skipped: offsets 6",
		"my_topic/0: damaged records at offsets 3 ", "1 index entries point past the end",
		"orders_broken.json does not parse", "schemas/ (1 files) is not migrated"} {
		if !strings.Contains(notes, s) {
			t.Errorf("notes lack %q:\n%s", s, notes)
		}
	}
	if r, old := LooksOld(dir); !old || r != "it has .encryption_marker" {
		t.Fatalf("LooksOld = %q %v", r, old)
	}
}

func TestLooksOld(t *testing.T) {
	d := t.TempDir()
	if _, old := LooksOld(d); old {
		t.Fatal("empty dir looks old")
	}
	(&oldSeg{base: 0}).write(t, filepath.Join(d, "events", "0"))
	if r, old := LooksOld(d); !old || r != "it has events/0/0.store" {
		t.Fatalf("store dir: %q %v", r, old)
	}
	d2 := t.TempDir()
	writeJSON(t, filepath.Join(d2, "__consumer_offsets", "a_b.json"), "{}")
	if r, old := LooksOld(d2); !old || !strings.Contains(r, "__consumer_offsets") {
		t.Fatalf("offsets dir: %q %v", r, old)
	}
	// Our own layout never looks old.
	ours := filepath.Join(t.TempDir(), "data")
	b, err := broker.Open(broker.Options{DataDir: ours, Keyring: crypto.NewKeyring(mustKey(t))})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.Produce("events", 0, nil, []byte("x")); err != nil {
		t.Fatal(err)
	}
	b.Close()
	if r, old := LooksOld(ours); old {
		t.Fatalf("our data dir looks old: %s", r)
	}
}

func mustKey(t testing.TB) *crypto.Key {
	t.Helper()
	k, err := crypto.ParseKey(hexA)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestMigrate(t *testing.T) {
	dir, w := buildOldDir(t)
	users := filepath.Join(t.TempDir(), "users.json")
	writeJSON(t, users, `{"users":{"alice":{"username":"alice","password_hash":"$2a$10$abcdefghijklmnopqrstuu5Jn7vUXg1CHdQz3oXhKjP0bkeVqf6e2","roles":["producer"],"enabled":true}}}`)
	acls := filepath.Join(t.TempDir(), "acls.json")
	writeJSON(t, acls, `{"acls":{"orders":{"topic":"orders","public":false,"allowed_users":["alice"]}},"default_public":true}`)
	before := hashTree(t, dir)
	ring := crypto.NewKeyring(mustKey(t))
	data := filepath.Join(t.TempDir(), "data")
	var last Progress
	res, err := Migrate(context.Background(), Options{From: dir, DataDir: data, Keyring: ring,
		SegmentBytes: 4096, UserFile: users, ACLFile: acls, Progress: func(p Progress) { last = p }})
	if err != nil {
		t.Fatalf("migrate: %v", err)
	}
	if res.Topics != 2 || res.Partitions != 4 || res.Placeholders != 1 || res.Groups != 2 ||
		res.Commits != 3 || !res.Users || !res.ACLs {
		t.Fatalf("result %+v", res)
	}
	if last.Partitions != 4 || last.TotalPartitions != 4 || last.Records != res.Records+res.Placeholders {
		t.Fatalf("last progress %+v", last)
	}
	if after := hashTree(t, dir); !equalMaps(before, after) {
		t.Fatalf("old dir changed:\nbefore %v\nafter  %v", before, after)
	}

	b, err := broker.Open(broker.Options{DataDir: data, Keyring: ring})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	var total int64
	for topic, parts := range w {
		n, err := b.PartitionCount(topic)
		if err != nil || int(n) != map[string]int{"orders": 3, "my_topic": 1}[topic] {
			t.Fatalf("%s: partitions %d %v", topic, n, err)
		}
		for p := range n {
			recs := parts[p]
			lowest, next, err := b.Offsets(topic, p)
			if err != nil || lowest != 0 || next != uint64(len(recs)) {
				t.Fatalf("%s/%d: offsets %d..%d %v, want 0..%d", topic, p, lowest, next, err, len(recs))
			}
			for off, r := range recs {
				m, err := b.Consume(topic, p, uint64(off))
				if err != nil {
					t.Fatalf("%s/%d@%d: %v", topic, p, off, err)
				}
				wk, wv := []byte(nil), []byte(nil)
				if r != nil {
					wk, wv = r.key, r.value
				}
				if !bytes.Equal(m.Key, wk) || !bytes.Equal(m.Value, wv) {
					t.Fatalf("%s/%d@%d: got %q=%q, want %q=%q", topic, p, off, m.Key, m.Value, wk, wv)
				}
				total++
			}
		}
	}
	if total != res.Records+res.Placeholders {
		t.Fatalf("read %d records, migration wrote %d", total, res.Records+res.Placeholders)
	}
	for _, c := range []struct {
		topic, group string
		p            int32
		off          uint64
	}{{"orders", "billing", 0, 4}, {"orders", "billing", 1, 6}, {"my_topic", "g_1", 0, 3}} {
		if off, err := b.CommittedOffset(c.topic, c.group, c.p); err != nil || off != c.off {
			t.Fatalf("committed %s/%s/%d = %d %v, want %d", c.topic, c.group, c.p, off, err, c.off)
		}
	}
	s, err := auth.Open(auth.Options{Enabled: true, Dir: filepath.Join(data, "auth"), Keyring: ring})
	if err != nil {
		t.Fatal(err)
	}
	if u, err := s.GetUser("alice"); err != nil || len(u.Roles) != 1 || u.Roles[0] != "producer" {
		t.Fatalf("alice: %+v %v", u, err)
	}
	if a, ok, err := s.GetACL("orders"); err != nil || !ok || len(a.AllowedUsers) != 1 {
		t.Fatalf("ACL: %+v %v %v", a, ok, err)
	}

	// No plaintext of the old dir anywhere in ours: values, keys, topic,
	// group and user names, password hashes.
	for _, needle := range []string{"secret-order-payload", "p0-secret-value", "user-123", "hello-1",
		"first-1", "third-5", "billing", "my_topic", "orders", "alice", "$2a$10$abcdefghij"} {
		if hits := grepDir(t, data, []byte(needle)); len(hits) > 0 {
			t.Errorf("%q in the clear in %v", needle, hits)
		}
	}

	// A second run into the same dir refuses before writing anything.
	if _, err := Migrate(context.Background(), Options{From: dir, DataDir: data, Keyring: ring}); !errors.Is(err, ErrTargetNotEmpty) {
		t.Fatalf("second run: %v", err)
	}
}

func TestMigrateRefusesOverlap(t *testing.T) {
	dir, _ := buildOldDir(t)
	for _, target := range []string{dir, filepath.Join(dir, "new")} {
		if _, err := Migrate(context.Background(), Options{From: dir, DataDir: target}); !errors.Is(err, ErrSameDir) {
			t.Fatalf("target %s: %v", target, err)
		}
	}
	if _, err := Migrate(context.Background(), Options{From: t.TempDir(), DataDir: t.TempDir()}); !errors.Is(err, ErrNotOldDir) {
		t.Fatalf("empty source: %v", err)
	}
}

func TestMigrateRefusesBadTopicName(t *testing.T) {
	dir := t.TempDir()
	s := &oldSeg{base: 0}
	s.add(oldRec{nil, []byte("x")}.payload())
	s.write(t, filepath.Join(dir, "bad\\name", "0"))
	data := filepath.Join(t.TempDir(), "data")
	_, err := Migrate(context.Background(), Options{From: dir, DataDir: data})
	if err == nil || !strings.Contains(err.Error(), `"bad\\name"`) {
		t.Fatalf("bad name: %v", err)
	}
	if _, err := os.Stat(data); !os.IsNotExist(err) {
		t.Fatal("target written although the source was refused")
	}
}

func TestSplitPayload(t *testing.T) {
	for _, c := range []struct {
		in     []byte
		k, v   string
		keyNil bool
	}{
		{oldRec{nil, []byte("hello-1")}.payload(), "", "hello-1", true},
		{oldRec{[]byte("user-123"), []byte(`{"id":1}`)}.payload(), "user-123", `{"id":1}`, false},
		{[]byte("short"), "", "short", true},
		{append(oldRec{[]byte("k"), []byte("v")}.payload(), 'x'), "", "", true},
	} {
		k, v := splitPayload(c.in)
		if string(k) != c.k || (k == nil) != c.keyNil {
			t.Errorf("%x: key %q", c.in, k)
		}
		if c.v != "" && string(v) != c.v {
			t.Errorf("%x: value %q", c.in, v)
		}
		if c.v == "" && c.keyNil && !bytes.Equal(v, c.in) {
			t.Errorf("%x: value %q, want the whole payload", c.in, v)
		}
	}
}

func FuzzReadOldSegment(f *testing.F) {
	s := &oldSeg{base: 0}
	s.add(oldRec{[]byte("k"), []byte("v")}.payload())
	s.add([]byte("raw"))
	f.Add(s.store, s.index)
	f.Fuzz(func(t *testing.T, store, index []byte) {
		dir := filepath.Join(t.TempDir(), "t", "0")
		seg := &oldSeg{base: 0, store: store, index: index}
		seg.write(t, dir)
		src, err := ReadOldDir(filepath.Dir(filepath.Dir(dir)))
		if err != nil {
			return
		}
		for _, tp := range src.Topics {
			for _, p := range tp.Partitions {
				n := uint64(0)
				err := p.Records(func(off uint64, k, v []byte, damaged bool) error {
					if off != n {
						t.Fatalf("offset %d, want %d", off, n)
					}
					n++
					return nil
				})
				if err != nil || n != p.Next {
					t.Fatalf("records: %d of %d, %v", n, p.Next, err)
				}
			}
		}
	})
}

func equalMaps(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

func grepDir(t testing.TB, dir string, needle []byte) []string {
	t.Helper()
	var hits []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if bytes.Contains(data, needle) {
			hits = append(hits, p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(hits)
	return hits
}
