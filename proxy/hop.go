package proxy

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strconv"
	"strings"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/sidetrace/sidetrace/internal/sampling"
	"github.com/sidetrace/sidetrace/internal/telemetry"
	"github.com/sidetrace/sidetrace/plugins"
	"github.com/sidetrace/sidetrace/propagators"
)

// Span attributes of sidetrace's own (the semantic conventions have none for these).
const (
	AttrCorrelationID = attribute.Key("sidetrace.correlation_id")
	// AttrOutcome says how the exchange ended: completed (the response was fully sent, streams and trailers
	// included), client_gone (the client went away first) or upstream_aborted (the upstream broke mid-response).
	AttrOutcome     = attribute.Key("sidetrace.outcome")
	AttrDebug       = attribute.Key("sidetrace.debug")
	AttrPluginError = attribute.Key("sidetrace.plugin.error")
	AttrTenant      = attribute.Key("tenant.id")
	AttrLinkReason  = attribute.Key("sidetrace.link.reason")
	AttrPropagation = attribute.Key("sidetrace.propagation.format")
)

// Outcomes recorded in AttrOutcome.
const (
	OutcomeCompleted       = "completed"
	OutcomeClientGone      = "client_gone"
	OutcomeUpstreamAborted = "upstream_aborted"
)

// CorrelationHeader carries the correlation id: reused when the client sent a valid one, generated otherwise,
// passed to the upstream and returned on the response.
const CorrelationHeader = "X-Correlation-Id"

// hop is one listener's handler: inbound (SERVER spans) or egress (CLIENT spans).
type hop struct {
	p       *Proxy
	kind    trace.SpanKind
	target  *url.URL // nil: forward proxy, the request URI names the target
	prop    *propagators.Propagator
	rp      *httputil.ReverseProxy
	stats   *HopStats
	forward bool
	direct  bool // the target allows the direct path (forward.go) for eligible requests
	kindOpt trace.SpanStartOption
	startAt startAter // the tracer, when it takes a start time without a trace.WithTimestamp option
}

// startAter and endAter are sidetrace's tracer and span (internal/telemetry) taking their times without a
// trace.WithTimestamp option, which is an allocation per call.
type startAter interface {
	StartAt(ctx context.Context, name string, ts time.Time, opts ...trace.SpanStartOption) (context.Context, trace.Span)
}

type endAter interface{ EndAt(ts time.Time) }

type exchangeKey struct{}

// hopContext is the context a hop's span starts in: the request's (with the remote parent, if any), answering
// the exchange's own keys from the exchange where a context.WithValue each would cost one or two allocations per
// request: the exchange itself (for the ReverseProxy callbacks), the trace id chosen for a new trace and a
// plugin's sampling decision. Any other key goes to the parent, as with a context.WithValue.
type hopContext struct {
	context.Context
	x *exchange
}

func (c *hopContext) Value(key any) any {
	switch key.(type) {
	case exchangeKey:
		return c.x
	case telemetry.TraceIDKey:
		if c.x.newTrace.IsValid() {
			return &c.x.newTrace
		}
	case sampling.DecisionKey:
		if c.x.decision != sampling.NoOpinion {
			return c.x.decision
		}
	}
	return c.Context.Value(key)
}

// exchange is one request's state, from the hop's handler through the ReverseProxy callbacks.
type exchange struct {
	start       time.Time
	span        trace.Span
	extracted   propagators.Extracted
	correlation string
	grpc        bool
	res         *http.Response // the upstream's response, for trailers once the body is done
	err         error          // the upstream failure ErrorHandler saw
	clientGone  bool
	refused     bool
	plug        plugins.Exchange
	rw          *responseWriter
	// attrs collects the span's attributes from the request on; finish hands them to the span in one call
	// (the SDK copies a span's attribute list each time it grows). attrBuf is their pooled backing array.
	attrs   []attribute.KeyValue
	attrBuf *attrBuf
	// hctx is the span's parent context; newTrace and decision are what it answers for the ID generator and
	// the samplers (zero: none).
	hctx     hopContext
	newTrace trace.TraceID
	decision sampling.Decision
	// The span's start and end options, kept here: a variadic slice passed to an interface method (Tracer.Start,
	// Span.End) escapes, so a local one would be an allocation each.
	startOpts [3]trace.SpanStartOption
	endOpts   [1]trace.SpanEndOption

	// The direct path's upstream request (forward.go), kept here to save allocations.
	out    http.Request
	outURL url.URL
	body   noCloseBody
	fields [4]string // values of the fields the direct path sets, one each
	resp   responseStore
	rwv    responseWriter
}

