package proxy

import (
	"bufio"
	"bytes"
	"io"
	"net/http"
	"reflect"
	"strings"
	"testing"
)

var responseSeeds = []string{
	"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Type: text/plain\r\nDate: Sat, 21 Nov 2026 13:00:00 GMT\r\n\r\nhello",
	"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n",
	"HTTP/1.1 200 OK\r\ncontent-length: 3\r\nx-dup: 1\r\nX-Dup: 2\r\nConnection: keep-alive, close\r\n\r\nabc",
	"HTTP/1.1 204 No Content\r\nContent-Length: 7\r\n\r\n",
	"HTTP/1.1 304 Not Modified\r\nEtag: \"x\"\r\nContent-Length: 9\r\n\r\n",
	"HTTP/1.1 200 OK\r\nPragma: no-cache\r\nContent-Length: 1\r\n\r\nz",
	"HTTP/1.1 599 \r\nContent-Length: 2\r\n\r\nab",
	"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort",
	"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
	"HTTP/1.1 200 OK\r\n\r\nclose-delimited",
	"HTTP/1.0 200 OK\r\nContent-Length: 1\r\n\r\nz",
	"HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
	"HTTP/1.1 200 OK\r\nX: a\r\n b\r\nContent-Length: 0\r\n\r\n",
	"HTTP/1.1 2x0 OK\r\nContent-Length: 0\r\n\r\n",
}

// The fast path takes a subset of the responses http.ReadResponse takes, and builds the same response and
// body from them, with or without a responseStore (one left dirty by an earlier response, to show that
// nothing of it carries over).
func FuzzReadResponseFast(f *testing.F) {
	for _, s := range responseSeeds {
		f.Add([]byte(s), false)
		f.Add([]byte(s), true)
	}
	dirty := func() *responseStore {
		st := new(responseStore)
		br := bufio.NewReader(strings.NewReader("HTTP/1.1 201 Made\r\nA: 1\r\nB: 2\r\nConnection: close\r\nContent-Length: 3\r\n\r\nabc"))
		br.Peek(1)
		if _, ok := readResponseFast(br, &http.Request{Method: http.MethodGet}, st); !ok {
			f.Fatal("the dirtying response was not taken")
		}
		return st
	}
	f.Fuzz(func(t *testing.T, data []byte, head bool) {
		req := &http.Request{Method: http.MethodGet}
		if head {
			req.Method = http.MethodHead
		}
		fast := func(st *responseStore) (*http.Response, bool) {
			br := bufio.NewReaderSize(bytes.NewReader(data), 4<<10)
			br.Peek(1)
			return readResponseFast(br, req, st)
		}
		got, ok := fast(nil)
		stored, storedOK := fast(dirty())
		if ok != storedOK {
			t.Fatalf("response %q: taken %v without a store, %v with one", data, ok, storedOK)
		}
		if !ok {
			return
		}
		want, err := http.ReadResponse(bufio.NewReader(bytes.NewReader(data)), req)
		if err != nil {
			t.Fatalf("the fast path took %q, http.ReadResponse refuses it: %v", data, err)
		}
		w := responseFields(want)
		if g := responseFields(got); !reflect.DeepEqual(g, w) {
			t.Fatalf("response %q:\nfast path    %#v\nReadResponse %#v", data, g, w)
		}
		if g := responseFields(stored); !reflect.DeepEqual(g, w) {
			t.Fatalf("response %q:\nfast path, stored %#v\nReadResponse      %#v", data, g, w)
		}
	})
}

// responseFields reads res's body and returns what the fast path must get right.
func responseFields(res *http.Response) []any {
	body, err := io.ReadAll(res.Body)
	return []any{res.Status, res.StatusCode, res.Proto, res.ProtoMajor, res.ProtoMinor, res.Header, res.ContentLength, res.Close,
		res.TransferEncoding, res.Trailer, res.Uncompressed, res.TLS, res.Body == http.NoBody, string(body), err}
}

func TestReadResponseFast_Seeds(t *testing.T) {
	var took []string
	for _, s := range responseSeeds {
		br := bufio.NewReader(strings.NewReader(s))
		br.Peek(1)
		if _, ok := readResponseFast(br, &http.Request{Method: http.MethodGet}, nil); ok {
			took = append(took, s[:strings.Index(s, "\r\n")])
		}
	}
	// The first eight are the fast path's; the others go to http.ReadResponse.
	if len(took) != 8 {
		t.Errorf("the fast path took %d of the seeds (%q); want 8", len(took), took)
	}
}

func BenchmarkReadResponse(b *testing.B) {
	raw := "HTTP/1.1 200 OK\r\nContent-Type: text/plain; charset=utf-8\r\nDate: Sat, 21 Nov 2026 13:00:00 GMT\r\n" +
		"Content-Length: 1024\r\nX-Correlation-Id: 5f0c6a1e-4a2b-4c1d-9e8f-0a1b2c3d4e5f\r\n\r\n" + strings.Repeat("x", 1024)
	req := &http.Request{Method: http.MethodGet}
	for _, fast := range []bool{true, false} {
		name := "http.ReadResponse"
		if fast {
			name = "fast"
		}
		b.Run(name, func(b *testing.B) {
			rd := strings.NewReader(raw)
			br := bufio.NewReaderSize(rd, 4<<10)
			buf := make([]byte, 2048)
			b.ReportAllocs()
			for b.Loop() {
				rd.Reset(raw)
				br.Reset(rd)
				br.Peek(1)
				var res *http.Response
				if fast {
					res, _ = readResponseFast(br, req, nil)
				} else {
					res, _ = http.ReadResponse(br, req)
				}
				for {
					if _, err := res.Body.Read(buf); err != nil {
						break
					}
				}
			}
		})
	}
}
