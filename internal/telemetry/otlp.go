package telemetry

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/sdk/instrumentation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/sidetrace/sidetrace/internal/yield"
)

// OTLPOptions configures an OTLPExporter.
type OTLPOptions struct {
	URL       string            // the traces URL, e.g. http://collector:4318/v1/traces
	Headers   map[string]string // sent with every export
	Timeout   time.Duration     // per export
	Gzip      bool              // compress the request body
	TLS       *tls.Config       // for https URLs; nil = system roots
	UserAgent string
}

// OTLPExporter exports spans over OTLP/HTTP in the binary protobuf encoding
// (https://opentelemetry.io/docs/specs/otlp/#otlphttp), as otlptracehttp does, without its intermediate
// protobuf structs: it writes the ExportTraceServiceRequest straight from the SDK's spans into one reused
// buffer. With the SDK's exporter the conversion allocated a third of all the objects of a proxied request and,
// run as one block of a few milliseconds per batch on a single core, delayed the requests behind it. This one
// yields to them every yield.Every of work.
type OTLPExporter struct {
	opts     OTLPOptions
	client   *http.Client
	mu       sync.Mutex // one export at a time: the buffers are reused
	buf      []byte
	zbuf     bytes.Buffer
	zw       *gzip.Writer
	shutdown atomic.Bool
	noYield  bool // benchmarks: encode in one go, as otlptracehttp does, to compare the work
}

// NewOTLPExporter returns an exporter posting to opts.URL.
func NewOTLPExporter(opts OTLPOptions) *OTLPExporter {
	tr := &http.Transport{
		Proxy:               http.ProxyFromEnvironment,
		TLSClientConfig:     opts.TLS,
		MaxIdleConnsPerHost: 2,
		IdleConnTimeout:     90 * time.Second,
		ForceAttemptHTTP2:   true,
	}
	return &OTLPExporter{opts: opts, client: &http.Client{Transport: tr, Timeout: opts.Timeout}}
}

// ExportSpans encodes spans and posts them. A response other than 2xx, or a partial success rejecting spans,
// is an error.
func (e *OTLPExporter) ExportSpans(ctx context.Context, spans []sdktrace.ReadOnlySpan) error {
	if e.shutdown.Load() || len(spans) == 0 {
		return nil
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	e.buf = appendExportRequest(e.buf[:0], spans, !e.noYield)
	body := e.buf
	if e.opts.Gzip {
		e.zbuf.Reset()
		if e.zw == nil {
			e.zw = gzip.NewWriter(&e.zbuf)
		} else {
			e.zw.Reset(&e.zbuf)
		}
		_, _ = e.zw.Write(body)
		_ = e.zw.Close()
		body = e.zbuf.Bytes()
	}
	defer func() {
		if cap(e.buf) > 8<<20 { // a rare huge batch: do not keep its buffer
			e.buf = nil
		}
	}()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, e.opts.URL, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("traces export: %w", err)
	}
	req.Header.Set("Content-Type", "application/x-protobuf")
	if e.opts.Gzip {
		req.Header.Set("Content-Encoding", "gzip")
	}
	if e.opts.UserAgent != "" {
		req.Header.Set("User-Agent", e.opts.UserAgent)
	}
	for k, v := range e.opts.Headers {
		req.Header.Set(k, v)
	}
	res, err := e.client.Do(req)
	if err != nil {
		return fmt.Errorf("traces export: %w", err)
	}
	defer res.Body.Close()
	rb, err := io.ReadAll(io.LimitReader(res.Body, 64<<10))
	if err != nil {
		return fmt.Errorf("traces export: reading the response: %w", err)
	}
	if res.StatusCode < 200 || res.StatusCode > 299 {
		return fmt.Errorf("traces export: %s: %s", res.Status, bodySnippet(rb))
	}
	if len(rb) > 0 && res.Header.Get("Content-Type") == "application/x-protobuf" {
		var out coltracepb.ExportTraceServiceResponse
		if proto.Unmarshal(rb, &out) == nil {
			if ps := out.GetPartialSuccess(); ps != nil && ps.GetRejectedSpans() > 0 {
				return fmt.Errorf("traces export: the collector rejected %d of %d spans: %s", ps.GetRejectedSpans(), len(spans), ps.GetErrorMessage())
			}
		}
	}
	return nil
}

func bodySnippet(b []byte) string {
	b = bytes.TrimSpace(b)
	if len(b) > 200 {
		b = b[:200]
	}
	for _, c := range b {
		if c < 0x20 || c >= 0x7f {
			return fmt.Sprintf("%d bytes of body", len(b))
		}
	}
	return string(b)
}

// Shutdown stops exports and closes idle connections.
func (e *OTLPExporter) Shutdown(context.Context) error {
	if e.shutdown.Swap(true) {
		return errors.New("telemetry: OTLP exporter already shut down")
	}
	e.client.CloseIdleConnections()
	return nil
}

