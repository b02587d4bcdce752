package propagators

import (
	"context"
	"net/http"
	"testing"

	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

// BenchmarkExtractInject measures one hop with the default configuration (extract all formats, inject
// preserve,tracecontext): Extract the incoming headers, Inject the hop's span into the same map.
func BenchmarkExtractInject(b *testing.B) {
	cases := []struct {
		name string
		h    http.Header
	}{
		{"traceparent-only", http.Header{hdrTraceparent: {"00-" + tidHex + "-" + sidHex + "-01"}}},
		{"traceparent+8-other-headers", http.Header{
			hdrTraceparent: {"00-" + tidHex + "-" + sidHex + "-01"}, "Accept": {"*/*"}, "Accept-Encoding": {"gzip"},
			"User-Agent": {"curl/8.5"}, "Content-Type": {"application/json"}, "Content-Length": {"42"},
			"X-Forwarded-For": {"10.0.0.1"}, "X-Request-Id": {"abc"}, "Authorization": {"Bearer x"},
		}},
		{"tracecontext", http.Header{hdrTraceparent: {"00-" + tidHex + "-" + sidHex + "-01"},
			hdrTracestate: {"congo=t61rcWkgMzE,rojo=00f067aa0ba902b7"}}},
		{"baggage", http.Header{hdrTraceparent: {"00-" + tidHex + "-" + sidHex + "-01"},
			hdrBaggage: {"userId=alice,serverNode=DF%2028,isProduction=false"}}},
		{"b3", http.Header{hdrB3: {tidHex + "-" + sidHex + "-1"}}},
		{"b3multi", http.Header{hdrB3TraceID: {tid64Hex}, hdrB3SpanID: {sidHex}, hdrB3Sampled: {"1"}}},
		{"jaeger", http.Header{hdrUberTraceID: {tidHex + ":" + sidHex + ":0:1"}, "Uberctx-Tenant": {"acme"}}},
		{"xray", http.Header{hdrXRay: {"Root=1-4bf92f35-77b34da6a3ce929d0e0e4736;Parent=" + sidHex + ";Sampled=1"}}},
	}
	p := New(defaultExtract, DefaultInject)
	child := trace.SpanID{0xc0, 0xff, 0xee, 0, 0, 0, 0, 1}
	for _, tc := range cases {
		b.Run(tc.name, func(b *testing.B) {
			h := tc.h.Clone()
			b.ReportAllocs()
			for b.Loop() {
				e := p.Extract(h)
				p.Inject(h, e.ParentForSpan().WithSpanID(child), &e)
			}
		})
	}
}

// BenchmarkExtract_TraceparentOnly checks that extracting a traceparent does not allocate.
func BenchmarkExtract_TraceparentOnly(b *testing.B) {
	p := New(defaultExtract, DefaultInject)
	h := http.Header{hdrTraceparent: {"00-" + tidHex + "-" + sidHex + "-01"}}
	b.ReportAllocs()
	for b.Loop() {
		e := p.Extract(h)
		if !e.SpanContext.IsValid() {
			b.Fatal("invalid")
		}
	}
}

func TestExtractInject_TraceparentAllocs(t *testing.T) {
	p := New(defaultExtract, DefaultInject)
	h := http.Header{hdrTraceparent: {"00-" + tidHex + "-" + sidHex + "-01"}}
	child := trace.SpanID{0xc0, 0xff, 0xee, 0, 0, 0, 0, 1}
	if n := testing.AllocsPerRun(100, func() { _ = p.Extract(h) }); n != 0 {
		t.Errorf("Extract: got %v allocs; want 0", n)
	}
	if n := testing.AllocsPerRun(100, func() {
		e := p.Extract(h)
		p.Inject(h, e.SpanContext.WithSpanID(child), &e)
	}); n > 2 {
		t.Errorf("Extract+Inject: got %v allocs; want <= 2", n)
	}
}

// BenchmarkReference_TraceContext is the same hop with OpenTelemetry-Go's propagation.TraceContext (through
// http.Header.Get/Set and a context.Context), as a yardstick measured under the same machine load.
func BenchmarkReference_TraceContext(b *testing.B) {
	ref := propagation.TraceContext{}
	h := http.Header{hdrTraceparent: {"00-" + tidHex + "-" + sidHex + "-01"}}
	child := trace.SpanID{0xc0, 0xff, 0xee, 0, 0, 0, 0, 1}
	b.ReportAllocs()
	for b.Loop() {
		ctx := ref.Extract(context.Background(), propagation.HeaderCarrier(h))
		sc := trace.SpanContextFromContext(ctx).WithSpanID(child)
		ref.Inject(trace.ContextWithSpanContext(ctx, sc), propagation.HeaderCarrier(h))
	}
}
