package telemetry

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/sdk/instrumentation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
)

// tracerPair is the same pipeline twice: one where spans come from the SDK's tracer, one from Tracer.
type tracerPair struct {
	sdk, own         trace.Tracer
	sdkExp, ownExp   *keeper
	sdkPipe, ownPipe *Pipeline
}

func newTracerPair(t *testing.T, sampler sdktrace.Sampler) *tracerPair {
	t.Helper()
	res := resource.NewWithAttributes("https://opentelemetry.io/schemas/1.26.0", attribute.String("service.name", "pair"))
	pipe := func(exp *keeper) *Pipeline {
		proc := NewProcessor(exp, ProcessorOptions{ScheduleDelay: time.Millisecond})
		tp := sdktrace.NewTracerProvider(sdktrace.WithResource(res), sdktrace.WithSampler(sampler),
			sdktrace.WithSpanProcessor(proc), sdktrace.WithIDGenerator(IDGenerator{}))
		return &Pipeline{Provider: tp, Processor: proc, sampler: sampler, resource: res}
	}
	p := &tracerPair{sdkExp: new(keeper), ownExp: new(keeper)}
	p.sdkPipe, p.ownPipe = pipe(p.sdkExp), pipe(p.ownExp)
	opts := []trace.TracerOption{trace.WithInstrumentationVersion("1.2.3"), trace.WithSchemaURL("https://example/schema"),
		trace.WithInstrumentationAttributes(attribute.Bool("scoped", true))}
	p.sdk = p.sdkPipe.Provider.Tracer(ScopeName, opts...)
	p.own = p.ownPipe.Tracer(ScopeName, opts...)
	if _, ok := p.own.(*Tracer); !ok {
		t.Fatalf("Pipeline.Tracer gave %T; want *Tracer (are OTEL_SPAN_* limits set in the environment?)", p.own)
	}
	return p
}

