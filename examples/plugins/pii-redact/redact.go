package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"regexp"
	"sort"
	"strings"
	"unicode/utf8"

	sdk "github.com/sidetrace/sidetrace/wasm-sdk/go"
)

// config is the plugin's config; every field is optional:
//
//	{"keys":["enduser.id"],"patterns":{"phone":"\\+1-\\d{3}-\\d{3}-\\d{4}"},"typed":true,"max_value_bytes":16384}
type config struct {
	// Keys are attribute keys whose whole value is always redacted, in
	// addition to the authorization and cookie header attributes.
	Keys []string `json:"keys"`
	// Patterns are extra regular expressions (RE2 syntax), by name; matches
	// are replaced by [REDACTED:name].
	Patterns map[string]string `json:"patterns"`
	// Typed markers name what was redacted, "[REDACTED:email]"; false gives
	// "[REDACTED]" (default true).
	Typed *bool `json:"typed"`
	// MaxValueBytes truncates longer string values before scanning them, as
	// OpenTelemetry's attribute value length limit does (default 16384; 0
	// keeps the default, -1 scans everything): scanning costs about 0.15 µs
	// per byte in the sandbox (0.03 µs trusted), and a span that overruns
	// the deadline fails the call.
	MaxValueBytes int `json:"max_value_bytes"`
}

type pattern struct {
	name string
	re   *regexp.Regexp
}

// redactor holds the compiled config.
type redactor struct {
	keys     map[string]string // attribute key -> marker type ("" for URL attributes: query redaction)
	patterns []pattern
	typed    bool
	maxBytes int       // < 0: no limit
	keyLens  [256]bool // lengths of the keys in keys: most attributes skip the map lookup
}

const defaultMaxValueBytes = 16384

// truncatedMarker ends a value cut at maxBytes.
const truncatedMarker = "[TRUNCATED]"

// Attribute keys whose values are header values (OpenTelemetry semantic
// conventions: http.request.header.<name>, lower-case) always redacted.
var secretHeaders = []string{"authorization", "proxy-authorization", "cookie", "set-cookie", "x-api-key", "x-auth-token"}

// urlKeys are attributes holding a URL or a query string, whose secret-like
// query parameters are redacted.
var urlKeys = map[string]bool{"url.query": true, "url.full": true, "url.original": true, "http.url": true, "http.target": true}

var (
	ssnRE    = regexp.MustCompile(`\b(\d{3})-(\d{2})-(\d{4})\b`)
	jwtRE    = regexp.MustCompile(`\beyJ[A-Za-z0-9_\-]{4,}\.[A-Za-z0-9_\-]{4,}\.[A-Za-z0-9_\-]*`)
	bearerRE = regexp.MustCompile(`(?i)\b(bearer)\s+[A-Za-z0-9\-._~+/]+=*`)
)

func defaultRedactor() *redactor {
	r, _ := newRedactor(nil)
	return r
}

func newRedactor(raw []byte) (*redactor, error) {
	var c config
	if len(bytes.TrimSpace(raw)) > 0 {
		d := json.NewDecoder(bytes.NewReader(raw))
		d.DisallowUnknownFields()
		if err := d.Decode(&c); err != nil {
			return nil, fmt.Errorf("pii-redact: config: %v", err)
		}
	}
	r := &redactor{keys: map[string]string{}, typed: c.Typed == nil || *c.Typed, maxBytes: c.MaxValueBytes}
	if r.maxBytes == 0 {
		r.maxBytes = defaultMaxValueBytes
	}
	if r.maxBytes < -1 {
		return nil, fmt.Errorf("pii-redact: config: max_value_bytes: got %d; want -1 (no limit) or more than 0", r.maxBytes)
	}
	for _, h := range secretHeaders {
		r.keys["http.request.header."+h] = "header"
		r.keys["http.response.header."+h] = "header"
	}
	for k := range urlKeys {
		r.keys[k] = ""
	}
	for _, k := range c.Keys {
		if k == "" {
			return nil, fmt.Errorf("pii-redact: config: keys: empty key")
		}
		r.keys[k] = "key"
	}
	for k := range r.keys {
		r.keyLens[min(len(k), 255)] = true
	}
	names := make([]string, 0, len(c.Patterns))
	for n := range c.Patterns {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		re, err := regexp.Compile(c.Patterns[n])
		if err != nil {
			return nil, fmt.Errorf("pii-redact: config: patterns.%s: %v", n, err)
		}
		r.patterns = append(r.patterns, pattern{n, re})
	}
	return r, nil
}

