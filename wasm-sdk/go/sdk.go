package sdk

import (
	"fmt"
	"strings"
	"time"

	"github.com/sidetrace/sidetrace/wasm-sdk/go/abi"
)

// Decision is a request hook's sampling decision.
type Decision uint8

const (
	NoOpinion       Decision = abi.DecisionNoOpinion       // leave sampling to the sampler
	Drop            Decision = abi.DecisionDrop            // neither record nor sample
	RecordOnly      Decision = abi.DecisionRecordOnly      // record the span, do not sample it
	RecordAndSample Decision = abi.DecisionRecordAndSample // record and sample
)

// SpanKind is the kind of the span a hook sees (OTLP numbering).
type SpanKind uint8

const (
	KindUnspecified SpanKind = abi.KindUnspecified
	KindInternal    SpanKind = abi.KindInternal
	KindServer      SpanKind = abi.KindServer // the proxy received the request
	KindClient      SpanKind = abi.KindClient // the proxy sent the request
	KindProducer    SpanKind = abi.KindProducer
	KindConsumer    SpanKind = abi.KindConsumer
)

func (k SpanKind) String() string {
	switch k {
	case KindInternal:
		return "internal"
	case KindServer:
		return "server"
	case KindClient:
		return "client"
	case KindProducer:
		return "producer"
	case KindConsumer:
		return "consumer"
	}
	return "unspecified"
}

// TraceID is a W3C trace id.
type TraceID [16]byte

// SpanID is a W3C span id.
type SpanID [8]byte

// Level is a log level, as in log/slog.
type Level int32

const (
	LevelDebug Level = abi.LogDebug
	LevelInfo  Level = abi.LogInfo
	LevelWarn  Level = abi.LogWarn
	LevelError Level = abi.LogError
)

type registry struct {
	init       func(config []byte) error
	onRequest  func(Request) Decision
	onResponse func(Response)
	onSpanEnd  func(*Span)
	config     []byte

	// Declared headers: static ones come from Go init functions, dynamic
	// ones from OnInit (reset at each init); the views carry reqHdr, respHdr.
	initing               bool
	staticReq, staticResp []string
	dynReq, dynResp       []string
	reqHdr, respHdr       []string
}

var reg registry

// OnInit registers f to run once per instance with the plugin's config (the
// JSON value of "config" in SIDETRACE_PLUGINS, or empty). An error refuses
// the plugin at load. Call RequestHeaders and ResponseHeaders from f when the
// headers depend on the config.
func OnInit(f func(config []byte) error) { reg.init = f }

// OnRequest registers the request hook: it sees the request, may add span
// attributes and set the tenant, and returns a sampling decision.
func OnRequest(f func(Request) Decision) { reg.onRequest = f }

// OnResponse registers the response hook: it sees the response, may add span
// attributes, mark the span as an error or ask to keep it.
func OnResponse(f func(Response)) { reg.onResponse = f }

// OnSpanEnd registers the span-end hook: it sees each finished span before
// any exporter does and may set, delete or redact attribute values.
func OnSpanEnd(f func(*Span)) { reg.onSpanEnd = f }

// RequestHeaders declares request headers the request hook reads: the host
// sends their values with each request. Other headers can still be read with
// Request.Header, at the cost of a call to the host.
func RequestHeaders(names ...string) {
	if reg.initing {
		reg.dynReq = appendNames(reg.dynReq, names)
	} else {
		reg.staticReq = appendNames(reg.staticReq, names)
	}
	reg.reqHdr = appendNames(appendNames(nil, reg.staticReq), reg.dynReq)
}

// ResponseHeaders declares response headers the response hook reads.
func ResponseHeaders(names ...string) {
	if reg.initing {
		reg.dynResp = appendNames(reg.dynResp, names)
	} else {
		reg.staticResp = appendNames(reg.staticResp, names)
	}
	reg.respHdr = appendNames(appendNames(nil, reg.staticResp), reg.dynResp)
}

func appendNames(list, names []string) []string {
	for _, n := range names {
		n = strings.ToLower(strings.TrimSpace(n))
		dup := false
		for _, m := range list {
			dup = dup || m == n
		}
		if n != "" && !dup {
			list = append(list, n)
		}
	}
	return list
}

// Config returns the plugin's config bytes (JSON), available from OnInit on.
func Config() []byte { return reg.config }

// Log writes msg to the host's log, attributed to the plugin.
func Log(level Level, msg string) { hostLog(int32(level), msg) }

// Logf formats and logs at LevelInfo.
func Logf(format string, args ...any) { Log(LevelInfo, fmt.Sprintf(format, args...)) }

// Request is the request hook's view of a request. It is valid only during
// the hook.
type Request struct{ v *requestView }

func (r Request) Kind() SpanKind   { return SpanKind(r.v.kind) }
func (r Request) TraceID() TraceID { return r.v.traceID }
func (r Request) Method() string   { return r.v.str(r.v.method) }
func (r Request) Scheme() string   { return r.v.str(r.v.scheme) }
func (r Request) Host() string     { return r.v.str(r.v.host) }
func (r Request) Path() string     { return r.v.str(r.v.path) }

// Query is the raw query string, without '?'.
func (r Request) Query() string { return r.v.str(r.v.query) }

// PeerAddr is the address of the peer: the client for server spans, the
// upstream for client spans.
func (r Request) PeerAddr() string { return r.v.str(r.v.peer) }

// Tenant is the tenant set by an earlier plugin in the chain, or "".
func (r Request) Tenant() string { return r.v.str(r.v.tenant) }

