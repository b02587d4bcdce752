package propagators

import (
	"strings"

	"go.opentelemetry.io/otel/trace"
)

// W3C Trace Context Level 2, https://www.w3.org/TR/trace-context-2/.

// traceparent layout: version "-" trace-id "-" parent-id "-" trace-flags, all lower-case hex
// (https://www.w3.org/TR/trace-context-2/#traceparent-header-field-values).
const (
	tpVersionLen   = 2
	tpTraceIDLen   = 32
	tpSpanIDLen    = 16
	tpFlagsLen     = 2
	tpTraceIDOff   = tpVersionLen + 1
	tpSpanIDOff    = tpTraceIDOff + tpTraceIDLen + 1
	tpFlagsOff     = tpSpanIDOff + tpSpanIDLen + 1
	traceparentLen = tpFlagsOff + tpFlagsLen // 55, the whole version 00 header

	tpInvalidVersion = 0xff
	// tpKnownFlags are the trace-flags bits Level 2 defines: sampled (0x01) and random (0x02). Other bits are
	// reserved; a receiver ignores them and a sender sets them to zero
	// (https://www.w3.org/TR/trace-context-2/#other-flags).
	tpKnownFlags = byte(trace.FlagsSampled | trace.FlagsRandom)
)

// tracestate limits and grammar (https://www.w3.org/TR/trace-context-2/#tracestate-header-field-values).
const (
	tsMaxMembers  = 32
	tsMaxKeyLen   = 256
	tsMaxValueLen = 256
)

// parseTraceparent parses one traceparent value following the processing model of
// https://www.w3.org/TR/trace-context-2/#versioning-of-traceparent: version 00 is exactly 55 bytes; a higher
// version must start like version 00 and may carry more fields after a "-"; version ff is invalid. Ids are
// lower-case hex and not all zero. The returned flags keep only the defined bits.
func parseTraceparent(v string) (tid trace.TraceID, sid trace.SpanID, flags byte, ok bool) {
	if len(v) < traceparentLen {
		return tid, sid, 0, false
	}
	var ver [1]byte
	if !decodeHex(ver[:], v[:tpVersionLen]) || ver[0] == tpInvalidVersion {
		return tid, sid, 0, false
	}
	if ver[0] == 0 && len(v) != traceparentLen {
		return tid, sid, 0, false
	}
	if len(v) > traceparentLen && v[traceparentLen] != '-' {
		return tid, sid, 0, false
	}
	if v[tpTraceIDOff-1] != '-' || v[tpSpanIDOff-1] != '-' || v[tpFlagsOff-1] != '-' {
		return tid, sid, 0, false
	}
	var fl [1]byte
	if !decodeHex(tid[:], v[tpTraceIDOff:tpTraceIDOff+tpTraceIDLen]) ||
		!decodeHex(sid[:], v[tpSpanIDOff:tpSpanIDOff+tpSpanIDLen]) ||
		!decodeHex(fl[:], v[tpFlagsOff:tpFlagsOff+tpFlagsLen]) {
		return tid, sid, 0, false
	}
	if !tid.IsValid() || !sid.IsValid() {
		return tid, sid, 0, false
	}
	return tid, sid, fl[0] & tpKnownFlags, true
}

// formatTraceparent returns the version 00 traceparent of tid, sid and flags.
func formatTraceparent(tid trace.TraceID, sid trace.SpanID, flags byte) string {
	var b [traceparentLen]byte
	b[0], b[1] = '0', '0'
	b[tpTraceIDOff-1] = '-'
	encodeHex(b[tpTraceIDOff:], tid[:])
	b[tpSpanIDOff-1] = '-'
	encodeHex(b[tpSpanIDOff:], sid[:])
	b[tpFlagsOff-1] = '-'
	encodeHex(b[tpFlagsOff:], []byte{flags & tpKnownFlags})
	return string(b[:])
}

// isTSKeyStart reports whether c may start a Level 2 tracestate key: lcalpha / DIGIT.
func isTSKeyStart(c byte) bool { return c >= 'a' && c <= 'z' || c >= '0' && c <= '9' }

// isTSKeyChar reports whether c is a Level 2 keychar: lcalpha / DIGIT / "_" / "-" / "*" / "/" / "@".
func isTSKeyChar(c byte) bool {
	return isTSKeyStart(c) || c == '_' || c == '-' || c == '*' || c == '/' || c == '@'
}

// validTSKey checks key = ( lcalpha / DIGIT ) 0*255( keychar ) (Trace Context Level 2).
func validTSKey(k string) bool {
	if len(k) == 0 || len(k) > tsMaxKeyLen || !isTSKeyStart(k[0]) {
		return false
	}
	for i := 1; i < len(k); i++ {
		if !isTSKeyChar(k[i]) {
			return false
		}
	}
	return true
}

