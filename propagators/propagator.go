package propagators

import (
	"net/http"
	"strings"
	"sync/atomic"

	"go.opentelemetry.io/otel/trace"
)

// Propagator extracts the configured formats from incoming requests and injects the configured formats into
// forwarded ones. It is immutable (but for a cache) and safe for concurrent use.
type Propagator struct {
	extract    []Format
	extractSet Set
	inject     InjectSpec
	// jaegerFirst: Jaeger's uberctx-* baggage wins over W3C baggage for a key present in both, because jaeger
	// precedes baggage in the extraction order.
	jaegerFirst bool
	ts          *tsCache // shared with WithInject's copies
}

// tsCache remembers the string of the last one-member tracestate injected from a span context: a new trace
// carries the sampler's constant ot=th entry, whose string would otherwise be built for every request.
type tsCache struct{ last atomic.Pointer[tsString] }

type tsString struct{ key, value, s string }

func (c *tsCache) string(ts trace.TraceState) string {
	if c == nil || ts.Len() != 1 {
		return ts.String()
	}
	// A member's value is never empty, so a match of the one key's value is the whole tracestate.
	if l := c.last.Load(); l != nil && ts.Get(l.key) == l.value {
		return l.s
	}
	s := ts.String()
	k, v, _ := strings.Cut(s, "=")
	c.last.Store(&tsString{key: k, value: v, s: s})
	return s
}

// New returns a Propagator extracting the formats of extract in that priority order (see ParseExtract) and
// injecting inject (see ParseInject). Unknown or repeated formats in extract are ignored.
func New(extract []Format, inject InjectSpec) *Propagator {
	p := &Propagator{inject: inject, ts: new(tsCache)}
	for _, f := range extract {
		if f == 0 || f&(f-1) != 0 || f&allFormats != f || p.extractSet.Has(f) { // one known format, once
			continue
		}
		p.extractSet = p.extractSet.add(f)
		p.extract = append(p.extract, f)
		if f == Jaeger && !p.extractSet.Has(Baggage) {
			p.jaegerFirst = true
		}
	}
	return p
}

// WithInject returns a copy of p injecting spec instead (per egress route overrides).
func (p *Propagator) WithInject(spec InjectSpec) *Propagator {
	q := *p
	q.inject = spec
	return &q
}

// Extracted is what Extract found on a request.
type Extracted struct {
	// SpanContext is the remote parent, valid (and Remote) when a format supplied one. For an X-Ray root
	// without parent (RootOnly) it holds the trace id and a zero span id: use ParentForSpan.
	SpanContext trace.SpanContext
	// Format is the format that supplied SpanContext (0 if none).
	Format Format
	// Present holds every format whose header was present and valid (Baggage for a valid W3C baggage header;
	// Jaeger for a valid uber-trace-id).
	Present Set
	// Debug is set when the winning format, or another present one of the same trace, asked for debug
	// (B3 "d", X-B3-Flags: 1, Jaeger flag 0x02). Debug implies sampled.
	Debug bool
	// Deferred is set when the sender left the sampling decision to us: B3 without sampling state, X-Ray
	// Sampled=? or without Sampled (W3C and Jaeger always carry a decision). SpanContext is then not sampled;
	// the proxy's sampler decides.
	Deferred bool
	// RootOnly is set for an X-Ray header with Root but no Parent (what AWS load balancers send).
	RootOnly bool
	// Others holds the contexts of the other present formats whose trace id differs from SpanContext's, in
	// extraction order, for span links (an X-Ray root without parent appears with its synthesized parent span
	// id, see ParentForSpan). Nil when there are none.
	Others []trace.SpanContext

	tracestate string // validated raw W3C tracestate belonging to SpanContext's trace ("" if none)
	w3cFlags   byte   // trace-flags of a traceparent of SpanContext's trace, defined bits only
	w3cSame    bool   // a traceparent of SpanContext's trace was present
	width64    Set    // formats (B3, B3Multi, Jaeger) whose trace id arrived 64 bits wide
	xrayExtra  string // X-Ray fields other than Root, Parent, Sampled, verbatim, ';' separated
	baggage    string // validated raw W3C baggage, within the W3C limits
	uberctx    []bagMember
	uberctxIn  bool // uberctx-* headers arrived
	jaegerBag  bool // uberctx members take precedence over W3C ones
}

// noExtracted stands for a nil *Extracted in Inject; it is never written.
var noExtracted Extracted

