package e2e

// Hostile input against the real binary (issue 6): the config limits are
// wired through to the server, framing abuse closes only the abuser,
// hostile names are refused on the wire and never touch the file system,
// and a really full file system (a tiny tmpfs, when this machine lets us
// mount one) costs an error, never an acknowledged message.

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/flymq/flymq/internal/protocol"
	"github.com/flymq/flymq/pkg/client"
)

// scrape returns one sample of the broker's /metrics, 0 when absent.
// series is the exposition text before the value, e.g.
// `flymq_connections_closed_total{reason="timeout"}`.
func (b *broker) scrape(series string) float64 {
	b.t.Helper()
	resp, err := http.Get("http://" + b.metrics + "/metrics")
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if rest, ok := strings.CutPrefix(line, series+" "); ok {
			v, err := strconv.ParseFloat(rest, 64)
			if err != nil {
				b.t.Fatalf("metric line %q: %v", line, err)
			}
			return v
		}
	}
	return 0
}

// dialFrom opens a raw connection from a given loopback source address.
func dialFrom(t *testing.T, src, addr string) net.Conn {
	t.Helper()
	d := net.Dialer{Timeout: 5 * time.Second}
	if src != "" {
		d.LocalAddr = &net.TCPAddr{IP: net.ParseIP(src)}
	}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Skipf("cannot dial from %s here: %v", src, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// served proves a raw connection is served: LIST_TOPICS gets its reply.
func served(t *testing.T, c net.Conn) bool {
	t.Helper()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	defer c.SetDeadline(time.Time{})
	if _, err := c.Write(protocol.AppendFrame(nil, protocol.OpListTopics, protocol.FlagBinary, nil)); err != nil {
		return false
	}
	var h [protocol.HeaderSize]byte
	if _, err := io.ReadFull(c, h[:]); err != nil {
		return false
	}
	hd, err := protocol.ParseHeader(h[:])
	if err != nil || hd.Op != protocol.OpListTopics {
		t.Fatalf("LIST_TOPICS reply %+v %v", hd, err)
	}
	_, err = io.CopyN(io.Discard, c, int64(hd.Length))
	return err == nil
}

// closedSilently asserts the broker closes c without a byte and returns
// how long that took.
func closedSilently(t *testing.T, c net.Conn, what string) time.Duration {
	t.Helper()
	start := time.Now()
	c.SetReadDeadline(time.Now().Add(20 * time.Second))
	var b [1]byte
	n, err := c.Read(b[:])
	if n != 0 || !errors.Is(err, io.EOF) && !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("%s: read %d bytes, %v; want a silent close", what, n, err)
	}
	return time.Since(start)
}

// TestE2ELimitsAndFramingWired: limits.max_connections,
// max_connections_per_ip and read_timeout_ms from the config file reach
// the server of the real binary; refusals and closes show in /metrics.
func TestE2ELimitsAndFramingWired(t *testing.T) {
	b := newBroker(t, map[string]any{"limits": map[string]any{
		"max_connections":        3,
		"max_connections_per_ip": 2,
		"read_timeout_ms":        600,
	}})
	b.start()
	a1 := dialFrom(t, "", b.addr)
	if !served(t, a1) {
		t.Fatal("first connection not served")
	}
	// Bad magic: that connection only.
	bad := dialFrom(t, "", b.addr)
	bad.Write([]byte("GET /metrics HTTP/1.1\r\n\r\n"))
	closedSilently(t, bad, "bad magic")
	if !served(t, a1) {
		t.Fatal("a bad-magic peer broke another connection")
	}
	// Per address: 127.0.0.1 has two slots.
	a2 := dialFrom(t, "127.0.0.1", b.addr)
	if !served(t, a2) {
		t.Fatal("second connection from 127.0.0.1 not served")
	}
	closedSilently(t, dialFrom(t, "127.0.0.1", b.addr), "3rd connection from 127.0.0.1")
	// Another address still gets in, up to the overall limit of 3.
	if !served(t, dialFrom(t, "127.0.0.2", b.addr)) {
		t.Fatal("connection from 127.0.0.2 not served")
	}
	closedSilently(t, dialFrom(t, "127.0.0.3", b.addr), "4th connection overall")
	if got := b.scrape("flymq_connections_refused_total"); got != 2 {
		t.Fatalf("flymq_connections_refused_total = %v, want 2", got)
	}
	// Read timeout: a header announcing 32 MiB, then silence.
	a2.Close()
	var stalled net.Conn
	deadline := time.Now().Add(10 * time.Second)
	for {
		stalled = dialFrom(t, "127.0.0.1", b.addr)
		if served(t, stalled) {
			break // the slot a2 held is free again
		}
		if time.Now().After(deadline) {
			t.Fatal("the slot of a closed connection never came back")
		}
		time.Sleep(20 * time.Millisecond)
	}
	h := protocol.AppendHeader(nil, protocol.OpProduce, protocol.FlagBinary, protocol.MaxPayload)
	stalled.Write(h)
	if took := closedSilently(t, stalled, "stalled frame"); took < 500*time.Millisecond {
		t.Fatalf("stalled frame closed after %v, before read_timeout_ms=600", took)
	}
	if got := b.scrape(`flymq_connections_closed_total{reason="timeout"}`); got != 1 {
		t.Fatalf(`connections_closed_total{reason="timeout"} = %v, want 1`, got)
	}
	if got := b.scrape(`flymq_connections_closed_total{reason="bad_magic"}`); got != 1 {
		t.Fatalf(`connections_closed_total{reason="bad_magic"} = %v, want 1`, got)
	}
	if !served(t, a1) {
		t.Fatal("first connection not served at the end")
	}
}

// treeOutside lists the paths under root, skipping the subtree skip.
func treeOutside(t *testing.T, root, skip string) string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p == skip {
			return filepath.SkipDir
		}
		out = append(out, p)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(out)
	return strings.Join(out, "\n")
}