// Field numbers of opentelemetry-proto (collector/trace/v1, trace/v1, common/v1, resource/v1).
const (
	fReqResourceSpans = 1

	fRSResource   = 1
	fRSScopeSpans = 2
	fRSSchemaURL  = 3

	fResAttributes = 1

	fSSScope     = 1
	fSSSpans     = 2
	fSSSchemaURL = 3

	fScopeName       = 1
	fScopeVersion    = 2
	fScopeAttributes = 3

	fSpanTraceID         = 1
	fSpanSpanID          = 2
	fSpanTraceState      = 3
	fSpanParentSpanID    = 4
	fSpanName            = 5
	fSpanKind            = 6
	fSpanStart           = 7
	fSpanEnd             = 8
	fSpanAttributes      = 9
	fSpanDroppedAttrs    = 10
	fSpanEvents          = 11
	fSpanDroppedEvents   = 12
	fSpanLinks           = 13
	fSpanDroppedLinks    = 14
	fSpanStatus          = 15
	fSpanFlags           = 16
	fEventTime           = 1
	fEventName           = 2
	fEventAttributes     = 3
	fEventDroppedAttrs   = 4
	fLinkTraceID         = 1
	fLinkSpanID          = 2
	fLinkTraceState      = 3
	fLinkAttributes      = 4
	fLinkDroppedAttrs    = 5
	fLinkFlags           = 6
	fStatusMessage       = 2
	fStatusCode          = 3
	fKVKey               = 1
	fKVValue             = 2
	fAnyString           = 1
	fAnyBool             = 2
	fAnyInt              = 3
	fAnyDouble           = 4
	fAnyArray            = 5
	fAnyKVList           = 6
	fAnyBytes            = 7
	fArrayValues         = 1
	fKVListValues        = 1
	flagHasIsRemote      = 0x100 // SPAN_FLAGS_CONTEXT_HAS_IS_REMOTE_MASK
	flagIsRemote         = 0x200 // SPAN_FLAGS_CONTEXT_IS_REMOTE_MASK
	statusCodeOK         = 1
	statusCodeError      = 2
	maxSmallMessageBytes = 127
)

// begin opens a length-delimited field; end closes it. One byte is reserved for the length: when the message
// turns out longer than 127 bytes, it is moved to make room for the longer varint.
func begin(b []byte, num protowire.Number) ([]byte, int) {
	b = protowire.AppendTag(b, num, protowire.BytesType)
	b = append(b, 0)
	return b, len(b)
}

func end(b []byte, start int) []byte {
	n := len(b) - start
	if n <= maxSmallMessageBytes {
		b[start-1] = byte(n)
		return b
	}
	extra := protowire.SizeVarint(uint64(n)) - 1
	for range extra {
		b = append(b, 0)
	}
	copy(b[start+extra:], b[start:start+n])
	protowire.AppendVarint(b[:start-1], uint64(n))
	return b
}

func appendString(b []byte, num protowire.Number, s string) []byte {
	if s == "" {
		return b
	}
	b = protowire.AppendTag(b, num, protowire.BytesType)
	return protowire.AppendString(b, s)
}

func appendBytes(b []byte, num protowire.Number, v []byte) []byte {
	b = protowire.AppendTag(b, num, protowire.BytesType)
	return protowire.AppendBytes(b, v)
}

func appendUvarint(b []byte, num protowire.Number, v uint64) []byte {
	if v == 0 {
		return b
	}
	b = protowire.AppendTag(b, num, protowire.VarintType)
	return protowire.AppendVarint(b, v)
}

func appendFixed64(b []byte, num protowire.Number, v uint64) []byte {
	if v == 0 {
		return b
	}
	b = protowire.AppendTag(b, num, protowire.Fixed64Type)
	return protowire.AppendFixed64(b, v)
}

func appendFixed32(b []byte, num protowire.Number, v uint32) []byte {
	if v == 0 {
		return b
	}
	b = protowire.AppendTag(b, num, protowire.Fixed32Type)
	return protowire.AppendFixed32(b, v)
}

func unixNano(t time.Time) uint64 { return uint64(max(0, t.UnixNano())) }

func clampUint32(v int) uint64 { return uint64(min(max(v, 0), math.MaxUint32)) }

type scopeKey struct {
	res   attribute.Distinct
	scope instrumentation.Scope
}

