package main

import (
	"math"
	"math/bits"
	"time"
)

// histogram records durations in nanoseconds in log-linear buckets, as HdrHistogram does: values below
// 2*subBuckets are exact, larger ones fall in one of subBuckets buckets per power of two, so any
// recorded value is known to within 1/subBuckets (0.8%). It is not safe for concurrent use: each load
// worker keeps its own and they are merged at the end.
type histogram struct {
	counts [histLen]uint64
	total  uint64
	max    uint64
}

const (
	subBits    = 7
	subBuckets = 1 << subBits // buckets per power of two
	exactBelow = 2 * subBuckets
	// histMaxNanos caps recorded values at about 18 minutes; anything above counts as the cap.
	histMaxNanos = 1<<40 - 1
	histLen      = exactBelow + (40-subBits-1)*subBuckets
)

func bucketOf(v uint64) int {
	if v < exactBelow {
		return int(v)
	}
	shift := bits.Len64(v) - (subBits + 1) // >= 1
	return exactBelow + (shift-1)*subBuckets + int(v>>shift) - subBuckets
}

// valueOf returns the middle of the range of values that fall in bucket i.
func valueOf(i int) uint64 {
	if i < exactBelow {
		return uint64(i)
	}
	shift := (i-exactBelow)/subBuckets + 1
	m := uint64((i-exactBelow)%subBuckets + subBuckets)
	lo := m << shift
	return lo + (uint64(1)<<shift)/2
}

func (h *histogram) record(d time.Duration) {
	v := uint64(max(d, 0))
	v = min(v, histMaxNanos)
	h.counts[bucketOf(v)]++
	h.total++
	h.max = max(h.max, v)
}

func (h *histogram) merge(o *histogram) {
	for i, c := range o.counts {
		h.counts[i] += c
	}
	h.total += o.total
	h.max = max(h.max, o.max)
}

// quantile returns the value at quantile q (0 < q <= 1): the smallest recorded value such that a
// fraction q of the values are at or below it. It returns 0 for an empty histogram.
func (h *histogram) quantile(q float64) time.Duration {
	if h.total == 0 {
		return 0
	}
	rank := uint64(math.Ceil(q * float64(h.total)))
	rank = max(rank, 1)
	var seen uint64
	for i, c := range h.counts {
		seen += c
		if seen >= rank {
			return time.Duration(min(valueOf(i), h.max))
		}
	}
	return time.Duration(h.max)
}
