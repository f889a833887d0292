package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/flymq/flymq/internal/protocol"
)

// ErrReply is returned when the broker answers with an ERROR frame or an
// unexpected opcode.
var ErrReply = errors.New("broker replied with an error")

// flymqDialer opens authenticated connections to a FlyMQ broker.
type flymqDialer struct {
	addr     string
	tls      *tls.Config // nil = plain TCP
	user     string      // empty = no AUTH
	password string
}

// flymqConn is one connection with its frame reader.
type flymqConn struct {
	nc net.Conn
	fr *protocol.FrameReader
}

func (d *flymqDialer) dial(ctx context.Context) (*flymqConn, error) {
	var nd net.Dialer
	nc, err := nd.DialContext(ctx, "tcp", d.addr)
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", d.addr, err)
	}
	if d.tls != nil {
		tc := tls.Client(nc, d.tls)
		if err := tc.HandshakeContext(ctx); err != nil {
			nc.Close()
			return nil, fmt.Errorf("tls handshake with %s: %w", d.addr, err)
		}
		nc = tc
	}
	c := &flymqConn{nc: nc, fr: protocol.NewFrameReader(nc)}
	if d.user != "" {
		req := protocol.AuthRequest{Username: d.user, Password: d.password}
		p, err := c.call(protocol.OpAuth, req.AppendTo(nil), protocol.OpAuthResponse)
		if err != nil {
			nc.Close()
			return nil, fmt.Errorf("auth: %w", err)
		}
		var resp protocol.AuthResponse
		if err := resp.Decode(p); err != nil {
			nc.Close()
			return nil, fmt.Errorf("auth reply: %w", err)
		}
		if !resp.Success {
			nc.Close()
			return nil, fmt.Errorf("auth as %q: %w: %s", d.user, ErrReply, resp.Error)
		}
	}
	return c, nil
}

// call sends one request and reads its reply, which must carry wantOp.
func (c *flymqConn) call(op protocol.Op, payload []byte, wantOp protocol.Op) ([]byte, error) {
	if _, err := c.nc.Write(protocol.AppendFrame(nil, op, protocol.FlagBinary, payload)); err != nil {
		return nil, fmt.Errorf("%s: write: %w", op, err)
	}
	h, p, err := c.fr.Next()
	if err != nil {
		return nil, fmt.Errorf("%s: read reply: %w", op, err)
	}
	return p, checkReply(op, h, p, wantOp)
}

func checkReply(op protocol.Op, h protocol.Header, p []byte, wantOp protocol.Op) error {
	if h.Op == protocol.OpError {
		return fmt.Errorf("%s: %w: %s", op, ErrReply, protocol.DecodeError(p))
	}
	if h.Op != wantOp {
		return fmt.Errorf("%s: %w: reply opcode 0x%02x", op, ErrReply, uint8(h.Op))
	}
	return nil
}

// createTopic creates topic with the given partition count (a topic that
// already exists is left as it is, per CREATE_TOPIC semantics).
func (d *flymqDialer) createTopic(ctx context.Context, topic string, partitions int) error {
	c, err := d.dial(ctx)
	if err != nil {
		return err
	}
	defer c.nc.Close()
	req := protocol.CreateTopicRequest{Topic: topic, Partitions: int32(partitions)}
	_, err = c.call(protocol.OpCreateTopic, req.AppendTo(nil), protocol.OpCreateTopic)
	return err
}

// flymqPipe pipelines PRODUCE frames on one connection.
type flymqPipe struct {
	c     *flymqConn
	topic string
	size  int
	buf   []byte // writer-owned frame batch
	meta  protocol.RecordMetadata
	once  sync.Once
}

func newFlymqPipe(c *flymqConn, topic string, size int) *flymqPipe {
	return &flymqPipe{c: c, topic: topic, size: size, meta: protocol.RecordMetadata{Topic: topic}}
}

// send appends every PRODUCE frame to one buffer and writes it with one
// syscall: the broker sees the whole burst at once, as a pipelining client
// library would send it.
func (p *flymqPipe) send(vals [][]byte, partitions []int32) error {
	b := p.buf[:0]
	for i, v := range vals {
		req := protocol.ProduceRequest{Topic: p.topic, Value: v, Partition: partitions[i]}
		n := 2 + len(p.topic) + 4 + 4 + len(v) + 4
		b = protocol.AppendHeader(b, protocol.OpProduce, protocol.FlagBinary, n)
		b = req.AppendTo(b)
	}
	p.buf = b
	_, err := p.c.nc.Write(b)
	return err
}

