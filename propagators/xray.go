package propagators

import (
	"net/http"
	"strings"

	"go.opentelemetry.io/otel/trace"
)

// AWS X-Ray tracing header,
// https://docs.aws.amazon.com/xray/latest/devguide/xray-concepts.html#xray-concepts-tracingheader:
//
//	X-Amzn-Trace-Id: Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1
//
// Root is "1-" + 8 hex digits (epoch seconds) + "-" + 24 hex digits; the 128-bit trace id is the 32 digits
// concatenated (as contrib's xray propagator does). Parent is a 16 digit span id and may be missing (a load
// balancer's root: Extracted.RootOnly). Sampled is 1, 0 or "?" (decision requested) and may be missing
// (Deferred). Every other field (Self, Lineage, custom data) is kept verbatim and written back on X-Ray inject.
const (
	xrayRootLen       = 2 + 8 + 1 + 24 // "1-" epoch "-" unique
	xrayVersion       = "1-"
	xrayEpochLen      = 8
	xrayEpochOff      = len(xrayVersion)
	xrayUniqueOff     = xrayEpochOff + xrayEpochLen + 1
	xraySep           = ';'
	xrayKeyRoot       = "Root"
	xrayKeyParent     = "Parent"
	xrayKeySampled    = "Sampled"
	xraySampledNotSet = "?"
)

// parseXRayRoot parses "1-{8 hex}-{24 hex}" into a trace id.
func parseXRayRoot(s string, tid *trace.TraceID) bool {
	if len(s) != xrayRootLen || s[:xrayEpochOff] != xrayVersion || s[xrayUniqueOff-1] != '-' {
		return false
	}
	return decodeHex(tid[:4], s[xrayEpochOff:xrayEpochOff+xrayEpochLen]) &&
		decodeHex(tid[4:], s[xrayUniqueOff:]) && tid.IsValid()
}

// parseXRay parses an X-Amzn-Trace-Id value; extra returns the other fields verbatim, ';' separated (it is
// a substring of v when they are contiguous, so the common case does not allocate).
func parseXRay(v string, r *remote) (extra string, ok bool) {
	var hasRoot, hasParent, hasSampled bool
	var extras []string
	for rest, more := v, true; more; {
		var f string
		if i := strings.IndexByte(rest, xraySep); i >= 0 {
			f, rest = rest[:i], rest[i+1:]
		} else {
			f, rest, more = rest, "", false
		}
		if f = trimOWS(f); f == "" {
			continue
		}
		k, val, found := strings.Cut(f, "=")
		if !found || k == "" {
			return "", false
		}
		switch k {
		case xrayKeyRoot:
			if hasRoot || !parseXRayRoot(val, &r.tid) {
				return "", false
			}
			hasRoot = true
		case xrayKeyParent:
			var ok bool
			if hasParent {
				return "", false
			}
			if r.sid, ok = parseSpanID(val); !ok {
				return "", false
			}
			hasParent = true
		case xrayKeySampled:
			if hasSampled {
				return "", false
			}
			switch val {
			case "1":
				r.sampled = true
			case "0":
			case xraySampledNotSet:
				r.deferred = true
			default:
				return "", false
			}
			hasSampled = true
		default:
			extras = append(extras, f)
		}
	}
	if !hasRoot {
		return "", false
	}
	r.rootOnly = !hasParent
	if !hasSampled {
		r.deferred = true
	}
	return strings.Join(extras, string(xraySep)), true
}

func extractXRay(hv *headerValues, r *remote, e *Extracted) bool {
	v, ok := hv.single(kXRay)
	if !ok {
		return false
	}
	extra, ok := parseXRay(v, r)
	if ok && (e.Format == 0 || r.tid == e.SpanContext.TraceID()) {
		e.xrayExtra = extra
	}
	return ok
}

func injectXRay(h http.Header, sc trace.SpanContext, in *Extracted, same bool) {
	tid, sid := sc.TraceID(), sc.SpanID()
	var b [len("Root=") + xrayRootLen + len(";Parent=") + 16 + len(";Sampled=") + 1]byte
	n := copy(b[:], "Root="+xrayVersion)
	n += encodeHex(b[n:], tid[:4])
	b[n] = '-'
	n++
	n += encodeHex(b[n:], tid[4:])
	n += copy(b[n:], ";Parent=")
	n += encodeHex(b[n:], sid[:])
	n += copy(b[n:], ";Sampled=")
	b[n] = '0'
	if sc.IsSampled() {
		b[n] = '1'
	}
	n++
	v := string(b[:n])
	if same && in.xrayExtra != "" {
		v += string(xraySep) + in.xrayExtra
	}
	h[hdrXRay] = []string{v}
}
