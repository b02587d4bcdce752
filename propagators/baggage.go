package propagators

import (
	"net/http"
	"net/textproto"
	"net/url"
	"strings"
	"unicode/utf8"
)

// W3C Baggage, https://www.w3.org/TR/baggage/, and its translation to and from Jaeger's uberctx-* headers
// (https://www.jaegertracing.io/docs/1.21/client-libraries/#baggage).
//
//	baggage-string = list-member 0*179( OWS "," OWS list-member )
//	list-member    = key OWS "=" OWS value *( OWS ";" OWS property )
//	property       = key OWS "=" OWS value / key OWS
//	key            = token
//	value          = *baggage-octet
//	baggage-octet  = %x21 / %x23-2B / %x2D-3A / %x3C-5B / %x5D-7E
const (
	bagMaxMembers = 180  // list-members per baggage-string (https://www.w3.org/TR/baggage/#limits)
	bagMaxBytes   = 8192 // bytes per baggage-string
)

// bagMember is one baggage entry: key, decoded value, and the W3C properties verbatim (without the leading ';').
type bagMember struct{ key, value, props string }

// isTokenChar reports whether c is an RFC 9110 tchar.
func isTokenChar(c byte) bool {
	switch {
	case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		return true
	}
	return strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0
}

func validToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !isTokenChar(s[i]) {
			return false
		}
	}
	return true
}

func isBaggageOctet(c byte) bool {
	return c == 0x21 || c >= 0x23 && c <= 0x2b || c >= 0x2d && c <= 0x3a || c >= 0x3c && c <= 0x5b ||
		c >= 0x5d && c <= 0x7e
}

// validBagValue checks *baggage-octet and that every '%' starts a percent-encoded octet.
func validBagValue(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !isBaggageOctet(c) {
			return false
		}
		if c == '%' && (i+2 >= len(s) || !isHex(s[i+1]) || !isHex(s[i+2])) {
			return false
		}
	}
	return true
}

