// Package storage is one partition's segmented, sealed, crash-safe log.
//
// A partition directory holds segments named by their base offset:
//
//	00000000000000000000.log        segment header + frames (record package)
//	00000000000000000000.index      sparse offset → position (rebuildable)
//	00000000000000000000.timeindex  sparse max-timestamp → offset (rebuildable)
//
// The formats are drawn in docs/format/log.md.
//
// Writers: Append is safe for concurrent callers. Callers queue; the first
// one becomes the leader, encodes every queued record into one buffer,
// issues one write(2) and, with AcksAll, one fsync for the whole group
// (group commit), then wakes the others. Records become visible to Read only
// once they are acknowledged, so a reader never sees a record a crash could
// take back (in AcksAll mode).
//
// Failures: a failed write fails the appends it carried and cuts the segment
// back to the last good record; the next Append retries. A failed fsync
// fences the partition (ErrFenced) until it is reopened, because the kernel
// may have dropped the dirty pages and a later fsync could succeed over
// lost data (the PostgreSQL "fsyncgate" lesson).
//
// Locks, in acquisition order: qmu (append queue) is never held while taking
// another; wmu (the single writer: leader commit, roll, retention, Sync
// snapshot, Close) → mu (segment list and published positions, RW; readers
// take it shared only long enough to pin a segment).
package storage