func (p *Proxy) newHop(kind trace.SpanKind, target *url.URL, prop *propagators.Propagator, stats *HopStats) *hop {
	h := &hop{p: p, kind: kind, target: target, prop: prop, stats: stats, forward: target == nil}
	h.direct = directTarget(target, p.opts.UpstreamProtocol)
	h.kindOpt = trace.WithSpanKind(kind)
	h.startAt, _ = p.opts.Tracer.(startAter)
	h.rp = &httputil.ReverseProxy{
		Rewrite:   h.rewrite,
		Transport: p.transport,
		// 0: ReverseProxy flushes every write at once for server-sent events and for bodies of unknown length
		// (chunked, gRPC), and lets a body of known length go out through the writer's buffer; -1 would
		// start a flush timer per response, a fifth of the CPU of a 1 KiB request.
		FlushInterval:  0,
		ModifyResponse: h.modifyResponse,
		ErrorHandler:   h.errorHandler,
		ErrorLog:       slog.NewLogLogger(p.opts.Logger.Handler(), slog.LevelDebug),
		BufferPool:     &p.buffers,
	}
	return h
}

func (h *hop) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if h.forward {
		if r.Method == http.MethodConnect {
			h.connect(w, r)
			return
		}
		if !r.URL.IsAbs() {
			http.Error(w, "sidetrace egress: this is a forward proxy, the request URI must be absolute (set HTTP_PROXY to this address), or use SIDETRACE_EGRESS_ROUTES", http.StatusBadRequest)
			return
		}
	}
	h.stats.Requests.Add(1)
	h.stats.InFlight.Add(1)
	defer h.stats.InFlight.Add(-1)

	x := &exchange{start: time.Now()}
	stripH2CUpgrade(r.Header)
	x.correlation = correlationID(r.Header)
	x.extracted = h.prop.Extract(r.Header)
	x.grpc = isGRPC(r)

	ctx := r.Context()
	upgrade := headerValue(r.Header, "Upgrade") != ""
	if upgrade {
		// An upgraded connection outlives Server.Shutdown's bookkeeping: tie it to the proxy's hard stop.
		var cancel context.CancelFunc
		ctx, cancel = context.WithCancel(ctx)
		stop := context.AfterFunc(h.p.hardStop, cancel)
		h.p.tunnels.Add(1)
		defer func() { stop(); cancel(); h.p.tunnels.Done() }()
	}

	parent, links := h.parent(ctx, &x.extracted)
	traceID := trace.SpanContextFromContext(parent).TraceID()
	if !traceID.IsValid() {
		traceID = telemetry.NewTraceID()
		x.newTrace = traceID
	}

	// Plugins see the request before the span starts, so their sampling decision sets the span's sampled flag.
	refusal := h.runRequestPlugins(ctx, r, traceID, x)
	if x.plug.Decision != plugins.NoOpinion {
		x.decision = sampling.Decision(x.plug.Decision)
	}
	x.hctx = hopContext{Context: parent, x: x}
	parent = &x.hctx

	// The request's attributes are kept until finish and set with the response's in one call: the SDK copies
	// a span's attribute list at start and again each time it grows, a kilobyte or two per copy. Samplers
	// therefore see no attributes at start; none of sidetrace's reads them (per-request decisions are the
	// plugins', which see the whole request).
	x.attrBuf = h.p.attrs.get()
	name, attrs := h.requestAttributes(r, x, x.attrBuf.kv[:0])
	x.attrs = append(attrs, x.plug.Attributes...)
	x.startOpts[0] = h.kindOpt
	n := 1
	if len(links) > 0 {
		x.startOpts[n] = trace.WithLinks(links...)
		n++
	}
	if h.startAt != nil {
		ctx, x.span = h.startAt.StartAt(parent, name, x.start, x.startOpts[:n]...)
	} else {
		x.startOpts[n] = trace.WithTimestamp(x.start)
		n++
		ctx, x.span = h.p.opts.Tracer.Start(parent, name, x.startOpts[:n]...)
	}
	x.plug.Attributes = x.plug.Attributes[:0]
	x.rwv = responseWriter{ResponseWriter: w}
	x.rw = &x.rwv

	defer func() {
		rec := recover()
		outcome := OutcomeCompleted
		switch {
		case rec != nil && r.Context().Err() != nil, rec == nil && x.clientGone:
			outcome = OutcomeClientGone
		case rec != nil:
			outcome = OutcomeUpstreamAborted
			if rec != http.ErrAbortHandler {
				h.p.opts.Logger.Error("panic while proxying", "panic", rec)
			}
		}
		h.finish(ctx, r, x, outcome)
		if rec != nil {
			panic(rec)
		}
	}()

	if refusal != nil {
		x.refused = true
		x.span.RecordError(refusal)
		h.stats.Failed.Add(1)
		x.rw.Header().Set(CorrelationHeader, x.correlation)
		http.Error(x.rw, "sidetrace: request refused by a plugin", http.StatusServiceUnavailable)
		return
	}
	if h.direct && !h.p.noDirect && directEligible(r) {
		h.sendDirect(ctx, r, x)
		return
	}
	h.rp.ServeHTTP(x.rw, r.WithContext(ctx)) // ctx answers exchangeKey (hopContext)
}

