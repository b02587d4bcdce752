package h1server

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httptrace"
	"net/textproto"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
	"golang.org/x/net/http2"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// pathHandler says which server answered: "fast" (this package's writer) or "fallback" (net/http's).
func pathHandler(next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		path := "fallback"
		if _, ok := w.(*response); ok {
			path = "fast"
		}
		w.Header().Set("X-Path", path)
		next(w, r)
	}
}

// start serves h on a loopback port with a fallback of the same handler; the server is shut down at the end.
func start(t *testing.T, h http.Handler, tune func(*Server)) (*Server, string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var protos http.Protocols
	protos.SetHTTP1(true)
	protos.SetUnencryptedHTTP2(true)
	s := &Server{Handler: h, Fallback: &http.Server{Handler: h, Protocols: &protos}, ReadHeaderTimeout: 5 * time.Second}
	if tune != nil {
		tune(s)
	}
	served := make(chan error, 1)
	go func() { served <- s.Serve(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := s.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
		if err := <-served; !errors.Is(err, ErrServerClosed) {
			t.Errorf("Serve returned %v; want ErrServerClosed", err)
		}
	})
	return s, ln.Addr().String()
}

func client(t *testing.T) *http.Client {
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr}
}

func TestFastPath_KeepAliveRequestsShareAConnection(t *testing.T) {
	_, addr := start(t, pathHandler(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "%s %s %s q=%s ua=%s", r.Method, r.Host, r.URL.Path, r.URL.Query().Get("q"), r.Header.Get("User-Agent"))
	}), nil)
	c := client(t)
	for i := range 3 {
		reused := false
		ctx := httptrace.WithClientTrace(context.Background(), &httptrace.ClientTrace{
			GotConn: func(info httptrace.GotConnInfo) { reused = info.Reused },
		})
		req, _ := http.NewRequestWithContext(ctx, "GET", "http://"+addr+"/a%2Fb/c?q=1", nil)
		req.Header.Set("User-Agent", "t")
		res, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		want := "GET " + addr + " /a/b/c q=1 ua=t"
		if got := string(body); got != want {
			t.Errorf("body %q; want %q", got, want)
		}
		if got := res.Header.Get("X-Path"); got != "fast" {
			t.Errorf("request %d served by %q; want fast", i, got)
		}
		if res.ContentLength != int64(len(want)) || res.Header.Get("Date") == "" || res.Header.Get("Content-Type") != "text/plain; charset=utf-8" {
			t.Errorf("response head %v (length %d); want a Content-Length, a Date and a sniffed Content-Type", res.Header, res.ContentLength)
		}
		if i > 0 && !reused {
			t.Errorf("request %d used a new connection; want the kept-alive one", i)
		}
	}
}

// dial connects to addr with a 10s deadline; the connection is closed at the end of the test.
func dial(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(10 * time.Second))
	return c
}

// rawExchange writes req on a new connection and reads one response.
func rawExchange(t *testing.T, addr, req string) (*http.Response, string) {
	t.Helper()
	c := dial(t, addr)
	if _, err := io.WriteString(c, req); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(c)
	for {
		res, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("reading the response to %q: %v", req, err)
		}
		if res.StatusCode < 200 {
			continue // 100 Continue
		}
		body, _ := io.ReadAll(res.Body)
		return res, string(body)
	}
}

