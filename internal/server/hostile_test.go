package server

// Hostile input and faults (issue 6): framing abuse, connection limits,
// records no reply could carry, hostile names and disk faults, each seen
// through the wire of an in-process server. Nothing here asserts speed;
// deadlines only bound a hang.

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/flymq/flymq/internal/broker"
	"github.com/flymq/flymq/internal/protocol"
	"github.com/flymq/flymq/internal/storage"
	"github.com/flymq/flymq/internal/storage/vfs"
)

// hostileEnv is a broker and a server whose options a test controls fully
// (the shared harness does not expose the broker's file system).
type hostileEnv struct {
	srv   *Server
	b     *broker.Broker
	bopts broker.Options
	reg   *prometheus.Registry
	dir   string
	addr  string
}

func startHostile(t *testing.T, bo func(*broker.Options), so func(*Options)) *hostileEnv {
	t.Helper()
	e := &hostileEnv{dir: t.TempDir(), reg: prometheus.NewRegistry()}
	e.bopts = broker.Options{
		DataDir:              e.dir,
		SegmentBytes:         1 << 20,
		Acks:                 storage.AcksAll,
		AutoCreatePartitions: 1,
		Registerer:           e.reg,
	}
	if bo != nil {
		bo(&e.bopts)
	}
	b, err := broker.Open(e.bopts)
	if err != nil {
		t.Fatal(err)
	}
	e.b = b
	opts := Options{Addr: "127.0.0.1:0", Broker: b, NodeID: "node-1", Registerer: e.reg}
	if so != nil {
		so(&opts)
	}
	s, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	e.srv, e.addr = s, s.Addrs()[0].String()
	t.Cleanup(func() { e.stop(t) })
	return e
}

// stop shuts the server and broker down; safe to call twice.
func (e *hostileEnv) stop(t *testing.T) {
	if e.srv == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := e.srv.Shutdown(ctx); err != nil {
		t.Errorf("shutdown: %v", err)
	}
	e.b.Close()
	e.srv = nil
}