// validTSValue checks value = 0*255( chr ) nblk-chr; chr = %x20 / nblk-chr;
// nblk-chr = %x21-2B / %x2D-3C / %x3E-7E.
func validTSValue(v string) bool {
	if len(v) == 0 || len(v) > tsMaxValueLen {
		return false
	}
	for i := 0; i < len(v); i++ {
		c := v[i]
		if c < 0x20 || c > 0x7e || c == ',' || c == '=' {
			return false
		}
	}
	return v[len(v)-1] != ' '
}

// nextListMember splits off the next list-member of a tracestate list: it returns the member with OWS trimmed
// ("" for an empty member) and the rest after the comma.
func nextListMember(s string) (member, rest string, more bool) {
	i := strings.IndexByte(s, ',')
	if i < 0 {
		return trimOWS(s), "", false
	}
	return trimOWS(s[:i]), s[i+1:], true
}

// parseTracestate validates a combined tracestate value with the Level 2 grammar and returns the value to
// propagate: the header as received, or, when it has more than 32 list-members, its prefix holding the first
// 32: entries are removed starting from the end, as https://www.w3.org/TR/trace-context-2/#tracestate-limits
// prescribes when a vendor truncates. (The W3C test suite's test_tracestate_member_count_limit discards such a
// list instead; truncating keeps the first vendors' state, which is what the limit protects.)
// An invalid list (bad key or value, duplicate key) returns ok=false: the tracestate is dropped, the
// traceparent is kept (https://www.w3.org/TR/trace-context-2/#tracestate-parsing).
func parseTracestate(s string) (raw string, ok bool) {
	if s == "" {
		return "", false
	}
	var keys [tsMaxMembers]string
	n := 0
	rest := s
	for {
		m, r, more := nextListMember(rest)
		if m != "" {
			if n == tsMaxMembers {
				// Truncate before this member: s up to the comma that ended the previous one.
				return strings.TrimRight(s[:len(s)-len(rest)], ", \t"), true
			}
			eq := strings.IndexByte(m, '=')
			if eq < 0 {
				return "", false
			}
			k, v := m[:eq], m[eq+1:]
			if !validTSKey(k) || !validTSValue(v) {
				return "", false
			}
			for _, seen := range keys[:n] {
				if seen == k {
					return "", false
				}
			}
			keys[n] = k
			n++
		}
		if !more {
			break
		}
		rest = r
	}
	if n == 0 {
		return "", false
	}
	return s, true
}

// tracestateMembers calls f for each non-empty member of a validated tracestate value.
func tracestateMembers(s string, f func(key, value string) bool) {
	for rest, more := s, true; more; {
		var m string
		m, rest, more = nextListMember(rest)
		if m == "" {
			continue
		}
		k, v, _ := strings.Cut(m, "=")
		if !f(k, v) {
			return
		}
	}
}

// otelTraceState builds the trace.TraceState holding what OpenTelemetry's type accepts of a validated
// Level 2 tracestate value: all of it usually; members whose keys OTel's Level 1 grammar rejects
// (e.g. "1vendor", "a@b@c") are left out of the TraceState but stay in the raw value Inject writes.
func otelTraceState(raw string) trace.TraceState {
	if ts, err := trace.ParseTraceState(raw); err == nil {
		return ts
	}
	var (
		ms [tsMaxMembers][2]string
		n  int
	)
	tracestateMembers(raw, func(k, v string) bool {
		ms[n] = [2]string{k, v}
		n++
		return n < tsMaxMembers
	})
	var ts trace.TraceState
	for i := n - 1; i >= 0; i-- { // Insert prepends.
		if t, err := ts.Insert(ms[i][0], ms[i][1]); err == nil {
			ts = t
		}
	}
	return ts
}

// traceStateEqual reports whether a and b hold the same members in the same order.
func traceStateEqual(a, b trace.TraceState) bool {
	if a.Len() != b.Len() {
		return false
	}
	if a.Len() == 0 {
		return true
	}
	var (
		ms [tsMaxMembers][2]string
		n  int
	)
	a.Walk(func(k, v string) bool {
		ms[n] = [2]string{k, v}
		n++
		return n < tsMaxMembers
	})
	i, eq := 0, true
	b.Walk(func(k, v string) bool {
		eq = i < n && ms[i] == [2]string{k, v}
		i++
		return eq
	})
	return eq
}

// mergeTracestate returns sc's members followed by the members of the incoming raw value that OTel's type
// could not hold (absent from held), skipping keys sc already has, at most 32 members.
func mergeTracestate(ts, held trace.TraceState, raw string) string {
	var b strings.Builder
	n := 0
	ts.Walk(func(k, v string) bool {
		if n > 0 {
			b.WriteByte(',')
		}
		b.WriteString(k)
		b.WriteByte('=')
		b.WriteString(v)
		n++
		return n < tsMaxMembers
	})
	tracestateMembers(raw, func(k, v string) bool {
		if n >= tsMaxMembers {
			return false
		}
		if ts.Get(k) != "" || held.Get(k) != "" {
			return true
		}
		if n > 0 {
			b.WriteByte(',')
		}
		b.WriteString(k)
		b.WriteByte('=')
		b.WriteString(v)
		n++
		return true
	})
	return b.String()
}
