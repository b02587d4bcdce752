// Package h1head has the pieces of HTTP/1.1 message-head parsing (RFC 9112) that sidetrace's own request and
// response paths share. They accept a strict subset of what net/http accepts: what they refuse goes to
// net/http.
package h1head

import (
	"bytes"
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

// IsToken reports whether s is a token (RFC 9110 §5.6.2): a method or a field name.
func IsToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !httpguts.IsTokenRune(rune(s[i])) {
			return false
		}
	}
	return true
}

// ValidFieldValue accepts field-content (RFC 9110 §5.5): visible characters, obs-text, SP and HTAB.
func ValidFieldValue(v string) bool {
	for i := 0; i < len(v); i++ {
		if c := v[i]; (c < ' ' && c != '\t') || c == 0x7f {
			return false
		}
	}
	return true
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

// HasToken reports whether the comma-separated list v holds token, case-insensitively.
func HasToken(v, token string) bool {
	for v != "" {
		var t string
		t, v, _ = strings.Cut(v, ",")
		if strings.EqualFold(strings.Trim(t, " \t"), token) {
			return true
		}
	}
	return false
}
