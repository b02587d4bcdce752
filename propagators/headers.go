package propagators

import (
	"net/http"
	"strings"
)

// Canonical header keys (as net/http's server stores them, for HTTP/1 and HTTP/2 alike). Extract walks the
// header map once, classifying each key (classify), which finds non-canonical spellings and the uberctx-*
// family in the same pass and avoids http.Header.Get/Set's canonicalization; Inject writes these keys
// directly.
const (
	hdrTraceparent   = "Traceparent"
	hdrTracestate    = "Tracestate"
	hdrBaggage       = "Baggage"
	hdrB3            = "B3"
	hdrB3TraceID     = "X-B3-Traceid"
	hdrB3SpanID      = "X-B3-Spanid"
	hdrB3ParentID    = "X-B3-Parentspanid"
	hdrB3Sampled     = "X-B3-Sampled"
	hdrB3Flags       = "X-B3-Flags"
	hdrUberTraceID   = "Uber-Trace-Id"
	hdrUberctxPrefix = "Uberctx-"
	hdrXRay          = "X-Amzn-Trace-Id"
)

// hdrKind classifies a managed header.
type hdrKind uint8

const (
	kNone hdrKind = iota
	kTraceparent
	kTracestate
	kBaggage
	kB3
	kB3TraceID
	kB3SpanID
	kB3ParentID
	kB3Sampled
	kB3Flags
	kUberTraceID
	kUberctx
	kXRay
	kCount
)

// kindFormat is the format each managed header belongs to.
var kindFormat = [kCount]Format{
	kTraceparent: TraceContext,
	kTracestate:  TraceContext,
	kBaggage:     Baggage,
	kB3:          B3,
	kB3TraceID:   B3Multi,
	kB3SpanID:    B3Multi,
	kB3ParentID:  B3Multi,
	kB3Sampled:   B3Multi,
	kB3Flags:     B3Multi,
	kUberTraceID: Jaeger,
	kUberctx:     Jaeger,
	kXRay:        XRay,
}

// primaryKind marks the headers Inject always writes for an injected format (the others, such as tracestate
// or X-B3-Sampled, depend on the context and are deleted first).
var primaryKind = [kCount]bool{
	kTraceparent: true, kB3: true, kB3TraceID: true, kB3SpanID: true, kUberTraceID: true, kXRay: true,
}

var kindKey = [kCount]string{
	kTraceparent: hdrTraceparent,
	kTracestate:  hdrTracestate,
	kBaggage:     hdrBaggage,
	kB3:          hdrB3,
	kB3TraceID:   hdrB3TraceID,
	kB3SpanID:    hdrB3SpanID,
	kB3ParentID:  hdrB3ParentID,
	kB3Sampled:   hdrB3Sampled,
	kB3Flags:     hdrB3Flags,
	kUberTraceID: hdrUberTraceID,
	kXRay:        hdrXRay,
}

// classify returns the kind of header key k, matching case-insensitively, and whether k is spelled canonically.
func classify(k string) (kind hdrKind, canonical bool) {
	if len(k) > len(hdrUberctxPrefix) && strings.EqualFold(k[:len(hdrUberctxPrefix)], hdrUberctxPrefix) {
		return kUberctx, false
	}
	var c hdrKind
	switch len(k) {
	case len(hdrB3):
		c = kB3
	case len(hdrBaggage):
		c = kBaggage
	case len(hdrTracestate): // == len(hdrB3Flags)
		if k[0] == 't' || k[0] == 'T' {
			c = kTracestate
		} else {
			c = kB3Flags
		}
	case len(hdrTraceparent): // == len(hdrB3SpanID)
		if k[0] == 't' || k[0] == 'T' {
			c = kTraceparent
		} else {
			c = kB3SpanID
		}
	case len(hdrB3TraceID): // == len(hdrB3Sampled)
		if len(k) > 5 && (k[5] == 't' || k[5] == 'T') {
			c = kB3TraceID
		} else {
			c = kB3Sampled
		}
	case len(hdrB3ParentID):
		c = kB3ParentID
	case len(hdrUberTraceID):
		c = kUberTraceID
	case len(hdrXRay):
		c = kXRay
	default:
		return kNone, false
	}
	want := kindKey[c]
	if k == want {
		return c, true
	}
	if strings.EqualFold(k, want) {
		return c, false
	}
	return kNone, false
}

// headerValues holds the managed headers found in one walk of a header map.
type headerValues struct {
	v       [kCount][]string
	uberctx bool // some uberctx-* header is present
}

// scan records the values of the managed headers of the formats in want.
func (hv *headerValues) scan(h http.Header, want Set) {
	for k, vs := range h {
		kind, _ := classify(k)
		if kind == kNone || !want.Has(kindFormat[kind]) {
			continue
		}
		if kind == kUberctx {
			hv.uberctx = true
			continue
		}
		if hv.v[kind] == nil {
			hv.v[kind] = vs
		} else { // the same header under two spellings
			hv.v[kind] = append(append([]string(nil), hv.v[kind]...), vs...)
		}
	}
}

// single returns the value of a header that must appear once, without surrounding OWS (which is not part of
// a field value, RFC 9110 §5.5; net/http's server already trims it).
func (hv *headerValues) single(k hdrKind) (string, bool) {
	if len(hv.v[k]) != 1 {
		return "", false
	}
	return trimOWS(hv.v[k][0]), true
}

// list returns the comma-joined values of a list header (tracestate, baggage), which may be split over
// several header lines (RFC 9110 §5.3).
func (hv *headerValues) list(k hdrKind) string {
	switch vs := hv.v[k]; len(vs) {
	case 0:
		return ""
	case 1:
		return vs[0]
	default:
		return strings.Join(vs, ",")
	}
}