func TestHandOver_WhatTheFastPathDoesNotTake(t *testing.T) {
	_, addr := start(t, pathHandler(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		fmt.Fprintf(w, "%s %s %q", r.Method, r.Proto, b)
	}), nil)
	big := strings.Repeat("x", bufSize)
	tests := []struct {
		name, req  string
		wantStatus int
		wantPath   string // "" when net/http answers before any handler
	}{
		{"chunked body", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n", 200, "fallback"},
		{"expect continue", "POST / HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\nhi", 200, "fallback"},
		{"upgrade", "GET / HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n", 200, "fallback"},
		{"h2c upgrade offer", "GET / HTTP/1.1\r\nHost: a\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQAoAAAAAIAAAAA\r\n\r\n", 200, "fallback"},
		{"HTTP/1.0", "GET / HTTP/1.0\r\nHost: a\r\n\r\n", 200, "fallback"},
		{"absolute form", "GET http://a/ HTTP/1.1\r\nHost: a\r\n\r\n", 200, "fallback"},
		{"asterisk form", "OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n", 200, ""}, // net/http answers it itself
		{"bare LF", "GET / HTTP/1.1\nHost: a\n\n", 200, "fallback"},
		{"head beyond the buffer", "GET / HTTP/1.1\r\nHost: a\r\nX-Big: " + big + "\r\n\r\n", 200, "fallback"},
		{"duplicate Content-Length", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\nhi", 200, "fallback"},
		{"obs-fold", "GET / HTTP/1.1\r\nHost: a\r\nX-A: b\r\n c\r\n\r\n", 200, "fallback"},
		{"space in a field name", "GET / HTTP/1.1\r\nHost: a\r\nBad Name: b\r\n\r\n", 400, ""},
		{"no Host", "GET / HTTP/1.1\r\nX-A: b\r\n\r\n", 400, ""},
		{"two Hosts", "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400, ""},
		{"control byte in a value", "GET / HTTP/1.1\r\nHost: a\r\nX-A: b\x01c\r\n\r\n", 400, ""},
		{"bad Content-Length", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n\r\n", 400, ""},
		{"bad version", "GET / HTTP/1.x\r\nHost: a\r\n\r\n", 400, ""},
		{"leading empty line", "\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n", 400, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, body := rawExchange(t, addr, tt.req)
			if res.StatusCode != tt.wantStatus || res.Header.Get("X-Path") != tt.wantPath {
				t.Errorf("got %d from %q (%q); want %d from %q", res.StatusCode, res.Header.Get("X-Path"), body, tt.wantStatus, tt.wantPath)
			}
		})
	}
}

func TestHandOver_H2CPriorKnowledge(t *testing.T) {
	_, addr := start(t, pathHandler(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, r.Proto) }), nil)
	tr := &http2.Transport{AllowHTTP: true, DialTLSContext: func(ctx context.Context, network, addr string, _ *tls.Config) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, network, addr)
	}}
	defer tr.CloseIdleConnections()
	res, err := (&http.Client{Transport: tr}).Get("http://" + addr + "/")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if string(body) != "HTTP/2.0" || res.Header.Get("X-Path") != "fallback" {
		t.Errorf("got %q from %q; want HTTP/2.0 from the fallback", body, res.Header.Get("X-Path"))
	}
}

// A connection that starts on the fast path and then sends a request it does not take is handed over in the
// middle, with the bytes already read, and net/http serves the rest of it.
func TestHandOver_MidConnectionKeepsPipelinedBytes(t *testing.T) {
	_, addr := start(t, pathHandler(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		fmt.Fprintf(w, "%s %s", r.URL.Path, b)
	}), nil)
	c := dial(t, addr)
	// Three requests in one write: fast, then chunked (handed over), then a plain one net/http now serves.
	io.WriteString(c, "GET /1 HTTP/1.1\r\nHost: a\r\n\r\n"+
		"POST /2 HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhi\r\n0\r\n\r\n"+
		"GET /3 HTTP/1.1\r\nHost: a\r\n\r\n")
	br := bufio.NewReader(c)
	want := []struct{ body, path string }{{"/1 ", "fast"}, {"/2 hi", "fallback"}, {"/3 ", "fallback"}}
	for _, w := range want {
		res, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(res.Body)
		if string(body) != w.body || res.Header.Get("X-Path") != w.path {
			t.Errorf("got %q from %q; want %q from %q", body, res.Header.Get("X-Path"), w.body, w.path)
		}
	}
}

func TestFastPath_PipelinedRequestsAnsweredInOrder(t *testing.T) {
	_, addr := start(t, pathHandler(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, r.URL.Path) }), nil)
	c := dial(t, addr)
	var reqs strings.Builder
	for i := range 20 {
		fmt.Fprintf(&reqs, "GET /%d HTTP/1.1\r\nHost: a\r\n\r\n", i)
	}
	io.WriteString(c, reqs.String())
	br := bufio.NewReader(c)
	for i := range 20 {
		res, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(res.Body)
		if want := fmt.Sprintf("/%d", i); string(body) != want || res.Header.Get("X-Path") != "fast" {
			t.Errorf("response %d: %q from %q; want %q from fast", i, body, res.Header.Get("X-Path"), want)
		}
	}
}