// TestE2EHostileNames: the real binary refuses traversal, control and
// un-normalised names with the exact reason, through the Go client, and
// nothing appears outside its data dir.
func TestE2EHostileNames(t *testing.T) {
	b := newBroker(t, nil)
	b.start()
	root := filepath.Dir(b.dir)
	before := treeOutside(t, root, b.dataDir())
	c := b.client(client.Options{RequestTimeout: 10 * time.Second})
	if _, err := c.Produce("Straße", []byte("v")); err != nil {
		t.Fatal(err)
	}
	for name, reason := range map[string]string{
		"../../../../tmp/flymq-escape": `".." segment`,
		`..\..\escape`:                 "backslash at 2",
		"nul\x00byte":                  "NUL byte at 3",
		"bell\x07":                     "control character U+0007 at 4",
		"a//b":                         "empty '/' segment",
		strings.Repeat("x", 250):       "250 bytes, at most 249 allowed",
		"Stra\u00dfe\u0301":            "not in Unicode NFC form",
	} {
		_, err := c.Produce(name, []byte("v"))
		var se *client.ServerError
		if !errors.As(err, &se) || se.Message != "invalid topic name: "+reason {
			t.Errorf("produce to %q: %v; want server error %q", name, err, "invalid topic name: "+reason)
		}
		err = c.CreateTopic(name, 1)
		if !errors.As(err, &se) || se.Message != "invalid topic name: "+reason {
			t.Errorf("create %q: %v; want server error %q", name, err, "invalid topic name: "+reason)
		}
	}
	err := c.Commit("Straße", "../../g", 0, 1)
	var se *client.ServerError
	if !errors.As(err, &se) || se.Message != `invalid group name: ".." segment` {
		t.Errorf("commit with a traversal group: %v", err)
	}
	if _, err := c.Produce("a/b/c", []byte("deep")); err != nil {
		t.Fatalf("a/b/c: %v", err)
	}
	if topics, err := c.ListTopics(); err != nil || strings.Join(topics, ",") != "Straße,a/b/c" {
		t.Fatalf("topics %q %v", topics, err)
	}
	if _, err := os.Stat("/tmp/flymq-escape"); err == nil {
		t.Fatal("/tmp/flymq-escape was created")
	}
	b.stop()
	if after := treeOutside(t, root, b.dataDir()); after != before {
		t.Fatalf("paths outside the data dir changed:\nbefore:\n%s\nafter:\n%s", before, after)
	}
}

