package sampling

import (
	"context"
	"testing"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
)

// BenchmarkSampler measures one root decision per request (no parent, no plugin decision), the proxy's
// hot path, with the real clock. Run: go test -run '^$' -bench Sampler -benchmem ./internal/sampling/
func BenchmarkSampler(b *testing.B) {
	ids := newTraceIDs(3)
	var pool [1024]trace.TraceID
	for i := range pool {
		pool[i] = ids.next()
	}
	for _, name := range Names() {
		arg := argFor(name)
		if name == "ratelimited" || name == "parentbased_ratelimited" || name == "adaptive" || name == "parentbased_adaptive" {
			arg = "1000"
		}
		b.Run(name, func(b *testing.B) {
			s := mustNew(b, name, arg)
			p := sdktrace.SamplingParameters{ParentContext: context.Background(), Name: "GET /", Kind: trace.SpanKindServer}
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				p.TraceID = pool[i&(len(pool)-1)]
				i++
				_ = s.ShouldSample(p)
			}
		})
	}
}

// BenchmarkSamplerWith measures the other paths: a plugin decision in the context, a sampled remote
// parent with other vendors' tracestate, and a non-parent-based ratio decision that rewrites it.
func BenchmarkSamplerWith(b *testing.B) {
	parent := withParent(b, context.Background(), true, true, "vendor=abc,ot=th:8;rv:ffffffffffffff")
	for _, tc := range []struct {
		name, sampler, arg string
		ctx                context.Context
	}{
		{"plugin", "parentbased_traceidratio", "0.1", ContextWithDecision(context.Background(), RecordAndSample)},
		{"sampled_parent", "parentbased_traceidratio", "0.1", parent},
		{"ratio_rewrites_tracestate", "traceidratio", "0.1", parent},
	} {
		b.Run(tc.name, func(b *testing.B) {
			s := mustNew(b, tc.sampler, tc.arg)
			p := sdktrace.SamplingParameters{ParentContext: tc.ctx, TraceID: parentTraceID, Name: "GET /"}
			b.ReportAllocs()
			for b.Loop() {
				_ = s.ShouldSample(p)
			}
		})
	}
}

// BenchmarkSamplerParallel measures contention on the shared atomics of the rate-based samplers.
func BenchmarkSamplerParallel(b *testing.B) {
	for _, name := range []string{"traceidratio", "ratelimited", "adaptive"} {
		arg := "1000"
		if name == "traceidratio" {
			arg = "0.1"
		}
		b.Run(name, func(b *testing.B) {
			s := mustNew(b, name, arg)
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				ids := newTraceIDs(4)
				p := sdktrace.SamplingParameters{ParentContext: context.Background(), Name: "GET /"}
				for pb.Next() {
					p.TraceID = ids.next()
					_ = s.ShouldSample(p)
				}
			})
		})
	}
}