func (r *redactor) marker(kind string) string {
	if r.typed {
		return "[REDACTED:" + kind + "]"
	}
	return "[REDACTED]"
}

// value returns the redacted value of attribute key, and whether it changed.
func (r *redactor) value(key string, v sdk.Value) (sdk.Value, bool) {
	var kind string
	var ok bool
	if r.keyLens[min(len(key), 255)] { // a call in a sandboxed Go guest is dear: skip most lookups
		kind, ok = r.keys[key]
	}
	if ok && kind != "" {
		switch v.Type() {
		case sdk.TypeStringSlice:
			ss := make([]string, len(v.AsStringSlice()))
			for i := range ss {
				ss[i] = r.marker(kind)
			}
			return sdk.StringSlice(ss), true
		default:
			return sdk.String(r.marker(kind)), true
		}
	}
	isURL := ok // kind == ""
	switch v.Type() {
	case sdk.TypeString, sdk.TypeOther:
		s, changed := r.text(isURL, v.AsString())
		if changed {
			return sdk.String(s), true
		}
	case sdk.TypeStringSlice:
		var out []string
		for i, e := range v.AsStringSlice() {
			s, changed := r.text(isURL, e)
			if changed && out == nil {
				out = append([]string(nil), v.AsStringSlice()...)
			}
			if out != nil {
				out[i] = s
			}
		}
		if out != nil {
			return sdk.StringSlice(out), true
		}
	}
	return v, false
}

// text redacts one string value; isURL: the value is a URL or query string.
func (r *redactor) text(isURL bool, s string) (string, bool) {
	orig := s
	if r.maxBytes > 0 && len(s) > r.maxBytes {
		cut := r.maxBytes
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		s = s[:cut] + truncatedMarker
	}
	if isURL && strings.IndexByte(s, '=') >= 0 {
		s = r.query(s)
	}
	// One pass decides which detectors can match at all.
	digits, f := classify(s)
	if f&(hasDot|hasJ) == hasDot|hasJ && strings.Contains(s, "eyJ") {
		s = jwtRE.ReplaceAllLiteralString(s, r.marker("jwt"))
	}
	if f&(hasB|hasSpace) == hasB|hasSpace && containsFold(s, "bearer") {
		s = bearerRE.ReplaceAllString(s, "${1} "+r.marker("bearer"))
	}
	if f&hasAt != 0 {
		s = r.emails(s)
	}
	if digits >= 13 {
		s = r.cards(s)
	}
	if f&hasDash != 0 && digits >= 9 {
		s = ssnRE.ReplaceAllStringFunc(s, func(m string) string {
			if validSSN(m) {
				return r.marker("ssn")
			}
			return m
		})
	}
	for _, p := range r.patterns {
		s = p.re.ReplaceAllLiteralString(s, r.marker(p.name))
	}
	return s, s != orig
}

// emails redacts email addresses: around each '@', a local part of
// letters, digits and ._%+- and a domain of dot-separated labels of letters,
// digits and '-' ending in a top-level domain of two letters or more. A
// scanner rather than a regular expression: it is linear in the value with
// a small constant, where a regexp on a large value overran the deadline.
func (r *redactor) emails(s string) string {
	var b strings.Builder
	last := 0
	for i := indexByte(s, '@'); i >= 0; {
		start := i
		for start > last && isLocal(s[start-1]) {
			start--
		}
		end := i + 1
		for end < len(s) && isDomain(s[end]) {
			end++
		}
		for end > i+1 && (s[end-1] == '.' || s[end-1] == '-') {
			end--
		}
		if start < i && validDomain(s[i+1:end]) {
			b.WriteString(s[last:start])
			b.WriteString(r.marker("email"))
			last = end
		}
		next := indexByte(s[i+1:], '@')
		if next < 0 {
			break
		}
		i += 1 + next
	}
	if last == 0 {
		return s
	}
	b.WriteString(s[last:])
	return b.String()
}

