package sampling

import (
	"math"
	"sync/atomic"
	"time"
)

// tokenBucket admits at most rate decisions per second with a burst of max(1, rate). It is the generic
// cell rate algorithm: one atomic "theoretical arrival time" replaces the token count and its refill, so
// allow is a load and a compare-and-swap, without a lock.
type tokenBucket struct {
	// interval is the time one token takes to refill, in nanoseconds.
	interval int64
	// tolerance is burst * interval: how far ahead of now the arrival time may run.
	tolerance int64
	// tat is the theoretical arrival time, in nanoseconds since base.
	tat  atomic.Int64
	now  func() time.Time
	base time.Time
}

// maxDuration bounds interval and tolerance so their sum cannot overflow.
const maxDuration = math.MaxInt64 / 4

func newTokenBucket(rate float64, now func() time.Time) *tokenBucket {
	interval := clampDuration(float64(time.Second) / rate)
	burst := max(1, rate)
	b := &tokenBucket{
		interval:  interval,
		tolerance: clampDuration(burst * float64(interval)),
		now:       now,
		base:      now(),
	}
	// Start with a full bucket.
	b.tat.Store(math.MinInt64 / 2)
	return b
}

func clampDuration(ns float64) int64 {
	switch {
	case ns < 1:
		return 1
	case ns > maxDuration:
		return maxDuration
	}
	return int64(ns)
}

// allow takes one token if there is one.
func (b *tokenBucket) allow() bool {
	now := int64(b.now().Sub(b.base))
	for {
		old := b.tat.Load()
		next := max(old, now) + b.interval
		if next-now > b.tolerance {
			return false
		}
		if b.tat.CompareAndSwap(old, next) {
			return true
		}
	}
}