func (p *flymqPipe) recv() (Loc, error) {
	h, pl, err := p.c.fr.Next()
	if err != nil {
		return 0, err
	}
	if err := checkReply(protocol.OpProduce, h, pl, protocol.OpProduce); err != nil {
		return 0, err
	}
	if err := p.meta.Decode(pl); err != nil {
		return 0, fmt.Errorf("produce reply: %w", err)
	}
	if p.meta.ValueSize != int32(p.size) {
		return 0, fmt.Errorf("produce reply: value_size %d, sent %d", p.meta.ValueSize, p.size)
	}
	if p.meta.Partition < 0 || p.meta.Partition > 0xffff || p.meta.Offset >= 1<<48 {
		return 0, fmt.Errorf("produce reply: partition %d offset %d out of range", p.meta.Partition, p.meta.Offset)
	}
	return MakeLoc(p.meta.Partition, p.meta.Offset), nil
}

func (p *flymqPipe) interrupt() { _ = p.c.nc.SetReadDeadline(time.Now()) }

func (p *flymqPipe) close() error {
	var err error
	p.once.Do(func() { err = p.c.nc.Close() })
	return err
}

// FetchResult is the outcome of the fetch phase.
type FetchResult struct {
	Messages int64
	Elapsed  time.Duration
}

// maxFetchMessages is the most records one FETCH examines (core.md §6.7).
const maxFetchMessages = 1000

// fetchReplyBytes caps the reply size the bench asks for. A thousand 1 KiB
// messages still fit; larger messages come in fewer per request rather
// than in replies of up to 32 MiB, which would only add copying on both
// sides without changing what is measured.
const fetchReplyBytes = 1 << 20

// fetchReplyTimeout fails a fetch whose broker stopped answering, long
// before the whole run's timeout.
const fetchReplyTimeout = 30 * time.Second

// fetchStep is how many messages one FETCH asks for: as many as the broker
// scans per request, within fetchReplyBytes (at least one).
func fetchStep(size int) int {
	n := (fetchReplyBytes - protocol.FetchResponseHeaderSize) / protocol.FetchedMessageSize(0, size)
	return max(1, min(maxFetchMessages, n))
}