func isHex(c byte) bool { return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F' }

// splitBagMember parses one trimmed list-member into its key, raw (still percent-encoded) value and
// properties. ok is false for an invalid member.
func splitBagMember(m string) (key, rawValue, props string, ok bool) {
	kv, props, _ := strings.Cut(m, ";")
	k, v, found := strings.Cut(kv, "=")
	if !found {
		return "", "", "", false
	}
	key, rawValue = trimOWS(k), trimOWS(v)
	if !validToken(key) || !validBagValue(rawValue) {
		return "", "", "", false
	}
	for rest := props; rest != ""; {
		var p string
		p, rest, _ = strings.Cut(rest, ";")
		if p = trimOWS(p); p == "" {
			continue
		}
		pk, pv, hasValue := strings.Cut(p, "=")
		if !validToken(trimOWS(pk)) || hasValue && !validBagValue(trimOWS(pv)) {
			return "", "", "", false
		}
	}
	return key, rawValue, props, true
}

// parseBaggage validates a combined baggage header value. When every list-member is valid and the list is
// within the limits, the value is returned as received (passed through byte for byte). Otherwise invalid
// members are dropped and the list is cut, by whole members, to 180 members and 8192 bytes
// (https://www.w3.org/TR/baggage/#limits); ok is false when no member remains.
func parseBaggage(s string) (raw string, ok bool) {
	if s == "" {
		return "", false
	}
	n, clean := 0, true
	for rest, more := s, true; more; {
		var m string
		m, rest, more = nextListMember(rest)
		if _, _, _, valid := splitBagMember(m); !valid {
			clean = false
			continue
		}
		n++
	}
	if clean && n <= bagMaxMembers && len(s) <= bagMaxBytes {
		return s, true
	}
	var b strings.Builder
	n = 0
	for rest, more := s, true; more && n < bagMaxMembers; {
		var m string
		m, rest, more = nextListMember(rest)
		if _, _, _, valid := splitBagMember(m); !valid {
			continue
		}
		if b.Len()+len(m)+1 > bagMaxBytes {
			break
		}
		if n > 0 {
			b.WriteByte(',')
		}
		b.WriteString(m)
		n++
	}
	return b.String(), n > 0
}

// decodeBagValue percent-decodes a validated raw value; invalid UTF-8 is replaced by U+FFFD byte by byte,
// as OpenTelemetry does.
func decodeBagValue(raw string) string {
	if strings.IndexByte(raw, '%') < 0 {
		return raw
	}
	v, err := url.PathUnescape(raw)
	if err != nil {
		return raw
	}
	return toValidUTF8(v)
}

// toValidUTF8 replaces each byte of an invalid UTF-8 sequence by U+FFFD, as OpenTelemetry's baggage does:
// baggage values are UTF-8 strings whichever format carried them.
func toValidUTF8(v string) string {
	if utf8.ValidString(v) {
		return v
	}
	var b strings.Builder
	for i := 0; i < len(v); {
		r, size := utf8.DecodeRuneInString(v[i:])
		if r == utf8.RuneError && size == 1 {
			b.WriteRune(utf8.RuneError)
		} else {
			b.WriteString(v[i : i+size])
		}
		i += size
	}
	return b.String()
}

// encodeBagValue percent-encodes every byte of v that is not a baggage-octet, and '%'.
func encodeBagValue(v string) string {
	n := 0
	for i := 0; i < len(v); i++ {
		if c := v[i]; c == '%' || !isBaggageOctet(c) {
			n++
		}
	}
	if n == 0 {
		return v
	}
	b := make([]byte, 0, len(v)+2*n)
	for i := 0; i < len(v); i++ {
		if c := v[i]; c == '%' || !isBaggageOctet(c) {
			b = append(b, '%', "0123456789ABCDEF"[c>>4], "0123456789ABCDEF"[c&0xf])
		} else {
			b = append(b, c)
		}
	}
	return string(b)
}

// w3cMembers parses a validated baggage value into members, last duplicate wins (as OpenTelemetry's
// baggage.Parse).
func w3cMembers(raw string) []bagMember {
	var ms []bagMember
	for rest, more := raw, true; more; {
		var m string
		m, rest, more = nextListMember(rest)
		k, v, props, ok := splitBagMember(m)
		if !ok {
			continue
		}
		ms = setMember(ms, bagMember{k, decodeBagValue(v), props}, true)
	}
	return ms
}

// setMember adds m to ms, replacing an existing member of the same key if replace is set.
func setMember(ms []bagMember, m bagMember, replace bool) []bagMember {
	for i := range ms {
		if ms[i].key == m.key {
			if replace {
				ms[i] = m
			}
			return ms
		}
	}
	return append(ms, m)
}

// extractUberctx reads Jaeger baggage: each uberctx-{key} header is one entry, its key lower-cased (header
// names are case-insensitive) and its value URL-decoded as Jaeger clients encode it. An entry too long to be a
// W3C baggage member on its own (over 8192 bytes once encoded) is dropped: no hop could carry it.
func extractUberctx(h http.Header) []bagMember {
	var ms []bagMember
	for k, vs := range h {
		if kind, _ := classify(k); kind != kUberctx || len(vs) == 0 {
			continue
		}
		key := strings.ToLower(k[len(hdrUberctxPrefix):])
		v, err := url.QueryUnescape(vs[0])
		if err != nil || !validToken(key) {
			continue
		}
		v = toValidUTF8(v)
		if len(key)+1+len(encodeBagValue(v)) > bagMaxBytes {
			continue
		}
		ms = setMember(ms, bagMember{key: key, value: v}, true)
	}
	// Map order is random: sort by key so the result is deterministic.
	for i := 1; i < len(ms); i++ {
		for j := i; j > 0 && ms[j].key < ms[j-1].key; j-- {
			ms[j], ms[j-1] = ms[j-1], ms[j]
		}
	}
	return ms
}

// baggageMembers merges W3C and Jaeger baggage: distinct keys, W3C order then Jaeger's; for a key in both
// (compared case-insensitively, see setUberctxMember), the format earlier in the extraction order wins.
func (e *Extracted) baggageMembers() []bagMember {
	if e.baggage == "" {
		return e.uberctx // distinct keys already
	}
	ms := w3cMembers(e.baggage)
	for _, m := range e.uberctx {
		ms = setUberctxMember(ms, m, e.jaegerBag)
	}
	return ms
}

// setUberctxMember merges a Jaeger entry into W3C members. Its key was lower-cased by the trip through a
// header name, so it matches a W3C key case-insensitively; a replaced member keeps the W3C key's spelling.
func setUberctxMember(ms []bagMember, m bagMember, replace bool) []bagMember {
	for i := range ms {
		if strings.EqualFold(ms[i].key, m.key) {
			if replace {
				ms[i].value, ms[i].props = m.value, ""
			}
			return ms
		}
	}
	return append(ms, m)
}

// BaggageLen returns the number of distinct baggage keys extracted, from W3C baggage and Jaeger uberctx-*.
func (e *Extracted) BaggageLen() int {
	if e.baggage == "" {
		return len(e.uberctx)
	}
	return len(e.baggageMembers())
}

// BaggageMember returns the decoded value of the baggage entry key.
func (e *Extracted) BaggageMember(key string) (string, bool) {
	for _, m := range e.baggageMembers() {
		if m.key == key {
			return m.value, true
		}
	}
	return "", false
}

// w3cBaggage returns the W3C baggage header to write: the incoming value byte for byte when only W3C baggage
// arrived, otherwise the merged members re-encoded, cut by whole members to the W3C limits.
func (e *Extracted) w3cBaggage() string {
	if len(e.uberctx) == 0 {
		return e.baggage
	}
	ms := e.baggageMembers()
	size := 0
	for _, m := range ms {
		size += len(m.key) + len(m.value) + len(m.props) + 3
	}
	var b strings.Builder
	b.Grow(min(size, bagMaxBytes))
	n := 0
	for _, m := range ms {
		if n == bagMaxMembers {
			break
		}
		v := encodeBagValue(m.value)
		size := len(m.key) + 1 + len(v)
		if m.props != "" {
			size += 1 + len(m.props)
		}
		if n > 0 {
			size++ // the comma before it
		}
		if b.Len()+size > bagMaxBytes {
			break
		}
		if n > 0 {
			b.WriteByte(',')
		}
		b.WriteString(m.key)
		b.WriteByte('=')
		b.WriteString(v)
		if m.props != "" {
			b.WriteByte(';')
			b.WriteString(m.props)
		}
		n++
	}
	return b.String()
}

// injectUberctx writes the baggage as Jaeger uberctx-{key} headers, values URL-encoded. W3C properties have
// no Jaeger equivalent and are dropped.
func (e *Extracted) injectUberctx(h http.Header) {
	if e.baggage == "" && len(e.uberctx) == 0 {
		return
	}
	for _, m := range e.baggageMembers() {
		h[textproto.CanonicalMIMEHeaderKey(hdrUberctxPrefix+m.key)] = []string{url.QueryEscape(m.value)}
	}
}