// appendExportRequest encodes an ExportTraceServiceRequest: spans grouped by resource, then by scope, in the
// order they first appear. With yielding, it lets other goroutines run every yield.Every of work.
func appendExportRequest(b []byte, spans []sdktrace.ReadOnlySpan, yielding bool) []byte {
	// Usually every span shares one resource and one scope: one pass, no grouping structures.
	first := -1
	same := true
	var key scopeKey
	for i, s := range spans {
		if s == nil {
			continue
		}
		k := scopeKey{s.Resource().Equivalent(), s.InstrumentationScope()}
		if first < 0 {
			first, key = i, k
		} else if k != key {
			same = false
			break
		}
	}
	if first < 0 {
		return b
	}
	if same {
		return appendResourceSpans(b, spans[first].Resource(), [][]sdktrace.ReadOnlySpan{spans}, yielding)
	}
	var resources []attribute.Distinct
	byRes := map[attribute.Distinct][]scopeKey{}
	groups := map[scopeKey][]sdktrace.ReadOnlySpan{}
	res := map[attribute.Distinct]*resource.Resource{}
	for _, s := range spans {
		if s == nil {
			continue
		}
		k := scopeKey{s.Resource().Equivalent(), s.InstrumentationScope()}
		if _, ok := res[k.res]; !ok {
			res[k.res] = s.Resource()
			resources = append(resources, k.res)
		}
		if _, ok := groups[k]; !ok {
			byRes[k.res] = append(byRes[k.res], k)
		}
		groups[k] = append(groups[k], s)
	}
	for _, r := range resources {
		var scopes [][]sdktrace.ReadOnlySpan
		for _, k := range byRes[r] {
			scopes = append(scopes, groups[k])
		}
		b = appendResourceSpans(b, res[r], scopes, yielding)
	}
	return b
}

// appendResourceSpans encodes one ResourceSpans; every span of a scopes element shares its scope.
func appendResourceSpans(b []byte, res *resource.Resource, scopes [][]sdktrace.ReadOnlySpan, yielding bool) []byte {
	b, rs := begin(b, fReqResourceSpans)
	if res != nil {
		var r int
		b, r = begin(b, fRSResource)
		for it := res.Iter(); it.Next(); {
			b = appendKeyValue(b, fResAttributes, it.Attribute())
		}
		b = end(b, r)
	}
	var clock yield.Clock
	for _, spans := range scopes {
		var ss int
		b, ss = begin(b, fRSScopeSpans)
		var scope instrumentation.Scope
		for _, s := range spans {
			if s != nil {
				scope = s.InstrumentationScope()
				break
			}
		}
		if scope != (instrumentation.Scope{}) {
			var sc int
			b, sc = begin(b, fSSScope)
			b = appendString(b, fScopeName, scope.Name)
			b = appendString(b, fScopeVersion, scope.Version)
			for it := scope.Attributes.Iter(); it.Next(); {
				b = appendKeyValue(b, fScopeAttributes, it.Attribute())
			}
			b = end(b, sc)
		}
		for _, s := range spans {
			if s == nil {
				continue
			}
			b = appendSpan(b, s)
			if yielding && clock.Due() {
				clock.Yield() // requests go first, even those still in the network poller (see package yield)
			}
		}
		b = appendString(b, fSSSchemaURL, scope.SchemaURL)
		b = end(b, ss)
	}
	if res != nil {
		b = appendString(b, fRSSchemaURL, res.SchemaURL())
	}
	return end(b, rs)
}

func spanFlags(tf trace.TraceFlags, remote bool) uint32 {
	f := uint32(tf) | flagHasIsRemote
	if remote {
		f |= flagIsRemote
	}
	return f
}

