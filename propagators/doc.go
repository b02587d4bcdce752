// Package propagators extracts, injects and translates the trace context formats a sidecar proxy meets:
//
//   - W3C Trace Context Level 2 (traceparent, tracestate), https://www.w3.org/TR/trace-context-2/ (w3c.go)
//   - W3C Baggage (baggage), https://www.w3.org/TR/baggage/ (baggage.go)
//   - B3 single (b3) and multiple (X-B3-*) headers, https://github.com/openzipkin/b3-propagation (b3.go)
//   - Jaeger (uber-trace-id, uberctx-*),
//     https://www.jaegertracing.io/docs/1.21/client-libraries/#propagation-format (jaeger.go)
//   - AWS X-Ray (X-Amzn-Trace-Id),
//     https://docs.aws.amazon.com/xray/latest/devguide/xray-concepts.html#xray-concepts-tracingheader (xray.go)
//
// Format names are those of OTEL_PROPAGATORS
// (https://opentelemetry.io/docs/specs/otel/configuration/sdk-environment-variables/).
//
// # Extraction
//
// Extract reads the formats in the configured order (ParseExtract; default tracecontext, baggage, b3, b3multi,
// jaeger, xray). It never fails: a malformed header is treated as absent, following each spec's processing
// model. The first format with a context wins (Extracted.SpanContext, .Format); formats of another trace id
// are returned in Extracted.Others for span links. 64-bit B3 and Jaeger trace ids are left-padded to 128 bits.
// Debug (B3 "d", X-B3-Flags: 1, Jaeger 0x02 with 0x01) sets the sampled flag and Extracted.Debug. A sender
// that leaves the decision to us (B3 without sampling state, X-Ray Sampled=? or no Sampled) sets
// Extracted.Deferred; the context is then unsampled and the proxy's sampler decides.
//
// # X-Ray root without parent
//
// AWS load balancers send X-Amzn-Trace-Id with Root but no Parent. Extract returns it with
// Extracted.RootOnly set and a SpanContext holding the trace id and a zero span id (not IsValid).
// OpenTelemetry needs a non-zero parent span id, so Extracted.ParentForSpan synthesizes one
// deterministically from the root: its low 64 bits (the high 64 bits if those are zero). The proxy starts its
// span as a child of ParentForSpan(), so it joins the load balancer's trace instead of starting a new one.
//
// # Injection
//
// Inject writes the hop's own span in the formats of the InjectSpec (ParseInject; default
// "preserve,tracecontext": the formats that arrived plus W3C) and deletes the headers of every other format
// (traceparent, tracestate, baggage, b3, x-b3-*, uber-trace-id, uberctx-*, x-amzn-trace-id), so a service
// never sees a stale parent. What arrived is carried when the span is of the same trace: tracestate (even
// when the winning format was not W3C), baggage, debug, the 64-bit width of a B3 or Jaeger trace id (written
// back 64 bits wide to that format when the high half is zero), X-Ray's extra fields, and the W3C random
// flag (0x02) on W3C to W3C hops. Baggage is written as W3C baggage when baggage or tracecontext is injected
// and as Jaeger uberctx-* headers when jaeger is injected, within the W3C limits (180 members, 8192 bytes).
//
// # Spec choices
//
//   - traceparent: version 00 is exactly 55 bytes; a higher version may have more fields after a "-"; version
//     ff, upper-case hex, bad lengths and all-zero ids are invalid. Reserved trace-flags bits are ignored on
//     input and zeroed on output (Level 2 §other-flags); OpenTelemetry-Go instead rejects a version 00 header
//     with reserved bits set.
//   - tracestate: keys follow the Level 2 grammar, key = ( lcalpha / DIGIT ) 0*255( keychar ) with keychar
//     including "@", which OpenTelemetry-Go's trace.ParseTraceState (Level 1 grammar) predates. The raw header
//     is validated and kept; SpanContext.TraceState() holds the members OpenTelemetry's type accepts. An invalid
//     tracestate (bad key or value, duplicate key) is dropped, the traceparent kept. A list of more than 32
//     members is truncated to its first 32, removing entries from the end as Level 2 §tracestate-limits
//     prescribes for truncation (the W3C test suite discards such a list instead).
//   - baggage: invalid list-members are dropped, the others kept; more than 180 members or 8192 bytes are cut
//     by whole members from the end. Jaeger uberctx-* keys are lower-cased (header names are
//     case-insensitive) and their values URL-decoded as Jaeger clients encode them.
//   - B3: the sampling-only single header ("0", "1", "d") carries no ids and is treated as absent.
//     X-B3-Sampled also accepts "true"/"false", as the B3 spec asks of receivers.
//
// # Performance
//
// Extract and Inject walk the header map once each, classifying keys by length and a case-insensitive
// compare (so non-canonical spellings and the uberctx-* family are found in the same pass), instead of
// http.Header.Get/Set, which canonicalize on every call; on small maps one walk also beats a dozen lookups.
// Inject writes canonical keys directly. Extracting a traceparent-only request does not allocate; injecting
// it allocates the header string and its []string.
//
// # Use in the proxy
//
//	in := p.Extract(r.Header)                         // inbound request
//	ctx = trace.ContextWithRemoteSpanContext(ctx, in.ParentForSpan())
//	// start the server span from ctx, with links to in.Others; if in.Debug record it and sample;
//	// if in.Deferred the sampler decides as for a new trace.
//	p.Inject(out.Header, span.SpanContext(), &in)     // forwarded request (httputil.ProxyRequest.Out)
package propagators