// remote is one format's parse result.
type remote struct {
	tid      trace.TraceID
	sid      trace.SpanID // zero for an X-Ray root without parent
	sampled  bool
	debug    bool
	deferred bool
	rootOnly bool
	width64  bool
	flags    byte // W3C trace-flags
}

func (r *remote) spanContext() trace.SpanContext {
	flags := trace.TraceFlags(r.flags) &^ trace.FlagsSampled
	if r.sampled || r.debug {
		flags |= trace.FlagsSampled
	}
	return trace.NewSpanContext(trace.SpanContextConfig{TraceID: r.tid, SpanID: r.sid, TraceFlags: flags, Remote: true})
}

// ParentForSpan returns the SpanContext the proxy should use as the parent of its span: SpanContext, except
// for an X-Ray root without parent (RootOnly), where OpenTelemetry needs a non-zero span id: the parent span
// id is then synthesized from the X-Ray root as its low 64 bits (the high 64 bits if those are zero), so the
// proxy's span joins the load balancer's trace. The result is invalid when nothing was extracted.
func (e *Extracted) ParentForSpan() trace.SpanContext {
	if !e.RootOnly {
		return e.SpanContext
	}
	return rootOnlyParent(e.SpanContext)
}

func rootOnlyParent(sc trace.SpanContext) trace.SpanContext {
	tid := sc.TraceID()
	var sid trace.SpanID
	copy(sid[:], tid[8:])
	if !sid.IsValid() {
		copy(sid[:], tid[:8])
	}
	return sc.WithSpanID(sid)
}

// Extract reads every configured format present in h, in the configured order. It never fails: a malformed
// header is treated as absent. The first format with a context wins; other formats of a different trace go to
// Others. An X-Ray root without parent gives way to a later format of the same trace that names a parent
// span. Extract does not allocate for a request carrying only a traceparent.
func (p *Propagator) Extract(h http.Header) (e Extracted) {
	var hv headerValues
	hv.scan(h, p.extractSet)
	for _, f := range p.extract {
		var (
			r  remote
			ok bool
		)
		switch f {
		case TraceContext:
			ok = extractTraceparent(&hv, &r)
		case Baggage:
			if raw, valid := parseBaggage(hv.list(kBaggage)); valid {
				e.baggage = raw
				e.Present = e.Present.add(Baggage)
			}
			continue
		case B3:
			ok = extractB3Single(&hv, &r)
		case B3Multi:
			ok = extractB3Multi(&hv, &r)
		case Jaeger:
			ok = extractJaeger(&hv, &r)
		case XRay:
			ok = extractXRay(&hv, &r, &e)
		}
		if !ok {
			continue
		}
		e.Present = e.Present.add(f)
		switch {
		case e.Format == 0:
			e.Format = f
			e.SpanContext = r.spanContext()
			e.Debug, e.Deferred, e.RootOnly = r.debug, r.deferred, r.rootOnly
		case r.tid == e.SpanContext.TraceID() && e.RootOnly && !r.rootOnly:
			// An X-Ray root without parent came first; a format of the same trace names the parent span.
			// A sampling decision made by either is kept.
			rootFlags := e.SpanContext.TraceFlags()
			e.Format, e.SpanContext, e.RootOnly = f, r.spanContext(), false
			if r.deferred && !e.Deferred {
				e.SpanContext = e.SpanContext.WithTraceFlags(e.SpanContext.TraceFlags() | rootFlags&trace.FlagsSampled)
			}
			e.Deferred = r.deferred && e.Deferred
			e.Debug = e.Debug || r.debug
		case r.tid == e.SpanContext.TraceID():
			if r.debug && !e.Debug {
				e.Debug, e.Deferred = true, false
				e.SpanContext = e.SpanContext.WithTraceFlags(e.SpanContext.TraceFlags() | trace.FlagsSampled)
			}
		default:
			sc := r.spanContext()
			if r.rootOnly {
				sc = rootOnlyParent(sc)
			}
			if f == TraceContext {
				if raw, ok := parseTracestate(hv.list(kTracestate)); ok {
					sc = sc.WithTraceState(otelTraceState(raw))
				}
			}
			e.addOther(sc)
			continue
		}
		// f is of SpanContext's trace: what it carries is written back to it.
		if r.width64 {
			e.width64 = e.width64.add(f)
		}
		if f == TraceContext {
			e.w3cSame, e.w3cFlags = true, r.flags
		}
	}
	if e.w3cSame {
		if raw, ok := parseTracestate(hv.list(kTracestate)); ok {
			e.tracestate = raw
			e.SpanContext = e.SpanContext.WithTraceState(otelTraceState(raw))
		}
	}
	if hv.uberctx {
		e.uberctxIn = true
		e.uberctx = extractUberctx(h)
		e.jaegerBag = p.jaegerFirst
	}
	return e
}