// flymqFetch reads back every acknowledged message, one connection per
// partition with inflight FETCH requests pipelined on each, and checks
// every message against the ledger.
func flymqFetch(ctx context.Context, d *flymqDialer, topic string, partitions, inflight int, ledger *Ledger) (*FetchResult, error) {
	ledger.PrepareVerify()
	lo, hi, count := ledger.Ranges(partitions)
	start := time.Now()
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(errStop)
	var wg sync.WaitGroup
	for p := range partitions {
		if count[p] == 0 {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := fetchPartition(ctx, d, topic, int32(p), lo[p], hi[p]+1, inflight, ledger); err != nil {
				cancel(fmt.Errorf("fetch partition %d: %w", p, err))
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	if err := context.Cause(ctx); err != nil && !errors.Is(err, errStop) {
		return nil, err
	}
	acked := ledger.Acked()
	if missing := ledger.Missing(); missing > 0 {
		return nil, fmt.Errorf("%d of %d acknowledged messages were not read back", missing, acked)
	}
	return &FetchResult{Messages: acked, Elapsed: elapsed}, nil
}

// fetchPartition reads offsets [from, to) of one partition. It first asks
// for one step to learn how many messages the broker returns per reply at
// this size, then pipelines requests at that stride; a reply that comes
// back short leaves a gap that is fetched again afterwards.
func fetchPartition(ctx context.Context, d *flymqDialer, topic string, part int32, from, to uint64, inflight int, ledger *Ledger) error {
	c, err := d.dial(ctx)
	if err != nil {
		return err
	}
	stop := context.AfterFunc(ctx, func() { c.nc.Close() })
	defer stop()
	defer c.nc.Close()

	step := uint64(fetchStep(ledger.Values.Size()))
	var resp protocol.FetchResponse
	fetchOne := func(off uint64, want uint64) (uint64, error) {
		_ = c.nc.SetReadDeadline(time.Now().Add(fetchReplyTimeout))
		req := protocol.FetchRequest{Topic: topic, Partition: part, Offset: off, MaxMessages: int32(want)}
		p, err := c.call(protocol.OpFetch, req.AppendTo(nil), protocol.OpFetch)
		if err != nil {
			return 0, err
		}
		if err := resp.Decode(p); err != nil {
			return 0, fmt.Errorf("fetch reply: %w", err)
		}
		return checkFetched(&resp, part, off, want, ledger)
	}

	// Probe: the first reply tells the broker's real batch size.
	got, err := fetchOne(from, min(step, to-from))
	if err != nil {
		return err
	}
	if got == 0 {
		return fmt.Errorf("offset %d: broker returned no message", from)
	}
	if got < min(step, to-from) {
		step = got
	}
	var gaps [][2]uint64
	next := from + got

	// Pipelined pass.
	type inflightReq struct{ off, want uint64 }
	queue := make(chan inflightReq, inflight)
	readErr := make(chan error, 1)
	go func() {
		for r := range queue {
			_ = c.nc.SetReadDeadline(time.Now().Add(fetchReplyTimeout))
			h, p, err := c.fr.Next()
			if err == nil {
				err = checkReply(protocol.OpFetch, h, p, protocol.OpFetch)
			}
			if err == nil {
				err = resp.Decode(p)
			}
			var n uint64
			if err == nil {
				n, err = checkFetched(&resp, part, r.off, r.want, ledger)
			}
			if err != nil {
				readErr <- err
				c.nc.Close()
				for range queue {
				}
				return
			}
			if n < r.want {
				gaps = append(gaps, [2]uint64{r.off + n, r.off + r.want})
			}
		}
		readErr <- nil
	}()
	// One write per request: a FETCH request is tiny next to its reply
	// (up to a thousand messages), so batching writes would gain nothing.
	// The queue's capacity bounds the requests in flight.
	var buf []byte
	for off := next; off < to; {
		want := min(step, to-off)
		req := protocol.FetchRequest{Topic: topic, Partition: part, Offset: off, MaxMessages: int32(want)}
		buf = protocol.AppendFrame(buf[:0], protocol.OpFetch, protocol.FlagBinary, req.AppendTo(nil))
		queue <- inflightReq{off, want}
		if _, err := c.nc.Write(buf); err != nil {
			close(queue)
			if rerr := <-readErr; rerr != nil {
				return rerr
			}
			return fmt.Errorf("write fetch: %w", err)
		}
		off += want
	}
	close(queue)
	if err := <-readErr; err != nil {
		return err
	}

	// Refetch what short replies left out, one request at a time.
	for _, g := range gaps {
		for off := g[0]; off < g[1]; {
			n, err := fetchOne(off, min(step, g[1]-off))
			if err != nil {
				return err
			}
			if n == 0 {
				return fmt.Errorf("offset %d: broker returned no message", off)
			}
			off += n
		}
	}
	return nil
}

// checkFetched verifies one FETCH reply for a request at off that asked
// for want messages, and returns how many it carried.
func checkFetched(resp *protocol.FetchResponse, part int32, off, want uint64, ledger *Ledger) (uint64, error) {
	n := uint64(len(resp.Messages))
	if n > want {
		return 0, fmt.Errorf("offset %d: asked for %d messages, got %d", off, want, n)
	}
	for i := range resp.Messages {
		m := &resp.Messages[i]
		if m.Offset != off+uint64(i) {
			return 0, fmt.Errorf("offset %d: message %d of the reply has offset %d", off, i, m.Offset)
		}
		if len(m.Key) != 0 {
			return 0, fmt.Errorf("offset %d: key of %d bytes, none was sent", m.Offset, len(m.Key))
		}
		if err := ledger.Check(MakeLoc(part, m.Offset), m.Value); err != nil {
			return 0, err
		}
	}
	if resp.NextOffset != off+n {
		return 0, fmt.Errorf("offset %d: next_offset %d after %d messages", off, resp.NextOffset, n)
	}
	return n, nil
}
