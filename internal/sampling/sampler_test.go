package sampling

import (
	"context"
	"fmt"
	"math"
	"testing"

	"go.opentelemetry.io/otel/attribute"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
)

// binomialBound is 4 standard deviations of a binomial count, plus one for rounding.
func binomialBound(n int, p float64) float64 {
	return 4*math.Sqrt(float64(n)*p*(1-p)) + 1
}

func TestTraceIDRatio_FractionWithinBinomialBounds(t *testing.T) {
	const n = 50000
	for _, name := range []string{"traceidratio", "parentbased_traceidratio"} {
		for _, ratio := range []float64{0.001, 0.01, 0.1, 0.25, 1.0 / 3, 0.5, 0.9, 1} {
			t.Run(fmt.Sprintf("%s/%g", name, ratio), func(t *testing.T) {
				s := mustNew(t, name, fmt.Sprint(ratio))
				st := newRatioState(ratio, true)
				wantTS := "ot=th:" + encodeThreshold(st.threshold)
				ids := newTraceIDs(uint64(ratio * 1e6))
				sampled := 0
				for range n {
					r := decide(s, context.Background(), ids.next())
					switch r.Decision {
					case sdktrace.RecordAndSample:
						sampled++
						if got := r.Tracestate.String(); got != wantTS {
							t.Fatalf("tracestate %q; want %q", got, wantTS)
						}
						if want := []attribute.KeyValue{attribute.Float64(AttrProbability, st.probability)}; !equalAttrs(r.Attributes, want) {
							t.Fatalf("attributes %v; want %v", r.Attributes, want)
						}
					case sdktrace.Drop:
						if r.Tracestate.Len() != 0 {
							t.Fatalf("dropped span has tracestate %q", r.Tracestate)
						}
					default:
						t.Fatalf("decision %s", decisionName(r.Decision))
					}
				}
				mean := n * st.probability
				if d := math.Abs(float64(sampled) - mean); d > binomialBound(n, st.probability) {
					t.Errorf("sampled %d of %d; want %.0f ± %.0f", sampled, n, mean, binomialBound(n, st.probability))
				}
			})
		}
	}
}

func equalAttrs(got, want []attribute.KeyValue) bool {
	if len(got) != len(want) {
		return false
	}
	for i := range got {
		if got[i] != want[i] {
			return false
		}
	}
	return true
}

func TestTraceIDRatio_SameTraceIDSameDecisionAcrossInstances(t *testing.T) {
	// Two sidecars of one trace, built independently: same ratio, same decision for every trace id.
	a := mustNew(t, "traceidratio", "0.3")
	b := mustNew(t, "parentbased_traceidratio", "0.3")
	lower := mustNew(t, "traceidratio", "0.1")
	ids := newTraceIDs(7)
	for i := range 20000 {
		id := ids.next()
		da, db := decide(a, context.Background(), id).Decision, decide(b, context.Background(), id).Decision
		if da != db {
			t.Fatalf("trace %d %s: %s and %s", i, id, decisionName(da), decisionName(db))
		}
		// Consistency: sampled at 0.1 implies sampled at 0.3.
		if decide(lower, context.Background(), id).Decision == sdktrace.RecordAndSample && da != sdktrace.RecordAndSample {
			t.Fatalf("trace %s sampled at 0.1 but not at 0.3", id)
		}
	}
}

