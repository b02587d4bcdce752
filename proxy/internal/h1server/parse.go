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
// header values and u for the request target (r.url is u). It reports false for anything the fast path
// leaves to net/http: the caller then hands the connection over, and net/http accepts the request or
// answers 400 as it always does.
func parseHead(head string, r *request, h http.Header, vals []string, u *url.URL) ([]string, bool) {
	line, rest, _ := strings.Cut(head, "\r\n")
	method, line, ok1 := strings.Cut(line, " ")
	target, proto, ok2 := strings.Cut(line, " ")
	// A method is a token, as a field name is (net/http's validMethod).
	if !ok1 || !ok2 || proto != "HTTP/1.1" || !httpguts.ValidHeaderFieldName(method) || method == http.MethodConnect ||
		len(target) == 0 || target[0] != '/' {
		return vals, false
	}
	if !parseTarget(target, u) {
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

// parseTarget parses an origin-form request target (it starts with '/') into u as url.ParseRequestURI does.
// The common target, a path of characters that need no escaping and a query without control characters,
// is split in place; url.ParseRequestURI allocates a URL and unescapes and re-escapes the path to decide
// RawPath. Anything else goes to it. It reports false where url.ParseRequestURI fails.
func parseTarget(target string, u *url.URL) bool {
	path, query, force := target, "", false
	if i := strings.IndexByte(target, '?'); i >= 0 {
		// url.ParseRequestURI: a lone '?' at the end is ForceQuery; otherwise the query is what follows the
		// first '?', verbatim.
		path, query, force = target[:i], target[i+1:], i == len(target)-1
	}
	for i := 0; i < len(path); i++ {
		if !plainPath[path[i]] {
			return slowTarget(target, u)
		}
	}
	for i := 0; i < len(query); i++ {
		if c := query[i]; c < ' ' || c == 0x7f {
			return slowTarget(target, u)
		}
	}
	*u = url.URL{Path: path, RawQuery: query, ForceQuery: force}
	return true
}

func slowTarget(target string, u *url.URL) bool {
	p, err := url.ParseRequestURI(target)
	if err != nil {
		return false
	}
	*u = *p
	return true
}

// plainPath holds the bytes a path may have for its unescaped form to be itself, with no RawPath: those
// url.URL's path escaping leaves alone (RFC 3986 unreserved characters and the sub-delimiters and ':', '@'
// and '/' that Go keeps), and not '%'.
var plainPath = func() (t [256]bool) {
	for c := 'a'; c <= 'z'; c++ {
		t[c], t[c-'a'+'A'] = true, true
	}
	for c := '0'; c <= '9'; c++ {
		t[c] = true
	}
	for _, c := range "-_.~$&+,/:;=@" {
		t[c] = true
	}
	return t
}()
