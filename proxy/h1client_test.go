package proxy

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httptrace"
	"net/textproto"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func newTestH1Client(t *testing.T, headerTimeout time.Duration) *h1Client {
	d := &net.Dialer{Timeout: time.Second}
	c := newH1Client(d.DialContext, 8, time.Minute, headerTimeout)
	t.Cleanup(func() { c.closeIdle(true) })
	return c
}

func doH1(t *testing.T, c *h1Client, r *http.Request) (*http.Response, string) {
	t.Helper()
	if !c.eligible(r) {
		t.Fatalf("%s %s: not eligible for the synchronous client", r.Method, r.URL)
	}
	res, err := c.RoundTrip(r)
	if err != nil {
		t.Fatalf("%s %s: %v", r.Method, r.URL, err)
	}
	b, err := io.ReadAll(res.Body)
	res.Body.Close()
	if err != nil {
		t.Fatalf("read body: %v", err)
	}
	return res, string(b)
}

// countingServer is a real net/http server counting the connections it accepted.
func countingServer(t *testing.T, h http.Handler) (*httptest.Server, *atomic.Int64) {
	var conns atomic.Int64
	srv := httptest.NewUnstartedServer(h)
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	t.Cleanup(srv.Close)
	return srv, &conns
}

func TestH1Client_ReusesConnectionsAndFramesBodies(t *testing.T) {
	srv, conns := countingServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/chunked":
			w.Header().Set("Trailer", "X-Sum")
			w.Write([]byte("part1,"))
			w.(http.Flusher).Flush()
			w.Write([]byte("part2"))
			w.Header().Set("X-Sum", "42")
		case "/empty":
			w.WriteHeader(http.StatusNoContent)
		case "/echo":
			b, _ := io.ReadAll(r.Body)
			fmt.Fprintf(w, "%s %s cl=%d ua=%q %s", r.Method, r.URL.RequestURI(), r.ContentLength, r.Header.Get("User-Agent"), b)
		default:
			w.Write([]byte("hello"))
		}
	}))
	c := newTestH1Client(t, time.Second)
	for i := 0; i < 3; i++ {
		if _, body := doH1(t, c, httptest.NewRequest("GET", srv.URL+"/", nil)); body != "hello" {
			t.Fatalf("GET /: %q", body)
		}
		res, body := doH1(t, c, httptest.NewRequest("GET", srv.URL+"/chunked", nil))
		if body != "part1,part2" || res.Trailer.Get("X-Sum") != "42" {
			t.Fatalf("GET /chunked: %q, trailer %v", body, res.Trailer)
		}
		if res, body := doH1(t, c, httptest.NewRequest("GET", srv.URL+"/empty", nil)); res.StatusCode != 204 || body != "" {
			t.Fatalf("GET /empty: %d %q", res.StatusCode, body)
		}
		if res, body := doH1(t, c, httptest.NewRequest("HEAD", srv.URL+"/", nil)); res.StatusCode != 200 || body != "" {
			t.Fatalf("HEAD /: %d %q", res.StatusCode, body)
		}
		r := httptest.NewRequest("POST", srv.URL+"/echo?q=1", strings.NewReader("payload"))
		r.Header.Set("User-Agent", "")
		if _, body := doH1(t, c, r); body != `POST /echo?q=1 cl=7 ua="" payload` {
			t.Fatalf("POST /echo: %q", body)
		}
		r = httptest.NewRequest("PUT", srv.URL+"/echo", nil)
		r.Header.Set("User-Agent", "curl/8")
		if _, body := doH1(t, c, r); body != `PUT /echo cl=0 ua="curl/8" ` {
			t.Fatalf("PUT /echo: %q", body)
		}
	}
	if n := conns.Load(); n != 1 {
		t.Fatalf("%d upstream connections for sequential requests, want 1", n)
	}
}