// exported shuts both pipelines down and returns what each exported, in a form that leaves out only what is
// random or read from the clock: span ids, new trace ids, event times and stack traces.
func (p *tracerPair) exported(t *testing.T) (sdk, own []string) {
	t.Helper()
	for _, pipe := range []*Pipeline{p.sdkPipe, p.ownPipe} {
		if err := pipe.Shutdown(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	return describe(p.sdkExp.spans), describe(p.ownExp.spans)
}

// keeper is an exporter keeping what it is given, also past Shutdown (tracetest's in-memory one forgets).
type keeper struct {
	mu    sync.Mutex
	spans tracetest.SpanStubs
}

func (k *keeper) ExportSpans(_ context.Context, spans []sdktrace.ReadOnlySpan) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.spans = append(k.spans, tracetest.SpanStubsFromReadOnlySpans(spans)...)
	return nil
}
func (*keeper) Shutdown(context.Context) error { return nil }

func describe(spans tracetest.SpanStubs) []string {
	var out []string
	for _, s := range spans {
		sc := func(c trace.SpanContext) string {
			id := "new"
			if c.TraceID() == s.Parent.TraceID() {
				id = c.TraceID().String()
			}
			return fmt.Sprintf("trace %s valid %v flags %s state %q remote %v", id, c.IsValid(), c.TraceFlags(), c.TraceState().String(), c.IsRemote())
		}
		var events []string
		for _, e := range s.Events {
			var attrs []attribute.KeyValue
			for _, a := range e.Attributes {
				if a.Key != "exception.stacktrace" {
					attrs = append(attrs, a)
				} else if !strings.Contains(a.Value.AsString(), "goroutine") {
					attrs = append(attrs, attribute.String("exception.stacktrace", "not a stack trace"))
				}
			}
			events = append(events, fmt.Sprintf("%s %v dropped %d", e.Name, attrs, e.DroppedAttributeCount))
		}
		out = append(out, fmt.Sprintf("name %q kind %s\n span %s\n parent %s\n start %s end %s\n attrs %v dropped %d\n links %+v dropped %d\n events %v dropped %d\n status %+v children %d\n scope %+v resource %s",
			s.Name, s.SpanKind, sc(s.SpanContext), sc(s.Parent), s.StartTime, s.EndTime, s.Attributes, s.DroppedAttributes,
			s.Links, s.DroppedLinks, events, s.DroppedEvents, s.Status, s.ChildSpanCount,
			s.InstrumentationScope, s.Resource.Encoded(attribute.DefaultEncoder())))
	}
	return out
}

// compareExports reports the first line where the two exports differ.
func compareExports(t *testing.T, sdk, own []string) {
	t.Helper()
	if len(sdk) != len(own) {
		t.Fatalf("the SDK exported %d spans, Tracer %d", len(sdk), len(own))
	}
	for i := range sdk {
		a, b := strings.Split(sdk[i], "\n"), strings.Split(own[i], "\n")
		for j := range a {
			if a[j] != b[j] {
				t.Errorf("span %d (%s), line %d:\nSDK    %.600s\nTracer %.600s", i, a[0], j, a[j], b[j])
				break
			}
		}
	}
}

type testError struct{ msg string }

func (e *testError) Error() string { return e.msg }

// Every span the SDK's tracer makes, Tracer makes the same, down to what the processor gets: the hop's
// use (remote parent, links, start timestamp, attributes set once at the end, status, errors) and what it
// does not use (events and links past the limits, more than 128 attributes, panics, children, new roots).
func TestTracer_MatchesSDK(t *testing.T) {
	ts, _ := trace.ParseTraceState("vendor=abc,ot=th:8")
	remote := trace.NewSpanContext(trace.SpanContextConfig{
		TraceID: trace.TraceID{1, 2, 3}, SpanID: trace.SpanID{4, 5, 6}, TraceFlags: trace.FlagsSampled, TraceState: ts, Remote: true,
	})
	unsampled := trace.NewSpanContext(trace.SpanContextConfig{TraceID: trace.TraceID{7}, SpanID: trace.SpanID{7}, Remote: true})
	linked := trace.NewSpanContext(trace.SpanContextConfig{TraceID: trace.TraceID{9}, SpanID: trace.SpanID{8}, Remote: true})
	at := func(ns int64) time.Time { return time.Unix(1700000000, ns) }

	scenarios := map[string]func(tr trace.Tracer){
		"hop": func(tr trace.Tracer) {
			ctx := trace.ContextWithRemoteSpanContext(context.Background(), remote)
			_, s := tr.Start(ctx, "GET", trace.WithSpanKind(trace.SpanKindServer), trace.WithTimestamp(at(1)),
				trace.WithLinks(trace.Link{SpanContext: linked, Attributes: []attribute.KeyValue{attribute.String("sidetrace.link.reason", "other_format")}}))
			s.RecordError(&testError{"upstream timed out"})
			s.RecordError(errors.New("plain"))
			s.RecordError(nil)
			s.SetStatus(codes.Error, "upstream timed out")
			s.SetAttributes(attribute.String("http.request.method", "GET"), attribute.Int("http.response.status_code", 504),
				attribute.String("", "invalid key"), attribute.StringSlice("ss", []string{"a", "b"}), attribute.Float64("f", 0.5),
				attribute.String("http.request.method", "POST")) // a duplicate: the last value wins, at the first place
			s.End(trace.WithTimestamp(at(2)))
			s.SetAttributes(attribute.String("after", "end")) // ignored
			s.End()
		},
		"start attributes, status order, events, names": func(tr trace.Tracer) {
			_, s := tr.Start(context.Background(), "first", trace.WithSpanKind(trace.SpanKindClient), trace.WithTimestamp(at(3)),
				trace.WithAttributes(attribute.Bool("at.start", true), attribute.Int64Slice("is", []int64{1, 2})))
			s.SetName("renamed")
			s.SetStatus(codes.Ok, "ignored description")
			s.SetStatus(codes.Error, "Ok wins")
			s.AddEvent("retry", trace.WithTimestamp(at(4)), trace.WithAttributes(attribute.Int("attempt", 1), attribute.Int("attempt", 2)))
			s.RecordError(&testError{"with stack"}, trace.WithStackTrace(true))
			s.AddLink(trace.Link{}) // empty: ignored
			s.AddLink(trace.Link{SpanContext: unsampled})
			s.End(trace.WithTimestamp(at(5)))
		},
		"over the limits": func(tr trace.Tracer) {
			_, s := tr.Start(context.Background(), "many", trace.WithTimestamp(at(6)))
			for i := range 140 {
				s.SetAttributes(attribute.Int(fmt.Sprintf("k%03d", i), i))
			}
			s.SetAttributes(attribute.String("k005", "updated past the limit"), attribute.String("new", "dropped"), attribute.String("", "invalid"))
			for i := range 130 {
				s.AddEvent(fmt.Sprintf("e%d", i), trace.WithTimestamp(at(int64(i))))
			}
			var many []attribute.KeyValue
			for i := range 130 {
				many = append(many, attribute.Int(fmt.Sprintf("a%d", i), i))
			}
			s.AddEvent("wide", trace.WithTimestamp(at(7)), trace.WithAttributes(many...))
			for i := range 130 {
				s.AddLink(trace.Link{SpanContext: linked, Attributes: many[:i%3]})
			}
			s.AddLink(trace.Link{SpanContext: linked, Attributes: many})
			s.End(trace.WithTimestamp(at(8)))
		},
		"one batch of attributes past the limit": func(tr trace.Tracer) {
			_, s := tr.Start(context.Background(), "batch", trace.WithTimestamp(at(9)), trace.WithAttributes(attribute.String("dup", "start")))
			var kv []attribute.KeyValue
			for i := range 135 {
				kv = append(kv, attribute.Int(fmt.Sprintf("b%03d", i%131), i), attribute.String("dup", fmt.Sprint(i)))
			}
			s.SetAttributes(kv...)
			s.End(trace.WithTimestamp(at(10)))
		},
		"children and new roots": func(tr trace.Tracer) {
			ctx := trace.ContextWithRemoteSpanContext(context.Background(), remote)
			ctx, parent := tr.Start(ctx, "parent", trace.WithTimestamp(at(11)))
			for range 3 {
				_, c := tr.Start(ctx, "child", trace.WithTimestamp(at(12)))
				c.End(trace.WithTimestamp(at(13)))
			}
			_, root := tr.Start(ctx, "new root", trace.WithNewRoot(), trace.WithTimestamp(at(14)))
			root.End(trace.WithTimestamp(at(15)))
			parent.End(trace.WithTimestamp(at(16)))
			_, late := tr.Start(ctx, "child of an ended span", trace.WithTimestamp(at(17)))
			late.End(trace.WithTimestamp(at(18)))
		},
		"a panic recorded by a deferred End": func(tr trace.Tracer) {
			func() {
				defer func() { _ = recover() }()
				_, s := tr.Start(context.Background(), "panics", trace.WithTimestamp(at(19)))
				defer s.End(trace.WithTimestamp(at(20)))
				panic(&testError{"boom"})
			}()
		},
		"no attributes, an unknown kind, an unsampled parent": func(tr trace.Tracer) {
			_, s := tr.Start(context.Background(), "bare", trace.WithTimestamp(at(21)), trace.WithSpanKind(trace.SpanKind(99)))
			s.End(trace.WithTimestamp(at(22)))
			ctx := trace.ContextWithRemoteSpanContext(context.Background(), unsampled)
			_, dropped := tr.Start(ctx, "dropped", trace.WithTimestamp(at(23)))
			dropped.SetAttributes(attribute.Int("n", 1))
			dropped.End(trace.WithTimestamp(at(24)))
		},
	}
	for name, run := range scenarios {
		t.Run(name, func(t *testing.T) {
			p := newTracerPair(t, sdktrace.ParentBased(sdktrace.AlwaysSample()))
			run(p.sdk)
			run(p.own)
			sdk, own := p.exported(t)
			if len(sdk) == 0 {
				t.Fatal("the SDK exported nothing")
			}
			compareExports(t, sdk, own)
		})
	}
}

// scripted returns each decision in turn, with a tracestate and an attribute, as a sampler may.
type scripted struct{ decisions []sdktrace.SamplingDecision }

func (s *scripted) ShouldSample(p sdktrace.SamplingParameters) sdktrace.SamplingResult {
	d := s.decisions[0]
	s.decisions = s.decisions[1:]
	ts, _ := trace.SpanContextFromContext(p.ParentContext).TraceState().Insert("ot", "th:c")
	return sdktrace.SamplingResult{Decision: d, Tracestate: ts, Attributes: []attribute.KeyValue{attribute.String("sampler.name", p.Name)}}
}
func (*scripted) Description() string { return "scripted" }

// Sampling decisions come out the same: a dropped span carries its context and records nothing, a
// record-only span is exported only with a sampling reason (the processor's rule), and the sampler's
// tracestate and attributes are the span's.
func TestTracer_SamplingMatchesSDK(t *testing.T) {
	decisions := []sdktrace.SamplingDecision{sdktrace.Drop, sdktrace.RecordOnly, sdktrace.RecordOnly, sdktrace.RecordAndSample}
	sdkSampler, ownSampler := &scripted{decisions}, &scripted{decisions}
	p := newTracerPair(t, sdkSampler)
	p.ownPipe.sampler = ownSampler
	p.own = p.ownPipe.Tracer(ScopeName, trace.WithInstrumentationVersion("1.2.3"), trace.WithSchemaURL("https://example/schema"),
		trace.WithInstrumentationAttributes(attribute.Bool("scoped", true)))
	ctx := trace.ContextWithRemoteSpanContext(context.Background(), trace.NewSpanContext(trace.SpanContextConfig{
		TraceID: trace.TraceID{1}, SpanID: trace.SpanID{2}, TraceFlags: trace.FlagsSampled | trace.FlagsRandom, Remote: true,
	}))
	var recording [2][]string
	for i, tr := range []trace.Tracer{p.sdk, p.own} {
		for j, name := range []string{"dropped", "record-only", "record-only kept", "sampled"} {
			sctx, s := tr.Start(ctx, name, trace.WithTimestamp(time.Unix(1, int64(j))))
			if in := trace.SpanFromContext(sctx); !in.SpanContext().Equal(s.SpanContext()) || in.IsRecording() != s.IsRecording() {
				t.Errorf("%T: the context does not hold the span", tr)
			}
			if j == 2 {
				s.SetAttributes(AttrSamplingReason.String("error"))
			}
			s.SetAttributes(attribute.Int("n", j))
			s.RecordError(errors.New("e"))
			sc := s.SpanContext()
			recording[i] = append(recording[i], fmt.Sprintf("%s: recording %v sampled %v random %v state %q valid %v remote %v provider %v",
				name, s.IsRecording(), sc.IsSampled(), sc.IsRandom(), sc.TraceState().String(), sc.IsValid(), sc.IsRemote(), s.TracerProvider() != nil))
			s.End(trace.WithTimestamp(time.Unix(2, int64(j))))
			if s.IsRecording() {
				t.Errorf("%T %s: recording after End", tr, name)
			}
		}
	}
	if !reflect.DeepEqual(recording[0], recording[1]) {
		t.Errorf("the SDK's spans\n%s\nTracer's\n%s", strings.Join(recording[0], "\n"), strings.Join(recording[1], "\n"))
	}
	sdk, own := p.exported(t)
	if len(sdk) != 2 {
		t.Errorf("the SDK exported %d spans; want the sampled one and the record-only one with a reason", len(sdk))
	}
	compareExports(t, sdk, own)
}

// A new trace's id comes from the context (TraceIDKey), as with the SDK and IDGenerator; the span's start
// time is the clock's when no timestamp is given, and its end is taken on the monotonic clock.
func TestTracer_TraceIDAndClock(t *testing.T) {
	p := newTracerPair(t, sdktrace.AlwaysSample())
	id := trace.TraceID{0xab, 1}
	before := time.Now()
	_, s := p.own.Start(context.WithValue(context.Background(), TraceIDKey{}, &id), "preset")
	s.End()
	after := time.Now()
	if got := s.SpanContext().TraceID(); got != id {
		t.Errorf("trace id %s; want %s", got, id)
	}
	ro := s.(sdktrace.ReadOnlySpan)
	if ro.StartTime().Before(before) || ro.EndTime().After(after) || ro.EndTime().Before(ro.StartTime()) {
		t.Errorf("start %s end %s; want within [%s, %s]", ro.StartTime(), ro.EndTime(), before, after)
	}
	if ro.InstrumentationScope() != (instrumentation.Scope{Name: ScopeName, Version: "1.2.3", SchemaURL: "https://example/schema",
		Attributes: attribute.NewSet(attribute.Bool("scoped", true))}) {
		t.Errorf("scope %+v", ro.InstrumentationScope())
	}
	// Every method of the interface is the span's own: one left to the embedded nil interface would panic.
	it := reflect.TypeFor[sdktrace.ReadOnlySpan]()
	v := reflect.ValueOf(ro)
	for i := range it.NumMethod() {
		m := it.Method(i)
		if !m.IsExported() {
			continue
		}
		func() {
			defer func() {
				if r := recover(); r != nil {
					t.Errorf("ReadOnlySpan.%s panics: %v", m.Name, r)
				}
			}()
			v.MethodByName(m.Name).Call(nil)
		}()
	}
	// An unnamed tracer gets the SDK's default name, as the SDK's provider gives it.
	_, unnamed := p.ownPipe.Tracer("").Start(context.Background(), "unnamed")
	_, sdkUnnamed := p.ownPipe.Provider.Tracer("").Start(context.Background(), "unnamed")
	if got, want := unnamed.(sdktrace.ReadOnlySpan).InstrumentationScope().Name, sdkUnnamed.(sdktrace.ReadOnlySpan).InstrumentationScope().Name; got != want {
		t.Errorf("unnamed tracer's scope %q; want the SDK's %q", got, want)
	}
	unnamed.End()
	sdkUnnamed.End()
	p.exported(t)
}

// StartAt and EndAt are Start and End with trace.WithTimestamp, without the option's allocation each.
func TestTracer_StartAtEndAt(t *testing.T) {
	p := newTracerPair(t, sdktrace.AlwaysSample())
	ts := time.Date(2026, 11, 22, 1, 2, 3, 4, time.UTC)
	link := trace.Link{SpanContext: trace.NewSpanContext(trace.SpanContextConfig{TraceID: trace.TraceID{7}, SpanID: trace.SpanID{8}})}
	_, s := p.sdk.Start(context.Background(), "hop", trace.WithSpanKind(trace.SpanKindServer), trace.WithTimestamp(ts), trace.WithLinks(link))
	s.SetAttributes(attribute.Int("n", 1))
	s.End(trace.WithTimestamp(ts.Add(time.Millisecond)))
	own := p.own.(*Tracer)
	_, s = own.StartAt(context.Background(), "hop", ts, trace.WithSpanKind(trace.SpanKindServer), trace.WithLinks(link))
	s.SetAttributes(attribute.Int("n", 1))
	s.(*span).EndAt(ts.Add(time.Millisecond))
	s.(*span).EndAt(ts.Add(time.Hour)) // ended already: no effect
	s.End()

	// Zero times are the clock's, as without the option.
	before := time.Now()
	_, z := own.StartAt(context.Background(), "now", time.Time{})
	z.(*span).EndAt(time.Time{})
	after := time.Now()
	if ro := z.(sdktrace.ReadOnlySpan); ro.StartTime().Before(before) || ro.EndTime().After(after) || ro.EndTime().Before(ro.StartTime()) {
		t.Errorf("start %s end %s; want within [%s, %s]", ro.StartTime(), ro.EndTime(), before, after)
	}

	kind := trace.WithSpanKind(trace.SpanKindServer)
	withOpts := testing.AllocsPerRun(200, func() {
		_, s := own.Start(context.Background(), "a", kind, trace.WithTimestamp(ts))
		s.End(trace.WithTimestamp(ts))
	})
	withAt := testing.AllocsPerRun(200, func() {
		_, s := own.StartAt(context.Background(), "a", ts, kind)
		s.(*span).EndAt(ts)
	})
	if withAt > withOpts-2 {
		t.Errorf("StartAt and EndAt: %v allocations per span; Start and End with timestamps: %v; want 2 fewer", withAt, withOpts)
	}

	sdk, ownSpans := p.exported(t)
	compareExports(t, sdk, ownSpans[:1])
}

// After the pipeline is shut down, spans end without reaching the processor, as the SDK's do once its
// provider has unregistered it; nothing is counted as dropped.
func TestTracer_AfterShutdown(t *testing.T) {
	p := newTracerPair(t, sdktrace.AlwaysSample())
	p.exported(t)
	_, s := p.own.Start(context.Background(), "late")
	s.End()
	if st := p.ownPipe.Processor.Stats(); st.Enqueued != 0 || st.Dropped != 0 {
		t.Errorf("after shutdown: %+v; want nothing enqueued or dropped", st)
	}
}

// With a span limit set in the environment, Pipeline.Tracer is the SDK's own, which applies it.
func TestPipelineTracer_SDKWhenLimitsSet(t *testing.T) {
	t.Setenv("OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT", "4")
	proc := NewProcessor(tracetest.NewInMemoryExporter(), ProcessorOptions{})
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(proc))
	pipe := &Pipeline{Provider: tp, Processor: proc, sampler: sdktrace.AlwaysSample(), resource: resource.Empty()}
	defer pipe.Shutdown(context.Background())
	if _, ok := pipe.Tracer(ScopeName).(*Tracer); ok {
		t.Fatal("got a *Tracer with OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT set; want the SDK's tracer")
	}
}

