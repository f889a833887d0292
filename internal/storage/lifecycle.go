package storage

import (
	"errors"
	"fmt"
	"io/fs"
	"time"

	"go.uber.org/zap"
)

// LowestOffset returns the first offset still in the log.
func (p *Partition) LowestOffset() uint64 {
	p.mu.RLock()
	defer p.mu.RUnlock()
	if len(p.segs) == 0 {
		return p.next
	}
	return p.segs[0].base
}

// NextOffset returns the offset the next appended record gets: the log end
// offset, counting acknowledged records only.
func (p *Partition) NextOffset() uint64 {
	p.mu.RLock()
	defer p.mu.RUnlock()
	return p.next
}

// Stats returns the number of segments and their total size.
func (p *Partition) Stats() Stats {
	p.mu.RLock()
	defer p.mu.RUnlock()
	st := Stats{Segments: len(p.segs)}
	for _, s := range p.segs {
		st.Bytes += s.size
	}
	return st
}

// Fenced returns the fencing error, or nil while the partition accepts
// writes (for readiness checks).
func (p *Partition) Fenced() error { return p.fencedErr() }

// Sync fsyncs the active segment. A failure fences the partition. The
// fsync runs outside the writer lock, so appends continue meanwhile.
func (p *Partition) Sync() error {
	p.wmu.Lock()
	if p.closed {
		p.wmu.Unlock()
		return ErrClosed
	}
	if err := p.fencedErr(); err != nil {
		p.wmu.Unlock()
		return err
	}
	p.mu.RLock()
	seg := p.segs[len(p.segs)-1]
	seg.ref()
	p.mu.RUnlock()
	p.wmu.Unlock()
	defer seg.unref()
	return p.fsync(seg)
}

// syncLoop is AcksLeader's background fsync: after a write it waits one
// SyncInterval, so the writes of that window share one fsync, then syncs.
// With nothing written it sleeps.
func (p *Partition) syncLoop() {
	defer close(p.syncDone)
	t := time.NewTimer(p.opts.SyncInterval)
	t.Stop()
	for {
		select {
		case <-p.stopSync:
			return
		case <-p.dirty:
		}
		t.Reset(p.opts.SyncInterval)
		select {
		case <-p.stopSync:
			t.Stop()
			return
		case <-t.C:
		}
		if err := p.Sync(); err != nil {
			if errors.Is(err, ErrFenced) || errors.Is(err, ErrClosed) {
				return // fence() has logged and counted it
			}
		}
	}
}

// Close stops appends (queued ones fail with ErrClosed), fsyncs the active
// segment and closes the files. The fsync error, if any, is returned.
func (p *Partition) Close() error {
	p.qmu.Lock()
	p.qclosed = true
	p.qmu.Unlock()
	if p.stopSync != nil {
		select {
		case <-p.stopSync:
		default:
			close(p.stopSync)
		}
		<-p.syncDone
	}
	p.wmu.Lock()
	defer p.wmu.Unlock()
	if p.closed {
		return ErrClosed
	}
	var err error
	if p.fencedErr() == nil {
		err = p.fsync(p.segs[len(p.segs)-1])
	}
	p.mu.Lock()
	p.closed = true
	segs := p.segs
	p.mu.Unlock()
	var bytes int64
	for _, s := range segs {
		bytes += s.size
		s.unref()
	}
	p.opts.Metrics.addGauge(mSegments, -float64(len(segs)))
	p.opts.Metrics.addGauge(mBytes, -float64(bytes))
	if p.fencedErr() != nil {
		p.opts.Metrics.addGauge(mFenced, -1)
	}
	return err
}

// Remove closes the partition and deletes its directory (topic deletion).
// Readers still holding a segment finish on the unlinked file.
func (p *Partition) Remove() error {
	if err := p.Close(); err != nil && !errors.Is(err, ErrClosed) && !errors.Is(err, ErrFenced) {
		p.log.Warn("close before remove failed", zap.Error(err))
	}
	if err := p.fs.RemoveAll(p.opts.Dir); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("storage: remove partition: %w", err)
	}
	return nil
}

// EnforceRetention deletes whole segments, oldest first, while the log is
// larger than RetentionBytes or a segment's newest record is older than
// RetentionAge. The active segment is never deleted in place: when all of
// it has expired by age it is first rolled, so the new empty segment,
// named by the next offset, keeps offsets from being reused after restart.
func (p *Partition) EnforceRetention(now time.Time) error {
	if p.opts.RetentionBytes <= 0 && p.opts.RetentionAge <= 0 {
		return nil
	}
	p.wmu.Lock()
	defer p.wmu.Unlock()
	if p.closed {
		return ErrClosed
	}
	expired := func(s *segment) bool {
		return p.opts.RetentionAge > 0 && !s.empty() &&
			s.maxTS < now.Add(-p.opts.RetentionAge).UnixMilli()
	}
	if active := p.segs[len(p.segs)-1]; expired(active) && p.fencedErr() == nil {
		if err := p.fsync(active); err != nil {
			return err
		}
		if _, err := p.roll(); err != nil {
			return err
		}
	}
	var total int64
	for _, s := range p.segs {
		total += s.size
	}
	var victims []*segment
	for _, s := range p.segs[:len(p.segs)-1] {
		overBytes := p.opts.RetentionBytes > 0 && total > p.opts.RetentionBytes
		if !overBytes && !expired(s) {
			break
		}
		victims = append(victims, s)
		total -= s.size
	}
	if len(victims) == 0 {
		return nil
	}
	p.mu.Lock()
	p.segs = append([]*segment(nil), p.segs[len(victims):]...)
	p.mu.Unlock()

	var errs []error
	var bytes int64
	for _, s := range victims {
		bytes += s.size
		p.log.Info("retention deleting segment", zap.String("segment", s.path),
			zap.Uint64("base-offset", s.base), zap.Uint64("next-offset", s.next))
		for _, path := range []string{s.path, s.stem() + ".index", s.stem() + ".timeindex"} {
			if err := p.fs.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
				errs = append(errs, err)
			}
		}
		s.unref()
	}
	p.opts.Metrics.addGauge(mSegments, -float64(len(victims)))
	p.opts.Metrics.addGauge(mBytes, -float64(bytes))
	// Not strictly needed (a resurrected old segment is only re-deleted),
	// but it keeps LowestOffset from moving back after a crash.
	if err := p.fs.SyncDir(p.opts.Dir); err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("storage: retention: %w", err)
	}
	return nil
}
