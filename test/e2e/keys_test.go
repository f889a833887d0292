package e2e

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/flymq/flymq/internal/crypto"
	"github.com/flymq/flymq/internal/storage/record"
	"github.com/flymq/flymq/pkg/client"
)

// keysEnv is the environment with exactly the given keys: the active one
// and the previous ones, nothing inherited.
func keysEnv(active string, previous ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "FLYMQ_ENCRYPTION_") && !strings.HasPrefix(kv, "CREDENTIALS_DIRECTORY=") &&
			!strings.HasPrefix(kv, "FLYMQTEST_") {
			env = append(env, kv)
		}
	}
	if active != "" {
		env = append(env, "FLYMQ_ENCRYPTION_KEY="+active)
	}
	if len(previous) > 0 {
		env = append(env, "FLYMQ_ENCRYPTION_PREVIOUS_KEYS="+strings.Join(previous, ","))
	}
	return env
}

func newKeyHex(t *testing.T) (string, crypto.KeyID) {
	t.Helper()
	h, err := crypto.GenerateKeyHex()
	if err != nil {
		t.Fatal(err)
	}
	k, err := crypto.ParseKey(h)
	if err != nil {
		t.Fatal(err)
	}
	return h, k.ID()
}

// toolResult is one run of a flymq subcommand.
type toolResult struct {
	stdout, stderr string
	code           int
	signal         syscall.Signal // set when the process was killed
}

// runTool runs the binary to completion with env.
func runTool(t *testing.T, env []string, args ...string) toolResult {
	t.Helper()
	cmd := exec.Command(flymqBin, args...)
	cmd.Env = env
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	res := toolResult{stdout: out.String(), stderr: errb.String()}
	if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		res.signal = ws.Signal()
	}
	res.code = cmd.ProcessState.ExitCode()
	if err != nil && res.code == 0 && res.signal == 0 {
		t.Fatalf("flymq %v: %v", args, err)
	}
	return res
}

// startRefused starts the broker and expects it to exit non-zero during
// start-up; it returns the log.
func (b *broker) startRefused() string {
	b.t.Helper()
	cmd := exec.Command(flymqBin, "--config", b.configPath)
	cmd.Env = b.env
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		b.t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		cmd.Process.Kill()
		<-done
		b.t.Fatalf("broker did not refuse to start within 30s:\n%s", out.String())
	}
	if cmd.ProcessState.ExitCode() == 0 {
		b.t.Fatalf("broker started and exited 0, want a refusal:\n%s", out.String())
	}
	return out.String()
}

// keysMsg is one produced message.
type keysMsg struct {
	partition  int32
	offset     uint64
	key, value []byte
}

const keysTopic = "payments/eu"

func produceN(t *testing.T, c *client.Client, n int, tag string) []keysMsg {
	t.Helper()
	var out []keysMsg
	for i := range n {
		key := []byte(fmt.Sprintf("%s-key-%04d", tag, i))
		value := append([]byte(fmt.Sprintf("%s-secret-value-%04d|", tag, i)), bytes.Repeat([]byte{byte(i)}, 1000)...)
		md, err := c.ProduceToPartition(keysTopic, int32(i%2), key, value)
		if err != nil {
			t.Fatalf("produce %s %d: %v", tag, i, err)
		}
		out = append(out, keysMsg{md.Partition, md.Offset, key, value})
	}
	return out
}

// fetchAll checks that every sent message reads back byte for byte at its
// offset.
func fetchAll(t *testing.T, c *client.Client, sent []keysMsg) {
	t.Helper()
	got := map[int32][]client.FetchedMessage{}
	for p := int32(0); p < 2; p++ {
		var off uint64
		for {
			res, err := c.Fetch(keysTopic, p, off, 500, "")
			if err != nil {
				t.Fatalf("fetch p%d@%d: %v", p, off, err)
			}
			if len(res.Messages) == 0 {
				break
			}
			got[p] = append(got[p], res.Messages...)
			off = res.NextOffset
		}
	}
	if n := len(got[0]) + len(got[1]); n != len(sent) {
		t.Fatalf("fetched %d messages, want %d", n, len(sent))
	}
	for _, s := range sent {
		m := got[s.partition][s.offset]
		if m.Offset != s.offset || !bytes.Equal(m.Key, s.key) || !bytes.Equal(m.Value, s.value) {
			t.Fatalf("p%d@%d: got offset %d key %q", s.partition, s.offset, m.Offset, m.Key)
		}
	}
}