// BenchmarkTracer is a hop's span (remote parent, start timestamp, 20 attributes at the end, an error
// status) through the SDK's tracer and through Tracer, to a processor whose queue is drained.
func BenchmarkTracer(b *testing.B) {
	remote := trace.NewSpanContext(trace.SpanContextConfig{TraceID: trace.TraceID{1}, SpanID: trace.SpanID{2}, TraceFlags: trace.FlagsSampled, Remote: true})
	ctx := trace.ContextWithRemoteSpanContext(context.Background(), remote)
	attrs := make([]attribute.KeyValue, 20)
	for i := range attrs {
		attrs[i] = attribute.String(fmt.Sprintf("attr.%d", i), "value")
	}
	for _, own := range []bool{false, true} {
		name := "sdk"
		if own {
			name = "own"
		}
		b.Run(name, func(b *testing.B) {
			proc := NewProcessor(discard{}, ProcessorOptions{QueueSize: 1 << 16, BatchSize: 512, ScheduleDelay: time.Millisecond})
			tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(proc), sdktrace.WithIDGenerator(IDGenerator{}))
			pipe := &Pipeline{Provider: tp, Processor: proc, sampler: sdktrace.ParentBased(sdktrace.AlwaysSample()), resource: resource.Empty()}
			tr := tp.Tracer(ScopeName)
			if own {
				tr = pipe.Tracer(ScopeName)
			}
			start := trace.WithTimestamp(time.Now())
			kind := trace.WithSpanKind(trace.SpanKindServer)
			b.ReportAllocs()
			for b.Loop() {
				_, s := tr.Start(ctx, "GET", kind, start)
				s.SetStatus(codes.Error, "")
				s.SetAttributes(attrs...)
				s.End()
			}
			b.StopTimer()
			_ = pipe.Shutdown(context.Background())
		})
	}
}

type discard struct{}

func (discard) ExportSpans(context.Context, []sdktrace.ReadOnlySpan) error { return nil }
func (discard) Shutdown(context.Context) error                             { return nil }
