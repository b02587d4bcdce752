package h1server

import (
	"net/http"
	"net/textproto"
	"net/url"
	"strconv"
	"strings"

	"golang.org/x/net/http/httpguts"
)

// headEnd finds the end of the request head in buf: the length of the head including its empty line, 0 when
// more bytes are needed, or -1 when the head is not one the fast path takes (a line not ending in CRLF, RFC
// 9112 §2.2, or a line folded onto the previous one, §5.2).
func headEnd(buf []byte) int {
	pos := 0
	for line := 0; ; line++ {
		i := indexByte(buf[pos:], '\n')
		if i < 0 {
			return 0
		}
		if i == 0 || buf[pos+i-1] != '\r' {
			return -1 // bare LF
		}
		if i == 1 {
			if line == 0 {
				return -1 // an empty line before the request line
			}
			return pos + 2
		}
		if line > 0 && (buf[pos] == ' ' || buf[pos] == '\t') {
			return -1 // obs-fold
		}
		pos += i + 1
	}
}

func indexByte(b []byte, c byte) int {
	for i, x := range b {
		if x == c {
			return i
		}
	}
	return -1
}

// request is a parsed head, its strings slices of one copy of the head.
type request struct {
	method, target string
	url            *url.URL
	host           string
	contentLength  int64
	close          bool // Connection: close
}

// parseHead parses head (ending in its empty line) into r and h, using vals as the backing array of the
// header values. It reports false for anything the fast path leaves to net/http: the caller then hands the
// connection over, and net/http accepts the request or answers 400 as it always does.
func parseHead(head string, r *request, h http.Header, vals []string) ([]string, bool) {
	line, rest, _ := strings.Cut(head, "\r\n")
	method, line, ok1 := strings.Cut(line, " ")
	target, proto, ok2 := strings.Cut(line, " ")
	if !ok1 || !ok2 || proto != "HTTP/1.1" || !isToken(method) || method == http.MethodConnect ||
		len(target) == 0 || target[0] != '/' {
		return vals, false
	}
	u, err := url.ParseRequestURI(target)
	if err != nil {
		return vals, false
	}
	*r = request{method: method, target: target, url: u, contentLength: 0}

	hosts := 0
	for {
		var l string
		l, rest, _ = strings.Cut(rest, "\r\n")
		if l == "" {
			break
		}
		k, v, ok := strings.Cut(l, ":")
		if !ok || !isToken(k) {
			return vals, false
		}
		v = strings.Trim(v, " \t")
		if !validFieldValue(v) {
			return vals, false
		}
		k = textproto.CanonicalMIMEHeaderKey(k)
		switch k {
		case "Host":
			hosts++
			r.host = v
			continue // net/http keeps Host out of the header map
		case "Transfer-Encoding", "Expect", "Upgrade", "Http2-Settings":
			return vals, false
		case "Content-Length":
			if _, dup := h[k]; dup {
				return vals, false
			}
			n, ok := parseContentLength(v)
			if !ok {
				return vals, false
			}
			r.contentLength = n
		case "Connection":
			if hasToken(v, "close") {
				r.close = true
			}
		}
		vals = append(vals, v)
		if prior, ok := h[k]; ok {
			h[k] = append(prior, v) // a repeated field keeps its own slice; the shared one stays intact
		} else {
			h[k] = vals[len(vals)-1 : len(vals) : len(vals)]
		}
	}
	if hosts != 1 || !httpguts.ValidHostHeader(r.host) {
		return vals, false
	}
	// RFC 7234 §5.4, as net/http does: Pragma: no-cache without Cache-Control means Cache-Control: no-cache.
	if p, ok := h["Pragma"]; ok && len(p) > 0 && p[0] == "no-cache" {
		if _, ok := h["Cache-Control"]; !ok {
			h["Cache-Control"] = []string{"no-cache"}
		}
	}
	return vals, true
}

// isToken reports whether s is a token (RFC 9110 §5.6.2): a method or a field name.
func isToken(s string) bool {
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

// validFieldValue accepts field-content (RFC 9110 §5.5): visible characters, obs-text, SP and HTAB.
func validFieldValue(v string) bool {
	for i := 0; i < len(v); i++ {
		if c := v[i]; (c < ' ' && c != '\t') || c == 0x7f {
			return false
		}
	}
	return true
}

// parseContentLength accepts 1*DIGIT (RFC 9110 §8.6) that fits in an int64.
func parseContentLength(v string) (int64, bool) {
	if v == "" {
		return 0, false
	}
	for i := 0; i < len(v); i++ {
		if v[i] < '0' || v[i] > '9' {
			return 0, false
		}
	}
	n, err := strconv.ParseInt(v, 10, 64)
	return n, err == nil
}

// hasToken reports whether the comma-separated list v holds token, case-insensitively.
func hasToken(v, token string) bool {
	for v != "" {
		var t string
		t, v, _ = strings.Cut(v, ",")
		if strings.EqualFold(strings.Trim(t, " \t"), token) {
			return true
		}
	}
	return false
}
