package telemetry

import (
	"context"
	"fmt"
	"reflect"
	"runtime"
	rt "runtime/trace"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/sdk/instrumentation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/embedded"
)

// Tracer makes the spans of sidetrace's hops as the SDK's tracer of the same pipeline would (same sampler,
// ids, limits, resource, scope and processor; TestTracer_MatchesSDK compares the two), with a span type of
// its own that is also the read-only span handed to the processor. The SDK's recording span costs a map per
// span to deduplicate attributes, a snapshot copy at the end and other allocations; at 5000 requests/s its
// start and end were 8% of the proxy's CPU.
//
// Differences, both outside what sidetrace's spans carry: attribute values of the generic SLICE and MAP
// types are kept as given (the SDK deduplicates keys nested in them and limits their depth), and the SDK's
// experimental self-observability metrics are not recorded for these spans. Pipeline.Tracer returns the
// SDK's tracer itself when span limits are set through the OTEL_SPAN_* variables, so that they apply exactly.
type Tracer struct {
	embedded.Tracer

	provider *sdktrace.TracerProvider
	sampler  sdktrace.Sampler
	proc     *Processor
	res      *resource.Resource
	scope    instrumentation.Scope
	shut     *atomic.Bool // the pipeline is shut down: spans are no longer handed to the processor
	// spans holds exported spans for reuse, when the processor recycles them (ProcessorOptions.Recycle): a
	// hop's span is the largest allocation of a request (2 KB of about 5), and fewer bytes allocated mean
	// fewer collections, each of which slows the requests that follow it.
	spans sync.Pool
}

// maxAttrs is the SDK's default AttributeCountLimit; the other default limits are the same 128.
const maxAttrs = sdktrace.DefaultAttributeCountLimit

// newTracer returns p's tracer for name and opts: a Tracer, or the SDK's when limits are not the defaults.
func newTracer(p *Pipeline, name string, opts ...trace.TracerOption) trace.Tracer {
	def := sdktrace.SpanLimits{
		AttributeValueLengthLimit:   sdktrace.DefaultAttributeValueLengthLimit,
		AttributeValueDepthLimit:    sdktrace.DefaultAttributeValueDepthLimit,
		AttributeCountLimit:         sdktrace.DefaultAttributeCountLimit,
		EventCountLimit:             sdktrace.DefaultEventCountLimit,
		LinkCountLimit:              sdktrace.DefaultLinkCountLimit,
		AttributePerEventCountLimit: sdktrace.DefaultAttributePerEventCountLimit,
		AttributePerLinkCountLimit:  sdktrace.DefaultAttributePerLinkCountLimit,
	}
	if sdktrace.NewSpanLimits() != def {
		return p.Provider.Tracer(name, opts...)
	}
	c := trace.NewTracerConfig(opts...)
	if name == "" {
		name = "go.opentelemetry.io/otel/sdk/tracer" // the SDK's default
	}
	return &Tracer{
		provider: p.Provider,
		sampler:  p.sampler,
		proc:     p.Processor,
		res:      p.resource,
		scope:    instrumentation.Scope{Name: name, Version: c.InstrumentationVersion(), SchemaURL: c.SchemaURL(), Attributes: c.InstrumentationAttributes()},
		shut:     &p.shut,
	}
}

// Start implements trace.Tracer: the steps of the SDK's tracer.Start, newSpan and newRecordingSpan.
func (t *Tracer) Start(ctx context.Context, name string, opts ...trace.SpanStartOption) (context.Context, trace.Span) {
	config := trace.NewSpanStartConfig(opts...)
	return t.start(ctx, name, config.Timestamp(), &config)
}

// StartAt is Start with the start time given apart from opts (zero: now): a trace.WithTimestamp option is
// an allocation per span.
func (t *Tracer) StartAt(ctx context.Context, name string, ts time.Time, opts ...trace.SpanStartOption) (context.Context, trace.Span) {
	config := trace.NewSpanStartConfig(opts...)
	if ts.IsZero() {
		ts = config.Timestamp()
	}
	return t.start(ctx, name, ts, &config)
}

