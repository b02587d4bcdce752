package sampling

import (
	"context"
	"testing"

	"go.opentelemetry.io/otel/attribute"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
)

// newProvider returns a real TracerProvider using s, recording every ended recording span.
func newProvider(t *testing.T, s sdktrace.Sampler) (trace.Tracer, *tracetest.SpanRecorder) {
	t.Helper()
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSampler(s), sdktrace.WithSpanProcessor(rec))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	return tp.Tracer("sidetrace/sampling-test"), rec
}

func attrValue(attrs []attribute.KeyValue, k string) (attribute.Value, bool) {
	for _, a := range attrs {
		if string(a.Key) == k {
			return a.Value, true
		}
	}
	return attribute.Value{}, false
}

func TestTracerProvider_SampledFlagMatchesDecision(t *testing.T) {
	for _, tc := range []struct {
		name, arg       string
		recordUnsampled bool
	}{
		{"traceidratio", "0.25", false},
		{"parentbased_traceidratio", "0.25", true},
		{"parentbased_adaptive", "1000000", false}, // target above the traffic: ratio stays 1
	} {
		t.Run(tc.name, func(t *testing.T) {
			tracer, rec := newProvider(t, mustNew(t, tc.name, tc.arg, WithRecordUnsampled(tc.recordUnsampled)))
			// An independent instance, as in another sidecar of the same trace.
			other := mustNew(t, tc.name, tc.arg)
			const n = 2000
			var sampled int
			for range n {
				_, span := tracer.Start(context.Background(), "GET /")
				sc := span.SpanContext()
				span.End()
				want := decide(other, context.Background(), sc.TraceID()).Decision == sdktrace.RecordAndSample
				if sc.IsSampled() != want {
					t.Fatalf("trace %s: sampled flag %v; want %v", sc.TraceID(), sc.IsSampled(), want)
				}
				if want {
					sampled++
				}
				if span.IsRecording() {
					t.Fatal("span still recording after End")
				}
			}
			ended := rec.Ended()
			wantRecorded := sampled
			if tc.recordUnsampled {
				wantRecorded = n
			}
			if len(ended) != wantRecorded {
				t.Fatalf("recorded %d spans; want %d", len(ended), wantRecorded)
			}
			for _, s := range ended {
				sc := s.SpanContext()
				th, hasTH := otSubkey(sc.TraceState().Get(otKey), thKey)
				p, hasP := attrValue(s.Attributes(), AttrProbability)
				if !sc.IsSampled() {
					if hasTH || hasP {
						t.Fatalf("unsampled span has th %q, %s %v", th, AttrProbability, p.Emit())
					}
					continue
				}
				tv, ok := decodeThreshold(th)
				if !hasTH || !ok || traceIDRandomness(sc.TraceID()) < tv {
					t.Fatalf("sampled span tracestate %q", sc.TraceState())
				}
				if !hasP || p.AsFloat64() != thresholdToProbability(tv) {
					t.Fatalf("%s = %v; want %v", AttrProbability, p.Emit(), thresholdToProbability(tv))
				}
			}
		})
	}
}

func TestTracerProvider_ChildOfRemoteParentKeepsTracestate(t *testing.T) {
	tracer, rec := newProvider(t, mustNew(t, "parentbased_traceidratio", "0.01"))
	ctx := withParent(t, context.Background(), true, true, "vendor=x,ot=th:8;rv:ffffffffffffff")
	_, span := tracer.Start(ctx, "GET /")
	span.End()
	ended := rec.Ended()
	if len(ended) != 1 {
		t.Fatalf("recorded %d spans; want 1", len(ended))
	}
	sc := ended[0].SpanContext()
	if !sc.IsSampled() || sc.TraceID() != parentTraceID {
		t.Errorf("got sampled=%v trace %s; want sampled child of %s", sc.IsSampled(), sc.TraceID(), parentTraceID)
	}
	if got, want := sc.TraceState().String(), "vendor=x,ot=th:8;rv:ffffffffffffff"; got != want {
		t.Errorf("tracestate %q; want %q", got, want)
	}
}

func TestTracerProvider_PluginDecisionWins(t *testing.T) {
	tracer, rec := newProvider(t, mustNew(t, "parentbased_traceidratio", "0"))
	// The parent was sampled upstream, the plugin drops; then a root the sampler would drop, the
	// plugin samples.
	ctx := ContextWithDecision(withParent(t, context.Background(), true, true, ""), Drop)
	_, dropped := tracer.Start(ctx, "GET /health")
	dropped.End()
	if dropped.SpanContext().IsSampled() || dropped.IsRecording() {
		t.Errorf("plugin Drop: sampled=%v recording=%v; want neither", dropped.SpanContext().IsSampled(), dropped.IsRecording())
	}
	_, kept := tracer.Start(ContextWithDecision(context.Background(), RecordAndSample), "GET /checkout")
	kept.End()
	ended := rec.Ended()
	if len(ended) != 1 || !ended[0].SpanContext().IsSampled() {
		t.Fatalf("recorded %d spans; want 1 sampled", len(ended))
	}
	if v, _ := attrValue(ended[0].Attributes(), AttrReason); v.AsString() != ReasonPlugin {
		t.Errorf("%s = %q; want %q", AttrReason, v.Emit(), ReasonPlugin)
	}
}

func TestTracerProvider_NewRootWithLinkIsDecidedAsRoot(t *testing.T) {
	// SIDETRACE_TRUST_INCOMING=false: the proxy starts a new root linked to the incoming span context.
	tracer, rec := newProvider(t, mustNew(t, "parentbased_always_off", ""))
	incoming := withParent(t, context.Background(), true, true, "ot=th:0")
	link := trace.Link{SpanContext: trace.SpanContextFromContext(incoming)}
	_, span := tracer.Start(incoming, "GET /", trace.WithNewRoot(), trace.WithLinks(link))
	span.End()
	if span.SpanContext().IsSampled() || span.SpanContext().TraceID() == parentTraceID {
		t.Errorf("got sampled=%v trace %s; want an unsampled new root", span.SpanContext().IsSampled(), span.SpanContext().TraceID())
	}
	if n := len(rec.Ended()); n != 0 {
		t.Errorf("recorded %d spans; want 0", n)
	}
}
