// Package h1head has the pieces of HTTP/1.1 message-head parsing (RFC 9112) that sidetrace's own request and
// response paths share. They accept a strict subset of what net/http accepts: what they refuse goes to
// net/http.
package h1head

import (
	"bytes"
	"net/http"
	"net/textproto"
	"strconv"
	"strings"

	"golang.org/x/net/http/httpguts"
)

// HeadEnd finds the end of a message head in buf: the length of the head including its empty line, 0 when
// more bytes are needed, or -1 when the head is not one the fast path takes (a line not ending in CRLF, RFC
// 9112 §2.2, or a line folded onto the previous one, §5.2).
func HeadEnd(buf []byte) int {
	pos := 0
	for line := 0; ; line++ {
		i := bytes.IndexByte(buf[pos:], '\n')
		if i < 0 {
			return 0
		}
		if i == 0 || buf[pos+i-1] != '\r' {
			return -1 // bare LF
		}
		if i == 1 {
			if line == 0 {
				return -1 // an empty line before the start line
			}
			return pos + 2
		}
		if line > 0 && (buf[pos] == ' ' || buf[pos] == '\t') {
			return -1 // obs-fold
		}
		pos += i + 1
	}
}

// ParseContentLength accepts 1*DIGIT (RFC 9110 §8.6) that fits in an int64.
func ParseContentLength(v string) (int64, bool) {
	if v == "" {
		return 0, false
	}
	for i := 0; i < len(v); i++ {
		if v[i] < '0' || v[i] > '9' {
			return 0, false
		}
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		return 0, false
	}
	return n, true
}

// NextField takes the next field line from rest, the lines of a head after its start line: the field's
// canonical name, its value without surrounding whitespace, and the lines after it. done is true at the empty
// line that ends the head; ok is false for a line net/http should judge (a name that is not a token, a value
// with control characters).
func NextField(rest string) (k, v, after string, done, ok bool) {
	line, after, _ := strings.Cut(rest, "\r\n")
	if line == "" {
		return "", "", after, true, true
	}
	k, v, found := strings.Cut(line, ":")
	if !found || !httpguts.ValidHeaderFieldName(k) { // a token (RFC 9110 §5.6.2)
		return "", "", after, false, false
	}
	v = TrimOWS(v)
	if !httpguts.ValidHeaderFieldValue(v) { // field-content: no control characters but HTAB
		return "", "", after, false, false
	}
	return textproto.CanonicalMIMEHeaderKey(k), v, after, false, true
}

// TrimOWS removes the optional whitespace (spaces and tabs, RFC 9110 §5.6.3) around a field value or list
// element: what strings.Trim(v, " \t") does, without building a set of the two bytes per call.
func TrimOWS(v string) string {
	for v != "" && (v[0] == ' ' || v[0] == '\t') {
		v = v[1:]
	}
	for v != "" && (v[len(v)-1] == ' ' || v[len(v)-1] == '\t') {
		v = v[:len(v)-1]
	}
	return v
}

// Add adds v to h under k, keeping single values in vals, one backing array for all of them; a repeated field
// gets a slice of its own, so the shared one stays intact. It returns vals.
func Add(h http.Header, vals []string, k, v string) []string {
	vals = append(vals, v)
	if prior, ok := h[k]; ok {
		h[k] = append(prior, v)
	} else {
		h[k] = vals[len(vals)-1 : len(vals) : len(vals)]
	}
	return vals
}

// FixPragma does what net/http does for requests and responses (RFC 7234 §5.4): Pragma: no-cache without
// Cache-Control means Cache-Control: no-cache.
func FixPragma(h http.Header) {
	if p, ok := h["Pragma"]; ok && len(p) > 0 && p[0] == "no-cache" {
		if _, ok := h["Cache-Control"]; !ok {
			h["Cache-Control"] = []string{"no-cache"}
		}
	}
}