// parent returns the context the hop's span starts in, and its links: the extracted context is the parent
// when trusted; otherwise (an untrusted edge) the span starts a new trace linked to it. Contexts of other
// formats naming another trace become links too, so nothing is lost silently.
func (h *hop) parent(ctx context.Context, ex *propagators.Extracted) (context.Context, []trace.Link) {
	var links []trace.Link
	if sc := ex.ParentForSpan(); sc.IsValid() {
		if h.p.opts.TrustIncoming {
			ctx = trace.ContextWithRemoteSpanContext(ctx, sc)
			if ex.Deferred {
				ctx = sampling.ContextWithDeferredParent(ctx) // the sender left the decision to us
			}
		} else {
			links = append(links, trace.Link{SpanContext: sc, Attributes: []attribute.KeyValue{AttrLinkReason.String("untrusted_parent")}})
		}
	}
	for _, o := range ex.Others {
		links = append(links, trace.Link{SpanContext: o, Attributes: []attribute.KeyValue{AttrLinkReason.String("other_format")}})
	}
	return ctx, links
}

func (h *hop) runRequestPlugins(ctx context.Context, r *http.Request, traceID trace.TraceID, x *exchange) error {
	if h.p.opts.Plugins == nil {
		return nil
	}
	scheme := "http"
	if r.URL.Scheme != "" {
		scheme = r.URL.Scheme
	}
	host := r.Host
	req := plugins.Request{
		Kind:     h.kind,
		Method:   r.Method,
		Scheme:   scheme,
		Host:     host,
		Path:     r.URL.Path,
		Query:    r.URL.RawQuery,
		Header:   r.Header,
		PeerAddr: r.RemoteAddr,
		TraceID:  traceID,
	}
	return h.p.opts.Plugins.OnRequest(ctx, &req, &x.plug)
}

