package plugins

import (
	"context"
	"testing"

	"go.opentelemetry.io/otel/attribute"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
)

// finishedSpans records real spans with the OTel SDK: each func starts and
// ends one span.
func finishedSpans(t testing.TB, fns ...func(trace.Tracer)) []sdktrace.ReadOnlySpan {
	t.Helper()
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	defer tp.Shutdown(context.Background())
	tr := tp.Tracer("test")
	for _, fn := range fns {
		fn(tr)
	}
	return rec.Ended()
}

func span(name string, attrs []attribute.KeyValue, events ...sdktrace.Event) func(trace.Tracer) {
	return func(tr trace.Tracer) {
		_, s := tr.Start(context.Background(), name, trace.WithSpanKind(trace.SpanKindServer), trace.WithAttributes(attrs...))
		for _, e := range events {
			s.AddEvent(e.Name, trace.WithAttributes(e.Attributes...))
		}
		s.End()
	}
}

func TestWAT_SpanEnd_DeletesAndSets(t *testing.T) {
	h := helloHost(t, Options{})
	spans := finishedSpans(t,
		span("GET /a", []attribute.KeyValue{attribute.String("keep", "1"), attribute.String("wat.delete_me", "secret")}),
		span("GET /b", nil),
	)
	got := h.ProcessSpans(context.Background(), spans)
	if len(got) != 2 {
		t.Fatalf("got %d spans; want 2", len(got))
	}
	want := [][]attribute.KeyValue{
		{attribute.String("keep", "1"), attribute.Bool("wat.seen", true)},
		{attribute.Bool("wat.seen", true)},
	}
	for i, s := range got {
		if d := diff(s.Attributes(), want[i]); d != "" {
			t.Errorf("span %d attributes %s", i, d)
		}
		if s.Name() != spans[i].Name() || !s.SpanContext().Equal(spans[i].SpanContext()) {
			t.Errorf("span %d: identity changed", i)
		}
	}
	// The originals are untouched.
	if d := diff(spans[0].Attributes(), []attribute.KeyValue{attribute.String("keep", "1"), attribute.String("wat.delete_me", "secret")}); d != "" {
		t.Errorf("original span edited %s", d)
	}
}
