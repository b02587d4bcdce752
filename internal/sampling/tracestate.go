package sampling

import (
	"strings"

	"go.opentelemetry.io/otel/trace"
)

// The OpenTelemetry entry of the W3C tracestate, "ot=k1:v1;k2:v2", and the sub-keys of consistent
// probability sampling (https://opentelemetry.io/docs/specs/otel/trace/tracestate-handling/).
const (
	otKey = "ot"
	thKey = "th"
	rvKey = "rv"
	// otSep separates sub-keys, otKVSep a sub-key from its value.
	otSep   = ';'
	otKVSep = ':'
)

// otSubkey returns the value of sub-key k in the ot entry value v.
func otSubkey(v, k string) (string, bool) {
	for len(v) > 0 {
		m := v
		if i := strings.IndexByte(v, otSep); i >= 0 {
			m, v = v[:i], v[i+1:]
		} else {
			v = ""
		}
		if len(m) > len(k) && m[len(k)] == otKVSep && m[:len(k)] == k {
			return m[len(k)+1:], true
		}
	}
	return "", false
}

// otWithThreshold returns v with its th sub-key replaced by thMember ("th:<hex>"), or removed when
// thMember is empty. th comes first; the other sub-keys are kept verbatim and in order, even malformed
// ones ("Preserving the order is not required", tracestate-handling "Setting values"). Trailing spaces
// are trimmed: a member moved to the end may not end a W3C tracestate value with one.
func otWithThreshold(v, thMember string) string {
	var b strings.Builder
	b.Grow(len(v) + len(thMember) + 1)
	b.WriteString(thMember)
	first := thMember == ""
	for rest, done := v, v == ""; !done; {
		m := rest
		if i := strings.IndexByte(rest, otSep); i >= 0 {
			m, rest = rest[:i], rest[i+1:]
		} else {
			done = true
		}
		if len(m) > len(thKey) && m[len(thKey)] == otKVSep && m[:len(thKey)] == thKey {
			continue
		}
		if !first {
			b.WriteByte(otSep)
		}
		first = false
		b.WriteString(m)
	}
	return strings.TrimRight(b.String(), " ")
}

// randomness returns the explicit rv of the ot entry when it is valid, else the trace id's randomness.
func randomness(ts trace.TraceState, id trace.TraceID) uint64 {
	if ts.Len() > 0 {
		if ot := ts.Get(otKey); ot != "" {
			if rv, ok := otSubkey(ot, rvKey); ok {
				if r, ok := decodeRandomness(rv); ok {
					return r
				}
			}
		}
	}
	return traceIDRandomness(id)
}

// withThreshold returns parent with the ot entry's th set to thMember (erased when empty), keeping the
// other sub-keys and the other members. onEmpty is returned for a parent without tracestate, so the
// common root case reuses a TraceState built once.
func withThreshold(parent trace.TraceState, thMember string, onEmpty trace.TraceState) trace.TraceState {
	if parent.Len() == 0 {
		return onEmpty
	}
	ot := parent.Get(otKey)
	if ot == "" {
		if thMember == "" {
			return parent
		}
		if ts, err := parent.Insert(otKey, thMember); err == nil {
			return ts
		}
		return parent
	}
	if ot == thMember {
		return parent
	}
	if thMember == "" {
		if _, ok := otSubkey(ot, thKey); !ok {
			return parent
		}
	}
	nv := otWithThreshold(ot, thMember)
	if nv == "" {
		return parent.Delete(otKey)
	}
	if ts, err := parent.Insert(otKey, nv); err == nil {
		return ts
	}
	// Too long for the 256-character limit with the new th: at least do not keep a stale one.
	if nv = otWithThreshold(ot, ""); nv == "" {
		return parent.Delete(otKey)
	}
	if ts, err := parent.Insert(otKey, nv); err == nil {
		return ts
	}
	return parent.Delete(otKey)
}

// eraseThreshold removes th from the ot entry: the outcome of a non-probabilistic decision (rate
// limiting, plugin, not sampled) has no defined adjusted count ("Sampling stages that yield spans with
// unknown sampling probability ... must erase the OpenTelemetry threshold value in their output").
func eraseThreshold(ts trace.TraceState) trace.TraceState {
	return withThreshold(ts, "", ts)
}

// checkedParentState is the parent-based outgoing tracestate for a sampled parent: the incoming th is
// kept unless it is apparently inconsistent (randomness below it), in which case it is erased
// ("Parent-based threshold").
func checkedParentState(ts trace.TraceState, id trace.TraceID) trace.TraceState {
	if ts.Len() == 0 {
		return ts
	}
	ot := ts.Get(otKey)
	if ot == "" {
		return ts
	}
	th, ok := otSubkey(ot, thKey)
	if !ok {
		return ts
	}
	if t, ok := decodeThreshold(th); ok && randomness(ts, id) >= t {
		return ts
	}
	return eraseThreshold(ts)
}