func (e *hostileEnv) dial(t *testing.T) net.Conn {
	t.Helper()
	c, err := net.DialTimeout("tcp", e.addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// openConns is the number of connections the server is serving.
func (e *hostileEnv) openConns() int {
	e.srv.mu.Lock()
	defer e.srv.mu.Unlock()
	return len(e.srv.conns)
}

// waitConns polls until the server serves exactly n connections.
func (e *hostileEnv) waitConns(t *testing.T, n int) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for e.openConns() != n {
		if time.Now().After(deadline) {
			t.Fatalf("server still serves %d connections, want %d", e.openConns(), n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// rt sends one frame and reads one reply frame (10 s bound against hangs).
func rt(t *testing.T, c net.Conn, op protocol.Op, flags uint8, payload []byte) (protocol.Op, []byte) {
	t.Helper()
	op2, p, err := tryRT(c, op, flags, payload)
	if err != nil {
		t.Fatalf("%v round trip: %v", op, err)
	}
	return op2, p
}

func tryRT(c net.Conn, op protocol.Op, flags uint8, payload []byte) (protocol.Op, []byte, error) {
	c.SetDeadline(time.Now().Add(10 * time.Second))
	defer c.SetDeadline(time.Time{})
	if _, err := c.Write(protocol.AppendFrame(nil, op, flags, payload)); err != nil {
		return 0, nil, err
	}
	var hb [protocol.HeaderSize]byte
	if _, err := io.ReadFull(c, hb[:]); err != nil {
		return 0, nil, err
	}
	h, err := protocol.ParseHeader(hb[:])
	if err != nil {
		return 0, nil, err
	}
	p := make([]byte, h.Length)
	if _, err := io.ReadFull(c, p); err != nil {
		return 0, nil, err
	}
	return h.Op, p, nil
}

// wantError asserts an ERROR reply with exactly text.
func wantError(t *testing.T, what string, op protocol.Op, p []byte, text string) {
	t.Helper()
	if op != protocol.OpError {
		t.Fatalf("%s: reply opcode %v, want ERROR %q", what, op, text)
	}
	if got := protocol.DecodeError(p); got != text {
		t.Fatalf("%s: error %q, want %q", what, got, text)
	}
}

func produceOn(t *testing.T, c net.Conn, topic string, part int32, key, value []byte) (protocol.Op, []byte) {
	t.Helper()
	req := protocol.ProduceRequest{Topic: topic, Partition: part, Key: key, Value: value}
	return rt(t, c, protocol.OpProduce, protocol.FlagBinary, req.AppendTo(nil))
}

// mustProduceOn produces and returns the offset the broker acknowledged.
func mustProduceOn(t *testing.T, c net.Conn, topic string, value string) uint64 {
	t.Helper()
	op, p := produceOn(t, c, topic, -1, nil, []byte(value))
	if op != protocol.OpProduce {
		t.Fatalf("produce %q to %q: %v %q", value, topic, op, protocol.DecodeError(p))
	}
	var md protocol.RecordMetadata
	if err := md.Decode(p); err != nil {
		t.Fatal(err)
	}
	return md.Offset
}

func fetchOn(t *testing.T, c net.Conn, topic string, off uint64, max int32) protocol.FetchResponse {
	t.Helper()
	req := protocol.FetchRequest{Topic: topic, Offset: off, MaxMessages: max}
	op, p := rt(t, c, protocol.OpFetch, protocol.FlagBinary, req.AppendTo(nil))
	if op != protocol.OpFetch {
		t.Fatalf("fetch %s@%d: %v %q", topic, off, op, protocol.DecodeError(p))
	}
	var fr protocol.FetchResponse
	if err := fr.Decode(p); err != nil {
		t.Fatal(err)
	}
	return fr
}

// listTopicsWorks proves a connection is still served.
func listTopicsWorks(t *testing.T, c net.Conn) {
	t.Helper()
	if op, p := rt(t, c, protocol.OpListTopics, protocol.FlagBinary, nil); op != protocol.OpListTopics {
		t.Fatalf("LIST_TOPICS: %v %q", op, protocol.DecodeError(p))
	}
}

// expectClosedSilently asserts the server closes c without sending a byte.
func expectClosedSilently(t *testing.T, c net.Conn, what string) {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(20 * time.Second))
	var b [1]byte
	n, err := c.Read(b[:])
	if n != 0 {
		t.Fatalf("%s: server sent %#x before closing", what, b[0])
	}
	if !errors.Is(err, io.EOF) && !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("%s: read = %v, want EOF or reset", what, err)
	}
}

// metricValue reads one counter or gauge from the registry; labels are
// name, value pairs.
func metricValue(t *testing.T, reg prometheus.Gatherer, name string, labels ...string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			if hasLabels(m, labels) {
				switch {
				case m.Counter != nil:
					return m.Counter.GetValue()
				case m.Gauge != nil:
					return m.Gauge.GetValue()
				}
			}
		}
	}
	return 0
}

func hasLabels(m *dto.Metric, labels []string) bool {
	for i := 0; i+1 < len(labels); i += 2 {
		found := false
		for _, lp := range m.GetLabel() {
			if lp.GetName() == labels[i] && lp.GetValue() == labels[i+1] {
				found = true
			}
		}
		if !found {
			return false
		}
	}
	return true
}

func header(op protocol.Op, length uint32) []byte {
	h := []byte{protocol.Magic, protocol.Version, byte(op), protocol.FlagBinary, 0, 0, 0, 0}
	binary.BigEndian.PutUint32(h[4:], length)
	return h
}

// TestHostileFramingClosesOnlyThatConnection: bad magic, bad version and a
// length of 33554433 close that connection with no reply (core.md §4) and
// are counted by reason; a connection opened before keeps being served.
func TestHostileFramingClosesOnlyThatConnection(t *testing.T) {
	e := startHostile(t, nil, nil)
	good := e.dial(t)
	listTopicsWorks(t, good)
	cases := []struct {
		name, reason string
		bytes        []byte
	}{
		{"bad magic", "bad_magic", []byte{0xAE, 0x01, 0x08, 0x01, 0, 0, 0, 0}},
		{"http scanner", "bad_magic", []byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n")},
		{"bad version", "bad_version", []byte{0xAF, 0x02, 0x08, 0x01, 0, 0, 0, 0}},
		{"length 33554433", "frame_too_large", header(protocol.OpProduce, protocol.MaxPayload+1)},
		{"length 0xFFFFFFFF", "frame_too_large", header(protocol.OpFetch, 0xFFFFFFFF)},
	}
	want := map[string]float64{}
	for _, tc := range cases {
		c := e.dial(t)
		if _, err := c.Write(tc.bytes); err != nil {
			t.Fatal(err)
		}
		expectClosedSilently(t, c, tc.name)
		want[tc.reason]++
		listTopicsWorks(t, good)
	}
	e.waitConns(t, 1)
	for reason, n := range want {
		if got := metricValue(t, e.reg, "flymq_connections_closed_total", "reason", reason); got != n {
			t.Errorf("connections_closed_total{reason=%q} = %v, want %v", reason, got, n)
		}
	}
	// 33554432 itself is legal: the server waits for the payload instead
	// of closing, and a truncated one is an ordinary unexpected EOF.
	c := e.dial(t)
	c.Write(header(protocol.OpListTopics, protocol.MaxPayload))
	listTopicsWorks(t, good)
	if e.openConns() != 2 {
		t.Fatalf("a legal 32 MiB header closed the connection: %d open", e.openConns())
	}
}

// heapInUse is the live heap after a full collection.
func heapInUse() uint64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// TestStalledHeadersTimeOutWithoutPreallocating: 50 connections each
// announce a 32 MiB frame and then go silent. The broker holds no memory
// for the announced length (50 × 32 MiB would be 1.6 GiB), closes each
// after the read timeout with no reply, and frees what it held.
func TestStalledHeadersTimeOutWithoutPreallocating(t *testing.T) {
	const conns = 50
	const readTimeout = 1500 * time.Millisecond
	e := startHostile(t, nil, func(o *Options) { o.ReadTimeout = readTimeout })
	good := e.dial(t)
	listTopicsWorks(t, good)
	base := heapInUse()

	cs := make([]net.Conn, conns)
	sent := make([]time.Time, conns)
	for i := range cs {
		cs[i] = e.dial(t)
		// The header and a few payload bytes: the server is mid-frame.
		if _, err := cs[i].Write(append(header(protocol.OpProduce, protocol.MaxPayload), "partial"...)); err != nil {
			t.Fatal(err)
		}
		sent[i] = time.Now()
	}
	e.waitConns(t, conns+1)
	// Give every connection goroutine the moment it needs to read its
	// header; the measurement would only be lower if one had not yet.
	time.Sleep(200 * time.Millisecond)
	held := int64(heapInUse()) - int64(base)
	t.Logf("heap with %d stalled 32 MiB frames: %+d bytes", conns, held)
	if held > protocol.MaxPayload/2 {
		t.Fatalf("heap grew by %d bytes for %d stalled frames: the announced length is being preallocated", held, conns)
	}
	// The well-behaved connection is served meanwhile.
	listTopicsWorks(t, good)

	for i, c := range cs {
		expectClosedSilently(t, c, fmt.Sprintf("stalled conn %d", i))
		if waited := time.Since(sent[i]); waited < readTimeout-100*time.Millisecond {
			t.Fatalf("stalled conn %d closed after %v, before the %v read timeout", i, waited, readTimeout)
		}
	}
	e.waitConns(t, 1)
	if got := metricValue(t, e.reg, "flymq_connections_closed_total", "reason", "timeout"); got != conns {
		t.Fatalf("connections_closed_total{reason=timeout} = %v, want %d", got, conns)
	}
	if got := metricValue(t, e.reg, "flymq_connections_active", "listener", "plain"); got != 1 {
		t.Fatalf("connections_active = %v, want 1", got)
	}
	listTopicsWorks(t, good)
}

// TestCloseMidFrameFreesEverything: a peer that sends 8 MiB of a 32 MiB
// frame and hangs up leaves no connection and no buffer behind.
func TestCloseMidFrameFreesEverything(t *testing.T) {
	e := startHostile(t, nil, nil)
	base := heapInUse()
	c, err := net.Dial("tcp", e.addr)
	if err != nil {
		t.Fatal(err)
	}
	frame := append(header(protocol.OpProduce, protocol.MaxPayload), make([]byte, 8<<20)...)
	if _, err := c.Write(frame); err != nil {
		t.Fatal(err)
	}
	frame = nil
	e.waitConns(t, 1)
	c.Close()
	e.waitConns(t, 0)
	if got := metricValue(t, e.reg, "flymq_connections_closed_total", "reason", "eof"); got != 1 {
		t.Fatalf("connections_closed_total{reason=eof} = %v, want 1", got)
	}
	if got := metricValue(t, e.reg, "flymq_connections_active", "listener", "plain"); got != 0 {
		t.Fatalf("connections_active = %v, want 0", got)
	}
	if held := int64(heapInUse()) - int64(base); held > 4<<20 {
		t.Fatalf("heap still %d bytes above the start after the connection closed", held)
	}
	listTopicsWorks(t, e.dial(t))
}

// gzipOf returns a gzip stream of prefix followed by n zero bytes. It is
// built from concatenated gzip members (RFC 1952 allows them and the
// reader inflates them as one stream), each 1 MiB block compressed once,
// so the test neither holds the inflated payload nor spends seconds
// compressing it under -race.
func gzipOf(t *testing.T, prefix []byte, n int) []byte {
	t.Helper()
	member := func(p []byte) []byte {
		var buf bytes.Buffer
		zw, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression)
		zw.Write(p)
		if err := zw.Close(); err != nil {
			t.Fatal(err)
		}
		return buf.Bytes()
	}
	out := member(prefix)
	block := member(make([]byte, 1<<20))
	for ; n >= 1<<20; n -= 1 << 20 {
		out = append(out, block...)
	}
	if n > 0 {
		out = append(out, member(make([]byte, n))...)
	}
	return out
}

// TestGzipBombRefused: a small gzip payload inflating past 32 MiB gets an
// ERROR, stores nothing and leaves the connection usable; so does a
// payload that is not gzip at all (core.md §2.1 text).
func TestGzipBombRefused(t *testing.T) {
	e := startHostile(t, nil, nil)
	c := e.dial(t)
	// A PRODUCE to "bomb" whose value is 40 MiB of zeros.
	req := protocol.ProduceRequest{Topic: "bomb", Partition: -1, Value: nil}
	prefix := req.AppendTo(nil)
	binary.BigEndian.PutUint32(prefix[len(prefix)-8:], 40<<20) // value length
	bomb := gzipOf(t, prefix[:len(prefix)-4], 40<<20)
	t.Logf("gzip bomb: %d bytes inflating to %d", len(bomb), 40<<20)
	op, p := rt(t, c, protocol.OpProduce, protocol.FlagBinary|protocol.FlagGzip, bomb)
	wantError(t, "gzip bomb", op, p, "gzip: decompressed payload too large (limit 33554432 bytes)")

	op, p = rt(t, c, protocol.OpProduce, protocol.FlagGzip, []byte("not gzip at all"))
	wantError(t, "not gzip", op, p, "gzip: invalid header")

	if got := e.b.Topics(); len(got) != 0 {
		t.Fatalf("topics after refused produces: %v", got)
	}
	// Same connection, a real compressed produce.
	good := protocol.ProduceRequest{Topic: "bomb", Partition: -1, Value: []byte("fine")}
	op, p = rt(t, c, protocol.OpProduce, protocol.FlagBinary|protocol.FlagGzip, gzipOf(t, good.AppendTo(nil), 0))
	if op != protocol.OpProduce {
		t.Fatalf("compressed produce: %v %q", op, protocol.DecodeError(p))
	}
	if fr := fetchOn(t, c, "bomb", 0, 10); len(fr.Messages) != 1 || string(fr.Messages[0].Value) != "fine" || fr.NextOffset != 1 {
		t.Fatalf("fetch after bomb: %+v", fr)
	}
}

// TestAbuseDoesNotStallOthers: while connections trickle a huge frame,
// reconnect with garbage and flood requests without reading replies, a
// well-behaved client still gets every answer, in order, within its
// normal request timeout.
func TestAbuseDoesNotStallOthers(t *testing.T) {
	e := startHostile(t, func(o *broker.Options) { o.Acks = storage.AcksLeader }, func(o *Options) {
		o.ReadTimeout = 2 * time.Second
	})
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	defer func() { cancel(); wg.Wait() }()
	abuse := func(f func(ctx context.Context)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				f(ctx)
			}
		}()
	}
	dial := func() net.Conn {
		c, err := net.DialTimeout("tcp", e.addr, 5*time.Second)
		if err != nil {
			return nil
		}
		context.AfterFunc(ctx, func() { c.Close() })
		return c
	}
	// Slow loris: a 32 MiB header, then a byte now and then.
	for range 3 {
		abuse(func(ctx context.Context) {
			c := dial()
			if c == nil {
				return
			}
			defer c.Close()
			if _, err := c.Write(header(protocol.OpProduce, protocol.MaxPayload)); err != nil {
				return
			}
			for ctx.Err() == nil {
				if _, err := c.Write([]byte{0}); err != nil {
					return
				}
				time.Sleep(50 * time.Millisecond)
			}
		})
	}
	// Scanners: connect, send garbage, go.
	abuse(func(context.Context) {
		if c := dial(); c != nil {
			c.Write([]byte("\x16\x03\x01garbage"))
			c.Close()
		}
	})
	// Flooder: malformed requests as fast as the socket takes them,
	// never reading a reply, so the server blocks writing to it.
	abuse(func(ctx context.Context) {
		c := dial()
		if c == nil {
			return
		}
		defer c.Close()
		burst := bytes.Repeat(protocol.AppendFrame(nil, protocol.OpFetch, 0, []byte{0, 9}), 1000)
		for ctx.Err() == nil {
			if _, err := c.Write(burst); err != nil {
				return
			}
		}
	})

	good := e.dial(t)
	const n = 200
	for i := range n {
		if off := mustProduceOn(t, good, "calm", fmt.Sprint("m", i)); off != uint64(i) {
			t.Fatalf("produce %d got offset %d", i, off)
		}
		fr := fetchOn(t, good, "calm", uint64(i), 1)
		if len(fr.Messages) != 1 || string(fr.Messages[0].Value) != fmt.Sprint("m", i) || fr.NextOffset != uint64(i+1) {
			t.Fatalf("fetch %d: %+v", i, fr)
		}
	}
	if got := metricValue(t, e.reg, "flymq_connections_closed_total", "reason", "bad_magic"); got == 0 {
		t.Fatal("scanner connections were never closed for bad magic")
	}
}