// The fast path's responses are compared with net/http's for the same handler: status, fields (but Date and
// X-Path), framing, body and trailers.
func TestFastPath_ResponsesMatchNetHTTP(t *testing.T) {
	handlers := map[string]http.HandlerFunc{
		"declared length": func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Length", "5")
			io.WriteString(w, "hello")
		},
		"small undeclared": func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "<html><body>hi</body></html>") },
		"large undeclared": func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/octet-stream")
			w.Write(bytes.Repeat([]byte("z"), 5000))
		},
		"flushed": func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/event-stream")
			io.WriteString(w, "data: 1\n\n")
			w.(http.Flusher).Flush()
			io.WriteString(w, "data: 2\n\n")
		},
		"declared trailers": func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Trailer", "X-Sum, X-Count")
			w.Header().Set("Content-Type", "text/plain")
			io.WriteString(w, "body")
			w.Header().Set("X-Sum", "42")
			w.Header().Set("X-Count", "1")
		},
		"prefixed trailer": func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/plain")
			io.WriteString(w, "body")
			w.Header().Set(http.TrailerPrefix+"X-Late", "yes")
		},
		"empty": func(w http.ResponseWriter, r *http.Request) {},
		"no content": func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("X-A", "b")
			w.WriteHeader(http.StatusNoContent)
		},
		"not modified": func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Etag", `"x"`)
			w.WriteHeader(http.StatusNotModified)
		},
		"error status":   func(w http.ResponseWriter, r *http.Request) { http.Error(w, "nope", http.StatusBadGateway) },
		"unknown status": func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(599) },
		"newline in a value": func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("X-Split", "a\r\nInjected: yes")
			w.Header()["Bad Name"] = []string{"dropped"}
		},
		"connection close": func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Connection", "close")
			io.WriteString(w, "bye")
		},
		"short of its length": func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Length", "10")
			io.WriteString(w, "short")
		},
	}
	for name, h := range handlers {
		for _, method := range []string{"GET", "HEAD"} {
			t.Run(name+" "+method, func(t *testing.T) {
				ref := httptest.NewServer(h)
				defer ref.Close()
				_, addr := start(t, h, nil)
				req := method + " /x HTTP/1.1\r\nHost: a\r\n\r\n"
				want := rawResponse(t, ref.Listener.Addr().String(), req, method)
				got := rawResponse(t, addr, req, method)
				if got != want {
					t.Errorf("fast path:\n%s\nnet/http:\n%s", got, want)
				}
			})
		}
	}
}

// rawResponse returns a canonical text of the response to req: status, sorted fields but Date, body, and
// trailers; "closed" when the server ended the connection after it.
func rawResponse(t *testing.T, addr, req, method string) string {
	t.Helper()
	c := dial(t, addr)
	io.WriteString(c, req)
	br := bufio.NewReader(c)
	res, err := http.ReadResponse(br, &http.Request{Method: method})
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(res.Body)
	res.Header.Del("Date")
	var b strings.Builder
	fmt.Fprintf(&b, "%s length=%d te=%v close=%v body=%q err=%v\n", res.Status, res.ContentLength, res.TransferEncoding, res.Close, body, err)
	res.Header.Write(&b)
	fmt.Fprintf(&b, "trailer: %v\n", res.Trailer)
	return b.String()
}

func TestFastPath_InformationalResponsesGoFirst(t *testing.T) {
	_, addr := start(t, pathHandler(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Link", "</a.css>; rel=preload")
		w.WriteHeader(http.StatusEarlyHints)
		clear(w.Header())
		io.WriteString(w, "final")
	}), nil)
	var hints []string
	ctx := httptrace.WithClientTrace(context.Background(), &httptrace.ClientTrace{
		Got1xxResponse: func(code int, h textproto.MIMEHeader) error {
			hints = append(hints, fmt.Sprintf("%d %s", code, h.Get("Link")))
			return nil
		},
	})
	req, _ := http.NewRequestWithContext(ctx, "GET", "http://"+addr+"/", nil)
	res, err := client(t).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if len(hints) != 1 || hints[0] != "103 </a.css>; rel=preload" || string(body) != "final" || res.Header.Get("Link") != "" {
		t.Errorf("1xx %q, body %q, final Link %q; want one 103 with the Link, then the final response without it", hints, body, res.Header.Get("Link"))
	}
}

