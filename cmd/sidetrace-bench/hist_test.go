package main

import (
	"math"
	"testing"
	"time"
)

func TestHistogram_QuantilesWithinPrecision(t *testing.T) {
	var h histogram
	// 1µs, 2µs, ... 100ms: the value at quantile q is q*100ms.
	const n = 100_000
	for i := 1; i <= n; i++ {
		h.record(time.Duration(i) * time.Microsecond)
	}
	for _, tc := range []struct {
		q    float64
		want time.Duration
	}{
		{0.5, 50 * time.Millisecond},
		{0.9, 90 * time.Millisecond},
		{0.99, 99 * time.Millisecond},
		{0.999, 99900 * time.Microsecond},
		{1, 100 * time.Millisecond},
		{0.00001, time.Microsecond},
	} {
		got := h.quantile(tc.q)
		if rel := math.Abs(float64(got-tc.want)) / float64(tc.want); rel > 1.0/subBuckets {
			t.Errorf("quantile(%g): got %s; want %s within %.1f%%", tc.q, got, tc.want, 100.0/subBuckets)
		}
	}
	if h.total != n || time.Duration(h.max) != 100*time.Millisecond {
		t.Errorf("total, max: got %d, %s; want %d, 100ms", h.total, time.Duration(h.max), n)
	}
}

func TestHistogram_BucketsRoundTrip(t *testing.T) {
	for _, v := range []uint64{0, 1, exactBelow - 1, exactBelow, exactBelow + 1, 1000, 123_456_789, histMaxNanos} {
		i := bucketOf(v)
		if i < 0 || i >= histLen {
			t.Fatalf("bucketOf(%d): got %d; want in [0, %d)", v, i, histLen)
		}
		if got := valueOf(i); math.Abs(float64(got)-float64(v)) > float64(v)/subBuckets+1 {
			t.Errorf("valueOf(bucketOf(%d)): got %d; want within %.1f%%", v, got, 100.0/subBuckets)
		}
	}
}

func TestHistogram_MergeAndEmpty(t *testing.T) {
	var a, b, empty histogram
	a.record(time.Millisecond)
	b.record(3 * time.Millisecond)
	a.merge(&b)
	if got := a.quantile(1); got != 3*time.Millisecond {
		t.Errorf("merged max quantile: got %s; want 3ms", got)
	}
	if got := empty.quantile(0.99); got != 0 {
		t.Errorf("empty quantile: got %s; want 0", got)
	}
}
