package sampling

import (
	"context"
	"encoding/binary"
	"math/rand/v2"
	"sync/atomic"
	"testing"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
)

// fakeClock is a settable clock for WithClock, safe for concurrent use.
type fakeClock struct{ ns atomic.Int64 }

var clockEpoch = time.Date(2026, 11, 21, 9, 0, 0, 0, time.UTC)

func (c *fakeClock) now() time.Time          { return clockEpoch.Add(time.Duration(c.ns.Load())) }
func (c *fakeClock) set(d time.Duration)     { c.ns.Store(int64(d)) }
func (c *fakeClock) advance(d time.Duration) { c.ns.Add(int64(d)) }

// traceIDs returns a deterministic stream of random trace ids (PCG with a fixed seed).
type traceIDs struct{ r *rand.Rand }

func newTraceIDs(seed uint64) *traceIDs { return &traceIDs{rand.New(rand.NewPCG(seed, 0x5ee_d5))} }

func (g *traceIDs) next() trace.TraceID {
	var id trace.TraceID
	binary.BigEndian.PutUint64(id[:8], g.r.Uint64())
	binary.BigEndian.PutUint64(id[8:], g.r.Uint64())
	return id
}

func mustNew(t testing.TB, name, arg string, opts ...Option) sdktrace.Sampler {
	t.Helper()
	s, err := New(name, arg, opts...)
	if err != nil {
		t.Fatalf("New(%q, %q): %v", name, arg, err)
	}
	return s
}

func decide(s sdktrace.Sampler, ctx context.Context, id trace.TraceID) sdktrace.SamplingResult {
	return s.ShouldSample(sdktrace.SamplingParameters{ParentContext: ctx, TraceID: id, Name: "GET /", Kind: trace.SpanKindServer})
}

var parentTraceID = trace.TraceID{0x4b, 0xf9, 0x2f, 0x35, 0x77, 0xb3, 0x4d, 0xa6, 0xa3, 0xce, 0x92, 0x9d, 0x0e, 0x0e, 0x47, 0x36}

// withParent returns ctx with a parent span context, remote or local, sampled or not, with tracestate ts.
func withParent(t testing.TB, ctx context.Context, sampled, remote bool, ts string) context.Context {
	t.Helper()
	var flags trace.TraceFlags
	if sampled {
		flags = trace.FlagsSampled
	}
	sc := trace.NewSpanContext(trace.SpanContextConfig{
		TraceID:    parentTraceID,
		SpanID:     trace.SpanID{0, 0xf0, 0x67, 0xaa, 0x0b, 0xa9, 0x02, 0xb7},
		TraceFlags: flags,
		TraceState: mustTraceState(t, ts),
		Remote:     remote,
	})
	return trace.ContextWithSpanContext(ctx, sc)
}

var decisionNames = map[sdktrace.SamplingDecision]string{
	sdktrace.Drop: "Drop", sdktrace.RecordOnly: "RecordOnly", sdktrace.RecordAndSample: "RecordAndSample",
}

func decisionName(d sdktrace.SamplingDecision) string { return decisionNames[d] }
