package sampling

import (
	"math"
	"sync/atomic"
	"time"
)

// Adaptive sampling: the ratio follows the traffic so that about target traces per second are sampled.
// Root decisions are counted per window; when a window closes, the observed rate feeds a moving average
// and the ratio becomes clamp(target / rate, minRatio, 1). Decisions stay consistent probability
// decisions on the trace id (or rv) against the current ratio, so the th written is exact for every span.
const (
	// adaptiveWindow is the normal length of a counting window.
	adaptiveWindow = time.Second
	// A window closes early, after spikeMinWindow, when the traffic has at least doubled or halved
	// (spikeFactor) compared with the average, judged on at least spikeMinCount decisions (observed
	// for a rise, expected for a fall): Poisson noise on 100 counts is 10%, far from a factor of 2.
	spikeMinWindow = 100 * time.Millisecond
	spikeMinCount  = 100
	spikeFactor    = 2
	// ewmaAlpha weighs the last window in the moving average of the rate. A window whose rate is more
	// than stepFactor away from the average replaces it: a step in traffic is followed at once, noise
	// is smoothed.
	ewmaAlpha  = 0.5
	stepFactor = 2
	// minRatio is the lowest ratio, about one trace in a million.
	minRatio = 1.0 / (1 << 20)
)

type adaptive struct {
	target float64
	now    func() time.Time
	base   time.Time
	// windowStart is the start of the current window, in nanoseconds since base.
	windowStart atomic.Int64
	// count is the number of counted decisions in the current window.
	count atomic.Int64
	// rate is the moving average of the decision rate per second, as float64 bits; 0 before the first
	// window closes.
	rate atomic.Uint64
	cur  atomic.Pointer[ratioState]
}

func newAdaptive(target float64, now func() time.Time) *adaptive {
	a := &adaptive{target: target, now: now, base: now()}
	a.cur.Store(newRatioState(1, true))
	return a
}

// state returns the ratio for a decision, counting it and closing the window first when it is due.
func (a *adaptive) state(counted bool) *ratioState {
	if !counted {
		return a.cur.Load()
	}
	now := int64(a.now().Sub(a.base))
	start := a.windowStart.Load()
	elapsed := now - start
	n := a.count.Add(1)
	if elapsed >= int64(adaptiveWindow) || (elapsed >= int64(spikeMinWindow) && a.shifted(n, elapsed)) {
		// One caller closes the window; the others keep the current ratio.
		if a.windowStart.CompareAndSwap(start, now) {
			n = a.count.Swap(0)
			a.roll(float64(n) * float64(time.Second) / float64(elapsed))
		}
	}
	return a.cur.Load()
}

// shifted reports whether n decisions in elapsed nanoseconds are a rise or a fall of at least
// spikeFactor from the average rate.
func (a *adaptive) shifted(n, elapsed int64) bool {
	expected := math.Float64frombits(a.rate.Load()) * float64(elapsed) / float64(time.Second)
	observed := float64(n)
	return (observed >= spikeMinCount && observed > spikeFactor*expected) ||
		(expected >= spikeMinCount && observed*spikeFactor < expected)
}

// roll folds the rate observed in the closed window into the average and updates the ratio. Only the
// caller that won the window swap runs it; two rolls could overlap only if a roll outlasted
// spikeMinWindow, and would then at worst lose one window's update.
func (a *adaptive) roll(observed float64) {
	avg := math.Float64frombits(a.rate.Load())
	if avg == 0 || observed > stepFactor*avg || observed*stepFactor < avg {
		avg = observed
	} else {
		avg = ewmaAlpha*observed + (1-ewmaAlpha)*avg
	}
	a.rate.Store(math.Float64bits(avg))

	ratio := 1.0
	if avg > 0 {
		ratio = min(1, max(minRatio, a.target/avg))
	}
	if probabilityToThreshold(ratio, defaultPrecision) == a.cur.Load().threshold {
		return
	}
	a.cur.Store(newRatioState(ratio, true))
}
