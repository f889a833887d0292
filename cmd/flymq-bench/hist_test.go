package main

import (
	"math"
	"testing"
)

func TestHistogramSmallValuesExact(t *testing.T) {
	h := NewHistogram()
	for v := int64(1); v <= 100; v++ {
		h.Record(v)
	}
	cases := []struct {
		q    float64
		want uint64
	}{{0.01, 1}, {0.5, 50}, {0.99, 99}, {0.999, 100}, {1, 100}}
	for _, c := range cases {
		if got := h.Quantile(c.q); got != c.want {
			t.Errorf("Quantile(%v) = %d, want %d", c.q, got, c.want)
		}
	}
	if h.Count() != 100 || h.Max() != 100 || h.Mean() != 50.5 {
		t.Errorf("count %d max %d mean %v, want 100 100 50.5", h.Count(), h.Max(), h.Mean())
	}
}

func TestHistogramLargeValuesWithinPrecision(t *testing.T) {
	// 1..1,000,000 µs in ns: nearest-rank percentiles are exactly q*n µs.
	h := NewHistogram()
	const n = 1_000_000
	for i := int64(1); i <= n; i++ {
		h.Record(i * 1000)
	}
	for _, q := range []float64{0.5, 0.9, 0.99, 0.999} {
		want := q * n * 1000
		got := float64(h.Quantile(q))
		if rel := math.Abs(got-want) / want; rel > 0.002 {
			t.Errorf("Quantile(%v) = %.0f, want %.0f ±0.2%% (off by %.3f%%)", q, got, want, rel*100)
		}
	}
	if got := h.Quantile(1); got != n*1000 {
		t.Errorf("Quantile(1) = %d, want the exact max %d", got, n*1000)
	}
}

func TestHistogramSkewedTail(t *testing.T) {
	// 990 fast samples and 10 slow ones: p99 is fast, p99.9 is slow.
	h := NewHistogram()
	for range 990 {
		h.Record(50_000) // 50 µs
	}
	for range 10 {
		h.Record(20_000_000) // 20 ms
	}
	if got := h.Quantile(0.99); got < 49_900 || got > 50_100 {
		t.Errorf("p99 = %d, want ~50000", got)
	}
	if got := h.Quantile(0.999); got < 19_960_000 || got > 20_040_000 {
		t.Errorf("p99.9 = %d, want ~20000000", got)
	}
}

func TestHistogramMergeAndEdges(t *testing.T) {
	a, b := NewHistogram(), NewHistogram()
	if a.Quantile(0.5) != 0 || a.Max() != 0 || a.Mean() != 0 {
		t.Fatal("empty histogram must report zeros")
	}
	a.Record(-5) // clock step backwards counts as 0
	b.Record(1 << 62)
	a.Merge(b)
	if a.Count() != 2 {
		t.Fatalf("count %d, want 2", a.Count())
	}
	if got := a.Quantile(0.5); got != 0 {
		t.Errorf("p50 = %d, want 0", got)
	}
	if got := a.Quantile(1); got != 1<<62 {
		t.Errorf("p100 = %d, want the clamped exact max %d", got, uint64(1)<<62)
	}
}

func TestBucketRangeCoversIndex(t *testing.T) {
	for _, v := range []uint64{0, 1, 1023, 1024, 1025, 2047, 2048, 123456789, 1 << 40} {
		i := bucketIndex(v)
		lo, hi := bucketRange(i)
		if v < lo || v > hi {
			t.Errorf("value %d: bucket %d covers [%d, %d]", v, i, lo, hi)
		}
		if v >= subCount && float64(hi-lo)/float64(lo) > 2.0/subCount {
			t.Errorf("value %d: bucket [%d, %d] wider than the promised precision", v, lo, hi)
		}
	}
}
