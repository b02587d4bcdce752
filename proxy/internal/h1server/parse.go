package h1server

import (
	"net/http"
	"net/url"
	"strings"

	"golang.org/x/net/http/httpguts"

	"github.com/sidetrace/sidetrace/proxy/internal/h1head"
)

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
	// A method is a token, as a field name is (net/http's validMethod).
	if !ok1 || !ok2 || proto != "HTTP/1.1" || !httpguts.ValidHeaderFieldName(method) || method == http.MethodConnect ||
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
		k, v, after, done, ok := h1head.NextField(rest)
		if done {
			break
		}
		if !ok {
			return vals, false
		}
		rest = after
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
			n, ok := h1head.ParseContentLength(v)
			if !ok {
				return vals, false
			}
			r.contentLength = n
		case "Connection":
			if httpguts.HeaderValuesContainsToken([]string{v}, "close") {
				r.close = true
			}
		}
		vals = h1head.Add(h, vals, k, v)
	}
	if hosts != 1 || !httpguts.ValidHostHeader(r.host) {
		return vals, false
	}
	h1head.FixPragma(h)
	return vals, true
}