// segmentIDs reads the header of every segment under dataDir.
func segmentIDs(t *testing.T, dataDir string) map[crypto.KeyID]int {
	t.Helper()
	ids := map[crypto.KeyID]int{}
	err := filepath.WalkDir(filepath.Join(dataDir, "topics"), func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(p, ".log") {
			return err
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
			return fmt.Errorf("%s: %w", p, err)
		}
		ids[crypto.KeyID(h.KeyID)]++
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return ids
}

// statusJSON runs `keys status --json`.
type keysStatus struct {
	ActiveKeyID string `json:"active_key_id"`
	Keys        []struct {
		ID       string `json:"id"`
		State    string `json:"state"`
		Segments int    `json:"segments"`
		Stores   int    `json:"stores"`
	} `json:"keys"`
	Missing  []string `json:"missing"`
	Problems []any    `json:"problems"`
}

func keysStatusJSON(t *testing.T, b *broker) (keysStatus, int) {
	t.Helper()
	res := runTool(t, b.env, "keys", "status", "--config", b.configPath, "--json")
	var st keysStatus
	if err := json.Unmarshal([]byte(res.stdout), &st); err != nil {
		t.Fatalf("keys status --json: %v\n%s\n%s", err, res.stdout, res.stderr)
	}
	return st, res.code
}

func (st keysStatus) usage(id crypto.KeyID) (state string, segments, stores int) {
	for _, k := range st.Keys {
		if k.ID == id.String() {
			return k.State, k.Segments, k.Stores
		}
	}
	return "", 0, 0
}

// TestKeyRotationAndReseal is the whole life of a key: data under A;
// restart with B active and A previous; without A the start is refused
// naming A; keys status; reseal; afterwards nothing is under A and the
// broker runs with B alone.
func TestKeyRotationAndReseal(t *testing.T) {
	keyA, idA := newKeyHex(t)
	keyB, idB := newKeyHex(t)
	b := newBroker(t, map[string]any{"segment_bytes": 64 << 10})
	b.env = keysEnv(keyA)
	b.start()
	c := b.client(client.Options{})
	if err := c.CreateTopic(keysTopic, 2); err != nil {
		t.Fatal(err)
	}
	sent := produceN(t, c, 300, "a")
	if err := c.Commit(keysTopic, "billing", 1, 42); err != nil {
		t.Fatal(err)
	}
	if code := b.stop(); code != 0 {
		t.Fatalf("stop: exit %d", code)
	}
	underA := segmentIDs(t, b.dataDir())[idA]
	if underA < 4 {
		t.Fatalf("only %d segments under A", underA)
	}

	// Rotation: B active, A previous. Old data readable, new under B,
	// nothing rewritten.
	b.env = keysEnv(keyB, keyA)
	b.start()
	c = b.client(client.Options{})
	fetchAll(t, c, sent)
	sent = append(sent, produceN(t, c, 100, "b")...)
	b.stop()
	ids := segmentIDs(t, b.dataDir())
	if ids[idA] != underA || ids[idB] == 0 {
		t.Fatalf("after rotation: %v, want %d under A and new ones under B", ids, underA)
	}

	// Without A: refused at start, naming A's id.
	b.env = keysEnv(keyB)
	if out := b.startRefused(); !strings.Contains(out, idA.String()) {
		t.Fatalf("start without A does not name %s:\n%s", idA, out)
	}
	st, code := keysStatusJSON(t, b)
	if code != 1 || len(st.Missing) != 1 || st.Missing[0] != idA.String() {
		t.Fatalf("status without A: exit %d %+v", code, st)
	}

	b.env = keysEnv(keyB, keyA)
	st, code = keysStatusJSON(t, b)
	if state, segs, stores := st.usage(idA); code != 0 || state != "previous" || segs != underA || stores == 0 {
		t.Fatalf("status with A and B: exit %d, A %s %d %d: %+v", code, state, segs, stores, st)
	}
	if state, segs, _ := st.usage(idB); state != "active" || segs != ids[idB] || st.ActiveKeyID != idB.String() {
		t.Fatalf("status: B %s %d: %+v", state, segs, st)
	}
	text := runTool(t, b.env, "keys", "status", "--config", b.configPath)
	if !strings.Contains(text.stdout, idA.String()+"  previous") || !strings.Contains(text.stdout, "flymq keys reseal") {
		t.Fatalf("status text:\n%s", text.stdout)
	}

	// Reseal refuses while the broker runs.
	b.start()
	if res := runTool(t, b.env, "keys", "reseal", "--config", b.configPath); res.code != 1 ||
		!strings.Contains(res.stderr, "Stop the broker first") {
		t.Fatalf("reseal on a running broker: %+v", res)
	}
	b.stop()
	res := runTool(t, b.env, "keys", "reseal", "--config", b.configPath)
	if res.code != 0 || !strings.Contains(res.stdout, fmt.Sprintf("re-sealed %d segment(s)", underA)) {
		t.Fatalf("reseal: %+v", res)
	}
	if ids := segmentIDs(t, b.dataDir()); len(ids) != 1 || ids[idB] == 0 {
		t.Fatalf("segments after reseal: %v", ids)
	}

	b.env = keysEnv(keyB)
	st, code = keysStatusJSON(t, b)
	if state, segs, stores := st.usage(idA); code != 0 || state != "" || segs != 0 || stores != 0 ||
		len(st.Missing) != 0 || len(st.Problems) != 0 {
		t.Fatalf("status after reseal with B only: exit %d %+v", code, st)
	}
	b.start()
	c = b.client(client.Options{})
	fetchAll(t, c, sent)
	if off, err := c.GetCommittedOffset(keysTopic, "billing", 1); err != nil || off != 42 {
		t.Fatalf("committed offset: %d %v", off, err)
	}
	b.stop()
}

// TestResealKillNineAtEachStep kills `flymq keys reseal` with SIGKILL at
// each step of re-sealing one segment: the broker then reads every
// message with A and B, and a second run finishes so that B alone works.
func TestResealKillNineAtEachStep(t *testing.T) {
	steps := []string{"temp-partial", "temp-written", "temp-synced", "index-dropped", "renamed", "dir-synced"}
	for _, step := range steps {
		t.Run(step, func(t *testing.T) {
			keyA, idA := newKeyHex(t)
			keyB, _ := newKeyHex(t)
			b := newBroker(t, map[string]any{"segment_bytes": 64 << 10})
			b.env = keysEnv(keyA)
			b.start()
			c := b.client(client.Options{})
			if err := c.CreateTopic(keysTopic, 2); err != nil {
				t.Fatal(err)
			}
			sent := produceN(t, c, 200, "a")
			b.stop()

			b.env = keysEnv(keyB, keyA)
			env := append(append([]string{}, b.env...), "FLYMQTEST_RESEAL_FAILPOINT="+step)
			res := runTool(t, env, "keys", "reseal", "--config", b.configPath)
			if res.signal != syscall.SIGKILL {
				t.Fatalf("reseal with failpoint %s: not killed: %+v", step, res)
			}
			b.start()
			fetchAll(t, b.client(client.Options{}), sent)
			b.stop()

			if res := runTool(t, b.env, "keys", "reseal", "--config", b.configPath); res.code != 0 {
				t.Fatalf("second reseal: %+v", res)
			}
			if ids := segmentIDs(t, b.dataDir()); ids[idA] != 0 {
				t.Fatalf("segments under A after the second run: %v", ids)
			}
			b.env = keysEnv(keyB)
			b.start()
			fetchAll(t, b.client(client.Options{}), sent)
			b.stop()
		})
	}
}

// oldStore builds one partition of an old FlyMQ server (old-data-dir.md):
// <base>.store frames "u64 len | u32 keylen | key | u32 vallen | value"
// and a <base>.index of (u32 rel, u64 pos) entries.
type oldStore struct{ store, index []byte }

func (s *oldStore) add(key, value []byte) {
	p := binary.BigEndian.AppendUint32(nil, uint32(len(key)))
	p = append(p, key...)
	p = binary.BigEndian.AppendUint32(p, uint32(len(value)))
	p = append(p, value...)
	s.index = binary.BigEndian.AppendUint32(s.index, uint32(len(s.index)/12))
	s.index = binary.BigEndian.AppendUint64(s.index, uint64(len(s.store)))
	s.store = binary.BigEndian.AppendUint64(s.store, uint64(len(p)))
	s.store = append(s.store, p...)
}

func hashOldTree(t *testing.T, dir string) string {
	t.Helper()
	h := sha256.New()
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		fmt.Fprintf(h, "%s %v %v\n", p, info.Mode(), info.ModTime().UnixNano())
		if !d.IsDir() {
			data, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			h.Write(data)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// TestMigrateOldDataDir migrates an old server's dir with the real binary:
// every record, key, offset and committed offset comes across, the torn
// tail is reported and skipped, no plaintext lands in our data dir, and
// the old dir is unchanged. Pointing the broker at the old dir is refused
// with a message naming `flymq migrate`.
func TestMigrateOldDataDir(t *testing.T) {
	old := filepath.Join(t.TempDir(), "old-flymq")
	type rec struct{ key, value []byte }
	want := map[int32][]rec{}
	for p := int32(0); p < 2; p++ {
		s := &oldStore{}
		for i := range 50 {
			var key []byte
			if i%3 != 0 {
				key = []byte(fmt.Sprintf("legacy-key-%d-%d", p, i))
			}
			value := []byte(fmt.Sprintf("legacy-plaintext-value-%d-%d", p, i))
			s.add(key, value)
			want[p] = append(want[p], rec{key, value})
		}
		if p == 1 {
			// A crash tore the last frame: index entry there, bytes short.
			s.add([]byte("torn"), []byte("legacy-torn-tail-value"))
			s.store = s.store[:len(s.store)-6]
		}
		dir := filepath.Join(old, "orders", fmt.Sprint(p))
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "0.store"), s.store, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "0.index"), s.index, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	offs := filepath.Join(old, "__consumer_offsets")
	if err := os.MkdirAll(offs, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(offs, "orders_legacy_group.json"),
		[]byte("{\n  \"group_id\": \"legacy_group\",\n  \"topic\": \"orders\",\n  \"offsets\": {\n    \"0\": 17,\n    \"1\": 50\n  }\n}"), 0o644); err != nil {
		t.Fatal(err)
	}
	before := hashOldTree(t, old)

	// The broker refuses the old dir itself.
	wrong := newBroker(t, map[string]any{"data_dir": old})
	if out := wrong.startRefused(); !strings.Contains(out, "flymq migrate") {
		t.Fatalf("start on the old dir does not name flymq migrate:\n%s", out)
	}

	b := newBroker(t, nil)
	res := runTool(t, b.env, "migrate", "--from", old, "--config", b.configPath)
	if res.code != 0 {
		t.Fatalf("migrate: %+v", res)
	}
	if !strings.Contains(res.stdout, "orders/1: torn tail skipped: offsets 50") ||
		!strings.Contains(res.stdout, "migrated 1 topic(s), 2 partition(s), 100 record(s)") {
		t.Fatalf("migrate output:\n%s\n%s", res.stdout, res.stderr)
	}
	if after := hashOldTree(t, old); after != before {
		t.Fatal("the old data dir changed")
	}
	for _, needle := range []string{"legacy-plaintext-value", "legacy-key", "legacy_group", "orders"} {
		if hits := grepDir(t, b.dataDir(), []byte(needle)); len(hits) > 0 {
			t.Errorf("%q in the clear in %v", needle, hits)
		}
	}

	b.start()
	c := b.client(client.Options{})
	for p, recs := range want {
		res, err := c.Fetch("orders", p, 0, 1000, "")
		if err != nil {
			t.Fatal(err)
		}
		if len(res.Messages) != len(recs) || res.NextOffset != uint64(len(recs)) {
			t.Fatalf("p%d: %d messages, next %d, want %d", p, len(res.Messages), res.NextOffset, len(recs))
		}
		for i, m := range res.Messages {
			if m.Offset != uint64(i) || !bytes.Equal(m.Key, recs[i].key) || !bytes.Equal(m.Value, recs[i].value) {
				t.Fatalf("p%d@%d: got %d %q=%q", p, i, m.Offset, m.Key, m.Value)
			}
		}
	}
	for p, want := range map[int32]uint64{0: 17, 1: 50} {
		if off, err := c.GetCommittedOffset("orders", "legacy_group", p); err != nil || off != want {
			t.Fatalf("committed p%d: %d %v, want %d", p, off, err, want)
		}
	}
	b.stop()
}