func TestH1Client_ConnectionCloseNotReused(t *testing.T) {
	srv, conns := countingServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Connection", "close")
		w.Write([]byte("bye"))
	}))
	c := newTestH1Client(t, time.Second)
	for i := 0; i < 2; i++ {
		doH1(t, c, httptest.NewRequest("GET", srv.URL+"/", nil))
	}
	if n := conns.Load(); n != 2 {
		t.Fatalf("%d connections, want 2 (Connection: close)", n)
	}
}

// rawServer answers each connection with script(conn, reader); it returns the address.
func rawServer(t *testing.T, script func(c net.Conn, br *bufio.Reader)) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				script(c, bufio.NewReader(c))
			}()
		}
	}()
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	return ln.Addr().String()
}

func readRequest(t *testing.T, br *bufio.Reader) *http.Request {
	r, err := http.ReadRequest(br)
	if err != nil {
		return nil
	}
	io.Copy(io.Discard, r.Body)
	return r
}

// An upstream that closes a keep-alive connection after one response: the next request must not fail.
func TestH1Client_IdleConnectionClosedByUpstream(t *testing.T) {
	var conns atomic.Int64
	addr := rawServer(t, func(c net.Conn, br *bufio.Reader) {
		conns.Add(1)
		if readRequest(t, br) == nil {
			return
		}
		io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
		// then close, as an upstream whose idle timeout expired does
	})
	c := newTestH1Client(t, time.Second)
	doH1(t, c, httptest.NewRequest("GET", "http://"+addr+"/", nil))
	time.Sleep(50 * time.Millisecond) // let the close arrive
	// Idempotent and bodiless: retried on a new connection after the dead one fails.
	if _, body := doH1(t, c, httptest.NewRequest("GET", "http://"+addr+"/", nil)); body != "ok" {
		t.Fatalf("GET after idle close: %q", body)
	}
	time.Sleep(50 * time.Millisecond)
	// Not retryable (a body): the idle connection is checked before use, and a new one dialled.
	if _, body := doH1(t, c, httptest.NewRequest("POST", "http://"+addr+"/", strings.NewReader("x"))); body != "ok" {
		t.Fatalf("POST after idle close: %q", body)
	}
	if n := conns.Load(); n != 3 {
		t.Fatalf("%d connections, want 3", n)
	}
}

func TestH1Client_CloseDelimitedAndEarlyHints(t *testing.T) {
	addr := rawServer(t, func(c net.Conn, br *bufio.Reader) {
		if readRequest(t, br) == nil {
			return
		}
		io.WriteString(c, "HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload\r\n\r\n")
		io.WriteString(c, "HTTP/1.0 200 OK\r\n\r\nuntil the end")
	})
	c := newTestH1Client(t, time.Second)
	var hints []string
	r := httptest.NewRequest("GET", "http://"+addr+"/", nil)
	r = r.WithContext(httptrace.WithClientTrace(r.Context(), &httptrace.ClientTrace{
		Got1xxResponse: func(code int, h textproto.MIMEHeader) error {
			hints = append(hints, fmt.Sprint(code, " ", h.Get("Link")))
			return nil
		},
	}))
	res, body := doH1(t, c, r)
	if res.StatusCode != 200 || body != "until the end" || !res.Close {
		t.Fatalf("close-delimited: %d %q close=%v", res.StatusCode, body, res.Close)
	}
	if len(hints) != 1 || hints[0] != "103 </style.css>; rel=preload" {
		t.Fatalf("1xx responses seen: %q", hints)
	}
}

func TestH1Client_ResponseHeaderTimeout(t *testing.T) {
	release := make(chan struct{})
	addr := rawServer(t, func(c net.Conn, br *bufio.Reader) {
		readRequest(t, br)
		<-release
	})
	t.Cleanup(func() { close(release) }) // before rawServer's cleanup waits for its handlers
	c := newTestH1Client(t, 100*time.Millisecond)
	_, err := c.RoundTrip(httptest.NewRequest("GET", "http://"+addr+"/", nil))
	if err == nil || !isHeaderTimeout(err) {
		t.Fatalf("err = %v, want a response-header timeout", err)
	}
}

