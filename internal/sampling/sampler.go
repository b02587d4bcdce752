package sampling

import (
	"strconv"

	"go.opentelemetry.io/otel/attribute"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
)

// AttrProbability is the span attribute holding the sampling probability of a span sampled by a ratio
// decision (traceidratio, adaptive), as float64. No current semantic convention names it: the spec
// records the probability in the ot=th:<hex> tracestate entry, which sidetrace writes too; the attribute
// makes it visible in back-ends that do not decode tracestate. The name is namespaced like AttrReason
// because the earlier unprefixed `sampling.probability` (opentelemetry-specification PR #570) was removed
// from the specification.
const AttrProbability = "sidetrace.sampling.probability"

// kind is the head-decision algorithm of a sampler.
type kind uint8

const (
	kindAlwaysOn kind = iota
	kindAlwaysOff
	kindRatio
	kindRateLimited
	kindAdaptive
)

// ratioState is everything a ratio decision writes, built once per ratio so decisions do not allocate.
type ratioState struct {
	// threshold is the 56-bit rejection threshold: sample iff randomness >= threshold.
	threshold uint64
	// probability is the exact probability of threshold (not the configured ratio before rounding).
	probability float64
	// thMember is "th:<hex>", or "" when the probability is 0.
	thMember string
	// rootState is the tracestate "ot=th:<hex>" for spans whose parent has no tracestate.
	rootState trace.TraceState
	// attrs is the AttrProbability attribute, nil for always_on.
	attrs []attribute.KeyValue
}

func newRatioState(p float64, withAttr bool) *ratioState {
	t := probabilityToThreshold(p, defaultPrecision)
	s := &ratioState{threshold: t, probability: thresholdToProbability(t)}
	if t >= neverThreshold {
		return s
	}
	s.thMember = thKey + string(otKVSep) + encodeThreshold(t)
	// A th member is always a valid tracestate value; an error would leave rootState empty.
	s.rootState, _ = trace.TraceState{}.Insert(otKey, s.thMember)
	if withAttr {
		s.attrs = []attribute.KeyValue{attribute.Float64(AttrProbability, s.probability)}
	}
	return s
}

var pluginAttrs = []attribute.KeyValue{attribute.String(AttrReason, ReasonPlugin)}

// sampler is the sdktrace.Sampler built by New. One type serves every name so that plugin precedence,
// parent-based behaviour and RecordUnsampled are written once.
type sampler struct {
	kind            kind
	parentBased     bool
	recordUnsampled bool
	description     string
	fixed           *ratioState  // kindAlwaysOn, kindRatio
	limiter         *tokenBucket // kindRateLimited
	adaptive        *adaptive    // kindAdaptive
}

var _ sdktrace.Sampler = (*sampler)(nil)

// ShouldSample decides in this order: the plugin decision in the context, the parent's sampled flag
// (parent-based samplers with a valid parent that did not defer its decision), then the head decision of the
// configured algorithm.
func (s *sampler) ShouldSample(p sdktrace.SamplingParameters) sdktrace.SamplingResult {
	psc := trace.SpanContextFromContext(p.ParentContext)
	ts := psc.TraceState()

	switch decisionFromContext(p.ParentContext) {
	case Drop:
		return sdktrace.SamplingResult{Decision: sdktrace.Drop, Tracestate: eraseThreshold(ts)}
	case RecordOnly:
		return sdktrace.SamplingResult{Decision: sdktrace.RecordOnly, Tracestate: eraseThreshold(ts)}
	case RecordAndSample:
		return sdktrace.SamplingResult{
			Decision:   sdktrace.RecordAndSample,
			Attributes: pluginAttrs,
			Tracestate: eraseThreshold(ts),
		}
	}

	if s.parentBased && psc.IsValid() && !deferredFromContext(p.ParentContext) {
		if psc.IsSampled() {
			return sdktrace.SamplingResult{
				Decision:   sdktrace.RecordAndSample,
				Tracestate: checkedParentState(ts, p.TraceID),
			}
		}
		return s.unsampled(ts)
	}

	switch s.kind {
	case kindAlwaysOn:
		return s.sampled(ts, s.fixed)
	case kindRatio:
		return s.ratio(p.TraceID, ts, s.fixed)
	case kindRateLimited:
		if s.limiter.allow() {
			return sdktrace.SamplingResult{Decision: sdktrace.RecordAndSample, Tracestate: eraseThreshold(ts)}
		}
		return s.unsampled(ts)
	case kindAdaptive:
		// Only decisions that start the trace in this process count towards the observed rate; local
		// children of a non-parent-based sampler reuse the current ratio.
		counted := !psc.IsValid() || psc.IsRemote()
		return s.ratio(p.TraceID, ts, s.adaptive.state(counted))
	default: // kindAlwaysOff
		return s.unsampled(ts)
	}
}

func (s *sampler) ratio(id trace.TraceID, ts trace.TraceState, st *ratioState) sdktrace.SamplingResult {
	if randomness(ts, id) >= st.threshold {
		return s.sampled(ts, st)
	}
	return s.unsampled(ts)
}

func (s *sampler) sampled(ts trace.TraceState, st *ratioState) sdktrace.SamplingResult {
	return sdktrace.SamplingResult{
		Decision:   sdktrace.RecordAndSample,
		Attributes: st.attrs,
		Tracestate: withThreshold(ts, st.thMember, st.rootState),
	}
}

func (s *sampler) unsampled(ts trace.TraceState) sdktrace.SamplingResult {
	d := sdktrace.Drop
	if s.recordUnsampled {
		d = sdktrace.RecordOnly
	}
	return sdktrace.SamplingResult{Decision: d, Tracestate: eraseThreshold(ts)}
}

// Description names the sampler the way the SDK's samplers do, e.g.
// "ParentBased{root:TraceIdRatioBased{0.25}}".
func (s *sampler) Description() string { return s.description }

func describe(k kind, arg float64, parentBased bool) string {
	var d string
	switch k {
	case kindAlwaysOn:
		d = "AlwaysOnSampler"
	case kindAlwaysOff:
		d = "AlwaysOffSampler"
	case kindRatio:
		d = "TraceIdRatioBased{" + strconv.FormatFloat(arg, 'g', -1, 64) + "}"
	case kindRateLimited:
		d = "RateLimited{" + strconv.FormatFloat(arg, 'g', -1, 64) + "}"
	case kindAdaptive:
		d = "Adaptive{" + strconv.FormatFloat(arg, 'g', -1, 64) + "}"
	}
	if parentBased {
		return "ParentBased{root:" + d + "}"
	}
	return d
}
