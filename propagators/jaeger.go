package propagators

import (
	"net/http"
	"net/url"
	"strings"

	"go.opentelemetry.io/otel/trace"
)

// Jaeger propagation, https://www.jaegertracing.io/docs/1.21/client-libraries/#propagation-format:
//
//	uber-trace-id: {trace-id}:{span-id}:{parent-span-id}:{flags}
//
// trace-id is 1 to 32 hex digits (shorter values are left-padded with zeros; 0 is invalid), span-id 1 to 16,
// parent-span-id is deprecated: checked to be 1 to 16 hex digits as Jaeger clients do, then ignored (written
// as "0"). Hex digits are accepted in either case (Jaeger clients parse with strconv.ParseUint). flags is one byte as one or two hex digits:
// 0x01 sampled, 0x02 debug (only meaningful with sampled), others ignored. The value may be URL-encoded
// ("%3A" for ':'). Baggage travels in uberctx-{key} headers (baggage.go).
const (
	jaegerTraceIDMaxLen = 32
	jaegerSpanIDMaxLen  = 16
	jaegerFlagsMaxLen   = 2
	jaegerSep           = ':'
	jaegerFlagSampled   = 0x01
	jaegerFlagDebug     = 0x02
	jaegerParent        = "0"
)

// parseJaeger parses an uber-trace-id value.
func parseJaeger(v string, r *remote) bool {
	if strings.IndexByte(v, '%') >= 0 {
		u, err := url.QueryUnescape(v)
		if err != nil {
			return false
		}
		v = u
	}
	var parts [4]string
	for i := range 3 {
		j := strings.IndexByte(v, jaegerSep)
		if j < 0 {
			return false
		}
		parts[i], v = v[:j], v[j+1:]
	}
	parts[3] = v
	tidHex, sidHex, flagsHex := parts[0], parts[1], parts[3]
	if len(tidHex) > jaegerTraceIDMaxLen || !decodeHexRight(r.tid[:], tidHex) || !r.tid.IsValid() {
		return false
	}
	if len(sidHex) > jaegerSpanIDMaxLen || !decodeHexRight(r.sid[:], sidHex) || !r.sid.IsValid() {
		return false
	}
	var parent trace.SpanID
	if len(parts[2]) > jaegerSpanIDMaxLen || !decodeHexRight(parent[:], parts[2]) {
		return false
	}
	var fl [1]byte
	if len(flagsHex) > jaegerFlagsMaxLen || !decodeHexRight(fl[:], flagsHex) {
		return false
	}
	r.width64 = len(tidHex) <= jaegerTraceIDMaxLen/2
	r.sampled = fl[0]&jaegerFlagSampled != 0
	r.debug = r.sampled && fl[0]&jaegerFlagDebug != 0
	return true
}

func extractJaeger(hv *headerValues, r *remote) bool {
	v, ok := hv.single(kUberTraceID)
	return ok && parseJaeger(v, r)
}

func injectJaeger(h http.Header, sc trace.SpanContext, in *Extracted, same bool) {
	var b [jaegerTraceIDMaxLen + 1 + jaegerSpanIDMaxLen + 1 + len(jaegerParent) + 1 + 1]byte
	n := b3TraceID(b[:], sc.TraceID(), same && in.width64.Has(Jaeger))
	b[n] = jaegerSep
	n++
	sid := sc.SpanID()
	n += encodeHex(b[n:], sid[:])
	b[n] = jaegerSep
	b[n+1] = jaegerParent[0]
	b[n+2] = jaegerSep
	var flags byte
	if sc.IsSampled() {
		flags = jaegerFlagSampled
		if same && in.Debug {
			flags |= jaegerFlagDebug
		}
	}
	b[n+3] = hexDigits[flags]
	h[hdrUberTraceID] = []string{string(b[:n+4])}
}
