package propagators

import (
	"net/http"

	"go.opentelemetry.io/otel/trace"
)

// B3 propagation, https://github.com/openzipkin/b3-propagation: the single header
//
//	b3: {TraceId}-{SpanId}-{SamplingState}-{ParentSpanId}
//
// (the last two optional), and the multiple headers X-B3-TraceId, X-B3-SpanId, X-B3-ParentSpanId,
// X-B3-Sampled, X-B3-Flags. Ids are lower-case hex; a 64-bit trace id is left-padded to 128 bits and written
// back 64 bits wide to the format it came from.
const (
	b3TraceID64Len  = 16
	b3TraceID128Len = 32
	b3SpanIDLen     = 16
	b3SamplingLen   = 1
	b3Sep           = '-'
)

// parseB3TraceID parses a 16 or 32 digit trace id; wide64 reports the 16 digit form.
func parseB3TraceID(s string) (tid trace.TraceID, wide64, ok bool) {
	switch len(s) {
	case b3TraceID64Len:
		ok = decodeHex(tid[8:], s)
		wide64 = true
	case b3TraceID128Len:
		ok = decodeHex(tid[:], s)
	}
	return tid, wide64, ok && tid.IsValid()
}

func parseSpanID(s string) (sid trace.SpanID, ok bool) {
	ok = len(s) == 2*len(sid) && decodeHex(sid[:], s)
	return sid, ok && sid.IsValid()
}

// parseB3Single parses the b3 header. The sampling-only form ("0", "1", "d") carries no context and is
// treated as absent.
func parseB3Single(v string, r *remote) bool {
	var ok bool
	tidLen := b3TraceID128Len
	if len(v) > b3TraceID64Len && v[b3TraceID64Len] == b3Sep {
		tidLen = b3TraceID64Len
	}
	if len(v) < tidLen+1+b3SpanIDLen || v[tidLen] != b3Sep {
		return false
	}
	if r.tid, r.width64, ok = parseB3TraceID(v[:tidLen]); !ok {
		return false
	}
	v = v[tidLen+1:]
	if r.sid, ok = parseSpanID(v[:b3SpanIDLen]); !ok {
		return false
	}
	v = v[b3SpanIDLen:]
	if v == "" {
		r.deferred = true
		return true
	}
	// "-" SamplingState [ "-" ParentSpanId ]
	if len(v) < 1+b3SamplingLen || v[0] != b3Sep {
		return false
	}
	state := v[1]
	v = v[1+b3SamplingLen:]
	if v != "" {
		if v[0] != b3Sep {
			return false
		}
		if _, ok := parseSpanID(v[1:]); !ok {
			return false
		}
	}
	switch state {
	case '0':
	case '1':
		r.sampled = true
	case 'd':
		r.sampled, r.debug = true, true
	default:
		return false
	}
	return true
}

func extractB3Single(hv *headerValues, r *remote) bool {
	v, ok := hv.single(kB3)
	return ok && parseB3Single(v, r)
}

// parseB3Multi parses the X-B3-* values. X-B3-Sampled accepts "1"/"0" and, as the spec asks for
// interoperability, "true"/"false"; X-B3-Flags: 1 is debug (and sampled); other Flags values are ignored.
// Without either the decision is deferred.
func parseB3Multi(traceID, spanID, parentID, sampled, flags string, hasParent, hasSampled, hasFlags bool,
	r *remote) bool {
	var ok bool
	if r.tid, r.width64, ok = parseB3TraceID(traceID); !ok {
		return false
	}
	if r.sid, ok = parseSpanID(spanID); !ok {
		return false
	}
	if hasParent {
		if _, ok := parseSpanID(parentID); !ok {
			return false
		}
	}
	if hasSampled {
		switch sampled {
		case "1", "true":
			r.sampled = true
		case "0", "false":
		default:
			return false
		}
	}
	if hasFlags && flags == "1" {
		r.sampled, r.debug = true, true
	}
	r.deferred = !hasSampled && !r.debug
	return true
}

func extractB3Multi(hv *headerValues, r *remote) bool {
	traceID, ok1 := hv.single(kB3TraceID)
	spanID, ok2 := hv.single(kB3SpanID)
	if !ok1 || !ok2 {
		return false
	}
	parent, hasParent := hv.single(kB3ParentID)
	sampled, hasSampled := hv.single(kB3Sampled)
	flags, hasFlags := hv.single(kB3Flags)
	return parseB3Multi(traceID, spanID, parent, sampled, flags, hasParent, hasSampled, hasFlags, r)
}

// b3TraceID writes tid as hex into dst and returns the digits written: 16 when narrow (the id arrived 64 bits
// wide in the format being written) and its high half is zero, 32 otherwise. Jaeger uses it too.
func b3TraceID(dst []byte, tid trace.TraceID, narrow bool) int {
	if narrow && allZero(tid[:8]) {
		return encodeHex(dst, tid[8:])
	}
	return encodeHex(dst, tid[:])
}

// b3State returns the B3 sampling state for sc: "d" for debug (sampled), "1" or "0".
func b3State(sc trace.SpanContext, debug bool) byte {
	switch {
	case sc.IsSampled() && debug:
		return 'd'
	case sc.IsSampled():
		return '1'
	}
	return '0'
}

func injectB3Single(h http.Header, sc trace.SpanContext, in *Extracted, same bool) {
	var b [b3TraceID128Len + 1 + b3SpanIDLen + 1 + b3SamplingLen]byte
	n := b3TraceID(b[:], sc.TraceID(), same && in.width64.Has(B3))
	b[n] = b3Sep
	n++
	sid := sc.SpanID()
	n += encodeHex(b[n:], sid[:])
	b[n] = b3Sep
	b[n+1] = b3State(sc, same && in.Debug)
	h[hdrB3] = []string{string(b[:n+2])}
}

func injectB3Multi(h http.Header, sc trace.SpanContext, in *Extracted, same bool) {
	var b [b3TraceID128Len]byte
	n := b3TraceID(b[:], sc.TraceID(), same && in.width64.Has(B3Multi))
	h[hdrB3TraceID] = []string{string(b[:n])}
	h[hdrB3SpanID] = []string{sc.SpanID().String()}
	// Debug implies sampled: send X-B3-Flags: 1 alone, as the spec recommends.
	if state := b3State(sc, same && in.Debug); state == 'd' {
		h[hdrB3Flags] = []string{"1"}
	} else {
		h[hdrB3Sampled] = []string{string(state)}
	}
}