func TestFastPath_RequestBodies(t *testing.T) {
	_, addr := start(t, pathHandler(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/read" {
			b, err := io.ReadAll(r.Body)
			fmt.Fprintf(w, "%d %d %v", len(b), r.ContentLength, err)
			return
		}
		io.WriteString(w, "unread")
	}), nil)
	c := dial(t, addr)
	br := bufio.NewReader(c)
	// Larger than the read buffer, so read from the connection too; an unread one is discarded and the
	// connection serves the next request; beyond maxDiscard it ends, gracefully: the response arrives whole.
	small, large := strings.Repeat("b", 10000), strings.Repeat("L", maxDiscard+1)
	for _, step := range []struct{ path, body string }{{"/read", small}, {"/unread", small}, {"/read", small}, {"/unread", large}} {
		fmt.Fprintf(c, "POST %s HTTP/1.1\r\nHost: a\r\nContent-Length: %d\r\n\r\n%s", step.path, len(step.body), step.body)
		res, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("%s of %d bytes: %v", step.path, len(step.body), err)
		}
		got, _ := io.ReadAll(res.Body)
		want := fmt.Sprintf("%d %d <nil>", len(step.body), len(step.body))
		if step.path == "/unread" {
			want = "unread"
		}
		if string(got) != want || res.Header.Get("X-Path") != "fast" {
			t.Errorf("%s: %q from %q; want %q from fast", step.path, got, res.Header.Get("X-Path"), want)
		}
	}
	if _, err := br.ReadByte(); err != io.EOF {
		t.Errorf("after an unread body beyond %d bytes the connection gave %v; want EOF", maxDiscard, err)
	}
}

// waitCancelled waits for the request's context to be cancelled and returns its cause, or an error after 10s.
func waitCancelled(r *http.Request) error {
	select {
	case <-r.Context().Done():
		return context.Cause(r.Context())
	case <-time.After(10 * time.Second):
		return errors.New("the context was not cancelled within 10s of the client leaving")
	}
}

func TestFastPath_ClientGoneCancelsTheRequestContext(t *testing.T) {
	cancelled := make(chan error, 1)
	_, addr := start(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		cancelled <- waitCancelled(r)
	}), nil)
	c := dial(t, addr)
	io.WriteString(c, "GET / HTTP/1.1\r\nHost: a\r\n\r\n")
	time.Sleep(20 * time.Millisecond) // past WatchAfter, so the watch read is the one noticing
	c.Close()
	if err := <-cancelled; !errors.Is(err, context.Canceled) {
		t.Error(err)
	}
}

// The same on a keep-alive connection, whether its next request comes while the scanner still lists it from
// the one before or after the scanner let it go.
func TestFastPath_ClientGoneCancelsALaterRequest(t *testing.T) {
	cancelled := make(chan error, 1)
	_, addr := start(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/wait" {
			io.WriteString(w, "ok")
			return
		}
		cancelled <- waitCancelled(r)
	}), nil)
	for _, pause := range []time.Duration{0, 30 * time.Millisecond} {
		c := dial(t, addr)
		br := bufio.NewReader(c)
		for range 3 {
			io.WriteString(c, "GET / HTTP/1.1\r\nHost: a\r\n\r\n")
			res, err := http.ReadResponse(br, nil)
			if err != nil {
				t.Fatal(err)
			}
			io.Copy(io.Discard, res.Body)
			res.Body.Close()
		}
		time.Sleep(pause) // 0: still listed from the requests before; 30ms: several ticks later, let go
		io.WriteString(c, "GET /wait HTTP/1.1\r\nHost: a\r\n\r\n")
		time.Sleep(20 * time.Millisecond)
		c.Close()
		if err := <-cancelled; !errors.Is(err, context.Canceled) {
			t.Errorf("pause %v: %v", pause, err)
		}
	}
}

