package storage

import (
	"crypto/rand"
	"fmt"
	"path/filepath"
	"time"

	"go.uber.org/zap"

	"github.com/flymq/flymq/internal/storage/record"
)

// appendReq is one Append call waiting in the group-commit queue.
type appendReq struct {
	recs  []Record
	size  int // encoded size of recs
	first uint64
	err   error
	done  chan struct{}
}

// maxRecordBody keeps a frame under the record package's length limit.
const maxRecordBody = record.MaxBodySize - record.BodyHeaderSize - 64

// Append appends recs as consecutive offsets and returns the first. It
// returns once the records are as durable as Options.Acks asks; only then
// are they visible to Read. Concurrent callers are batched into one write
// and (AcksAll) one fsync. On error no record of this call is
// acknowledged: a write error leaves the log as it was, so the next Append
// gets the same offsets; ErrFenced means the partition must be reopened.
func (p *Partition) Append(recs []Record) (uint64, error) {
	req := &appendReq{recs: recs, done: make(chan struct{})}
	for i := range recs {
		r := &recs[i]
		if r.Flags&record.FlagHeaders != 0 {
			return 0, fmt.Errorf("%w: flag bit 0x80 is reserved", ErrInvalidRecord)
		}
		n := record.FrameSize(len(r.Key), len(r.Value), 0, 16)
		if n-record.FrameHeaderSize > maxRecordBody {
			return 0, fmt.Errorf("%w: %d bytes", ErrRecordTooLarge, len(r.Key)+len(r.Value))
		}
		req.size += n
	}

	p.qmu.Lock()
	if p.qclosed {
		p.qmu.Unlock()
		return 0, ErrClosed
	}
	p.queue = append(p.queue, req)
	if p.leading {
		p.qmu.Unlock()
		<-req.done
		return req.first, req.err
	}
	// Lead: commit whatever is queued, again and again, until the queue is
	// empty. Callers that arrive during a commit form the next group.
	p.leading = true
	for len(p.queue) > 0 {
		batch := p.queue
		p.queue = p.spare
		p.qmu.Unlock()
		p.commit(batch)
		clear(batch)
		p.qmu.Lock()
		p.spare = batch[:0]
	}
	p.leading = false
	p.qmu.Unlock()
	return req.first, req.err
}

// group is the part of a batch that goes into one segment with one write.
type group struct {
	reqs    []*appendReq
	entries []pendingEntry
	next    uint64 // offset after the group
	bytes   int64
}

type pendingEntry struct {
	offset uint64
	pos    int64
	ts     int64
}

func finish(reqs []*appendReq, err error) {
	for _, r := range reqs {
		r.err = err
		close(r.done)
	}
}

// commit writes one batch of requests and completes each of them.
func (p *Partition) commit(batch []*appendReq) {
	p.wmu.Lock()
	defer p.wmu.Unlock()
	if p.closed {
		finish(batch, ErrClosed)
		return
	}
	if err := p.fencedErr(); err != nil {
		finish(batch, err)
		return
	}
	now := time.Now().UnixMilli()
	seg := p.segs[len(p.segs)-1]
	g := group{next: p.next}
	p.wbuf = p.wbuf[:0]
	defer func() {
		if cap(p.wbuf) > 8<<20 {
			p.wbuf = nil // do not pin a huge buffer after a burst
		}
	}()
	for i, req := range batch {
		// Roll between requests, never inside one, so each request lives
		// in a single segment and fails or succeeds as a whole.
		used := seg.size + int64(len(p.wbuf))
		if used > record.SegmentHeaderSize && used+int64(req.size) > p.opts.SegmentBytes {
			err := p.writeGroup(seg, &g)
			if err == nil {
				err = p.fsync(seg) // a rolled segment is always durable
			}
			if err != nil {
				finish(g.reqs, err)
				finish(batch[i:], err)
				return
			}
			p.publish(seg, &g)
			finish(g.reqs, nil)
			if seg, err = p.roll(); err != nil {
				finish(batch[i:], err)
				return
			}
			g = group{next: p.next}
		}
		req.first = g.next
		for j := range req.recs {
			r := &req.recs[j]
			ts := r.Timestamp
			if ts == 0 {
				ts = now
			}
			h := record.Header{Flags: r.Flags, Offset: g.next, Timestamp: ts, Expiry: r.Expiry}
			if seg.cipher.Enabled() {
				_, _ = rand.Read(h.Nonce[:]) // crypto/rand never fails (Go 1.24+)
			}
			g.entries = append(g.entries, pendingEntry{offset: g.next,
				pos: seg.size + int64(len(p.wbuf)), ts: ts})
			p.wbuf = record.AppendFrame(p.wbuf, seg.cipher, p.waad, &h, r.Key, r.Value, nil)
			g.next++
		}
		g.reqs = append(g.reqs, req)
	}
	err := p.writeGroup(seg, &g)
	if err == nil && p.opts.Acks == AcksAll {
		err = p.fsync(seg)
	}
	if err != nil {
		finish(g.reqs, err)
		return
	}
	p.publish(seg, &g)
	finish(g.reqs, nil)
}

// writeGroup writes the encoded group at the end of seg. A write error
// cuts the segment back to its last good frame, so the next Append reuses
// the offsets nobody was given; if the cut-back fails too the partition is
// fenced, since garbage would remain behind the next frame.
func (p *Partition) writeGroup(seg *segment, g *group) error {
	g.bytes = int64(len(p.wbuf))
	if g.bytes == 0 {
		return nil
	}
	_, err := seg.f.WriteAt(p.wbuf, seg.size)
	p.wbuf = p.wbuf[:0]
	if err == nil {
		p.opts.Metrics.inc(mSealed, len(g.entries))
		return nil
	}
	p.opts.Metrics.inc(mWriteErrors, 1)
	err = fmt.Errorf("storage: write %s: %w", filepath.Base(seg.path), err)
	if terr := seg.f.Truncate(seg.size); terr != nil {
		err = p.fence(fmt.Errorf("cut back %s after failed write: %w", filepath.Base(seg.path), terr))
	}
	p.log.Error("segment write failed", zap.String("segment", seg.path),
		zap.Int64("position", seg.size), zap.Int("records", len(g.entries)), zap.Error(err))
	return err
}

// publish makes a written group visible to readers.
func (p *Partition) publish(seg *segment, g *group) {
	p.mu.Lock()
	for _, e := range g.entries {
		seg.addIndex(e.offset, e.pos, e.ts)
	}
	seg.size += g.bytes
	seg.next = g.next
	p.next = g.next
	p.mu.Unlock()
	p.opts.Metrics.addGauge(mBytes, float64(g.bytes))
	if p.dirty != nil {
		select {
		case p.dirty <- struct{}{}:
		default: // a sync is already due
		}
	}
}

// roll starts a new active segment at the next offset. The caller has
// fsynced the old one. Its indexes are persisted as a cache.
func (p *Partition) roll() (*segment, error) {
	old := p.segs[len(p.segs)-1]
	s, err := p.newSegment(p.next)
	if err != nil {
		return nil, err
	}
	p.mu.Lock()
	p.segs = append(p.segs, s)
	p.mu.Unlock()
	p.opts.Metrics.addGauge(mSegments, 1)
	p.opts.Metrics.addGauge(mBytes, float64(s.size))
	if err := p.writeIndexes(old); err != nil {
		p.log.Warn("could not persist segment index; it will be rebuilt",
			zap.String("segment", old.path), zap.Error(err))
	}
	return s, nil
}