// TestConnectionLimits: past max connections (overall, then per peer
// address) a new connection is closed at once without a byte, the
// refusal is counted, and a freed slot is usable again.
func TestConnectionLimits(t *testing.T) {
	t.Run("overall", func(t *testing.T) {
		e := startHostile(t, nil, func(o *Options) { o.MaxConns = 3 })
		var cs []net.Conn
		for range 3 {
			c := e.dial(t)
			listTopicsWorks(t, c)
			cs = append(cs, c)
		}
		expectClosedSilently(t, e.dial(t), "4th connection")
		if got := metricValue(t, e.reg, "flymq_connections_refused_total"); got != 1 {
			t.Fatalf("connections_refused_total = %v, want 1", got)
		}
		for _, c := range cs {
			listTopicsWorks(t, c) // the admitted ones are untouched
		}
		cs[0].Close()
		e.waitConns(t, 2)
		listTopicsWorks(t, e.dial(t))
		if got := metricValue(t, e.reg, "flymq_connections_refused_total"); got != 1 {
			t.Fatalf("connections_refused_total = %v after a slot freed, want 1", got)
		}
	})
	t.Run("per address", func(t *testing.T) {
		e := startHostile(t, nil, func(o *Options) { o.MaxConnsPerIP = 2 })
		for range 2 {
			listTopicsWorks(t, e.dial(t))
		}
		expectClosedSilently(t, e.dial(t), "3rd connection from 127.0.0.1")
		if got := metricValue(t, e.reg, "flymq_connections_refused_total"); got != 1 {
			t.Fatalf("connections_refused_total = %v, want 1", got)
		}
		// Another loopback address is another peer.
		d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 2)}, Timeout: 5 * time.Second}
		c, err := d.Dial("tcp", e.addr)
		if err != nil {
			t.Skipf("cannot dial from 127.0.0.2 here: %v", err)
		}
		defer c.Close()
		listTopicsWorks(t, c)
	})
}