func (t *Tracer) start(ctx context.Context, name string, ts time.Time, config *trace.SpanConfig) (context.Context, trace.Span) {
	if ctx == nil {
		ctx = context.Background()
	}
	if p, ok := trace.SpanFromContext(ctx).(*span); ok {
		p.addChild()
	}

	var psc trace.SpanContext
	sctx := ctx
	if config.NewRoot() {
		sctx = trace.ContextWithSpanContext(ctx, psc)
	} else {
		psc = trace.SpanContextFromContext(ctx)
	}
	var tid trace.TraceID
	var sid trace.SpanID
	if !psc.TraceID().IsValid() {
		tid, sid = IDGenerator{}.NewIDs(sctx)
	} else {
		tid, sid = psc.TraceID(), IDGenerator{}.NewSpanID(sctx, psc.TraceID())
	}
	sr := t.sampler.ShouldSample(sdktrace.SamplingParameters{
		ParentContext: sctx, TraceID: tid, Name: name, Kind: config.SpanKind(),
		Attributes: config.Attributes(), Links: config.Links(),
	})
	scc := trace.SpanContextConfig{TraceID: tid, SpanID: sid, TraceState: sr.Tracestate}
	if sr.Decision == sdktrace.RecordAndSample {
		scc.TraceFlags = psc.TraceFlags() | trace.FlagsSampled
	} else {
		scc.TraceFlags = psc.TraceFlags() &^ trace.FlagsSampled
	}
	sc := trace.NewSpanContext(scc)
	if sr.Decision == sdktrace.Drop {
		var ns trace.Span = nonRecordingSpan{provider: t.provider, sc: sc}
		return trace.ContextWithSpan(ctx, ns), ns
	}

	s, _ := t.spans.Get().(*span)
	if s == nil {
		s = new(span)
	}
	*s = span{
		tracer: t, parent: psc, sc: sc, kind: trace.ValidateSpanKind(config.SpanKind()), name: name,
		start: ts,
	}
	if s.start.IsZero() {
		s.start = time.Now()
	}
	s.attrs = s.inline[:0]
	for _, l := range config.Links() {
		s.AddLink(l)
	}
	s.SetAttributes(sr.Attributes...)
	s.SetAttributes(config.Attributes()...)
	ctx = trace.ContextWithSpan(ctx, s)
	if rt.IsEnabled() {
		var task *rt.Task
		ctx, task = rt.NewTask(ctx, name)
		s.taskEnd = task.End
	}
	return ctx, s
}

// span is a recording span and, once ended, the read-only span the processor and exporters read. Methods
// take its lock as the SDK's do; after End nothing changes it.
type span struct {
	embedded.Span
	sdktrace.ReadOnlySpan // nil: only for the interface's unexported method, as tracetest's snapshots do

	tracer *Tracer

	mu       sync.Mutex
	ended    bool
	name     string
	parent   trace.SpanContext
	sc       trace.SpanContext
	kind     trace.SpanKind
	start    time.Time
	end      time.Time
	status   sdktrace.Status
	children int
	taskEnd  func()

	attrs        []attribute.KeyValue // in the order set; duplicates resolved at End (the last value wins)
	dirty        bool                 // attrs may hold duplicates
	droppedAttrs int
	inline       [24]attribute.KeyValue // attrs' first backing array: a hop's span has about 20

	events        []sdktrace.Event
	droppedEvents int
	links         []sdktrace.Link
	droppedLinks  int
}

var _ sdktrace.ReadOnlySpan = (*span)(nil)

func (s *span) SpanContext() trace.SpanContext { return s.sc }

func (s *span) IsRecording() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return !s.ended
}

func (s *span) SetStatus(code codes.Code, description string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ended || s.status.Code > code {
		return
	}
	st := sdktrace.Status{Code: code}
	if code == codes.Error {
		st.Description = description
	}
	s.status = st
}