func (e *Extracted) addOther(sc trace.SpanContext) {
	for _, o := range e.Others {
		if o.TraceID() == sc.TraceID() && o.SpanID() == sc.SpanID() {
			return
		}
	}
	e.Others = append(e.Others, sc)
}

// Inject writes sc, the hop's own span, in the injected formats: the configured ones plus, with Preserve,
// those that arrived in `in`. It carries what `in` brought when sc is of the same trace: tracestate, baggage,
// debug, 64-bit id width, X-Ray extra fields. It deletes from h the headers of every format not injected, so
// the service never sees a stale parent. in may be nil (a new trace).
//
// Tracestate: if sc.TraceState() equals in.SpanContext.TraceState(), the incoming header value is written
// byte for byte; otherwise sc's members are written followed by the incoming members OpenTelemetry's type
// could not hold, without duplicate keys, at most 32.
//
// Baggage goes in the W3C baggage header when baggage or tracecontext is injected, and in uberctx-* headers
// when jaeger is injected (or uberctx-* arrived and Preserve is set). Only extracted baggage is carried: with
// neither baggage nor jaeger in the extraction order, incoming baggage headers are removed, as an
// OpenTelemetry SDK configured with the same OTEL_PROPAGATORS would drop them.
func (p *Propagator) Inject(h http.Header, sc trace.SpanContext, in *Extracted) {
	if h == nil {
		return
	}
	set := p.inject.Formats
	if in == nil {
		in = &noExtracted
	} else if p.inject.Preserve {
		set |= in.Present
	}
	same := in.SpanContext.TraceID().IsValid() && in.SpanContext.TraceID() == sc.TraceID()

	// Remove every managed header but the canonical keys overwritten below.
	overwritten := Set(0)
	if sc.IsValid() {
		overwritten = set
	}
	for k := range h {
		kind, canonical := classify(k)
		if kind == kNone || canonical && primaryKind[kind] && overwritten.Has(kindFormat[kind]) {
			continue
		}
		delete(h, k)
	}

	if sc.IsValid() {
		if set.Has(TraceContext) {
			injectTraceparent(h, sc, in, same, p.ts)
		}
		if set.Has(B3) {
			injectB3Single(h, sc, in, same)
		}
		if set.Has(B3Multi) {
			injectB3Multi(h, sc, in, same)
		}
		if set.Has(Jaeger) {
			injectJaeger(h, sc, in, same)
		}
		if set.Has(XRay) {
			injectXRay(h, sc, in, same)
		}
	}
	if set.Has(Baggage) || set.Has(TraceContext) {
		if v := in.w3cBaggage(); v != "" {
			h[hdrBaggage] = []string{v}
		}
	}
	if set.Has(Jaeger) || (p.inject.Preserve && in.uberctxIn) {
		in.injectUberctx(h)
	}
}

// injectTraceparent writes traceparent and tracestate. The sampled flag is sc's; the random flag (0x02) is
// kept as received on a W3C to W3C hop (https://www.w3.org/TR/trace-context-2/#random-trace-id-flag).
func injectTraceparent(h http.Header, sc trace.SpanContext, in *Extracted, same bool, c *tsCache) {
	flags := byte(sc.TraceFlags()) & tpKnownFlags
	if same && in.w3cSame {
		flags |= in.w3cFlags & byte(trace.FlagsRandom)
	}
	tp := formatTraceparent(sc.TraceID(), sc.SpanID(), flags)

	var tracestate string
	ts := sc.TraceState()
	switch {
	case same && in.tracestate != "" && traceStateEqual(ts, in.SpanContext.TraceState()):
		tracestate = in.tracestate
	case same && in.tracestate != "":
		tracestate = mergeTracestate(ts, in.SpanContext.TraceState(), in.tracestate)
	case ts.Len() > 0:
		tracestate = c.string(ts)
	}
	if tracestate == "" {
		h[hdrTraceparent] = []string{tp}
		return
	}
	vals := []string{tp, tracestate} // one allocation for both fields' values
	h[hdrTraceparent], h[hdrTracestate] = vals[0:1:1], vals[1:2:2]
}

func extractTraceparent(hv *headerValues, r *remote) bool {
	v, ok := hv.single(kTraceparent)
	if !ok {
		return false
	}
	r.tid, r.sid, r.flags, ok = parseTraceparent(v)
	r.sampled = r.flags&byte(trace.FlagsSampled) != 0
	return ok
}
