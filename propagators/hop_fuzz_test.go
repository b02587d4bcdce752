package propagators

import (
	"net/http"
	"testing"

	"go.opentelemetry.io/otel/trace"
)

// FuzzExtractInject feeds arbitrary values to every managed header, runs one hop (Extract, Inject every
// format, Extract again) and checks that nothing panics and the second hop sees what the first carried: the
// trace, sampled and debug state, tracestate and baggage.
func FuzzExtractInject(f *testing.F) {
	f.Add("00-"+tidHex+"-"+sidHex+"-03", "foo=1,1vendor=x", "a=1;p,b=%20", tid64Hex+"-"+sidHex+"-d",
		tidHex, sidHex, "1", tidHex+":"+sidHex+":0:3", "acme", "Root="+xrayRoot+";Lineage=x")
	f.Add("", "", "", "", "", "", "", "", "", "Root="+xrayRoot+";Sampled=?")
	f.Fuzz(func(t *testing.T, tp, ts, bag, b3, b3tid, b3sid, b3sampled, uber, uberctx, xray string) {
		h := http.Header{}
		for k, v := range map[string]string{
			hdrTraceparent: tp, hdrTracestate: ts, hdrBaggage: bag, hdrB3: b3, hdrB3TraceID: b3tid,
			hdrB3SpanID: b3sid, hdrB3Sampled: b3sampled, hdrUberTraceID: uber, "Uberctx-K": uberctx, hdrXRay: xray,
		} {
			if v != "" {
				h[k] = []string{v}
			}
		}
		all := InjectSpec{Formats: Set(allFormats)}
		p := New(defaultExtract, all)
		e := p.Extract(h)
		parent := e.ParentForSpan()
		if !parent.IsValid() {
			p.Inject(h, trace.SpanContext{}, &e)
			return
		}
		hop := parent.WithSpanID(trace.SpanID{0xc0, 0xff, 0xee, 0, 0, 0, 0, 1})
		if e.Deferred {
			hop = hop.WithTraceFlags(hop.TraceFlags() | trace.FlagsSampled)
		}
		p.Inject(h, hop, &e)
		e2 := p.Extract(h)
		if e2.SpanContext.TraceID() != hop.TraceID() || e2.SpanContext.SpanID() != hop.SpanID() ||
			e2.SpanContext.IsSampled() != hop.IsSampled() || e2.Deferred {
			t.Fatalf("second hop: got %+v; want %v\n%s", viewOf(e2), hop, headerString(h))
		}
		if e2.Debug != (e.Debug && hop.IsSampled()) {
			t.Fatalf("debug: got %v; want %v\n%s", e2.Debug, e.Debug, headerString(h))
		}
		wantPresent := Set(allFormats) &^ Set(Baggage)
		if e.BaggageLen() > 0 {
			wantPresent |= Set(Baggage)
		}
		if e2.Present != wantPresent {
			t.Fatalf("present: got %v\n%s", e2.Present, headerString(h))
		}
		if e.tracestate != "" && e2.tracestate != e.tracestate {
			t.Fatalf("tracestate: got %q; want %q", e2.tracestate, e.tracestate)
		}
		v1, v2 := viewOf(e).Baggage, viewOf(e2).Baggage
		if len(bag) < bagMaxBytes/2 && v1 != v2 {
			t.Fatalf("baggage: got %q; want %q\n%s", v2, v1, headerString(h))
		}
	})
}