// The head's read deadline is kept between exchanges on a connection while bodies come from the buffer: it
// still ends a slow head on the reused connection, it never cuts a body read from the connection, and a
// connection idle past it is still checked and reused.
func TestH1Client_KeptHeadDeadline(t *testing.T) {
	release := make(chan struct{})
	srv, conns := countingServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/slow-head":
			select {
			case <-release:
			case <-r.Context().Done():
			}
		case "/slow-body": // declared length, sent in two parts three timeouts apart
			w.Header().Set("Content-Length", "2")
			io.WriteString(w, "a")
			w.(http.Flusher).Flush()
			time.Sleep(300 * time.Millisecond)
			io.WriteString(w, "b")
		default:
			io.WriteString(w, "ok")
		}
	}))
	t.Cleanup(func() { close(release) })
	c := newTestH1Client(t, 100*time.Millisecond)
	get := func(path string) string {
		_, body := doH1(t, c, httptest.NewRequest("GET", srv.URL+path, nil))
		return body
	}
	if get("/") != "ok" || get("/") != "ok" {
		t.Fatal("unexpected body")
	}
	if got := get("/slow-body"); got != "ab" {
		t.Fatalf("slow body: %q, want \"ab\"", got)
	}
	if get("/") != "ok" {
		t.Fatal("unexpected body after the slow body")
	}
	time.Sleep(200 * time.Millisecond) // past the deadline kept from the last exchange
	// Not retryable (POST): the idle connection is checked before use, which the passed deadline must not fail.
	if _, body := doH1(t, c, httptest.NewRequest("POST", srv.URL+"/", nil)); body != "ok" {
		t.Fatalf("POST: %q", body)
	}
	if n := conns.Load(); n != 1 {
		t.Fatalf("%d connections, want 1", n)
	}
	_, err := c.RoundTrip(httptest.NewRequest("GET", srv.URL+"/slow-head", nil))
	if err == nil || !isHeaderTimeout(err) {
		t.Fatalf("slow head on the reused connection: err = %v, want a response-header timeout", err)
	}
	if n := conns.Load(); n != 1 {
		t.Fatalf("%d connections, want 1 (the slow head on the reused one)", n)
	}
}

func TestH1Client_CancelMidBody(t *testing.T) {
	release := make(chan struct{})
	addr := rawServer(t, func(c net.Conn, br *bufio.Reader) {
		readRequest(t, br)
		io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nfirst")
		<-release
	})
	t.Cleanup(func() { close(release) })
	c := newTestH1Client(t, time.Second)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	res, err := c.RoundTrip(httptest.NewRequest("GET", "http://"+addr+"/", nil).WithContext(ctx))
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	buf := make([]byte, 5)
	if _, err := io.ReadFull(res.Body, buf); err != nil || string(buf) != "first" {
		t.Fatalf("first bytes: %q %v", buf, err)
	}
	time.AfterFunc(50*time.Millisecond, cancel)
	if _, err := io.ReadAll(res.Body); err == nil {
		t.Fatal("body read went on after the request was cancelled")
	}
}