func TestTraceIDRatio_ExplicitRandomnessFromTracestate(t *testing.T) {
	// parentTraceID's randomness, 0xce929d0e0e4736, is below th:fd70a (ratio 0.01): without rv it is
	// not sampled, so a sampled decision proves rv was used.
	s := mustNew(t, "traceidratio", "0.01")
	if decide(s, context.Background(), parentTraceID).Decision != sdktrace.Drop {
		t.Fatal("precondition: parentTraceID sampled at 0.01 without rv")
	}
	for _, tc := range []struct {
		name, parent, wantTS string
		want                 sdktrace.SamplingDecision
	}{
		{"high rv samples", "vendor=x,ot=rv:ffffffffffffff", "ot=th:fd70a;rv:ffffffffffffff,vendor=x", sdktrace.RecordAndSample},
		{"low rv drops and keeps rv", "vendor=x,ot=rv:00000000000000", "vendor=x,ot=rv:00000000000000", sdktrace.Drop},
		{"invalid rv falls back to trace id", "vendor=x,ot=rv:fff", "vendor=x,ot=rv:fff", sdktrace.Drop},
		{"parent th replaced by ours", "ot=th:0;rv:ffffffffffffff", "ot=th:fd70a;rv:ffffffffffffff", sdktrace.RecordAndSample},
		{"parent th erased on drop", "ot=th:0;rv:00000000000000,vendor=x", "ot=rv:00000000000000,vendor=x", sdktrace.Drop},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// Not parent-based: the parent's flag (unsampled here) does not matter, its randomness does.
			r := decide(s, withParent(t, context.Background(), false, true, tc.parent), parentTraceID)
			if r.Decision != tc.want {
				t.Errorf("decision %s; want %s", decisionName(r.Decision), decisionName(tc.want))
			}
			if got := r.Tracestate.String(); got != tc.wantTS {
				t.Errorf("tracestate %q; want %q", got, tc.wantTS)
			}
		})
	}
}

func TestAlwaysOn_WritesThresholdZero(t *testing.T) {
	s := mustNew(t, "parentbased_always_on", "")
	r := decide(s, context.Background(), parentTraceID)
	if got, want := r.Tracestate.String(), "ot=th:0"; got != want {
		t.Errorf("got %q; want %q", got, want)
	}
	if len(r.Attributes) != 0 {
		t.Errorf("attributes %v; want none", r.Attributes)
	}
	s = mustNew(t, "always_on", "")
	r = decide(s, withParent(t, context.Background(), false, true, "a=1,ot=th:8;x:1"), parentTraceID)
	if got, want := r.Tracestate.String(), "ot=th:0;x:1,a=1"; got != want {
		t.Errorf("got %q; want %q", got, want)
	}
}

// dropping returns, for each name, a sampler whose own head decision for parentTraceID is not to sample,
// or nil for always_on which has none.
func dropping(t *testing.T, name string, opts ...Option) sdktrace.Sampler {
	t.Helper()
	clock := &fakeClock{}
	opts = append(opts, WithClock(clock.now))
	switch name {
	case "always_off", "parentbased_always_off":
		return mustNew(t, name, "", opts...)
	case "traceidratio", "parentbased_traceidratio":
		return mustNew(t, name, "0", opts...)
	case "ratelimited", "parentbased_ratelimited":
		s := mustNew(t, name, "1", opts...)
		decide(s, context.Background(), parentTraceID) // take the only token; the clock never moves
		return s
	case "adaptive", "parentbased_adaptive":
		// Make the traffic look like 10000/s for a target of 0.001/s: the ratio falls to minRatio.
		s := mustNew(t, name, "0.001", opts...)
		for range 10000 {
			decide(s, context.Background(), trace.TraceID{})
			clock.advance(100_000)
		}
		if r := decide(s, context.Background(), parentTraceID); r.Decision == sdktrace.RecordAndSample {
			t.Fatalf("adaptive still samples parentTraceID at %v", s.(*sampler).adaptive.cur.Load().probability)
		}
		return s
	}
	return nil
}

// sampling returns, for each name, a sampler whose own head decision for parentTraceID is to sample, or
// nil for always_off which has none.
func sampling(t *testing.T, name string, opts ...Option) sdktrace.Sampler {
	t.Helper()
	opts = append(opts, WithClock((&fakeClock{}).now))
	switch name {
	case "always_on", "parentbased_always_on":
		return mustNew(t, name, "", opts...)
	case "traceidratio", "parentbased_traceidratio":
		return mustNew(t, name, "1", opts...)
	case "ratelimited", "parentbased_ratelimited", "adaptive", "parentbased_adaptive":
		return mustNew(t, name, "100", opts...)
	}
	return nil
}

func isParentBased(name string) bool {
	return len(name) > len(parentBasedPrefix) && name[:len(parentBasedPrefix)] == parentBasedPrefix
}

