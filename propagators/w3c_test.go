package propagators

import (
	"net/http"
	"testing"

	"go.opentelemetry.io/otel/trace"
)

func TestTraceparent_RoundTrip(t *testing.T) {
	p := New(defaultExtract, DefaultInject)
	h := http.Header{hdrTraceparent: {"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}}
	e := p.Extract(h)
	if !e.SpanContext.IsValid() || e.Format != TraceContext || !e.SpanContext.IsSampled() {
		t.Fatalf("got %+v", e)
	}
	child := e.SpanContext.WithSpanID(trace.SpanID{1, 2, 3, 4, 5, 6, 7, 8})
	out := http.Header{}
	p.Inject(out, child, &e)
	if got, want := out.Get("traceparent"), "00-4bf92f3577b34da6a3ce929d0e0e4736-0102030405060708-01"; got != want {
		t.Fatalf("got %q; want %q", got, want)
	}
}