func appendSpan(b []byte, s sdktrace.ReadOnlySpan) []byte {
	b, sp := begin(b, fSSSpans)
	sc := s.SpanContext()
	tid, sid := sc.TraceID(), sc.SpanID()
	b = appendBytes(b, fSpanTraceID, tid[:])
	b = appendBytes(b, fSpanSpanID, sid[:])
	if ts := sc.TraceState(); ts.Len() > 0 {
		b = appendString(b, fSpanTraceState, ts.String())
	}
	parent := s.Parent()
	if psid := parent.SpanID(); psid.IsValid() {
		b = appendBytes(b, fSpanParentSpanID, psid[:])
	}
	b = appendString(b, fSpanName, s.Name())
	b = appendUvarint(b, fSpanKind, uint64(max(int(s.SpanKind()), 0)))
	b = appendFixed64(b, fSpanStart, unixNano(s.StartTime()))
	b = appendFixed64(b, fSpanEnd, unixNano(s.EndTime()))
	for _, kv := range s.Attributes() {
		b = appendKeyValue(b, fSpanAttributes, kv)
	}
	b = appendUvarint(b, fSpanDroppedAttrs, clampUint32(s.DroppedAttributes()))
	for _, ev := range s.Events() {
		var e int
		b, e = begin(b, fSpanEvents)
		b = appendFixed64(b, fEventTime, unixNano(ev.Time))
		b = appendString(b, fEventName, ev.Name)
		for _, kv := range ev.Attributes {
			b = appendKeyValue(b, fEventAttributes, kv)
		}
		b = appendUvarint(b, fEventDroppedAttrs, clampUint32(ev.DroppedAttributeCount))
		b = end(b, e)
	}
	b = appendUvarint(b, fSpanDroppedEvents, clampUint32(s.DroppedEvents()))
	for _, l := range s.Links() {
		var e int
		b, e = begin(b, fSpanLinks)
		ltid, lsid := l.SpanContext.TraceID(), l.SpanContext.SpanID()
		b = appendBytes(b, fLinkTraceID, ltid[:])
		b = appendBytes(b, fLinkSpanID, lsid[:])
		if ts := l.SpanContext.TraceState(); ts.Len() > 0 {
			b = appendString(b, fLinkTraceState, ts.String())
		}
		for _, kv := range l.Attributes {
			b = appendKeyValue(b, fLinkAttributes, kv)
		}
		b = appendUvarint(b, fLinkDroppedAttrs, clampUint32(l.DroppedAttributeCount))
		b = appendFixed32(b, fLinkFlags, spanFlags(l.SpanContext.TraceFlags(), l.SpanContext.IsRemote()))
		b = end(b, e)
	}
	b = appendUvarint(b, fSpanDroppedLinks, clampUint32(s.DroppedLinks()))
	var st int
	b, st = begin(b, fSpanStatus)
	status := s.Status()
	b = appendString(b, fStatusMessage, status.Description)
	switch status.Code {
	case codes.Ok:
		b = appendUvarint(b, fStatusCode, statusCodeOK)
	case codes.Error:
		b = appendUvarint(b, fStatusCode, statusCodeError)
	}
	b = end(b, st)
	b = appendFixed32(b, fSpanFlags, spanFlags(sc.TraceFlags(), parent.IsRemote()))
	return end(b, sp)
}

func appendKeyValue(b []byte, num protowire.Number, kv attribute.KeyValue) []byte {
	b, start := begin(b, num)
	b = appendString(b, fKVKey, string(kv.Key))
	b = appendAnyValue(b, fKVValue, kv.Value)
	return end(b, start)
}

// appendAnyValue encodes v as an AnyValue, as otlptracehttp does: slices become an ArrayValue, maps a
// KeyValueList, an invalid value the string "INVALID".
func appendAnyValue(b []byte, num protowire.Number, v attribute.Value) []byte {
	b, start := begin(b, num)
	switch v.Type() {
	case attribute.BOOL:
		b = protowire.AppendTag(b, fAnyBool, protowire.VarintType)
		b = protowire.AppendVarint(b, protowire.EncodeBool(v.AsBool()))
	case attribute.INT64:
		b = protowire.AppendTag(b, fAnyInt, protowire.VarintType)
		b = protowire.AppendVarint(b, uint64(v.AsInt64()))
	case attribute.FLOAT64:
		b = protowire.AppendTag(b, fAnyDouble, protowire.Fixed64Type)
		b = protowire.AppendFixed64(b, math.Float64bits(v.AsFloat64()))
	case attribute.STRING:
		b = protowire.AppendTag(b, fAnyString, protowire.BytesType)
		b = protowire.AppendString(b, v.AsString())
	case attribute.BYTESLICE:
		b = appendBytes(b, fAnyBytes, v.AsByteSlice())
	case attribute.BOOLSLICE:
		b = appendArray(b, v.AsBoolSlice(), attribute.BoolValue)
	case attribute.INT64SLICE:
		b = appendArray(b, v.AsInt64Slice(), attribute.Int64Value)
	case attribute.FLOAT64SLICE:
		b = appendArray(b, v.AsFloat64Slice(), attribute.Float64Value)
	case attribute.STRINGSLICE:
		b = appendArray(b, v.AsStringSlice(), attribute.StringValue)
	case attribute.SLICE:
		b = appendArray(b, v.AsSlice(), func(x attribute.Value) attribute.Value { return x })
	case attribute.MAP:
		var a int
		b, a = begin(b, fAnyKVList)
		for _, kv := range v.AsMap() {
			b = appendKeyValue(b, fKVListValues, kv)
		}
		b = end(b, a)
	case attribute.EMPTY:
	default:
		b = protowire.AppendTag(b, fAnyString, protowire.BytesType)
		b = protowire.AppendString(b, "INVALID")
	}
	return end(b, start)
}

// appendArray encodes xs as the ArrayValue field of an AnyValue.
func appendArray[T any](b []byte, xs []T, value func(T) attribute.Value) []byte {
	b, a := begin(b, fAnyArray)
	for _, x := range xs {
		b = appendAnyValue(b, fArrayValues, value(x))
	}
	return end(b, a)
}
