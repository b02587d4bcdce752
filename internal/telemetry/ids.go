package telemetry

import (
	"context"
	"math/rand/v2"

	"go.opentelemetry.io/otel/trace"
)

// IDGenerator makes trace and span ids from the runtime's per-thread ChaCha8 source (no lock on the hot
// path). A trace id chosen before the span starts (ContextWithTraceID) is used as is: the proxy picks the id
// of a new trace early, so that plugins deciding on it and the span agree.
type IDGenerator struct{}

// TraceIDKey is the context key of a trace id chosen before the span starts. Its value is a trace.TraceID
// or a *trace.TraceID: a context type of the caller's own that keeps the id in a struct it already has
// answers with a pointer, which costs no allocation (see ContextWithTraceID for the simple way).
type TraceIDKey struct{}

// ContextWithTraceID makes the next root span started with ctx use id.
func ContextWithTraceID(ctx context.Context, id trace.TraceID) context.Context {
	return context.WithValue(ctx, TraceIDKey{}, id)
}

// NewTraceID returns a random, valid trace id.
func NewTraceID() trace.TraceID {
	var id trace.TraceID
	for !id.IsValid() {
		putUint64(id[:8], rand.Uint64())
		putUint64(id[8:], rand.Uint64())
	}
	return id
}

// NewIDs implements sdktrace.IDGenerator.
func (IDGenerator) NewIDs(ctx context.Context) (trace.TraceID, trace.SpanID) {
	switch id := ctx.Value(TraceIDKey{}).(type) {
	case trace.TraceID:
		if id.IsValid() {
			return id, newSpanID()
		}
	case *trace.TraceID:
		if id != nil && id.IsValid() {
			return *id, newSpanID()
		}
	}
	return NewTraceID(), newSpanID()
}

// NewSpanID implements sdktrace.IDGenerator.
func (IDGenerator) NewSpanID(context.Context, trace.TraceID) trace.SpanID { return newSpanID() }

func newSpanID() trace.SpanID {
	var id trace.SpanID
	for !id.IsValid() {
		putUint64(id[:], rand.Uint64())
	}
	return id
}

func putUint64(b []byte, v uint64) {
	_ = b[7]
	for i := 7; i >= 0; i-- {
		b[i] = byte(v)
		v >>= 8
	}
}