// mountTinyTmpfs mounts a tmpfs of size bytes on a new directory, or
// skips when this machine does not allow it (not root, no CAP_SYS_ADMIN,
// a container without mount rights).
func mountTinyTmpfs(t *testing.T, size int) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("mounting a tmpfs needs root")
	}
	dir := t.TempDir()
	out, err := exec.Command("mount", "-t", "tmpfs", "-o", fmt.Sprintf("size=%d,mode=0700", size), "tmpfs", dir).CombinedOutput()
	if err != nil {
		t.Skipf("cannot mount a tmpfs here: %v %s", err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", dir).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v %s", dir, err, out)
		}
	})
	return dir
}

// TestE2EDiskFullOnTinyTmpfs: the real binary on a 2 MiB tmpfs, acks=all.
// Produces past the end of the space get the "storage full" ERROR and no
// offset; readiness stays true (ENOSPC does not fence); once space is
// freed the next offset follows the last acknowledged one; after kill -9
// every acknowledged message is there.
func TestE2EDiskFullOnTinyTmpfs(t *testing.T) {
	mnt := mountTinyTmpfs(t, 2<<20)
	ballast := filepath.Join(mnt, "ballast")
	if err := os.WriteFile(ballast, make([]byte, 512<<10), 0o600); err != nil {
		t.Fatal(err)
	}
	b := newBroker(t, map[string]any{
		"data_dir":    filepath.Join(mnt, "data"),
		"performance": map[string]any{"acks": "all"},
		"audit":       map[string]any{"enabled": false},
	})
	b.start()
	c := b.client(client.Options{RequestTimeout: 10 * time.Second})
	value := func(i int) []byte { return []byte(fmt.Sprintf("%06d%s", i, strings.Repeat("v", 4000))) }
	acked := 0
	var fullErr error
	for i := 0; i < 1000; i++ {
		md, err := c.Produce("fill", value(i))
		if err != nil {
			fullErr = err
			break
		}
		if md.Offset != uint64(i) {
			t.Fatalf("produce %d got offset %d", i, md.Offset)
		}
		acked++
	}
	var se *client.ServerError
	if !errors.As(fullErr, &se) || se.Message != "storage full: no space left on device, nothing was stored" {
		t.Fatalf("after %d messages: %v; want the storage-full error", acked, fullErr)
	}
	t.Logf("tmpfs full after %d acknowledged messages", acked)
	// Still full: still refused, nothing acknowledged, still ready.
	if _, err := c.Produce("fill", value(acked)); !errors.As(err, &se) {
		t.Fatalf("second produce on a full disk: %v", err)
	}
	if resp, err := http.Get("http://" + b.healthAddr + "/readyz"); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("readyz on a full disk: %v %v; ENOSPC must not fence", resp, err)
	}
	if err := os.Remove(ballast); err != nil {
		t.Fatal(err)
	}
	md, err := c.Produce("fill", value(acked))
	if err != nil || md.Offset != uint64(acked) {
		t.Fatalf("produce after space returned: offset %d, %v; want %d", md.Offset, err, acked)
	}
	acked++

	b.kill()
	b.start()
	c = b.client(client.Options{RequestTimeout: 10 * time.Second})
	var off uint64
	for off < uint64(acked) {
		res, err := c.Fetch("fill", 0, off, 100, "")
		if err != nil || len(res.Messages) == 0 {
			t.Fatalf("fetch at %d after restart: %v", off, err)
		}
		for _, m := range res.Messages {
			if m.Offset != off || string(m.Value) != string(value(int(off))) {
				t.Fatalf("offset %d after restart holds offset %d %.10q", off, m.Offset, m.Value)
			}
			off++
		}
	}
	if _, err := c.Produce("fill", []byte("x")); err != nil {
		t.Fatalf("produce after restart: %v", err)
	}
	b.kill()
}