// TestIdleTimeout: a connection that sends nothing for IdleTimeout is
// closed silently and counted; one that keeps talking is not.
func TestIdleTimeout(t *testing.T) {
	const idle = 400 * time.Millisecond
	e := startHostile(t, nil, func(o *Options) { o.IdleTimeout = idle })
	busy := e.dial(t)
	quiet := e.dial(t)
	start := time.Now()
	listTopicsWorks(t, quiet)
	for time.Since(start) < 3*idle {
		listTopicsWorks(t, busy)
		time.Sleep(idle / 8)
	}
	expectClosedSilently(t, quiet, "idle connection")
	listTopicsWorks(t, busy)
	if got := metricValue(t, e.reg, "flymq_connections_closed_total", "reason", "timeout"); got != 1 {
		t.Fatalf("connections_closed_total{reason=timeout} = %v, want 1", got)
	}
}

// TestProduceTooLargeForAReplyRefused: key+value that a FETCH reply of at
// most 32 MiB could not carry are refused with the exact text and not
// stored; the largest record that fits is stored and read back whole.
func TestProduceTooLargeForAReplyRefused(t *testing.T) {
	if testing.Short() {
		t.Skip("moves several 32 MiB frames")
	}
	e := startHostile(t, func(o *broker.Options) { o.Acks = storage.AcksLeader }, nil)
	c := e.dial(t)
	if off := mustProduceOn(t, c, "big", "first"); off != 0 {
		t.Fatalf("first offset %d", off)
	}
	// 32 MiB − FETCH header (12) − per-message overhead (16).
	const fits = protocol.MaxPayload - 12 - 16
	op, p := produceOn(t, c, "big", 0, nil, make([]byte, fits+1))
	wantError(t, "oversized produce", op, p, fmt.Sprintf(
		"message too large: key and value of %d bytes exceed the %d bytes a fetch reply can carry", fits+1, fits))
	op, p = produceOn(t, c, "big", 0, []byte("k"), make([]byte, fits))
	wantError(t, "oversized keyed produce", op, p, fmt.Sprintf(
		"message too large: key and value of %d bytes exceed the %d bytes a fetch reply can carry", fits+1, fits))
	if _, next, err := e.b.Offsets("big", 0); err != nil || next != 1 {
		t.Fatalf("next offset after refused produces = %d, %v; want 1", next, err)
	}

	value := bytes.Repeat([]byte{0xA5}, fits-4)
	op, p = produceOn(t, c, "big", 0, []byte("kkkk"), value)
	if op != protocol.OpProduce {
		t.Fatalf("largest fitting record refused: %q", protocol.DecodeError(p))
	}
	req := protocol.FetchRequest{Topic: "big", Offset: 1, MaxMessages: 10}
	op, p = rt(t, c, protocol.OpFetch, protocol.FlagBinary, req.AppendTo(nil))
	if op != protocol.OpFetch || len(p) != protocol.MaxPayload {
		t.Fatalf("fetch of the largest record: %v, %d bytes (want exactly %d)", op, len(p), protocol.MaxPayload)
	}
	var fr protocol.FetchResponse
	if err := fr.Decode(p); err != nil || len(fr.Messages) != 1 || fr.NextOffset != 2 ||
		string(fr.Messages[0].Key) != "kkkk" || !bytes.Equal(fr.Messages[0].Value, value) {
		t.Fatalf("largest record read back wrong: %d msgs next %d err %v", len(fr.Messages), fr.NextOffset, err)
	}
	creq := protocol.ConsumeRequest{Topic: "big", Partition: 0, Offset: 1}
	op, p = rt(t, c, protocol.OpConsume, protocol.FlagBinary, creq.AppendTo(nil))
	var cr protocol.ConsumeResponse
	if op != protocol.OpConsume || cr.Decode(p) != nil || !bytes.Equal(cr.Value, value) {
		t.Fatalf("consume of the largest record: %v", op)
	}
}