// rewrite prepares the forwarded request: target, X-Forwarded-*, trace context and correlation id.
func (h *hop) rewrite(pr *httputil.ProxyRequest) {
	x := pr.In.Context().Value(exchangeKey{}).(*exchange)
	if h.target != nil {
		pr.SetURL(h.target)
		if h.kind == trace.SpanKindServer {
			pr.Out.Host = pr.In.Host // inbound, a sidecar is transparent: the service sees the Host the client sent
		} // an egress route sends the upstream's own Host, for virtual hosts and load balancers on the way
	}
	if h.kind == trace.SpanKindServer {
		if prior, ok := pr.In.Header["X-Forwarded-For"]; ok {
			pr.Out.Header["X-Forwarded-For"] = prior
		}
		pr.SetXForwarded()
	}
	h.prop.Inject(pr.Out.Header, x.span.SpanContext(), &x.extracted)
	pr.Out.Header.Set(CorrelationHeader, x.correlation)
}

func (h *hop) modifyResponse(res *http.Response) error {
	h.responseArrived(res, res.Request.Context().Value(exchangeKey{}).(*exchange))
	return nil
}

func (h *hop) responseArrived(res *http.Response, x *exchange) {
	x.res = res
	res.Header[CorrelationHeader] = x.field(3, x.correlation) // the upstream's own, if any, is replaced
}

// errorHandler answers upstream failures: 504 when the upstream did not answer in time, 502 when it could not
// be reached or broke before its response headers; the error is recorded on the span.
func (h *hop) errorHandler(w http.ResponseWriter, r *http.Request, err error) {
	h.upstreamFailed(r.Context(), w, r.Context().Value(exchangeKey{}).(*exchange), err)
}