func TestParentBased_HonoursParentSampledFlag(t *testing.T) {
	for _, name := range Names() {
		if !isParentBased(name) {
			continue
		}
		for _, remote := range []bool{true, false} {
			t.Run(fmt.Sprintf("%s/remote=%v", name, remote), func(t *testing.T) {
				// A sampled parent is followed even by a sampler that would drop the root, and an
				// unsampled one even by a sampler that would sample it.
				drop, samp := dropping(t, name), sampling(t, name)
				if drop == nil {
					drop = samp
				}
				if samp == nil {
					samp = drop
				}
				r := decide(drop, withParent(t, context.Background(), true, remote, "ot=th:8,v=1"), parentTraceID)
				if r.Decision != sdktrace.RecordAndSample {
					t.Errorf("sampled parent: %s; want RecordAndSample", decisionName(r.Decision))
				}
				if got, want := r.Tracestate.String(), "ot=th:8,v=1"; got != want {
					t.Errorf("sampled parent tracestate %q; want %q", got, want)
				}
				r = decide(samp, withParent(t, context.Background(), false, remote, "v=1"), parentTraceID)
				if r.Decision != sdktrace.Drop {
					t.Errorf("unsampled parent: %s; want Drop", decisionName(r.Decision))
				}
				if got, want := r.Tracestate.String(), "v=1"; got != want {
					t.Errorf("unsampled parent tracestate %q; want %q", got, want)
				}
			})
		}
	}
}

func TestNotParentBased_DecidesIndependentlyOfParent(t *testing.T) {
	for _, name := range Names() {
		if isParentBased(name) {
			continue
		}
		t.Run(name, func(t *testing.T) {
			if s := dropping(t, name); s != nil {
				if r := decide(s, withParent(t, context.Background(), true, true, ""), parentTraceID); r.Decision != sdktrace.Drop {
					t.Errorf("sampled parent: %s; want Drop", decisionName(r.Decision))
				}
			}
			if s := sampling(t, name); s != nil {
				if r := decide(s, withParent(t, context.Background(), false, true, ""), parentTraceID); r.Decision != sdktrace.RecordAndSample {
					t.Errorf("unsampled parent: %s; want RecordAndSample", decisionName(r.Decision))
				}
			}
		})
	}
}

func TestPluginDecision_WinsInEverySampler(t *testing.T) {
	parents := []struct {
		name string
		ctx  func(t *testing.T) context.Context
	}{
		{"root", func(*testing.T) context.Context { return context.Background() }},
		{"sampled parent", func(t *testing.T) context.Context {
			return withParent(t, context.Background(), true, true, "ot=th:0,v=1")
		}},
		{"unsampled parent", func(t *testing.T) context.Context {
			return withParent(t, context.Background(), false, true, "v=1")
		}},
	}
	builders := map[string]func(*testing.T, string, ...Option) sdktrace.Sampler{"dropping": dropping, "sampling": sampling}
	for _, name := range Names() {
		for bname, build := range builders {
			for _, ru := range []bool{false, true} {
				for _, p := range parents {
					for _, tc := range []struct {
						plugin Decision
						want   sdktrace.SamplingDecision
						attrs  []attribute.KeyValue
					}{
						{Drop, sdktrace.Drop, nil},
						{RecordOnly, sdktrace.RecordOnly, nil},
						{RecordAndSample, sdktrace.RecordAndSample, []attribute.KeyValue{attribute.String(AttrReason, "plugin")}},
					} {
						t.Run(fmt.Sprintf("%s/%s/recordUnsampled=%v/%s/%d", name, bname, ru, p.name, tc.plugin), func(t *testing.T) {
							s := build(t, name, WithRecordUnsampled(ru))
							if s == nil {
								t.Skip("no such configuration")
							}
							r := decide(s, ContextWithDecision(p.ctx(t), tc.plugin), parentTraceID)
							if r.Decision != tc.want {
								t.Errorf("decision %s; want %s", decisionName(r.Decision), decisionName(tc.want))
							}
							if !equalAttrs(r.Attributes, tc.attrs) {
								t.Errorf("attributes %v; want %v", r.Attributes, tc.attrs)
							}
							// A plugin decision is not probabilistic: no th.
							if _, ok := otSubkey(r.Tracestate.Get(otKey), thKey); ok {
								t.Errorf("tracestate %q has th", r.Tracestate)
							}
						})
					}
				}
			}
		}
	}
}