// AbortOnCancel: a connection the handler waits on is unblocked when the client leaves, and ClearAbort tells
// whether that happened.
func TestFastPath_AbortOnCancel(t *testing.T) {
	// A silent peer for the handler to wait on.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var peers sync.WaitGroup
	peers.Add(1)
	go func() {
		defer peers.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			peers.Add(1)
			go func() { defer peers.Done(); io.Copy(io.Discard, c); c.Close() }()
		}
	}()
	defer peers.Wait()
	defer ln.Close()

	type result struct {
		readErr error
		intact  bool
	}
	results := make(chan result, 1)
	_, addr := start(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		up, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			results <- result{readErr: err}
			return
		}
		defer up.Close()
		ab := w.(interface {
			AbortOnCancel(Deadliner) bool
			ClearAbort() bool
		})
		if !ab.AbortOnCancel(up) {
			results <- result{readErr: errors.New("AbortOnCancel refused a live request")}
			return
		}
		if r.URL.Path == "/quick" {
			results <- result{intact: ab.ClearAbort()}
			return
		}
		up.SetReadDeadline(time.Now().Add(10 * time.Second))
		_, err = up.Read(make([]byte, 1))
		results <- result{readErr: err, intact: ab.ClearAbort()}
	}), nil)

	c := dial(t, addr)
	io.WriteString(c, "GET /quick HTTP/1.1\r\nHost: a\r\n\r\n")
	if r := <-results; !r.intact || r.readErr != nil {
		t.Errorf("without cancellation: ClearAbort %v (want true), %v", r.intact, r.readErr)
	}
	io.WriteString(c, "GET /wait HTTP/1.1\r\nHost: a\r\n\r\n")
	time.Sleep(20 * time.Millisecond) // past WatchAfter, so the watch read is the one noticing
	c.Close()
	var r result
	select {
	case r = <-results:
	case <-time.After(5 * time.Second): // the handler's own deadline is 10s
		t.Fatal("the handler's read was not unblocked after the client left")
	}
	var ne net.Error
	if !errors.As(r.readErr, &ne) || !ne.Timeout() || r.intact {
		t.Errorf("client gone: read gave %v, ClearAbort %v; want a timeout and false", r.readErr, r.intact)
	}
}

// UseHeader sends the given map as the response's header, and is refused once Header's map has a field.
func TestFastPath_UseHeader(t *testing.T) {
	_, addr := start(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u := w.(interface{ UseHeader(http.Header) bool })
		if r.URL.Path == "/refused" {
			w.Header().Set("X-Own", "1")
			if u.UseHeader(http.Header{"X-Given": {"1"}}) {
				t.Error("UseHeader took a map after a field was set")
			}
		} else if h := (http.Header{"X-Given": {"a", "b"}, "Content-Type": {"text/x"}}); !u.UseHeader(h) {
			t.Error("UseHeader refused")
		} else if w.Header()["X-Given"] == nil {
			t.Error("Header() is not the map given")
		}
		io.WriteString(w, "ok")
	}), nil)
	for path, want := range map[string]string{
		"/given":   "Content-Type: text/x\nX-Given: a\nX-Given: b\n",
		"/refused": "Content-Type: text/plain; charset=utf-8\nX-Own: 1\n",
	} {
		res, err := http.Get("http://" + addr + path)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, res.Body)
		res.Body.Close()
		var got strings.Builder
		for _, k := range []string{"Content-Type", "X-Given", "X-Own"} {
			for _, v := range res.Header[k] {
				got.WriteString(k + ": " + v + "\n")
			}
		}
		if got.String() != want {
			t.Errorf("%s: got fields\n%s; want\n%s", path, got.String(), want)
		}
	}
	http.DefaultClient.CloseIdleConnections()
}

func TestFastPath_PanicEndsTheConnectionAndIsLogged(t *testing.T) {
	var logs bytes.Buffer
	var mu sync.Mutex
	_, addr := start(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/abort" {
			panic(http.ErrAbortHandler)
		}
		panic("boom")
	}), func(s *Server) { s.Logger = slog.New(slog.NewTextHandler(lockedWriter{&mu, &logs}, nil)) })
	for _, path := range []string{"/abort", "/boom"} {
		c := dial(t, addr)
		fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: a\r\n\r\n", path)
		if b, err := io.ReadAll(c); err != nil || len(b) != 0 {
			t.Errorf("%s: got %q, %v; want the connection closed without a response", path, b, err)
		}
		c.Close()
	}
	mu.Lock()
	defer mu.Unlock()
	if n := strings.Count(logs.String(), "panic serving"); n != 1 || !strings.Contains(logs.String(), "boom") {
		t.Errorf("logged %q; want one panic line, for boom only", logs.String())
	}
}

type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

func TestFastPath_ReadHeaderTimeoutEndsASlowHead(t *testing.T) {
	_, addr := start(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}), func(s *Server) {
		s.ReadHeaderTimeout = 100 * time.Millisecond
	})
	c := dial(t, addr)
	io.WriteString(c, "GET / HTTP/1.1\r\nHost: a\r\n") // never finished
	if b, err := io.ReadAll(c); err != nil || len(b) != 0 {
		t.Errorf("got %q, %v; want the connection closed", b, err)
	}
}

