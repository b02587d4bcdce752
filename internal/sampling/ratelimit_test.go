package sampling

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
)

func TestRateLimited_SimulatedTenSeconds(t *testing.T) {
	// 10000 requests evenly over 10 s at ARG=50: the bucket starts full (burst 50) and refills 50 per
	// second, so 500 ± burst are sampled, and no second exceeds rate + burst.
	for _, tc := range []struct {
		arg            string
		rate, burst    float64
		requests       int
		minSec, maxSec int // bounds for seconds after the first
	}{
		{"50", 50, 50, 10000, 49, 51},
		{"1000", 1000, 1000, 100000, 999, 1001},
		{"0.5", 0.5, 1, 10000, 0, 1},
	} {
		t.Run(tc.arg, func(t *testing.T) {
			clock := &fakeClock{}
			s := mustNew(t, "ratelimited", tc.arg, WithClock(clock.now))
			ids := newTraceIDs(1)
			step := 10 * time.Second / time.Duration(tc.requests)
			perSecond := make([]int, 10)
			total := 0
			for i := range tc.requests {
				clock.set(time.Duration(i) * step)
				r := decide(s, context.Background(), ids.next())
				switch r.Decision {
				case sdktrace.RecordAndSample:
					total++
					perSecond[i*10/tc.requests]++
					if r.Tracestate.Len() != 0 || len(r.Attributes) != 0 {
						t.Fatalf("rate-limited decision wrote tracestate %q attributes %v; want none", r.Tracestate, r.Attributes)
					}
				case sdktrace.Drop:
				default:
					t.Fatalf("decision %s", decisionName(r.Decision))
				}
			}
			want := 10 * tc.rate
			if lo, hi := want-tc.burst, want+tc.burst; float64(total) < lo || float64(total) > hi {
				t.Errorf("sampled %d; want %v ± %v", total, want, tc.burst)
			}
			if float64(perSecond[0]) > tc.rate+tc.burst {
				t.Errorf("first second sampled %d; want at most rate + burst = %v", perSecond[0], tc.rate+tc.burst)
			}
			for sec, n := range perSecond[1:] {
				if n < tc.minSec || n > tc.maxSec {
					t.Errorf("second %d sampled %d; want %d..%d", sec+1, n, tc.minSec, tc.maxSec)
				}
			}
		})
	}
}

func TestRateLimited_BurstThenRefill(t *testing.T) {
	clock := &fakeClock{}
	s := mustNew(t, "ratelimited", "10", WithClock(clock.now))
	count := func(n int) (sampled int) {
		for range n {
			if decide(s, context.Background(), parentTraceID).Decision == sdktrace.RecordAndSample {
				sampled++
			}
		}
		return sampled
	}
	if got := count(100); got != 10 {
		t.Errorf("burst at one instant: got %d; want 10", got)
	}
	clock.advance(500 * time.Millisecond)
	if got := count(100); got != 5 {
		t.Errorf("after 0.5 s: got %d; want 5", got)
	}
	clock.advance(time.Hour)
	if got := count(100); got != 10 {
		t.Errorf("after an idle hour: got %d; want 10 (the burst, not more)", got)
	}
}

func TestRateLimited_ConcurrentCallersShareTheBucket(t *testing.T) {
	clock := &fakeClock{}
	s := mustNew(t, "ratelimited", "50", WithClock(clock.now))
	var sampled atomic.Int64
	var wg sync.WaitGroup
	for range 32 {
		wg.Go(func() {
			ids := newTraceIDs(2)
			for range 200 {
				if decide(s, context.Background(), ids.next()).Decision == sdktrace.RecordAndSample {
					sampled.Add(1)
				}
			}
		})
	}
	wg.Wait()
	if got := sampled.Load(); got != 50 {
		t.Errorf("got %d; want exactly the burst, 50", got)
	}
}

func TestRateLimited_ErasesParentThreshold(t *testing.T) {
	// Not parent-based, with a sampled parent that carried a probability: rate limiting is not
	// probabilistic, so th must go while other sub-keys and members stay.
	s := mustNew(t, "ratelimited", "10", WithClock((&fakeClock{}).now))
	r := decide(s, withParent(t, context.Background(), true, true, "v=1,ot=th:8;rv:ffffffffffffff"), parentTraceID)
	if r.Decision != sdktrace.RecordAndSample {
		t.Fatalf("decision %s", decisionName(r.Decision))
	}
	if got, want := r.Tracestate.String(), "ot=rv:ffffffffffffff,v=1"; got != want {
		t.Errorf("got %q; want %q", got, want)
	}
}

func TestRateLimited_ExtremeRates(t *testing.T) {
	clock := &fakeClock{}
	slow := mustNew(t, "ratelimited", "1e-12", WithClock(clock.now))
	fast := mustNew(t, "ratelimited", "1e12", WithClock(clock.now))
	var slowN, fastN int
	for i := range 10000 {
		clock.set(time.Duration(i) * time.Millisecond)
		if decide(slow, context.Background(), parentTraceID).Decision == sdktrace.RecordAndSample {
			slowN++
		}
		if decide(fast, context.Background(), parentTraceID).Decision == sdktrace.RecordAndSample {
			fastN++
		}
	}
	if slowN != 1 || fastN != 10000 {
		t.Errorf("sampled %d at 1e-12/s and %d at 1e12/s; want 1 and 10000", slowN, fastN)
	}
}
