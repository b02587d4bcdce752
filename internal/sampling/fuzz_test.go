package sampling

import (
	"context"
	"testing"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
)

// FuzzRatioTracestate feeds arbitrary parent tracestates to a non-parent-based ratio sampler: the result
// must be a valid tracestate, keep every other vendor's member in order, keep rv, and carry th exactly
// when sampled. Run: go test -run '^$' -fuzz FuzzRatioTracestate ./internal/sampling/
func FuzzRatioTracestate(f *testing.F) {
	for _, seed := range []string{
		"", "v=1", "ot=th:8", "ot=th:8;rv:ffffffffffffff,v=1", "a=1,ot=p:8;r:62,b=2", "ot=rv:00000000000000",
		"ot=th:zz;rv:1", "ot=;;th:;", "ot=k:x", "ot=th ;th:",
	} {
		f.Add(seed, uint64(0xce929d0e0e4736), 0.25)
	}
	f.Fuzz(func(t *testing.T, ts string, r uint64, ratio float64) {
		parent, err := trace.ParseTraceState(ts)
		if err != nil || !(ratio >= 0 && ratio <= 1) {
			return
		}
		s, err := New("traceidratio", "")
		if err != nil {
			t.Fatal(err)
		}
		s.(*sampler).fixed = newRatioState(ratio, true)
		var id trace.TraceID
		for i := range 7 {
			id[15-i] = byte(r >> (8 * i))
		}
		id[0] = 1
		ctx := trace.ContextWithSpanContext(context.Background(), trace.NewSpanContext(trace.SpanContextConfig{
			TraceID: id, SpanID: trace.SpanID{1}, TraceState: parent, Remote: true,
		}))
		res := decide(s, ctx, id)
		out, err := trace.ParseTraceState(res.Tracestate.String())
		if err != nil {
			t.Fatalf("output %q does not parse: %v", res.Tracestate, err)
		}
		var inOthers, outOthers []string
		parent.Walk(func(k, v string) bool {
			if k != otKey {
				inOthers = append(inOthers, k+"="+v)
			}
			return true
		})
		out.Walk(func(k, v string) bool {
			if k != otKey {
				outOthers = append(outOthers, k+"="+v)
			}
			return true
		})
		if len(inOthers) != len(outOthers) {
			t.Fatalf("members %q became %q", inOthers, outOthers)
		}
		for i := range inOthers {
			if inOthers[i] != outOthers[i] {
				t.Fatalf("members %q became %q", inOthers, outOthers)
			}
		}
		inRV, _ := otSubkey(parent.Get(otKey), rvKey)
		outRV, _ := otSubkey(out.Get(otKey), rvKey)
		if _, valid := decodeRandomness(inRV); valid && inRV != outRV {
			t.Fatalf("rv %q became %q", inRV, outRV)
		}
		th, hasTH := otSubkey(out.Get(otKey), thKey)
		if sampled := res.Decision == sdktrace.RecordAndSample; sampled {
			if want := s.(*sampler).fixed.thMember; len(parent.Get(otKey))+len(want) < 240 && (!hasTH || thKey+":"+th != want) {
				t.Fatalf("sampled with th %q (present %v); want %q", th, hasTH, want)
			}
		} else if hasTH {
			t.Fatalf("not sampled but th %q", th)
		}
	})
}