func TestShutdown_DrainsInFlightAndClosesIdle(t *testing.T) {
	release := make(chan struct{})
	started := make(chan struct{}, 1)
	s, addr := start(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			started <- struct{}{}
			<-release
		}
		io.WriteString(w, "done")
	}), nil)

	idle := dial(t, addr)
	io.WriteString(idle, "GET / HTTP/1.1\r\nHost: a\r\n\r\n")
	ibr := bufio.NewReader(idle)
	if res, err := http.ReadResponse(ibr, nil); err != nil {
		t.Fatal(err)
	} else {
		io.ReadAll(res.Body)
	}

	busy := dial(t, addr)
	io.WriteString(busy, "GET /slow HTTP/1.1\r\nHost: a\r\n\r\n")
	<-started

	shut := make(chan error, 1)
	go func() { shut <- s.Shutdown(context.Background()) }()
	if _, err := ibr.ReadByte(); err != io.EOF {
		t.Errorf("idle connection during Shutdown: %v; want EOF", err)
	}
	close(release)
	res, err := http.ReadResponse(bufio.NewReader(busy), nil)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	if string(body) != "done" || !res.Close {
		t.Errorf("in-flight request: %q, close=%v; want done with Connection: close", body, res.Close)
	}
	if err := <-shut; err != nil {
		t.Errorf("Shutdown: %v", err)
	}
	if _, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		t.Error("the listener still accepts after Shutdown")
	}
}

// End: the client has the whole response, framed as at the handler's return, while the handler still runs;
// later writes fail, the return adds nothing, and the client leaving no longer cancels the request.
func TestFastPath_End(t *testing.T) {
	type after struct {
		writeErr error
		ctxErr   error
	}
	release := make(chan struct{}) // the client has read the response
	afters := make(chan after, 1)
	_, addr := start(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/length":
			w.Header().Set("Content-Length", "5")
			io.WriteString(w, "hello")
		case "/small": // held back, then sent with a Content-Length
			io.WriteString(w, "hi")
		case "/chunked":
			w.Header().Set("Trailer", "X-Sum")
			io.WriteString(w, "abc")
			w.(http.Flusher).Flush()
			io.WriteString(w, "def")
			w.Header().Set("X-Sum", "6")
		}
		if err := w.(interface{ End() error }).End(); err != nil {
			t.Errorf("%s: End: %v", r.URL.Path, err)
		}
		<-release
		if r.URL.Path == "/length" {
			time.Sleep(100 * time.Millisecond) // well past WatchAfter: the watch has seen the client leave
		}
		_, err := io.WriteString(w, "more")
		afters <- after{writeErr: err, ctxErr: r.Context().Err()}
	}), nil)

	for _, tc := range []struct{ path, body, framing, trailer string }{
		{"/small", "hi", "length 2", ""},
		{"/chunked", "abcdef", "chunked", "6"},
		{"/length", "hello", "length 5", ""}, // last: the client leaves after it
	} {
		c := dial(t, addr)
		io.WriteString(c, "GET "+tc.path+" HTTP/1.1\r\nHost: a\r\n\r\n")
		br := bufio.NewReader(c)
		res, err := http.ReadResponse(br, nil) // the handler is blocked on release meanwhile
		if err != nil {
			t.Fatalf("%s: %v", tc.path, err)
		}
		body, err := io.ReadAll(res.Body)
		framing := "chunked"
		if res.ContentLength >= 0 {
			framing = "length " + strconv.FormatInt(res.ContentLength, 10)
		}
		if err != nil || string(body) != tc.body || framing != tc.framing || res.Trailer.Get("X-Sum") != tc.trailer {
			t.Errorf("%s: body %q (%v), %s, trailer %q; want %q, %s, trailer %q", tc.path, body, err, framing,
				res.Trailer.Get("X-Sum"), tc.body, tc.framing, tc.trailer)
		}
		if tc.path == "/length" {
			c.Close()
		}
		release <- struct{}{}
		a := <-afters
		if !errors.Is(a.writeErr, ErrEnded) || a.ctxErr != nil {
			t.Errorf("%s: after End, a write gave %v (want ErrEnded) and the context %v (want not cancelled)", tc.path, a.writeErr, a.ctxErr)
		}
		if tc.path != "/length" {
			// Nothing more on the connection: the next response follows at once.
			io.WriteString(c, "GET /small HTTP/1.1\r\nHost: a\r\n\r\n")
			res, err := http.ReadResponse(br, nil)
			if err != nil {
				t.Fatalf("%s: next response: %v", tc.path, err)
			}
			io.Copy(io.Discard, res.Body)
			release <- struct{}{}
			<-afters
		}
	}
}
