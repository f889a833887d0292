package main

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// pipe is one producing connection of a target. The driver calls send from
// its writer goroutine and recv from its reader goroutine, concurrently.
type pipe interface {
	// send publishes the given values, one request each, in order. vals
	// stay untouched until their replies have been received.
	send(vals [][]byte, partitions []int32) error
	// recv blocks for the next reply, in request order, and returns where
	// the broker stored the message.
	recv() (Loc, error)
	// interrupt unblocks a recv waiting for a reply that will never come
	// (the writer has finished and every reply was received).
	interrupt()
	close() error
}

// Workload is what every connection does.
type Workload struct {
	Conns      int
	Inflight   int
	Size       int
	Duration   time.Duration // used when Count is 0
	Count      int64         // total over all connections
	Partitions int
}

// ProduceResult is the outcome of the produce phase.
type ProduceResult struct {
	Acked   int64
	Elapsed time.Duration // first send to last reply
	Hist    *Histogram
}

// errStop ends the run on purpose (not reported).
var errStop = errors.New("stopped")

// runProduce drives w over the pipes (one per connection), keeping
// w.Inflight requests outstanding on each, and records in ledger where
// every acknowledged message went.
func runProduce(ctx context.Context, w Workload, pipes []pipe, ledger *Ledger) (*ProduceResult, error) {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(errStop)
	// Closing the pipes is the only way to unblock I/O when the run is
	// cancelled (error elsewhere, timeout).
	stopClose := context.AfterFunc(ctx, func() {
		for _, p := range pipes {
			_ = p.close()
		}
	})
	defer stopClose()

	start := time.Now()
	var deadline time.Time
	if w.Count == 0 {
		deadline = start.Add(w.Duration)
	}
	hists := make([]*Histogram, len(pipes))
	lastReply := make([]time.Time, len(pipes))
	var wg sync.WaitGroup
	for i, p := range pipes {
		quota := int64(-1)
		if w.Count > 0 {
			quota = w.Count / int64(len(pipes))
			if int64(i) < w.Count%int64(len(pipes)) {
				quota++
			}
		}
		c := &connDriver{
			id: uint32(i), w: w, p: p, values: ledger.Values, quota: quota, deadline: deadline,
			hist: NewHistogram(), base: start,
		}
		hists[i] = c.hist
		wg.Add(2)
		go func() {
			defer wg.Done()
			if err := c.write(ctx); err != nil {
				cancel(fmt.Errorf("conn %d: %w", i, err))
			}
		}()
		go func() {
			defer wg.Done()
			locs, last, err := c.read(ctx)
			ledger.Locs[i] = locs
			lastReply[i] = last
			if err != nil {
				cancel(fmt.Errorf("conn %d: %w", i, err))
			}
		}()
	}
	wg.Wait()
	if err := context.Cause(ctx); err != nil && !errors.Is(err, errStop) {
		return nil, err
	}
	res := &ProduceResult{Hist: NewHistogram()}
	end := start
	for i, h := range hists {
		res.Hist.Merge(h)
		if lastReply[i].After(end) {
			end = lastReply[i]
		}
	}
	res.Acked = ledger.Acked()
	res.Elapsed = end.Sub(start)
	return res, nil
}

// connDriver is the writer/reader pair of one connection.
type connDriver struct {
	id       uint32
	w        Workload
	p        pipe
	values   *Values
	quota    int64 // messages to send, -1 = until deadline
	deadline time.Time
	base     time.Time
	hist     *Histogram

	tokens   chan struct{}  // one per request allowed in flight
	sentAt   []atomic.Int64 // ns since base, indexed by seq % Inflight
	sent     atomic.Int64
	stopping atomic.Bool
	once     sync.Once
}

func (c *connDriver) init() {
	c.once.Do(func() {
		c.tokens = make(chan struct{}, c.w.Inflight)
		for range c.w.Inflight {
			c.tokens <- struct{}{}
		}
		c.sentAt = make([]atomic.Int64, c.w.Inflight)
	})
}

// write keeps Inflight requests outstanding: it waits for a free slot,
// then takes every other free slot too, so that a burst of replies turns
// into one batch of requests (one write syscall for FlyMQ).
func (c *connDriver) write(ctx context.Context) error {
	c.init()
	W := c.w.Inflight
	ring := make([][]byte, W) // value buffers, reused once their reply is in
	for i := range ring {
		ring[i] = make([]byte, c.values.Size())
	}
	vals := make([][]byte, 0, W)
	parts := make([]int32, 0, W)
	var seq uint64
	held := 0 // tokens held when the loop ends
	for {
		select {
		case <-c.tokens:
		case <-ctx.Done():
			return nil
		}
		taken := 1
	more:
		for taken < W {
			select {
			case <-c.tokens:
				taken++
			default:
				break more
			}
		}
		n := taken
		if c.quota >= 0 {
			n = int(min(int64(n), c.quota-int64(seq)))
		} else if !time.Now().Before(c.deadline) {
			n = 0
		}
		if n <= 0 {
			held = taken
			break
		}
		for range taken - n {
			c.tokens <- struct{}{} // the quota ran out: give unused slots back
		}
		vals, parts = vals[:0], parts[:0]
		for i := range n {
			s := seq + uint64(i)
			buf := ring[s%uint64(W)]
			c.values.Fill(buf, c.id, s)
			vals = append(vals, buf)
			parts = append(parts, int32((uint64(c.id)+s)%uint64(c.w.Partitions)))
		}
		now := int64(time.Since(c.base))
		for i := range n {
			c.sentAt[(seq+uint64(i))%uint64(W)].Store(now)
		}
		seq += uint64(n)
		c.sent.Store(int64(seq))
		if err := c.p.send(vals, parts); err != nil {
			return fmt.Errorf("send: %w", err)
		}
	}
	// Done sending: once every slot is back, every reply has been read
	// and the reader can be told to stop waiting.
	for ; held < W; held++ {
		select {
		case <-c.tokens:
		case <-ctx.Done():
			return nil
		}
	}
	c.stopping.Store(true)
	c.p.interrupt()
	return nil
}

func (c *connDriver) read(ctx context.Context) ([]Loc, time.Time, error) {
	c.init()
	W := uint64(c.w.Inflight)
	locs := make([]Loc, 0, 1024)
	var last time.Time
	for {
		loc, err := c.p.recv()
		if err != nil {
			if c.stopping.Load() || ctx.Err() != nil {
				return locs, last, nil
			}
			return locs, last, fmt.Errorf("receive reply %d: %w", len(locs), err)
		}
		last = time.Now()
		seq := uint64(len(locs))
		if int64(seq) >= c.sent.Load() {
			return locs, last, fmt.Errorf("reply %d arrived before its request was sent", seq)
		}
		c.hist.Record(int64(last.Sub(c.base)) - c.sentAt[seq%W].Load())
		locs = append(locs, loc)
		c.tokens <- struct{}{}
	}
}