func isLocal(c byte) bool {
	return isAlnum(c) || c == '.' || c == '_' || c == '%' || c == '+' || c == '-'
}

func isDomain(c byte) bool { return isAlnum(c) || c == '.' || c == '-' }

// validDomain: at least two non-empty labels, the last of two letters or more.
func validDomain(d string) bool {
	dot := strings.LastIndexByte(d, '.')
	if dot <= 0 || len(d)-dot-1 < 2 || strings.Contains(d, "..") || d[0] == '.' || d[0] == '-' {
		return false
	}
	for i := dot + 1; i < len(d); i++ {
		if c := d[i]; !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z') {
			return false
		}
	}
	return true
}

// validSSN rejects numbers the SSA never issues (area 000, 666, 9xx; group
// 00; serial 0000), which are more likely other identifiers.
func validSSN(m string) bool {
	area, group, serial := m[0:3], m[4:6], m[7:11]
	return area != "000" && area != "666" && area[0] != '9' && group != "00" && serial != "0000"
}

// cards redacts runs of 13 to 19 digits, optionally grouped by single spaces
// or dashes, that pass the Luhn check.
func (r *redactor) cards(s string) string {
	var b strings.Builder
	last := 0
	for i := 0; i < len(s); {
		if !isDigit(s[i]) || (i > 0 && isAlnum(s[i-1])) {
			i++
			continue
		}
		// Extend a run of digits and single separators.
		j, n := i, 0
		end := i
		for j < len(s) {
			if isDigit(s[j]) {
				n++
				j++
				end = j
				continue
			}
			if (s[j] == ' ' || s[j] == '-') && j+1 < len(s) && isDigit(s[j+1]) && n < 19 {
				j++
				continue
			}
			break
		}
		if n >= 13 && n <= 19 && (end == len(s) || !isAlnum(s[end])) && luhn(s[i:end]) {
			b.WriteString(s[last:i])
			b.WriteString(r.marker("card"))
			last = end
		}
		i = max(end, i+1)
	}
	if last == 0 {
		return s
	}
	b.WriteString(s[last:])
	return b.String()
}

func luhn(s string) bool {
	sum, double := 0, false
	for i := len(s) - 1; i >= 0; i-- {
		if !isDigit(s[i]) {
			continue
		}
		d := int(s[i] - '0')
		if double {
			d *= 2
			if d > 9 {
				d -= 9
			}
		}
		sum += d
		double = !double
	}
	return sum%10 == 0
}

// query redacts the values of secret-like parameters in a URL or query
// string: names containing password, passwd, pwd, secret, token, or ending
// in key (key, api_key, apikey).
func (r *redactor) query(s string) string {
	q := s
	prefix := ""
	if i := strings.IndexByte(s, '?'); i >= 0 {
		prefix, q = s[:i+1], s[i+1:]
	} else if strings.Contains(s, "://") || strings.HasPrefix(s, "/") {
		return s // a URL without a query
	}
	suffix := ""
	if i := strings.IndexByte(q, '#'); i >= 0 {
		q, suffix = q[:i], q[i:]
	}
	parts := strings.Split(q, "&")
	changed := false
	for i, p := range parts {
		name, _, hasValue := strings.Cut(p, "=")
		if hasValue && secretParam(name) {
			parts[i] = name + "=" + r.marker("param")
			changed = true
		}
	}
	if !changed {
		return s
	}
	return prefix + strings.Join(parts, "&") + suffix
}

func secretParam(name string) bool {
	n := strings.ToLower(name)
	for _, w := range []string{"password", "passwd", "pwd", "secret", "token"} {
		if strings.Contains(n, w) {
			return true
		}
	}
	return strings.HasSuffix(n, "key")
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }
func isAlnum(c byte) bool {
	return isDigit(c) || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
}

// containsFold reports whether s contains the lower-case ASCII word w in any case.
func containsFold(s, w string) bool {
	for i := 0; i+len(w) <= len(s); i++ {
		if strings.EqualFold(s[i:i+len(w)], w) {
			return true
		}
	}
	return false
}
