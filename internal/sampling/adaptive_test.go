package sampling

import (
	"context"
	"fmt"
	"math"
	"sync"
	"testing"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
)

// trafficPhase is a constant request rate for a number of seconds.
type trafficPhase struct {
	rate    int // requests per second
	seconds int
}

// simulate sends evenly spaced root requests through s and returns the number sampled in each second.
// Every sampled decision must carry a th that its trace id's randomness reaches.
func simulate(t *testing.T, s sdktrace.Sampler, clock *fakeClock, phases []trafficPhase) []int {
	t.Helper()
	ids := newTraceIDs(42)
	var perSecond []int
	at := time.Duration(clock.ns.Load())
	for _, ph := range phases {
		step := time.Second / time.Duration(ph.rate)
		for range ph.seconds {
			n := 0
			for range ph.rate {
				clock.set(at)
				at += step
				id := ids.next()
				r := decide(s, context.Background(), id)
				if r.Decision != sdktrace.RecordAndSample {
					continue
				}
				n++
				th, ok := otSubkey(r.Tracestate.Get(otKey), thKey)
				tv, valid := decodeThreshold(th)
				if !ok || !valid || traceIDRandomness(id) < tv {
					t.Fatalf("sampled trace %s with tracestate %q", id, r.Tracestate)
				}
			}
			perSecond = append(perSecond, n)
		}
	}
	return perSecond
}

func TestAdaptive_ConvergesAfterTrafficSteps(t *testing.T) {
	const (
		target  = 50
		settle  = 2 // windows allowed to converge after a step
		seconds = 10
	)
	phases := []trafficPhase{{1000, seconds}, {10000, seconds}, {100, seconds}}
	for _, name := range []string{"adaptive", "parentbased_adaptive"} {
		t.Run(name, func(t *testing.T) {
			clock := &fakeClock{}
			s := mustNew(t, name, fmt.Sprint(target), WithClock(clock.now))
			got := simulate(t, s, clock, phases)
			t.Logf("sampled per second: %v", got)
			for i, ph := range phases {
				sec := got[i*seconds : (i+1)*seconds]
				// After settling, each second is within 4 binomial sigmas of the target and the mean of
				// the settled seconds within ±20%.
				p := float64(target) / float64(ph.rate)
				bound := binomialBound(ph.rate, p)
				sum := 0
				for j, n := range sec[settle:] {
					sum += n
					if math.Abs(float64(n-target)) > bound {
						t.Errorf("%d/s, second %d: sampled %d; want %d ± %.0f", ph.rate, settle+j, n, target, bound)
					}
				}
				mean := float64(sum) / float64(len(sec)-settle)
				if math.Abs(mean-target) > 0.2*target {
					t.Errorf("%d/s: mean %.1f sampled per second after %d s; want %d ± 20%%", ph.rate, mean, settle, target)
				}
			}
		})
	}
}

func TestAdaptive_RatioRisesBackAfterIdle(t *testing.T) {
	clock := &fakeClock{}
	s := mustNew(t, "adaptive", "50", WithClock(clock.now))
	simulate(t, s, clock, []trafficPhase{{10000, 3}})
	a := s.(*sampler).adaptive
	if p := a.cur.Load().probability; p > 0.01 {
		t.Fatalf("probability at 10000/s is %v; want about 0.005", p)
	}
	clock.advance(time.Minute)
	got := simulate(t, s, clock, []trafficPhase{{100, 3}})
	t.Logf("sampled per second after an idle minute at 100/s: %v", got)
	for sec, n := range got[1:] {
		if bound := binomialBound(100, 0.5); math.Abs(float64(n-50)) > bound {
			t.Errorf("second %d: sampled %d; want 50 ± %.0f", sec+1, n, bound)
		}
	}
}

func TestAdaptive_OnlyTraceStartsAreCounted(t *testing.T) {
	clock := &fakeClock{}
	s := mustNew(t, "adaptive", "50", WithClock(clock.now))
	a := s.(*sampler).adaptive
	local := withParent(t, context.Background(), true, false, "")
	remote := withParent(t, context.Background(), true, true, "")
	for range 10 {
		decide(s, local, parentTraceID)
	}
	if got := a.count.Load(); got != 0 {
		t.Errorf("local children counted: got %d; want 0", got)
	}
	for range 10 {
		decide(s, remote, parentTraceID)
		decide(s, context.Background(), parentTraceID)
	}
	if got := a.count.Load(); got != 20 {
		t.Errorf("roots and remote parents: got %d; want 20", got)
	}
}

func TestAdaptive_ConcurrentDecisions(t *testing.T) {
	// Real clock, many goroutines: run under -race; the ratio must stay a valid probability.
	s := mustNew(t, "adaptive", "100")
	var wg sync.WaitGroup
	deadline := time.Now().Add(300 * time.Millisecond)
	for g := range 8 {
		wg.Go(func() {
			ids := newTraceIDs(uint64(g))
			for time.Now().Before(deadline) {
				decide(s, context.Background(), ids.next())
			}
		})
	}
	wg.Wait()
	if p := s.(*sampler).adaptive.cur.Load().probability; !(p >= minRatio && p <= 1) {
		t.Errorf("probability %v out of [%v, 1]", p, minRatio)
	}
}