// walkOutside lists every path under root that is not under skip.
func walkOutside(t *testing.T, root, skip string) []string {
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
	return out
}

// TestHostileNamesRefusedOnTheWire: topic names breaking DESIGN.md §3 are
// refused by PRODUCE and CREATE_TOPIC with the exact reason, group names
// likewise by SUBSCRIBE and COMMIT; nothing is created for them, inside or
// outside the data dir; "a/b/c" is an ordinary topic.
func TestHostileNamesRefusedOnTheWire(t *testing.T) {
	e := startHostile(t, nil, nil)
	parent := filepath.Dir(e.dir)
	before := walkOutside(t, parent, e.dir)
	c := e.dial(t)
	mustProduceOn(t, c, "café", "nfc") // NFC "é" (U+00E9)
	mustProduceOn(t, c, "ok", "x")

	long := strings.Repeat("n", 250)
	topics := []struct{ name, reason string }{
		{"", "empty"},
		{`a\b`, "backslash at 1"},
		{"..", `".." segment`},
		{".", `"." segment`},
		{"../../escape", `".." segment`},
		{"a/../../escape", `".." segment`},
		{"a\x00b", "NUL byte at 1"},
		{"a\nb", "control character U+000A at 1"},
		{"\x1b[31mred", "control character U+001B at 0"},
		{"a\u202eb", "non-printable character U+202E at 1"},
		{"a//b", "empty '/' segment"},
		{"/abs", "empty '/' segment"},
		{"trailing/", "empty '/' segment"},
		{long, "250 bytes, at most 249 allowed"},
		{"bad\xffutf8", "not valid UTF-8"},
		{"cafe\u0301", `not in Unicode NFC form; its NFC form is the existing topic "café"`},
	}
	for _, tc := range topics {
		want := "invalid topic name: " + tc.reason
		op, p := produceOn(t, c, tc.name, -1, nil, []byte("v"))
		wantError(t, fmt.Sprintf("PRODUCE %q", tc.name), op, p, want)
		ct := protocol.CreateTopicRequest{Topic: tc.name, Partitions: 1}
		op, p = rt(t, c, protocol.OpCreateTopic, protocol.FlagBinary, ct.AppendTo(nil))
		wantError(t, fmt.Sprintf("CREATE_TOPIC %q", tc.name), op, p, want)
	}
	// Reads name no file either: the topic simply does not exist.
	sub := protocol.SubscribeRequest{Topic: "../../escape", Group: "g", Mode: "earliest"}
	op, p := rt(t, c, protocol.OpSubscribe, protocol.FlagBinary, sub.AppendTo(nil))
	wantError(t, "SUBSCRIBE to a traversal topic", op, p, "topic not found: ../../escape")

	groups := []struct{ name, reason string }{
		{`g\1`, "backslash at 1"},
		{"..", `".." segment`},
		{"../../g", `".." segment`},
		{"g\x00", "NUL byte at 1"},
		{"g\tx", "control character U+0009 at 1"},
		{"g//x", "empty '/' segment"},
		{long, "250 bytes, at most 249 allowed"},
	}
	for _, tc := range groups {
		want := "invalid group name: " + tc.reason
		sub := protocol.SubscribeRequest{Topic: "ok", Group: tc.name, Mode: "earliest"}
		op, p := rt(t, c, protocol.OpSubscribe, protocol.FlagBinary, sub.AppendTo(nil))
		wantError(t, fmt.Sprintf("SUBSCRIBE group %q", tc.name), op, p, want)
		cm := protocol.CommitRequest{Topic: "ok", Group: tc.name, Offset: 1}
		op, p = rt(t, c, protocol.OpCommit, protocol.FlagBinary, cm.AppendTo(nil))
		wantError(t, fmt.Sprintf("COMMIT group %q", tc.name), op, p, want)
	}
	if g := e.b.Groups(); len(g) != 0 {
		t.Fatalf("groups created by refused requests: %+v", g)
	}

	// A hierarchy is a name, not a path.
	if off := mustProduceOn(t, c, "a/b/c", "deep"); off != 0 {
		t.Fatalf("a/b/c offset %d", off)
	}
	cm := protocol.CommitRequest{Topic: "a/b/c", Group: "team/eu", Offset: 1}
	if op, p := rt(t, c, protocol.OpCommit, protocol.FlagBinary, cm.AppendTo(nil)); op != protocol.OpCommit {
		t.Fatalf("commit team/eu: %q", protocol.DecodeError(p))
	}
	if got := e.b.Topics(); strings.Join(got, ",") != "a/b/c,café,ok" {
		t.Fatalf("topics = %q", got)
	}
	ents, err := filepath.Glob(filepath.Join(e.dir, "topics", "*"))
	if err != nil || len(ents) != 3 {
		t.Fatalf("topic dirs %v %v, want 3", ents, err)
	}
	for _, d := range ents {
		if base := filepath.Base(d); !strings.HasPrefix(base, "t-") || strings.ContainsAny(base, `/\`) {
			t.Fatalf("topic dir %q", base)
		}
	}
	e.stop(t)
	if after := walkOutside(t, parent, e.dir); strings.Join(after, "\n") != strings.Join(before, "\n") {
		t.Fatalf("files appeared outside the data dir:\nbefore %q\nafter  %q", before, after)
	}
}

// TestDiskFullAndFsyncFailureOnTheWire (DESIGN.md §3, durability): ENOSPC
// fails the produce with an ERROR and stores nothing; once space returns
// the next offset follows the last acknowledged one. A failed fsync fences
// the partition: every later produce errors, readiness is false, reads
// still serve the acknowledged records, and a restart lifts the fence.
func TestDiskFullAndFsyncFailureOnTheWire(t *testing.T) {
	efs := vfs.NewErrorFS(nil)
	e := startHostile(t, func(o *broker.Options) { o.FS = efs }, nil)
	c := e.dial(t)
	for i := range 3 {
		if off := mustProduceOn(t, c, "d", fmt.Sprint("acked-", i)); off != uint64(i) {
			t.Fatalf("offset %d, want %d", off, i)
		}
	}

	efs.FailWrites(syscall.ENOSPC, 10) // a partial write, as a full disk gives
	op, p := produceOn(t, c, "d", 0, nil, []byte("no room"))
	wantError(t, "produce on a full disk", op, p, "storage full: no space left on device, nothing was stored")
	op, p = produceOn(t, c, "d", 0, nil, []byte("still no room"))
	wantError(t, "second produce on a full disk", op, p, "storage full: no space left on device, nothing was stored")
	if _, next, _ := e.b.Offsets("d", 0); next != 3 {
		t.Fatalf("next offset after ENOSPC = %d, want 3", next)
	}
	if !e.b.Ready() {
		t.Fatal("a full disk made the broker unready; only a failed fsync should")
	}
	efs.Heal()
	if off := mustProduceOn(t, c, "d", "acked-3"); off != 3 {
		t.Fatalf("first offset after space returned = %d, want 3", off)
	}

	efs.FailSyncs(syscall.EIO)
	const fenced = "partition unavailable: storage failed, broker restart required"
	op, p = produceOn(t, c, "d", 0, nil, []byte("unsynced"))
	wantError(t, "produce under a failing fsync", op, p, fenced)
	efs.Heal()
	op, p = produceOn(t, c, "d", 0, nil, []byte("after heal"))
	wantError(t, "produce on a fenced partition", op, p, fenced)
	if e.b.Ready() {
		t.Fatal("broker ready with a fenced partition")
	}
	if got := metricValue(t, e.reg, "flymq_storage_fenced_partitions"); got != 1 {
		t.Fatalf("flymq_storage_fenced_partitions = %v, want 1", got)
	}
	fr := fetchOn(t, c, "d", 0, 100)
	if len(fr.Messages) != 4 || fr.NextOffset != 4 {
		t.Fatalf("fetch on the fenced partition: %d messages, next %d; want 4, 4", len(fr.Messages), fr.NextOffset)
	}
	for i, m := range fr.Messages {
		if string(m.Value) != fmt.Sprint("acked-", i) || m.Offset != uint64(i) {
			t.Fatalf("message %d = %d %q", i, m.Offset, m.Value)
		}
	}

	// Restart: recovery re-reads the log. The record whose fsync failed
	// was written and may survive (it was never acknowledged, so either
	// way no promise is broken); every acknowledged one is there.
	e.stop(t)
	e2 := startHostile(t, func(o *broker.Options) { o.DataDir = e.dir }, nil)
	if !e2.b.Ready() {
		t.Fatal("not ready after restart")
	}
	c2 := e2.dial(t)
	fr = fetchOn(t, c2, "d", 0, 100)
	if len(fr.Messages) < 4 {
		t.Fatalf("%d messages after restart, want at least the 4 acknowledged", len(fr.Messages))
	}
	for i, m := range fr.Messages[:4] {
		if string(m.Value) != fmt.Sprint("acked-", i) {
			t.Fatalf("message %d after restart = %q", i, m.Value)
		}
	}
	if off := mustProduceOn(t, c2, "d", "after restart"); off != fr.NextOffset {
		t.Fatalf("offset after restart = %d, want %d", off, fr.NextOffset)
	}
}

// TestLifecycleRacesEndInCleanErrors: topics deleted under FETCH and
// CONSUME, and retention removing segments under readers, end each
// request in data or one of the exact clean answers, never a crash,
// a wrong record or an internal error (run under -race).
func TestLifecycleRacesEndInCleanErrors(t *testing.T) {
	e := startHostile(t, func(o *broker.Options) {
		o.Acks = storage.AcksNone
		o.SegmentBytes = 2048
		o.RetentionBytes = 4096
		o.RetentionCheckInterval = time.Millisecond
	}, nil)
	var stop atomic.Bool
	var wg sync.WaitGroup
	var served, cleanErrs atomic.Int64
	reader := func(topic string, consume bool) {
		defer wg.Done()
		c, err := net.Dial("tcp", e.addr)
		if err != nil {
			t.Error(err)
			return
		}
		defer c.Close()
		var off uint64
		for !stop.Load() {
			var op protocol.Op
			var p []byte
			if consume {
				req := protocol.ConsumeRequest{Topic: topic, Offset: off}
				op, p, err = tryRT(c, protocol.OpConsume, 1, req.AppendTo(nil))
			} else {
				req := protocol.FetchRequest{Topic: topic, Offset: off, MaxMessages: 50}
				op, p, err = tryRT(c, protocol.OpFetch, 1, req.AppendTo(nil))
			}
			if err != nil {
				t.Errorf("%s reader: %v", topic, err)
				return
			}
			switch op {
			case protocol.OpError:
				text := protocol.DecodeError(p)
				switch {
				case consume && (text == "topic not found" || text == "EOF"),
					!consume && text == "topic not found: "+topic:
					cleanErrs.Add(1)
				default:
					t.Errorf("%s reader at %d: unexpected error %q", topic, off, text)
					return
				}
				off = 0
			case protocol.OpConsume:
				var cr protocol.ConsumeResponse
				if cr.Decode(p) != nil || string(cr.Value) != valueFor(off) {
					t.Errorf("consume %s@%d returned %q", topic, off, cr.Value)
					return
				}
				served.Add(1)
				off++
			case protocol.OpFetch:
				var fr protocol.FetchResponse
				if err := fr.Decode(p); err != nil {
					t.Error(err)
					return
				}
				for i, m := range fr.Messages {
					if string(m.Value) != valueFor(m.Offset) || i > 0 && m.Offset != fr.Messages[i-1].Offset+1 {
						t.Errorf("fetch %s returned offset %d = %q", topic, m.Offset, m.Value)
						return
					}
				}
				served.Add(int64(len(fr.Messages)))
				if len(fr.Messages) == 0 && fr.NextOffset == off {
					// Below the lowest retained offset (or at the end):
					// start again from the lowest.
					lowest, _, err := e.b.Offsets(topic, 0)
					if err == nil {
						off = lowest
					}
					continue
				}
				off = fr.NextOffset
			}
		}
	}
	for _, topic := range []string{"deleted", "retained"} {
		for _, consume := range []bool{false, true} {
			wg.Add(1)
			go reader(topic, consume)
		}
	}
	w := e.dial(t)
	for round := range 10 {
		for i := range 40 {
			op, p := produceOn(t, w, "deleted", 0, nil, []byte(valueFor(uint64(i))))
			if op != protocol.OpProduce {
				t.Fatalf("produce: %q", protocol.DecodeError(p))
			}
		}
		del := protocol.TopicRequest{Topic: "deleted"}
		if op, p := rt(t, w, protocol.OpDeleteTopic, 1, del.AppendTo(nil)); op != protocol.OpDeleteTopic {
			t.Fatalf("delete: %q", protocol.DecodeError(p))
		}
		for i := range 40 {
			off := uint64(round*40 + i)
			op, p := produceOn(t, w, "retained", 0, nil, []byte(valueFor(off)))
			if op != protocol.OpProduce {
				t.Fatalf("produce: %q", protocol.DecodeError(p))
			}
		}
	}
	stop.Store(true)
	wg.Wait()
	lowest, next, err := e.b.Offsets("retained", 0)
	if err != nil || next != 400 || lowest == 0 {
		t.Fatalf("retained: lowest %d next %d %v; want retention to have run and next 400", lowest, next, err)
	}
	t.Logf("served %d records, %d clean errors", served.Load(), cleanErrs.Load())
}

// valueFor is the value stored at an offset, so readers can tell a wrong
// or freed record from the right one.
func valueFor(off uint64) string { return fmt.Sprintf("value-%06d-%s", off, strings.Repeat("p", 100)) }
