package main

import (
	"math"
	"math/bits"
)

// Histogram is a log-linear latency histogram in the spirit of
// HdrHistogram: values below 2^subBits nanoseconds get their own bucket,
// larger ones fall into buckets whose width is 1/2^(subBits-1) of their
// magnitude, so any percentile is exact to about 0.2% while the whole
// histogram stays a fixed ~170 KiB regardless of how many samples it holds.
// It is not safe for concurrent use: each connection's reader owns one and
// they are merged at the end.
type Histogram struct {
	counts   []uint64
	total    uint64
	min, max uint64
	sum      float64
}

const (
	subBits  = 10
	subCount = 1 << subBits
	halfSub  = subCount / 2
	// maxShift covers values up to 2^(subBits+maxShift) ns (~5 hours).
	maxShift = 34
)

// NewHistogram returns an empty histogram.
func NewHistogram() *Histogram {
	return &Histogram{counts: make([]uint64, subCount+maxShift*halfSub), min: math.MaxUint64}
}

func bucketIndex(v uint64) int {
	if v < subCount {
		return int(v)
	}
	shift := bits.Len64(v) - subBits
	if shift > maxShift {
		shift, v = maxShift, 1<<(subBits+maxShift)-1
	}
	mantissa := v >> uint(shift) // in [halfSub, subCount)
	return subCount + (shift-1)*halfSub + int(mantissa-halfSub)
}

// bucketRange returns the smallest and largest value of bucket i.
func bucketRange(i int) (lo, hi uint64) {
	if i < subCount {
		return uint64(i), uint64(i)
	}
	shift := uint((i-subCount)/halfSub + 1)
	mantissa := uint64((i-subCount)%halfSub + halfSub)
	return mantissa << shift, (mantissa+1)<<shift - 1
}

// Record adds one sample (nanoseconds; negative counts as 0).
func (h *Histogram) Record(ns int64) {
	v := uint64(max(ns, 0))
	h.counts[bucketIndex(v)]++
	h.total++
	h.sum += float64(v)
	h.min = min(h.min, v)
	h.max = max(h.max, v)
}

// Merge adds all samples of o into h.
func (h *Histogram) Merge(o *Histogram) {
	for i, c := range o.counts {
		h.counts[i] += c
	}
	h.total += o.total
	h.sum += o.sum
	h.min = min(h.min, o.min)
	h.max = max(h.max, o.max)
}

// Count is the number of samples.
func (h *Histogram) Count() uint64 { return h.total }

// Max is the largest sample, 0 when empty.
func (h *Histogram) Max() uint64 {
	if h.total == 0 {
		return 0
	}
	return h.max
}

// Mean is the average sample, 0 when empty.
func (h *Histogram) Mean() float64 {
	if h.total == 0 {
		return 0
	}
	return h.sum / float64(h.total)
}

// Quantile returns the value at quantile q (0 < q <= 1) by the
// nearest-rank rule: the smallest recorded value v such that at least
// ceil(q*n) samples are <= v, reported as the middle of its bucket and
// clamped to the exact minimum and maximum; the top rank is the exact
// maximum. Empty histograms return 0.
func (h *Histogram) Quantile(q float64) uint64 {
	if h.total == 0 {
		return 0
	}
	rank := uint64(math.Ceil(q * float64(h.total)))
	rank = min(max(rank, 1), h.total)
	if rank == h.total {
		return h.max // the top rank is the exact maximum, not a bucket
	}
	var cum uint64
	for i, c := range h.counts {
		cum += c
		if cum >= rank {
			lo, hi := bucketRange(i)
			v := lo + (hi-lo)/2
			return min(max(v, h.min), h.max)
		}
	}
	return h.max
}