func TestH1Client_InvalidHeaderRefused(t *testing.T) {
	srv, conns := countingServer(t, http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	c := newTestH1Client(t, time.Second)
	r := httptest.NewRequest("GET", srv.URL+"/", nil)
	r.Header["X-Bad"] = []string{"a\r\nInjected: yes"}
	if _, err := c.RoundTrip(r); err == nil || !strings.Contains(err.Error(), "invalid header field value") {
		t.Fatalf("err = %v, want an invalid header error", err)
	}
	var dialErr *net.OpError
	c2 := newTestH1Client(t, time.Second)
	_, err := c2.RoundTrip(httptest.NewRequest("GET", "http://127.0.0.1:1/", nil))
	if !errors.As(err, &dialErr) || dialErr.Op != "dial" {
		t.Fatalf("unreachable upstream: err = %v, want a dial error", err)
	}
	_ = conns
}

func TestH1Client_Eligible(t *testing.T) {
	c := newTestH1Client(t, 0)
	mk := func(method, url string, body io.Reader, hdr ...string) *http.Request {
		r := httptest.NewRequest(method, url, body)
		for i := 0; i+1 < len(hdr); i += 2 {
			r.Header.Set(hdr[i], hdr[i+1])
		}
		return r
	}
	big := strings.NewReader(strings.Repeat("x", maxFastBody+1))
	chunked := mk("POST", "http://u/", io.NopCloser(strings.NewReader("x")))
	chunked.ContentLength = -1
	for _, tc := range []struct {
		r    *http.Request
		want bool
	}{
		{mk("GET", "http://u/", nil), true},
		{mk("POST", "http://u/", strings.NewReader("small")), true},
		{mk("POST", "http://u/", big), false},
		{chunked, false},
		{mk("GET", "https://u/", nil), false},
		{mk("GET", "http://u/", nil, "Upgrade", "websocket"), false},
		{mk("POST", "http://u/", strings.NewReader("x"), "Expect", "100-continue"), false},
	} {
		if got := c.eligible(tc.r); got != tc.want {
			t.Errorf("%s %s %v: eligible = %v, want %v", tc.r.Method, tc.r.URL, tc.r.Header, got, tc.want)
		}
	}
}

// An egress proxy calling many hosts: idle connections to hosts no longer called are closed by the sweep.
func TestH1Client_SweepClosesExpiredIdleConnections(t *testing.T) {
	var closedB atomic.Int64
	a, _ := countingServer(t, http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	b := httptest.NewUnstartedServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	b.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateClosed {
			closedB.Add(1)
		}
	}
	b.Start()
	t.Cleanup(b.Close)
	d := &net.Dialer{Timeout: time.Second}
	c := newH1Client(d.DialContext, 8, 50*time.Millisecond, time.Second)
	t.Cleanup(func() { c.closeIdle(true) })
	doH1(t, c, httptest.NewRequest("GET", b.URL+"/", nil))
	time.Sleep(100 * time.Millisecond)
	c.mu.Lock()
	c.lastSweep = time.Time{} // as if sweepEvery had passed
	c.mu.Unlock()
	doH1(t, c, httptest.NewRequest("GET", a.URL+"/", nil))
	c.mu.Lock()
	hosts := len(c.idle)
	c.mu.Unlock()
	if hosts != 1 {
		t.Fatalf("idle connections kept for %d hosts, want 1 (the expired host's removed)", hosts)
	}
	for deadline := time.Now().Add(2 * time.Second); closedB.Load() == 0; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the expired idle connection to B was not closed")
		}
	}
}

// An upstream that sends more than its Content-Length: the stray bytes must not be read as the next
// request's response.
func TestH1Client_StrayBytesAfterResponse_ConnectionNotReused(t *testing.T) {
	var conns atomic.Int64
	addr := rawServer(t, func(c net.Conn, br *bufio.Reader) {
		conns.Add(1)
		for n := 0; ; n++ {
			if readRequest(t, br) == nil {
				return
			}
			fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nr%dHTTP/1.1 404 Stray\r\nContent-Length: 0\r\n\r\n", n)
		}
	})
	c := newTestH1Client(t, time.Second)
	for i := 0; i < 3; i++ {
		res, body := doH1(t, c, httptest.NewRequest("GET", "http://"+addr+"/", nil))
		if res.StatusCode != 200 || body != "r0" {
			t.Fatalf("request %d: %d %q; want 200 \"r0\" on a fresh connection", i, res.StatusCode, body)
		}
	}
	if n := conns.Load(); n != 3 {
		t.Fatalf("%d connections, want 3", n)
	}
}