// SetAttributes adds attributes as the SDK does under its default limits: invalid ones are dropped and
// counted, and past 128 distinct keys a new key is dropped while an existing one is still updated.
func (s *span) SetAttributes(kv ...attribute.KeyValue) {
	if len(kv) == 0 {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ended {
		return
	}
	if len(s.attrs)+len(kv) > maxAttrs {
		s.addOverCap(kv)
		return
	}
	for _, a := range kv {
		if !a.Valid() {
			s.droppedAttrs++
			continue
		}
		s.attrs = append(s.attrs, a)
		s.dirty = true
	}
}

// addOverCap is the SDK's addOverCapAttrs.
func (s *span) addOverCap(kv []attribute.KeyValue) {
	s.dedupe()
	for _, a := range kv {
		if !a.Valid() {
			s.droppedAttrs++
			continue
		}
		if i := keyIndex(s.attrs, a.Key); i >= 0 {
			s.attrs[i] = a
			continue
		}
		if len(s.attrs) >= maxAttrs {
			s.droppedAttrs++
		} else {
			s.attrs = append(s.attrs, a)
		}
	}
}

// keyIndex is the position of k in kvs, or -1.
func keyIndex(kvs []attribute.KeyValue, k attribute.Key) int {
	for i := range kvs {
		if kvs[i].Key == k {
			return i
		}
	}
	return -1
}

// dedupe keeps each key once, at its first position, with its last value (the SDK's dedupeAttrs). A hop's
// span has a few dozen attributes at most: a scan costs less than the map the SDK builds.
func (s *span) dedupe() {
	if !s.dirty {
		return
	}
	s.dirty = false
	unique := s.attrs[:0]
	for _, a := range s.attrs {
		if i := keyIndex(unique, a.Key); i >= 0 {
			unique[i] = a
		} else {
			unique = append(unique, a)
		}
	}
	clear(s.attrs[len(unique):])
	s.attrs = unique
}

// End ends the span and hands it to the processor, as the SDK's End: a panic in progress when End is
// deferred directly is recorded as an exception event and goes on.
func (s *span) End(opts ...trace.SpanEndOption) {
	end := s.start.Add(time.Since(s.start))
	s.mu.Lock()
	if s.ended {
		s.mu.Unlock()
		return
	}
	config := trace.NewSpanEndConfig(opts...)
	if recovered := recover(); recovered != nil {
		defer panic(recovered)
		attrs := []attribute.KeyValue{semconv.ExceptionType(typeStr(recovered)), semconv.ExceptionMessage(fmt.Sprint(recovered))}
		if config.StackTrace() {
			attrs = append(attrs, semconv.ExceptionStacktrace(stackTrace()))
		}
		s.addEvent(semconv.ExceptionEventName, trace.NewEventConfig(trace.WithAttributes(attrs...)))
	}
	if ts := config.Timestamp(); !ts.IsZero() {
		end = ts
	}
	s.finish(end)
}

// EndAt is End with the end time given (zero: now) instead of a trace.WithTimestamp option, an allocation per
// span; it records no panic, which only a deferred End can recover.
func (s *span) EndAt(ts time.Time) {
	if ts.IsZero() {
		ts = s.start.Add(time.Since(s.start))
	}
	s.mu.Lock()
	if s.ended {
		s.mu.Unlock()
		return
	}
	s.finish(ts)
}

// recycle clears an exported span and keeps it for the tracer's next span. Only the processor calls it, once
// the exporter has read the span and kept nothing of it; the hop that ended the span holds it no longer.
func (s *span) recycle() {
	t := s.tracer
	*s = span{}
	t.spans.Put(s)
}

// finish ends the span at end and hands it to the processor; s.mu is held, and released.
func (s *span) finish(end time.Time) {
	if s.taskEnd != nil {
		s.mu.Unlock()
		s.taskEnd()
		s.mu.Lock()
	}
	s.end, s.ended = end, true
	s.dedupe()
	s.mu.Unlock()
	if !s.tracer.shut.Load() {
		s.tracer.proc.OnEnd(s)
	}
}

func (s *span) RecordError(err error, opts ...trace.EventOption) {
	if err == nil || !s.IsRecording() {
		return
	}
	opts = append(opts, trace.WithAttributes(semconv.ExceptionType(typeStr(err)), semconv.ExceptionMessage(err.Error())))
	if c := trace.NewEventConfig(opts...); c.StackTrace() {
		opts = append(opts, trace.WithAttributes(semconv.ExceptionStacktrace(stackTrace())))
	}
	s.AddEvent(semconv.ExceptionEventName, opts...)
}

// typeStr and stackTrace are the SDK's.
func typeStr(i any) string {
	t := reflect.TypeOf(i)
	if t.PkgPath() == "" && t.Name() == "" {
		return t.String()
	}
	return fmt.Sprintf("%s.%s", t.PkgPath(), t.Name())
}

func stackTrace() string {
	b := make([]byte, 2048)
	return string(b[:runtime.Stack(b, false)])
}

func (s *span) AddEvent(name string, opts ...trace.EventOption) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.ended {
		s.addEvent(name, trace.NewEventConfig(opts...))
	}
}