func (h *hop) upstreamFailed(ctx context.Context, w http.ResponseWriter, x *exchange, err error) {
	x.err = err
	var timeout *upstreamTimeoutError
	isTimeout := errors.As(err, &timeout)
	if ctx.Err() != nil && !isTimeout {
		x.clientGone = true // nobody is left to answer
		return
	}
	status := http.StatusBadGateway
	if isTimeout {
		status = http.StatusGatewayTimeout
	}
	h.stats.Failed.Add(1)
	x.span.RecordError(err)
	w.Header().Set(CorrelationHeader, x.correlation)
	if x.grpc {
		// gRPC clients read the status from grpc-status: UNAVAILABLE (14) or DEADLINE_EXCEEDED (4).
		code := "14"
		if status == http.StatusGatewayTimeout {
			code = "4"
		}
		w.Header().Set("Grpc-Status", code)
		w.Header().Set("Grpc-Message", http.StatusText(status))
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(status)
	fmt.Fprintf(w, "sidetrace: %s: %v\n", strings.ToLower(http.StatusText(status)), err)
}

// finish records the response on the span, runs the response plugins, ends the span and writes the access log.
func (h *hop) finish(ctx context.Context, r *http.Request, x *exchange, outcome string) {
	span := x.span
	status := x.rw.status
	if x.res != nil && x.res.StatusCode == http.StatusSwitchingProtocols {
		status = x.res.StatusCode // the upgrade response is written on the hijacked connection
	}
	attrs := x.attrs
	attrs = append(attrs, AttrOutcome.String(outcome))
	if status != 0 {
		attrs = append(attrs, semconv.HTTPResponseStatusCode(status))
	}
	if x.rw.bytes > 0 {
		attrs = append(attrs, semconv.HTTPResponseBodySize(int(x.rw.bytes)))
	}

	failed, errType := false, ""
	switch {
	case x.err != nil && !x.clientGone:
		failed, errType = true, strconv.Itoa(status)
	case x.refused:
		failed, errType = true, strconv.Itoa(status)
	case status >= 500, h.kind == trace.SpanKindClient && status >= 400:
		failed, errType = true, strconv.Itoa(status)
	}
	if x.grpc && x.res != nil {
		code, ok := grpcStatus(x.res)
		if ok {
			attrs = append(attrs, semconv.RPCResponseStatusCodeKey.String(grpcCodeName(code)))
			if grpcIsError(code, h.kind) {
				failed, errType = true, grpcCodeName(code)
			}
		}
	}
	if outcome == OutcomeUpstreamAborted {
		failed, errType = true, OutcomeUpstreamAborted
	}

	if h.p.opts.Plugins != nil {
		defer x.plug.Reset()
	}
	if h.p.opts.Plugins != nil && !x.refused {
		res := plugins.Response{Status: status, Duration: time.Since(x.start)}
		if x.res != nil {
			res.Header = x.res.Header
		}
		_ = h.p.opts.Plugins.OnResponse(ctx, &res, &x.plug)
		attrs = append(attrs, x.plug.Attributes...)
		if x.plug.Tenant != "" {
			attrs = append(attrs, AttrTenant.String(x.plug.Tenant))
		}
		if x.plug.MarkError && !failed {
			failed, errType = true, "plugin"
		}
		for _, e := range x.plug.Errors {
			attrs = append(attrs, AttrPluginError.String(e))
		}
	}
	if failed {
		attrs = append(attrs, semconv.ErrorTypeKey.String(errType))
		desc := ""
		if x.err != nil {
			desc = x.err.Error()
		}
		span.SetStatus(codes.Error, desc)
	}
	end := time.Now()
	if !span.SpanContext().IsSampled() {
		if reason := h.keepReason(failed, x.plug.Keep, end.Sub(x.start)); reason != "" {
			attrs = append(attrs, telemetry.AttrSamplingReason.String(reason))
		}
	}
	span.SetAttributes(attrs...)
	h.p.attrs.put(x.attrBuf, attrs) // the SDK copied them
	x.attrs, x.attrBuf = nil, nil
	// Read before the end: an ended span belongs to the export, which may reuse it (telemetry's Recycle).
	sc := span.SpanContext()
	if e, ok := span.(endAter); ok {
		e.EndAt(end)
	} else {
		x.endOpts[0] = trace.WithTimestamp(end)
		span.End(x.endOpts[:]...)
	}

	if l := h.p.opts.AccessLog; l != nil {
		l.LogAttrs(ctx, slog.LevelInfo, "request",
			slog.String("hop", hopName(h.kind)),
			slog.String("trace_id", sc.TraceID().String()),
			slog.String("span_id", sc.SpanID().String()),
			slog.String("correlation_id", x.correlation),
			slog.String("method", r.Method),
			slog.String("path", r.URL.Path),
			slog.Int("status", status),
			slog.Float64("duration_ms", float64(end.Sub(x.start))/float64(time.Millisecond)),
			slog.Int64("bytes", x.rw.bytes),
			slog.String("outcome", outcome),
			slog.Bool("sampled", sc.IsSampled()),
		)
	}
}

// keepReason says why an unsampled hop's span is exported anyway, or "" when it is not.
func (h *hop) keepReason(failed, pluginKeep bool, d time.Duration) string {
	switch {
	case pluginKeep:
		return "plugin"
	case failed && h.p.opts.KeepErrors:
		return "error"
	case h.p.opts.KeepSlowerThan > 0 && d > h.p.opts.KeepSlowerThan:
		return "slow"
	}
	return ""
}

func hopName(k trace.SpanKind) string {
	if k == trace.SpanKindServer {
		return "inbound"
	}
	return "egress"
}

// stripH2CUpgrade removes an "Upgrade: h2c" offer: RFC 9113 §3.1 deprecates the mechanism, so the request is
// served as HTTP/1.1 (as RFC 9110 §7.8 allows a server to ignore Upgrade) and not passed on.
func stripH2CUpgrade(h http.Header) {
	up := h["Upgrade"]
	if len(up) == 0 || !strings.EqualFold(strings.TrimSpace(up[0]), "h2c") {
		return
	}
	delete(h, "Upgrade")
	delete(h, "Http2-Settings")
	var keep []string
	for _, v := range h["Connection"] {
		for _, tok := range strings.Split(v, ",") {
			tok = strings.TrimSpace(tok)
			if tok != "" && !strings.EqualFold(tok, "upgrade") && !strings.EqualFold(tok, "http2-settings") {
				keep = append(keep, tok)
			}
		}
	}
	if len(keep) == 0 {
		delete(h, "Connection")
	} else {
		h["Connection"] = []string{strings.Join(keep, ", ")}
	}
}
