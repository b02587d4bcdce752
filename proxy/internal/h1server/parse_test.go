package h1server

import (
	"bufio"
	"bytes"
	"net/http"
	"net/url"
	"reflect"
	"strings"
	"testing"

	"golang.org/x/net/http/httpguts"

	"github.com/sidetrace/sidetrace/proxy/internal/h1head"
)

var parseSeeds = []string{
	"GET / HTTP/1.1\r\nHost: a\r\n\r\n",
	"GET /p/a%2Fb?q=1&r=%20 HTTP/1.1\r\nHost: example.com:8080\r\nUser-Agent: t\r\nAccept: */*\r\n\r\n",
	"POST /submit HTTP/1.1\r\nHost: a\r\nContent-Length: 12\r\nContent-Type: text/plain\r\n\r\n",
	"GET / HTTP/1.1\r\nhost: a\r\nx-lower: v\r\nX-Dup: 1\r\nx-dup: 2\r\n\r\n",
	"GET / HTTP/1.1\r\nHost: a\r\nPragma: no-cache\r\n\r\n",
	"GET / HTTP/1.1\r\nHost: a\r\nConnection: keep-alive, close\r\n\r\n",
	"GET / HTTP/1.1\r\nHost: a\r\nX-Empty:\r\nX-Tab:\tv\t\r\n\r\n",
	"GET / HTTP/1.1\r\nHost: a\r\nTraceparent: 00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01\r\nTracestate: a=b\r\n\r\n",
	"GET / HTTP/1.1\r\nHost: a\r\nX-Obs: caf\xc3\xa9\r\n\r\n",
	"GET //a/b?x=1? HTTP/1.1\r\nHost: a\r\n\r\n",
	"GET /a? HTTP/1.1\r\nHost: a\r\n\r\n",
	"GET /a(b)!*'c HTTP/1.1\r\nHost: a\r\n\r\n",
	"GET /caf\xc3\xa9?q=\xc3\xa9#f HTTP/1.1\r\nHost: a\r\n\r\n",
	"GET http://a/ HTTP/1.1\r\nHost: a\r\n\r\n",
	"GET / HTTP/1.0\r\nHost: a\r\n\r\n",
	"GET / HTTP/1.1\r\nHost: a\r\nX: b\r\n c\r\n\r\n",
	"GET / HTTP/1.1\nHost: a\n\n",
	"GET / HTTP/1.1\r\nHost: a\r\nContent-Length: +1\r\n\r\n",
	"GET / HTTP/1.1\r\nHost: a b\r\n\r\n",
	"G@T / HTTP/1.1\r\nHost: a\r\n\r\n",
	"GET /\x00 HTTP/1.1\r\nHost: a\r\n\r\n",
	"GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 99999999999999999999\r\n\r\n",
	"GET /a%zz HTTP/1.1\r\nHost: a\r\n\r\n",
}

// The fast path's parser takes a strict subset of what net/http takes, and builds the same request from it.
func FuzzParseHead(f *testing.F) {
	for _, s := range parseSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		n := h1head.HeadEnd(data)
		if n <= 0 {
			return
		}
		var r request
		h := http.Header{}
		if _, ok := parseHead(string(data[:n]), &r, h, nil, new(url.URL)); !ok {
			return
		}
		want, err := http.ReadRequest(bufio.NewReader(bytes.NewReader(data[:n])))
		if err != nil {
			t.Fatalf("the fast path took %q, net/http refuses it: %v", data[:n], err)
		}
		// What net/http's server checks beyond ReadRequest (server.go readRequest).
		for k, vs := range want.Header {
			if !httpguts.ValidHeaderFieldName(k) {
				t.Fatalf("the fast path took field name %q, net/http's server refuses it", k)
			}
			for _, v := range vs {
				if !httpguts.ValidHeaderFieldValue(v) {
					t.Fatalf("the fast path took field value %q, net/http's server refuses it", v)
				}
			}
		}
		delete(want.Header, "Host")
		got := []any{r.method, r.target, *r.url, r.host, h, r.contentLength, r.close}
		exp := []any{want.Method, want.RequestURI, *want.URL, want.Host, want.Header, want.ContentLength, want.Close}
		if !reflect.DeepEqual(got, exp) {
			t.Fatalf("head %q:\nfast path %#v\nnet/http  %#v", data[:n], got, exp)
		}
	})
}