// Header returns the header's values joined with ", ", or "". Declared
// headers (RequestHeaders) come with the request; others are read from the
// host.
func (r Request) Header(name string) string {
	return header(&r.v.viewHeaders, abi.HeaderRequest, reg.reqHdr, name)
}

// HeaderValues returns a declared header's values, or nil; for other headers
// the values are joined in one element.
func (r Request) HeaderValues(name string) []string {
	return headerValues(&r.v.viewHeaders, abi.HeaderRequest, reg.reqHdr, name)
}

// SetAttribute adds a span attribute.
func (r Request) SetAttribute(key string, v Value) { out.setAttr(key, v) }

// SetTenant sets the request's tenant, seen by later plugins and the proxy.
func (r Request) SetTenant(tenant string) {
	out.op(abi.OpSetTenant)
	out.str(tenant)
	r.v.tenantSet, r.v.newTenant = true, tenant
}

// Fail reports that the hook failed: the host discards its edits and applies
// the plugin's failure policy.
func (r Request) Fail(msg string) { out.fail(msg) }

// Response is the response hook's view of a response. It is valid only
// during the hook.
type Response struct{ v *responseView }

func (r Response) Kind() SpanKind          { return SpanKind(r.v.kind) }
func (r Response) TraceID() TraceID        { return r.v.traceID }
func (r Response) Tenant() string          { return r.v.str(r.v.tenant) }
func (r Response) Status() int             { return int(r.v.status) }
func (r Response) Duration() time.Duration { return r.v.duration }

// Header returns the response header's values joined with ", ", or "".
func (r Response) Header(name string) string {
	return header(&r.v.viewHeaders, abi.HeaderResponse, reg.respHdr, name)
}

// HeaderValues returns a declared response header's values, or nil.
func (r Response) HeaderValues(name string) []string {
	return headerValues(&r.v.viewHeaders, abi.HeaderResponse, reg.respHdr, name)
}

// SetAttribute adds a span attribute.
func (r Response) SetAttribute(key string, v Value) { out.setAttr(key, v) }

// MarkError marks the span as an error, with an optional description.
func (r Response) MarkError(description string) {
	out.op(abi.OpMarkError)
	out.str(description)
}

// Keep asks to export the span whatever the sampler decided.
func (r Response) Keep() { out.op(abi.OpKeep) }

// Fail reports that the hook failed.
func (r Response) Fail(msg string) { out.fail(msg) }

// Attribute is a key and its value.
type Attribute struct {
	Key   string
	Value Value
}

// Event is a span event.
type Event struct {
	Name       string
	Time       time.Time
	Attributes []Attribute
}

// Span is the span-end hook's view of a finished span. Edits are sent to the
// host and reflected in the view at once. It is valid only during the hook.
type Span struct {
	name    string
	kind    SpanKind
	traceID TraceID
	spanID  SpanID
	attrs   []Attribute
	events  []Event
}

func (s *Span) Name() string     { return s.name }
func (s *Span) Kind() SpanKind   { return s.kind }
func (s *Span) TraceID() TraceID { return s.traceID }
func (s *Span) SpanID() SpanID   { return s.spanID }

// Attributes returns the span's attributes; do not modify the slice, use
// SetAttribute and DeleteAttribute.
func (s *Span) Attributes() []Attribute { return s.attrs }

// Events returns the span's events; do not modify them, use
// SetEventAttribute and DeleteEventAttribute.
func (s *Span) Events() []Event { return s.events }

// Attribute returns the value of the attribute key, if present.
func (s *Span) Attribute(key string) (Value, bool) {
	for _, a := range s.attrs {
		if a.Key == key {
			return a.Value, true
		}
	}
	return Value{}, false
}

// SetAttribute sets (replaces or adds) a span attribute.
func (s *Span) SetAttribute(key string, v Value) {
	out.setAttr(key, v)
	s.attrs = setAttr(s.attrs, key, v)
}

// DeleteAttribute deletes a span attribute.
func (s *Span) DeleteAttribute(key string) {
	out.op(abi.OpDeleteAttr)
	out.str(key)
	s.attrs = deleteAttr(s.attrs, key)
}

// SetEventAttribute sets an attribute of event i (an index into Events).
func (s *Span) SetEventAttribute(i int, key string, v Value) {
	if i < 0 || i >= len(s.events) {
		panic(fmt.Sprintf("sdk: event index %d out of range (%d events)", i, len(s.events)))
	}
	out.op(abi.OpSetEventAttr)
	out.u32(uint32(i))
	out.str(key)
	out.value(v)
	s.events[i].Attributes = setAttr(s.events[i].Attributes, key, v)
}

// DeleteEventAttribute deletes an attribute of event i.
func (s *Span) DeleteEventAttribute(i int, key string) {
	if i < 0 || i >= len(s.events) {
		panic(fmt.Sprintf("sdk: event index %d out of range (%d events)", i, len(s.events)))
	}
	out.op(abi.OpDeleteEventAttr)
	out.u32(uint32(i))
	out.str(key)
	s.events[i].Attributes = deleteAttr(s.events[i].Attributes, key)
}

// Fail reports that the hook failed: the host discards its edits and, for a
// fail-closed plugin, drops the span.
func (s *Span) Fail(msg string) { out.fail(msg) }

func setAttr(as []Attribute, key string, v Value) []Attribute {
	for i := range as {
		if as[i].Key == key {
			as[i].Value = v
			return as
		}
	}
	return append(as, Attribute{key, v})
}

func deleteAttr(as []Attribute, key string) []Attribute {
	j := 0
	for _, a := range as {
		if a.Key != key {
			as[j] = a
			j++
		}
	}
	clear(as[j:])
	return as[:j]
}
