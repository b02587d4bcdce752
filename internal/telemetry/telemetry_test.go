package telemetry

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestStore_BoundedNewestFirstAndFiltered(t *testing.T) {
	st := NewStore(3)
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(st))
	defer tp.Shutdown(context.Background())
	tr := tp.Tracer("test")
	var ids []trace.TraceID
	for i, name := range []string{"a", "b", "c", "d"} {
		ctx, root := tr.Start(context.Background(), name, trace.WithTimestamp(time.Unix(100+int64(i), 0)))
		_, child := tr.Start(ctx, name+"-child", trace.WithTimestamp(time.Unix(100+int64(i), int64(time.Millisecond))))
		if name == "c" {
			child.SetStatus(codes.Error, "boom")
		}
		child.End(trace.WithTimestamp(time.Unix(100+int64(i), int64(i)*int64(time.Millisecond)*100)))
		root.End(trace.WithTimestamp(time.Unix(100+int64(i), int64(i)*int64(time.Millisecond)*100)))
		ids = append(ids, root.SpanContext().TraceID())
	}
	list := st.List(Filter{})
	var roots []string
	for _, s := range list {
		roots = append(roots, s.Root)
	}
	if got, want := roots, []string{"d", "c", "b"}; !slices.Equal(got, want) {
		t.Errorf("roots: got %v; want %v (newest first, the oldest evicted)", got, want)
	}
	if _, ok := st.Trace(ids[0]); ok {
		t.Error("the oldest trace is still stored beyond the limit")
	}
	if errs := st.List(Filter{ErrorsOnly: true}); len(errs) != 1 || errs[0].Root != "c" {
		t.Errorf("errors only: got %+v", errs)
	}
	if slow := st.List(Filter{MinDuration: 250 * time.Millisecond}); len(slow) != 1 || slow[0].Root != "d" {
		t.Errorf("min duration 250ms: got %+v", slow)
	}
	spans, ok := st.Trace(ids[3])
	if !ok || len(spans) != 2 || spans[1].ParentSpanID != spans[0].SpanID {
		t.Errorf("trace d: got %+v", spans)
	}
}

func TestStore_SpansPerTraceBounded(t *testing.T) {
	st := NewStore(1)
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(st))
	defer tp.Shutdown(context.Background())
	ctx, root := tp.Tracer("test").Start(context.Background(), "root")
	for i := 0; i < maxSpansPerTrace+10; i++ {
		_, s := tp.Tracer("test").Start(ctx, "child")
		s.End()
	}
	root.End()
	spans, _ := st.Trace(root.SpanContext().TraceID())
	if len(spans) != maxSpansPerTrace {
		t.Errorf("spans kept: got %d; want %d", len(spans), maxSpansPerTrace)
	}
}

// blockingExporter holds every export until released, like a stuck collector.
type blockingExporter struct {
	release chan struct{}
	mu      sync.Mutex
	got     int
}

func (b *blockingExporter) ExportSpans(ctx context.Context, spans []sdktrace.ReadOnlySpan) error {
	select {
	case <-b.release:
	case <-ctx.Done():
		return ctx.Err()
	}
	b.mu.Lock()
	b.got += len(spans)
	b.mu.Unlock()
	return nil
}

func (b *blockingExporter) Shutdown(context.Context) error { return nil }

func TestProcessor_FullQueueDropsAndCounts(t *testing.T) {
	exp := &blockingExporter{release: make(chan struct{})}
	p := NewProcessor(exp, ProcessorOptions{QueueSize: 4, BatchSize: 2, ScheduleDelay: time.Millisecond})
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(p))
	tr := tp.Tracer("test")
	for i := 0; i < 50; i++ {
		_, s := tr.Start(context.Background(), "x")
		s.End() // never blocks, though nothing is exported
	}
	st := p.Stats()
	if st.Enqueued+st.Dropped != 50 || st.Dropped < 50-4-2 {
		t.Errorf("stats: %+v; want 50 seen, at most queue+batch kept", st)
	}
	close(exp.release)
	if err := tp.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	if st := p.Stats(); st.Exported != st.Enqueued {
		t.Errorf("after shutdown: %+v; want every queued span exported", st)
	}
}