func TestPluginDecision_NoOpinionKeepsSamplerDecision(t *testing.T) {
	for _, name := range Names() {
		t.Run(name, func(t *testing.T) {
			for _, d := range []Decision{NoOpinion, Decision(200)} {
				ctx := ContextWithDecision(context.Background(), d)
				if s := dropping(t, name); s != nil {
					if r := decide(s, ctx, parentTraceID); r.Decision != sdktrace.Drop {
						t.Errorf("decision %d, dropping sampler: %s; want Drop", d, decisionName(r.Decision))
					}
				}
				if s := sampling(t, name); s != nil {
					if r := decide(s, ctx, parentTraceID); r.Decision != sdktrace.RecordAndSample {
						t.Errorf("decision %d, sampling sampler: %s; want RecordAndSample", d, decisionName(r.Decision))
					}
				}
			}
		})
	}
}

func TestRecordUnsampled_RecordOnlyInsteadOfDrop(t *testing.T) {
	for _, name := range Names() {
		t.Run(name, func(t *testing.T) {
			for _, ru := range []bool{false, true} {
				want := sdktrace.Drop
				if ru {
					want = sdktrace.RecordOnly
				}
				// Head decision not to sample.
				if s := dropping(t, name, WithRecordUnsampled(ru)); s != nil {
					if r := decide(s, context.Background(), parentTraceID); r.Decision != want {
						t.Errorf("recordUnsampled=%v root: %s; want %s", ru, decisionName(r.Decision), decisionName(want))
					}
				}
				if s := sampling(t, name, WithRecordUnsampled(ru)); s != nil {
					// Unsampled parent of a parent-based sampler.
					if isParentBased(name) {
						ctx := withParent(t, context.Background(), false, true, "")
						if r := decide(s, ctx, parentTraceID); r.Decision != want {
							t.Errorf("recordUnsampled=%v unsampled parent: %s; want %s", ru, decisionName(r.Decision), decisionName(want))
						}
					}
					// Sampled decisions are unchanged.
					if r := decide(s, context.Background(), parentTraceID); r.Decision != sdktrace.RecordAndSample {
						t.Errorf("recordUnsampled=%v sampled root: %s; want RecordAndSample", ru, decisionName(r.Decision))
					}
				}
			}
		})
	}
}

func TestRootWithLinks_DecidedAsRoot(t *testing.T) {
	// SIDETRACE_TRUST_INCOMING=false: the proxy starts a new root linked to the incoming context. The
	// link's sampled flag must not be mistaken for a parent.
	link := trace.Link{SpanContext: trace.SpanContextFromContext(withParent(t, context.Background(), true, true, "ot=th:0"))}
	unsampledLink := trace.Link{SpanContext: trace.SpanContextFromContext(withParent(t, context.Background(), false, true, ""))}
	for _, tc := range []struct {
		name string
		link trace.Link
		want sdktrace.SamplingDecision
	}{
		{"parentbased_always_off", link, sdktrace.Drop},
		{"parentbased_traceidratio", link, sdktrace.Drop},
		{"parentbased_always_on", unsampledLink, sdktrace.RecordAndSample},
	} {
		t.Run(tc.name, func(t *testing.T) {
			arg := ""
			if tc.name == "parentbased_traceidratio" {
				arg = "0"
			}
			r := mustNew(t, tc.name, arg).ShouldSample(sdktrace.SamplingParameters{
				ParentContext: context.Background(),
				TraceID:       parentTraceID,
				Name:          "GET /",
				Links:         []trace.Link{tc.link},
			})
			if r.Decision != tc.want {
				t.Errorf("got %s; want %s", decisionName(r.Decision), decisionName(tc.want))
			}
		})
	}
}

// A remote parent that deferred its decision (B3 without a sampling state, X-Ray Sampled=?) is decided as a
// root by parent-based samplers: parentbased_always_on samples it, parentbased_always_off does not.
func TestParentBased_DeferredParentDecidedAsRoot(t *testing.T) {
	for name, want := range map[string]sdktrace.SamplingDecision{
		"parentbased_always_on":  sdktrace.RecordAndSample,
		"parentbased_always_off": sdktrace.Drop,
	} {
		s, err := New(name, "")
		if err != nil {
			t.Fatal(err)
		}
		ctx := ContextWithDeferredParent(withParent(t, context.Background(), false, true, ""))
		if r := decide(s, ctx, parentTraceID); r.Decision != want {
			t.Errorf("%s with a deferred unsampled parent: %s; want %s", name, decisionName(r.Decision), decisionName(want))
		}
	}
}