func TestParseHead_Seeds(t *testing.T) {
	accepted := 0
	for _, s := range parseSeeds {
		n := h1head.HeadEnd([]byte(s))
		var r request
		if n > 0 {
			if _, ok := parseHead(s[:n], &r, http.Header{}, nil, new(url.URL)); ok {
				accepted++
			}
		}
	}
	// The first thirteen are the fast path's; the others go to net/http (the fuzz target checks the agreement).
	if accepted != 13 {
		t.Errorf("the fast path took %d of the seeds; want 13", accepted)
	}
}

// parseTarget splits the common target in place and gives the same URL as url.ParseRequestURI for every
// target, plain or not.
func TestParseTarget(t *testing.T) {
	for _, tc := range []struct {
		target string
		plain  bool // split in place, without url.ParseRequestURI
	}{
		{"/", true},
		{"/api/v1/items", true},
		{"/a/b?id=42&x=%20y", true},
		{"/a?", true},
		{"/a??", true},
		{"/a?b?c", true},
		{"//host/path", true},
		{"/a-b_c.d~e$f&g+h,i/j:k;l=m@n", true},
		{"/?q=caf\xc3\xa9&r=\"<>\"#frag", true},
		{"/a%2Fb", false},
		{"/a%zz", false},
		{"/a b", false},
		{"/caf\xc3\xa9", false},
		{"/a!b*c'd(e)", false},
		{"/a#frag", false},
		{"/a\"b", false},
		{"/a?b\x7f", false},
		{"/a?b\x01", false},
		{"/a\x00", false},
	} {
		var u url.URL
		ok := parseTarget(tc.target, &u)
		want, err := url.ParseRequestURI(tc.target)
		if ok != (err == nil) {
			t.Errorf("%q: parseTarget %v; url.ParseRequestURI error %v", tc.target, ok, err)
			continue
		}
		if ok && !reflect.DeepEqual(u, *want) {
			t.Errorf("%q:\n got %#v\nwant %#v", tc.target, u, *want)
		}
		if ok && tc.plain {
			if n := testing.AllocsPerRun(10, func() { parseTarget(tc.target, &u) }); n != 0 {
				t.Errorf("%q: %v allocations; want none", tc.target, n)
			}
		}
	}
}

func BenchmarkParseHead(b *testing.B) {
	head := "GET /api/v1/items?id=42 HTTP/1.1\r\nHost: service.local:8080\r\nUser-Agent: Go-http-client/1.1\r\n" +
		"Accept: application/json\r\nTraceparent: 00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01\r\n" +
		"X-Correlation-Id: 5f0c6a1e-4a2b-4c1d-9e8f-0a1b2c3d4e5f\r\nAccept-Encoding: gzip\r\n\r\n"
	b.Run("fast", func(b *testing.B) {
		h := http.Header{}
		var vals []string
		var u url.URL
		b.ReportAllocs()
		for b.Loop() {
			var r request
			clear(h)
			vals = vals[:0]
			s := string([]byte(head)) // the copy of the head the server makes
			vals, _ = parseHead(s, &r, h, vals, &u)
		}
	})
	b.Run("net/http", func(b *testing.B) {
		b.ReportAllocs()
		rd := strings.NewReader(head)
		br := bufio.NewReader(rd)
		for b.Loop() {
			rd.Reset(head)
			br.Reset(rd)
			_, _ = http.ReadRequest(br)
		}
	})
}
