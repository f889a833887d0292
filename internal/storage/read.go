package storage

import (
	"errors"
	"fmt"
	"io"
	"sort"

	"github.com/flymq/flymq/internal/crypto"
	"github.com/flymq/flymq/internal/storage/record"
)

// readSlack is read past the wanted bytes so that the frame after the last
// one asked for is usually seen whole and the sparse-index gap is covered.
const readSlack = indexIntervalBytes + 512

// Read returns consecutive messages starting at offset, at most
// maxMessages (<= 0: no count limit) and about maxBytes of frames (<= 0:
// 1 MiB), but always at least one message if offset < NextOffset(), however
// large. It stops at a segment boundary; the caller asks again from the
// last offset + 1. offset == NextOffset() returns no messages and no error;
// below LowestOffset or above NextOffset is ErrOffsetOutOfRange.
//
// The wanted range of the segment is read with one ReadAt into one buffer,
// and records are authenticated and decrypted in place: the messages'
// Key and Value alias that buffer.
func (p *Partition) Read(offset uint64, maxMessages, maxBytes int) ([]Message, error) {
	if maxBytes <= 0 {
		maxBytes = defaultReadBytes
	}
	p.mu.RLock()
	if p.closed {
		p.mu.RUnlock()
		return nil, ErrClosed
	}
	low, next := p.segs[0].base, p.next
	if offset < low || offset > next {
		p.mu.RUnlock()
		return nil, fmt.Errorf("%w: %d not in [%d, %d]", ErrOffsetOutOfRange, offset, low, next)
	}
	if offset == next {
		p.mu.RUnlock()
		return nil, nil
	}
	i := sort.Search(len(p.segs), func(i int) bool { return p.segs[i].base > offset }) - 1
	seg := p.segs[i]
	start, startOff := seg.lookup(offset)
	end, segNext := seg.size, seg.next
	limit := segNext - offset
	if maxMessages > 0 && uint64(maxMessages) < limit {
		limit = uint64(maxMessages)
	}
	// The sparse index bounds where the last wanted frame ends, so a small
	// maxMessages does not read maxBytes.
	stop := seg.endBefore(offset + limit)
	seg.ref() // keeps the file open even if retention or Remove retires it now
	p.mu.RUnlock()
	defer seg.unref()

	want := min(stop-start, int64(maxBytes)+readSlack)
	buf := make([]byte, want)
	if err := readAt(seg.f, buf, start); err != nil {
		return nil, p.readErr(err)
	}

	aad := p.aad.Clone()
	msgs := make([]Message, 0, min(limit, 64))
	pos, cur, used := start, startOff, 0
	for uint64(len(msgs)) < limit && pos < end {
		b := buf[pos-start:]
		n := record.PeekSize(b)
		if n == 0 || n > len(b) {
			if n == 0 && len(b) >= record.FrameHeaderSize {
				return nil, &CorruptionError{Segment: seg.path, Position: pos, Err: record.ErrInvalid}
			}
			if len(msgs) > 0 {
				break
			}
			// The first wanted frame is larger than what was read (or its
			// header was cut): read it whole, in one more call.
			if n == 0 {
				n = record.FrameHeaderSize
				var hb [record.FrameHeaderSize]byte
				if err := readAt(seg.f, hb[:], pos); err != nil {
					return nil, p.readErr(err)
				}
				if n = record.PeekSize(hb[:]); n == 0 {
					return nil, &CorruptionError{Segment: seg.path, Position: pos, Err: record.ErrInvalid}
				}
			}
			buf = make([]byte, n)
			start = pos
			if err := readAt(seg.f, buf, pos); err != nil {
				return nil, p.readErr(err)
			}
			b = buf
		}
		if cur < offset {
			// Before the wanted offset (sparse index): skip by length.
			pos += int64(n)
			cur++
			continue
		}
		if len(msgs) > 0 && used+n > maxBytes {
			break
		}
		body, _, err := record.DecodeFrame(b[:n])
		if err != nil {
			return nil, &CorruptionError{Segment: seg.path, Position: pos, Err: err}
		}
		h := record.ParseHeader(body)
		if h.Offset != cur {
			return nil, &CorruptionError{Segment: seg.path, Position: pos,
				Err: fmt.Errorf("frame holds offset %d, expected %d", h.Offset, cur)}
		}
		pl, err := record.Open(seg.cipher, aad, body)
		if err != nil {
			if errors.Is(err, crypto.ErrOpen) {
				p.opts.Metrics.inc(mAuthFailures, 1)
			}
			return nil, &CorruptionError{Segment: seg.path, Position: pos,
				Err: fmt.Errorf("record offset %d, key id %s: %w", cur, crypto.KeyID(seg.hdr.KeyID), err)}
		}
		msgs = append(msgs, Message{Offset: cur, Timestamp: h.Timestamp, Expiry: h.Expiry,
			Flags: h.Flags & record.UserFlagsMask, Key: pl.Key, Value: pl.Value})
		used += n
		pos += int64(n)
		cur++
	}
	p.opts.Metrics.inc(mOpened, len(msgs))
	return msgs, nil
}

func readAt(f File, b []byte, off int64) error {
	n, err := f.ReadAt(b, off)
	if err != nil && !(errors.Is(err, io.EOF) && n == len(b)) {
		return err
	}
	return nil
}

// readErr turns a read on a file retired under us into ErrClosed.
func (p *Partition) readErr(err error) error {
	p.mu.RLock()
	closed := p.closed
	p.mu.RUnlock()
	if closed {
		return ErrClosed
	}
	return fmt.Errorf("storage: read segment: %w", err)
}

// OffsetForTime returns the first offset whose record timestamp is at or
// after ms, or NextOffset() if there is none. Timestamps need not be
// monotonic: the time index keeps the running maximum.
func (p *Partition) OffsetForTime(ms int64) (uint64, error) {
	p.mu.RLock()
	if p.closed {
		p.mu.RUnlock()
		return 0, ErrClosed
	}
	var seg *segment
	for _, s := range p.segs {
		if !s.empty() && s.maxTS >= ms {
			seg = s
			break
		}
	}
	if seg == nil {
		next := p.next
		p.mu.RUnlock()
		return next, nil
	}
	// Start after the last sample whose running maximum is still < ms.
	from := seg.base
	j := sort.Search(len(seg.tindex), func(i int) bool { return seg.tindex[i].ts >= ms })
	if j > 0 {
		from = seg.base + uint64(seg.tindex[j-1].rel)
	}
	pos, cur := seg.lookup(from)
	end, segNext := seg.size, seg.next
	seg.ref()
	p.mu.RUnlock()
	defer seg.unref()

	sc := newScanner(seg.f, pos, end, 64<<10)
	for cur < segNext {
		at := sc.at()
		frame, err := sc.next()
		if err != nil {
			if isFrameErr(err) {
				return 0, &CorruptionError{Segment: seg.path, Position: at, Err: err}
			}
			return 0, p.readErr(err)
		}
		if record.Timestamp(frame[record.FrameHeaderSize:]) >= ms {
			return cur, nil
		}
		cur++
	}
	return segNext, nil
}