func TestProcessor_UnsampledExportedOnlyWithReason(t *testing.T) {
	st := NewStore(10)
	p := NewProcessor(st, ProcessorOptions{ScheduleDelay: time.Millisecond})
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(p), sdktrace.WithSampler(recordOnly{}))
	tr := tp.Tracer("test")
	_, plain := tr.Start(context.Background(), "plain")
	plain.End()
	_, kept := tr.Start(context.Background(), "kept")
	kept.SetAttributes(AttrSamplingReason.String("error"))
	kept.End()
	if err := tp.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	list := st.List(Filter{})
	if len(list) != 1 || list[0].Root != "kept" {
		t.Errorf("exported: %+v; want only the span with a sampling reason", list)
	}
}

type recordOnly struct{}

func (recordOnly) ShouldSample(p sdktrace.SamplingParameters) sdktrace.SamplingResult {
	return sdktrace.SamplingResult{Decision: sdktrace.RecordOnly}
}
func (recordOnly) Description() string { return "recordOnly" }

// The hook runs in OnEnd, on each span alone, before the span is queued: what it drops is neither queued
// nor exported, what it returns is exported in its place.
func TestProcessor_HookRunsAtSpanEnd(t *testing.T) {
	st := NewStore(10)
	var seen []string // by the hook, in order; OnEnd runs on this goroutine
	p := NewProcessor(st, ProcessorOptions{ScheduleDelay: time.Hour, Hook: func(_ context.Context, spans []sdktrace.ReadOnlySpan) []sdktrace.ReadOnlySpan {
		if len(spans) != 1 {
			t.Errorf("hook got %d spans at once; want 1", len(spans))
		}
		seen = append(seen, spans[0].Name())
		if spans[0].Name() == "secret" {
			return nil
		}
		return spans
	}})
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(p))
	tr := tp.Tracer("test")
	for _, name := range []string{"a", "secret", "b"} {
		_, s := tr.Start(context.Background(), name)
		s.End()
		if len(seen) == 0 || seen[len(seen)-1] != name {
			t.Fatalf("after %q ended, the hook had seen %q", name, seen)
		}
	}
	if got := p.Stats().Enqueued; got != 2 {
		t.Errorf("enqueued %d; want 2 (the hook dropped one)", got)
	}
	if err := tp.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	var roots []string
	for _, tr := range st.List(Filter{}) {
		roots = append(roots, tr.Root)
	}
	slices.Sort(roots)
	if !slices.Equal(roots, []string{"a", "b"}) {
		t.Errorf("exported traces %q; want a and b", roots)
	}
}

func TestProcessor_ShutdownAbandonsStuckExport(t *testing.T) {
	exp := &blockingExporter{release: make(chan struct{})}
	p := NewProcessor(exp, ProcessorOptions{ScheduleDelay: time.Millisecond, ExportTimeout: time.Hour})
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(p))
	_, s := tp.Tracer("test").Start(context.Background(), "x")
	s.End()
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := tp.Shutdown(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("shutdown with a stuck exporter: got %v; want the deadline", err)
	}
}

func TestIDGenerator_UsesPresetTraceID(t *testing.T) {
	id := NewTraceID()
	got, sid := IDGenerator{}.NewIDs(ContextWithTraceID(context.Background(), id))
	if got != id || !sid.IsValid() {
		t.Errorf("got %s %s; want the preset trace id and a valid span id", got, sid)
	}
	if a, _ := (IDGenerator{}).NewIDs(context.Background()); a == id || !a.IsValid() {
		t.Errorf("fresh trace id %s", a)
	}
	// A context type of the caller's own answers with a pointer; a zero id there means none was chosen.
	if got, _ := (IDGenerator{}).NewIDs(context.WithValue(context.Background(), TraceIDKey{}, &id)); got != id {
		t.Errorf("preset through a pointer: got %s; want %s", got, id)
	}
	var zero trace.TraceID
	if got, _ := (IDGenerator{}).NewIDs(context.WithValue(context.Background(), TraceIDKey{}, &zero)); !got.IsValid() {
		t.Errorf("a zero id through a pointer gave %s; want a fresh valid id", got)
	}
}