// addEvent keeps the last 128 events, each with at most 128 attributes, as the SDK's evicted queue does.
func (s *span) addEvent(name string, c trace.EventConfig) {
	attrs, dropped := limitAttrs(c.Attributes(), sdktrace.DefaultAttributePerEventCountLimit)
	e := sdktrace.Event{Name: name, Attributes: attrs, DroppedAttributeCount: dropped, Time: c.Timestamp()}
	s.events = appendEvicting(s.events, e, sdktrace.DefaultEventCountLimit, &s.droppedEvents)
}

// limitAttrs keeps the first limit of kvs and says how many it dropped, as the SDK does for an event's or a
// link's attributes.
func limitAttrs(kvs []attribute.KeyValue, limit int) ([]attribute.KeyValue, int) {
	if len(kvs) > limit {
		return kvs[:limit], len(kvs) - limit
	}
	return kvs, 0
}

// appendEvicting appends v to q, first dropping (and counting in dropped) the oldest element when q holds
// capacity already: the SDK's evictedQueue.add.
func appendEvicting[T any](q []T, v T, capacity int, dropped *int) []T {
	if len(q) == capacity {
		copy(q, q[1:])
		q = q[:len(q)-1]
		*dropped++
	}
	return append(q, v)
}

func (s *span) AddLink(link trace.Link) {
	if !link.SpanContext.IsValid() && len(link.Attributes) == 0 && link.SpanContext.TraceState().Len() == 0 {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ended {
		return
	}
	attrs, dropped := limitAttrs(link.Attributes, sdktrace.DefaultAttributePerLinkCountLimit)
	l := sdktrace.Link{SpanContext: link.SpanContext, Attributes: attrs, DroppedAttributeCount: dropped}
	s.links = appendEvicting(s.links, l, sdktrace.DefaultLinkCountLimit, &s.droppedLinks)
}

func (s *span) SetName(name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.ended {
		s.name = name
	}
}

func (s *span) TracerProvider() trace.TracerProvider { return s.tracer.provider }

func (s *span) addChild() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.ended {
		s.children++
	}
}

// The sdktrace.ReadOnlySpan methods. The processor and exporters call them after End, when nothing changes.

func (s *span) Name() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.name
}

func (s *span) Parent() trace.SpanContext { return s.parent }
func (s *span) SpanKind() trace.SpanKind  { return s.kind }
func (s *span) StartTime() time.Time      { return s.start }

func (s *span) EndTime() time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.end
}

func (s *span) Attributes() []attribute.KeyValue {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.dedupe()
	if len(s.attrs) == 0 {
		return nil
	}
	return s.attrs
}

func (s *span) Links() []sdktrace.Link {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.links
}

func (s *span) Events() []sdktrace.Event {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.events
}

func (s *span) Status() sdktrace.Status {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.status
}

func (s *span) InstrumentationScope() instrumentation.Scope { return s.tracer.scope }

//nolint:staticcheck // part of sdktrace.ReadOnlySpan
func (s *span) InstrumentationLibrary() instrumentation.Library { return s.tracer.scope }

func (s *span) Resource() *resource.Resource { return s.tracer.res }

func (s *span) DroppedAttributes() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.droppedAttrs
}

func (s *span) DroppedLinks() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.droppedLinks
}

func (s *span) DroppedEvents() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.droppedEvents
}

func (s *span) ChildSpanCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.children
}

// nonRecordingSpan is the SDK's: a dropped span carries its context and does nothing else.
type nonRecordingSpan struct {
	embedded.Span
	provider trace.TracerProvider
	sc       trace.SpanContext
}

func (s nonRecordingSpan) SpanContext() trace.SpanContext        { return s.sc }
func (nonRecordingSpan) IsRecording() bool                       { return false }
func (nonRecordingSpan) SetStatus(codes.Code, string)            {}
func (nonRecordingSpan) SetAttributes(...attribute.KeyValue)     {}
func (nonRecordingSpan) End(...trace.SpanEndOption)              {}
func (nonRecordingSpan) RecordError(error, ...trace.EventOption) {}
func (nonRecordingSpan) AddEvent(string, ...trace.EventOption)   {}
func (nonRecordingSpan) AddLink(trace.Link)                      {}
func (nonRecordingSpan) SetName(string)                          {}
func (s nonRecordingSpan) TracerProvider() trace.TracerProvider  { return s.provider }
